"""The mask study's scores and error bars: Table 1's fill rows and the readability
checks as a function of the kept masks per image, and under ``tolerance``.

Every image is scored under its own mask (seeded by the image), and every error bar is a
bootstrap over images: the same resamples at every count, so the change from the
largest count has its own (paired) error bar.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from ...attr.masks import apply_masks
from ...attr.readability import inpainting_agreement, intersection_over_union
from ...attr.transforms import filled_image, prototype
from ..reproduce.config import RunConfig
from ..scoring import DEFAULT_T, MAX_SCALED_T, N_RESAMPLES, bootstrap, per_image_blanks, resamples
from .fills import STUDY_COUNTS, STUDY_TOLERANCES, stopped_by_tolerance

__all__ = [
    "STUDY_COLUMNS",
    "image_scores",
    "StudyRow",
    "study_rows",
    "Summary",
    "summarize",
    "study_table",
]

#: The study's columns: per-image values, and whether the summary is a mean in percent
#: (``True``) or a median.
STUDY_COLUMNS = {
    "paper-style": ("paper-style M(x) + T(fill), % against y_0", True),
    "strict": ("strict T(fill), % against y_0", True),
    "judge": ("judge reads T(fill), %", True),
    "judge, earlier T": ("judge reads T(fill) with the earlier T, %", True),
    "auc": ("median inpainting AUC", False),
    "iou": ("median IoU of T(fill) with the ink", False),
    "iou, earlier T": ("median IoU with the ink, earlier T", False),
    "same as largest": ("median IoU of T(fill) with the largest count's", False),
}


def image_scores(
    model: Callable,
    judge: Callable,
    images: Tensor,
    fill: Tensor,
    predicted: Tensor,
    blanks: Tensor,
    reference: Tensor,
) -> dict[str, Tensor]:
    """Per image, each column of :data:`STUDY_COLUMNS` for ``fill`` (``reference``: the
    prototypes of the largest count, for the last column)."""
    with torch.no_grad():
        pasted = filled_image(apply_masks(images, blanks), fill, blanks, transform=DEFAULT_T)
        drawn, earlier = prototype(fill, transform=DEFAULT_T), prototype(fill, transform=MAX_SCALED_T)
        agreement = inpainting_agreement(fill, images, transform=DEFAULT_T)
        return {
            "paper-style": (model(pasted).argmax(1) == predicted).double(),
            "strict": (model(drawn).argmax(1) == predicted).double(),
            "judge": (judge(drawn).argmax(1) == predicted).double(),
            "judge, earlier T": (judge(earlier).argmax(1) == predicted).double(),
            "auc": agreement.auc,
            "iou": agreement.iou,
            "iou, earlier T": inpainting_agreement(fill, images, transform=MAX_SCALED_T).iou,
            "same as largest": intersection_over_union(drawn > 0.5, reference > 0.5),
        }


@dataclass
class StudyRow:
    """One row of the study: ``label``, the kept draws per image, which images reached
    the tolerance (``None`` for a fixed count), their relative errors and the per-image
    scores of every column."""

    label: str
    n_kept: Tensor
    converged: Tensor | None
    relative_error: Tensor
    scores: dict[str, Tensor]


def study_rows(
    model: Callable,
    judge: Callable,
    images: Tensor,
    study: dict[str, Tensor],
    config: RunConfig,
    blanks: Tensor | None = None,
):
    """The rows of the study: each count of :data:`STUDY_COUNTS` it recorded, then each
    tolerance and cap of :data:`STUDY_TOLERANCES` (a cap the study did not record, or
    not below its own, is left out). ``blanks``: the scoring masks, if the caller has
    them already (default: :func:`per_image_blanks`)."""
    counts = study["counts"].tolist()
    predicted = study["predicted"]
    blanks = per_image_blanks(images, config) if blanks is None else blanks
    reference = prototype(study["fill"][-1], transform=DEFAULT_T)
    rows = []
    for count in [c for c in counts if c in STUDY_COUNTS or c == counts[-1]]:
        k = counts.index(count)
        scores = image_scores(model, judge, images, study["fill"][k], predicted, blanks, reference)
        rows.append(StudyRow(f"{count:,}", study["n_kept"][k], None, study["relative_error"][k], scores))
    for tolerance, cap in STUDY_TOLERANCES:
        if cap is not None and (cap not in counts or cap >= counts[-1]):
            continue
        stopped = stopped_by_tolerance(study, tolerance, cap)
        scores = image_scores(model, judge, images, stopped.fill, predicted, blanks, reference)
        label = f"tolerance {tolerance:g}" + ("" if cap is None else f", cap {cap:,}")
        rows.append(StudyRow(label, stopped.n_kept, stopped.converged, stopped.relative_error, scores))
    return rows


@dataclass
class Summary:
    """A column of a row: its value, standard error and the standard error of its change
    from the largest count (paired over the same resamples)."""

    value: float
    se: float
    change: float
    change_se: float


def summarize(rows: list[StudyRow], n_resamples: int = N_RESAMPLES, seed: int = 0) -> dict[str, dict[str, Summary]]:
    """Per row and column, the :class:`Summary` over a bootstrap of the images."""
    drawn = resamples(len(rows[0].n_kept), n_resamples, seed)
    largest = [row for row in rows if row.converged is None][-1]
    result = {}
    for row in rows:
        result[row.label] = {}
        for key, (_, mean) in STUDY_COLUMNS.items():
            value, spread = bootstrap(row.scores[key], mean, drawn)
            top, top_spread = bootstrap(largest.scores[key], mean, drawn)
            result[row.label][key] = Summary(
                value, float(spread.std()), value - top, float((spread - top_spread).std())
            )
    return result


def _cell(summary: Summary, mean: bool) -> str:
    digits = 1 if mean else 3
    text = f"{summary.value:.{digits}f} ± {summary.se:.{digits}f}"
    if summary.change_se > 0 and abs(summary.change) > 2 * summary.change_se:
        text += " *"  # differs from the largest count by more than two paired errors
    return text


def study_table(rows: list[StudyRow], summary: dict[str, dict[str, Summary]]) -> list[str]:
    """The study as Markdown table lines."""
    largest = [row for row in rows if row.converged is None][-1]
    total = float(largest.n_kept.double().sum())
    header = ["kept masks per image", "mean kept (share of the largest)", "reached the tolerance", "median rel. error"]
    header += [title for title, _ in STUDY_COLUMNS.values()]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        share = float(row.n_kept.double().sum()) / total
        reached = "—" if row.converged is None else f"{100 * float(row.converged.double().mean()):.0f} %"
        cells = [row.label, f"{float(row.n_kept.double().mean()):,.0f} ({100 * share:.0f} %)", reached]
        cells.append(f"{float(row.relative_error.nanmedian()):.3f}")
        cells += [_cell(summary[row.label][key], mean) for key, (_, mean) in STUDY_COLUMNS.items()]
        lines.append("| " + " | ".join(cells) + " |")
    return lines
