"""The stages of a run: plan the fill jobs, choose ``T`` on the validation fills, score
the test shards, and check that every torchrun rank runs the same thing in one folder.

Each stage shares its work out among the ranks (:class:`~..distributed.Ranks`) and
returns the same result for any number of them.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from ...attr._captum_compat import progress
from ...attr.metrics import ConsistencyCounts, rebuild_rows, score_rows
from ...attr.transforms import TransformSetting
from ..data import load_tensors, split_training_set
from ..distributed import Ranks
from ..files import write_atomically
from ..scoring import image_columns, per_image_blanks
from .cache import FillCache, FillJob
from .config import RunConfig
from .prototypes import add_per_class
from .settings import best_settings, choose_settings

__all__ = [
    "Choice",
    "Table",
    "class_balanced",
    "validation_images",
    "validation_job",
    "shard_jobs",
    "choose_on_validation",
    "score_test_images",
    "same_run_everywhere",
]


@dataclass
class Choice:
    """The validation stage: the setting of ``T`` per row over all candidates
    (``chosen``) and over the min-max ones only (``min_max_only``; ``None`` when no
    candidate is min-max)."""

    chosen: dict[str, TransformSetting]
    min_max_only: dict[str, TransformSetting] | None
    scores: dict[str, dict[TransformSetting, float]]  # macro F1 per row and candidate
    n_images: int
    n_samples: int
    n_kept: Tensor | None  # kept draws per validation image; None: not saved with the fills


@dataclass
class Table:
    """The test stage: Table 1 under each choice, the mean fill per predicted class, and
    the draws each test image's fill kept."""

    chosen: ConsistencyCounts
    min_max_only: ConsistencyCounts | None
    class_means: Tensor
    class_counts: Tensor
    n_kept: list[Tensor | None]  # kept draws per image, per shard; None: not saved with its fills
    per_image: dict[str, Tensor] | None = None  # image_columns over every test image, in order


def class_balanced(indices: Tensor, labels: Tensor, n: int) -> Tensor:
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


def validation_images(dataset: str, data_dir: str | Path, n: int = 200) -> tuple[Tensor, Tensor]:
    """The reproduction's validation images and their labels: the first ``n`` of the
    training file's held-out split (:func:`~..data.split_training_set`), taken in turn
    from each class (:func:`class_balanced`), so that 200 are 20 per class and a prefix
    of 10 is one of each class, in class order. Held out of every shipped model's
    training: the images a display, a recipe or an epsilon is chosen on. ``data_dir`` is
    the folder of the data set's IDX files."""
    images, labels = load_tensors(dataset, data_dir, train=True)
    chosen = class_balanced(split_training_set(dataset, labels).validation, labels, n)
    return images[chosen], labels[chosen]


def validation_job(config: RunConfig, data_dir: str, device: torch.device) -> FillJob:
    """The validation images (:func:`validation_images`), with
    ``min(n_samples, figure_samples)`` kept masks each."""
    images, _ = validation_images(config.dataset, data_dir, config.n_validation)
    n_samples, seed = min(config.n_samples, config.figure_samples), config.validation_seed
    name = f"validation_{len(images)}_{n_samples}_{seed}{config.fill_suffix}.pt"
    return FillJob(name, images.to(device), n_samples, seed, config.tolerance)


def shard_jobs(images: Tensor, config: RunConfig) -> list[FillJob]:
    """The test images in shards of ``shard_size``, each with its own seed: fixed by
    the arguments, not by the number of processes."""
    n_samples, size, seed = config.n_samples, config.shard_size, config.seed
    return [
        FillJob(
            f"shard_{start:06d}-{min(start + size, len(images)):06d}_{n_samples}_{seed}{config.fill_suffix}.pt",
            images[start : start + size],
            n_samples,
            seed + start,
            config.tolerance,
            first=start,
        )
        for start in range(0, len(images), size)
    ]


