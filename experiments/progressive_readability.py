"""Why the progressive rebuild decays into dots, and what an averaged step changes (#22).

    python experiments/progressive_readability.py --data-dir ../shared/data [--split validation|test]
        [--weights simple-cnn:MNIST_5K resnet5:MNIST_5K_FLATTEN ...] [--variants 1:0.25 64:0.5 ...]

The images: 200 MNIST images, either the reproduction's validation images (20 per
class, held out of every shipped model's training: the split the choice is made on) or
the first 200 t10k images (the reproduction's first test images: read after the choice).
Each shipped MNIST model (not the judge) rebuilds them with ``ProgressiveMaskFill``,
``k = 4`` steps of 2x2 patches, the default ``T`` (binarized), in batches of 50 that
share a partition (seeded by the batch), under each variant:

- the paper's step (``n_samples=1``): one gradient, at the group's own mask;
- the averaged step (``n_samples = n``): the mean over the group's own mask and
  ``n - 1`` masks that also blank ``context_ratio`` of the rest.

Each with per-step targets (the paper: each step pushes toward its own prediction) and
with a fixed target (``y_0``, the model's label of the image). The columns, in percent
over the images (the median for IoU):

- ``y_k``: the model calls ``x_k`` the class the last step pushed toward (the paper's
  reading, the model agreeing with itself);
- recovery: the model calls ``x_k`` its label of the original image;
- judge: the data set's judge (LeNet-5, trained separately) calls ``x_k`` that label;
- IoU: ``x_k``'s ink against the original image's ink (``x > 0.5``);
- dots: the share of ``x_k``'s ink pixels with no ink among their 8 neighbours.

Recorded in ``docs/reproduction/README.md`` ("Progressive: why the rebuild decays into
dots").
"""

import argparse
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from captum_fillblanks import ProgressiveMaskFill
from captum_fillblanks.attr.readability import ink, intersection_over_union
from captum_fillblanks.paper.data import load_tensors
from captum_fillblanks.paper.models import JUDGE_ARCH, list_shipped_models, shipped_model
from captum_fillblanks.paper.reproduce import RunConfig, validation_images

#: (n_samples, context_ratio): the paper's step, then averaged steps
VARIANTS = ((1, 0.25), (4, 0.25), (16, 0.25), (64, 0.25), (64, 0.5), (256, 0.25))
BATCH = 50


def mnist_images(data_dir: Path, split: str, n: int = 200) -> torch.Tensor:
    if split == "test":
        images, _ = load_tensors("mnist", data_dir / "mnist", train=False)
        return images[:n]
    return validation_images("mnist", data_dir / "mnist", n)[0]


def isolated_share(images: torch.Tensor) -> torch.Tensor:
    """Per image, the share of ink pixels with no ink among their 8 neighbours."""
    inked = ink(images).float()
    neighbours = F.conv2d(inked, torch.ones(1, 1, 3, 3), padding=1) - inked
    alone = (inked > 0) & (neighbours == 0)
    return alone.flatten(1).sum(1) / inked.flatten(1).sum(1).clamp(min=1)


def mnist_models(names: list[str] | None = None):
    """Every shipped MNIST model but the judge, with each of its MNIST weights (or only
    those named, as ``ARCH:MEMBER``)."""
    for dataset, arch in list_shipped_models("mnist"):
        if arch == JUDGE_ARCH[dataset]:
            continue
        entry = shipped_model(dataset, arch)
        for member in type(entry.weights):
            if member.meta["dataset"] == entry.weights.meta["dataset"] and (
                names is None or f"{arch}:{member.name}" in names
            ):
                yield f"{entry.name} ({member.name})", entry.build(member)


def rebuild(model, images: torch.Tensor, seed: int, fixed: torch.Tensor | None, n_samples: int, ratio: float):
    method = ProgressiveMaskFill(model)
    finals, last = [], []
    for start in range(0, len(images), BATCH):
        rows = slice(start, start + BATCH)
        target = None if fixed is None else fixed[rows]
        finals.append(
            method.attribute(
                images[rows], target=target, n_steps=4, seed=seed + start, n_samples=n_samples, context_ratio=ratio
            )
        )
        last.append(method.steps.labels[-1])
    return torch.cat(finals), torch.cat(last)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--split", choices=("validation", "test"), default="validation")
    parser.add_argument("--variants", nargs="+", help="only these, as N_SAMPLES:CONTEXT_RATIO (default: VARIANTS)")
    parser.add_argument("--weights", nargs="+", help="only these, as ARCH:MEMBER (default: every MNIST one)")
    parser.add_argument("--n-images", type=int, default=200)
    args = parser.parse_args()
    variants = VARIANTS
    if args.variants:
        variants = tuple((int(n), float(r)) for n, r in (v.split(":") for v in args.variants))
    torch.manual_seed(0)
    images = mnist_images(args.data_dir, args.split, args.n_images)
    seed = RunConfig.create("mnist").validation_seed if args.split == "validation" else RunConfig.create("mnist").seed
    judge = shipped_model("mnist", JUDGE_ARCH["mnist"]).build()
    truth = ink(images)
    print(f"{len(images)} MNIST {args.split} images, k = 4, 2x2 patches, default T\n")
    print("| model | targets | n_samples | context_ratio | y_k | recovery | judge | IoU | dots | s |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name, model in mnist_models(args.weights):
        with torch.no_grad():
            y0 = model(images).argmax(1)
        for targets in ("per step", "fixed y_0"):
            for n_samples, ratio in variants:
                began = time.perf_counter()
                fixed = y0 if targets == "fixed y_0" else None
                final, y_k = rebuild(model, images, seed, fixed, n_samples, ratio)
                seconds = time.perf_counter() - began
                with torch.no_grad():
                    predicted, judged = model(final).argmax(1), judge(final).argmax(1)
                iou = intersection_over_union(ink(final), truth).median()
                print(
                    f"| {name} | {targets} | {n_samples} | "
                    f"{ratio if n_samples > 1 else '-'} | {100 * (predicted == y_k).float().mean():.1f} | "
                    f"{100 * (predicted == y0).float().mean():.1f} | {100 * (judged == y0).float().mean():.1f} | "
                    f"{iou:.2f} | {100 * isolated_share(final).mean():.1f} | {seconds:.0f} |",
                    flush=True,
                )


if __name__ == "__main__":
    main()
