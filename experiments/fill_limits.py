"""What limits the inpainting AUC and the IoU: the fill, or how it is shown? (#22)

    python experiments/fill_limits.py --data-dir ../shared/data --study STUDY.pt \\
        [--dataset mnist --arch resnet5 --weights MNIST_5K_FLATTEN]
    python experiments/fill_limits.py --data-dir ../shared/data --validation \\
        [--dataset mnist --arch resnet5 --weights MNIST_5K_FLATTEN --n-samples 1000]

The fills: either those a mask study saved (``captum-fillblanks mask-study``: the first
test images of a reproduction, at the study's largest count), or, with
``--validation``, fresh fills of the reproduction's 200 validation images (20 per class,
held out of training: the split a display choice may be made on). Printed as medians
over the images:

- AUC against the image's own ink (SPEC's inpainting AUC), against the ink of the
  mean training image of its class (``mean > 0.5``), and against the ink of another
  image of the same class (the next one, cyclically): a fill that drew the class and
  knew nothing of this image would score the same on all three;
- then for the fill as it is and blurred (a Gaussian of sigma 0.5 and 1 pixel, each
  image on its own: ``fill_smoothing.blur``): the AUC against the own ink; the IoU of ``T`` (the package's
  default) with it; the best IoU that any threshold of the fill reaches on each image
  (chosen per image, with the answer: an upper bound for every binarized display that
  ranks pixels by their fill); and the judge (LeNet-5, trained separately) reading
  ``T`` as the model's label of the image.

Recorded in ``docs/reproduction/README.md`` ("What limits the AUC and the IoU").
"""

import argparse
from pathlib import Path

import torch
import torch.nn.functional as F
from torchvision.transforms.functional import gaussian_blur

from captum_fillblanks import MaskFill
from captum_fillblanks.attr.readability import ink, inpainting_agreement, judge_accuracy, roc_auc
from captum_fillblanks.attr.transforms import TransformSetting, prototype
from captum_fillblanks.paper.data import load_tensors
from captum_fillblanks.paper.files import load_tensors_file
from captum_fillblanks.paper.models import JUDGE_ARCH, shipped_model
from captum_fillblanks.paper.reproduce import RunConfig, validation_images
from captum_fillblanks.paper.reproduce.run import load_test_images


def blur(fill: torch.Tensor, sigma: float) -> torch.Tensor:
    """torchvision's Gaussian blur of width ``sigma`` (radius ``3 sigma``), zero outside
    the image; ``sigma = 0``: unchanged. Not part of the method: a diagnosis."""
    if sigma == 0:
        return fill
    radius = int(3 * sigma + 0.5)
    padded = F.pad(fill, (radius,) * 4)
    return gaussian_blur(padded, [2 * radius + 1] * 2, [sigma] * 2)[..., radius:-radius, radius:-radius]


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
    parser.add_argument("--study", type=Path)
    parser.add_argument("--validation", action="store_true")
    parser.add_argument("--dataset", default="mnist")
    parser.add_argument("--arch", default="resnet5")
    parser.add_argument("--weights", default=None)
    parser.add_argument("--n-samples", type=int, default=1000)
    parser.add_argument("--n-images", type=int, default=200, help="with --validation")
    args = parser.parse_args()
    folder = args.data_dir / args.dataset
    train_images, train_labels = load_tensors(args.dataset, folder, train=True)
    entry = shipped_model(args.dataset, args.arch)
    if args.validation:
        config = RunConfig.create(args.dataset, arch=args.arch, weights=args.weights)
        images, labels = validation_images(args.dataset, folder, args.n_images)
        model = entry.build(config.weights)
        fill = MaskFill(model).attribute(images, n_samples=args.n_samples, seed=config.validation_seed)
        source = f"{len(images)} validation images, {args.n_samples:,} kept masks"
    else:
        study = load_tensors_file(args.study)
        fill = study["fill"][-1]
        config = RunConfig.create(args.dataset, arch=args.arch, weights=args.weights, n_images=fill.shape[0])
        images, labels, _ = load_test_images(config, str(folder))
        model = entry.build(config.weights)
        source = f"{args.study.name}: {fill.shape[0]} test images, {int(study['counts'][-1]):,} kept masks"
    n_classes = int(train_labels.max()) + 1
    judge = shipped_model(args.dataset, JUDGE_ARCH[args.dataset]).build()
    with torch.no_grad():
        predicted = model(images).argmax(1)
    class_mean = torch.stack([train_images[train_labels == c].mean(0) for c in range(n_classes)])
    own = ink(images)
    other = torch.empty_like(labels)
    for c in range(n_classes):
        members = (labels == c).nonzero().flatten()
        other[members] = members.roll(-1)
    summed = fill.sum(1, keepdim=True).double()
    print(f"{config.model_name}, {source}\n")
    print("| AUC, own ink | AUC, class ink | AUC, another image's ink |")
    print("|---|---|---|")
    cells = [roc_auc(summed, own), roc_auc(summed, ink(class_mean[labels])), roc_auc(summed, own[other])]
    print("| " + " | ".join(f"{float(c.nanmedian()):.3f}" for c in cells) + " |\n")
    print("| fill | AUC | IoU, default T | best IoU of any threshold | judge, default T |")
    print("|---|---|---|---|---|")
    for sigma in (0, 0.5, 1.0):
        smooth = blur(fill.double(), sigma).float()
        agreement = inpainting_agreement(smooth, images, transform=TransformSetting())
        judged = judge_accuracy(judge, prototype(smooth, transform=TransformSetting()), predicted)
        name = "as it is" if sigma == 0 else f"blurred, sigma {sigma:g}"
        print(
            f"| {name} | {float(agreement.auc.nanmedian()):.3f} | {float(agreement.iou.nanmedian()):.3f} | "
            f"{float(best_iou(smooth.sum(1, keepdim=True), own).median()):.3f} | {judged:.1f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
