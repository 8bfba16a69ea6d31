"""Render the paper's figures (Figs. 1-6) and a comparison with other Captum methods.

Every figure is drawn by ``captum_fillblanks.attr.visualization`` from the output of the
package's public attribution methods, on real MNIST images: the package's bundled
samples (:func:`captum_fillblanks.paper.data.load_samples`), which were held out of the
shipped weights' training. Settings are small (hundreds to a few thousand masks per
image, not the paper's 10,000) so the whole script runs in about a minute on one CPU
core (most of it the BFGS figure).

Usage (from the repository root)::

    python docs/figures/make_figures.py                   # shipped weights and samples
    python docs/figures/make_figures.py --weights my.pt   # a simple_cnn state dict
    python docs/figures/make_figures.py --data ../shared/data/mnist  # no bundled samples

With ``--data`` the images are the same held-out samples, taken from the IDX files
(``split_training_set(...).samples``).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import torch  # noqa: E402
from captum.attr import IntegratedGradients, Occlusion, Saliency  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from captum_fillblanks import DEFAULT_THRESHOLD, MaskFill, ProgressiveMaskFill, prototype, random_patch_masks  # noqa: E402
from captum_fillblanks.attr.transforms import (
    DEFAULT_SCALE_PERCENTILE,  # noqa: E402
    TransformSetting,  # noqa: E402
)
from captum_fillblanks.attr.visualization import (  # noqa: E402
    visualize_expected_fill,
    visualize_mask_fill,
    visualize_methods,
    visualize_prototypes,
)
from captum_fillblanks.paper.data import load_samples, load_tensors, split_training_set  # noqa: E402
from captum_fillblanks.paper.figures import (  # noqa: E402
    binarized_figure,
    orders_figure,
    progressive_figure,
    ratio_patch_figure,
)
from captum_fillblanks.paper.models import lenet5, simple_cnn  # noqa: E402

HERE = Path(__file__).resolve().parent
SEED = 0
N_SAMPLES = 1000  # kept draws per image (the paper: > 10,000)
SELECTION = "the first bundled MNIST sample of {} (held out of training), its true class the target"


def load_model(weights: str | None) -> torch.nn.Module:
    if weights is None:
        return simple_cnn(weights="DEFAULT")
    model = simple_cnn()
    model.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
    return model.eval()


def load_images(data: str | None) -> tuple[torch.Tensor, torch.Tensor]:
    """The 100 held-out MNIST samples (10 per digit, ordered by digit)."""
    if data is None:
        return load_samples("mnist")
    images, labels = load_tensors("mnist", data, train=True)
    samples = split_training_set("mnist", labels).samples
    return images[samples], labels[samples]


def save(figure, name: str, caption: str | None = None) -> None:
    path = HERE / name
    figure.savefig(path, dpi=100)
    print(f"wrote {path.relative_to(HERE.parent.parent)} ({path.stat().st_size // 1024} KB)")
    if caption:
        print(f"  {caption}")


def first_of(labels: torch.Tensor, digits) -> torch.Tensor:
    """Index of the first sample of each digit."""
    return torch.stack([(labels == d).nonzero()[0, 0] for d in digits])


def fig1_fill(model, images, labels) -> None:
    """Fig. 1: one mask, its update (red/blue) and the filled image, for three digits."""
    chosen = first_of(labels, [3, 5, 8])
    mask = random_patch_masks(1, 28, 28, mask_ratio=0.25, patch_size=4, generator=torch.Generator().manual_seed(SEED))[
        0
    ]
    figure, _ = visualize_mask_fill(model, images[chosen], mask, target=labels[chosen], show_inputs=True)
    save(figure, "fig1_fill.png")


def fig2(model, images, labels) -> None:
    """Fig. 2: the expected fill of four digits, and one prototype per class."""
    chosen = first_of(labels, range(10))
    fills = MaskFill(model).attribute(images[chosen], target=labels[chosen], n_samples=N_SAMPLES, seed=SEED)
    mask = random_patch_masks(1, 28, 28, generator=torch.Generator().manual_seed(SEED))[0]
    show = [2, 4, 7, 9]
    figure, _ = visualize_expected_fill(images[chosen][show], fills[show], mask=mask)
    save(figure, "fig2_expected_fill.png")
    # two blocks of one grid each, drawn into the subfigures of one figure
    figure = Figure(figsize=(10, 9.2), layout="constrained")
    for block, binarized in zip(figure.subfigures(2, 1), (True, False)):
        visualize_prototypes(
            prototype(fills, binarized=binarized),
            [f"class {d}" for d in range(10)],
            ncols=5,
            plt_fig_axis=(block, None),
        )
        block.suptitle(
            f"T(fill), binarized at τ = {DEFAULT_THRESHOLD} after the {DEFAULT_SCALE_PERCENTILE:g}th-percentile scale"
            if binarized
            else "T(fill) not binarized: the normalized fill"
        )
    save(figure, "fig2_prototypes.png")


def fig3_progressive(model, images, labels) -> None:
    """Fig. 3: four disjoint masks, the part predicted so far, the image after each step
    (every step fills towards the true class; the titles give what the model predicts)."""
    chosen = first_of(labels, [3])
    drawn = progressive_figure(
        model, images[chosen], target=labels[chosen], n_steps=4, seed=SEED, selection=SELECTION.format("digit 3")
    )
    save(drawn.figure, "fig3_progressive.png", drawn.caption)


def fig3_progressive_classes(model, images, labels) -> None:
    """Fig. 3 for every class: the paper's progressive rebuild beside the averaged step.

    The first three bundled samples of each digit (three blocks, one sample of each digit
    per column); rows: the image, the paper's rebuild (per-step targets, one mask per
    step), every step pushed toward the model's label ``y_0`` of the image, and that with
    the averaged step (``n_samples=64``). k = 4 steps of 2x2 patches, the default ``T``;
    the titles give the class the model, then the judge (LeNet-5), give the rebuild.
    """
    judge = lenet5(weights="DEFAULT")
    method = ProgressiveMaskFill(model)
    variants = {
        "paper: per-step targets": {},
        "fixed target y_0": {"fixed": True},
        "fixed y_0, 64 masks per step": {"fixed": True, "n_samples": 64},
    }
    figure = Figure(figsize=(10.5, 15), layout="constrained")
    for rank, block in enumerate(figure.subfigures(3, 1)):
        chosen = torch.stack([(labels == d).nonzero()[rank, 0] for d in range(10)])
        x = images[chosen]
        with torch.no_grad():
            y0 = model(x).argmax(1)
        rows, titles = [x], [f"y_0 = {int(v)}" for v in y0]
        for options in variants.values():
            target = y0 if options.get("fixed") else None
            rebuilt = method.attribute(x, target=target, n_steps=4, seed=SEED, n_samples=options.get("n_samples", 1))
            with torch.no_grad():
                by_model, by_judge = model(rebuilt).argmax(1), judge(rebuilt).argmax(1)
            rows.append(rebuilt)
            titles += [f"f {int(a)} · J {int(b)}" for a, b in zip(by_model, by_judge)]
        _, axes = visualize_prototypes(torch.cat(rows), titles, ncols=10, plt_fig_axis=(block, None))
        for ax, name in zip(axes[:, 0], ["image", *variants]):
            ax.set_ylabel(name.replace(": ", ":\n").replace(", ", ",\n"), fontsize=8)
        block.suptitle(f"sample {rank + 1} of each digit", fontsize=10)
    figure.suptitle(
        "Progressive rebuilds x_k of the first three bundled samples of each digit (SimpleCNN, k = 4 steps of 2x2\n"
        f"patches, binarized T at the {DEFAULT_SCALE_PERCENTILE:g}th percentile, τ = {DEFAULT_THRESHOLD}). Titles: "
        "the class the model (f) and the judge, LeNet-5 (J), give x_k;\nabove the image, the model's label y_0 of x",
        fontsize=10,
    )
    save(figure, "fig3_progressive_classes.png")


def fig4_grid(model, images, labels) -> None:
    """Fig. 4: the prototype of one digit over mask ratio x patch size (not binarized,
    so the whole normalized fill shows, not only what passes the threshold)."""
    chosen = first_of(labels, [3])
    drawn = ratio_patch_figure(
        model,
        images[chosen],
        target=labels[chosen],
        n_samples=N_SAMPLES // 2,
        seed=SEED,
        transform=TransformSetting(binarized=False),
        selection=SELECTION.format("digit 3"),
    )
    save(drawn.figure, "fig4_grid.png", drawn.caption)


def fig5_second_order(model, images, labels) -> None:
    """Fig. 5: prototypes from first-order and BFGS (second-order) updates, binarized
    and not."""
    chosen = first_of(labels, [0, 3, 5, 8])
    drawn = orders_figure(
        model,
        images[chosen],
        target=labels[chosen],
        n_samples=N_SAMPLES // 4,
        seed=SEED,
        transform=TransformSetting(),
        selection=SELECTION.format("digits 0, 3, 5 and 8"),
    )
    save(drawn.figure, "fig5_first_vs_second_order.png", drawn.caption)


def fig6_binarized(model, images, labels) -> None:
    """Fig. 6: binarized vs not, for random masks (4.1) and progressive masks (4.2)."""
    chosen = first_of(labels, [2, 4, 7])
    drawn = binarized_figure(
        model,
        images[chosen],
        target=labels[chosen],
        n_samples=N_SAMPLES,
        n_steps=4,
        seed=SEED,
        transform=TransformSetting(),
        progressive_transform=TransformSetting(),
        selection=SELECTION.format("digits 2, 4 and 7"),
    )
    save(drawn.figure, "fig6_binarized.png", drawn.caption)


def methods_comparison(model, images, labels) -> None:
    """MaskFill beside Captum's IntegratedGradients, Saliency and Occlusion."""
    chosen = first_of(labels, [1, 3, 6])
    x, y = images[chosen], labels[chosen]
    attributions = {
        "IntegratedGradients": IntegratedGradients(model).attribute(x, target=y, n_steps=32),
        "Saliency": Saliency(model).attribute(x, target=y),
        "Occlusion": Occlusion(model).attribute(x, target=y, sliding_window_shapes=(1, 4, 4), strides=(1, 2, 2)),
        "MaskFill": MaskFill(model).attribute(x, target=y, n_samples=N_SAMPLES, seed=SEED),
    }
    signs = {"IntegratedGradients": "all", "Occlusion": "all", "MaskFill": "all"}
    figure, _ = visualize_methods(x, attributions, sign=signs, row_titles=[f"label {int(v)}" for v in y])
    save(figure, "methods_comparison.png")


FIGURES = {
    "fig1": fig1_fill,
    "fig2": fig2,
    "fig3": fig3_progressive,
    "fig3-classes": fig3_progressive_classes,
    "fig4": fig4_grid,
    "fig5": fig5_second_order,
    "fig6": fig6_binarized,
    "methods": methods_comparison,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--weights", help="a simple_cnn state dict (default: the shipped weights)")
    parser.add_argument("--data", help="folder of MNIST IDX files (default: the bundled samples)")
    parser.add_argument("--only", nargs="*", choices=sorted(FIGURES), help="render only these")
    args = parser.parse_args()
    torch.manual_seed(SEED)
    model = load_model(args.weights)
    images, labels = load_images(args.data)
    for name in args.only or FIGURES:
        start = time.perf_counter()
        FIGURES[name](model, images, labels)
        print(f"  {name}: {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
