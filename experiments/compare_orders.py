"""First- vs second-order fills (paper section 4.5, Fig. 5): how different are they?

For MNIST test images and the shipped SimpleCNN, computes MaskFill and BFGSMaskFill with
the same seed (so the same masks) and reports the cosine similarity between the two
fills per image, and the time each method took.

    python experiments/compare_orders.py --data-dir ../shared/data/mnist [--n-images 100]
"""

from __future__ import annotations

import argparse
import time

import torch

from captum_fillblanks import BFGSMaskFill, MaskFill, fill_cosine_similarity
from captum_fillblanks.paper.data import load_tensors
from captum_fillblanks.paper.models import simple_cnn


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--n-images", type=int, default=100)
    parser.add_argument("--n-samples", type=int, default=1000)
    parser.add_argument("--n-iter", type=int, default=5)
    parser.add_argument("--batch", type=int, default=10, help="images per attribute() call")
    args = parser.parse_args()

    model = simple_cnn(weights="DEFAULT")
    images, _ = load_tensors("mnist", args.data_dir, train=False)
    images = images[: args.n_images]
    first, second, t_first, t_second = [], [], 0.0, 0.0
    for start in range(0, len(images), args.batch):
        x = images[start : start + args.batch]
        t = time.perf_counter()
        first.append(MaskFill(model).attribute(x, n_samples=args.n_samples, seed=start))
        t_first += time.perf_counter() - t
        t = time.perf_counter()
        second.append(BFGSMaskFill(model).attribute(x, n_samples=args.n_samples, seed=start, n_iter=args.n_iter))
        t_second += time.perf_counter() - t
        print(f"{start + len(x)}/{len(images)} images", flush=True)
    cosine = fill_cosine_similarity(torch.cat(first), torch.cat(second))
    q = torch.quantile(cosine, torch.tensor([0.05, 0.5, 0.95]))
    print(
        f"\n{len(images)} MNIST t10k images, SimpleCNN (shipped weights), n_samples={args.n_samples}, "
        f"BFGS n_iter={args.n_iter} (Armijo line search, dense inverse Hessian), same masks for both"
    )
    print(
        f"cosine(first, second): mean {cosine.mean():.3f}, median {q[1]:.3f}, "
        f"5%-95% [{q[0]:.3f}, {q[2]:.3f}], min {cosine.min():.3f}"
    )
    print(
        f"time: MaskFill {t_first:.1f} s ({t_first / len(images):.2f} s/image), "
        f"BFGSMaskFill {t_second:.1f} s ({t_second / len(images):.2f} s/image), "
        f"ratio {t_second / t_first:.1f}x"
    )


if __name__ == "__main__":
    main()
