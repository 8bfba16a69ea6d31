"""What limits the inpainting AUC and the IoU: the fill, or how it is shown? (#22)

    python benchmarks/fill_limits.py --data-dir ../shared/data --study STUDY.pt \\
        [--dataset mnist --arch resnet5 --weights MNIST_5K_FLATTEN]

Reads the fills a mask study saved (``captum-fillblanks mask-study``: the first test
images of a reproduction, their fill at the study's largest count) and prints, as the
median over the images:

- AUC, own ink: the inpainting AUC of the fill against the image's own ink (SPEC);
- AUC, class ink: the same fill against the ink of the mean training image of the
  image's class (``mean > 0.5``): how much of what the fill draws is the class, not this
  image;
- AUC, another image's ink: against the ink of another study image of the same class
  (the next one, cyclically): a prototype of the class that knew nothing of this image
  would score the same here as against its own ink;
- IoU at the default ``T``, and the best IoU any threshold of the fill reaches on each
  image (chosen per image, with the answer: an upper bound for every binarized display
  of this fill that ranks pixels by their fill);
- AUC after a Gaussian blur of the fill (sigma 0.5 and 1 pixel).

Recorded in ``docs/reproduction/README.md`` ("What limits the AUC and the IoU").
"""

import argparse
from pathlib import Path

import torch
import torch.nn.functional as F

from captum_fillblanks.attr.readability import ink, inpainting_agreement, roc_auc
from captum_fillblanks.attr.transforms import TransformSetting
from captum_fillblanks.paper.data import load_tensors
from captum_fillblanks.paper.files import load_tensors_file
from captum_fillblanks.paper.reproduce import RunConfig
from captum_fillblanks.paper.reproduce.run import load_test_images


def blurred(fill: torch.Tensor, sigma: float) -> torch.Tensor:
    radius = int(3 * sigma + 0.5)
    taps = torch.exp(-(torch.arange(-radius, radius + 1, dtype=fill.dtype) ** 2) / (2 * sigma**2))
    taps = taps / taps.sum()
    out = F.conv2d(F.pad(fill, (radius, radius, 0, 0), mode="replicate"), taps.reshape(1, 1, 1, -1))
    return F.conv2d(F.pad(out, (0, 0, radius, radius), mode="replicate"), taps.reshape(1, 1, -1, 1))


def best_iou(fill: torch.Tensor, truth: torch.Tensor) -> torch.Tensor:
    """Per image, the largest IoU of ``fill > t`` with ``truth`` over every threshold
    ``t`` between two of the image's fill values (the top-j pixels, for every j)."""
    best = []
    for row, positive in zip(fill.flatten(1), truth.flatten(1)):
        order = torch.argsort(row, descending=True)
        hits = positive[order].double().cumsum(0)
        taken = torch.arange(1, len(row) + 1, dtype=torch.float64)
        best.append(float((hits / (taken + positive.sum() - hits)).max()))
    return torch.tensor(best)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--study", type=Path, required=True)
    parser.add_argument("--dataset", default="mnist")
    parser.add_argument("--arch", default="resnet5")
    parser.add_argument("--weights", default=None)
    args = parser.parse_args()
    study = load_tensors_file(args.study)
    fill = study["fill"][-1].double()
    config = RunConfig.create(args.dataset, arch=args.arch, weights=args.weights, n_images=fill.shape[0])
    images, labels, n_classes = load_test_images(config, str(args.data_dir / args.dataset))
    train_images, train_labels = load_tensors(args.dataset, args.data_dir / args.dataset, train=True)
    class_mean = torch.stack([train_images[train_labels == c].mean(0) for c in range(n_classes)])
    own = ink(images)
    of_class = ink(class_mean[labels])
    other = torch.empty_like(labels)
    for c in range(n_classes):
        members = (labels == c).nonzero().flatten()
        other[members] = members.roll(-1)
    summed = fill.sum(1, keepdim=True)
    agreement = inpainting_agreement(fill.float(), images, transform=TransformSetting())
    print(f"{args.study.name}: {fill.shape[0]} images, {int(study['counts'][-1]):,} kept masks\n")
    print(
        "| AUC, own ink | AUC, class ink | AUC, another image's ink | IoU, default T | best IoU of any threshold "
        "| AUC, blur 0.5 | AUC, blur 1 |"
    )
    print("|---|---|---|---|---|---|---|")
    cells = [
        roc_auc(summed, own).nanmedian(),
        roc_auc(summed, of_class).nanmedian(),
        roc_auc(summed, own[other]).nanmedian(),
        agreement.iou.nanmedian(),
        best_iou(summed, own).median(),
        roc_auc(blurred(summed, 0.5), own).nanmedian(),
        roc_auc(blurred(summed, 1.0), own).nanmedian(),
    ]
    print("| " + " | ".join(f"{float(c):.3f}" for c in cells) + " |")


if __name__ == "__main__":
    main()
