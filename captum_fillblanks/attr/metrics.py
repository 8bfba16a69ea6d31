"""Consistency of the prototypes (paper section 4.3, Table 1).

Can the model recognise the images it filled in as the class it assigned? Each image is
rebuilt several ways (:data:`ROWS`), every rebuilt image is classified by the
same model, and accuracy, macro-average F1 and weighted-average F1 are reported in
percent against the row's reference label: ``y_0``, the label the model gave the
original image, or, for the paper's reading of the progressive row, ``y_k``, the label
it gave the last progressive step's masked input.

Results are kept as confusion matrices, which add exactly across shards of a data set
(:meth:`ConsistencyCounts.combine`), so a loop over test images can be split over
processes or ranks and merged afterwards.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from ._checks import check_positive_int
from ._distributed import all_reduce_sum, process_group_active
from .mask_fill import MaskFill
from .masks import apply_masks, random_patch_masks
from .progressive import ProgressiveMaskFill
from .transforms import InputRange, TransformSetting, filled_image, prototype

__all__ = [
    "classification_scores",
    "ConsistencyCounts",
    "consistency_counts",
    "rebuild_rows",
    "score_rows",
    "scoring_blank",
    "row_settings",
    "ROWS",
    "TRANSFORMED_ROWS",
]

#: The ways an image is rebuilt for the consistency table, with what each one is, and the
#: label it is scored against. The controls show how high the score is without any fill,
#: or with a model that learnt nothing. The progressive rows score one ``x_k`` two ways:
#: against ``y_k``, the prediction on the last step's masked input (the paper's reading:
#: is the rebuilt image recognised as the class it was rebuilt toward?), and against
#: ``y_0``, the label of ``x`` itself (recovery: did the rebuilt image keep its class?);
#: with per-step targets (the paper) or one fixed target ``y_0`` for every step.
ROWS = {
    "control": "M(x) alone: one random mask, no fill; against y_0",
    "paper-style": "M(x) + T(fill) with the same mask; against y_0",
    "strict": "T(fill) alone over all pixels (no pixel of x); against y_0",
    "progressive": "x_k of ProgressiveMaskFill, per-step targets, against y_k (the paper's reading)",
    "progressive, recovery": "the same x_k against y_0",
    "progressive, fixed target": "x_k with every step pushed toward y_0, against y_k",
    "progressive, fixed target, recovery": "the same x_k against y_0",
    "random-model control": "strict prototypes of a randomly initialized model of the "
    "same architecture, scored by the trained model; against y_0",
}

#: The rows whose rebuilt image goes through the transform ``T``, and so depend on its
#: setting (:class:`~captum_fillblanks.attr.transforms.TransformSetting`).
TRANSFORMED_ROWS = tuple(row for row in ROWS if row != "control")

RowSettings = TransformSetting | Mapping[str, TransformSetting]


def row_settings(transform: RowSettings = TransformSetting()) -> dict[str, TransformSetting]:
    """The setting of ``T`` of each transformed row: one for all, or a mapping per row.

    A mapping names rows of :data:`TRANSFORMED_ROWS`; the random-model control, a control
    for the strict row, takes the strict row's setting unless it is given its own, and
    any other row left out takes the default ``TransformSetting()``.

    Raises:
        ValueError: for a row name that is not transformed.
        TypeError: for anything but a ``TransformSetting`` or a mapping of them.
    """
    if isinstance(transform, TransformSetting):
        return dict.fromkeys(TRANSFORMED_ROWS, transform)
    if not isinstance(transform, Mapping):
        raise TypeError(
            "transform must be a TransformSetting or a mapping of row -> TransformSetting, "
            f"got {type(transform).__name__}"
        )
    unknown = sorted(set(transform) - set(TRANSFORMED_ROWS))
    if unknown:
        raise ValueError(f"transform: unknown rows {unknown}; expected some of {list(TRANSFORMED_ROWS)}")
    for row, setting in transform.items():
        if not isinstance(setting, TransformSetting):
            raise TypeError(f"transform for row {row!r} must be a TransformSetting, got {type(setting).__name__}")
    given = dict(transform)
    given.setdefault("random-model control", given.get("strict", TransformSetting()))
    return {row: given.get(row, TransformSetting()) for row in TRANSFORMED_ROWS}


def classification_scores(confusion: Tensor) -> dict[str, float]:
    """Accuracy, macro-average F1 and weighted-average F1, in percent, of a confusion
    matrix (``confusion[true, predicted]``), through scikit-learn's
    ``classification_report`` — the format of the paper's Table 1.

    Raises:
        TypeError: ``confusion`` is not a real Tensor.
        ValueError: it is not a square 2-D matrix, or holds negative or fractional counts.
    """
    from sklearn.metrics import classification_report

    _check_confusion(confusion)
    confusion = confusion.detach().cpu().long()
    n = confusion.shape[0]
    true = torch.arange(n).repeat_interleave(n)
    predicted = torch.arange(n).repeat(n)
    weight = confusion.reshape(-1)
    keep = weight > 0
    if not bool(keep.any()):
        raise ValueError("the confusion matrix is empty: no image was scored")
    report = classification_report(
        true[keep].numpy(),
        predicted[keep].numpy(),
        sample_weight=weight[keep].numpy(),
        labels=list(range(n)),
        output_dict=True,
        zero_division=0,
    )
    return {
        "accuracy": 100.0 * float(confusion.diag().sum()) / float(confusion.sum()),
        "macro_f1": 100.0 * report["macro avg"]["f1-score"],
        "weighted_f1": 100.0 * report["weighted avg"]["f1-score"],
    }


def _check_confusion(confusion: Any) -> None:
    if not isinstance(confusion, Tensor) or confusion.is_complex():
        given = f"dtype {confusion.dtype}" if isinstance(confusion, Tensor) else type(confusion).__name__
        raise TypeError(f"confusion must be a real Tensor of counts, got {given}")
    if confusion.dim() != 2 or confusion.shape[0] != confusion.shape[1] or confusion.shape[0] == 0:
        raise ValueError(
            f"confusion must be a square matrix of counts, confusion[true, predicted] of shape "
            f"(n_classes, n_classes), got shape {tuple(confusion.shape)}"
        )
    if bool((confusion < 0).any()):
        raise ValueError(f"confusion holds negative counts: {confusion[confusion < 0].tolist()[:8]}; counts are >= 0")
    if confusion.is_floating_point() and not bool((confusion == confusion.round()).all()):
        raise ValueError("confusion holds fractional counts (or NaN); it counts images, so it must hold whole numbers")


@dataclass
class ConsistencyCounts:
    """Confusion matrices (``[reference label, label the model gives the rebuilt image]``)
    per row of the consistency table. Add shards with :meth:`combine`."""

    n_classes: int
    confusion: dict[str, Tensor] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_positive_int("n_classes", self.n_classes)

    def add(self, row: str, reference: Tensor, predicted: Tensor) -> None:
        """Count images of ``row``: each image's reference label (``reference``: ``y_0``
        or ``y_k``) against the label the model gives the rebuilt one (``predicted``).

        Raises:
            TypeError: a label tensor is not a Tensor of integers.
            ValueError: they differ in length, or hold a label outside ``[0, n_classes)``.
        """
        for name, labels in (("reference", reference), ("predicted", predicted)):
            if not isinstance(labels, Tensor) or labels.is_floating_point() or labels.is_complex():
                given = f"dtype {labels.dtype}" if isinstance(labels, Tensor) else type(labels).__name__
                raise TypeError(f"{name} must be a Tensor of integer class labels, got {given}")
            if labels.dim() != 1:
                raise ValueError(f"{name} must hold one label per image, shape (N,), got {tuple(labels.shape)}")
            outside = labels[(labels < 0) | (labels >= self.n_classes)]
            if outside.numel():
                raise ValueError(
                    f"{name} holds labels {sorted(set(outside.tolist()))[:8]} outside [0, n_classes={self.n_classes}) "
                    f"(row {row!r}); give labels of {self.n_classes} classes, or n_classes of the model's output"
                )
        if reference.shape != predicted.shape:
            raise ValueError(
                f"reference and predicted must hold one label per image each, got {reference.shape[0]} and "
                f"{predicted.shape[0]} labels (row {row!r})"
            )
        flat = reference.cpu().long() * self.n_classes + predicted.cpu().long()
        counts = torch.bincount(flat, minlength=self.n_classes**2).reshape(self.n_classes, self.n_classes)
        self.confusion[row] = self.confusion.get(row, torch.zeros_like(counts)) + counts

    @classmethod
    def combine(cls, shards: Iterable[ConsistencyCounts]) -> ConsistencyCounts:
        """Add the confusion matrices of several shards: exactly the counts of one run."""
        shards = list(shards)
        if not shards:
            raise ValueError("shards is empty: give at least one ConsistencyCounts")
        if len({shard.n_classes for shard in shards}) != 1:
            raise ValueError(f"shards count different numbers of classes: {[shard.n_classes for shard in shards]}")
        total = cls(shards[0].n_classes)
        for shard in shards:
            for row, matrix in shard.confusion.items():
                total.confusion[row] = total.confusion.get(row, torch.zeros_like(matrix)) + matrix
        return total

    def all_reduce(self) -> ConsistencyCounts:
        """The counts of every rank added together, on every rank, when a
        ``torch.distributed`` process group is initialized (each rank scored its own
        images, e.g. from a ``DistributedSampler``); without one, the same counts.
        Every rank must call it. Returns a new object."""
        rows = {row for names in _gather_row_names(self.confusion) for row in names}
        order = [row for row in ROWS if row in rows] + sorted(rows - set(ROWS))
        total = ConsistencyCounts(self.n_classes)
        for row in order:
            matrix = self.confusion.get(row, torch.zeros(self.n_classes, self.n_classes, dtype=torch.long))
            total.confusion[row] = all_reduce_sum(matrix)
        return total

    def scores(self) -> dict[str, dict[str, float]]:
        """Per row, :func:`classification_scores` of its confusion matrix."""
        return {row: classification_scores(matrix) for row, matrix in self.confusion.items()}

    @property
    def n_images(self) -> int:
        """Images counted (per row; every row scores the same images)."""
        return int(next(iter(self.confusion.values())).sum()) if self.confusion else 0


def _gather_row_names(confusion: dict[str, Tensor]) -> list[list[str]]:
    """Every rank's row names (a rank that scored no images has none)."""
    if not process_group_active():
        return [list(confusion)]
    names: list = [None] * torch.distributed.get_world_size()
    torch.distributed.all_gather_object(names, list(confusion))
    return names


