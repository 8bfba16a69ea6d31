"""Figs. 2-6 of a reproduction, drawn by the recipes of :mod:`captum_fillblanks.paper.figures`
into the run's folder."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

import torch
from torch import Tensor

from ...attr.progressive import ProgressiveMaskFill
from ...attr.transforms import TransformSetting
from ..files import write_atomically
from .config import RunConfig
from .stages import Table

__all__ = ["FIG5_MAX_SAMPLES", "draw_figures"]

#: Fig. 5: at most this many masks (BFGS costs ~10x a fill).
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

    from ..figures import (
        binarized_figure,
        class_prototypes_figure,
        orders_figure,
        progressive_figure,
        ratio_patch_figure,
    )

    figures: dict[str, str] = {}
    figure_samples, seed = config.figure_samples, config.seed

    def save(drawn, name: str) -> None:
        write_atomically(Path(out) / name, lambda handle: drawn.figure.savefig(handle, dpi=90, format="png"))
        plt.close(drawn.figure)
        figures[name] = drawn.caption

    strict, progressive_setting = chosen["strict"], chosen["progressive"]
    # the not-binarized views keep the chosen normalization and scale
    plain = dataclasses.replace(strict, binarized=False)
    # Fig. 2: class prototypes (the mean fill of every test image the model gave a class)
    save(class_prototypes_figure(table.class_means, table.class_counts, strict), "fig2_class_prototypes.png")
    if strict.binarized:  # else the figure above is this one
        drawn = class_prototypes_figure(table.class_means, table.class_counts, plain)
        save(drawn, "fig2_class_prototypes_not_binarized.png")

    first = torch.stack([(labels == c).nonzero()[0, 0] for c in range(n_classes) if (labels == c).any()])
    few = first[:4]

    def first_of(indices: Tensor) -> str:
        classes = [str(int(labels[i])) for i in indices]
        return f"the first test image of class{'es' if len(classes) > 1 else ''} {', '.join(classes)}"

    progressive = ProgressiveMaskFill(model)
    drawn = progressive_figure(
        model,
        images[few[:1]],
        n_steps=config.n_steps,
        seed=seed,
        transform=progressive_setting,
        method=progressive,
        selection=first_of(few[:1]),
    )
    save(drawn, "fig3_progressive.png")
    drawn = ratio_patch_figure(
        model, images[few[:1]], n_samples=figure_samples, seed=seed, transform=plain, selection=first_of(few[:1])
    )
    save(drawn, "fig4_ratio_patch_grid.png")
    drawn = orders_figure(
        model,
        images[few],
        n_samples=min(figure_samples, FIG5_MAX_SAMPLES),
        seed=seed,
        transform=strict,
        selection=first_of(few),
    )
    save(drawn, "fig5_first_vs_second_order.png")
    # Fig. 6: binarized vs not, each with the normalization its row chose
    drawn = binarized_figure(
        model,
        images[few[:3]],
        n_samples=figure_samples,
        n_steps=config.n_steps,
        seed=seed,
        transform=strict,
        progressive_transform=progressive_setting,
        method=progressive,
        selection=first_of(few[:3]),
    )
    save(drawn, "fig6_binarized.png")
    return figures
