"""ResNet5 with and without anti-aliased downsampling: the grid in its fills, and what a
reader sees of them (#22).

    python experiments/antialias.py --data-dir ../shared/data [--n-samples 1000]
    python experiments/antialias.py --data-dir ../shared/data --figure docs/figures/antialias_prototypes.png

Each shipped ResNet5 weight file beside its ``antialias=True`` twin (the same recipe:
data, epochs, seed; :class:`~captum_fillblanks.paper.models.BlurPool2d` before every
subsampling). The images: the reproduction's 200 validation images of the data set (20
per class, held out of every shipped model's training; never a test image). Each model
fills them as the package's defaults do (``MaskFill``, ``selection="correct"``,
``--n-samples`` kept masks, the validation seed, the default ``T``). The columns:

- t10k: the weights' test accuracy (their meta);
- k = 7, k = 14: the share (percent) of the fills' spectral energy at the period-4 and
  period-2 frequencies of the 28-pixel side (``experiments/fill_spectrum.py``; a
  smooth spectrum has about 2 and 0.5 there);
- AUC, IoU: the median inpainting AUC of the fill and IoU of the prototype ``T(fill)``
  with the image's ink (``x > 0.5``);
- judge: the data set's judge (LeNet-5, trained separately) reads the prototypes as the
  model's label of the image;
- wrong target: the wrong-target control (first 100 images, 300 masks; must stay low);
- paper-style, control: the model's reading of ``M(x) + T(fill)`` and of ``M(x)`` alone
  against its label of ``x`` (one scoring mask per image).

With ``--figure`` it draws instead, for each pair, the first of those validation images
of each class, its fill as a signed heat map and ``T(fill)`` not binarized (the whole
normalized fill, where a grid shows), from the plain model and its twin.

Recorded in ``docs/reproduction/README.md`` ("The grid in ResNet5's fills").
"""

import argparse
import time
from pathlib import Path

import torch

from captum_fillblanks import MaskFill
from captum_fillblanks.attr.metrics import classification_scores, consistency_counts
from captum_fillblanks.attr.readability import readability_summary
from captum_fillblanks.attr.transforms import TransformSetting, prototype
from captum_fillblanks.paper.data import CLASS_NAMES
from captum_fillblanks.paper.models import JUDGE_ARCH, ResNet5_Weights, resnet5, shipped_model
from captum_fillblanks.paper.reproduce import RunConfig, validation_images

PAIRS = {
    "mnist": [
        (ResNet5_Weights.MNIST_5K, ResNet5_Weights.MNIST_5K_ANTIALIAS),
        (ResNet5_Weights.MNIST_5K_FLATTEN, ResNet5_Weights.MNIST_5K_FLATTEN_ANTIALIAS),
    ],
    "fashion-mnist": [(ResNet5_Weights.FASHION_MNIST, ResNet5_Weights.FASHION_MNIST_ANTIALIAS)],
}


def spectral_share(fill: torch.Tensor, k: int) -> float:
    """Percent of the fills' energy at frequency ``k`` of the side (rows and columns)."""
    side = fill.shape[-1]
    power = (torch.fft.fft2(fill[:, 0]).abs() ** 2).mean(0)
    power[0, 0] = 0
    power = power / power.sum()
    rows = power[k].sum() + (power[side - k].sum() if 0 < k < side / 2 else 0)
    cols = power[:, k].sum() + (power[:, side - k].sum() if 0 < k < side / 2 else 0)
    return 100 * float(rows + cols) / 2