def consistency_counts(model: Callable, images: Tensor, *, n_classes: int, **rebuild: Any) -> ConsistencyCounts:
    """Score one shard of images on every row of :data:`ROWS`: :func:`rebuild_rows`,
    then :func:`score_rows`.

    Args:
        model (Callable): the classifier.
        images (Tensor): the shard's images.
        n_classes (int): number of classes.
        **rebuild: the keyword arguments of :func:`rebuild_rows` (``n_samples``,
            ``transform``, ``fill``, ``control_model``, ``seed``, ...).

    Raises:
        ValueError: ``n_classes`` is not the width of the model's output, checked on
            :func:`rebuild_rows`' first forward pass, before any image is rebuilt.
    """
    check_positive_int("n_classes", n_classes)
    return score_rows(model, rebuild_rows(model, images, n_classes=n_classes, **rebuild), n_classes)


def _check_width(outputs: Tensor, n_classes: int) -> None:
    """The model's output is class scores ``(N, n_classes)``."""
    if not isinstance(outputs, Tensor) or outputs.dim() != 2 or outputs.shape[1] != n_classes:
        shape = tuple(outputs.shape) if isinstance(outputs, Tensor) else type(outputs).__name__
        raise ValueError(
            f"n_classes={n_classes} does not fit the model, whose output has shape {shape}: the table counts "
            f"one label of n_classes per image, so give n_classes = the model's number of classes "
            "(its output's width)"
        )


