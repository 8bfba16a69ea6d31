"""The offline demo: the paper's Figs. 1-3 on the bundled samples and a small Table 1.

Runs on the shipped weights and sample images only (no network, no data folder), in
about a minute on a 2-core CPU. Everything goes through the public API.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch

from ..attr.mask_fill import MaskFill
from ..attr.masks import random_patch_masks, resolve_seed
from ..attr.metrics import ROWS, ConsistencyCounts, consistency_counts
from ..attr.progressive import ProgressiveMaskFill
from ..attr.transforms import TransformSetting, prototype
from .data import load_samples
from .files import write_atomically
from .models import DEFAULT_ARCH, shipped_model


def _save(figure, path: Path, written: list[Path]) -> None:
    write_atomically(path, lambda handle: figure.savefig(handle, dpi=90, format="png"))
    written.append(path)


def run_demo(
    out: Path,
    *,
    n_samples: int = 300,
    images_per_class: int = 2,
    seed: int = 0,
    show_progress: bool = True,
    echo: Callable[[str], None] = print,
) -> dict[str, ConsistencyCounts]:
    """Write the demo figures into ``out`` and return the consistency counts per data set.

    The caller's process state is left as it was: torch's global random state (the demo
    runs under :func:`torch.random.fork_rng`: building a model draws its initial weights
    from it, and the control models are seeded) and matplotlib's
    backend (the command line chooses Agg; the figures are saved and closed, never shown).
    """
    for name, value in (("n_samples", n_samples), ("images_per_class", images_per_class)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be an int >= 1, got {value!r}")
    resolve_seed(seed)  # the check MaskFill makes, before the first mask is drawn
    with torch.random.fork_rng(devices=[]):
        return _run_demo(Path(out), n_samples, images_per_class, seed, show_progress, echo)


def _run_demo(out, n_samples, images_per_class, seed, show_progress, echo) -> dict[str, ConsistencyCounts]:
    from matplotlib import pyplot as plt

    from ..attr.visualization import (
        visualize_expected_fill,
        visualize_mask_fill,
        visualize_progressive,
        visualize_prototypes,
    )

    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    results: dict[str, ConsistencyCounts] = {}
    for dataset in DEFAULT_ARCH:
        entry = shipped_model(dataset)
        model, name = entry.build(), entry.name
        images, labels = load_samples(dataset)
        n_classes = int(labels.max()) + 1
        first = torch.stack([(labels == c).nonzero()[0, 0] for c in range(n_classes)])
        echo(f"{dataset}: {name} on {len(first)} bundled images, {n_samples} kept masks each")

        # Fig. 1: one mask, three examples
        mask = random_patch_masks(1, 28, 28, patch_size=4, generator=torch.Generator().manual_seed(seed))[0]
        figure, _ = visualize_mask_fill(model, images[first[:3]], mask)
        _save(figure, out / f"{dataset}_fig1_one_mask.png", written)
        plt.close(figure)

        # one fill of the Table 1 images serves Fig. 2 too: they start with the first
        # images_per_class of each class
        chosen = torch.cat([(labels == c).nonzero()[:images_per_class, 0] for c in range(n_classes)])
        fills = MaskFill(model).attribute(images[chosen], n_samples=n_samples, seed=seed, show_progress=show_progress)
        fill = fills[torch.arange(n_classes) * images_per_class]  # one image per class

        # Fig. 2: the expected fill of one image per class, and the prototypes
        figure, _ = visualize_expected_fill(images[first[:4]], fill[:4])
        _save(figure, out / f"{dataset}_fig2_expected_fill.png", written)
        plt.close(figure)
        not_binarized = prototype(fill, transform=TransformSetting(binarized=False))
        figure, _ = visualize_prototypes(not_binarized, [f"class {c}" for c in range(n_classes)])
        _save(figure, out / f"{dataset}_fig2_prototypes.png", written)
        plt.close(figure)

        # Fig. 3: progressive filling of one image
        progressive = ProgressiveMaskFill(model)
        progressive.attribute(images[first[3:4]], n_steps=4, seed=seed)
        steps = progressive.steps
        figure, _ = visualize_progressive(steps.images, steps.groups, steps.labels, image=images[first[3:4]])
        _save(figure, out / f"{dataset}_fig3_progressive.png", written)
        plt.close(figure)

        # Table 1 on a few images per class, with a random-initialized control
        torch.default_generator.manual_seed(seed)  # the CPU's only, under run_demo's fork_rng
        control = entry.builder().eval()
        results[dataset] = consistency_counts(
            model,
            images[chosen],
            n_classes=n_classes,
            n_samples=n_samples,
            seed=seed,
            control_model=control,
            show_progress=show_progress,
            fill=fills,
        )
    echo("")
    echo(format_table(results))
    echo("")
    echo(f"wrote {len(written)} figures to {out}:")
    for path in written:
        echo(f"  {path}")
    return results


def format_table(results: dict[str, ConsistencyCounts], models: dict[str, str] | None = None) -> str:
    """Table 1 as Markdown: one row per data set and way of rebuilding the image."""
    models = models or {name: shipped_model(name).name for name in results if name in DEFAULT_ARCH}
    lines = [
        "| data set | model | images | rebuilt image | accuracy | macro F1 | weighted F1 |",
        "|---|---|---|---|---|---|---|",
    ]
    for dataset, counts in results.items():
        for row, scores in counts.scores().items():
            lines.append(
                f"| {dataset} | {models.get(dataset, '?')} | {counts.n_images} | {row}: {ROWS[row]} | "
                f"{scores['accuracy']:.1f} | {scores['macro_f1']:.1f} | {scores['weighted_f1']:.1f} |"
            )
    return "\n".join(lines)
