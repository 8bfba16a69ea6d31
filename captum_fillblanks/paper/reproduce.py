"""The paper's experiments on MNIST or Fashion-MNIST, into a folder with ``report.md``.

Figs. 2-6 and Table 1 (with its controls), computed through the public API on the
shipped weights and a folder of IDX files. The loop over test images runs in shards
whose confusion matrices and per-class sums add exactly: each finished shard is saved
under ``shards/`` (a rerun skips it), and the report is written only when every shard is
done, so an interrupted run never leaves a report that looks complete.
"""

from __future__ import annotations

import json
import platform
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from ..attr._captum_compat import progress
from ..attr._distributed import all_reduce_sum
from ..attr.bfgs import BFGSMaskFill, fill_cosine_similarity
from ..attr.mask_fill import MaskFill
from ..attr.metrics import ROWS, TRANSFORMED_ROWS, ConsistencyCounts, consistency_counts
from ..attr.progressive import ProgressiveMaskFill
from ..attr.transforms import NORMALIZATIONS, TransformSetting, prototype
from .data import load_tensors, sample_indices, split_training_set
from .distributed import Ranks, finish, launch
from .files import PARTIAL_SUFFIX, load_tensors_file, save_tensors_file, write_atomically
from .models import DEFAULT_ARCH, MODELS, shipped_weights

__all__ = [
    "class_prototypes",
    "choose_settings",
    "best_settings",
    "reproduce",
    "CANDIDATE_SETTINGS",
    "PAPER_TABLE_1",
]

# The masks of every fill of the reproduction: the paper's settings (section 4.1)
_MASK_RATIO, _PATCH_SIZE, _N_STEPS = 0.25, 2, 4
_MASKS = {"mask_ratio": _MASK_RATIO, "patch_size": _PATCH_SIZE}
_MAX_DRAWS_PER_SAMPLE = 10  # MaskFill's own default bound, written out so the report can name it

#: The scores :func:`choose_settings` can choose by.
CRITERIA = ("macro_f1", "accuracy", "weighted_f1")

#: The paper's Table 1 (MNIST, "ResNet5"), in percent: accuracy, macro F1, weighted F1.
PAPER_TABLE_1 = {"random": (99, 99, 99), "progressive": (93, 93, 93)}


def class_prototypes(
    model: Callable,
    batches: Iterable[tuple[Tensor, Tensor]],
    n_classes: int,
    **attribute_kwargs,
) -> tuple[Tensor, Tensor]:
    """The "global" view: the average fill of all images of each class.

    In a ``torch.distributed`` run (a process group initialized, e.g. under torchrun),
    pass each rank its part of the data (a ``DataLoader`` with a
    ``DistributedSampler``): the sums and counts are added over all ranks, and every
    rank gets the prototypes of the whole data set. Every rank must call it. Note that
    ``DistributedSampler`` pads the data set with repeated images to a multiple of the
    number of ranks unless ``drop_last=True``; the repeats are counted like any image.
    Without a process group nothing is reduced.

    Args:
        model (Callable): the classifier.
        batches (iterable of (images, labels)): e.g. a ``DataLoader``.
        n_classes (int): number of classes.
        **attribute_kwargs: passed to :meth:`MaskFill.attribute` (``n_samples``,
            ``seed``, ...); ``target`` is each image's label.

    Returns:
        (Tensor, Tensor): ``(n_classes, *image_shape)`` mean fill per class (zero for a
        class without images; float64, on the CPU) and ``(n_classes,)`` image counts.
        Show them with :func:`captum_fillblanks.attr.transforms.prototype`.
    """
    sums, counts = None, torch.zeros(n_classes, dtype=torch.long)
    method = MaskFill(model)
    for images, labels in batches:
        fill = method.attribute(images, target=labels.to(images.device), **attribute_kwargs)
        sums = _add_per_class(sums, fill, labels, n_classes)
        counts += torch.bincount(labels.cpu(), minlength=n_classes)
    if sums is None:
        raise ValueError("batches gave no images; class_prototypes needs at least one batch (on every rank)")
    sums, counts = all_reduce_sum(sums), all_reduce_sum(counts)
    return sums / counts.clamp(min=1).reshape(-1, *([1] * (sums.dim() - 1))), counts


def _add_per_class(sums: Tensor | None, fill: Tensor, labels: Tensor, n_classes: int) -> Tensor:
    fill = fill.detach().cpu().double()
    if sums is None:
        sums = torch.zeros(n_classes, *fill.shape[1:], dtype=torch.float64)
    return sums.index_add_(0, labels.cpu(), fill)


