"""The visual transform ``T`` (paper eq. 4) and the images built from it.

``T(delta) = binarize(normalize(delta_blank))``: the update is kept only at the blanks,
min-max normalized over those positions per example, and thresholded at ``tau``. The
results live in ``[0, 1]``; :func:`to_input_range` maps them into the range the model
expects (``0`` -> background, ``1`` -> ink).

All functions take a batch: tensors of shape ``(batch, ...)``; a ``blank`` indicator is
a bool tensor broadcastable to the update (``True`` = blank), or ``None`` for "every
position" (the prototype view).
"""

from __future__ import annotations

from typing import Optional, Tuple, Union

import torch
from torch import Tensor

__all__ = [
    "normalize_over_blanks",
    "binarize",
    "fill_transform",
    "signed_update",
    "to_input_range",
    "filled_image",
    "prototype",
]

#: ``(background, ink)``: each a number, or a tensor broadcastable to the input (e.g. one
#: value per channel, shape ``(1, C, 1, 1)``, for a model that takes normalized RGB).
InputRange = Tuple[Union[float, Tensor], Union[float, Tensor]]


def _blank_like(update: Tensor, blank: Optional[Tensor]) -> Tensor:
    if blank is None:
        return torch.ones_like(update, dtype=torch.bool)
    blank = blank.to(device=update.device, dtype=torch.bool)
    try:
        return blank.expand_as(update)
    except RuntimeError:
        raise ValueError(
            f"blank of shape {tuple(blank.shape)} does not broadcast to the update's "
            f"shape {tuple(update.shape)}"
        ) from None


def normalize_over_blanks(update: Tensor, blank: Optional[Tensor] = None) -> Tensor:
    """Min-max normalize ``update`` over its blank positions, per example, to ``[0, 1]``.

    Positions that are not blank are set to ``0``. An example whose update is constant
    over its blanks (or that has none) normalizes to all zeros.
    """
    blank = _blank_like(update, blank)
    flat = update.reshape(update.shape[0], -1)
    flat_blank = blank.reshape(update.shape[0], -1)
    inf = torch.tensor(float("inf"), dtype=flat.dtype, device=flat.device)
    low = torch.where(flat_blank, flat, inf).amin(dim=1, keepdim=True)
    high = torch.where(flat_blank, flat, -inf).amax(dim=1, keepdim=True)
    spread = high - low
    ok = torch.isfinite(spread) & (spread > 0)
    scaled = (flat - low) / torch.where(ok, spread, torch.ones_like(spread))
    scaled = torch.where(flat_blank & ok, scaled, torch.zeros_like(scaled))
    return scaled.reshape(update.shape)


def binarize(values: Tensor, threshold: float = 0.5) -> Tensor:
    """``1`` where ``values > threshold`` (``tau``), else ``0``, in the dtype of ``values``."""
    return (values > threshold).to(values.dtype)


def fill_transform(
    update: Tensor,
    blank: Optional[Tensor] = None,
    *,
    threshold: float = 0.5,
    binarized: bool = True,
) -> Tensor:
    """The transform ``T``: normalize over the blanks, then binarize at ``threshold``.

    Args:
        update (Tensor): ``delta`` of shape ``(batch, ...)``.
        blank (Tensor, optional): where the blanks are; ``None`` = every position.
        threshold (float): ``tau``. Default: 0.5.
        binarized (bool): ``False`` skips the threshold (the paper's Fig. 6 variant).

    Returns:
        Tensor in ``[0, 1]`` (``{0, 1}`` when binarized), zero outside the blanks.
    """
    normalized = normalize_over_blanks(update, blank)
    return binarize(normalized, threshold) if binarized else normalized


def signed_update(update: Tensor, blank: Optional[Tensor] = None) -> Tuple[Tensor, Tensor]:
    """Positive and negative parts of the update at the blanks (paper Fig. 1: red, blue).

    Returns ``(positive, negative)``, both ``>= 0`` and zero outside the blanks.
    """
    blank = _blank_like(update, blank)
    kept = torch.where(blank, update, torch.zeros_like(update))
    return kept.clamp(min=0), (-kept).clamp(min=0)


def to_input_range(values: Tensor, input_range: InputRange = (0.0, 1.0)) -> Tensor:
    """Map ``[0, 1]`` to ``input_range``: ``0`` -> background, ``1`` -> ink.

    For a normalized data set pass the range its transform produces, e.g. MNIST with
    ``Normalize(0.1307, 0.3081)`` has ``((0 - 0.1307) / 0.3081, (1 - 0.1307) / 0.3081)``;
    with one mean and std per channel, pass tensors of shape ``(1, C, 1, 1)``:
    ``((0 - mean) / std, (1 - mean) / std)``.
    """
    if not isinstance(input_range, (tuple, list)) or len(input_range) != 2:
        raise ValueError(
            "input_range must be a pair (background, ink) of numbers or tensors, got "
            f"{type(input_range).__name__}"
        )
    background, ink = (
        end.to(values.device, values.dtype) if isinstance(end, Tensor) else end for end in input_range
    )
    return background + values * (ink - background)


def filled_image(
    masked_input: Tensor,
    update: Tensor,
    blank: Tensor,
    *,
    input_range: InputRange = (0.0, 1.0),
    threshold: float = 0.5,
    binarized: bool = True,
) -> Tensor:
    """``M(x) + T(delta)``: the masked input with its blanks filled by the transformed update.

    Outside the blanks the result equals ``masked_input``; at the blanks it holds
    ``T(delta)`` mapped into ``input_range``.
    """
    blank = _blank_like(update, blank)
    fill = to_input_range(
        fill_transform(update, blank, threshold=threshold, binarized=binarized), input_range
    )
    return torch.where(blank, fill, masked_input.to(fill.dtype))


def prototype(
    fill: Tensor,
    *,
    input_range: InputRange = (0.0, 1.0),
    threshold: float = 0.5,
    binarized: bool = True,
) -> Tensor:
    """The class prototype of an example: ``T(fill)`` over every pixel, in input range.

    ``fill`` is what :meth:`MaskFill.attribute` returns. No pixel of the input survives.
    """
    return to_input_range(
        fill_transform(fill, None, threshold=threshold, binarized=binarized), input_range
    )
