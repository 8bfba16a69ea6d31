"""Speed and memory of MaskFill against what a Captum user would run instead.

Prints Markdown tables. Every speed figure that matters is a ratio against a reference
measured in the same process, interleaved and repeated (this machine is shared and
noisy); absolute times are shown for orientation only.

    python benchmarks/bench_maskfill.py              # the full run (several minutes)
    python benchmarks/bench_maskfill.py --quick      # fewer repeats and samples
    python benchmarks/bench_maskfill.py --device cuda  # on a GPU (timings synchronize)

Not part of the test run.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import statistics
import subprocess
import sys
import time

import torch
import torch.nn.functional as F
from captum.attr import IntegratedGradients

from captum_fillblanks import MaskFill, ProgressiveMaskFill, random_patch_masks
from captum_fillblanks.paper.data import load_samples
from captum_fillblanks.paper.models import resnet5, simple_cnn

CHUNK = 256
ALL_KEPT = "A' MaskFill, selection='all'"
DEVICE = torch.device("cpu")


def synchronize() -> None:
    if DEVICE.type == "cuda":
        torch.cuda.synchronize(DEVICE)


def timed(fn) -> float:
    """Wall time of ``fn()``, with the device's queued work finished before and after."""
    synchronize()
    start = time.perf_counter()
    fn()
    synchronize()
    return time.perf_counter() - start


def floor_pass(model, inputs, label, chunk=CHUNK):
    """Forward+backward of pre-built inputs in chunks: no masks, selection or sums."""
    for start in range(0, len(inputs), chunk):
        leaf = inputs[start : start + chunk].detach().requires_grad_()
        loss = F.cross_entropy(model(leaf), label.expand(len(leaf)), reduction="sum")
        torch.autograd.grad(loss, leaf)


def paper_loop(model, image, label, n):
    """The paper-style loop: one masked copy at a time."""
    masks = random_patch_masks(n, 28, 28, generator=torch.Generator().manual_seed(0)).to(image.device)
    for m in masks:
        masked = (m * image).requires_grad_()
        logits = model(masked)
        if logits.argmax(1).item() == label.item():
            (grad,) = torch.autograd.grad(F.cross_entropy(logits, label), masked)


def median_ratio(times_a, times_b):
    return statistics.median(a / b for a, b in zip(times_a, times_b))


def memory_child(n_samples: int) -> None:
    """Peak memory of one call: resident memory of the process on the CPU, memory
    allocated by PyTorch on a GPU."""
    model = simple_cnn(weights="DEFAULT").to(DEVICE)
    image = load_samples("mnist")[0][:1].to(DEVICE)
    MaskFill(model).attribute(image, n_samples=500, seed=0)  # warm up allocators
    if DEVICE.type == "cuda":
        synchronize()
        torch.cuda.reset_peak_memory_stats(DEVICE)
        MaskFill(model).attribute(image, n_samples=n_samples, seed=0)
        synchronize()
        peak = torch.cuda.max_memory_allocated(DEVICE) // 1024
    else:
        MaskFill(model).attribute(image, n_samples=n_samples, seed=0)
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"peak_kib": peak}))


