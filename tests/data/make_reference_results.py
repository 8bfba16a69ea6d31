"""Write ``reference_results.pt``: results of the three estimators on fixed seeds, which
``tests/test_reference_results.py`` recomputes. Rerun this only for a change that is
meant to change results, and say so in the commit.

    python tests/data/make_reference_results.py

Two models, for two kinds of stored number:

- ``smooth``: a small seeded CNN with tanh and average pooling, whose gradient is a
  smooth function of the input. Every estimator's result on it survives another CPU's
  rounding: measured against one ulp up or down on the inputs, one thread instead of
  two, and PyTorch's native convolution kernels instead of oneDNN's
  (``torch.backends.mkldnn.flags(enabled=False)``), the largest change relative to the
  result's scale was 1.1e-5 (the convergence delta), 4e-7 for the fills and progressive
  images, and 1.4e-4 for BFGS (whose line search and Hessian update amplify rounding).
- ``simple_cnn``: the shipped SimpleCNN (ReLU and max pooling). Where two entries of a
  max-pool window tie exactly (blanked regions make ties common), the gradient goes to
  the one the kernel picks, which differs between kernels and CPUs; a copy's update can
  then move by a whole pixel's gradient, and BFGS's line search takes another path.
  Only its results that survived every perturbation above are stored: the fill of
  given masks, the convergence delta, the binarized progressive images and their labels.
"""

from pathlib import Path

import torch
from torch import nn

import captum_fillblanks as cf
from captum_fillblanks.paper.data import load_samples
from captum_fillblanks.paper.models import simple_cnn


def smooth_cnn() -> nn.Module:
    """Tanh and average pooling: a gradient with no kinks and no ties (seeded init)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = nn.Sequential(
            nn.Conv2d(1, 6, 5, padding=2),
            nn.Tanh(),
            nn.AvgPool2d(2),
            nn.Conv2d(6, 8, 3, padding=1),
            nn.Tanh(),
            nn.AvgPool2d(2),
            nn.Flatten(),
            nn.Linear(8 * 7 * 7, 10),
        )
    return model.eval()


def estimators(model: nn.Module, images: torch.Tensor) -> dict:
    fill, delta = cf.MaskFill(model).attribute(images, n_samples=64, seed=0, return_convergence_delta=True)
    given = cf.MaskFill(model).attribute(
        images, masks=cf.random_patch_masks(5, 28, 28, generator=torch.Generator().manual_seed(1)), selection="all"
    )
    progressive = cf.ProgressiveMaskFill(model)
    rebuilt = progressive.attribute(
        images, n_steps=4, seed=0, transform=cf.TransformSetting("max_abs", threshold=0.3, scale_percentile=100.0)
    )
    plain = progressive.attribute(images, n_steps=4, seed=0, transform=cf.TransformSetting("min_max", binarized=False))
    labels = progressive.steps.labels  # of the run not binarized
    bfgs = cf.BFGSMaskFill(model).attribute(images, n_samples=8, n_iter=3, seed=0)
    return {
        "fill": fill,
        "delta": delta,
        "given_masks_fill": given,
        "progressive": rebuilt,
        "progressive_labels": labels,
        "progressive_plain": plain,
        "bfgs": bfgs,
    }


#: The SimpleCNN results that survive another CPU's kernels (module docs).
SIMPLE_CNN_STABLE = ("delta", "given_masks_fill", "progressive", "progressive_labels")


def compute() -> dict:
    images = load_samples("mnist")[0][:3]
    shipped = estimators(simple_cnn(weights="DEFAULT"), images)
    return {
        "smooth": estimators(smooth_cnn(), images),
        "simple_cnn": {name: shipped[name] for name in SIMPLE_CNN_STABLE},
    }


if __name__ == "__main__":
    torch.save(compute(), Path(__file__).with_name("reference_results.pt"))
