"""The mask study's three figures: each column against the kept masks per image, the
prototypes of one image per class at several counts, and several images per class with
their fill, ``T(fill)`` and the paper-style image."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
from torch import Tensor

from ...attr.masks import apply_masks
from ...attr.transforms import TransformSetting, filled_image, prototype
from ..files import write_atomically
from .fills import stopped_by_tolerance

__all__ = ["draw_study_curves", "draw_study_per_image", "draw_study_prototypes", "first_of_each_class"]


def _save(figure, path: Path) -> None:
    write_atomically(path, lambda handle: figure.savefig(handle, format="png", dpi=110, bbox_inches="tight"))


def draw_study_curves(rows, summary, columns: dict, path: Path, title: str) -> None:
    """One panel per column: its value (± one bootstrap standard error) against the mean
    kept masks per image, for the fixed counts (line) and the tolerances (one marker per
    cap, each point labelled with its tolerance)."""
    import matplotlib.pyplot as plt

    groups: dict[str, list] = {"fixed count": [row for row in rows if row.converged is None]}
    for row in rows:
        if row.converged is not None:
            cap = row.label.split(", cap ")[1] if ", cap " in row.label else groups["fixed count"][-1].label
            groups.setdefault(f"tolerance, cap {cap}", []).append(row)
    styles = [dict(fmt="o-", color="tab:blue"), dict(fmt="s", color="tab:orange"), dict(fmt="^", color="tab:green")]
    figure, axes = plt.subplots(2, (len(columns) + 1) // 2, figsize=(3.3 * ((len(columns) + 1) // 2), 6.4))
    for axis, (key, (label, _)) in zip(axes.flat, columns.items()):
        for g, ((name, chosen), style) in enumerate(zip(groups.items(), styles)):
            x = [float(row.n_kept.double().mean()) for row in chosen]
            y = [summary[row.label][key].value for row in chosen]
            err = [summary[row.label][key].se for row in chosen]
            axis.errorbar(x, y, yerr=err, capsize=3, label=name, markersize=4, **style)
            if g:  # label each tolerance point with its value, one cap above, the other below
                for xi, yi, row in zip(x, y, chosen):
                    axis.annotate(
                        row.label.split()[1].rstrip(","),
                        (xi, yi),
                        fontsize=6,
                        color=style["color"],
                        xytext=(0, 6 if g == 1 else -11),
                        ha="center",
                        textcoords="offset points",
                    )
        axis.set_xscale("log")
        axis.set_title(label, fontsize=8)
        axis.set_xlabel("mean kept masks per image", fontsize=8)
        axis.tick_params(labelsize=7)
    for axis in list(axes.flat)[len(columns) :]:
        axis.axis("off")
    axes.flat[0].legend(fontsize=6)
    figure.suptitle(title, fontsize=9)
    figure.tight_layout()
    _save(figure, path)
    plt.close(figure)


def draw_study_prototypes(
    images: Tensor,
    labels: Tensor,
    study: dict[str, Tensor],
    class_names: Sequence[str],
    path: Path,
    *,
    counts: Sequence[int],
    stop: tuple[float, int | None],
    transforms: dict[str, object],
    title: str,
) -> list[int]:
    """The first study image of each class (by its true label): the image, then
    ``T(fill)`` at each of ``counts`` and at the tolerance and cap ``stop`` under the first transform,
    and at the largest count under each other transform. Returns the images' indices."""
    import matplotlib.pyplot as plt

    chosen = [int((labels == c).nonzero()[0, 0]) for c in range(len(class_names)) if bool((labels == c).any())]
    recorded = study["counts"].tolist()
    (first_name, first), *others = transforms.items()
    tolerance, cap = stop
    stopped = stopped_by_tolerance(study, tolerance, cap)
    panels = [("image x", images[chosen])]
    for count in counts:
        fill = study["fill"][recorded.index(count)][chosen]
        panels.append((f"T(fill), {count:,} kept\n({first_name})", prototype(fill, transform=first)))
    kept = stopped.n_kept[chosen].double().mean()
    panels.append(
        (
            f"T(fill), tolerance {tolerance:g}\n(mean {kept:,.0f} kept)",
            prototype(stopped.fill[chosen], transform=first),
        )
    )
    for name, setting in others:
        fill = study["fill"][-1][chosen]
        panels.append((f"T(fill), {recorded[-1]:,} kept\n({name})", prototype(fill, transform=setting)))
    figure, axes = plt.subplots(len(panels), len(chosen), figsize=(1.1 * len(chosen) + 1.4, 1.15 * len(panels)))
    for r, (row_title, pictures) in enumerate(panels):
        for c, index in enumerate(chosen):
            axis = axes[r, c]
            axis.imshow(pictures[c].mean(0).clamp(0, 1).numpy(), cmap="gray", vmin=0, vmax=1)
            axis.set_xticks([])
            axis.set_yticks([])
            if r == 0:
                axis.set_title(f"{class_names[int(labels[index])]}\n#{index}", fontsize=7)
            if c == 0:
                axis.set_ylabel(row_title, fontsize=7, rotation=0, ha="right", va="center")
    figure.suptitle(title, fontsize=9)
    figure.tight_layout()
    _save(figure, path)
    plt.close(figure)
    return chosen


