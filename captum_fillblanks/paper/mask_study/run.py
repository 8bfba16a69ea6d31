"""The mask study, all of it (``captum-fillblanks mask-study``): fill, score, draw and
write ``masks.md``."""

from __future__ import annotations

import time
from pathlib import Path

import torch

from ...attr.mask_fill import RECOMMENDED_CAP, RECOMMENDED_TOLERANCE
from ...attr.masks import apply_masks
from ...attr.readability import wrong_target_control
from ..data import CLASS_NAMES
from ..distributed import Ranks, resolve_device
from ..files import load_tensors_file, save_tensors_file, write_atomically
from ..models import JUDGE_ARCH, shipped_model
from ..reproduce.config import RunConfig
from ..reproduce.run import load_test_images
from ..scoring import DEFAULT_T, MAX_SCALED_T, SCORING_SEED_OFFSET, per_image_blanks
from .figures import draw_study_curves, draw_study_per_image, draw_study_prototypes
from .fills import STUDY_COUNTS, images_digest, recorded_counts, study_fills
from .report import STUDY_COLUMNS, Summary, study_rows, study_table, summarize

__all__ = ["mask_study"]

#: The tolerance and cap of the prototypes figure's tolerance row: the recommended ones.
SHOWN_STOP = (RECOMMENDED_TOLERANCE, RECOMMENDED_CAP)

#: The per-image figure: the first this many study images of each class.
PER_CLASS_SHOWN = 3

#: The wrong-target control: the first this many study images, each filled toward a
#: wrong class with this many masks (``selection="all"``), as ``readability_summary``.
WRONG_TARGET_IMAGES, WRONG_TARGET_SAMPLES = 100, 300


def _outside(summary: dict[str, dict[str, Summary]], label: str, largest: str) -> list[str]:
    """The columns of row ``label`` whose value lies outside the largest count's error
    bar (more than its standard error away); the last column, the agreement with the
    largest count itself (1 there by construction), is not one of them."""
    columns = list(STUDY_COLUMNS)[:-1]
    return [key for key in columns if abs(summary[label][key].change) > summary[largest][key].se + 1e-12]


def _load_study(path: Path, images: torch.Tensor, counts: list[int], n_classes: int) -> dict:
    """A study's saved fills, checked field by field to be what
    :func:`~.study.study_fills` saves for ``images`` recorded at ``counts``: a file that
    only has the right name (cut, relabelled, another run's) is refused, not read."""
    n = len(images)
    expected = {
        "fill": (len(counts), *images.shape),
        "n_kept": (len(counts), n),
        "relative_error": (len(counts), n),
        "predicted": (n,),
        "n_drawn": (n,),
        "seconds": (),
    }
    try:
        study = load_tensors_file(path)
        keys = {*expected, "counts", "images_sha256"}
        if not isinstance(study, dict) or not keys <= set(study):
            found = sorted(study) if isinstance(study, dict) else type(study).__name__
            raise ValueError(f"it holds {found}, not the study's {sorted(keys)}")
        if not all(isinstance(study[key], torch.Tensor) for key in (*expected, "counts")):
            raise ValueError("its fields are not all tensors")
        shapes = {key: tuple(study[key].shape) for key in expected}
        if shapes != expected:
            wrong = {key: shapes[key] for key in expected if shapes[key] != expected[key]}
            raise ValueError(f"fields of shape {wrong}, expected { ({k: expected[k] for k in wrong}) }")
        if study["counts"].tolist() != counts:
            raise ValueError(f"recorded at {study['counts'].tolist()} kept masks, this run records at {counts}")
        if study["images_sha256"] != images_digest(images):
            raise ValueError(f"it was computed for other images than this run's {n}")
        predicted, n_kept = study["predicted"], study["n_kept"]
        if (
            predicted.is_floating_point()
            or predicted.is_complex()
            or not bool(((predicted >= 0) & (predicted < n_classes)).all())
        ):
            raise ValueError(f"its predicted labels are not classes 0 to {n_classes - 1}")
        if n_kept.is_floating_point() or not bool(((n_kept >= 0) & (n_kept <= torch.tensor(counts)[:, None])).all()):
            raise ValueError("its kept-mask counts are not whole numbers up to each recorded count")
        if not study["fill"].is_floating_point() or not study["relative_error"].is_floating_point():
            raise ValueError("its fills or errors are not floating point")
    except Exception as error:  # truncated, foreign or planted: say what broke
        raise ValueError(
            f"{path} is not a complete mask study of this run ({type(error).__name__}: {error}); delete it and "
            "rerun the same command: it will be recomputed"
        ) from error
    return study


