"""The whole run: fill every job (shared out among torchrun ranks), choose ``T`` on
validation, score the test shards, draw the figures and write the report."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from ...attr.transforms import TransformSetting
from ..data import load_tensors, sample_indices
from ..datasets import IMAGE_REPRODUCTION
from ..distributed import Ranks, finish, launch
from ..files import PARTIAL_SUFFIX, save_tensors_file, write_atomically
from ..models import JUDGE_ARCH, shipped_model
from .cache import FillCache, FillJob
from .config import RunConfig
from .figures import draw_figures
from .report import RunRecord, write_report
from .settings import CANDIDATE_SETTINGS
from .stages import (
    Choice,
    Table,
    choose_on_validation,
    same_run_everywhere,
    score_test_images,
    shard_jobs,
    validation_job,
)

__all__ = ["reproduce", "load_test_images", "RunFills", "run_fills"]


def reproduce(
    dataset: str,
    data_dir: str,
    out: Path,
    *,
    arch: str | None = None,
    weights: str | None = None,
    n_images: int = IMAGE_REPRODUCTION.n_items,
    n_samples: int = IMAGE_REPRODUCTION.n_samples,
    device: str | None = None,
    shard_size: int = 50,
    n_validation: int = 200,
    candidates: Sequence[TransformSetting] = CANDIDATE_SETTINGS,
    figure_samples: int = 2000,
    seed: int = 0,
    tolerance: float | None = None,
    command: str = "",
    show_progress: bool = True,
    echo: Callable[[str], None] = print,
) -> Path:
    """Run the experiments and write ``out/report.md`` with its figures. Returns its path.

    ``arch`` picks one of the shipped models (:data:`~captum_fillblanks.paper.models.MODELS`):
    ``"simple-cnn"`` (MNIST's default) or ``"resnet5"`` (the paper's Table 1 model on
    MNIST; Fashion-MNIST's only one). ``weights`` names another shipped member of that
    model's weights enum trained on ``dataset``
    (:func:`~captum_fillblanks.paper.models.shipped_weights`), such as
    ``"MNIST_5K_FLATTEN"`` for ResNet5 on MNIST. ``candidates`` are the settings of ``T``
    to try; each row of Table 1 uses the one
    :func:`~captum_fillblanks.paper.reproduce.choose_settings` picks for it on
    ``n_validation`` held-out training images, the same number per class. When
    ``candidates`` holds min-max settings, the report also scores Table 1 with the best
    of those alone (min-max normalization was the only reading of ``T`` before
    ``max_abs`` was added).

    ``out`` also gets ``results.pt``: Table 1's confusion matrices per row (``"chosen"``
    and ``"min_max_only"``), the settings, the mean fill and image count per predicted
    class (``"class_means"``, ``"class_counts"``), and the draws each image kept: per
    test shard (``"n_kept"``) and for the validation images (``"validation_n_kept"``),
    ``None`` for fills saved before the counts were; and every test image's readability
    columns (``"per_image"``, :func:`~captum_fillblanks.paper.scoring.image_columns`: the model's and the
    judge's reading of each row's rebuilt image, the inpainting AUC and IoU). Every image
    is scored under its own random mask, seeded by its index among the test images (the
    mask study's), so the report's standard errors (a bootstrap over the images) need no
    correction for a mask shared by a shard. MaskFill keeps a draw only if the
    model still gives the masked image its own label, and stops after ``10 * n_samples``
    draws (its ``max_draws``), so an image the model seldom recognises under a mask
    keeps fewer than ``n_samples``; the report says how many did. With ``tolerance``
    each image's fill stops once its relative Monte-Carlo error (MaskFill's
    ``tolerance``) is at most that, ``n_samples`` being the cap; its fill files are named
    for it, so a run with another tolerance computes its own.

    Under ``torchrun`` (:mod:`captum_fillblanks.paper.distributed`) every process runs
    this function: each fills and scores its share of the shards on its own device
    (``device=None``: ``cuda:LOCAL_RANK`` where CUDA is present, else the CPU; ``"cuda"``
    means the same), the shards meet in ``out`` (one folder every process sees) and rank
    0 alone chooses nothing new: it adds the counts, draws the figures and writes the
    report. Shards and seeds are fixed by the arguments, so the report is the same for
    any number of processes. A rerun of the same command recomputes only the shards not
    on disk, with any number of processes.

    The caller's process state is left as it was: torch's global random state (the run
    is under :func:`torch.random.fork_rng`: building a model draws from it, and the
    control model is seeded) and matplotlib's
    backend (the command line chooses Agg; from Python, the caller's backend draws the
    figures, which are saved and closed, never shown).
    """
    config = RunConfig.create(
        dataset,
        arch=arch,
        weights=weights,
        n_images=n_images,
        n_samples=n_samples,
        shard_size=shard_size,
        n_validation=n_validation,
        figure_samples=figure_samples,
        seed=seed,
        candidates=candidates,
        tolerance=tolerance,
    )
    joined_here = not (torch.distributed.is_available() and torch.distributed.is_initialized())
    ranks, resolved = launch(device)
    try:
        with torch.random.fork_rng(devices=[]):  # building a model draws from it
            return _run(config, data_dir, Path(out), ranks, resolved, command, show_progress, echo)
    finally:
        if joined_here:
            finish()


#: The labels of the first ten t10k images of each data set: a folder of the other data
#: set (the two share file names and format) is refused instead of reported under the
#: wrong name.
FIRST_TEST_LABELS = {"mnist": (7, 2, 1, 0, 4, 1, 4, 9, 5, 9), "fashion-mnist": (9, 2, 1, 1, 6, 1, 4, 6, 5, 7)}


def load_test_images(config: RunConfig, data_dir: str):
    """The first ``n_images`` t10k images (for Fashion-MNIST, without the bundled
    samples, which come from this split), their labels and the number of classes."""
    test_images, test_labels = load_tensors(config.dataset, data_dir, train=False)
    first = tuple(test_labels[:10].tolist())
    if first != FIRST_TEST_LABELS[config.dataset]:
        named = [name for name, labels in FIRST_TEST_LABELS.items() if labels == first]
        raise ValueError(
            f"{data_dir} does not hold {config.dataset}'s t10k split: its first labels are {first}, "
            f"{config.dataset}'s are {FIRST_TEST_LABELS[config.dataset]}"
            + (f" (it looks like {named[0]}: give --dataset {named[0]})" if named else "")
        )
    keep = torch.ones(len(test_images), dtype=torch.bool)
    if config.dataset == "fashion-mnist":
        keep[sample_indices(config.dataset)] = False
    test_index = keep.nonzero().squeeze(1)[: config.n_images]
    return test_images[test_index], test_labels[test_index], int(test_labels.max()) + 1


@dataclass
class RunFills:
    """The fill files of a finished run, read back: each job (its images, mask count and
    seed, and ``first``, its first test image) with what its file holds (``fill``,
    ``control_fill``, ``predicted``, and ``n_kept``/``converged`` where saved)."""

    validation: tuple[FillJob, dict[str, Tensor]]
    test: list[tuple[FillJob, dict[str, Tensor]]]


def run_fills(config: RunConfig, data_dir: str, out: Path) -> RunFills:
    """The fills that :func:`reproduce` with ``config`` kept under ``out``: the jobs are
    planned as the run plans them (so their names, images and seeds are the run's, not
    parsed back from file names) and each file is checked as the run checks it. Only
    reads: a missing file, or a folder whose manifest is another run's, is a
    ``ValueError`` naming it."""
    folder = config.shards_folder(Path(out))
    if not (folder / "manifest.json").is_file():
        raise ValueError(f"out: {folder} holds no fills of this run; is it the run's --out, with its --weights?")
    cache = FillCache(folder, None, None, config)
    images, _, _ = load_test_images(config, data_dir)
    jobs = [validation_job(config, data_dir, torch.device("cpu")), *shard_jobs(images, config)]
    missing = [job.name for job in jobs if not cache.has(job.name)]
    if missing:
        raise ValueError(f"out: {folder} lacks {len(missing)} of the run's fill files, e.g. {missing[0]}")
    loaded = [(job, cache.load(job)) for job in jobs]
    return RunFills(loaded[0], loaded[1:])


def _fill_everything(cache: FillCache, jobs, ranks: Ranks, say, show_progress: bool) -> list[str]:
    """Compute the jobs not on disk, each rank its share; returns the names found on disk."""
    if ranks.is_main:  # what a killed process was writing; never read back
        for leftover in cache.folder.glob(f"*{PARTIAL_SUFFIX}"):
            leftover.unlink(missing_ok=True)
    on_disk = ranks.broadcast([job.name for job in jobs if cache.has(job.name)])
    missing = [job for job in jobs if job.name not in on_disk]
    if on_disk:
        say(f"{len(on_disk)} of {len(jobs)} fill files are on disk from an earlier run")
    for job in ranks.share(missing):
        started = time.perf_counter()
        cache.compute(job, show_progress=show_progress and job is jobs[0])
        say(f"filled {job.name} ({len(job.images)} images, {time.perf_counter() - started:.0f} s)")
    if ranks.world_size > 1:
        # a rank done early waits on the shared folder, not in a collective that could time out
        while not all(cache.has(job.name) for job in missing):
            time.sleep(2)
        ranks.barrier()
    return on_disk


def _run(config: RunConfig, data_dir, out: Path, ranks: Ranks, device, command, show_progress, echo) -> Path:
    start_time = time.perf_counter()
    show_progress = show_progress and ranks.is_main
    say = echo if ranks.world_size == 1 else (lambda text: echo(f"[rank {ranks.rank}/{ranks.world_size}] {text}"))
    entry = shipped_model(config.dataset, config.arch)
    model = entry.build(config.weights).to(device)
    # the CPU generator only (the control model is built on the CPU), under reproduce's
    # fork_rng: the caller's random state, CUDA's included, stays as it was
    torch.default_generator.manual_seed(config.seed)
    control = entry.builder(**config.weights.builder_kwargs).eval().to(device)

    images, labels, n_classes = load_test_images(config, data_dir)
    images = images.to(device)
    # only now that the data loaded: a failed start leaves no empty folder behind
    out.mkdir(parents=True, exist_ok=True)
    report_path = out / "report.md"
    if ranks.is_main and report_path.exists():
        report_path.unlink()  # a stale report must not pass for this run's
    if ranks.world_size > 1:
        same_run_everywhere(out, config.agreement(device.type), ranks)

    folder = config.shards_folder(out)
    cache = ranks.check(lambda: FillCache(folder, model, control, config, ranks.is_main))
    # every fill first: the validation images' and the test shards', shared out among the ranks
    validation = validation_job(config, data_dir, device)
    shards = shard_jobs(images, config)
    on_disk = _fill_everything(cache, [validation, *shards], ranks, say, show_progress)

    choice = choose_on_validation(model, cache, validation, n_classes, ranks, say)
    judge = shipped_model(config.dataset, JUDGE_ARCH[config.dataset]).build()
    table = score_test_images(model, cache, shards, choice, n_classes, ranks, show_progress, judge)
    if not ranks.is_main:
        return report_path
    figures = draw_figures(out, model, images, labels, table, choice.chosen, n_classes, config)
    save_results(out / "results.pt", table, choice)

    elapsed = time.perf_counter() - start_time
    run = RunRecord(config, command, str(device), elapsed, on_disk, len(shards), ranks.world_size)
    text = write_report(run, table, choice, figures)
    write_atomically(report_path, lambda handle: handle.write(text.encode()))
    echo(f"wrote {report_path} ({elapsed / 60:.1f} min)")
    return report_path


def save_results(path: Path, table: Table, choice: Choice) -> None:
    """``results.pt`` (see :func:`reproduce`)."""
    min_max_settings = choice.min_max_only
    results = {
        "chosen": table.chosen.confusion,
        "min_max_only": table.min_max_only.confusion if table.min_max_only is not None else None,
        "settings": {row: str(setting) for row, setting in choice.chosen.items()},
        "min_max_only_settings": {row: str(s) for row, s in min_max_settings.items()} if min_max_settings else None,
        "class_means": table.class_means,
        "class_counts": table.class_counts,
        "n_kept": table.n_kept,  # per shard: kept draws per image (None: not saved with its fills)
        "validation_n_kept": choice.n_kept,
        "per_image": table.per_image,
    }
    save_tensors_file(results, path)
