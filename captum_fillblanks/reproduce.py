"""The paper's experiments on MNIST or Fashion-MNIST, into a folder with ``report.md``.

Figs. 2-6 and Table 1 (with its controls), computed through the public API on the
shipped weights and a folder of IDX files. The loop over test images runs in shards
whose confusion matrices and per-class sums add exactly: each finished shard is saved
under ``shards/`` (a rerun skips it), and the report is written only when every shard is
done, so an interrupted run never leaves a report that looks complete.
"""

from __future__ import annotations

import platform
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import torch
from torch import Tensor

from .bfgs import BFGSMaskFill, fill_cosine_similarity
from .data import load_tensors, sample_indices, split_training_set
from .mask_fill import MaskFill
from .metrics import BINARIZED_ROWS, ROWS, ConsistencyCounts, consistency_counts
from .models import ResNet5_Weights, SimpleCNN_Weights, resnet5, simple_cnn
from .progressive import ProgressiveMaskFill
from .transforms import fill_transform, prototype

__all__ = ["class_prototypes", "choose_thresholds", "reproduce", "MODELS", "DEFAULT_ARCH", "PAPER_TABLE_1"]

#: The paper's Table 1 (MNIST, "ResNet5"), in percent: accuracy, macro F1, weighted F1.
PAPER_TABLE_1 = {"random": (99, 99, 99), "progressive": (93, 93, 93)}

#: (data set, architecture) -> (builder, shipped weights, display name)
MODELS = {
    ("mnist", "simple-cnn"): (simple_cnn, SimpleCNN_Weights.MNIST_5K, "SimpleCNN"),
    ("mnist", "resnet5"): (resnet5, ResNet5_Weights.MNIST_5K, "ResNet5"),
    ("fashion-mnist", "resnet5"): (resnet5, ResNet5_Weights.FASHION_MNIST, "ResNet5"),
}
#: The architecture each data set uses unless told otherwise (the paper's Figs. 1-2).
DEFAULT_ARCH = {"mnist": "simple-cnn", "fashion-mnist": "resnet5"}


def class_prototypes(
    model: Callable,
    batches: Sequence[Tuple[Tensor, Tensor]],
    n_classes: int,
    **attribute_kwargs,
) -> Tuple[Tensor, Tensor]:
    """The "global" view: the average fill of all images of each class.

    Args:
        model (Callable): the classifier.
        batches (iterable of (images, labels)): e.g. a ``DataLoader``.
        n_classes (int): number of classes.
        **attribute_kwargs: passed to :meth:`MaskFill.attribute` (``n_samples``,
            ``seed``, ...); ``target`` is each image's label.

    Returns:
        (Tensor, Tensor): ``(n_classes, *image_shape)`` mean fill per class (zero for a
        class without images) and ``(n_classes,)`` image counts. Show them with
        :func:`captum_fillblanks.transforms.prototype`.
    """
    sums, counts = None, torch.zeros(n_classes, dtype=torch.long)
    method = MaskFill(model)
    for images, labels in batches:
        fill = method.attribute(images, target=labels.to(images.device), **attribute_kwargs)
        sums = _add_per_class(sums, fill, labels, n_classes)
        counts += torch.bincount(labels.cpu(), minlength=n_classes)
    return sums / counts.clamp(min=1).reshape(-1, *([1] * (sums.dim() - 1))), counts


def _add_per_class(sums: Optional[Tensor], fill: Tensor, labels: Tensor, n_classes: int) -> Tensor:
    fill = fill.detach().cpu().double()
    if sums is None:
        sums = torch.zeros(n_classes, *fill.shape[1:], dtype=torch.float64)
    return sums.index_add_(0, labels.cpu(), fill)


