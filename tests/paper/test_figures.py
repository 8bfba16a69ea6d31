"""The figure recipes the reproduction, the demo and the docs share: each draws what its
caption says, from the same fills a direct call of the public API gives."""

import dataclasses
import re

import matplotlib
import pytest
import torch

matplotlib.use("Agg")

from captum_fillblanks import BFGSMaskFill, MaskFill, ProgressiveMaskFill, TransformSetting  # noqa: E402
from captum_fillblanks.attr.bfgs import fill_cosine_similarity  # noqa: E402
from captum_fillblanks.paper.data import load_samples  # noqa: E402
from captum_fillblanks.paper.figures import (  # noqa: E402
    binarized_figure,
    class_prototypes_figure,
    orders_figure,
    progressive_figure,
    ratio_patch_figure,
)
from captum_fillblanks.paper.models import simple_cnn  # noqa: E402


@pytest.fixture(scope="module")
def setup():
    images, labels = load_samples("mnist")
    return simple_cnn(weights="DEFAULT"), images[::10][:4], labels[::10][:4]


def test_progressive_figure_draws_the_rebuild_a_direct_call_gives(setup):
    model, images, _ = setup
    setting = TransformSetting(threshold=0.3)
    method = ProgressiveMaskFill(model)
    drawn = progressive_figure(model, images[:1], n_steps=3, seed=5, transform=setting, method=method, selection="one")
    direct = ProgressiveMaskFill(model).attribute(images[:1], n_steps=3, seed=5, transform=setting)
    assert torch.equal(method.steps.images[-1], direct)
    assert (
        drawn.caption
        == f"Fig. 3: progressive filling with k = 3 disjoint masks (T: {setting}); y-hat per step. Images: one."
    )
    assert len(drawn.figure.axes) >= 4  # the image and one panel per step at least


def test_ratio_patch_figure_says_which_panels_kept_fewer_masks(setup):
    model, images, _ = setup
    plain = TransformSetting(binarized=False)
    kwargs = dict(n_samples=6, seed=0, transform=plain, mask_ratios=(0.25, 0.95), patch_sizes=(2,))
    drawn = ratio_patch_figure(model, images[:1], max_draws_per_sample=1, **kwargs)
    kept = []
    for ratio in kwargs["mask_ratios"]:
        method = MaskFill(model)
        method.attribute(images[:1], n_samples=6, mask_ratio=ratio, patch_size=2, seed=0, max_draws=6)
        kept.append(int(method.counts.n_kept[0]))
    marks = [text.get_text() for axis in drawn.figure.axes for text in axis.texts]
    expected = ["no kept draw" if n == 0 else f"{n} kept" for n in kept if n < 6]
    assert marks == expected
    assert "6 kept masks asked per panel, at most 6 drawn" in drawn.caption


def test_orders_figure_reports_the_cosine_of_the_fills_it_draws(setup):
    model, images, labels = setup
    drawn = orders_figure(
        model, images[:2], n_samples=4, seed=1, transform=TransformSetting(), n_iter=1, target=labels[:2]
    )
    first = MaskFill(model).attribute(images[:2], target=labels[:2], n_samples=4, seed=1)
    second = BFGSMaskFill(model).attribute(images[:2], target=labels[:2], n_samples=4, seed=1, n_iter=1)
    cosines = [float(c) for c in re.search(r"per image: ([-\d., ]+)\.", drawn.caption).group(1).split(", ")]
    assert cosines == pytest.approx(fill_cosine_similarity(first, second).tolist(), abs=5e-4)


def test_binarized_and_class_figures_name_each_setting(setup):
    model, images, _ = setup
    setting = TransformSetting(threshold=0.4, scale_percentile=95.0)
    drawn = binarized_figure(
        model, images[:2], n_samples=4, n_steps=2, seed=0, transform=setting, progressive_transform=setting
    )
    assert str(dataclasses.replace(setting, binarized=True)) in drawn.caption
    means = torch.rand(3, 1, 28, 28)
    binarized = class_prototypes_figure(means, torch.tensor([4, 0, 2]), setting)
    plain = class_prototypes_figure(means, torch.tensor([4, 0, 2]), dataclasses.replace(setting, binarized=False))
    assert binarized.caption.startswith("Fig. 2: T(mean fill)") and plain.caption.startswith("Fig. 2, not binarized")
    assert [axis.get_title() for axis in binarized.figure.axes[:3]] == [
        "class 0 (4 images)",
        "class 1 (0 images)",
        "class 2 (2 images)",
    ]
