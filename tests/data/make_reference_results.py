"""Write ``reference_results.pt``: results of the three estimators on fixed seeds, which
``tests/test_reference_results.py`` recomputes. Rerun this only for a change that is
meant to change results, and say so in the commit.

    python tests/data/make_reference_results.py
"""

from pathlib import Path

import torch

import captum_fillblanks as cf
from captum_fillblanks.paper.data import load_samples
from captum_fillblanks.paper.models import simple_cnn


def compute() -> dict:
    model = simple_cnn(weights="DEFAULT")
    images, _ = load_samples("mnist")
    images = images[:3]
    fill, delta = cf.MaskFill(model).attribute(images, n_samples=64, seed=0, return_convergence_delta=True)
    given = cf.MaskFill(model).attribute(
        images, masks=cf.random_patch_masks(5, 28, 28, generator=torch.Generator().manual_seed(1)), selection="all"
    )
    progressive = cf.ProgressiveMaskFill(model)
    rebuilt = progressive.attribute(images, n_steps=4, seed=0, threshold=0.3, normalization="max_abs")
    plain = progressive.attribute(images, n_steps=4, seed=0, binarized=False, normalization="min_max")
    bfgs = cf.BFGSMaskFill(model).attribute(images, n_samples=8, n_iter=3, seed=0)
    return {
        "fill": fill,
        "delta": delta,
        "given_masks_fill": given,
        "progressive": rebuilt,
        "progressive_labels": progressive.steps.labels,
        "progressive_plain": plain,
        "bfgs": bfgs,
    }


if __name__ == "__main__":
    torch.save(compute(), Path(__file__).with_name("reference_results.pt"))
