"""The report of a run, in Markdown: what was run, Table 1, the settings of ``T``
chosen on validation, and the figures."""

from __future__ import annotations

import platform
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from ...attr.metrics import ROWS, ConsistencyCounts
from ...attr.transforms import TransformSetting
from ..models import JUDGE_ARCH, shipped_model
from ..scoring import DEFAULT_T, N_RESAMPLES, standard_error
from .config import RunConfig
from .stages import Choice, Table

__all__ = ["PAPER_TABLE_1", "RunRecord", "kept_summary", "table_lines", "write_report"]

#: The paper's Table 1 (MNIST, "ResNet5"), in percent: accuracy, macro F1, weighted F1.
PAPER_TABLE_1 = {"random": (99, 99, 99), "progressive": (93, 93, 93)}


@dataclass(frozen=True)
class RunRecord:
    """What the report says about the run itself, beyond its :class:`RunConfig`."""

    config: RunConfig
    command: str
    device: str
    elapsed: float  # seconds
    loaded: Sequence[str]  # fill files an earlier run had written
    n_shards: int
    world_size: int = 1  # processes (torchrun)


def kept_summary(
    n_kept: Sequence[Tensor | None], n_samples: int, max_draws_per_sample: int = 10, tolerance: float | None = None
) -> str:
    """How many draws the fills kept, in words.

    MaskFill keeps a draw only if the model still gives the masked image its own label,
    and a run stops it after ``max_draws_per_sample * n_samples`` draws, so an image the
    model seldom recognises under a mask keeps fewer than ``n_samples``. ``n_kept``
    holds one tensor per fill file, or ``None`` for a file written before the counts
    were saved: such files have the same manifest, so a rerun over an old folder still
    meets them, and the report says so rather than guess. With ``tolerance`` an image
    stops as soon as its fill is that precise, so the summary gives the spread of the
    kept counts and how many images ran to the cap.
    """
    recorded = [kept for kept in n_kept if kept is not None]
    if not recorded:
        return "counts not saved: these fills are an earlier version's"
    kept = torch.cat(recorded)
    images = f"{len(kept)} images" + ("" if len(recorded) == len(n_kept) else " whose counts were saved")
    short = int((kept < n_samples).sum())
    if tolerance is not None:
        at_cap = int((kept >= n_samples).sum())
        text = (
            f"stopping each at relative error {tolerance:g}: the {images} kept median {int(kept.median()):,}, "
            f"fewest {int(kept.min()):,}, most {int(kept.max()):,}; {at_cap} ran to the cap of {n_samples:,}"
        )
    elif short:
        draws, fewest = max_draws_per_sample * n_samples, int(kept.min())
        text = f"{short} of the {images} kept fewer than {n_samples:,} within {draws:,} draws, fewest {fewest:,}"
    else:
        text = f"all {images} kept {n_samples:,}"
    if len(recorded) < len(n_kept):
        old = len(n_kept) - len(recorded)
        text += f"; {old} of {len(n_kept)} fill files are an earlier version's, which did not save them"
    return text


def table_lines(
    counts: ConsistencyCounts,
    settings: dict[str, TransformSetting],
    setting_header: str,
    per_image: dict[str, Tensor] | None = None,
) -> list[str]:
    """Table 1 as Markdown lines: one row per row of :data:`ROWS` that ``counts`` scored.

    With ``per_image`` (:func:`~captum_fillblanks.paper.scoring.image_columns` of every image) the accuracy has
    its standard error (:func:`standard_error`) and a last column gives the judge's
    reading of the row's rebuilt image as ``y_0``, with its own."""
    scores = counts.scores()
    extra, rule = ("", "")
    if per_image is not None:
        extra, rule = " judge reads y_0, % |", "---|"
    lines = [
        f"| rebuilt image | {setting_header} | accuracy | macro avg. F1 | weighted avg. F1 |{extra}",
        f"|---|---|---|---|---|{rule}",
    ]
    for row, description in ROWS.items():
        if row in scores:
            s = scores[row]
            setting = str(settings[row]) if row in settings else "—"
            accuracy, judged = f"{s['accuracy']:.1f}", ""
            if per_image is not None:
                accuracy += f" ± {100 * standard_error(per_image[f'model: {row}']):.1f}"
                hits = per_image[f"judge: {row}"]
                judged = f" {100 * float(hits.mean()):.1f} ± {100 * standard_error(hits):.1f} |"
            lines.append(
                f"| **{row}**: {description} | {setting} | {accuracy} | "
                f"{s['macro_f1']:.1f} | {s['weighted_f1']:.1f} |{judged}"
            )
    return lines


def readability_lines(per_image: dict[str, Tensor], judge_name: str) -> list[str]:
    """The report's section on the checks that do not ask the model about its own fill."""
    auc, iou = per_image["auc"], per_image["iou"]
    return [
        "## Readability: what another model and the image itself say",
        "",
        f"The last column of Table 1 is the judge, {judge_name} (another architecture, trained separately on the "
        "same data), classifying each row's rebuilt image; it is scored against `y_0`, the model's label of the "
        "original image, in every row. A rebuilt image the judge reads as `y_0` carries the class for a model that "
        "did not draw it; the control rows are its scale. The fill against the image's own ink (`x > 0.5`), the "
        "paper's section 3.2 criterion: median inpainting AUC "
        f"**{float(auc.nanmedian()):.3f} ± {standard_error(auc, median=True):.3f}** (0.5: the fill knows nothing "
        f"of the image), median IoU of `T(fill)` (the package's default T, {DEFAULT_T}) with the ink "
        f"**{float(iou.nanmedian()):.2f} ± {standard_error(iou, median=True):.2f}**. The wrong-target control and "
        "the same checks at other mask counts: `captum-fillblanks mask-study`.",
        "",
        "Every image is scored under its own random mask (the control and paper-style rows), seeded by its index "
        f"among the test images; every ± is one standard error, a bootstrap over the images ({N_RESAMPLES:,} "
        "resamples).",
        "",
    ]


