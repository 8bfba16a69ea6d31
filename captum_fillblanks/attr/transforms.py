"""The visual transform ``T`` (paper eq. 4) and the images built from it.

``T(delta) = binarize(normalize(delta_blank))``: the update is kept only at the blanks,
normalized over those positions per example, and thresholded at ``tau``. The paper
does not say which normalization; both readings are offered (``normalization=``):

- ``"max_abs"`` (the default): divide by the largest ``|delta|`` over the blanks. Zero
  stays zero (background), the strongest "add ink" suggestion becomes ``1``, and a
  negative update never becomes ink.
- ``"min_max"``: map ``[min, max]`` over the blanks to ``[0, 1]``. Zero moves to the
  middle of the range, so where the update is mostly small noise around zero about half
  of the blanks turn to ink at ``tau = 0.5``.

The default is ``"max_abs"`` because on held-out validation images of the shipped MNIST
models it scores higher on every row of the consistency table that shows the trained
model's fills (``docs/reproduction/README.md``), and it keeps the background of a
prototype dark. The results of ``T`` live in ``[0, 1]``;
:func:`to_input_range` maps them into the range the model expects (``0`` ->
background, ``1`` -> ink).

All functions take a batch: tensors of shape ``(batch, ...)``; a ``blank`` indicator is
a bool tensor broadcastable to the update (``True`` = blank), or ``None`` for "every
position" (the prototype view).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from ._checks import broadcasts_to

__all__ = [
    "NORMALIZATIONS",
    "DEFAULT_THRESHOLD",
    "DEFAULT_SCALE_PERCENTILE",
    "TransformSetting",
    "resolve_transform",
    "normalize_over_blanks",
    "binarize",
    "fill_transform",
    "signed_update",
    "to_input_range",
    "range_end",
    "filled_image",
    "prototype",
]

#: ``(background, ink)``: each a number, or a tensor broadcastable to the input (e.g. one
#: value per channel, shape ``(1, C, 1, 1)``, for a model that takes normalized RGB).
InputRange = tuple[float | Tensor, float | Tensor]

#: The normalizations of ``T`` (see the module docs).
NORMALIZATIONS = ("max_abs", "min_max")

#: The default threshold ``tau`` of ``T``. With :data:`DEFAULT_SCALE_PERCENTILE`, the
#: binarized setting that a reader sees best: chosen on the 200 validation images of
#: the shipped MNIST models by an independent judge's reading of the prototypes plus
#: their IoU with the image's ink (``experiments/choose_display.py``, ``docs/choosing.rst``;
#: it was 0.2 with the largest-value scale, chosen by the model's own reading).
DEFAULT_THRESHOLD = 0.5


#: The scale of ``T`` under ``"max_abs"`` when a setting names none: divide by this
#: percentile of ``|delta|`` over the blanks and clip (100: the largest value, the
#: default before the display was chosen by what a reader sees; see
#: :data:`DEFAULT_THRESHOLD`).
DEFAULT_SCALE_PERCENTILE = 90.0


def _check_normalization(normalization: str) -> None:
    if normalization not in NORMALIZATIONS:
        raise ValueError(f"normalization must be one of {NORMALIZATIONS}, got {normalization!r}")


def _check_percentile(percentile: Any, normalization: str) -> None:
    if isinstance(percentile, bool) or not isinstance(percentile, (int, float)):
        raise TypeError(f"scale_percentile must be a number in (0, 100], got {type(percentile).__name__}")
    if not 0 < percentile <= 100:
        raise ValueError(f"scale_percentile must be in (0, 100], got {percentile!r}")
    if percentile != 100 and normalization != "max_abs":
        raise ValueError(
            f"scale_percentile={percentile!r} applies to normalization='max_abs' only, got {normalization!r}"
        )


def _check_threshold(threshold: float) -> None:
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)):
        raise TypeError(f"threshold must be a number in [0, 1), got {type(threshold).__name__}")
    if not (math.isfinite(threshold) and 0.0 <= threshold < 1.0):
        raise ValueError(f"threshold must be a number in [0, 1) (tau of T), got {threshold!r}")


def _check_batch(values: Any, name: str) -> None:
    """``values`` is a Tensor with a batch dimension and at least one example, each
    with at least one value: what ``T`` normalizes, example by example."""
    if not isinstance(values, Tensor):
        raise TypeError(f"{name} must be a Tensor, got {type(values).__name__}")
    if values.dim() == 0 or values.shape[0] == 0 or values[0].numel() == 0:
        raise ValueError(
            f"{name} of shape {tuple(values.shape)} holds no example to transform: T normalizes each "
            f"example of a batch (B, ...) over its values, so give at least one, e.g. {name}[None] "
            "for a single example"
        )


def _blank_like(update: Tensor, blank: Tensor | None) -> Tensor:
    if blank is None:
        return torch.ones_like(update, dtype=torch.bool)
    blank = blank.to(device=update.device, dtype=torch.bool)
    try:
        return blank.expand_as(update)
    except RuntimeError:
        raise ValueError(
            f"blank of shape {tuple(blank.shape)} does not broadcast to the update's shape {tuple(update.shape)}"
        ) from None


def normalize_over_blanks(
    update: Tensor, blank: Tensor | None = None, normalization: str = "max_abs", scale_percentile: float = 100.0
) -> Tensor:
    """Normalize ``update`` over its blank positions, per example.

    Args:
        update (Tensor): ``delta`` of shape ``(batch, ...)``.
        blank (Tensor, optional): where the blanks are; ``None`` = every position.
        normalization (str, optional): ``"max_abs"`` divides by the largest ``|delta|``
            over the blanks (result in ``[-1, 1]``, zero stays zero); ``"min_max"``
            maps ``[min, max]`` over the blanks to ``[0, 1]``. Default: "max_abs".
        scale_percentile (float, optional): with ``"max_abs"``, divide by this
            percentile of ``|delta|`` over the blanks (linear interpolation, as
            ``torch.quantile``) and clip to ``[-1, 1]``; 100 is the largest value.
            Default: 100.

    Positions that are not blank are set to ``0``. An example with no blanks, an update
    that is zero over its blanks (``"max_abs"``) or constant over them (``"min_max"``)
    normalizes to all zeros. A non-finite value (NaN or inf) is set to ``0`` and left out
    of the scale, with a warning that counts them, so it cannot blank its example.
    """
    _check_normalization(normalization)
    _check_percentile(scale_percentile, normalization)
    _check_batch(update, "update")
    blank = _blank_like(update, blank)
    flat = update.reshape(update.shape[0], -1)
    flat_blank = blank.reshape(update.shape[0], -1)
    # a NaN or inf would set the scale of its whole example: it is drawn as background
    # and reported instead
    nonfinite = flat_blank & ~torch.isfinite(flat)
    if bool(nonfinite.any()):
        per_example = nonfinite.sum(1).tolist()
        warnings.warn(
            f"the update holds {sum(per_example)} non-finite values (NaN or inf) at blank positions of "
            f"example(s) {[i for i, c in enumerate(per_example) if c]}; they are drawn as background "
            "and left out of the normalization",
            UserWarning,
            stacklevel=2,
        )
        flat_blank = flat_blank & ~nonfinite
        flat = torch.where(nonfinite, torch.zeros_like(flat), flat)
    zero = torch.zeros_like(flat)
    if normalization == "max_abs":
        low = torch.zeros_like(flat[:, :1])
        spread = torch.where(flat_blank, flat.abs(), zero).amax(dim=1, keepdim=True)
        if scale_percentile < 100:
            # per example: torch.quantile takes at most 2**24 values at a time
            at = torch.stack(
                [
                    row[used].abs().quantile(scale_percentile / 100) if bool(used.any()) else row.new_zeros(())
                    for row, used in zip(flat, flat_blank)
                ]
            )[:, None]
            # an example whose percentile is 0 (mostly zeros) keeps the largest value as scale
            spread = torch.where(at > 0, at, spread)
            flat = flat.clamp(-spread, spread)
    else:
        inf = torch.tensor(float("inf"), dtype=flat.dtype, device=flat.device)
        low = torch.where(flat_blank, flat, inf).amin(dim=1, keepdim=True)
        high = torch.where(flat_blank, flat, -inf).amax(dim=1, keepdim=True)
        spread = high - low
    ok = torch.isfinite(spread) & (spread > 0)
    scaled = (flat - low) / torch.where(ok, spread, torch.ones_like(spread))
    scaled = torch.where(flat_blank & ok, scaled, zero)
    return scaled.reshape(update.shape)


def binarize(values: Tensor, threshold: float = 0.5) -> Tensor:
    """``1`` where ``values > threshold`` (``tau``, in ``[0, 1)`` as for :func:`fill_transform`),
    else ``0``, in the dtype of ``values``."""
    _check_threshold(threshold)
    return (values > threshold).to(values.dtype)


def fill_transform(
    update: Tensor,
    blank: Tensor | None = None,
    *,
    transform: TransformSetting | None = None,
    threshold: float | None = None,
    binarized: bool | None = None,
    normalization: str | None = None,
) -> Tensor:
    """The transform ``T``: normalize over the blanks, then binarize at ``tau``.

    Args:
        update (Tensor): ``delta`` of shape ``(batch, ...)``.
        blank (Tensor, optional): where the blanks are; ``None`` = every position.
        transform (TransformSetting, optional): the setting of ``T``: normalization
            (``"max_abs"`` or ``"min_max"``, module docs), threshold ``tau`` and whether
            to binarize; ``binarized=False`` skips the threshold (the paper's Fig. 6
            variant) and keeps the normalized update's part in ``[0, 1]`` (under
            ``"max_abs"``, the positive part: a negative update is background).
            Default: None (``TransformSetting()``, the package's default ``T``: see
            :class:`TransformSetting`).
        threshold, binarized, normalization (optional): a convenience for the same
            setting, field by field (:func:`resolve_transform`); not together with
            ``transform``. Default: None (the default of each field).

    Returns:
        Tensor in ``[0, 1]`` (``{0, 1}`` when binarized), zero outside the blanks.
    """
    setting = resolve_transform(transform, threshold=threshold, binarized=binarized, normalization=normalization)
    normalized = normalize_over_blanks(update, blank, setting.normalization, setting.scale_percentile)
    if not setting.binarized:
        return normalized.clamp(min=0.0)
    return binarize(normalized, setting.threshold)


@dataclass(frozen=True)
class TransformSetting:
    """One setting of ``T``: normalization, threshold ``tau`` and whether to binarize.

    A row of the consistency table, a figure or a caller's loop can pass one around
    instead of three arguments: every function that applies ``T`` takes it as
    ``transform=`` (:func:`fill_transform`, :func:`filled_image`, :func:`prototype`,
    ``ProgressiveMaskFill.attribute`` and the figures), and ``setting(update, blank)``
    applies :func:`fill_transform`.

    Args:
        normalization (str): ``"max_abs"`` or ``"min_max"``. Default: "max_abs".
        threshold (float): ``tau``, in ``[0, 1)``; unused when not binarized.
            Default: 0.5 (:data:`DEFAULT_THRESHOLD`).
        binarized (bool): threshold the normalized update. Default: True.
        scale_percentile (float): with ``"max_abs"``, divide by this percentile of
            ``|delta|`` over the blanks instead of its largest value, and clip to
            ``[-1, 1]``: one hot pixel then no longer dims the rest of the picture. In
            ``(0, 100]``; 100 is the largest value. Default: None, read as
            :data:`DEFAULT_SCALE_PERCENTILE` (90) under ``"max_abs"`` and 100 under
            ``"min_max"`` (the field then holds that number). The defaults, ``tau``
            0.5 at the 90th percentile, were chosen on validation images by what an
            independent judge reads in the prototypes: 82 % of SimpleCNN's and 94 % of
            the flatten-head ResNet5's, against 42 % and 58 % for the earlier ``tau``
            0.2 at the largest value (``docs/choosing.rst``).
    """

    normalization: str = "max_abs"
    threshold: float = DEFAULT_THRESHOLD
    binarized: bool = True
    scale_percentile: float | None = None

    def __post_init__(self) -> None:
        _check_normalization(self.normalization)
        if self.scale_percentile is None:
            default = DEFAULT_SCALE_PERCENTILE if self.normalization == "max_abs" else 100.0
            object.__setattr__(self, "scale_percentile", default)
        _check_threshold(self.threshold)
        if not isinstance(self.binarized, bool):
            raise TypeError(f"binarized must be a bool, got {type(self.binarized).__name__}")
        _check_percentile(self.scale_percentile, self.normalization)

    def __call__(self, update: Tensor, blank: Tensor | None = None) -> Tensor:
        return fill_transform(update, blank, transform=self)

    def __str__(self) -> str:
        text = f"{self.normalization}, " + (f"tau {self.threshold:g}" if self.binarized else "not binarized")
        if self.normalization != "max_abs":
            return text
        return f"{text}, scale " + ("max" if self.scale_percentile == 100 else f"p{self.scale_percentile:g}")


def resolve_transform(
    transform: TransformSetting | None = None,
    *,
    threshold: float | None = None,
    binarized: bool | None = None,
    normalization: str | None = None,
) -> TransformSetting:
    """The setting of ``T`` a call was given: ``transform``, or one built from the loose
    keywords.

    Every function that applies ``T`` takes either ``transform=`` or any of
    ``threshold``, ``binarized`` and ``normalization`` (a convenience for the same thing),
    and resolves them here once.

    Args:
        transform (TransformSetting, optional): the setting; returned as is.
            Default: None.
        threshold, binarized, normalization (optional): the fields of a
            :class:`TransformSetting`; those left ``None`` take its defaults.
            Default: None.

    Returns:
        TransformSetting: ``transform`` when given, else
        ``TransformSetting(**given_fields)``.

    Raises:
        TypeError: ``transform`` is given together with a loose keyword, or is not a
            ``TransformSetting``.
        ValueError: a loose value is out of range (as :class:`TransformSetting` checks).

    Examples::

        >>> resolve_transform(threshold=0.5)
        TransformSetting(normalization='max_abs', threshold=0.5, binarized=True, scale_percentile=100.0)
        >>> resolve_transform(TransformSetting("min_max")) == TransformSetting("min_max")
        True
    """
    given = {
        name: value
        for name, value in (("threshold", threshold), ("binarized", binarized), ("normalization", normalization))
        if value is not None
    }
    if transform is None:
        return TransformSetting(**given)
    if not isinstance(transform, TransformSetting):
        raise TypeError(
            f"transform must be a TransformSetting, got {type(transform).__name__}; e.g. "
            "transform=TransformSetting('max_abs', threshold=0.2)"
        )
    if given:
        raise TypeError(
            f"give transform= or threshold/binarized/normalization, not both: got transform={transform!r} "
            f"and {', '.join(f'{name}={value!r}' for name, value in given.items())}"
        )
    return transform


def signed_update(update: Tensor, blank: Tensor | None = None) -> tuple[Tensor, Tensor]:
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
    with one mean and std per channel, pass per-channel tensors: ``((0 - mean) / std,
    (1 - mean) / std)`` with ``mean`` and ``std`` of shape ``(C,)`` (taken as the
    channel dimension, ``values.shape[-3]``) or any shape that broadcasts against
    ``values``, such as ``(1, C, 1, 1)``.
    """
    if not isinstance(input_range, (tuple, list)) or len(input_range) != 2:
        raise ValueError(
            f"input_range must be a pair (background, ink) of numbers or tensors, got {type(input_range).__name__}"
        )
    background, ink = (range_end(end, values, which) for end, which in zip(input_range, ("background", "ink")))
    return background + values * (ink - background)


