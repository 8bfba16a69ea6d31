"""The mask study's two figures: each column against the kept masks per image, and the
prototypes of one image per class at several counts."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from torch import Tensor

from ...attr.transforms import prototype
from ..files import write_atomically
from .study import stopped_by_tolerance

__all__ = ["draw_study_curves", "draw_study_prototypes"]


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