def _header(run: RunRecord, table: Table) -> list[str]:
    config, elapsed, loaded = run.config, run.elapsed, run.loaded
    if loaded:
        n_loaded = sum(name.startswith("shard_") for name in loaded)
        validation_loaded = " and the validation fills" if len(loaded) > n_loaded else ""
        run_time = (
            f"run time {elapsed / 60:.1f} min for this invocation, which loaded {n_loaded} of "
            f"{run.n_shards} shards{validation_loaded} from an earlier run (not counted)"
        )
    else:
        run_time = f"run time {elapsed / 60:.1f} min"
    kept = kept_summary(table.n_kept, config.n_samples, config.max_draws_per_sample, config.tolerance)
    asked = "kept masks asked" if config.tolerance is None else "kept masks at most"
    return [
        f"# Fill in the blanks: reproduction on {config.dataset}",
        "",
        f"- command: `{run.command}`" if run.command else "- command: (called from Python)",
        f"- model: {config.model_name} with the shipped weights; {table.chosen.n_images} test images "
        f"(t10k; for Fashion-MNIST the bundled samples are left out); {config.n_samples:,} {asked} "
        f"per image ({kept}), mask ratio {config.mask_ratio}, "
        f"patch size {config.patch_size}; progressive: k = {config.n_steps} steps",
        f"- machine: {platform.machine()}, {platform.processor() or 'unknown CPU'}, device `{run.device}`, "
        f"torch {torch.__version__}; "
        + (f"{run.world_size} processes (torchrun), " if run.world_size > 1 else "")
        + run_time,
        "",
    ]


def _settings_lines(choice: Choice, max_draws_per_sample: int, tolerance: float | None = None) -> list[str]:
    rows = list(choice.scores)
    kept = kept_summary([choice.n_kept], choice.n_samples, max_draws_per_sample, tolerance)
    lines = [
        f"## The settings of T, chosen on {choice.n_images} validation images",
        "",
        "Macro-average F1 (%) of each transformed row on the validation images (held out of the "
        f"training file, the same number per class, {choice.n_samples:,} kept masks asked each; "
        f"{kept}) per "
        "candidate setting; each row of Table 1 uses its best, in bold (ties: the first "
        "candidate). Macro F1, not accuracy: against `y_k` a degenerate fill that turns "
        "every image into one class scores a high accuracy, but the F1 of one class in ten. "
        "The test images were not looked at.",
        "",
        "| T | " + " | ".join(rows) + " |",
        "|---|" + "---|" * len(rows),
    ]
    for setting in next(iter(choice.scores.values())):
        cells = [
            f"**{choice.scores[row][setting]:.1f}**"
            if choice.chosen[row] == setting
            else f"{choice.scores[row][setting]:.1f}"
            for row in rows
        ]
        lines.append(f"| {setting} | " + " | ".join(cells) + " |")
    return lines


def write_report(run: RunRecord, table: Table, choice: Choice, figures: dict[str, str]) -> str:
    """The whole report, as one Markdown string."""
    lines = [
        *_header(run, table),
        "## Table 1: can the model recognise its own fills?",
        "",
        "Each test image is rebuilt as below and classified by the same model, and scored "
        "against the label the row names: `y_0`, the model's label for the original image, or "
        "`y_k`, its label for the last progressive step's masked input. Each row uses the "
        "setting of T chosen for it on validation.",
        "",
        *table_lines(table.chosen, choice.chosen, "T (chosen on validation)", table.per_image),
        "",
        f"The paper (MNIST, ResNet5): random {PAPER_TABLE_1['random'][0]}, progressive "
        f"{PAPER_TABLE_1['progressive'][0]} (accuracy = macro F1 = weighted F1).",
        "",
    ]
    if table.per_image is not None:
        judge = shipped_model(run.config.dataset, JUDGE_ARCH[run.config.dataset])
        lines += readability_lines(
            table.per_image, f"{judge.name} ({type(judge.weights).__name__}.{judge.weights.name})"
        )
    if table.min_max_only is not None:
        # the wording of the committed reports, kept so that a rescored report is identical
        lines += [
            "## The same images with min–max normalization only (SPEC's earlier reading)",
            "",
            "Each row with the best min–max setting on validation. The earlier reports scored "
            "progressive against `y_0` only (the row *progressive, recovery*).",
            "",
            *table_lines(table.min_max_only, choice.min_max_only, "T (min–max, chosen on validation)"),
            "",
        ]
    lines += _settings_lines(choice, run.config.max_draws_per_sample, run.config.tolerance)
    lines += ["", "## Figures", ""]
    for name, caption in figures.items():
        lines += [f"![{caption}]({name})", "", caption, ""]
    return "\n".join(lines)
