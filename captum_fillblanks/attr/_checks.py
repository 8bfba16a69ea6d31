"""Argument checks shared by the estimators: each error names the argument, what was
given and what was expected."""

from __future__ import annotations

import math
from typing import Any

import torch


def check_positive_int(name: str, value: Any, allow_none: bool = False) -> None:
    """``value`` is an int >= 1 (or ``None`` where allowed); else ``TypeError``/``ValueError``."""
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be a positive int, got {type(value).__name__}")
    if value < 1:
        raise ValueError(f"{name} must be >= 1, got {value}")


def check_step_size(step_size: Any) -> None:
    """``step_size`` (``gamma``) is a finite number; else ``TypeError``/``ValueError``."""
    if not isinstance(step_size, (int, float)) or isinstance(step_size, bool):
        raise TypeError(f"step_size must be a number, got {type(step_size).__name__}")
    if not math.isfinite(step_size):
        raise ValueError(f"step_size must be a finite number, got {step_size}")


def broadcasts_to(shape: torch.Size | tuple[int, ...], target: torch.Size | tuple[int, ...]) -> bool:
    """Whether a tensor of ``shape`` broadcasts to exactly ``target`` (no dimension of
    ``target`` grows)."""
    try:
        return torch.broadcast_shapes(shape, target) == tuple(target)
    except RuntimeError:
        return False
