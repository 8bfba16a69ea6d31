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
from .metrics import ROWS, ConsistencyCounts, consistency_counts
from .models import resnet5, simple_cnn
from .progressive import ProgressiveMaskFill
from .transforms import fill_transform, prototype

__all__ = ["class_prototypes", "choose_threshold", "reproduce", "PAPER_TABLE_1"]

#: The paper's Table 1 (MNIST, "ResNet5"), in percent: accuracy, macro F1, weighted F1.
PAPER_TABLE_1 = {"random": (99, 99, 99), "progressive": (93, 93, 93)}

_MODELS = {"mnist": (simple_cnn, "SimpleCNN"), "fashion-mnist": (resnet5, "ResNet5")}


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


def choose_threshold(
    model: Callable, fills: Tensor, reference: Tensor, candidates: Sequence[float], input_range=(0.0, 1.0)
) -> Tuple[float, Dict[float, float]]:
    """The threshold ``tau`` whose strict prototypes ``T(fill)`` the model recognises
    best, chosen on validation fills (never on the images scored). Ties go to the
    candidate closest to 0.5. Returns ``(tau, accuracy per candidate in percent)``."""
    scores = {}
    with torch.no_grad():
        for tau in candidates:
            predicted = model(prototype(fills, input_range=input_range, threshold=tau)).argmax(1)
            scores[tau] = 100.0 * float((predicted == reference).float().mean())
    best = max(candidates, key=lambda t: (scores[t], -abs(t - 0.5)))
    return best, scores


def _progress(iterable, desc, show):
    from captum._utils.progress import progress

    return progress(iterable, desc=desc, disable=not show)


