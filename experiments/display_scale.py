"""Does the display lose what the fill knows? The prototype drawn with other scales of T,
read by the shipped judge and compared with the image's ink (issue #22, step 2).

    python experiments/display_scale.py [--dataset mnist] [--n-samples 1000]

The images: all 100 bundled samples of the data set (10 per class, held out of every
shipped model's training), so no choice is made on test images. Each shipped model's
fill is the package's default (``MaskFill``, ``selection="correct"``); only the display
changes:

- ``max_abs`` (the default ``T`` when this was measured; named in full here): divide by
  the largest ``|fill|``, keep the positive part, binarize at ``tau = 0.2`` (or not);
- ``percentile p``: divide by the ``p``-th percentile of ``|fill|`` instead and clip to
  ``[-1, 1]`` (``TransformSetting(scale_percentile=p)``), so one hot pixel no longer dims
  the rest;
- ``patch mean``: average the fill over each 2 x 2 patch (the mask's unit) first.

Read by the judge (LeNet-5, trained separately) against each model's own label, by the
model itself, and as IoU with the ink (``x > 0.5``; a display that is not binarized is
read at 0.5).
"""

import argparse
import dataclasses

import torch
import torch.nn.functional as F

from captum_fillblanks import MaskFill, TransformSetting, prototype
from captum_fillblanks.attr.readability import ink, intersection_over_union, judge_accuracy
from captum_fillblanks.paper.data import load_samples
from captum_fillblanks.paper.models import JUDGE_ARCH, list_shipped_models, shipped_model

TAU = 0.2


def percentile_display(fill: torch.Tensor, percentile: float, binarized: bool) -> torch.Tensor:
    return prototype(fill, transform=TransformSetting(threshold=TAU, binarized=binarized, scale_percentile=percentile))


def patch_mean(fill: torch.Tensor) -> torch.Tensor:
    return F.interpolate(F.avg_pool2d(fill, 2, ceil_mode=True), size=fill.shape[-2:], mode="nearest")


def displays(fill: torch.Tensor) -> dict[str, torch.Tensor]:
    largest = TransformSetting(threshold=TAU, scale_percentile=100.0)  # the default T when this was measured
    shown = {
        "max_abs, tau 0.2 (default T)": prototype(fill, transform=largest),
        "max_abs, not binarized": prototype(fill, transform=dataclasses.replace(largest, binarized=False)),
    }
    for p in (99, 95, 90):
        shown[f"percentile {p}, tau 0.2"] = percentile_display(fill, p, True)
        shown[f"percentile {p}, not binarized"] = percentile_display(fill, p, False)
    shown["patch mean, max_abs, tau 0.2"] = prototype(patch_mean(fill), transform=largest)
    shown["patch mean, percentile 95, tau 0.2"] = percentile_display(patch_mean(fill), 95, True)
    return shown


def draw(images: torch.Tensor, classes: torch.Tensor, shown: dict[str, torch.Tensor], path: str, title: str) -> None:
    """The first image of each class, then its prototype under three displays."""
    from matplotlib.figure import Figure

    first = [int((classes == c).nonzero()[0, 0]) for c in range(10)]
    rows = {"image x": images, **{k: shown[k] for k in ("max_abs, tau 0.2 (default T)", "percentile 95, tau 0.2",
                                                          "percentile 95, not binarized")}}  # fmt: skip
    figure = Figure(figsize=(10, 4.6), layout="constrained")
    axes = figure.subplots(len(rows), 10)
    for row, (name, values) in zip(axes, rows.items()):
        for axis, index in zip(row, first):
            axis.imshow(values[index, 0].detach(), cmap="gray", vmin=0, vmax=1)
            axis.set_xticks([])
            axis.set_yticks([])
        row[0].set_ylabel(name.replace(", ", "\n", 1), fontsize=7)
    figure.suptitle(f"{title}; the first bundled sample of each class; gray scale 0 (black) to 1 (white)", fontsize=9)
    figure.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", default="mnist", choices=sorted(JUDGE_ARCH))
    parser.add_argument("--n-samples", type=int, default=1000)
    parser.add_argument("--figure", help="also draw the first image of each class under three displays into this PNG")
    args = parser.parse_args()
    images, labels_of_samples = load_samples(args.dataset)
    truth = ink(images)
    judge = shipped_model(args.dataset, JUDGE_ARCH[args.dataset]).build()
    print(f"{len(images)} bundled {args.dataset} images, {args.n_samples} kept masks each (MaskFill defaults)\n")
    print("| model | display | judge reads it | the model reads it | median IoU with the ink |")
    print("|---|---|---|---|---|")
    for dataset, arch in list_shipped_models(args.dataset):
        if arch == JUDGE_ARCH[dataset]:
            continue
        entry = shipped_model(dataset, arch)
        trained_here = [m for m in type(entry.weights) if m.meta["dataset"] == entry.weights.meta["dataset"]]
        for member in dict.fromkeys(trained_here):
            model = entry.build(member)
            with torch.no_grad():
                labels = model(images).argmax(1)
            fill = MaskFill(model).attribute(images, n_samples=args.n_samples, seed=0)
            if args.figure and member is entry.weights and arch == shipped_model(dataset).arch:
                title = f"{entry.name} ({member.name}), {args.n_samples} kept masks"
                draw(images, labels_of_samples, displays(fill), args.figure, title)
            for name, shown in displays(fill).items():
                iou = intersection_over_union(shown > 0.5, truth).nanmedian()
                print(
                    f"| {entry.name} ({member.name}) | {name} | {judge_accuracy(judge, shown, labels):.0f} % "
                    f"| {judge_accuracy(model, shown, labels):.0f} % | {iou:.2f} |",
                    flush=True,
                )


if __name__ == "__main__":
    main()