def _default_candidates() -> tuple[TransformSetting, ...]:
    taus = (0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
    return tuple(
        setting
        for normalization in NORMALIZATIONS
        for setting in (
            *(TransformSetting(normalization, tau) for tau in taus),
            TransformSetting(normalization, binarized=False),
        )
    )


#: The settings of ``T`` that :func:`reproduce` tries on validation, in the order that
#: breaks ties: per normalization (``"max_abs"`` first), ``tau`` from 0.05 to 0.9, then
#: not binarized.
CANDIDATE_SETTINGS = _default_candidates()


def choose_settings(
    model: Callable,
    images: Tensor,
    candidates: Sequence[TransformSetting],
    *,
    n_classes: int,
    fill: Tensor,
    control_fill: Tensor | None = None,
    seed: int = 0,
    criterion: str = "macro_f1",
    **consistency_kwargs,
) -> tuple[dict[str, TransformSetting], dict[str, dict[TransformSetting, float]]]:
    """One setting of ``T`` (normalization, ``tau``, binarized or not) per row of the
    consistency table, each the candidate under which the model recognises that row's
    rebuilt images best, chosen on validation images (never on the images scored).

    "Best" is the highest macro-average F1 by default, not accuracy: a setting that
    makes every rebuilt image look like one class (a canvas of ink, or none) can score a
    high accuracy against ``y_k``, the prediction on the last progressive step's masked
    input, because that masked input is then the same degenerate image; macro F1 gives
    such a fill the score of one class in ten. Against the label of ``x`` itself the two
    criteria nearly agree.

    Every candidate is scored with :func:`~captum_fillblanks.attr.metrics.consistency_counts`
    on the same ``fill`` (and ``control_fill``), so only the progressive rows are
    recomputed per candidate. Ties go to the candidate that comes first in
    ``candidates``. The random-model control gets its own best setting too: a control
    that is as good as it can be is the honest comparison.

    Args:
        model (Callable): the classifier.
        images (Tensor): validation images.
        candidates (sequence of TransformSetting): settings to try, e.g.
            :data:`CANDIDATE_SETTINGS`.
        n_classes (int): number of classes.
        fill (Tensor): the images' MaskFill fills (``target=None``).
        control_fill (Tensor, optional): the control model's fills; adds that row.
        seed (int): seed of the masks, as in ``consistency_counts``.
        criterion (str): ``"macro_f1"``, ``"accuracy"`` or ``"weighted_f1"``.
            Default: "macro_f1".
        **consistency_kwargs: more arguments of ``consistency_counts`` (``n_steps``,
            ``patch_size``, ``input_range``, ...).

    Returns:
        (dict, dict): the chosen setting per transformed row, and the criterion in
        percent per row and candidate.
    """
    candidates = list(candidates)
    if not candidates:
        raise ValueError("candidates must hold at least one TransformSetting")
    if criterion not in CRITERIA:
        raise ValueError(f"criterion must be one of {CRITERIA}, got {criterion!r}")
    value: dict[str, dict[TransformSetting, float]] = {}
    for setting in candidates:
        counts = consistency_counts(
            model,
            images,
            n_classes=n_classes,
            transform=setting,
            fill=fill,
            control_fill=control_fill,
            seed=seed,
            **consistency_kwargs,
        )
        for row, scores in counts.scores().items():
            if row in TRANSFORMED_ROWS:
                value.setdefault(row, {})[setting] = scores[criterion]
    return best_settings(value, candidates), value


def best_settings(
    scores: dict[str, dict[TransformSetting, float]], candidates: Sequence[TransformSetting]
) -> dict[str, TransformSetting]:
    """Per row, the candidate of ``candidates`` with the highest score; ties go to the
    one that comes first. ``candidates`` may be a subset of those scored (e.g. one
    normalization only)."""
    order = {setting: i for i, setting in enumerate(candidates)}
    return {
        row: max((s for s in per_setting if s in order), key=lambda s: (per_setting[s], -order[s]))
        for row, per_setting in scores.items()
    }


def _class_balanced(indices: Tensor, labels: Tensor, n: int) -> Tensor:
    """The first ``n`` of ``indices`` taken in turn from each class (in file order within
    a class), so that a prefix of the validation split is not dominated by the classes
    whose held-out images come first in the file."""
    classes = labels[indices]
    rank = torch.zeros_like(indices)
    for c in classes.unique():
        where = (classes == c).nonzero().flatten()
        rank[where] = torch.arange(len(where))
    order = torch.argsort(rank * (int(classes.max()) + 1) + classes, stable=True)
    return indices[order[:n]]


def _progress(iterable, desc, show):
    return progress(iterable, desc=desc, disable=not show)


@dataclass(frozen=True)
class _FillJob:
    """One file of fills: ``images`` with masks from ``seed``, ``n_samples`` kept each."""

    name: str
    images: Tensor
    n_samples: int
    seed: int


class _FillCache:
    """The trained and the control model's fills of some images, saved one file per
    job under ``folder``. They do not depend on the setting of ``T``, so a rerun only
    rescores them; a file is written under a temporary name and renamed, so a file that
    exists is complete, whichever rank wrote it and however the run was stopped.

    A file's name holds the images, masks and seed it was computed for; ``key`` holds
    everything else that decides it (data set, model and weights, mask settings, the
    control model's seed and masks), written to ``folder/manifest.json`` on first use. A
    folder whose manifest differs holds another run's fills and is refused. Only the
    process that passes ``check_manifest`` reads or writes the manifest (rank 0: the
    others wait for its verdict)."""

    def __init__(
        self,
        folder: Path,
        model: Callable,
        control: Callable,
        control_samples: int,
        key: dict,
        check_manifest: bool = True,
    ):
        self.folder, self.model, self.control, self.control_samples = folder, model, control, control_samples
        if not check_manifest:
            return
        folder.mkdir(parents=True, exist_ok=True)
        manifest = folder / "manifest.json"
        if manifest.exists():
            try:
                found = json.loads(manifest.read_text())
            except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
                found = error
            if not isinstance(found, dict):
                raise ValueError(
                    f"{manifest} is not a fill folder's manifest (a JSON object was expected, got "
                    f"{found!r:.80}); give another --out, or delete that folder to recompute"
                )
            if found != key:
                changed = sorted(k for k in set(found) | set(key) if found.get(k) != key.get(k))
                raise ValueError(
                    f"{folder} holds the fills of another run (they differ in {', '.join(changed)}: "
                    f"{ {k: found.get(k) for k in changed} } there, { {k: key.get(k) for k in changed} } now); "
                    "give another --out, or delete that folder to recompute"
                )
        else:
            text = json.dumps(key, indent=1, sort_keys=True) + "\n"
            write_atomically(manifest, lambda handle: handle.write(text.encode()))

    def has(self, name: str) -> bool:
        return (self.folder / name).exists()

    def load(self, name: str) -> dict[str, Tensor]:
        path = self.folder / name
        try:
            return load_tensors_file(path)
        except Exception as error:  # a truncated or foreign file: torch says only what broke
            raise ValueError(
                f"{path} is not a complete fill file ({type(error).__name__}: {error}); delete it and "
                "rerun the same command: it will be recomputed"
            ) from error

    def compute(self, job: _FillJob, show_progress: bool = False) -> None:
        """Fill ``job``'s images and save them under ``job.name``."""
        images = job.images
        with torch.no_grad():
            predicted = self.model(images).argmax(1)
        fill_method = MaskFill(self.model)
        fill = fill_method.attribute(
            images,
            n_samples=job.n_samples,
            max_draws=_MAX_DRAWS_PER_SAMPLE * job.n_samples,
            seed=job.seed,
            show_progress=show_progress,
            **_MASKS,
        )
        saved = {
            "fill": fill.cpu(),
            # an image the model seldom gives its own label under a mask keeps fewer than
            # n_samples draws within max_draws; the report says how many did
            "n_kept": fill_method.counts.n_kept.cpu(),
            "control_fill": MaskFill(self.control)
            .attribute(
                images,
                target=predicted,
                selection="all",
                n_samples=min(job.n_samples, self.control_samples),
                seed=job.seed,
                **_MASKS,
            )
            .cpu(),
            "predicted": predicted.cpu(),
        }
        save_tensors_file(saved, self.folder / job.name)


@dataclass
class _Choice:
    """The validation stage: the setting of ``T`` per row, over all candidates
    (``chosen``) and over the min-max ones only (``earlier``: SPEC's earlier reading)."""

    chosen: dict[str, TransformSetting]
    earlier: dict[str, TransformSetting] | None
    scores: dict[str, dict[TransformSetting, float]]  # macro F1 per row and candidate
    n_images: int
    n_samples: int
    n_kept: Tensor | None  # kept draws per validation image; None: not saved with the fills


@dataclass
class _Table:
    """The test stage: Table 1 under each choice, the mean fill per predicted class, and
    the draws each test image's fill kept."""

    chosen: ConsistencyCounts
    earlier: ConsistencyCounts | None
    class_means: Tensor
    class_counts: Tensor
    n_kept: list[Tensor | None]  # kept draws per image, per shard; None: not saved with its fills


def _shards_folder(out: Path, dataset: str, arch: str, weights) -> Path:
    """Where :func:`reproduce` keeps the fills of ``weights`` under ``out``: the model's
    own weights keep the folder name they always had (``DATASET_ARCH``), others add
    their name (``DATASET_ARCH_NAME``)."""
    if weights is MODELS[dataset, arch][1]:
        return out / "shards" / f"{dataset}_{arch}"
    return out / "shards" / f"{dataset}_{arch}_{weights.name}"


def _validation_job(dataset, data_dir, n_validation, n_samples, seed, device) -> _FillJob:
    train_images, train_labels = load_tensors(dataset, data_dir, train=True)
    validation = _class_balanced(split_training_set(dataset, train_labels).validation, train_labels, n_validation)
    val_seed = seed + 10**6
    name = f"validation_{len(validation)}_{n_samples}_{val_seed}.pt"
    return _FillJob(name, train_images[validation].to(device), n_samples, val_seed)


def _shard_jobs(images: Tensor, n_samples: int, shard_size: int, seed: int) -> list[_FillJob]:
    """The test images in shards of ``shard_size``, each with its own seed: fixed by
    the arguments, not by the number of processes."""
    return [
        _FillJob(
            f"shard_{start:06d}-{min(start + shard_size, len(images)):06d}_{n_samples}_{seed}.pt",
            images[start : start + shard_size],
            n_samples,
            seed + start,
        )
        for start in range(0, len(images), shard_size)
    ]


def _choose_on_validation(model, cache, job, candidates, n_classes, ranks, echo, verbose) -> _Choice:
    """Every candidate scored on the validation fills (each rank scores its share of
    the candidates; a candidate's scores do not depend on the others), then the best
    per row."""
    val = cache.load(job.name)
    device = job.images.device
    scores: dict[str, dict[TransformSetting, float]] = {}
    mine = ranks.share(candidates)
    if mine:
        _, scores = choose_settings(
            model,
            job.images,
            mine,
            n_classes=n_classes,
            fill=val["fill"].to(device),
            control_fill=val["control_fill"].to(device),
            seed=job.seed,
            n_steps=_N_STEPS,
            **_MASKS,
        )
    merged: dict[str, dict[TransformSetting, float]] = {}
    for part in ranks.gather(scores):
        for row, per_setting in part.items():
            merged.setdefault(row, {}).update(per_setting)
    merged = {row: {s: merged[row][s] for s in candidates} for row in merged}  # candidates' order
    chosen = best_settings(merged, candidates)
    min_max = [c for c in candidates if c.normalization == "min_max"]
    earlier = best_settings(merged, min_max) if min_max else None
    if verbose:
        echo(
            "T per row (macro F1 on validation): "
            + ", ".join(f"{row}: {setting} ({merged[row][setting]:.1f}%)" for row, setting in chosen.items())
        )
    return _Choice(chosen, earlier, merged, len(job.images), job.n_samples, val.get("n_kept"))


def _score_shard(model, saved, job, choice, n_classes) -> dict[str, ConsistencyCounts]:
    device = job.images.device
    return {
        name: consistency_counts(
            model,
            job.images,
            n_classes=n_classes,
            transform=settings,
            seed=job.seed,
            fill=saved["fill"].to(device),
            control_fill=saved["control_fill"].to(device),
            n_steps=_N_STEPS,
            **_MASKS,
        )
        for name, settings in (("chosen", choice.chosen), ("earlier", choice.earlier))
        if settings is not None
    }


def _score_test_images(model, cache, jobs, choice, n_classes, ranks, show_progress) -> _Table | None:
    """Each rank scores its share of the shards and sums their fills per predicted
    class, reading each shard file once; rank 0 adds the shards' results in shard
    order (the same sums whatever the number of ranks). Returns the table on rank 0,
    ``None`` on the others."""
    scored = []
    for i, job in _progress(ranks.share(list(enumerate(jobs))), "scoring shards", show_progress):
        saved = cache.load(job.name)
        counts = _score_shard(model, saved, job, choice, n_classes)
        class_sums = _add_per_class(None, saved["fill"], saved["predicted"], n_classes)
        per_class = torch.bincount(saved["predicted"], minlength=n_classes)
        scored.append((i, counts, class_sums, per_class, saved.get("n_kept")))
    everything = sorted((item for part in ranks.gather(scored) for item in part), key=lambda item: item[0])
    if not ranks.is_main:
        return None
    _, per_shard, per_shard_sums, per_shard_counts, n_kept = zip(*everything)
    class_sums, class_counts = torch.stack(per_shard_sums).sum(0), torch.stack(per_shard_counts).sum(0)
    class_means = (class_sums / class_counts.clamp(min=1).reshape(-1, 1, 1, 1)).float()
    earlier = ConsistencyCounts.combine(c["earlier"] for c in per_shard) if choice.earlier is not None else None
    chosen = ConsistencyCounts.combine(c["chosen"] for c in per_shard)
    return _Table(chosen, earlier, class_means, class_counts, list(n_kept))


def _same_run_everywhere(out: Path, arguments: dict, ranks: Ranks) -> None:
    """Refuse a run whose ranks were given different arguments, or whose ``--out`` is
    not one folder that all of them see (each rank writes its shards there and rank 0
    reads them all back)."""
    reference = ranks.broadcast(arguments)

    def same_arguments() -> None:
        differ = sorted(k for k in reference if reference[k] != arguments.get(k))
        if differ:
            raise ValueError(
                f"the ranks were started with different arguments ({', '.join(differ)}: "
                f"{ {k: reference[k] for k in differ} } on rank 0, { {k: arguments.get(k) for k in differ} } "
                "here); give every process the same command"
            )

    ranks.check(same_arguments)
    token = ranks.broadcast(uuid.uuid4().hex)
    marker = out / ".rank0"
    if ranks.is_main:
        write_atomically(marker, lambda handle: handle.write(token.encode()))
    ranks.barrier()

    def same_folder() -> None:
        if not marker.exists() or marker.read_text() != token:
            raise ValueError(
                f"--out {out} is not the folder rank 0 writes to; on several machines --out must be "
                "a folder on a file system that every machine mounts"
            )

    ranks.check(same_folder)


def reproduce(
    dataset: str,
    data_dir: str,
    out: Path,
    *,
    arch: str | None = None,
    weights: str | None = None,
    n_images: int = 500,
    n_samples: int = 10_000,
    device: str | None = None,
    shard_size: int = 50,
    n_validation: int = 200,
    candidates: Sequence[TransformSetting] = CANDIDATE_SETTINGS,
    figure_samples: int = 2000,
    seed: int = 0,
    command: str = "",
    show_progress: bool = True,
    echo: Callable[[str], None] = print,
) -> Path:
    """Run the experiments and write ``out/report.md`` with its figures. Returns its path.

    ``arch`` picks one of the shipped models (:data:`MODELS`): ``"simple-cnn"`` (MNIST's
    default) or ``"resnet5"`` (the paper's Table 1 model on MNIST; Fashion-MNIST's only
    one). ``weights`` names another shipped member of that model's weights enum trained
    on ``dataset`` (:func:`~captum_fillblanks.paper.models.shipped_weights`), such as
    ``"MNIST_5K_FLATTEN"`` for ResNet5 on MNIST. ``candidates`` are the settings of ``T``
    to try; each row of Table 1 uses the one :func:`choose_settings` picks for it on
    ``n_validation`` held-out training images, the same number per class. The report
    also scores Table 1 with the best min-max settings (SPEC's earlier reading) when
    ``candidates`` holds any.

    ``out`` also gets ``results.pt``: Table 1's confusion matrices per row (``"chosen"``
    and ``"earlier"``), the settings, the mean fill and image count per predicted class
    (``"class_means"``, ``"class_counts"``), and the draws each image kept: per test shard
    (``"n_kept"``) and for the validation images (``"validation_n_kept"``), ``None`` for
    fills an earlier version saved without them. MaskFill keeps a draw only if the model
    still gives the masked image its own label, and stops after ``10 * n_samples`` draws
    (its ``max_draws``), so an image the model seldom recognises under a mask keeps
    fewer than ``n_samples``; the report says how many did.

    Under ``torchrun`` (:mod:`captum_fillblanks.paper.distributed`) every process runs
    this function: each fills and scores its share of the shards on its own device
    (``device=None``: ``cuda:LOCAL_RANK`` where CUDA is present, else the CPU; ``"cuda"``
    means the same), the shards meet in ``out`` (one folder every process sees) and rank
    0 alone chooses nothing new: it adds the counts, draws the figures and writes the
    report. Shards and seeds are fixed by the arguments, so the report is the same for
    any number of processes. A rerun of the same command recomputes only the shards not
    on disk, with any number of processes.
    """
    sizes = dict(
        n_images=n_images, n_samples=n_samples, shard_size=shard_size, n_validation=n_validation,
        figure_samples=figure_samples,
    )  # fmt: skip
    for name, value in sizes.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be an int >= 1, got {value!r}")
    joined_here = not (torch.distributed.is_available() and torch.distributed.is_initialized())
    ranks, resolved = launch(device)
    try:
        return _reproduce(
            dataset, data_dir, Path(out), ranks, resolved, arch, weights, n_images, n_samples, shard_size, n_validation,
            list(candidates), figure_samples, seed, command, show_progress, echo,
        )  # fmt: skip
    finally:
        if joined_here:
            finish()


def _reproduce(
    dataset, data_dir, out, ranks, device, arch, weights, n_images, n_samples, shard_size, n_validation, candidates,
    figure_samples, seed, command, show_progress, echo,
) -> Path:  # fmt: skip
    import matplotlib

    matplotlib.use("Agg")

    start_time = time.perf_counter()
    show_progress = show_progress and ranks.is_main
    say = echo if ranks.world_size == 1 else (lambda text: echo(f"[rank {ranks.rank}/{ranks.world_size}] {text}"))
    if not candidates:
        raise ValueError("candidates must hold at least one TransformSetting")
    arch = arch or DEFAULT_ARCH.get(dataset)
    weights = shipped_weights(dataset, arch, weights)
    builder, _, model_name = MODELS[dataset, arch]
    model_name = f"{model_name} ({type(weights).__name__}.{weights.name})"
    model = builder(weights=weights).to(device)
    torch.manual_seed(seed)
    control = builder(**weights.builder_kwargs).eval().to(device)

    test_images, test_labels = load_tensors(dataset, data_dir, train=False)
    keep = torch.ones(len(test_images), dtype=torch.bool)
    if dataset == "fashion-mnist":  # the bundled samples come from this split
        keep[sample_indices(dataset)] = False
    test_index = keep.nonzero().squeeze(1)[:n_images]
    images, labels = test_images[test_index].to(device), test_labels[test_index]
    n_classes = int(test_labels.max()) + 1
    # only now that the data loaded: a failed start leaves no empty folder behind
    out.mkdir(parents=True, exist_ok=True)
    report_path = out / "report.md"
    if ranks.is_main and report_path.exists():
        report_path.unlink()  # a stale report must not pass for this run's
    if ranks.world_size > 1:
        arguments = {
            "dataset": dataset, "arch": arch, "weights": weights.name, "n_images": len(images), "n_samples": n_samples,
            "shard_size": shard_size, "n_validation": n_validation, "figure_samples": figure_samples,
            "seed": seed, "candidates": [str(c) for c in candidates], "device type": device.type,
        }  # fmt: skip
        _same_run_everywhere(out, arguments, ranks)

    control_samples = min(n_samples, 1000)
    key = {
        "dataset": dataset,
        "arch": arch,
        "weights": f"{type(weights).__name__}.{weights.name} ({weights.file_name})",
        "mask_ratio": _MASK_RATIO,
        "patch_size": _PATCH_SIZE,
        "control_seed": seed,
        "control_samples": control_samples,
    }
    folder = _shards_folder(out, dataset, arch, weights)
    cache = ranks.check(lambda: _FillCache(folder, model, control, control_samples, key, ranks.is_main))

    # every fill first: the validation images' and the test shards', shared out among the ranks
    validation = _validation_job(dataset, data_dir, n_validation, min(n_samples, figure_samples), seed, device)
    shards = _shard_jobs(images, n_samples, shard_size, seed)
    jobs = [validation, *shards]
    if ranks.is_main:  # what a killed process was writing; never read back
        for leftover in folder.glob(f"*{PARTIAL_SUFFIX}"):
            leftover.unlink(missing_ok=True)
    on_disk = ranks.broadcast([job.name for job in jobs if cache.has(job.name)])
    missing = [job for job in jobs if job.name not in on_disk]
    if on_disk:
        say(f"{len(on_disk)} of {len(jobs)} fill files are on disk from an earlier run")
    for job in ranks.share(missing):
        started = time.perf_counter()
        cache.compute(job, show_progress=show_progress and job is validation)
        say(f"filled {job.name} ({len(job.images)} images, {time.perf_counter() - started:.0f} s)")
    if ranks.world_size > 1:
        # a rank done early waits on the shared folder, not in a collective that could time out
        while not all(cache.has(job.name) for job in missing):
            time.sleep(2)
        ranks.barrier()

    choice = _choose_on_validation(model, cache, validation, candidates, n_classes, ranks, say, ranks.is_main)
    table = _score_test_images(model, cache, shards, choice, n_classes, ranks, show_progress)
    if not ranks.is_main:
        return report_path
    figures = _figures(out, model, images, labels, table, choice.chosen, n_classes, figure_samples, seed)
    _save_results(out / "results.pt", table, choice)

    elapsed = time.perf_counter() - start_time
    run = _Run(dataset, model_name, command, n_samples, str(device), elapsed, on_disk, len(shards), ranks.world_size)
    text = _report(run, table, choice, figures)
    write_atomically(report_path, lambda handle: handle.write(text.encode()))
    echo(f"wrote {report_path} ({elapsed / 60:.1f} min)")
    return report_path


def _save_results(path: Path, table: _Table, choice: _Choice) -> None:
    results = {
        "chosen": table.chosen.confusion,
        "earlier": table.earlier.confusion if table.earlier is not None else None,
        "settings": {row: str(setting) for row, setting in choice.chosen.items()},
        "earlier_settings": {row: str(s) for row, s in choice.earlier.items()} if choice.earlier else None,
        "class_means": table.class_means,
        "class_counts": table.class_counts,
        "n_kept": table.n_kept,  # per shard: kept draws per image (None: not saved with its fills)
        "validation_n_kept": choice.n_kept,
    }
    save_tensors_file(results, path)


def _figures(out, model, images, labels, table, chosen, n_classes, figure_samples, seed) -> dict[str, str]:
    """Figs. 2-6 into ``out``; returns file name -> caption."""
    from matplotlib import pyplot as plt

    from ..attr.visualization import (
        visualize_comparison,
        visualize_parameter_grid,
        visualize_progressive,
        visualize_prototypes,
    )

    figures: dict[str, str] = {}

    def save(figure, name: str, caption: str) -> None:
        write_atomically(out / name, lambda handle: figure.savefig(handle, dpi=90, format="png"))
        plt.close(figure)
        figures[name] = caption

    strict, progressive_setting = chosen["strict"], chosen["progressive"]
    plain = TransformSetting(strict.normalization, binarized=False)
    # Fig. 2: class prototypes (the mean fill of every test image the model gave a class)
    names = [f"class {c} ({int(n)} images)" for c, n in enumerate(table.class_counts)]
    figure, _ = visualize_prototypes(prototype(table.class_means, **strict.kwargs()), names)
    save(
        figure,
        "fig2_class_prototypes.png",
        f"Fig. 2: T(mean fill) of all scored test images the model assigned to each class (T: {strict}).",
    )
    if strict.binarized:  # else the figure above is this one
        figure, _ = visualize_prototypes(prototype(table.class_means, **plain.kwargs()), names)
        save(
            figure,
            "fig2_class_prototypes_not_binarized.png",
            f"Fig. 2, not binarized: the normalized mean fill per class (T: {plain}).",
        )

    first = torch.stack([(labels == c).nonzero()[0, 0] for c in range(n_classes) if (labels == c).any()])
    few = first[:4]
    # Fig. 3: progressive
    progressive = ProgressiveMaskFill(model)
    progressive.attribute(images[few[:1]], n_steps=4, seed=seed, **progressive_setting.kwargs())
    steps = progressive.steps
    figure, _ = visualize_progressive(steps.images, steps.groups, steps.labels, image=images[few[:1]])
    save(
        figure,
        "fig3_progressive.png",
        f"Fig. 3: progressive filling with k = 4 disjoint masks (T: {progressive_setting}); y-hat per step.",
    )

    # Fig. 4: mask ratio x patch size
    ratios, patches = [0.1, 0.25, 0.5, 0.75], [1, 2, 4, 7]
    grid = [
        [
            prototype(
                MaskFill(model).attribute(
                    images[few[:1]],
                    n_samples=figure_samples,
                    mask_ratio=r,
                    patch_size=p,
                    seed=seed,
                    max_draws=20 * figure_samples,
                ),
                **plain.kwargs(),
            )[0]
            for p in patches
        ]
        for r in ratios
    ]
    figure, _ = visualize_parameter_grid(grid, ratios, patches)
    save(figure, "fig4_ratio_patch_grid.png", f"Fig. 4: T(fill) over mask ratio x patch size (T: {plain}).")

    # Fig. 5: first vs second order
    kwargs = dict(n_samples=min(figure_samples, 500), seed=seed)
    first_order = MaskFill(model).attribute(images[few], **kwargs)
    second_order = BFGSMaskFill(model).attribute(images[few], n_iter=5, **kwargs)
    cosine = fill_cosine_similarity(first_order, second_order)
    columns = {
        "x": images[few],
        "T(fill), first order": prototype(first_order, **strict.kwargs()),
        "T(fill), BFGS": prototype(second_order, **strict.kwargs()),
    }
    if strict.binarized:  # else these are the two columns above
        columns["first order, not binarized"] = prototype(first_order, **plain.kwargs())
        columns["BFGS, not binarized"] = prototype(second_order, **plain.kwargs())
    figure, _ = visualize_comparison(columns)
    save(
        figure,
        "fig5_first_vs_second_order.png",
        f"Fig. 5: first- vs second-order (BFGS, 5 iterations) fills (T: {strict}); cosine similarity per "
        "image: " + ", ".join(f"{c:.3f}" for c in cosine.tolist()) + ".",
    )

    # Fig. 6: binarized vs not, each with the normalization its row chose
    random_fills = MaskFill(model).attribute(images[few[:3]], n_samples=figure_samples, seed=seed)
    binarized_strict = TransformSetting(strict.normalization, strict.threshold)
    binarized_progressive = TransformSetting(progressive_setting.normalization, progressive_setting.threshold)
    progressive_plain = TransformSetting(progressive_setting.normalization, binarized=False)
    figure, _ = visualize_comparison(
        {
            "random, binarized": prototype(random_fills, **binarized_strict.kwargs()),
            "random, not binarized": prototype(random_fills, **plain.kwargs()),
            "progressive, binarized": progressive.attribute(
                images[few[:3]], seed=seed, **binarized_progressive.kwargs()
            ),
            "progressive, not binarized": progressive.attribute(
                images[few[:3]], seed=seed, **progressive_plain.kwargs()
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


def _table_lines(counts: ConsistencyCounts, settings: dict[str, TransformSetting], setting_header: str) -> list[str]:
    scores = counts.scores()
    lines = [
        f"| rebuilt image | {setting_header} | accuracy | macro avg. F1 | weighted avg. F1 |",
        "|---|---|---|---|---|",
    ]
    for row, description in ROWS.items():
        if row in scores:
            s = scores[row]
            setting = str(settings[row]) if row in settings else "—"
            lines.append(
                f"| **{row}**: {description} | {setting} | {s['accuracy']:.1f} | "
                f"{s['macro_f1']:.1f} | {s['weighted_f1']:.1f} |"
            )
    return lines


@dataclass
class _Run:
    """What the report says about the run itself."""

    dataset: str
    model_name: str
    command: str
    n_samples: int
    device: str
    elapsed: float  # seconds
    loaded: list[str]  # fill files an earlier run had written
    n_shards: int
    world_size: int = 1  # processes (torchrun)


def _kept_summary(n_kept: Sequence[Tensor | None], n_samples: int) -> str:
    """How many draws the fills kept, in words. MaskFill keeps a draw only if the model
    still gives the masked image its own label, and :func:`reproduce` stops it after
    ``_MAX_DRAWS_PER_SAMPLE * n_samples`` draws, so an image the model seldom
    recognises under a mask keeps fewer than ``n_samples``. ``n_kept`` holds one tensor
    per fill file, ``None`` for a file an earlier version wrote without the counts."""
    recorded = [kept for kept in n_kept if kept is not None]
    if not recorded:
        return "counts not saved: these fills are an earlier version's"
    kept = torch.cat(recorded)
    images = f"{len(kept)} images" + ("" if len(recorded) == len(n_kept) else " whose counts were saved")
    short = int((kept < n_samples).sum())
    if short:
        draws, fewest = _MAX_DRAWS_PER_SAMPLE * n_samples, int(kept.min())
        text = f"{short} of the {images} kept fewer than {n_samples:,} within {draws:,} draws, fewest {fewest:,}"
    else:
        text = f"all {images} kept {n_samples:,}"
    if len(recorded) < len(n_kept):
        old = len(n_kept) - len(recorded)
        text += f"; {old} of {len(n_kept)} fill files are an earlier version's, which did not save them"
    return text


def _report(run: _Run, table: _Table, choice: _Choice, figures: dict[str, str]) -> str:
    dataset, command, n_samples, elapsed, loaded = run.dataset, run.command, run.n_samples, run.elapsed, run.loaded
    if loaded:
        n_loaded = sum(name.startswith("shard_") for name in loaded)
        validation_loaded = " and the validation fills" if len(loaded) > n_loaded else ""
        run_time = (
            f"run time {elapsed / 60:.1f} min for this invocation, which loaded {n_loaded} of "
            f"{run.n_shards} shards{validation_loaded} from an earlier run (not counted)"
        )
    else:
        run_time = f"run time {elapsed / 60:.1f} min"
    lines = [
        f"# Fill in the blanks: reproduction on {dataset}",
        "",
        f"- command: `{command}`" if command else "- command: (called from Python)",
        f"- model: {run.model_name} with the shipped weights; {table.chosen.n_images} test images "
        f"(t10k; for Fashion-MNIST the bundled samples are left out); {n_samples:,} kept masks "
        f"asked per image ({_kept_summary(table.n_kept, n_samples)}), mask ratio {_MASK_RATIO}, "
        f"patch size {_PATCH_SIZE}; progressive: k = {_N_STEPS} steps",
        f"- machine: {platform.machine()}, {platform.processor() or 'unknown CPU'}, device `{run.device}`, "
        f"torch {torch.__version__}; "
        + (f"{run.world_size} processes (torchrun), " if run.world_size > 1 else "")
        + run_time,
        "",
        "## Table 1: can the model recognise its own fills?",
        "",
        "Each test image is rebuilt as below and classified by the same model, and scored "
        "against the label the row names: `y_0`, the model's label for the original image, or "
        "`y_k`, its label for the last progressive step's masked input. Each row uses the "
        "setting of T chosen for it on validation.",
        "",
        *_table_lines(table.chosen, choice.chosen, "T (chosen on validation)"),
        "",
        f"The paper (MNIST, ResNet5): random {PAPER_TABLE_1['random'][0]}, progressive "
        f"{PAPER_TABLE_1['progressive'][0]} (accuracy = macro F1 = weighted F1).",
        "",
    ]
    if table.earlier is not None:
        lines += [
            "## The same images with min–max normalization only (SPEC's earlier reading)",
            "",
            "Each row with the best min–max setting on validation. The earlier reports scored "
            "progressive against `y_0` only (the row *progressive, recovery*).",
            "",
            *_table_lines(table.earlier, choice.earlier, "T (min–max, chosen on validation)"),
            "",
        ]
    rows = list(choice.scores)
    lines += [
        f"## The settings of T, chosen on {choice.n_images} validation images",
        "",
        "Macro-average F1 (%) of each transformed row on the validation images (held out of the "
        f"training file, the same number per class, {choice.n_samples:,} kept masks asked each; "
        f"{_kept_summary([choice.n_kept], choice.n_samples)}) per "
        "candidate setting; each row of Table 1 uses its best, in bold (ties: the first "
        "candidate). Macro F1, not accuracy: against `y_k` a degenerate fill that turns "
        "every image into one class scores a high accuracy, but the F1 of one class in ten. "
        "The test images were not looked at.",
        "",
        "| T | " + " | ".join(rows) + " |",
        "|---|" + "---|" * len(rows),
    ]
    for setting in next(iter(choice.scores.values())):
        cells = [
            f"**{choice.scores[row][setting]:.1f}**"
            if choice.chosen[row] == setting
            else f"{choice.scores[row][setting]:.1f}"
            for row in rows
        ]
        lines.append(f"| {setting} | " + " | ".join(cells) + " |")
    lines += ["", "## Figures", ""]
    for name, caption in figures.items():
        lines += [f"![{caption}]({name})", "", caption, ""]
    return "\n".join(lines)
