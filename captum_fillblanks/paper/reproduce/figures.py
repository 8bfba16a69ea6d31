"""Figs. 2-6 of a reproduction, drawn through the public API into the run's folder."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

import torch
from torch import Tensor

from ...attr.bfgs import BFGSMaskFill, fill_cosine_similarity
from ...attr.mask_fill import MaskFill
from ...attr.progressive import ProgressiveMaskFill
from ...attr.transforms import TransformSetting, prototype
from ..files import write_atomically
from .config import RunConfig
from .stages import Table

__all__ = ["FIG4_MASK_RATIOS", "FIG4_PATCH_SIZES", "FIG5_BFGS_ITERATIONS", "FIG5_MAX_SAMPLES", "draw_figures"]

#: Fig. 4's grid: the paper's mask ratios (rows) and patch sizes (columns).
FIG4_MASK_RATIOS = (0.1, 0.25, 0.5, 0.75)
FIG4_PATCH_SIZES = (1, 2, 4, 7)
#: Fig. 4 draws up to this many masks per kept one (a high ratio keeps few).
FIG4_MAX_DRAWS_PER_SAMPLE = 20
#: Fig. 5: BFGS iterations per mask, and at most this many masks (BFGS costs ~10x a fill).
FIG5_BFGS_ITERATIONS = 5
FIG5_MAX_SAMPLES = 500


def draw_figures(
    out: Path,
    model: Callable,
    images: Tensor,
    labels: Tensor,
    table: Table,
    chosen: dict[str, TransformSetting],
    n_classes: int,
    config: RunConfig,
) -> dict[str, str]:
    """Figs. 2-6 into ``out``; returns file name -> caption. The figures show the first
    test image of each class (Figs. 3 and 4 the first of them, Fig. 5 four, Fig. 6
    three); Fig. 2 the class means of every scored test image."""
    from matplotlib import pyplot as plt

    from ...attr.visualization import (
        visualize_comparison,
        visualize_parameter_grid,
        visualize_progressive,
        visualize_prototypes,
    )

    figures: dict[str, str] = {}
    figure_samples, seed = config.figure_samples, config.seed

    def save(figure, name: str, caption: str) -> None:
        write_atomically(Path(out) / name, lambda handle: figure.savefig(handle, dpi=90, format="png"))
        plt.close(figure)
        figures[name] = caption

    strict, progressive_setting = chosen["strict"], chosen["progressive"]
    # the not-binarized views keep the chosen normalization and scale
    plain = dataclasses.replace(strict, binarized=False)
    # Fig. 2: class prototypes (the mean fill of every test image the model gave a class)
    names = [f"class {c} ({int(n)} images)" for c, n in enumerate(table.class_counts)]
    figure, _ = visualize_prototypes(prototype(table.class_means, transform=strict), names)
    save(
        figure,
        "fig2_class_prototypes.png",
        f"Fig. 2: T(mean fill) of all scored test images the model assigned to each class (T: {strict}).",
    )
    if strict.binarized:  # else the figure above is this one
        figure, _ = visualize_prototypes(prototype(table.class_means, transform=plain), names)
        save(
            figure,
            "fig2_class_prototypes_not_binarized.png",
            f"Fig. 2, not binarized: the normalized mean fill per class (T: {plain}).",
        )

    first = torch.stack([(labels == c).nonzero()[0, 0] for c in range(n_classes) if (labels == c).any()])
    few = first[:4]
    # Fig. 3: progressive
    progressive = ProgressiveMaskFill(model)
    progressive.attribute(images[few[:1]], n_steps=config.n_steps, seed=seed, transform=progressive_setting)
    steps = progressive.steps
    figure, _ = visualize_progressive(steps.images, steps.groups, steps.labels, image=images[few[:1]])
    save(
        figure,
        "fig3_progressive.png",
        f"Fig. 3: progressive filling with k = {config.n_steps} disjoint masks (T: {progressive_setting}); "
        "y-hat per step.",
    )

    # Fig. 4: mask ratio x patch size
    grid, kept = [], []
    for ratio in FIG4_MASK_RATIOS:
        grid.append([])
        kept.append([])
        for patch in FIG4_PATCH_SIZES:
            method = MaskFill(model)
            fill = method.attribute(
                images[few[:1]],
                n_samples=figure_samples,
                mask_ratio=ratio,
                patch_size=patch,
                seed=seed,
                max_draws=FIG4_MAX_DRAWS_PER_SAMPLE * figure_samples,
            )
            grid[-1].append(prototype(fill, transform=plain)[0])
            kept[-1].append(int(method.counts.n_kept[0]))
    figure, axes = visualize_parameter_grid(grid, list(FIG4_MASK_RATIOS), list(FIG4_PATCH_SIZES))
    empty = 0
    for r, row in enumerate(kept):
        for c, n in enumerate(row):
            if n < figure_samples:  # say on the panel what its picture rests on
                axes[r, c].text(
                    0.5, 0.5, "no kept draw" if n == 0 else f"{n} kept", color="red", fontsize=7,
                    ha="center", va="center", transform=axes[r, c].transAxes,
                )  # fmt: skip
                empty += n == 0
    note = (
        f" {empty} panel(s) had no kept draw (the model never kept its label under such masks): black." if empty else ""
    )
    save(
        figure,
        "fig4_ratio_patch_grid.png",
        f"Fig. 4: T(fill) over mask ratio x patch size (T: {plain}), {figure_samples:,} kept masks asked per panel, "
        f"at most {FIG4_MAX_DRAWS_PER_SAMPLE * figure_samples:,} drawn; a panel that kept fewer says how many.{note}",
    )

    # Fig. 5: first vs second order
    kwargs = dict(n_samples=min(figure_samples, FIG5_MAX_SAMPLES), seed=seed)
    first_order = MaskFill(model).attribute(images[few], **kwargs)
    second_order = BFGSMaskFill(model).attribute(images[few], n_iter=FIG5_BFGS_ITERATIONS, **kwargs)
    cosine = fill_cosine_similarity(first_order, second_order)
    columns = {
        "x": images[few],
        "T(fill), first order": prototype(first_order, transform=strict),
        "T(fill), BFGS": prototype(second_order, transform=strict),
    }
    if strict.binarized:  # else these are the two columns above
        columns["first order, not binarized"] = prototype(first_order, transform=plain)
        columns["BFGS, not binarized"] = prototype(second_order, transform=plain)
    figure, _ = visualize_comparison(columns)
    save(
        figure,
        "fig5_first_vs_second_order.png",
        f"Fig. 5: first- vs second-order (BFGS, {FIG5_BFGS_ITERATIONS} iterations) fills (T: {strict}); "
        "cosine similarity per image: " + ", ".join(f"{c:.3f}" for c in cosine.tolist()) + ".",
    )

    # Fig. 6: binarized vs not, each with the normalization its row chose
    random_fills = MaskFill(model).attribute(images[few[:3]], n_samples=figure_samples, seed=seed)
    binarized_strict = dataclasses.replace(strict, binarized=True)
    binarized_progressive = dataclasses.replace(progressive_setting, binarized=True)
    progressive_plain = dataclasses.replace(progressive_setting, binarized=False)
    figure, _ = visualize_comparison(
        {
            "random, binarized": prototype(random_fills, transform=binarized_strict),
            "random, not binarized": prototype(random_fills, transform=plain),
            "progressive, binarized": progressive.attribute(
                images[few[:3]], n_steps=config.n_steps, seed=seed, transform=binarized_progressive
            ),
            "progressive, not binarized": progressive.attribute(
                images[few[:3]], n_steps=config.n_steps, seed=seed, transform=progressive_plain
            ),
        },
        fig_size=(9.2, 6.6),  # room for the longest column title
    )
    save(
        figure,
        "fig6_binarized.png",
        f"Fig. 6: binarized vs not, random (4.1, {binarized_strict}) and progressive (4.2, "
        f"{binarized_progressive}) masks.",
    )
    return figures
