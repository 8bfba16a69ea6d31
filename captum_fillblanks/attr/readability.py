"""Readability: does the picture show what the consistency table claims?

The consistency rows (:mod:`~captum_fillblanks.attr.metrics`) ask the model that made a
fill whether it recognises it, so a fill can pass them and still be unreadable to a
person. The checks here do not ask that model about its own fill:

- **Inpainting agreement** (the paper's criterion, section 3.2: the filled patches
  should align with the unmasked structure): per image, the ROC AUC of the expected fill
  as a score for the image's own ink, and the IoU of the binarized prototype with that
  ink (:func:`inpainting_agreement`).
- **An independent judge**: prototypes classified by another model, trained separately
  on the same data (:func:`judge_accuracy`). A fill that only fools its own model is not
  a prototype.
- **Wrong-target control**: each image filled toward a randomly chosen wrong class and
  scored paper-style against that class (:func:`wrong_target_control`). If it scores
  high, the paper-style row measures an adversarial push, not a prototype.

All functions take a batch and return per-image values (or a rate over the batch);
medians and rates over a data set are the caller's.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import torch
from torch import Tensor

from .mask_fill import MaskFill
from .masks import apply_masks
from .metrics import scoring_blank
from .transforms import InputRange, TransformSetting, filled_image, prototype, to_input_range

__all__ = [
    "roc_auc",
    "intersection_over_union",
    "ink",
    "InpaintingAgreement",
    "inpainting_agreement",
    "judge_accuracy",
    "wrong_targets",
    "wrong_target_control",
    "ReadabilitySummary",
    "readability_summary",
]


def _per_example(values: Tensor, name: str) -> Tensor:
    if not isinstance(values, Tensor) or values.dim() < 1 or values.shape[0] == 0:
        raise ValueError(f"{name} must be a tensor with a non-empty batch dimension, got {values!r:.60}")
    return values.reshape(values.shape[0], -1)


def roc_auc(scores: Tensor, positives: Tensor) -> Tensor:
    """Per example, the area under the ROC curve of ``scores`` as a predictor of
    ``positives``: the probability that a random positive position scores higher than a
    random negative one, ties counting one half (the Mann-Whitney U statistic over
    ``n_pos * n_neg``).

    Args:
        scores (Tensor): ``(batch, ...)`` real scores.
        positives (Tensor): bool, the same shape: which positions are positive.

    Returns:
        Tensor: ``(batch,)`` float64 in ``[0, 1]``; NaN for an example with no positive or
        no negative position (the AUC is not defined there), or with a NaN score (it
        cannot be ranked).
    """
    scores, positives = _per_example(scores, "scores"), _per_example(positives, "positives")
    if scores.shape != positives.shape or positives.dtype != torch.bool:
        raise ValueError(
            f"positives must be a bool tensor shaped like scores {tuple(scores.shape)}, got "
            f"{positives.dtype} {tuple(positives.shape)}"
        )
    scores = scores.detach().double().cpu()
    positives = positives.cpu()
    result = torch.full((scores.shape[0],), float("nan"), dtype=torch.float64)
    for i, (row, positive) in enumerate(zip(scores, positives)):
        n_pos, n_neg = int(positive.sum()), int((~positive).sum())
        if n_pos == 0 or n_neg == 0 or bool(row.isnan().any()):
            continue
        # average ranks (1-based), ties sharing the mean of their ranks
        values, inverse, counts = torch.unique(row, return_inverse=True, return_counts=True)
        last = counts.cumsum(0).double()
        mean_rank = last - (counts.double() - 1) / 2
        ranks = mean_rank[inverse]
        u = ranks[positive].sum() - n_pos * (n_pos + 1) / 2
        result[i] = u / (n_pos * n_neg)
    return result


def intersection_over_union(predicted: Tensor, truth: Tensor) -> Tensor:
    """Per example, ``|predicted & truth| / |predicted | truth|`` of two bool tensors of
    the same shape ``(batch, ...)``; NaN where both are empty."""
    predicted, truth = _per_example(predicted, "predicted"), _per_example(truth, "truth")
    if predicted.shape != truth.shape or predicted.dtype != torch.bool or truth.dtype != torch.bool:
        raise ValueError(
            f"predicted and truth must be bool tensors of one shape, got {predicted.dtype} "
            f"{tuple(predicted.shape)} and {truth.dtype} {tuple(truth.shape)}"
        )
    both = (predicted & truth).sum(1).double()
    either = (predicted | truth).sum(1).double()
    return torch.where(either > 0, both / either.clamp(min=1), torch.full_like(both, float("nan"))).cpu()


def ink(images: Tensor, *, threshold: float = 0.5, input_range: InputRange = (0.0, 1.0)) -> Tensor:
    """Where an image has ink: its value, mapped from ``input_range`` to ``[0, 1]``
    (background 0, ink 1) and averaged over channels, above ``threshold``. Returns a bool
    ``(batch, 1, H, W)`` tensor for ``(batch, C, H, W)`` images.

    For MNIST the strokes are ink (``x > 0.5``). For Fashion-MNIST, whose garments are
    lighter than the black background, the same rule marks the bright parts of a garment;
    pass a lower ``threshold`` (e.g. 0.1) to mark its whole silhouette.
    """
    if not isinstance(threshold, (int, float)) or isinstance(threshold, bool) or not 0 <= threshold < 1:
        raise ValueError(f"threshold must be a number in [0, 1), got {threshold!r}")
    if not isinstance(images, Tensor) or images.dim() != 4:
        raise ValueError(f"images must be a (batch, C, H, W) tensor, got {getattr(images, 'shape', images)!r}")
    background, full = to_input_range(torch.zeros(()), input_range), to_input_range(torch.ones(()), input_range)
    if not bool((torch.as_tensor(full) != torch.as_tensor(background)).all()):
        raise ValueError(
            f"input_range must give ink a value other than the background, got {input_range!r}: "
            "every image would be all ink or no ink"
        )
    unit = (images - background) / (full - background)
    return unit.mean(1, keepdim=True) > threshold


class InpaintingAgreement(NamedTuple):
    """Per image: ``auc``, the ROC AUC of the fill (summed over channels) as a score for
    the image's ink; ``iou``, the IoU of the prototype's ink with the image's."""

    auc: Tensor
    iou: Tensor