def choose_thresholds(
    model: Callable,
    images: Tensor,
    candidates: Sequence[float],
    *,
    n_classes: int,
    fill: Tensor,
    control_fill: Optional[Tensor] = None,
    seed: int = 0,
    **consistency_kwargs,
) -> Tuple[Dict[str, float], Dict[str, Dict[float, float]]]:
    """One threshold ``tau`` per row of the consistency table, each the candidate under
    which the model recognises that row's rebuilt images best, chosen on validation
    images (never on the images scored).

    Every candidate is scored with :func:`~captum_fillblanks.metrics.consistency_counts`
    on the same ``fill`` (and ``control_fill``), so only the progressive row is
    recomputed per candidate. Ties go to the candidate closest to 0.5 (SPEC's default),
    then to the smaller one. The random-model control gets its own best threshold too:
    a control that is as good as it can be is the honest comparison.

    Args:
        model (Callable): the classifier.
        images (Tensor): validation images.
        candidates (sequence of float): thresholds to try.
        n_classes (int): number of classes.
        fill (Tensor): the images' MaskFill fills (``target=None``).
        control_fill (Tensor, optional): the control model's fills; adds that row.
        seed (int): seed of the masks, as in ``consistency_counts``.
        **consistency_kwargs: more arguments of ``consistency_counts`` (``n_steps``,
            ``patch_size``, ``input_range``, ...).

    Returns:
        (dict, dict): the chosen ``tau`` per binarized row, and the accuracy in percent
        per row and candidate.
    """
    if len(candidates) == 0:
        raise ValueError("candidates must hold at least one threshold")
    accuracy: Dict[str, Dict[float, float]] = {}
    for tau in candidates:
        counts = consistency_counts(
            model, images, n_classes=n_classes, threshold=tau, fill=fill, control_fill=control_fill,
            seed=seed, **consistency_kwargs,
        )
        for row, scores in counts.scores().items():
            if row in BINARIZED_ROWS:
                accuracy.setdefault(row, {})[tau] = scores["accuracy"]
    chosen = {
        row: max(candidates, key=lambda t: (scores[t], -abs(t - 0.5), -t)) for row, scores in accuracy.items()
    }
    return chosen, accuracy


def _class_balanced(indices: Tensor, labels: Tensor, n: int) -> Tensor:
    """The first ``n`` of ``indices`` taken in turn from each class (in file order within
    a class), so that a prefix of the validation split is not dominated by the classes
    whose held-out images come first in the file."""
    classes = labels[indices]
    rank = torch.zeros_like(indices)
    for c in classes.unique():
        where = (classes == c).nonzero().flatten()
        rank[where] = torch.arange(len(where))
    order = torch.argsort(rank * (int(classes.max()) + 1) + classes, stable=True)
    return indices[order[:n]]


def _progress(iterable, desc, show):
    from captum._utils.progress import progress

    return progress(iterable, desc=desc, disable=not show)


