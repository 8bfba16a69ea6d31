"""The offline demo: the paper's Figs. 1-3 on the bundled samples, a small Table 1 and
the readability checks beside it.

Runs on the shipped weights and sample images only (no network, no data folder), in
about a minute on a 2-core CPU. Everything goes through the public API. Each image's
fill stops by precision (``tolerance``, with ``n_samples`` as the cap), as the mask
study of the reproduction measured it to be enough (``docs/reproduction/*/masks.md``).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from pathlib import Path

import torch

from ..attr.mask_fill import MaskFill
from ..attr.masks import random_patch_masks, resolve_seed
from ..attr.metrics import ROWS, ConsistencyCounts, consistency_counts, scoring_blank
from ..attr.readability import ReadabilitySummary, readability_summary
from ..attr.transforms import TransformSetting, prototype
from .data import CLASS_NAMES, DATASETS, load_samples
from .files import write_atomically
from .models import JUDGE_ARCH, WeightsEnum, shipped_model

#: The demo's fills stop once their relative Monte-Carlo error is at most this
#: (``MaskFill``'s ``tolerance``), at most ``n_samples`` kept masks.
DEMO_TOLERANCE = 0.3

#: Masks per image of the demo's wrong-target control (a fixed count: every draw is
#: kept; at most ``n_samples``).
WRONG_TARGET_SAMPLES = 300


def _save(figure, path: Path, written: list[Path]) -> None:
    write_atomically(path, lambda handle: figure.savefig(handle, dpi=90, format="png"))
    written.append(path)


def run_demo(
    out: Path,
    *,
    n_samples: int = 1000,
    tolerance: float | None = DEMO_TOLERANCE,
    images_per_class: int = 2,
    seed: int = 0,
    show_progress: bool = True,
    echo: Callable[[str], None] = print,
    readability: dict[str, ReadabilitySummary] | None = None,
) -> dict[str, ConsistencyCounts]:
    """Write the demo figures into ``out`` and return the consistency counts per data set.

    Each image's fill keeps masks until its relative error is at most ``tolerance``
    (``None``: exactly ``n_samples``), at most ``n_samples``. The readability checks of
    the same fills (:func:`~captum_fillblanks.attr.readability.readability_summary`,
    the data set's judge, the wrong-target control with
    :data:`WRONG_TARGET_SAMPLES` masks, at most ``n_samples``) are printed beside Table 1, and stored per data
    set in ``readability`` if a dict is given. A data set whose model has a shipped robust
    twin (:func:`robust_twin`: MNIST's SimpleCNN) also gets Fig. 2 of both models side by
    side on the same samples, and the twin's checks (under ``"DATASET, robust"``).

    The caller's process state is left as it was: torch's global random state (the demo
    runs under :func:`torch.random.fork_rng`: building a model draws its initial weights
    from it, and the control models are seeded) and matplotlib's
    backend (the command line chooses Agg; the figures are saved and closed, never shown).
    """
    for name, value in (("n_samples", n_samples), ("images_per_class", images_per_class)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be an int >= 1, got {value!r}")
    resolve_seed(seed)  # the checks MaskFill makes, before the first figure is written
    if tolerance is not None and (
        isinstance(tolerance, bool) or not isinstance(tolerance, (int, float)) or not 0 < tolerance < float("inf")
    ):
        raise ValueError(f"tolerance must be a positive finite number or None, got {tolerance!r}")
    with torch.random.fork_rng(devices=[]):
        return _run_demo(Path(out), n_samples, tolerance, images_per_class, seed, show_progress, echo, readability)


def _run_demo(
    out, n_samples, tolerance, images_per_class, seed, show_progress, echo, readability
) -> dict[str, ConsistencyCounts]:
    from matplotlib import pyplot as plt

    from ..attr.visualization import visualize_expected_fill, visualize_mask_fill, visualize_prototypes
    from .figures import progressive_figure

    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    results: dict[str, ConsistencyCounts] = {}
    summaries: dict[str, ReadabilitySummary] = {}
    for dataset in DATASETS:  # the image data sets
        entry = shipped_model(dataset)
        model, name = entry.build(), entry.name
        images, labels = load_samples(dataset)
        n_classes = int(labels.max()) + 1
        first = torch.stack([(labels == c).nonzero()[0, 0] for c in range(n_classes)])
        echo(f"{dataset}: {name} on the bundled images")

        # Fig. 1: one mask, three examples
        mask = random_patch_masks(1, 28, 28, patch_size=4, generator=torch.Generator().manual_seed(seed))[0]
        figure, _ = visualize_mask_fill(model, images[first[:3]], mask)
        _save(figure, out / f"{dataset}_fig1_one_mask.png", written)
        plt.close(figure)

        # one fill of the Table 1 images serves Fig. 2 too: they start with the first
        # images_per_class of each class
        chosen = torch.cat([(labels == c).nonzero()[:images_per_class, 0] for c in range(n_classes)])
        method = MaskFill(model)
        fills = method.attribute(
            images[chosen], n_samples=n_samples, tolerance=tolerance, seed=seed, show_progress=show_progress
        )
        kept = method.counts.n_kept
        per_class = torch.arange(n_classes) * images_per_class  # the first image of each class
        fill, names = fills[per_class], CLASS_NAMES[dataset]
        stop = f"tolerance {tolerance:g}, at most {n_samples:,}" if tolerance is not None else "fixed"
        how = f"{float(kept.double().mean()):,.0f} kept masks per image on average ({stop}); T: {TransformSetting()}"
        echo(f"  fills: {kept.min().item():,} to {kept.max().item():,} kept masks per image ({stop})")

        # Fig. 2: the expected fill of the first image of each class, its prototype and
        # the paper-style image M(x) + T(fill) under the image's own scoring mask
        blanks = torch.cat([scoring_blank(images[i : i + 1], seed=seed + int(i)) for i in first])
        figure, axes = visualize_expected_fill(
            images[first], fill, mask=(~blanks[:, 0]).float(), fig_size=(7.5, 1.9 * n_classes)
        )
        for row, c in enumerate(range(n_classes)):
            axes[row, 0].set_ylabel(f"{names[c]}\n(#{int(first[c])})", fontsize=8)
        figure.suptitle(f"{dataset}, {name}: the first bundled sample of each class\n{how}", fontsize=9)
        _save(figure, out / f"{dataset}_fig2_expected_fill.png", written)
        plt.close(figure)
        not_binarized = prototype(fill, transform=TransformSetting(binarized=False))
        figure, _ = visualize_prototypes(not_binarized, list(names))
        figure.suptitle(f"{dataset}, {name}: T(fill) not binarized; {how.split('; T')[0]}", fontsize=9)
        _save(figure, out / f"{dataset}_fig2_prototypes.png", written)
        plt.close(figure)

        # Fig. 3: progressive filling of one image
        drawn = progressive_figure(model, images[first[3:4]], n_steps=4, seed=seed)
        _save(drawn.figure, out / f"{dataset}_fig3_progressive.png", written)
        plt.close(drawn.figure)

        # Table 1 on a few images per class, with a random-initialized control
        torch.default_generator.manual_seed(seed)  # the CPU's only, under run_demo's fork_rng
        control = entry.builder().eval()
        results[dataset] = consistency_counts(
            model,
            images[chosen],
            n_classes=n_classes,
            n_samples=n_samples,
            seed=seed,
            control_model=control,
            show_progress=show_progress,
            fill=fills,
        )
        judge = shipped_model(dataset, JUDGE_ARCH[dataset]).build()

        # the same checks, images, judge and masks for the model and its robust twin
        check_readability = partial(
            readability_summary,
            judge=judge,
            images=images[chosen],
            n_classes=n_classes,
            wrong_target_samples=min(WRONG_TARGET_SAMPLES, n_samples),
            seed=seed,
        )
        summaries[dataset] = check_readability(model, fill=fills)

        # Fig. 2 beside a robust twin: the same images filled by the data set's robust
        # model (trained against small L2 perturbations), with both readability lines
        robust_weights = robust_twin(entry)
        if robust_weights is not None:
            robust = entry.build(robust_weights)
            robust_fills = MaskFill(robust).attribute(
                images[chosen], n_samples=n_samples, tolerance=tolerance, seed=seed, show_progress=show_progress
            )
            summaries[f"{dataset}, robust"] = check_readability(robust, fill=robust_fills)
            lines = [
                f"{label}: {_readability_line(summaries[key])}"
                for label, key in (("standard", dataset), ("robust", f"{dataset}, robust"))
            ]
            pictures = torch.cat([images[first], prototype(fill), prototype(robust_fills[per_class])])
            figure, axes = visualize_prototypes(pictures, [*names, *[""] * (2 * n_classes)], ncols=n_classes)
            for row, label in enumerate(("x", f"standard\n{entry.weights.name}", f"robust\n{robust_weights.name}")):
                axes[row, 0].axis("on"), axes[row, 0].set_xticks([]), axes[row, 0].set_yticks([])
                axes[row, 0].set_ylabel(label, fontsize=8)
            figure.suptitle(
                f"{dataset}, {name}: T(fill) of the first bundled sample of each class, standard and robust "
                f"weights (default T, {stop})\n" + "\n".join(lines) + f"\n(over the {len(chosen)} Table 1 images)",
                fontsize=8,
            )
            _save(figure, out / f"{dataset}_fig2_standard_vs_robust.png", written)
            plt.close(figure)
    echo("")
    echo(format_table(results))
    echo("")
    echo(format_readability(summaries, {dataset: counts.n_images for dataset, counts in results.items()}))
    echo("")
    if readability is not None:
        readability.update(summaries)
    echo(f"wrote {len(written)} figures to {out}:")
    for path in written:
        echo(f"  {path}")
    return results


def robust_twin(entry) -> WeightsEnum | None:
    """The shipped robust weights of ``entry``'s architecture on its data set (a member
    whose recipe trained against an attack), or ``None``."""
    members = [m for m in type(entry.weights) if m.meta["dataset"] == entry.weights.meta["dataset"]]
    return next((m for m in members if m.meta["recipe"].get("attack")), None)


def _readability_line(summary: ReadabilitySummary) -> str:
    wrong = "" if summary.wrong_target is None else f", wrong-target {summary.wrong_target:.0f} %"
    return f"judge reads {summary.judge:.0f} %, IoU {summary.iou:.2f}, AUC {summary.auc:.2f}{wrong}"


def format_table(results: dict[str, ConsistencyCounts], models: dict[str, str] | None = None) -> str:
    """Table 1 as Markdown: one row per data set and way of rebuilding the image."""
    models = models or {name: shipped_model(name).name for name in results if name in DATASETS}
    lines = [
        "| data set | model | images | rebuilt image | accuracy | macro F1 | weighted F1 |",
        "|---|---|---|---|---|---|---|",
    ]
    for dataset, counts in results.items():
        for row, scores in counts.scores().items():
            lines.append(
                f"| {dataset} | {models.get(dataset, '?')} | {counts.n_images} | {row}: {ROWS[row]} | "
                f"{scores['accuracy']:.1f} | {scores['macro_f1']:.1f} | {scores['weighted_f1']:.1f} |"
            )
    return "\n".join(lines)


def format_readability(summaries: dict[str, ReadabilitySummary], n_images: dict[str, int]) -> str:
    """The readability checks as Markdown: one row per data set."""
    lines = [
        "| data set | model | images | median inpainting AUC | median IoU of T(fill) with the ink "
        "| judge reads T(fill) | wrong-target control |",
        "|---|---|---|---|---|---|---|",
    ]
    for key, summary in summaries.items():
        dataset, _, twin = key.partition(", ")  # "mnist", or "mnist, robust": the robust twin
        wrong = "—" if summary.wrong_target is None else f"{summary.wrong_target:.1f} %"
        model = shipped_model(dataset).name + (f" ({twin})" if twin else "")
        lines.append(
            f"| {dataset} | {model} | {n_images[dataset]} | {summary.auc:.2f} | "
            f"{summary.iou:.2f} | {summary.judge:.1f} % | {wrong} |"
        )
    lines.append(
        "(checks that do not ask the model about its own fill: AUC 0.5 = the fill knows nothing of the image's "
        "ink, x > 0.5; the judge is LeNet-5, trained separately, against the model's label; the wrong-target "
        "control fills toward a wrong class and should stay low)"
    )
    return "\n".join(lines)
