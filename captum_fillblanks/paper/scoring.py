"""How the kit scores a fill, image by image: one module for the image reproduction, the
mask study and the text report.

- the scoring masks: one per image (:func:`per_image_blanks`) or per text
  (:func:`per_text_blanks`), seeded by the item's own index, so that an item's score does
  not depend on its shard or batch and every item is an independent unit;
- the per-image columns of a reproduction (:func:`image_columns`);
- the error bars: a bootstrap over those units (:func:`resamples`, :func:`bootstrap`,
  :func:`standard_error`), seeded, so that a rescored report is identical;
- the two displays the reports use (:data:`DEFAULT_T`, :data:`MAX_SCALED_T`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from ..attr.masks import n_blank_units
from ..attr.metrics import scoring_blank
from ..attr.readability import inpainting_agreement
from ..attr.transforms import TransformSetting

if TYPE_CHECKING:
    from .reproduce.config import RunConfig

__all__ = [
    "DEFAULT_T",
    "MAX_SCALED_T",
    "SCORING_SEED_OFFSET",
    "N_RESAMPLES",
    "scoring_seed",
    "per_image_blanks",
    "per_text_blanks",
    "image_columns",
    "resamples",
    "bootstrap",
    "standard_error",
]

#: The transforms of the reports: the package's default ``T`` (``TransformSetting()``,
#: chosen on validation by what a reader sees) and, beside it, tau 0.2 with the fill
#: scaled by its largest value (the reports call it "earlier T": the package's default
#: before the choice).
DEFAULT_T, MAX_SCALED_T = TransformSetting(), TransformSetting(threshold=0.2, scale_percentile=100.0)

#: Offset of the per-image scoring masks' seeds from the run's seed (apart from the
#: fills' shard seeds and the validation's).
SCORING_SEED_OFFSET = 3 * 10**6

#: Resamples of the images (or texts) behind every standard error of a report.
N_RESAMPLES = 1000


def scoring_seed(config: RunConfig, index: int) -> int:
    """The seed of the ``index``-th test image's scoring masks: ``seed + 3,000,000 +
    index`` (``config`` gives the run's ``seed``)."""
    return config.seed + SCORING_SEED_OFFSET + index


def per_image_blanks(images: Tensor, config: RunConfig, first: int = 0) -> Tensor:
    """One scoring mask per image, the first mask of :func:`scoring_seed` for the
    ``i``-th test image (``images`` start at test image ``first``; ``config`` gives the
    run's ``seed`` and ``masks``): each image's score is independent of the others', and
    an image has the same mask in every shard layout, in the mask study and in
    ``reproduce``."""
    return torch.cat(
        [
            scoring_blank(images[i : i + 1], seed=scoring_seed(config, first + i), **config.masks)
            for i in range(len(images))
        ]
    )


def per_text_blanks(attention: Tensor, indices: Sequence[int], seed: int, mask_ratio: float = 0.25) -> Tensor:
    """One scoring mask per text: ``(B, L)`` bool, ``n_blank_units(n_real, mask_ratio)``
    of each text's real tokens, chosen by a generator seeded by ``seed`` and the text's
    index in its split (``indices``), so a text's mask does not depend on its batch."""
    blanks = torch.zeros(attention.shape, dtype=torch.bool)
    for row, index in enumerate(indices):
        real = attention[row].bool().nonzero().squeeze(1).cpu()
        generator = torch.Generator().manual_seed(seed * 1_000_003 + int(index))
        chosen = real[torch.randperm(len(real), generator=generator)[: n_blank_units(len(real), mask_ratio)]]
        blanks[row, chosen] = True
    return blanks.to(attention.device)


def image_columns(
    model: Callable,
    judge: Callable,
    images: Tensor,
    fill: Tensor,
    predicted: Tensor,
    rebuilt: dict[str, tuple[Tensor, Tensor]],
) -> dict[str, Tensor]:
    """Per image (float64 on the CPU): for each row of ``rebuilt``
    (:func:`~captum_fillblanks.attr.metrics.rebuild_rows`), ``"model: ROW"``, 1 where the
    model gives the rebuilt image the row's label, and ``"judge: ROW"``, 1 where
    ``judge`` (another architecture, trained separately, on the CPU) gives it
    ``predicted``, the model's label ``y_0`` of the image (saved with the fills); and
    ``"auc"`` and ``"iou"``, the inpainting agreement of ``fill`` with the image's own
    ink (the IoU of :data:`DEFAULT_T`)."""
    columns = {}
    y_0 = predicted.cpu()
    with torch.no_grad():
        for row, (batch, label) in rebuilt.items():
            columns[f"model: {row}"] = (model(batch.clone()).argmax(1).cpu() == label.cpu()).double()
            columns[f"judge: {row}"] = (judge(batch.cpu()).argmax(1) == y_0).double()
    agreement = inpainting_agreement(fill.cpu().float(), images.cpu(), transform=DEFAULT_T)
    columns["auc"], columns["iou"] = agreement.auc, agreement.iou
    return columns


@functools.lru_cache(maxsize=4)
def resamples(n: int, n_resamples: int = N_RESAMPLES, seed: int = 0) -> Tensor:
    """``(n_resamples, n)`` indices: resamples of ``n`` units with replacement, drawn
    from ``seed`` (drawn once per report: do not change the tensor in place); the same
    resamples for two columns give the error of their difference."""
    return torch.randint(n, (n_resamples, n), generator=torch.Generator().manual_seed(seed))


def _summary(values: Tensor, mean: bool) -> Tensor:
    """Over the last dimension of ``values``: the mean in percent, or the median (NaN
    left out)."""
    return 100.0 * values.mean(-1) if mean else values.nanmedian(-1).values


def bootstrap(values: Tensor, mean: bool, resamples: Tensor) -> tuple[float, Tensor]:
    """The summary of per-unit ``values`` ``(N,)`` (the mean in percent, or with
    ``mean=False`` the median, NaN left out) and its value on each resample of
    ``resamples`` ``(R, N)`` (their standard deviation is the standard error)."""
    return float(_summary(values, mean)), _summary(values[resamples], mean)


def standard_error(values: Tensor, median: bool = False) -> float:
    """The bootstrap standard error of the mean (or ``median``, NaN left out) of per-unit
    ``values``: the standard deviation of it over :data:`N_RESAMPLES` resamples
    (:func:`resamples` from seed 0, so the same values give the same error)."""
    _, spread = bootstrap(values.double(), not median, resamples(len(values)))
    spread = spread[~spread.isnan()]  # a resample of NaN only has no median
    return float(spread.std()) if median else float(spread.std()) / 100  # bootstrap's means are in percent