def inpainting_agreement(
    fill: Tensor,
    images: Tensor,
    *,
    transform: TransformSetting = TransformSetting(),
    ink_threshold: float = 0.5,
    input_range: InputRange = (0.0, 1.0),
) -> InpaintingAgreement:
    """Does the fill draw the image's own structure? (The paper's section 3.2 criterion.)

    ``auc``: the expected fill at every position (summed over channels) as a score for
    the image's ink (:func:`ink`): 1 when every ink position gets a larger fill than
    every background one, 0.5 for a fill that knows nothing of the image. ``iou``: the
    prototype ``T(fill)`` (``transform``; one not binarized is read as ink above 0.5)
    against the same ink.

    Args:
        fill (Tensor): ``(batch, C, H, W)`` fills, as :class:`MaskFill` returns them
            (``selection="all"`` measures the model, not its selection).
        images (Tensor): the images they fill, same shape.
        transform (TransformSetting): the setting of ``T`` for the prototype.
            Default: ``TransformSetting()``.
        ink_threshold (float): what counts as ink, as in :func:`ink`. Default: 0.5.
        input_range (pair): the images' (background, ink) values. Default: (0, 1).

    Returns:
        InpaintingAgreement: ``auc`` and ``iou``, ``(batch,)`` float64 each (NaN for an
        image with no ink, or all ink).
    """
    if not isinstance(fill, Tensor) or not isinstance(images, Tensor) or fill.shape != images.shape:
        raise ValueError(
            f"fill and images must be tensors of one shape, got {getattr(fill, 'shape', fill)!r} and "
            f"{getattr(images, 'shape', images)!r}"
        )
    truth = ink(images, threshold=ink_threshold, input_range=input_range)
    auc = roc_auc(fill.sum(1, keepdim=True), truth)
    drawn = prototype(fill, transform=transform).mean(1, keepdim=True) > 0.5
    iou = intersection_over_union(drawn, truth)
    inked = truth.flatten(1).double().mean(1).cpu()
    iou = torch.where((inked > 0) & (inked < 1), iou, torch.full_like(iou, float("nan")))
    return InpaintingAgreement(auc, iou)


def judge_accuracy(judge: Callable, prototypes: Tensor, labels: Tensor) -> float:
    """The percentage of ``prototypes`` that ``judge`` (a classifier other than the one
    that made them, trained separately on the same data) gives their ``labels``."""
    if not isinstance(labels, Tensor) or labels.dim() != 1 or len(labels) != len(prototypes):
        raise ValueError(
            f"labels must be a (batch,) tensor, one per prototype ({len(prototypes)}), got "
            f"{getattr(labels, 'shape', labels)!r}"
        )
    with torch.no_grad():
        scores = judge(prototypes)
    if not isinstance(scores, Tensor):
        raise TypeError(f"judge must return a Tensor of class scores, got {type(scores).__name__}")
    if scores.dim() != 2 or scores.shape[0] != len(prototypes) or scores.shape[1] < 2:
        raise ValueError(
            f"judge must return (batch, classes) scores, one row per prototype ({len(prototypes)}) and at least "
            f"two classes, got shape {tuple(scores.shape)}"
        )
    if bool(((labels < 0) | (labels >= scores.shape[1])).any()):
        raise ValueError(
            f"labels must be classes of the judge, 0 to {scores.shape[1] - 1}, got {sorted(set(labels.tolist()))[:10]}"
        )
    return 100.0 * float((scores.argmax(1).cpu() == labels.cpu()).double().mean())


def wrong_targets(labels: Tensor, n_classes: int, *, seed: int = 0) -> Tensor:
    """For each label, a class drawn uniformly from the other ``n_classes - 1`` (seeded,
    on the CPU): the same targets for the same labels and seed."""
    if isinstance(n_classes, bool) or not isinstance(n_classes, int) or n_classes < 2:
        raise ValueError(f"n_classes must be an int >= 2, got {n_classes!r}")
    labels = labels.cpu().long()
    if bool(((labels < 0) | (labels >= n_classes)).any()):
        raise ValueError(f"labels must lie in [0, {n_classes}), got {sorted(set(labels.tolist()))}")
    offset = torch.randint(1, n_classes, labels.shape, generator=torch.Generator().manual_seed(seed))
    return (labels + offset) % n_classes


