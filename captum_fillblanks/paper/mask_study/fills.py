"""How many masks a result needs: the fills of one run at every count, and what
stopping by precision would have kept.

The first ``n`` kept draws of a fill are the kept draws of a fill with ``n_samples=n``
(same seed: the same masks, kept the same way), so one run at the largest count,
recording each image's sums as its own kept draws pass each count
(``MaskFill.attribute(record_at=...)``), gives the fill at every count. Recording also
at the counts where ``tolerance`` checks (32, 64, 128, ... kept draws) gives, for any
tolerance, exactly where each image would have stopped and the fill it would have had
(:func:`stopped_by_tolerance`), without another run.

The images and masks are a reproduction's: its first ``n_images`` test images, in shards
of ``shard_size`` with masks seeded by ``seed`` plus the shard's first image, and
:class:`~captum_fillblanks.MaskFill`'s defaults beside the run's mask settings, so the
largest count's fills are that run's fills.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import NamedTuple

import torch
from torch import Tensor

from ...attr._captum_compat import progress
from ...attr.mask_fill import FIRST_TOLERANCE_CHECK, MaskFill
from ..reproduce.config import RunConfig

__all__ = [
    "STUDY_COUNTS",
    "STUDY_TOLERANCES",
    "tolerance_checks",
    "recorded_counts",
    "study_fills",
    "images_digest",
    "Stopped",
    "stopped_by_tolerance",
]

#: The kept-mask counts a study reports (those at most the run's ``n_samples``).
STUDY_COUNTS = (100, 300, 1000, 3000, 10_000)

#: The tolerances a study reports, each with the draws it used: ``(tolerance, cap)``,
#: the cap (``n_samples``) ``None`` for the study's own.
STUDY_TOLERANCES = ((0.3, None), (0.2, None), (0.15, None), (0.1, None), (0.3, 3000), (0.2, 3000), (0.15, 3000))


def tolerance_checks(n_samples: int) -> list[int]:
    """Where ``tolerance`` checks an image's error: at 32, 64, 128, ... of its own kept
    draws, and last at ``n_samples`` (MaskFill's schedule)."""
    checks, count = [], FIRST_TOLERANCE_CHECK
    while count < n_samples:
        checks.append(count)
        count *= 2
    return checks + [n_samples]


def recorded_counts(n_samples: int) -> list[int]:
    """The counts a study records: :data:`STUDY_COUNTS` up to ``n_samples`` and every
    tolerance check."""
    return sorted({c for c in STUDY_COUNTS if c <= n_samples} | set(tolerance_checks(n_samples)))


def study_fills(
    model: Callable,
    images: Tensor,
    config: RunConfig,
    *,
    show_progress: bool = False,
) -> dict[str, Tensor]:
    """The fills of ``images`` at every count of :func:`recorded_counts` (``config``'s
    ``n_samples``, mask settings, seeds and shards).

    Returns:
        dict: ``counts`` ``(K,)``; ``fill`` ``(K, N, ...)``; ``n_kept`` and
        ``relative_error`` ``(K, N)``; ``predicted`` ``(N,)``, the model's labels;
        ``n_drawn`` ``(N,)``, the masks drawn for each image's shard;
        ``images_sha256``, :func:`images_digest` of ``images``.
    """
    counts = recorded_counts(config.n_samples)
    parts: dict[str, list[Tensor]] = {"fill": [], "n_kept": [], "relative_error": [], "predicted": [], "n_drawn": []}
    starts = range(0, len(images), config.shard_size)
    for start in progress(starts, desc="study shards", disable=not show_progress):
        shard = images[start : start + config.shard_size]
        with torch.no_grad():
            parts["predicted"].append(model(shard).argmax(1).cpu())
        method = MaskFill(model)
        method.attribute(
            shard,
            n_samples=config.n_samples,
            max_draws=config.max_draws_per_sample * config.n_samples,
            seed=config.seed + start,
            record_at=counts,
            **config.masks,
        )
        recorded = method.counts.recorded
        parts["fill"].append(torch.stack([recorded[c].fill.cpu() for c in counts]))
        parts["n_kept"].append(torch.stack([recorded[c].n_kept.cpu() for c in counts]))
        parts["relative_error"].append(torch.stack([recorded[c].relative_error.cpu() for c in counts]))
        parts["n_drawn"].append(torch.full((len(shard),), method.counts.n_drawn))
    per_count = ("fill", "n_kept", "relative_error")  # (K, N, ...): the images are dimension 1
    result = {key: torch.cat(values, dim=1 if key in per_count else 0) for key, values in parts.items()}
    result["counts"] = torch.tensor(counts)
    result["images_sha256"] = images_digest(images)
    return result


def images_digest(images: Tensor) -> str:
    """The SHA-256 of ``images``' shape and float32 values: which images a saved study
    belongs to."""
    values = images.detach().to("cpu", torch.float32).contiguous()
    digest = hashlib.sha256(repr(tuple(values.shape)).encode())
    digest.update(values.numpy().tobytes())
    return digest.hexdigest()


class Stopped(NamedTuple):
    """What ``MaskFill.attribute(tolerance=..., n_samples=...)`` gives each image of a
    study: ``fill`` ``(N, ...)``, ``n_kept`` ``(N,)``, ``converged`` ``(N,)`` (it reached
    the tolerance) and ``relative_error`` ``(N,)`` where it stopped."""

    fill: Tensor
    n_kept: Tensor
    converged: Tensor
    relative_error: Tensor


def stopped_by_tolerance(study: dict[str, Tensor], tolerance: float, cap: int | None = None) -> Stopped:
    """Where each image of a study would have stopped with ``tolerance`` and
    ``n_samples=cap`` (default: the study's own ``n_samples``): the first tolerance check
    whose relative error is at most ``tolerance`` (else the cap), and its fill there.
    The study must have recorded ``cap``."""
    counts = study["counts"].tolist()
    cap = max(counts) if cap is None else cap
    if cap not in counts:
        raise ValueError(f"cap must be one of the study's recorded counts {counts}, got {cap!r}")
    checks = [counts.index(c) for c in tolerance_checks(cap)]
    error = study["relative_error"][checks]  # (n_checks, N)
    precise = error <= tolerance
    reached = precise.any(0)
    first = torch.where(reached, precise.long().argmax(0), torch.full_like(reached, len(checks) - 1, dtype=torch.long))
    where = torch.tensor(checks)[first]
    columns = torch.arange(len(where))
    return Stopped(
        study["fill"][where, columns], study["n_kept"][where, columns], reached, study["relative_error"][where, columns]
    )