def first_of_each_class(labels: Tensor, n_classes: int, per_class: int) -> list[list[int]]:
    """The indices of the first ``per_class`` images of each class (by true label), one
    list per rank: ``[[first 0, first 1, ...], [second 0, second 1, ...], ...]``; a class
    with fewer images leaves its later slots out (``-1``)."""
    found = [(labels == c).nonzero()[:, 0].tolist() for c in range(n_classes)]
    return [[f[rank] if rank < len(f) else -1 for f in found] for rank in range(per_class)]


def draw_study_per_image(
    images: Tensor,
    labels: Tensor,
    fill: Tensor,
    blanks: Tensor,
    class_names: Sequence[str],
    path: Path,
    *,
    transform: TransformSetting,
    per_class: int,
    title: str,
    n_kept: Tensor | None = None,
) -> list[list[int]]:
    """The first ``per_class`` study images of each class (by true label), one block per
    rank, a column per class: the image ``x``; the fill as a signed heat map (red adds
    ink, blue removes it; each panel scaled by the 99th percentile of its own ``|fill|``,
    one colour bar for all); ``T(fill)`` over every pixel (``transform``); and
    ``M(x) + T(fill)``, the paper-style image, under the image's own scoring mask
    ``blanks`` (``True`` = blank). A panel whose image kept no draw says so. Returns the
    indices drawn (as :func:`first_of_each_class`)."""
    import matplotlib.pyplot as plt

    ranks = first_of_each_class(labels, len(class_names), per_class)
    protos = prototype(fill, transform=transform)
    pasted = filled_image(apply_masks(images, blanks), fill, blanks, transform=transform)
    scale = torch.quantile(fill.abs().flatten(1).double(), 0.99, dim=1).float().clamp(min=1e-12)
    rows = ("x", "fill", "T(fill)", "M(x) + T(fill)")
    n_rows = len(rows) * per_class
    figure, axes = plt.subplots(
        n_rows, len(class_names), figsize=(1.0 * len(class_names) + 2.2, 0.9 * n_rows + 0.8), squeeze=False
    )
    heat = None
    for rank, chosen in enumerate(ranks):
        block = axes[len(rows) * rank : len(rows) * (rank + 1)]
        for c, index in enumerate(chosen):
            for r, name in enumerate(rows):
                block[r, c].set_xticks([])
                block[r, c].set_yticks([])
                if c == 0:
                    label = f"image {rank + 1}\nof each class:\n{name}" if r == 0 else name
                    block[r, c].set_ylabel(label, fontsize=7, rotation=0, ha="right", va="center")
            if index < 0:  # fewer study images of this class: an empty, frameless column
                block[0, c].set_title(f"{class_names[c]}: none", fontsize=6.5)
                for r in range(len(rows)):
                    block[r, c].set_frame_on(False)
                continue
            kept = "" if n_kept is None else f"\n{int(n_kept[index]):,} kept"
            block[0, c].set_title(f"{class_names[c]} #{index}{kept}", fontsize=6.5)
            block[0, c].imshow(images[index].mean(0).numpy(), cmap="gray", vmin=0, vmax=1)
            heat = block[1, c].imshow((fill[index].mean(0) / scale[index]).numpy(), cmap="bwr", vmin=-1, vmax=1)
            block[2, c].imshow(protos[index].mean(0).clamp(0, 1).numpy(), cmap="gray", vmin=0, vmax=1)
            block[3, c].imshow(pasted[index].mean(0).clamp(0, 1).numpy(), cmap="gray", vmin=0, vmax=1)
            if n_kept is not None and int(n_kept[index]) == 0:
                for r in (1, 2, 3):
                    block[r, c].text(14, 14, "no kept\ndraw", ha="center", va="center", fontsize=6, color="orange")
    figure.tight_layout(rect=(0, 0, 0.93, 0.98))
    if heat is not None:
        bar = figure.colorbar(heat, cax=figure.add_axes((0.945, 0.4, 0.012, 0.2)))
        bar.set_label("fill / its 99th pct. of |fill|\n(red adds ink, blue removes it)", fontsize=7)
        bar.ax.tick_params(labelsize=6)
    figure.suptitle(title, fontsize=9)
    _save(figure, path)
    plt.close(figure)
    return ranks