def mask_study(
    dataset: str,
    data_dir: str | Path,
    out: str | Path,
    *,
    arch: str | None = None,
    weights: str | None = None,
    n_images: int = 100,
    n_samples: int = 10_000,
    seed: int = 0,
    shard_size: int = 50,
    device: str | torch.device | None = None,
    command: str = "",
    show_progress: bool = True,
) -> Path:
    """How many masks a reproduction's results need: write ``out/masks.md`` with its two
    figures.

    The first ``n_images`` test images of a reproduction (its shards and seeds), filled
    once with ``n_samples`` kept masks while recording every count
    (:func:`~.study.study_fills`; kept in ``out`` and reused by a rerun), and scored at
    each count of :data:`~.study.STUDY_COUNTS` and at each tolerance of
    :data:`~.study.STUDY_TOLERANCES`: the paper-style and strict rows of Table 1 and the
    readability checks, all with the package's default ``T`` (and the judge and IoU also
    with the earlier default, tau 0.2 at the largest value), each image under its own
    scoring mask, with bootstrap standard errors over the images.

    Returns:
        Path: the report.
    """

    started = time.perf_counter()
    config = RunConfig.create(
        dataset, arch=arch, weights=weights, n_images=n_images, n_samples=n_samples, shard_size=shard_size, seed=seed
    )
    device = resolve_device(device, Ranks())  # a bogus name, or CUDA on a machine without it: one line
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    images, labels, _ = load_test_images(config, str(data_dir))
    model = shipped_model(dataset, config.arch).build(config.weights).to(device)
    judge_entry = shipped_model(dataset, JUDGE_ARCH[dataset])
    judge = judge_entry.build()
    name = f"study_{dataset}_{config.arch}_{config.weights.name}_{n_images}_{n_samples}_{seed}.pt"
    cached = out / name
    if cached.exists():
        study = _load_study(cached, images, recorded_counts(config.n_samples), len(CLASS_NAMES[dataset]))
        fill_note = f"the fills were loaded from {name}, computed earlier in {float(study['seconds']) / 60:.1f} min"
    else:
        computing = time.perf_counter()
        study = study_fills(model, images.to(device), config, show_progress=show_progress)
        study["seconds"] = torch.tensor(time.perf_counter() - computing)
        save_tensors_file(study, cached)
        fill_note = f"the fills took {float(study['seconds']) / 60:.1f} min"
    model = model.cpu()
    blanks = per_image_blanks(images, config)  # each image's scoring mask, for every row and the control
    rows = study_rows(model, judge, images, study, config, blanks)
    summary = summarize(rows)
    largest = [row.label for row in rows if row.converged is None][-1]
    with torch.no_grad():
        control = 100.0 * float((model(apply_masks(images, blanks)).argmax(1) == study["predicted"]).double().mean())
    n_wrong = min(WRONG_TARGET_IMAGES, len(images))
    wrong_target, _ = wrong_target_control(
        model,
        images[:n_wrong],
        n_classes=len(CLASS_NAMES[dataset]),
        n_samples=WRONG_TARGET_SAMPLES,
        transform=DEFAULT_T,
        seed=seed + SCORING_SEED_OFFSET,
        **config.masks,
    )
    title = f"{config.model_name}, {len(images)} {dataset} test images"
    draw_study_curves(rows, summary, STUDY_COLUMNS, out / "masks.png", title)
    shown_stop = SHOWN_STOP if SHOWN_STOP[1] in study["counts"].tolist()[:-1] else (SHOWN_STOP[0], None)
    shown_counts = [c for c in STUDY_COUNTS if c in study["counts"].tolist()][::2]
    chosen = draw_study_prototypes(
        images,
        labels,
        study,
        CLASS_NAMES[dataset],
        out / "masks_prototypes.png",
        counts=shown_counts,
        stop=shown_stop,
        transforms={"default T": DEFAULT_T, "earlier T": MAX_SCALED_T},
        title=title,
    )
    ranks = draw_study_per_image(
        images,
        labels,
        study["fill"][-1],
        blanks,
        CLASS_NAMES[dataset],
        out / "masks_per_image.png",
        transform=DEFAULT_T,
        per_class=PER_CLASS_SHOWN,
        n_kept=study["n_kept"][-1],
        title=f"{title}: {largest} kept masks per image, default T ({DEFAULT_T})",
    )
    lines = [
        f"# How many masks: {config.model_name} on {dataset}",
        "",
        f"- command: `{command}`" if command else "- command: `mask_study(...)` from Python",
        f"- model: {config.model_name}; judge: {judge_entry.name} ({type(judge_entry.weights).__name__}."
        f"{judge_entry.weights.name}), trained separately",
        f"- images: the first {len(images)} test images of the reproduction, its shards of {shard_size} and its "
        f"mask seeds (seed {seed} + the shard's first image); mask ratio {config.mask_ratio}, patch size "
        f'{config.patch_size}; `selection="correct"`, at most {config.max_draws_per_sample} x {n_samples:,} draws',
        f"- run time {(time.perf_counter() - started) / 60:.1f} min ({fill_note}); torch {torch.__version__}, "
        f"device `{device}`",
        "",
        "One run fills every image with up to "
        f"{n_samples:,} kept masks, recording each image's fill as its own kept masks pass each count. The first "
        "n kept masks of a run are the kept masks of a run with `n_samples=n` (the same seed gives the same masks, "
        "kept the same way), so each row below is what that run would give; a tolerance row is what "
        "`tolerance=` would give, read off the same records at its checks (32, 64, 128, ... kept masks, then the "
        f"cap). Every column uses the package's default T ({DEFAULT_T}: binarized at tau "
        f"{DEFAULT_T.threshold:g} after dividing by the {DEFAULT_T.scale_percentile:g}th percentile of |fill| over "
        "the blanks, clipped; chosen on validation images by what an independent judge reads, "
        "`experiments/choose_display.py`); the columns marked *earlier T* use the earlier default "
        f"({MAX_SCALED_T}: tau {MAX_SCALED_T.threshold:g} after dividing by the largest |fill|).",
        "",
        f"Each image is scored under its own mask (the first of seed {seed} + {SCORING_SEED_OFFSET:,} + its index). "
        "Errors are one standard error, a bootstrap over the images (1,000 resamples); a `*` marks a value that "
        f"differs from the {largest}-mask value by more than twice the standard error of that difference (the "
        "same resamples for both). Paper-style and strict are Table 1's fill rows against `y_0`, the model's own "
        "label of the image (the judge is scored against it too); the inpainting AUC and IoU compare the fill "
        "with the image's ink (`x > 0.5`). The control row M(x) alone, with the same masks and no fill, scores "
        f"{control:.1f} %. The wrong-target control (each of the first {n_wrong} images filled toward a wrong "
        f'class drawn from seed {seed + SCORING_SEED_OFFSET:,}, {WRONG_TARGET_SAMPLES} masks, `selection="all"`, '
        "scored paper-style against that class under one mask of the same seed; it must stay low, else paper-style "
        f"measures an adversarial push): {wrong_target:.1f} %. The last column is the median IoU of each row's "
        "prototype with the largest count's "
        "(1 there by construction): how much of the picture is still changing.",
        "",
        *study_table(rows, summary),
        "",
    ]
    largest_kept = float(next(r for r in rows if r.label == largest).n_kept.double().sum())
    for row in rows:
        if row.converged is None:
            continue
        outside = _outside(summary, row.label, largest)
        share = 100 * float(row.n_kept.double().sum()) / largest_kept
        verdict = "every column lies" if not outside else "all but " + ", ".join(f"*{k}*" for k in outside) + " lie"
        lines.append(
            f"- **{row.label}**: {share:.0f} % of the {largest}-mask draws; {verdict} within the {largest}-mask "
            "error bar (one standard error; the last column aside)."
        )
    names = ", ".join(f"{CLASS_NAMES[dataset][int(labels[i])]} #{i}" for i in chosen)
    lines += [
        "",
        "![each column against the kept masks](masks.png)",
        "",
        "*Each column against the mean kept masks per image (log scale): fixed counts (blue line), and each "
        "tolerance with the run's cap (orange squares) and with a cap of 3,000 (green triangles), labelled with "
        "its tolerance; one standard error as bars.*",
        "",
        "![prototypes at several counts](masks_prototypes.png)",
        "",
        f"*The first test image of each class (by its true label; {names}): the image, `T(fill)` with the default T "
        f"at {', '.join(f'{c:,}' for c in shown_counts)} kept masks and at tolerance {shown_stop[0]:g} (cap "
        f"{shown_stop[1] or n_samples:,}), and at {largest} kept masks with the earlier T. White is ink; every "
        "panel is binarized.*",
        "",
        "![several images per class](masks_per_image.png)",
        "",
        f"*The first {PER_CLASS_SHOWN} study images of each class (by true label; "
        + "; ".join(", ".join(f"#{i}" for i in chosen if i >= 0) for chosen in ranks)
        + f"), at {largest} kept masks: the image x; the fill (red adds ink, blue removes it; each panel scaled by "
        "the 99th percentile of its own |fill|, colour bar on the right); `T(fill)` with the default T over every "
        "pixel (the strict row's image); and `M(x) + T(fill)` under the image's own scoring mask (the paper-style "
        "row's image).*",
        "",
    ]
    text = "\n".join(lines)
    report = out / "masks.md"
    write_atomically(report, lambda handle: handle.write(text.encode()))
    return report