def range_end(end: float | Tensor, values: Tensor, which: str) -> float | Tensor:
    """One end of ``input_range``, shaped to broadcast to ``values`` (or a clear error)."""
    if not isinstance(end, Tensor):
        return end
    end = end.to(values.device, values.dtype)
    if end.dim() == 1 and end.numel() > 1:  # one value per channel
        if values.dim() < 3 or values.shape[-3] != end.numel():
            raise ValueError(
                f"input_range's {which} has {end.numel()} values, one per channel, but the images have "
                f"{values.shape[-3] if values.dim() >= 3 else 'no'} channels (shape {tuple(values.shape)}); "
                "give one value per channel of dimension -3, or a tensor that broadcasts, e.g. (1, C, 1, 1)"
            )
        return end.reshape(-1, 1, 1)
    while end.dim() > values.dim() and end.shape[0] == 1:  # (1, C, 1, 1) for one image (C, H, W)
        end = end[0]
    if not broadcasts_to(end.shape, values.shape):
        raise ValueError(
            f"input_range's {which} has shape {tuple(end.shape)}, which does not broadcast to the images' "
            f"shape {tuple(values.shape)}; give a number, one value per channel (C,), or e.g. (1, C, 1, 1)"
        )
    return end


def filled_image(
    masked_input: Tensor,
    update: Tensor,
    blank: Tensor,
    *,
    input_range: InputRange = (0.0, 1.0),
    transform: TransformSetting | None = None,
    threshold: float | None = None,
    binarized: bool | None = None,
    normalization: str | None = None,
) -> Tensor:
    """``M(x) + T(delta)``: the masked input with its blanks filled by the transformed update.

    Outside the blanks the result equals ``masked_input``; at the blanks it holds
    ``T(delta)`` mapped into ``input_range``. ``transform`` (or the loose ``threshold``,
    ``binarized`` and ``normalization``) is the setting of ``T``, as in
    :func:`fill_transform`.
    """
    setting = resolve_transform(transform, threshold=threshold, binarized=binarized, normalization=normalization)
    if masked_input.shape[0] != update.shape[0]:
        raise ValueError(
            f"masked_input and update must hold the same examples, got batch sizes "
            f"{masked_input.shape[0]} and {update.shape[0]}"
        )
    blank = _blank_like(update, blank)
    fill = to_input_range(fill_transform(update, blank, transform=setting), input_range)
    return torch.where(blank, fill, masked_input.to(fill.dtype))


def prototype(
    fill: Tensor,
    *,
    input_range: InputRange = (0.0, 1.0),
    transform: TransformSetting | None = None,
    threshold: float | None = None,
    binarized: bool | None = None,
    normalization: str | None = None,
) -> Tensor:
    """The class prototype of an example: ``T(fill)`` over every pixel, in input range.

    ``fill`` is what :meth:`MaskFill.attribute` returns; ``transform`` (or the loose
    ``threshold``, ``binarized`` and ``normalization``) is the setting of ``T``, as in
    :func:`fill_transform`. No pixel of the input survives.
    """
    setting = resolve_transform(transform, threshold=threshold, binarized=binarized, normalization=normalization)
    _check_batch(fill, "fill")
    return to_input_range(fill_transform(fill, None, transform=setting), input_range)
