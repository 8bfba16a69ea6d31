"""Data-set fills on 1, 2, ... processes under torchrun: images per second and scaling.

The work is a fixed set of shards, as ``captum-fillblanks reproduce`` makes them (MNIST
t10k images, ``--shard-size`` images per shard, each shard with its own seed); each
process fills its share (:meth:`Ranks.share`) with the shipped ResNet5, between two
barriers. The figure is images per second of the whole set, and its ratio to
(processes x the 1-process rate): 1.0 is linear scaling. Runs for each process count
are interleaved and repeated, since this machine is shared and noisy.

    python benchmarks/bench_scaling.py --data-dir ../shared/data/mnist              # CPU: 1 and 2 processes
    python benchmarks/bench_scaling.py --data-dir ../shared/data/mnist --device cuda  # 1..G GPUs

On the CPU every process gets ``torch.set_num_threads(cores // processes)``, so each
count uses the same cores; on GPUs each process has its own device (NCCL).
Not part of the test run.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time

import torch

HERE = os.path.abspath(__file__)


def worker(args: argparse.Namespace) -> None:
    """One rank of one timed run (started by torchrun); rank 0 prints the elapsed seconds."""
    from captum_fillblanks import MaskFill
    from captum_fillblanks.paper.data import load_tensors
    from captum_fillblanks.paper.distributed import finish, launch
    from captum_fillblanks.paper.models import resnet5

    ranks, device = launch(args.device)
    if device.type == "cpu":
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // ranks.world_size))
    images = load_tensors("mnist", args.data_dir, train=False)[0][: args.n_images].to(device)
    model = resnet5(weights="MNIST_5K").to(device)
    starts = list(range(0, len(images), args.shard_size))
    MaskFill(model).attribute(images[:2], n_samples=64, seed=0)  # warm-up: kernels, allocator
    ranks.barrier()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    began = time.perf_counter()
    for start in ranks.share(starts):
        shard = images[start : start + args.shard_size]
        MaskFill(model).attribute(shard, n_samples=args.n_samples, seed=start, mask_ratio=0.25, patch_size=2).cpu()
    ranks.barrier()
    if ranks.is_main:
        print(f"ELAPSED {time.perf_counter() - began:.4f}", flush=True)
    finish()


def run_once(n_processes: int, args: argparse.Namespace) -> float:
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(n_processes),
        HERE, "--worker", "--data-dir", args.data_dir, "--device", args.device, "--n-images", str(args.n_images),
        "--shard-size", str(args.shard_size), "--n-samples", str(args.n_samples),
    ]  # fmt: skip
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:
        raise SystemExit(done.stdout[-2000:] + done.stderr[-2000:])
    return float(next(line for line in done.stdout.splitlines() if line.startswith("ELAPSED")).split()[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--n-images", type=int, default=32)
    parser.add_argument("--shard-size", type=int, default=4)
    parser.add_argument("--n-samples", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--processes", type=int, nargs="*", help="default: 1 and 2 on the CPU, 1..G on GPUs")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args)

    counts = args.processes or (
        list(range(1, torch.cuda.device_count() + 1)) if args.device.startswith("cuda") else [1, 2]
    )
    times: dict[int, list[float]] = {n: [] for n in counts}
    for _ in range(args.repeats):  # interleaved: 1, 2, ..., 1, 2, ...
        for n in counts:
            times[n].append(run_once(n, args))
    where = torch.cuda.get_device_name() if args.device.startswith("cuda") else f"{os.cpu_count()} CPU cores"
    print(
        f"machine: {platform.machine()}, {where}, torch {torch.__version__}; ResNet5 (MNIST), "
        f"{args.n_images} t10k images in shards of {args.shard_size}, {args.n_samples:,} kept masks each; "
        f"median of {args.repeats} interleaved runs"
    )
    print()
    print("| processes | median s | images/s | speed-up | scaling efficiency |")
    print("|---|---|---|---|---|")
    base = statistics.median(times[counts[0]]) * counts[0]
    for n in counts:
        median = statistics.median(times[n])
        speedup = base / median
        print(f"| {n} | {median:.2f} | {args.n_images / median:.2f} | {speedup:.2f} | {speedup / n:.2f} |")


if __name__ == "__main__":
    main()