def reproduce(
    dataset: str,
    data_dir: str,
    out: Path,
    *,
    n_images: int = 500,
    n_samples: int = 10_000,
    device: str = "cpu",
    shard_size: int = 50,
    n_validation: int = 200,
    thresholds: Sequence[float] = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7),
    figure_samples: int = 2000,
    seed: int = 0,
    command: str = "",
    show_progress: bool = True,
    echo: Callable[[str], None] = print,
) -> Path:
    """Run the experiments and write ``out/report.md`` with its figures. Returns its path."""
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
    builder, model_name = _MODELS[dataset]
    model = builder(weights="DEFAULT").to(device)
    torch.manual_seed(seed)
    control = builder().eval().to(device)

    test_images, test_labels = load_tensors(dataset, data_dir, train=False)
    keep = torch.ones(len(test_images), dtype=torch.bool)
    if dataset == "fashion-mnist":  # the bundled samples come from this split
        keep[sample_indices(dataset)] = False
    test_index = keep.nonzero().squeeze(1)[:n_images]
    images, labels = test_images[test_index].to(device), test_labels[test_index]
    n_classes = int(test_labels.max()) + 1

    # the threshold, chosen on the held-out validation split of the training file
    train_images, train_labels = load_tensors(dataset, data_dir, train=True)
    validation = split_training_set(dataset, train_labels).validation[:n_validation]
    val_images = train_images[validation].to(device)
    echo(f"choosing the threshold on {len(validation)} validation images")
    val_fill = MaskFill(model).attribute(
        val_images, n_samples=min(n_samples, figure_samples), seed=seed + 10**6,
        show_progress=show_progress,
    )
    with torch.no_grad():
        val_reference = model(val_images).argmax(1)
    threshold, threshold_scores = choose_threshold(model, val_fill, val_reference, thresholds)
    echo(f"threshold tau = {threshold} (strict accuracy on validation: {threshold_scores[threshold]:.1f}%)")

    # Table 1 and the class prototypes, shard by shard
    shard_dir = out / "shards"
    shard_dir.mkdir(exist_ok=True)
    shards: List[ConsistencyCounts] = []
    class_sums, class_counts = None, torch.zeros(n_classes, dtype=torch.long)
    starts = range(0, len(images), shard_size)
    for start in _progress(starts, f"{dataset} shards of {shard_size} images", show_progress):
        path = shard_dir / f"shard_{start:06d}_{n_samples}_{threshold}.pt"
        rows = slice(start, start + shard_size)
        if path.exists():
            saved = torch.load(path, weights_only=False)
        else:
            fill = MaskFill(model).attribute(images[rows], n_samples=n_samples, seed=seed + start)
            counts = consistency_counts(
                model, images[rows], n_classes=n_classes, n_samples=n_samples, threshold=threshold,
                control_model=control, control_samples=min(n_samples, 1000), seed=seed + start, fill=fill,
            )
            with torch.no_grad():
                predicted = model(images[rows]).argmax(1).cpu()
            saved = {"counts": counts, "sums": _add_per_class(None, fill, predicted, n_classes),
                     "class_counts": torch.bincount(predicted, minlength=n_classes)}
            torch.save(saved, path)
        shards.append(saved["counts"])
        class_sums = saved["sums"] if class_sums is None else class_sums + saved["sums"]
        class_counts += saved["class_counts"]
    table = ConsistencyCounts.combine(shards)
    class_means = (class_sums / class_counts.clamp(min=1).reshape(-1, 1, 1, 1)).float()

    figures: Dict[str, str] = {}

    def save(figure, name: str, caption: str) -> None:
        figure.savefig(out / name, dpi=90)
        plt.close(figure)
        figures[name] = caption

    # Fig. 2: class prototypes (the mean fill of every test image the model gave a class)
    names = [f"class {c} ({int(n)} images)" for c, n in enumerate(class_counts)]
    figure, _ = visualize_prototypes(prototype(class_means, threshold=threshold), names)
    save(figure, "fig2_class_prototypes.png",
         f"Fig. 2: T(mean fill) of all scored test images the model assigned to each class (tau = {threshold}).")
    figure, _ = visualize_prototypes(prototype(class_means, binarized=False), names)
    save(figure, "fig2_class_prototypes_not_binarized.png", "Fig. 2, not binarized: the normalized mean fill per class.")

    first = torch.stack([(labels == c).nonzero()[0, 0] for c in range(n_classes) if (labels == c).any()])
    few = first[:4]
    # Fig. 3: progressive
    progressive = ProgressiveMaskFill(model)
    progressive.attribute(images[few[:1]], n_steps=4, threshold=threshold, seed=seed)
    steps = progressive.steps
    figure, _ = visualize_progressive(steps.images, steps.groups, steps.labels, image=images[few[:1]])
    save(figure, "fig3_progressive.png", "Fig. 3: progressive filling with k = 4 disjoint masks; y-hat per step.")

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
        "T(fill), first order": prototype(first_order, threshold=threshold),
        "T(fill), BFGS": prototype(second_order, threshold=threshold),
        "first order, not binarized": prototype(first_order, binarized=False),
        "BFGS, not binarized": prototype(second_order, binarized=False),
    })
    save(figure, "fig5_first_vs_second_order.png",
         "Fig. 5: first- vs second-order (BFGS, 5 iterations) fills; cosine similarity per image: "
         + ", ".join(f"{c:.3f}" for c in cosine.tolist()) + ".")

    # Fig. 6: binarized vs not
    fills = MaskFill(model).attribute(images[few[:3]], n_samples=figure_samples, seed=seed)
    figure, _ = visualize_comparison({
        "random, binarized": prototype(fills, threshold=threshold),
        "random, not binarized": prototype(fills, binarized=False),
        "progressive, binarized": progressive.attribute(images[few[:3]], threshold=threshold, seed=seed),
        "progressive, not binarized": progressive.attribute(images[few[:3]], binarized=False, seed=seed),
    })
    save(figure, "fig6_binarized.png", "Fig. 6: binarized vs not, random (4.1) and progressive (4.2) masks.")

    elapsed = time.perf_counter() - start_time
    text = _report(dataset, model_name, command, table, threshold, threshold_scores, len(validation),
                   n_samples, figures, elapsed, device)
    partial = out / "report.md.partial"
    partial.write_text(text)
    partial.rename(report_path)
    echo(f"wrote {report_path} ({elapsed / 60:.1f} min)")
    return report_path


def _report(dataset, model_name, command, table, threshold, threshold_scores, n_validation,
            n_samples, figures, elapsed, device) -> str:
    scores = table.scores()
    lines = [
        f"# Fill in the blanks: reproduction on {dataset}",
        "",
        f"- command: `{command}`" if command else "- command: (called from Python)",
        f"- model: {model_name} with the shipped weights; {table.n_images} test images "
        f"(t10k; for Fashion-MNIST the bundled samples are left out); {n_samples:,} kept masks "
        f"per image, mask ratio 0.25, patch size 2",
        f"- machine: {platform.machine()}, {platform.processor() or 'unknown CPU'}, device `{device}`, "
        f"torch {torch.__version__}; run time {elapsed / 60:.1f} min",
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
        f"## The threshold tau, chosen on {n_validation} validation images",
        "",
        "Strict accuracy (T(fill) alone) of the validation images' prototypes per candidate; "
        "the best is used above. The test images were not looked at.",
        "",
        "| tau | " + " | ".join(str(t) for t in threshold_scores) + " |",
        "|---|" + "---|" * len(threshold_scores),
        "| strict accuracy (%) | " + " | ".join(f"{v:.1f}" for v in threshold_scores.values()) + " |",
        "",
        "## Figures",
        "",
    ]
    for name, caption in figures.items():
        lines += [f"![{caption}]({name})", "", caption, ""]
    return "\n".join(lines)
