"""Readability across training (#35): standard, noise, PGD L2 and L-inf models side by side.

    python experiments/robust_training.py --data-dir ../shared/data --out robust-runs \
        [--dataset mnist] [--arch simple-cnn] [--variants standard noise-0.5 l2-2 ...] \
        [--split validation|test] [--n-images 200] [--figure]

Each variant is the shipped recipe of ``--arch`` on ``--dataset`` (its epochs, batch
size, learning rate, shifts and seed, the same training images) with one change of
training (:data:`VARIANTS`): none (``standard``: the shipped weights themselves),
Gaussian noise, or PGD adversarial training (:class:`~captum_fillblanks.paper.robust.PGD`).
Trained weights are kept in ``--out`` (a rerun loads them), and so is each variant's
row of results (``VARIANT_SPLIT.json``): the run is resumable and a killed variant
costs only itself.

The images: ``--split validation`` (default), the reproduction's validation images
(class-balanced, held out of training: where recipes and epsilon are chosen), or
``test``, the first t10k images (read after the choice). The columns:

- clean accuracy on all 10,000 t10k images, and robust accuracy on the first 1,000
  under PGD L2 (epsilon 1) and L-inf (epsilon 0.1), 20 steps with a random start;
- the strict prototypes, as the package's defaults make them (``MaskFill``, 1,000
  kept masks, ``selection="correct"``, the default ``T``): the median inpainting AUC
  and IoU against the image's ink and the shipped judge's reading against the model's
  label (overall and per class), and the same with ``selection="all"``;
- the wrong-target control (the first 100 images, 300 masks, as the mask study);
- the progressive rebuild (4 steps of 2x2 patches, the paper's one-mask step): the
  judge reads ``x_k`` as ``y_0`` with the paper's per-step targets and with a fixed
  target ``y_0``;
- the mean kept masks to reach ``tolerance=0.15`` (cap 3,000; the first 100 images).

It writes ``table_DATASET_ARCH_SPLIT.md`` (the columns as Markdown, then the judge's
reading per class); with ``--figure`` it draws ``figure_DATASET_ARCH_SPLIT.png``: the
first two images of each class and each variant's ``T(fill)`` of them (strict
prototypes, default ``T``).

Its results: ``docs/reproduction/robust.md``.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from captum_fillblanks import MaskFill, ProgressiveMaskFill, TransformSetting, prototype
from captum_fillblanks.attr.readability import (
    ink,
    inpainting_agreement,
    intersection_over_union,
    judge_accuracy,
    wrong_target_control,
)
from captum_fillblanks.paper.data import CLASS_NAMES, load_tensors, split_training_set
from captum_fillblanks.paper.files import load_tensors_file, save_tensors_file, write_atomically
from captum_fillblanks.paper.models import JUDGE_ARCH, shipped_model, shipped_weights
from captum_fillblanks.paper.reproduce import RunConfig, validation_images
from captum_fillblanks.paper.robust import PGD, robust_accuracy
from captum_fillblanks.paper.training import evaluate_accuracy, train_model

#: name -> the training change: ``None`` (the shipped weights), ``{"noise_std": s}`` or
#: ``{"attack": PGD(...)}``
VARIANTS = {
    "standard": None,
    "noise-0.5": {"noise_std": 0.5},
    "l2-1": {"attack": PGD("l2", 1.0, warmup=0.2)},
    "l2-2": {"attack": PGD("l2", 2.0, warmup=0.2)},
    "l2-2.5": {"attack": PGD("l2", 2.5, warmup=0.2)},
    "l2-3": {"attack": PGD("l2", 3.0, warmup=0.2)},
    "linf-0.3": {"attack": PGD("linf", 0.3, warmup=0.2)},
    "fast-l2-2": {"attack": PGD("l2", 2.0, steps=1, warmup=0.2)},
    "fast-l2-1": {"attack": PGD("l2", 1.0, steps=1, warmup=0.2)},
    "fast-l2-0.5": {"attack": PGD("l2", 0.5, steps=1, warmup=0.2)},
    "fast-l2-1.5": {"attack": PGD("l2", 1.5, steps=1, warmup=0.2)},
    "pgd3-l2-1": {"attack": PGD("l2", 1.0, steps=3, warmup=0.2)},
}

#: Robust accuracy is measured with these attacks, on the first 1,000 t10k images.
EVAL_ATTACKS = {"L2 1.0": PGD("l2", 1.0, steps=20), "Linf 0.1": PGD("linf", 0.1, steps=20)}


@dataclass(frozen=True)
class Sizes:
    """How much each column measures (``--quick``: a smoke test's sizes)."""

    fill_samples: int = 1000
    wrong_images: int = 100
    wrong_samples: int = 300
    tolerance_cap: int = 3000
    robust_images: int = 1000
    test_images: int | None = None  # all t10k images
    epochs: int | None = None  # the recipe's


QUICK = Sizes(
    fill_samples=16, wrong_images=4, wrong_samples=8, tolerance_cap=64, robust_images=8, test_images=50, epochs=1
)
TOLERANCE = 0.15


def trained(name: str, dataset: str, arch: str, data_dir: Path, out: Path, sizes: Sizes) -> torch.nn.Module:
    """The variant's model: the shipped weights for ``standard``, else trained with the
    shipped recipe plus the variant's change (kept in ``out``)."""
    entry = shipped_model(dataset, arch)
    weights = shipped_weights(dataset, arch, None)
    if VARIANTS[name] is None:
        return entry.build(weights)
    path = out / f"{dataset}_{arch}_{name}.pt"
    model = entry.builder(**weights.builder_kwargs)
    if path.exists():
        model.load_state_dict(load_tensors_file(path))
        return model.eval()
    recipe = weights.meta["recipe"]
    images, labels = load_tensors(dataset, data_dir / dataset, train=True)
    chosen = split_training_set(dataset, labels).train
    torch.manual_seed(recipe["seed"])
    model = entry.builder(**weights.builder_kwargs)
    began = time.perf_counter()
    train_model(
        model,
        (images[chosen], labels[chosen]),
        epochs=sizes.epochs or recipe["epochs"],
        batch_size=recipe["batch_size"],
        lr=recipe["lr"],
        seed=recipe["seed"],
        max_shift=recipe["max_shift"],
        mask_augment=recipe.get("mask_augment", 0.0),
        show_progress=False,
        **VARIANTS[name],
    )
    print(f"{name}: trained in {time.perf_counter() - began:.0f} s", flush=True)
    save_tensors_file(model.state_dict(), path)
    return model.eval()


def split_images(dataset: str, data_dir: Path, split: str, n: int) -> tuple[torch.Tensor, torch.Tensor, int]:
    """The images of ``split``, their labels and the reproduction's seed for them."""
    config = RunConfig.create(dataset)
    if split == "test":
        images, labels = load_tensors(dataset, data_dir / dataset, train=False)
        return images[:n], labels[:n], config.seed
    images, labels = validation_images(dataset, data_dir / dataset, n)
    return images, labels, config.validation_seed


def rebuilt(model, images: torch.Tensor, seed: int, fixed: torch.Tensor | None) -> torch.Tensor:
    """``x_k`` of the progressive rebuild, in batches of 50 sharing a partition."""
    method, finals = ProgressiveMaskFill(model), []
    for start in range(0, len(images), 50):
        target = None if fixed is None else fixed[start : start + 50]
        finals.append(method.attribute(images[start : start + 50], target=target, n_steps=4, seed=seed + start))
    return torch.cat(finals)


def percent(hits: torch.Tensor) -> float:
    return round(100 * float(hits.double().mean()), 1)


def measure(model, judge, dataset: str, data_dir: Path, split: str, n: int, sizes: Sizes) -> dict:
    images, _, seed = split_images(dataset, data_dir, split, n)
    n_classes = len(CLASS_NAMES[dataset])
    test_images, test_labels = load_tensors(dataset, data_dir / dataset, train=False)
    test_images, test_labels = test_images[: sizes.test_images], test_labels[: sizes.test_images]
    row = {"clean t10k": round(100 * evaluate_accuracy(model, test_images, test_labels), 2)}
    for label, attack in EVAL_ATTACKS.items():
        row[f"robust {label}"] = round(
            100
            * robust_accuracy(model, test_images[: sizes.robust_images], test_labels[: sizes.robust_images], attack),
            1,
        )
    with torch.no_grad():
        y0 = model(images).argmax(1)
    fills = {}
    for selection in ("correct", "all"):
        fill = MaskFill(model).attribute(images, n_samples=sizes.fill_samples, selection=selection, seed=seed)
        agreement = inpainting_agreement(fill, images)
        with torch.no_grad():
            read = judge(prototype(fill)).argmax(1) == y0
        row[f"AUC {selection}"] = round(float(agreement.auc.nanmedian()), 3)
        row[f"IoU {selection}"] = round(float(agreement.iou.nanmedian()), 3)
        row[f"judge {selection}"] = percent(read)
        row[f"judge per class {selection}"] = [
            percent(read[y0 == c]) if (y0 == c).any() else None for c in range(n_classes)
        ]
        fills[selection] = fill
    row["wrong-target"], _ = wrong_target_control(
        model, images[: sizes.wrong_images], n_classes=n_classes, n_samples=sizes.wrong_samples, seed=seed
    )
    for targets, fixed in (("per step", None), ("fixed y_0", y0)):
        final = rebuilt(model, images, seed, fixed)
        with torch.no_grad():
            row[f"progressive {targets}"] = percent(judge(final).argmax(1) == y0)
    method = MaskFill(model)
    method.attribute(images[: sizes.wrong_images], n_samples=sizes.tolerance_cap, tolerance=TOLERANCE, seed=seed)
    row["kept to tolerance 0.15"] = round(float(method.counts.n_kept.double().mean()), 0)
    row["converged"] = percent(method.counts.converged)
    return row, fills["correct"]


def draw(out: Path, split: str, dataset: str, arch: str, images, labels, prototypes: dict[str, torch.Tensor]) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    columns = [int(i) for c in range(10) for i in (labels == c).nonzero()[:2, 0]]
    rows = ["image", *prototypes]
    figure, axes = plt.subplots(len(rows), len(columns), figsize=(len(columns) * 0.75, len(rows) * 0.85))
    for r, name in enumerate(rows):
        for c, index in enumerate(columns):
            picture = images[index, 0] if name == "image" else prototypes[name][index, 0]
            axes[r, c].imshow(picture, cmap="gray", vmin=0, vmax=1)
            axes[r, c].set_xticks([]), axes[r, c].set_yticks([])
            if c == 0:
                axes[r, c].set_ylabel(name, rotation=0, ha="right", va="center", fontsize=8)
            if r == 0:
                axes[r, c].set_title(CLASS_NAMES[dataset][int(labels[index])][:7], fontsize=7)
    figure.suptitle(
        f"{dataset} {split} images (the first two of each class): strict prototypes T(fill), default T",
        fontsize=9,
    )
    figure.tight_layout()
    path = out / f"figure_{dataset}_{arch}_{split}.png"
    write_atomically(path, lambda handle: figure.savefig(handle, format="png", dpi=110))
    plt.close(figure)
    return path


#: The table's columns: (header, JSON key, format)
COLUMNS = (
    ("clean t10k %", "clean t10k", "{:.2f}"),
    ("robust L2 1.0 %", "robust L2 1.0", "{:.1f}"),
    ("robust L-inf 0.1 %", "robust Linf 0.1", "{:.1f}"),
    ("median AUC", "AUC correct", "{:.3f}"),
    ("median IoU", "IoU correct", "{:.3f}"),
    ("judge reads T(fill) %", "judge correct", "{:.1f}"),
    ("wrong-target %", "wrong-target", "{:.1f}"),
    ("progressive, per-step targets %", "progressive per step", "{:.1f}"),
    ("progressive, fixed y_0 %", "progressive fixed y_0", "{:.1f}"),
    ("mean kept masks to tolerance 0.15", "kept to tolerance 0.15", "{:.0f}"),
)


def table(rows: dict[str, dict], dataset: str) -> str:
    """The rows as Markdown, then the judge's reading per class."""
    lines = ["| training | " + " | ".join(h for h, _, _ in COLUMNS) + " |", "|---" * (len(COLUMNS) + 1) + "|"]
    for name, row in rows.items():
        lines.append(f"| {name} | " + " | ".join(f.format(row[key]) for _, key, f in COLUMNS) + " |")
    classes = CLASS_NAMES[dataset]
    lines += ["", "| training | " + " | ".join(classes) + " |", "|---" * (len(classes) + 1) + "|"]
    for name, row in rows.items():
        cells = ["–" if v is None else f"{v:.0f}" for v in row["judge per class correct"]]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


#: The settings of T scored by ``--displays``: the grid the package's default was chosen
#: from (experiments/choose_display.py), binarized.
DISPLAY_GRID = tuple(
    TransformSetting(threshold=tau, scale_percentile=p)
    for p in (100.0, 99.0, 98.0, 95.0, 90.0, 80.0)
    for tau in (0.05, 0.1, 0.2, 0.3, 0.5)
)


def displays(model, judge, images: torch.Tensor, fill: torch.Tensor) -> str:
    """The default T and the best of :data:`DISPLAY_GRID` on ``fill`` by the default's
    criterion (the judge's reading / 100 + the median IoU with the ink)."""
    with torch.no_grad():
        labels = model(images).argmax(1)
    truth = ink(images)

    scores = {}  # setting -> (merit, judge, IoU), each setting's picture drawn once
    for setting in DISPLAY_GRID:
        shown = prototype(fill, transform=setting)
        read = judge_accuracy(judge, shown, labels)
        iou = float(intersection_over_union(shown > 0.5, truth).nanmedian())
        scores[setting] = (read / 100 + iou, read, iou)
    default, best = TransformSetting(), max(DISPLAY_GRID, key=lambda s: scores[s][0])
    return " | ".join(
        f"{label} {setting}: judge {scores[setting][1]:.1f} %, IoU {scores[setting][2]:.3f}, "
        f"merit {scores[setting][0]:.3f}"
        for label, setting in (("default", default), ("best", best))
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--dataset", default="mnist")
    parser.add_argument("--arch", default="simple-cnn")
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--split", choices=("validation", "test"), default="validation")
    parser.add_argument("--n-images", type=int, default=200)
    parser.add_argument("--figure", action="store_true")
    parser.add_argument(
        "--displays", action="store_true", help="also score other settings of T on each variant's kept fills"
    )
    parser.add_argument("--quick", action="store_true", help="a smoke test's sizes: tiny counts, one epoch")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    judge = shipped_model(args.dataset, JUDGE_ARCH[args.dataset]).build()
    sizes = QUICK if args.quick else Sizes()
    prototypes, rows, models, kept = {}, {}, {}, {}
    for name in args.variants:
        model = models[name] = trained(name, args.dataset, args.arch, args.data_dir, args.out, sizes)
        stem = f"{args.dataset}_{args.arch}_{name}_{args.split}_{args.n_images}"
        result, fills = args.out / f"{stem}.json", args.out / f"{stem}_fill.pt"
        if not result.exists():
            began = time.perf_counter()
            row, fill = measure(model, judge, args.dataset, args.data_dir, args.split, args.n_images, sizes)
            row["seconds"] = round(time.perf_counter() - began)
            save_tensors_file(fill, fills)
            text = json.dumps(row, indent=1)
            write_atomically(result, lambda handle, text=text: handle.write(text.encode()))
        row = json.loads(result.read_text())
        rows[name] = row
        print(name, json.dumps(row), flush=True)
        kept[name] = load_tensors_file(fills)
        prototypes[name] = prototype(kept[name])
    text = table(rows, args.dataset) + "\n"
    write_atomically(
        args.out / f"table_{args.dataset}_{args.arch}_{args.split}.md", lambda handle: handle.write(text.encode())
    )
    if args.figure:
        images, labels, _ = split_images(args.dataset, args.data_dir, args.split, args.n_images)
        print("wrote", draw(args.out, args.split, args.dataset, args.arch, images, labels, prototypes))
    if args.displays:
        images, _, _ = split_images(args.dataset, args.data_dir, args.split, args.n_images)
        for name in args.variants:
            print(name, displays(models[name], judge, images, kept[name]), flush=True)


if __name__ == "__main__":
    main()
