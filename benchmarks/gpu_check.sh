#!/usr/bin/env bash
# The checks that need a GPU, in one run of a few minutes (a lent GPU machine has
# 15 minutes in all). Run from the repository root with the package installed
# (pip install ".[test]"); pass the MNIST folder as $1 (default ../shared/data/mnist).
# Writes its logs under ${OUT:-gpu-check}/.
set -uo pipefail
data=${1:-../shared/data/mnist}
out=${OUT:-gpu-check}
mkdir -p "$out"
gpus=$(python -c "import torch; print(torch.cuda.device_count())")
echo "CUDA devices: $gpus" | tee "$out/summary.txt"

# 1. the test suite on a machine with CUDA (the CUDA-only tests run, the rest as usual)
timeout 240 python -m pytest -q -x -k "cuda or device or distributed or reference" 2>&1 | tail -5 | tee -a "$out/summary.txt"

# 2. MaskFill's speed figures on the GPU
timeout 180 python benchmarks/bench_maskfill.py --quick --device cuda > "$out/bench_maskfill_cuda.md" 2>&1
echo "bench_maskfill --device cuda: rc=$?" | tee -a "$out/summary.txt"

# 3. reproduce under torchrun on every GPU (NCCL), against one GPU: the same Table 1
args=(--dataset mnist --data-dir "$data" --n-images 40 --shard-size 5 --n-samples 200
      --n-validation 20 --figure-samples 50 --no-progress --device cuda)
timeout 120 torchrun --standalone --nproc-per-node 1 -m captum_fillblanks reproduce "${args[@]}" --out "$out/r1" > "$out/r1.log" 2>&1
timeout 120 torchrun --standalone --nproc-per-node "$gpus" -m captum_fillblanks reproduce "${args[@]}" --out "$out/rN" > "$out/rN.log" 2>&1
python - "$out" <<'PY' | tee -a "$out/summary.txt"
import sys, torch
a, b = (torch.load(f"{sys.argv[1]}/{n}/results.pt") for n in ("r1", "rN"))
same = all(torch.equal(a["chosen"][r], b["chosen"][r]) for r in a["chosen"])
print(f"reproduce 1 GPU vs all GPUs: same Table 1 counts: {same}; "
      f"prototypes max diff {(a['class_means'] - b['class_means']).abs().max():.2e}")
PY

# 4. scaling on 1..G GPUs
timeout 180 python benchmarks/bench_scaling.py --data-dir "$data" --device cuda --n-images 64 --n-samples 2000 --repeats 2 \
    > "$out/bench_scaling_cuda.md" 2>&1
echo "bench_scaling --device cuda: rc=$?" | tee -a "$out/summary.txt"
cat "$out/bench_scaling_cuda.md"

# 5. ImageNet size: ResNet-18, one 224 x 224 image
timeout 120 python benchmarks/bench_imagenet_size.py --device cuda --n-samples 512 --internal-batch-size 256 \
    > "$out/bench_imagenet_cuda.md" 2>&1
echo "bench_imagenet_size --device cuda: rc=$?" | tee -a "$out/summary.txt"
cat "$out/bench_imagenet_cuda.md"
