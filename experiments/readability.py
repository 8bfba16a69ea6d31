"""Readability checks on the bundled samples: inpainting agreement (median AUC and IoU),
the shipped judge's reading of the prototypes and the wrong-target control, for the
shipped models of a data set and a random-init one.

    python experiments/readability.py [--dataset mnist] [--n-images 40] [--n-samples 1000]

The images: the first ``n_images / 10`` bundled samples of each class (held out from
every shipped model's training). Inpainting agreement and the wrong-target control use
fills with ``selection="all"`` (the model, not its selection) and the default ``T``;
ink is ``x > 0.5`` on both data sets. The judge (:data:`JUDGE_ARCH`, LeNet-5, trained
separately on the same images) classifies the strict prototypes as the package's
defaults make them (``MaskFill`` with ``selection="correct"``, ``prototype(fill)``),
against each model's own label of the image; its reading of the images themselves is
shown beside it.
"""

import argparse

import torch

from captum_fillblanks import MaskFill, prototype
from captum_fillblanks.attr.readability import inpainting_agreement, judge_accuracy, wrong_target_control
from captum_fillblanks.paper.data import load_samples
from captum_fillblanks.paper.models import JUDGE_ARCH, list_shipped_models, shipped_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", default="mnist", choices=sorted(JUDGE_ARCH))
    parser.add_argument("--n-images", type=int, default=40)
    parser.add_argument("--n-samples", type=int, default=1000)
    args = parser.parse_args()
    images, labels = load_samples(args.dataset)
    per_class = max(1, args.n_images // 10)
    chosen = torch.cat([(labels == c).nonzero()[:per_class, 0] for c in range(10)])
    images = images[chosen]
    judge_entry = shipped_model(args.dataset, JUDGE_ARCH[args.dataset])
    judge = judge_entry.build()
    models = {}
    for dataset, arch in list_shipped_models(args.dataset):
        if arch == JUDGE_ARCH[dataset]:
            continue
        entry = shipped_model(dataset, arch)
        members = [m for m in type(entry.weights) if m.meta["dataset"] == entry.weights.meta["dataset"]]
        for member in dict.fromkeys(members):  # DEFAULT is an alias
            models[f"{entry.name} ({member.name})"] = entry.build(member)
        with torch.random.fork_rng():
            torch.manual_seed(0)
            models[f"{entry.name}, random init"] = entry.builder(**entry.weights.builder_kwargs).eval()
    judge_on_images = judge_accuracy(judge, images, labels[chosen])
    print(
        f"{len(images)} bundled {args.dataset} images, {args.n_samples} masks each; judge {judge_entry.name} "
        f"({judge_entry.weights!r}) reads the images themselves: {judge_on_images:.1f} %\n"
    )
    print("| model | median AUC | median IoU | judge reads the strict prototypes | wrong-target control |")
    print("|---|---|---|---|---|")
    for name, model in models.items():
        fill = MaskFill(model).attribute(images, n_samples=args.n_samples, selection="all", seed=0)
        agreement = inpainting_agreement(fill, images)
        with torch.no_grad():
            own_labels = model(images).argmax(1)
        default_fill = MaskFill(model).attribute(images, n_samples=args.n_samples, seed=0)
        judged = judge_accuracy(judge, prototype(default_fill), own_labels)
        rate, _ = wrong_target_control(model, images, n_classes=10, n_samples=args.n_samples, seed=0)
        print(
            f"| {name} | {agreement.auc.nanmedian():.2f} | {agreement.iou.nanmedian():.2f} | {judged:.1f} % "
            f"| {rate:.1f} % |",
            flush=True,
        )


if __name__ == "__main__":
    main()