def score_rows(model: Callable, rebuilt: Mapping[str, tuple[Tensor, Tensor]], n_classes: int) -> ConsistencyCounts:
    """Classify each row's rebuilt images with ``model`` and count them against the
    row's reference labels (``rebuilt``: row -> (images, labels), as
    :func:`rebuild_rows` gives).

    Raises:
        ValueError: ``n_classes`` is not a positive int or not the width of the model's
            output.
    """
    counts = ConsistencyCounts(n_classes)
    with torch.no_grad():
        for row, (batch, label) in rebuilt.items():
            outputs = model(batch.clone())  # a model that works in place leaves the caller's images alone
            _check_width(outputs, n_classes)
            counts.add(row, label, outputs.argmax(1))
    return counts


def scoring_blank(images: Tensor, *, mask_ratio: float = 0.25, patch_size: int = 2, seed: int = 0) -> Tensor:
    """The one random mask the control and paper-style rows use, as a blank indicator
    shaped like ``images`` (``True`` = blank): the first mask of ``seed``, the same for
    every image of the shard."""
    mask = random_patch_masks(
        1,
        images.shape[-2],
        images.shape[-1],
        mask_ratio=mask_ratio,
        patch_size=patch_size,
        generator=torch.Generator().manual_seed(seed),
    )[0].to(images.device)
    return (mask == 0).expand_as(images)


