"""MaskFill at ImageNet size: a torchvision ResNet-18 on 224 x 224 RGB inputs.

Prints masked copies per second and the time per image for a few ``n_samples``, on
the CPU or a GPU. The weights are torchvision's random initialization (this machine
has no network; the time of a forward and backward pass does not depend on the
weights), in eval mode; the input is a bundled MNIST digit upsampled to 224 x 224 and
repeated to three channels. ``selection="all"``, so every drawn mask is one pass.

    python benchmarks/bench_imagenet_size.py                 # CPU
    python benchmarks/bench_imagenet_size.py --device cuda

Not part of the test run.
"""

from __future__ import annotations

import argparse
import platform
import time

import torch
import torch.nn.functional as F
from torchvision.models import resnet18

from captum_fillblanks import MaskFill
from captum_fillblanks.paper.data import load_samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--n-samples", type=int, default=64, help="masks timed per run (default: 64)")
    parser.add_argument("--patch-size", type=int, default=16)
    parser.add_argument("--internal-batch-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    device = torch.device(args.device)
    torch.manual_seed(0)
    model = resnet18().eval().to(device)
    digit = load_samples("mnist")[0][:1]
    x = F.interpolate(digit, size=(224, 224), mode="bilinear").repeat(1, 3, 1, 1).to(device)

    def run() -> float:
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        MaskFill(model).attribute(
            x,
            target=0,
            n_samples=args.n_samples,
            patch_size=args.patch_size,
            selection="all",
            internal_batch_size=args.internal_batch_size,
            seed=0,
        )
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        return time.perf_counter() - start

    run()  # warm-up
    seconds = sorted(run() for _ in range(args.repeats))[args.repeats // 2]
    rate = args.n_samples / seconds
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else f"{torch.get_num_threads()} CPU threads"
    print(
        f"machine: {platform.machine()}, {where}, torch {torch.__version__}; ResNet-18 (torchvision), one 224 x 224 "
        f"RGB image, patch_size={args.patch_size}, internal_batch_size={args.internal_batch_size}"
    )
    print()
    print(f"median of {args.repeats}: {args.n_samples} masks in {seconds:.2f} s = {rate:.1f} masked copies/s")
    print()
    print("| n_samples | expected time per image |")
    print("|---|---|")
    for n in (200, 1000, 10_000):
        print(f"| {n:,} | {n / rate:,.0f} s |")


if __name__ == "__main__":
    main()