def reproduce(
    dataset: str,
    data_dir: str,
    out: Path,
    *,
    arch: Optional[str] = None,
    n_images: int = 500,
    n_samples: int = 10_000,
    device: str = "cpu",
    shard_size: int = 50,
    n_validation: int = 200,
    thresholds: Sequence[float] = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9),
    figure_samples: int = 2000,
    seed: int = 0,
    command: str = "",
    show_progress: bool = True,
    echo: Callable[[str], None] = print,
) -> Path:
    """Run the experiments and write ``out/report.md`` with its figures. Returns its path.

    ``arch`` picks one of the shipped models (:data:`MODELS`): ``"simple-cnn"`` (MNIST's
    default) or ``"resnet5"`` (the paper's Table 1 model on MNIST; Fashion-MNIST's only
    one). ``thresholds`` are the candidate ``tau``; each row of Table 1 uses the one
    :func:`choose_thresholds` picks for it on ``n_validation`` held-out training images,
    the same number per class."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    from .visualization import (
        visualize_comparison,
        visualize_parameter_grid,
        visualize_progressive,
        visualize_prototypes,
    )

    start_time = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    report_path = out / "report.md"
    if report_path.exists():
        report_path.unlink()  # a stale report must not pass for this run's
    arch = arch or DEFAULT_ARCH.get(dataset)
    if (dataset, arch) not in MODELS:
        raise ValueError(
            f"no shipped model for arch={arch!r} on dataset={dataset!r}; expected one of {sorted(MODELS)}"
        )
    builder, weights, model_name = MODELS[dataset, arch]
    model_name = f"{model_name} ({type(weights).__name__}.{weights.name})"
    model = builder(weights=weights).to(device)
    torch.manual_seed(seed)
    control = builder().eval().to(device)

    test_images, test_labels = load_tensors(dataset, data_dir, train=False)
    keep = torch.ones(len(test_images), dtype=torch.bool)
    if dataset == "fashion-mnist":  # the bundled samples come from this split
        keep[sample_indices(dataset)] = False
    test_index = keep.nonzero().squeeze(1)[:n_images]
    images, labels = test_images[test_index].to(device), test_labels[test_index]
    n_classes = int(test_labels.max()) + 1

    shard_dir = out / "shards"
    shard_dir.mkdir(exist_ok=True)
    control_samples = min(n_samples, 1000)
    resumed: List[str] = []  # fills loaded from an earlier, interrupted run

    def fills(rows_images: Tensor, samples: int, rows_seed: int, desc: str, path: Path) -> Dict[str, Tensor]:
        """The trained and the control model's fills of some images, saved under ``path``
        (they do not depend on the thresholds, so a rerun only rescores them)."""
        if path.exists():
            resumed.append(path.name)
            return torch.load(path, weights_only=False)
        with torch.no_grad():
            predicted = model(rows_images).argmax(1)
        if desc:
            echo(desc)
        saved = {
            "fill": MaskFill(model).attribute(
                rows_images, n_samples=samples, seed=rows_seed, show_progress=show_progress and bool(desc)
            ).cpu(),
            "control_fill": MaskFill(control).attribute(
                rows_images, target=predicted, selection="all", n_samples=min(samples, control_samples),
                seed=rows_seed,
            ).cpu(),
            "predicted": predicted.cpu(),
        }
        partial = path.with_suffix(".partial")
        torch.save(saved, partial)
        partial.rename(path)
        return saved

    # the thresholds, one per row, chosen on the held-out validation split of the training file
    train_images, train_labels = load_tensors(dataset, data_dir, train=True)
    validation = _class_balanced(split_training_set(dataset, train_labels).validation, train_labels, n_validation)
    val_images = train_images[validation].to(device)
    val_samples, val_seed = min(n_samples, figure_samples), seed + 10**6
    val = fills(val_images, val_samples, val_seed,
                f"validation fills: {len(validation)} images, {val_samples} masks each",
                shard_dir / f"validation_{arch}_{len(validation)}_{val_samples}_{val_seed}.pt")
    tau_per_row, threshold_scores = choose_thresholds(
        model, val_images, thresholds, n_classes=n_classes, fill=val["fill"].to(device),
        control_fill=val["control_fill"].to(device), seed=val_seed,
    )
    echo("thresholds tau per row (accuracy on validation): " + ", ".join(
        f"{row} {tau} ({threshold_scores[row][tau]:.1f}%)" for row, tau in tau_per_row.items()))

    # Table 1 and the class prototypes, shard by shard
    shards: List[ConsistencyCounts] = []
    class_sums, class_counts = None, torch.zeros(n_classes, dtype=torch.long)
    starts = range(0, len(images), shard_size)
    for start in _progress(starts, f"{dataset} shards of {shard_size} images", show_progress):
        rows = slice(start, start + shard_size)
        saved = fills(images[rows], n_samples, seed + start, "",
                      shard_dir / f"shard_{arch}_{start:06d}-{min(start + shard_size, len(images)):06d}_{n_samples}_{seed}.pt")
        shards.append(consistency_counts(
            model, images[rows], n_classes=n_classes, threshold=tau_per_row, seed=seed + start,
            fill=saved["fill"].to(device), control_fill=saved["control_fill"].to(device),
        ))
        class_sums = _add_per_class(class_sums, saved["fill"], saved["predicted"], n_classes)
        class_counts += torch.bincount(saved["predicted"], minlength=n_classes)
    table = ConsistencyCounts.combine(shards)
    class_means = (class_sums / class_counts.clamp(min=1).reshape(-1, 1, 1, 1)).float()

    figures: Dict[str, str] = {}

    def save(figure, name: str, caption: str) -> None:
        figure.savefig(out / name, dpi=90)
        plt.close(figure)
        figures[name] = caption

    # Fig. 2: class prototypes (the mean fill of every test image the model gave a class)
    names = [f"class {c} ({int(n)} images)" for c, n in enumerate(class_counts)]
    tau, tau_progressive = tau_per_row["strict"], tau_per_row["progressive"]
    figure, _ = visualize_prototypes(prototype(class_means, threshold=tau), names)
    save(figure, "fig2_class_prototypes.png",
         f"Fig. 2: T(mean fill) of all scored test images the model assigned to each class (tau = {tau}).")
    figure, _ = visualize_prototypes(prototype(class_means, binarized=False), names)
    save(figure, "fig2_class_prototypes_not_binarized.png", "Fig. 2, not binarized: the normalized mean fill per class.")

    first = torch.stack([(labels == c).nonzero()[0, 0] for c in range(n_classes) if (labels == c).any()])
    few = first[:4]
    # Fig. 3: progressive
    progressive = ProgressiveMaskFill(model)
    progressive.attribute(images[few[:1]], n_steps=4, threshold=tau_progressive, seed=seed)
    steps = progressive.steps
    figure, _ = visualize_progressive(steps.images, steps.groups, steps.labels, image=images[few[:1]])
    save(figure, "fig3_progressive.png",
         f"Fig. 3: progressive filling with k = 4 disjoint masks (tau = {tau_progressive}); y-hat per step.")

    # Fig. 4: mask ratio x patch size
    ratios, patches = [0.1, 0.25, 0.5, 0.75], [1, 2, 4, 7]
    grid = [[prototype(MaskFill(model).attribute(
        images[few[:1]], n_samples=figure_samples, mask_ratio=r, patch_size=p, seed=seed,
        max_draws=20 * figure_samples), binarized=False)[0] for p in patches] for r in ratios]
    figure, _ = visualize_parameter_grid(grid, ratios, patches)
    save(figure, "fig4_ratio_patch_grid.png", "Fig. 4: T(fill), not binarized, over mask ratio x patch size.")

    # Fig. 5: first vs second order
    kwargs = dict(n_samples=min(figure_samples, 500), seed=seed)
    first_order = MaskFill(model).attribute(images[few], **kwargs)
    second_order = BFGSMaskFill(model).attribute(images[few], n_iter=5, **kwargs)
    cosine = fill_cosine_similarity(first_order, second_order)
    figure, _ = visualize_comparison({
        "x": images[few],
        "T(fill), first order": prototype(first_order, threshold=tau),
        "T(fill), BFGS": prototype(second_order, threshold=tau),
        "first order, not binarized": prototype(first_order, binarized=False),
        "BFGS, not binarized": prototype(second_order, binarized=False),
    })
    save(figure, "fig5_first_vs_second_order.png",
         "Fig. 5: first- vs second-order (BFGS, 5 iterations) fills; cosine similarity per image: "
         + ", ".join(f"{c:.3f}" for c in cosine.tolist()) + ".")

    # Fig. 6: binarized vs not
    random_fills = MaskFill(model).attribute(images[few[:3]], n_samples=figure_samples, seed=seed)
    figure, _ = visualize_comparison({
        "random, binarized": prototype(random_fills, threshold=tau),
        "random, not binarized": prototype(random_fills, binarized=False),
        "progressive, binarized": progressive.attribute(images[few[:3]], threshold=tau_progressive, seed=seed),
        "progressive, not binarized": progressive.attribute(images[few[:3]], binarized=False, seed=seed),
    })
    save(figure, "fig6_binarized.png",
         f"Fig. 6: binarized vs not, random (4.1, tau = {tau}) and progressive (4.2, tau = {tau_progressive}) masks.")

    elapsed = time.perf_counter() - start_time
    text = _report(dataset, model_name, command, table, tau_per_row, threshold_scores, len(validation),
                   val_samples, n_samples, figures, elapsed, device, resumed, len(starts))
    partial = out / "report.md.partial"
    partial.write_text(text)
    partial.rename(report_path)
    echo(f"wrote {report_path} ({elapsed / 60:.1f} min)")
    return report_path


def _report(dataset, model_name, command, table, thresholds, threshold_scores, n_validation,
            val_samples, n_samples, figures, elapsed, device, resumed, n_shards) -> str:
    if resumed:
        n_loaded = sum(name.startswith("shard_") for name in resumed)
        validation_loaded = " and the validation fills" if len(resumed) > n_loaded else ""
        run_time = (f"run time {elapsed / 60:.1f} min for this invocation, which loaded {n_loaded} of "
                    f"{n_shards} shards{validation_loaded} from an earlier run (not counted)")
    else:
        run_time = f"run time {elapsed / 60:.1f} min"
    scores = table.scores()
    lines = [
        f"# Fill in the blanks: reproduction on {dataset}",
        "",
        f"- command: `{command}`" if command else "- command: (called from Python)",
        f"- model: {model_name} with the shipped weights; {table.n_images} test images "
        f"(t10k; for Fashion-MNIST the bundled samples are left out); {n_samples:,} kept masks "
        f"per image, mask ratio 0.25, patch size 2",
        f"- machine: {platform.machine()}, {platform.processor() or 'unknown CPU'}, device `{device}`, "
        f"torch {torch.__version__}; {run_time}",
        "",
        "## Table 1: can the model recognise its own fills?",
        "",
        "Each test image is rebuilt as below and classified by the same model; scores are "
        "against the label the model gave the original image.",
        "",
        "| rebuilt image | accuracy | macro avg. F1 | weighted avg. F1 |",
        "|---|---|---|---|",
    ]
    for row, description in ROWS.items():
        if row in scores:
            s = scores[row]
            lines.append(f"| **{row}**: {description} | {s['accuracy']:.1f} | {s['macro_f1']:.1f} | {s['weighted_f1']:.1f} |")
    lines += [
        "",
        f"The paper (MNIST, ResNet5): random {PAPER_TABLE_1['random'][0]}, progressive "
        f"{PAPER_TABLE_1['progressive'][0]} (accuracy = macro F1 = weighted F1).",
        "",
        f"## The thresholds tau, chosen on {n_validation} validation images",
        "",
        "Accuracy (%) of each binarized row on the validation images (held out of the "
        f"training file, the same number per class, {val_samples:,} masks each) per candidate; "
        "each row of Table 1 uses its best, in bold. The test images were not looked at.",
        "",
        "| row | " + " | ".join(str(t) for t in next(iter(threshold_scores.values()))) + " |",
        "|---|" + "---|" * len(next(iter(threshold_scores.values()))),
    ]
    for row, scores in threshold_scores.items():
        cells = [f"**{v:.1f}**" if t == thresholds[row] else f"{v:.1f}" for t, v in scores.items()]
        lines.append(f"| {row} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "## Figures",
        "",
    ]
    for name, caption in figures.items():
        lines += [f"![{caption}]({name})", "", caption, ""]
    return "\n".join(lines)
