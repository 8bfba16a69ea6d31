"""Time to a given precision: ``tolerance=`` against the fixed ``n_samples`` that reaches
the same precision for every image (the largest count an image needed; an image that did
not reach the tolerance by the cap needs the cap), measured in the same run.

    python benchmarks/bench_tolerance.py [--tolerance 0.4] [--cap 2048] [--n-images 10]

The fixed run needs as many kept draws for every image as the slowest image needs; with
``tolerance`` each image stops at its own check (32, 64, 128, ... kept draws). Prints the
draws each used, the seconds of each (best of three) and their ratio.
"""

import argparse
import time

import torch

from captum_fillblanks import MaskFill
from captum_fillblanks.paper.data import load_samples
from captum_fillblanks.paper.models import simple_cnn


def best_of_three(call) -> float:
    times = []
    for _ in range(3):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tolerance", type=float, default=0.4)
    parser.add_argument("--cap", type=int, default=2048)
    parser.add_argument("--n-images", type=int, default=10)
    args = parser.parse_args()
    model = simple_cnn(weights="DEFAULT")
    images, labels = load_samples("mnist")
    images = images[:: len(images) // args.n_images][: args.n_images]
    common = dict(seed=0, selection="all")

    by_precision = MaskFill(model)
    by_precision.attribute(images, n_samples=args.cap, tolerance=args.tolerance, **common)
    kept = by_precision.counts.n_kept
    fixed_n = int(kept.max())
    tolerance_s = best_of_three(
        lambda: MaskFill(model).attribute(images, n_samples=args.cap, tolerance=args.tolerance, **common)
    )
    fixed_s = best_of_three(lambda: MaskFill(model).attribute(images, n_samples=fixed_n, **common))
    print(f"{len(images)} bundled MNIST digits, SimpleCNN, tolerance {args.tolerance}, cap {args.cap}")
    print(f"kept draws with tolerance: {kept.tolist()} (converged: {by_precision.counts.converged.tolist()})")
    print(f"fixed n_samples that keeps as many as the slowest image: {fixed_n}")
    used, fixed_draws = int(kept.sum()), fixed_n * len(images)
    print(f"kept draws: {used} with tolerance, {fixed_draws} fixed ({used / fixed_draws:.2f}x)")
    print(f"seconds: {tolerance_s:.2f} with tolerance, {fixed_s:.2f} fixed, ratio {tolerance_s / fixed_s:.2f}")


if __name__ == "__main__":
    torch.set_num_threads(2)
    main()