def peak_memory(n_samples: int) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--memory-child", str(n_samples), "--device", str(DEVICE)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats and samples")
    parser.add_argument("--device", default="cpu", help="where the models and images live (default: cpu)")
    parser.add_argument("--memory-child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    global DEVICE
    try:
        DEVICE = torch.device(args.device)
    except RuntimeError:
        parser.error(f"--device: not a torch device: {args.device!r}")
    if DEVICE.type == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: no CUDA device is available")
    if args.memory_child:
        memory_child(args.memory_child)
        return

    repeats = 3 if args.quick else 5
    n = 2000 if args.quick else 10_000
    torch.manual_seed(0)
    model = simple_cnn(weights="DEFAULT").to(DEVICE)
    images, labels = load_samples("mnist")
    images = images.to(DEVICE)
    image, label = images[:1], model(images[:1]).argmax(1)
    method = MaskFill(model)
    ig = IntegratedGradients(model)
    prebuilt = random_patch_masks(n, 28, 28, generator=torch.Generator().manual_seed(1)).to(DEVICE)[:, None] * image

    where = torch.cuda.get_device_name(DEVICE) if DEVICE.type == "cuda" else f"{torch.get_num_threads()} torch threads"
    print(
        f"# MaskFill benchmark\n\nmachine: {platform.processor() or platform.machine()}, "
        f"device {DEVICE} ({where}), torch {torch.__version__}; "
        f"model: SimpleCNN (shipped MNIST weights); one bundled MNIST image; n = {n:,}\n"
    )

    # A/B/C interleaved
    run = {
        "A MaskFill": lambda: method.attribute(image, n_samples=n, seed=0),
        ALL_KEPT: lambda: method.attribute(image, n_samples=n, seed=0, selection="all"),
        "B IntegratedGradients": lambda: ig.attribute(
            image, target=label, n_steps=n, method="riemann_trapezoid", internal_batch_size=CHUNK
        ),
        "C floor": lambda: floor_pass(model, prebuilt, label),
    }
    for fn in run.values():  # warm-up
        fn()
    times = {name: [] for name in run}
    for _ in range(repeats):
        for name, fn in run.items():
            times[name].append(timed(fn))
    method.attribute(image, n_samples=n, seed=0)
    kept = method.counts
    print("| run | median s | passes/s |\n|---|---|---|")
    for name, ts in times.items():
        passes = kept.n_drawn if name == "A MaskFill" else n
        print(f"| {name} | {statistics.median(ts):.3f} | {passes / statistics.median(ts):,.0f} |")
    print(f"\n(A: {kept.n_drawn:,} masks drawn, {int(kept.n_kept[0]):,} kept; select_first={kept.select_first})\n")
    a, b, c = times["A MaskFill"], times["B IntegratedGradients"], times["C floor"]
    print("| ratio | median | target |\n|---|---|---|")
    print(f"| A/C | {median_ratio(a, c):.3f} | <= 1.10 |")
    print(
        f"| A/C per pass (A made {kept.n_drawn:,} passes to keep {n:,}) | "
        f"{median_ratio(a, c) * n / kept.n_drawn:.3f} | |"
    )
    print(f"| A'/C (selection='all': exactly {n:,} passes) | {median_ratio(times[ALL_KEPT], c):.3f} | |")
    print(f"| A/B | {median_ratio(a, b):.3f} | <= 1.0 |")

    # D: one copy at a time, extrapolated
    few = 100 if args.quick else 300
    per_copy = statistics.median(timed(lambda: paper_loop(model, image, label, few)) for _ in range(3)) / few
    print(f"| D/A (D = {few} one-at-a-time copies, x{n // few}) | {per_copy * n / statistics.median(a):.2f} | >= 5 |\n")

    # chunk size
    print("| internal_batch_size | median s (A) | relative to 256 |\n|---|---|---|")
    sizes = (64, 256, 1024, 4096)
    chunk_times = {s: [] for s in sizes}
    for _ in range(max(2, repeats - 2)):
        for s in sizes:
            chunk_times[s].append(
                timed(lambda s=s: method.attribute(image, n_samples=n, seed=0, internal_batch_size=s))
            )
    for s in sizes:
        print(
            f"| {s} | {statistics.median(chunk_times[s]):.3f} | {median_ratio(chunk_times[s], chunk_times[256]):.2f} |"
        )

    # one pass vs select-first, at the paper's setting and at low acceptance
    fashion_model = resnet5(weights="DEFAULT").to(DEVICE)
    fashion_images = load_samples("fashion-mnist")[0].to(DEVICE)
    settings = {
        "SimpleCNN, MNIST, eta=0.25": (model, image, 0.25),
        "ResNet5, Fashion-MNIST, eta=0.75": (fashion_model, fashion_images[:1], 0.75),
    }
    m_sel = n // 5 if not args.quick else n // 4
    print(f"\n| setting (n_samples={m_sel:,}) | kept / drawn | one pass s | select-first s | auto s | auto chose |")
    print("|---|---|---|---|---|---|")
    for name, (net, x, ratio) in settings.items():
        fill = MaskFill(net)
        results = {}
        for mode in (False, True, None):
            results[mode] = statistics.median(
                timed(
                    lambda fill=fill, x=x, ratio=ratio, mode=mode: fill.attribute(
                        x, n_samples=m_sel, mask_ratio=ratio, seed=0, select_first=mode, max_draws=100 * m_sel
                    )
                )
                for _ in range(2)
            )
            counts = fill.counts
        print(
            f"| {name} | {int(counts.n_kept[0]):,} / {counts.n_drawn:,} | {results[False]:.2f} | "
            f"{results[True]:.2f} | {results[None]:.2f} | {'select-first' if counts.select_first else 'one pass'} |"
        )

    # reduced precision
    eight = images[::12][:8]
    full_t, half_t = [], []
    for _ in range(max(2, repeats - 2)):
        full_t.append(timed(lambda: method.attribute(eight, n_samples=n // 5, seed=0)))
        full = method.attribute(eight, n_samples=n // 5, seed=0)
        half_t.append(timed(lambda: method.attribute(eight, n_samples=n // 5, seed=0, amp_dtype=torch.bfloat16)))
    half = method.attribute(eight, n_samples=n // 5, seed=0, amp_dtype=torch.bfloat16)
    cosine = F.cosine_similarity(full.flatten(1), half.flatten(1))
    print(f"\n| bf16 autocast (8 images x {n // 5:,}) | value | target |\n|---|---|---|")
    print(f"| time bf16 / fp32 | {median_ratio(half_t, full_t):.2f} | <= 0.75 |")
    print(f"| cosine(fill bf16, fill fp32), min over images | {cosine.min():.4f} | >= 0.99 |")

    # batch throughput and the other methods
    batch = images[:64]
    per_batch = n // 10 if not args.quick else n // 20
    t_batch = timed(lambda: method.attribute(batch, n_samples=per_batch, seed=0, selection="all"))
    pmf = ProgressiveMaskFill(model)
    t_prog = statistics.median(timed(lambda: pmf.attribute(image, seed=0)) for _ in range(3))
    fashion = MaskFill(fashion_model)
    t_fashion = timed(lambda: fashion.attribute(fashion_images[:1], n_samples=n // 5, seed=0))
    print("\n| other measurements | value |\n|---|---|")
    print(f"| 64 images x {per_batch:,} masks (selection='all') | {64 * per_batch / t_batch:,.0f} masked copies/s |")
    print(f"| ProgressiveMaskFill, one image, k=4 | {t_prog * 1000:.1f} ms |")
    print(
        f"| ResNet5 on Fashion-MNIST, one image, {n // 5:,} kept | {fashion.counts.n_drawn / t_fashion:,.0f} masks/s |"
    )
    try:
        from captum_fillblanks import BFGSMaskFill

        bfgs = BFGSMaskFill(model)
        t_bfgs = timed(lambda: bfgs.attribute(image, n_samples=n // 10, seed=0))
        print(f"| BFGSMaskFill, one image, {n // 10:,} kept | {t_bfgs:.2f} s |")
    except ImportError:
        pass

    # E: memory
    low, high = peak_memory(n), peak_memory(10 * n)
    what = "GPU memory allocated by PyTorch" if DEVICE.type == "cuda" else "resident memory of the process"
    print(f"\n| peak {what} | n_samples={n:,} | n_samples={10 * n:,} | ratio |\n|---|---|---|---|")
    print(
        f"| MiB | {low['peak_kib'] / 1024:.0f} | {high['peak_kib'] / 1024:.0f} | "
        f"{high['peak_kib'] / low['peak_kib']:.3f} |"
    )


if __name__ == "__main__":
    main()