def rebuild_rows(
    model: Callable,
    images: Tensor,
    *,
    n_samples: int = 1000,
    mask_ratio: float = 0.25,
    patch_size: int = 2,
    n_steps: int = 4,
    transform: RowSettings = TransformSetting(),
    input_range: InputRange = (0.0, 1.0),
    baselines: float | Tensor = 0.0,
    control_model: Callable | None = None,
    control_samples: int | None = None,
    internal_batch_size: int | None = None,
    max_draws: int | None = None,
    seed: int = 0,
    show_progress: bool = False,
    fill: Tensor | None = None,
    control_fill: Tensor | None = None,
    rows: Collection[str] | None = None,
    n_classes: int | None = None,
    blank: Tensor | None = None,
) -> dict[str, tuple[Tensor, Tensor]]:
    """The images of each row of :data:`ROWS`, rebuilt, with the labels they are scored
    against: row -> ``(rebuilt images, reference labels)``.

    The label ``y_0`` of each image is the model's prediction on the image itself
    (MaskFill's ``target=None``); the progressive rows are also scored against ``y_k``
    (:data:`ROWS`). ``control_model`` (a randomly initialized model of the same
    architecture) adds the random-model control row, with ``control_samples`` masks per
    image (default: ``n_samples``; it is a baseline, fewer do). ``fill`` reuses fills
    the caller already computed with :class:`MaskFill` (``target=None``) for these
    images, and ``control_fill`` the control model's (``target`` = the trained model's
    predictions, ``selection="all"``); either makes the scoring cheap to repeat for other
    settings of ``T``. ``transform`` is one
    :class:`~captum_fillblanks.attr.transforms.TransformSetting` for every transformed row or
    one per row (:func:`row_settings`). ``baselines`` is what a blank holds, as in
    :meth:`MaskFill.attribute`. ``max_draws`` bounds the draws of the trained
    model's fill (MaskFill's default: ``10 * n_samples``). ``rows`` rebuilds only those
    rows (default: all; the random-model control needs ``control_model`` or
    ``control_fill``). ``n_classes``, when given, is checked against the width of the
    model's output on the first forward pass, before any fill. ``blank`` gives the
    scoring masks of the control and paper-style rows as a bool tensor shaped like
    ``images`` (``True`` = blank), e.g. one independent mask per image, so that each
    image's score does not share its mask with the rest of the shard (default: the first
    mask of ``seed`` for every image, :func:`scoring_blank`). Everything goes through
    the public API (:class:`MaskFill`, :class:`ProgressiveMaskFill`, the transforms).
    """
    wanted = set(ROWS) if rows is None else set(rows)
    unknown = sorted(wanted - set(ROWS))
    if unknown:
        raise ValueError(f"rows: unknown rows {unknown}; expected some of {list(ROWS)}")
    settings = row_settings(transform)
    with torch.no_grad():
        outputs = model(images.clone())  # a model that works in place leaves images alone
    if n_classes is not None:
        _check_width(outputs, n_classes)
    reference = outputs.argmax(1)
    if blank is None:
        blank = scoring_blank(images, mask_ratio=mask_ratio, patch_size=patch_size, seed=seed)
    elif not isinstance(blank, Tensor) or blank.dtype != torch.bool or blank.shape != images.shape:
        raise ValueError(
            f"blank must be a bool tensor shaped like images {tuple(images.shape)} (True = blank), got "
            f"{getattr(blank, 'dtype', type(blank).__name__)} {tuple(getattr(blank, 'shape', ()))}"
        )
    blank = blank.to(images.device)
    masked = apply_masks(images, blank, baselines)
    if fill is None and wanted & {"paper-style", "strict"}:
        fill = MaskFill(model).attribute(
            images,
            baselines=baselines,
            n_samples=n_samples,
            mask_ratio=mask_ratio,
            patch_size=patch_size,
            seed=seed,
            internal_batch_size=internal_batch_size,
            show_progress=show_progress,
            max_draws=max_draws,
        )
    rebuilt: dict[str, tuple[Tensor, Tensor]] = {}
    if "control" in wanted:
        rebuilt["control"] = (masked, reference)
    if "paper-style" in wanted:
        paper_style = filled_image(masked, fill, blank, input_range=input_range, transform=settings["paper-style"])
        rebuilt["paper-style"] = (paper_style, reference)
    if "strict" in wanted:
        rebuilt["strict"] = (prototype(fill, input_range=input_range, transform=settings["strict"]), reference)
    progressive = ProgressiveMaskFill(model)
    runs: dict[tuple[TransformSetting, bool], tuple[Tensor, Tensor]] = {}
    for fixed, name in ((False, "progressive"), (True, "progressive, fixed target")):
        for row, label in ((name, "last"), (f"{name}, recovery", "first")):
            if row not in wanted:
                continue
            key = (settings[row], fixed)
            if key not in runs:  # rows that share a setting share the run
                x_k = progressive.attribute(
                    images,
                    target=reference if fixed else None,
                    baselines=baselines,
                    n_steps=n_steps,
                    patch_size=patch_size,
                    input_range=input_range,
                    seed=seed,
                    internal_batch_size=internal_batch_size,
                    transform=settings[row],
                )
                runs[key] = (x_k, progressive.steps.labels[-1])
            x_k, y_k = runs[key]
            rebuilt[row] = (x_k, y_k if label == "last" else reference)
    if "random-model control" in wanted:
        if control_model is not None and control_fill is None:
            control_fill = MaskFill(control_model).attribute(
                images,
                target=reference,
                baselines=baselines,
                selection="all",
                n_samples=control_samples or n_samples,
                mask_ratio=mask_ratio,
                patch_size=patch_size,
                seed=seed,
                internal_batch_size=internal_batch_size,
            )
        if control_fill is not None:
            control = prototype(control_fill, input_range=input_range, transform=settings["random-model control"])
            rebuilt["random-model control"] = (control, reference)
    return rebuilt
