"""The paper's figures as recipes: each function fills, draws, and returns the figure with
its caption (what it shows, the masks per image, the setting of ``T`` and which images).

One module for the three places that draw them: the reproduction's report
(:func:`~captum_fillblanks.paper.reproduce.figures.draw_figures`), the offline demo
(:mod:`~captum_fillblanks.paper.demo`) and the documentation's figures
(``docs/figures/make_figures.py``). Every recipe goes through the public API
(:class:`~captum_fillblanks.MaskFill`, :class:`~captum_fillblanks.ProgressiveMaskFill`,
:class:`~captum_fillblanks.BFGSMaskFill`, :mod:`~captum_fillblanks.attr.visualization`)
and leaves saving to the caller. ``selection`` is how the caller chose the images, for
the caption (e.g. ``"the first test image of class 0"``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from matplotlib.figure import Figure
from torch import Tensor

from ..attr.bfgs import BFGSMaskFill, fill_cosine_similarity
from ..attr.mask_fill import MaskFill
from ..attr.progressive import ProgressiveMaskFill
from ..attr.transforms import TransformSetting, prototype
from ..attr.visualization import (
    visualize_comparison,
    visualize_parameter_grid,
    visualize_progressive,
    visualize_prototypes,
)

__all__ = [
    "PaperFigure",
    "FIG4_MASK_RATIOS",
    "FIG4_PATCH_SIZES",
    "FIG4_MAX_DRAWS_PER_SAMPLE",
    "FIG5_BFGS_ITERATIONS",
    "class_prototypes_figure",
    "progressive_figure",
    "ratio_patch_figure",
    "orders_figure",
    "binarized_figure",
]

#: Fig. 4's grid: the paper's mask ratios (rows).
FIG4_MASK_RATIOS = (0.1, 0.25, 0.5, 0.75)
#: Fig. 4's grid: the paper's patch sizes (columns).
FIG4_PATCH_SIZES = (1, 2, 4, 7)
#: Fig. 4 draws up to this many masks per kept one (a high ratio keeps few).
FIG4_MAX_DRAWS_PER_SAMPLE = 20
#: Fig. 5: BFGS iterations per mask.
FIG5_BFGS_ITERATIONS = 5


@dataclass
class PaperFigure:
    """A drawn figure and its caption."""

    figure: Figure
    caption: str


def _with_selection(caption: str, selection: str | None) -> str:
    return caption if not selection else f"{caption} Images: {selection}."


def class_prototypes_figure(
    class_means: Tensor, class_counts: Tensor, transform: TransformSetting, *, selection: str | None = None
) -> PaperFigure:
    """Fig. 2: ``T`` of the mean fill per class (``class_means`` ``(C, ...)``, over
    ``class_counts`` images each)."""
    names = [f"class {c} ({int(n)} images)" for c, n in enumerate(class_counts)]
    figure, _ = visualize_prototypes(prototype(class_means, transform=transform), names)
    if transform.binarized:
        what = f"Fig. 2: T(mean fill) of all scored test images the model assigned to each class (T: {transform})."
    else:
        what = f"Fig. 2, not binarized: the normalized mean fill per class (T: {transform})."
    return PaperFigure(figure, _with_selection(what, selection))


def progressive_figure(
    model: Callable,
    image: Tensor,
    *,
    n_steps: int,
    seed: int,
    transform: TransformSetting | None = None,
    target: Tensor | None = None,
    method: ProgressiveMaskFill | None = None,
    selection: str | None = None,
) -> PaperFigure:
    """Fig. 3: the progressive rebuild of one image (``(1, ...)``) in ``n_steps`` disjoint
    masks, each step's filled part and the label the model gives it (``target``: each
    step toward it; default the paper's per-step targets). ``method`` reuses a
    :class:`ProgressiveMaskFill` (its ``steps`` are this rebuild's afterwards)."""
    method = method or ProgressiveMaskFill(model)
    options = {} if transform is None else {"transform": transform}
    method.attribute(image, target=target, n_steps=n_steps, seed=seed, **options)
    steps = method.steps
    figure, _ = visualize_progressive(steps.images, steps.groups, steps.labels, image=image)
    setting = transform or TransformSetting()
    what = f"Fig. 3: progressive filling with k = {n_steps} disjoint masks (T: {setting}); y-hat per step."
    return PaperFigure(figure, _with_selection(what, selection))


def ratio_patch_figure(
    model: Callable,
    image: Tensor,
    *,
    n_samples: int,
    seed: int,
    transform: TransformSetting,
    mask_ratios: Sequence[float] = FIG4_MASK_RATIOS,
    patch_sizes: Sequence[int] = FIG4_PATCH_SIZES,
    max_draws_per_sample: int = FIG4_MAX_DRAWS_PER_SAMPLE,
    target: Tensor | None = None,
    selection: str | None = None,
) -> PaperFigure:
    """Fig. 4: ``T(fill)`` of one image over mask ratio (rows) x patch size (columns),
    ``n_samples`` kept masks asked per panel; a panel that kept fewer says how many."""
    grid, kept = [], []
    for ratio in mask_ratios:
        grid.append([])
        kept.append([])
        for patch in patch_sizes:
            method = MaskFill(model)
            fill = method.attribute(
                image,
                target=target,
                n_samples=n_samples,
                mask_ratio=ratio,
                patch_size=patch,
                seed=seed,
                max_draws=max_draws_per_sample * n_samples,
            )
            grid[-1].append(prototype(fill, transform=transform)[0])
            kept[-1].append(int(method.counts.n_kept[0]))
    figure, axes = visualize_parameter_grid(grid, list(mask_ratios), list(patch_sizes))
    empty = 0
    for r, row in enumerate(kept):
        for c, n in enumerate(row):
            if n < n_samples:  # say on the panel what its picture rests on
                axes[r, c].text(
                    0.5, 0.5, "no kept draw" if n == 0 else f"{n} kept", color="red", fontsize=7,
                    ha="center", va="center", transform=axes[r, c].transAxes,
                )  # fmt: skip
                empty += n == 0
    note = (
        f" {empty} panel(s) had no kept draw (the model never kept its label under such masks): black." if empty else ""
    )
    what = (
        f"Fig. 4: T(fill) over mask ratio x patch size (T: {transform}), {n_samples:,} kept masks asked per panel, "
        f"at most {max_draws_per_sample * n_samples:,} drawn; a panel that kept fewer says how many.{note}"
    )
    return PaperFigure(figure, _with_selection(what, selection))


def orders_figure(
    model: Callable,
    images: Tensor,
    *,
    n_samples: int,
    seed: int,
    transform: TransformSetting,
    n_iter: int = FIG5_BFGS_ITERATIONS,
    target: Tensor | None = None,
    selection: str | None = None,
) -> PaperFigure:
    """Fig. 5: first- against second-order (BFGS) fills of the same masks, ``T`` of
    both (and not binarized, where ``transform`` is), with their cosine similarity per
    image in the caption."""
    kwargs = dict(target=target, n_samples=n_samples, seed=seed)
    first_order = MaskFill(model).attribute(images, **kwargs)
    second_order = BFGSMaskFill(model).attribute(images, n_iter=n_iter, **kwargs)
    cosine = fill_cosine_similarity(first_order, second_order)
    plain = dataclasses.replace(transform, binarized=False)
    columns = {
        "x": images,
        "T(fill), first order": prototype(first_order, transform=transform),
        "T(fill), BFGS": prototype(second_order, transform=transform),
    }
    if transform.binarized:  # else these are the two columns above
        columns["first order, not binarized"] = prototype(first_order, transform=plain)
        columns["BFGS, not binarized"] = prototype(second_order, transform=plain)
    figure, _ = visualize_comparison(columns)
    what = (
        f"Fig. 5: first- vs second-order (BFGS, {n_iter} iterations) fills (T: {transform}); "
        "cosine similarity per image: " + ", ".join(f"{c:.3f}" for c in cosine.tolist()) + "."
    )
    return PaperFigure(figure, _with_selection(what, selection))


def binarized_figure(
    model: Callable,
    images: Tensor,
    *,
    n_samples: int,
    n_steps: int,
    seed: int,
    transform: TransformSetting,
    progressive_transform: TransformSetting,
    target: Tensor | None = None,
    method: ProgressiveMaskFill | None = None,
    selection: str | None = None,
) -> PaperFigure:
    """Fig. 6: binarized against not, for random masks (``transform``'s normalization
    and scale) and progressive masks (``progressive_transform``'s)."""
    random_fills = MaskFill(model).attribute(images, target=target, n_samples=n_samples, seed=seed)
    binarized = dataclasses.replace(transform, binarized=True)
    plain = dataclasses.replace(transform, binarized=False)
    binarized_progressive = dataclasses.replace(progressive_transform, binarized=True)
    progressive_plain = dataclasses.replace(progressive_transform, binarized=False)
    progressive = method or ProgressiveMaskFill(model)
    figure, _ = visualize_comparison(
        {
            "random, binarized": prototype(random_fills, transform=binarized),
            "random, not binarized": prototype(random_fills, transform=plain),
            "progressive, binarized": progressive.attribute(
                images, target=target, n_steps=n_steps, seed=seed, transform=binarized_progressive
            ),
            "progressive, not binarized": progressive.attribute(
                images, target=target, n_steps=n_steps, seed=seed, transform=progressive_plain
            ),
        },
        fig_size=(9.2, 6.6),  # room for the longest column title
    )
    what = f"Fig. 6: binarized vs not, random (4.1, {binarized}) and progressive (4.2, {binarized_progressive}) masks."
    return PaperFigure(figure, _with_selection(what, selection))