def draw_pairs(data_dir: Path, n_samples: int, path: Path) -> None:
    """For each pair: the first validation image of each class, then for the plain model
    and its twin the fill (signed, each panel at its 99th percentile of |fill|) and
    ``T(fill)`` not binarized at the default scale."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pairs = [(dataset, pair) for dataset, members in PAIRS.items() for pair in members]
    figure, axes = plt.subplots(5 * len(pairs), 10, figsize=(11.5, 1.15 * 5 * len(pairs) + 0.6))
    shown = TransformSetting(binarized=False)
    for p, (dataset, pair) in enumerate(pairs):
        images, _ = validation_images(dataset, data_dir / dataset, 10)  # one of each class, in order
        seed = RunConfig.create(dataset).validation_seed
        rows = [("x", images, "gray")]
        for member in pair:
            fill = MaskFill(resnet5(weights=member)).attribute(images, n_samples=n_samples, seed=seed)
            scale = torch.quantile(fill.abs().flatten(1), 0.99, dim=1).clamp(min=1e-12).reshape(-1, 1, 1, 1)
            rows += [
                (f"{member.name}:\nfill", fill / scale, "bwr"),
                (f"{member.name}:\nT(fill)", prototype(fill, transform=shown), "gray"),
            ]
        for r, (name, pictures, cmap) in enumerate(rows):
            for c in range(10):
                axis = axes[5 * p + r, c]
                low = -1 if cmap == "bwr" else 0
                axis.imshow(pictures[c, 0].numpy(), cmap=cmap, vmin=low, vmax=1)
                axis.set_xticks([])
                axis.set_yticks([])
                if r == 0:
                    axis.set_title(CLASS_NAMES[dataset][c], fontsize=7)
            axes[5 * p + r, 0].set_ylabel(name, fontsize=6.5, rotation=0, ha="right", va="center")
    figure.suptitle(
        f"ResNet5 and its anti-aliased twin: the first validation image of each class, {n_samples:,} kept masks;\n"
        f"fill: red adds ink, blue removes it, each panel at its 99th percentile of |fill|; T(fill): {shown}",
        fontsize=8,
    )
    figure.tight_layout(rect=(0, 0, 1, 0.975))
    figure.savefig(path, dpi=100)
    print(f"wrote {path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--n-samples", type=int, default=1000)
    parser.add_argument("--n-images", type=int, default=200)
    parser.add_argument("--wrong-target-samples", type=int, default=300)
    parser.add_argument("--figure", type=Path, help="draw the prototypes figure there instead of the table")
    args = parser.parse_args()
    if args.figure is not None:
        draw_pairs(args.data_dir, args.n_samples, args.figure)
        return
    print(f"{args.n_images} validation images per data set, {args.n_samples} kept masks, default T\n")
    print("| weights | t10k | k = 7 | k = 14 | AUC | IoU | judge | wrong target | paper-style | control | s |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for dataset, pairs in PAIRS.items():
        images, _ = validation_images(dataset, args.data_dir / dataset, args.n_images)
        seed = RunConfig.create(dataset).validation_seed
        judge = shipped_model(dataset, JUDGE_ARCH[dataset]).build()
        for member in (m for pair in pairs for m in pair):
            began = time.perf_counter()
            model = resnet5(weights=member)
            fill = MaskFill(model).attribute(images, n_samples=args.n_samples, seed=seed)
            summary = readability_summary(
                model,
                judge,
                images[:100],
                fill[:100],
                n_classes=10,
                wrong_target_samples=args.wrong_target_samples,
                seed=seed,
            )
            judged = readability_summary(model, judge, images, fill, n_classes=10, wrong_target_samples=None)
            counts = consistency_counts(
                model, images, n_classes=10, fill=fill, rows=("control", "paper-style"), seed=seed
            )
            scores = {row: classification_scores(c)["accuracy"] for row, c in counts.confusion.items()}
            print(
                f"| {member!r} | {100 * member.meta['t10k_accuracy']:.2f} | {spectral_share(fill, 7):.1f} | "
                f"{spectral_share(fill, 14):.1f} | {judged.auc:.2f} | {judged.iou:.2f} | {judged.judge:.1f} | "
                f"{summary.wrong_target:.1f} | {scores['paper-style']:.1f} | {scores['control']:.1f} | "
                f"{time.perf_counter() - began:.0f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