def wrong_target_control(
    model: Callable,
    images: Tensor,
    *,
    n_classes: int,
    n_samples: int = 1000,
    mask_ratio: float = 0.25,
    patch_size: int = 2,
    transform: TransformSetting = TransformSetting(),
    input_range: InputRange = (0.0, 1.0),
    baselines: float | Tensor = 0.0,
    seed: int = 0,
) -> tuple[float, Tensor]:
    """Fill each image toward a wrong class and score the paper-style image against it.

    Each image gets a target drawn from the classes the model does not give it
    (:func:`wrong_targets`, ``seed``); :class:`MaskFill` fills it toward that target with
    ``selection="all"`` (the model seldom predicts a wrong class on a masked copy, so
    ``"correct"`` would keep almost nothing), and ``M(x) + T(fill)`` is built with the
    mask the paper-style row uses (:func:`~captum_fillblanks.attr.metrics.scoring_blank`,
    ``seed``). A fill that draws a prototype of the target changes few pixels of ``M(x)``
    and should rarely turn the image into the wrong class; a high rate means the
    paper-style row measures an adversarial push.

    Returns:
        (float, Tensor): the percentage of images the model gives their wrong target,
        and the targets ``(batch,)``.
    """
    with torch.no_grad():
        scores = model(images)
    if not isinstance(scores, Tensor) or scores.dim() != 2:
        raise ValueError("model must return (batch, classes) scores for the wrong-target control")
    if n_classes != scores.shape[1]:
        raise ValueError(
            f"n_classes={n_classes!r} but the model gives {scores.shape[1]} class scores: the wrong targets are "
            "drawn among the model's own classes"
        )
    targets = wrong_targets(scores.argmax(1), n_classes, seed=seed).to(images.device)
    fill = MaskFill(model).attribute(
        images,
        target=targets,
        baselines=baselines,
        selection="all",
        n_samples=n_samples,
        mask_ratio=mask_ratio,
        patch_size=patch_size,
        seed=seed,
    )
    blank = scoring_blank(images, mask_ratio=mask_ratio, patch_size=patch_size, seed=seed)
    pushed = filled_image(
        apply_masks(images, blank, baselines), fill, blank, input_range=input_range, transform=transform
    )
    with torch.no_grad():
        hits = model(pushed).argmax(1) == targets
    return 100.0 * float(hits.double().mean()), targets


class ReadabilitySummary(NamedTuple):
    """The readability checks of a set of fills, summarized over its images:
    ``auc`` and ``iou``, the medians of :func:`inpainting_agreement`; ``judge``, the
    percentage of prototypes the judge gives the model's label; ``wrong_target``, the
    percentage of :func:`wrong_target_control` (``None`` where not run)."""

    auc: float
    iou: float
    judge: float
    wrong_target: float | None


def readability_summary(
    model: Callable,
    judge: Callable,
    images: Tensor,
    fill: Tensor,
    *,
    n_classes: int,
    transform: TransformSetting = TransformSetting(),
    wrong_target_samples: int | None = 300,
    mask_ratio: float = 0.25,
    patch_size: int = 2,
    ink_threshold: float = 0.5,
    input_range: InputRange = (0.0, 1.0),
    seed: int = 0,
) -> ReadabilitySummary:
    """Every readability check of ``fill`` (``images``' fills by ``model``, as
    :class:`MaskFill` returns them), summarized: the median inpainting AUC and IoU, the
    judge's reading of the prototypes ``T(fill)`` (``transform``) against ``model``'s
    label of each image, and the wrong-target control with ``wrong_target_samples``
    masks per image (``None``: not run; it fills every image again).

    A random-init model's summary beside a trained one's is the scale to read it on.
    """
    if wrong_target_samples is not None and (
        isinstance(wrong_target_samples, bool) or not isinstance(wrong_target_samples, int) or wrong_target_samples < 1
    ):
        raise ValueError(f"wrong_target_samples must be an int >= 1 or None, got {wrong_target_samples!r}")
    agreement = inpainting_agreement(
        fill, images, transform=transform, ink_threshold=ink_threshold, input_range=input_range
    )
    with torch.no_grad():
        labels = model(images).argmax(1)
    judged = judge_accuracy(judge, prototype(fill, transform=transform, input_range=input_range), labels)
    wrong = None
    if wrong_target_samples is not None:
        wrong, _ = wrong_target_control(
            model,
            images,
            n_classes=n_classes,
            n_samples=wrong_target_samples,
            mask_ratio=mask_ratio,
            patch_size=patch_size,
            transform=transform,
            input_range=input_range,
            seed=seed,
        )
    return ReadabilitySummary(float(agreement.auc.nanmedian()), float(agreement.iou.nanmedian()), judged, wrong)
