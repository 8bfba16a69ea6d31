"""The "global" view: the mean fill of all images of each class (paper Fig. 2)."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch
from torch import Tensor

from ...attr._distributed import all_reduce_sum
from ...attr.mask_fill import MaskFill

__all__ = ["class_prototypes", "add_per_class"]


def class_prototypes(
    model: Callable,
    batches: Iterable[tuple[Tensor, Tensor]],
    n_classes: int,
    **attribute_kwargs,
) -> tuple[Tensor, Tensor]:
    """The "global" view: the average fill of all images of each class.

    In a ``torch.distributed`` run (a process group initialized, e.g. under torchrun),
    pass each rank its part of the data (a ``DataLoader`` with a
    ``DistributedSampler``): the sums and counts are added over all ranks, and every
    rank gets the prototypes of the whole data set. Every rank must call it. Note that
    ``DistributedSampler`` pads the data set with repeated images to a multiple of the
    number of ranks unless ``drop_last=True``; the repeats are counted like any image.
    Without a process group nothing is reduced.

    Args:
        model (Callable): the classifier.
        batches (iterable of (images, labels)): e.g. a ``DataLoader``.
        n_classes (int): number of classes.
        **attribute_kwargs: passed to :meth:`MaskFill.attribute` (``n_samples``,
            ``seed``, ...); ``target`` is each image's label.

    Returns:
        (Tensor, Tensor): ``(n_classes, *image_shape)`` mean fill per class (zero for a
        class without images; float64, on the CPU) and ``(n_classes,)`` image counts.
        Show them with :func:`captum_fillblanks.attr.transforms.prototype`.
    """
    sums, counts = None, torch.zeros(n_classes, dtype=torch.long)
    method = MaskFill(model)
    for images, labels in batches:
        fill = method.attribute(images, target=labels.to(images.device), **attribute_kwargs)
        sums = add_per_class(sums, fill, labels, n_classes)
        counts += torch.bincount(labels.cpu(), minlength=n_classes)
    if sums is None:
        raise ValueError("batches gave no images; class_prototypes needs at least one batch (on every rank)")
    sums, counts = all_reduce_sum(sums), all_reduce_sum(counts)
    return sums / counts.clamp(min=1).reshape(-1, *([1] * (sums.dim() - 1))), counts


def add_per_class(sums: Tensor | None, fill: Tensor, labels: Tensor, n_classes: int) -> Tensor:
    """``sums`` (float64, on the CPU; ``None``: zeros) plus each fill added to its
    label's row."""
    fill = fill.detach().cpu().double()
    if sums is None:
        sums = torch.zeros(n_classes, *fill.shape[1:], dtype=torch.float64)
    return sums.index_add_(0, labels.cpu(), fill)