def choose_on_validation(
    model: Callable,
    cache: FillCache,
    job: FillJob,
    n_classes: int,
    ranks: Ranks,
    echo: Callable[[str], None],
) -> Choice:
    """Every candidate scored on the validation fills (each rank scores its share of
    the candidates; a candidate's scores do not depend on the others), then the best
    per row, over all candidates and over the min-max ones only."""
    config, saved, device = cache.config, cache.load(job), job.images.device
    candidates = list(config.candidates)
    scores: dict[str, dict[TransformSetting, float]] = {}
    mine = ranks.share(candidates)
    if mine:
        _, scores = choose_settings(
            model,
            job.images,
            mine,
            n_classes=n_classes,
            fill=saved["fill"].to(device),
            control_fill=saved["control_fill"].to(device),
            seed=job.seed,
            n_steps=config.n_steps,
            **config.masks,
        )
    merged: dict[str, dict[TransformSetting, float]] = {}
    for part in ranks.gather(scores):
        for row, per_setting in part.items():
            merged.setdefault(row, {}).update(per_setting)
    merged = {row: {s: merged[row][s] for s in candidates} for row in merged}  # candidates' order
    chosen = best_settings(merged, candidates)
    min_max = [c for c in candidates if c.normalization == "min_max"]
    if ranks.is_main:
        echo(
            "T per row (macro F1 on validation): "
            + ", ".join(f"{row}: {setting} ({merged[row][setting]:.1f}%)" for row, setting in chosen.items())
        )
    min_max_only = best_settings(merged, min_max) if min_max else None
    return Choice(chosen, min_max_only, merged, len(job.images), job.n_samples, saved.get("n_kept"))


def _score_shard(model, judge, saved, job: FillJob, choice: Choice, config: RunConfig, n_classes: int):
    """The shard's Table 1 under each choice of ``T`` and, under the chosen one, its
    per-image columns; every image is scored under its own mask (:func:`per_image_blanks`)."""
    device = job.images.device
    blank = per_image_blanks(job.images.cpu(), config, first=job.first).to(device)
    counts, columns = {}, None
    for name, settings in (("chosen", choice.chosen), ("min_max_only", choice.min_max_only)):
        if settings is None:
            continue
        rebuilt = rebuild_rows(
            model,
            job.images,
            n_classes=n_classes,
            transform=settings,
            seed=job.seed,
            fill=saved["fill"].to(device),
            control_fill=saved["control_fill"].to(device),
            n_steps=config.n_steps,
            blank=blank,
            **config.masks,
        )
        counts[name] = score_rows(model, rebuilt, n_classes)
        if name == "chosen" and judge is not None:
            columns = image_columns(model, judge, job.images, saved["fill"], saved["predicted"], rebuilt)
    return counts, columns


def score_test_images(
    model: Callable,
    cache: FillCache,
    jobs: Sequence[FillJob],
    choice: Choice,
    n_classes: int,
    ranks: Ranks,
    show_progress: bool,
    judge: Callable | None = None,
) -> Table | None:
    """Each rank scores its share of the shards and sums their fills per predicted
    class, reading each shard file once; rank 0 adds the shards' results in shard
    order (the same sums whatever the number of ranks). With ``judge`` (the data set's
    readability judge, on the CPU) the table also holds every test image's
    :func:`image_columns`, in order. Returns the table on rank 0, ``None`` on the
    others."""
    scored = []
    mine = ranks.share(list(enumerate(jobs)))
    for i, job in progress(mine, desc="scoring shards", disable=not show_progress):
        saved = cache.load(job)
        counts, columns = _score_shard(model, judge, saved, job, choice, cache.config, n_classes)
        class_sums = add_per_class(None, saved["fill"], saved["predicted"], n_classes)
        per_class = torch.bincount(saved["predicted"], minlength=n_classes)
        scored.append((i, counts, class_sums, per_class, saved.get("n_kept"), columns))
    everything = sorted((item for part in ranks.gather(scored) for item in part), key=lambda item: item[0])
    if not ranks.is_main:
        return None
    _, per_shard, per_shard_sums, per_shard_counts, n_kept, per_shard_columns = zip(*everything)
    per_image = None
    if judge is not None:
        per_image = {key: torch.cat([c[key] for c in per_shard_columns]) for key in per_shard_columns[0]}
    class_sums, class_counts = torch.stack(per_shard_sums).sum(0), torch.stack(per_shard_counts).sum(0)
    class_means = (class_sums / class_counts.clamp(min=1).reshape(-1, 1, 1, 1)).float()
    min_max_only = None
    if choice.min_max_only is not None:
        min_max_only = ConsistencyCounts.combine(c["min_max_only"] for c in per_shard)
    chosen = ConsistencyCounts.combine(c["chosen"] for c in per_shard)
    return Table(chosen, min_max_only, class_means, class_counts, list(n_kept), per_image)


def same_run_everywhere(out: Path, arguments: dict, ranks: Ranks) -> None:
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
    marker = Path(out) / ".rank0"
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
