"""Readability checks on the bundled samples: inpainting agreement (median AUC and IoU)
and the wrong-target control, for the shipped MNIST models and a random-init one.

    python benchmarks/readability.py [--n-images 40] [--n-samples 1000]

The images: the first ``n_images / 10`` bundled samples of each digit. Fills with
``selection="all"`` (the model, not its selection), default ``T``.
"""

import argparse

import torch

from captum_fillblanks import MaskFill
from captum_fillblanks.attr.readability import inpainting_agreement, wrong_target_control
from captum_fillblanks.paper.data import load_samples
from captum_fillblanks.paper.models import ResNet5_Weights, resnet5, simple_cnn


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n-images", type=int, default=40)
    parser.add_argument("--n-samples", type=int, default=1000)
    args = parser.parse_args()
    images, labels = load_samples("mnist")
    per_class = args.n_images // 10
    chosen = torch.cat([(labels == c).nonzero()[:per_class, 0] for c in range(10)])
    images = images[chosen]
    with torch.random.fork_rng():
        torch.manual_seed(0)
        random_init = simple_cnn().eval()
    models = {
        "SimpleCNN": simple_cnn(weights="DEFAULT"),
        "ResNet5, flatten head": resnet5(weights=ResNet5_Weights.MNIST_5K_FLATTEN),
        "ResNet5, average pool": resnet5(weights=ResNet5_Weights.MNIST_5K),
        "SimpleCNN, random init": random_init,
    }
    print(f"{len(images)} bundled MNIST digits, {args.n_samples} masks each, selection='all', default T")
    print("| model | median AUC | median IoU | wrong-target control |")
    print("|---|---|---|---|")
    for name, model in models.items():
        fill = MaskFill(model).attribute(images, n_samples=args.n_samples, selection="all", seed=0)
        agreement = inpainting_agreement(fill, images)
        rate, _ = wrong_target_control(model, images, n_classes=10, n_samples=args.n_samples, seed=0)
        print(
            f"| {name} | {agreement.auc.nanmedian():.2f} | {agreement.iou.nanmedian():.2f} | {rate:.1f} % |",
            flush=True,
        )


if __name__ == "__main__":
    main()
