"""Where the regular grid in ResNet5's fills comes from: the power spectrum of fills.

For each shipped model, the fills of 10 bundled images (one per class, 500 masks each,
``selection="all"``) and the share of their spectral energy at each spatial frequency
``k`` of the 28-pixel side (rows and columns averaged, the constant term left out).
White noise spreads evenly; a grid of period ``P`` puts a peak at ``k = 28 / P``. The
last column repeats the period-2 share (``k = 14``) with the image shifted by one pixel
before filling and the fill shifted back, so that the 2x2 mask patches no longer line
up with the model's pooling windows.

    python experiments/fill_spectrum.py

Recorded in ``docs/reproduction/README.md`` ("The grid in ResNet5's fills").
"""

import argparse

import torch

from captum_fillblanks import MaskFill
from captum_fillblanks.paper.data import load_samples
from captum_fillblanks.paper.models import ResNet5_Weights, SimpleCNN_Weights, resnet5, simple_cnn


def spectrum(fill: torch.Tensor) -> list:
    """Percent of the energy per frequency k = 0..14 (k and 28 - k together)."""
    power = (torch.fft.fft2(fill[:, 0]).abs() ** 2).mean(0)
    power[0, 0] = 0
    power = power / power.sum()
    shares = []
    for k in range(15):
        rows = power[k].sum() + (power[28 - k].sum() if 0 < k < 14 else 0)
        cols = power[:, k].sum() + (power[:, 28 - k].sum() if 0 < k < 14 else 0)
        shares.append(round(100 * float(rows + cols) / 2, 1))
    return shares


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-samples", type=int, default=500)
    args = parser.parse_args()
    models = [
        ("ResNet5, Fashion-MNIST", resnet5(weights=ResNet5_Weights.FASHION_MNIST), "fashion-mnist"),
        ("ResNet5, MNIST", resnet5(weights=ResNet5_Weights.MNIST_5K), "mnist"),
        ("SimpleCNN, MNIST", simple_cnn(weights=SimpleCNN_Weights.MNIST_5K), "mnist"),
    ]
    print("| model | energy % at k = 0 .. 14 | k = 14, image shifted by 1 px |")
    print("|---|---|---|")
    for name, model, dataset in models:
        images, _ = load_samples(dataset)
        x = images[torch.arange(10) * 10]
        method = MaskFill(model)
        fill = method.attribute(x, n_samples=args.n_samples, seed=0, selection="all")
        shifted = method.attribute(torch.roll(x, (1, 1), (2, 3)), n_samples=args.n_samples, seed=0, selection="all")
        shifted = torch.roll(shifted, (-1, -1), (2, 3))
        print(f"| {name} | {spectrum(fill)} | {spectrum(shifted)[14]} |")


if __name__ == "__main__":
    main()
