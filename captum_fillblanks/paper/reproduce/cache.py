"""The fills of a run, one file per job, kept so that a rerun only rescores them.

The trained and the control model's fills do not depend on the setting of ``T``, so
they are computed once per job (:class:`FillJob`: some images, their mask count and
seed) and saved under the run's shards folder (:class:`FillCache`). A file is written
through a fresh temporary file and renamed (:mod:`captum_fillblanks.paper.files`), so a
file that exists is complete, whichever rank wrote it and however the run was stopped,
and it is read back with ``weights_only=True``: a planted file cannot run code.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from ...attr.mask_fill import MaskFill
from ..files import load_tensors_file, save_tensors_file, write_atomically
from .config import RunConfig

__all__ = ["FillJob", "FillCache", "refuse_links"]


def refuse_links(folder: Path, *, within: Path) -> None:
    """Refuse ``folder`` if it, or a folder between ``within`` and it, is a symbolic
    link: the fills, the manifest and the cleanup of leftovers would follow it out of
    ``within`` (``--out``)."""
    folder, within = Path(folder), Path(within)
    for part in [folder, *folder.parents]:
        if part == within or within not in part.parents:
            break
        if part.is_symlink():
            raise ValueError(
                f"{part} is a symbolic link; the fills are kept only in real folders under --out {within}: "
                "remove the link, or give another --out"
            )


@dataclass(frozen=True)
class FillJob:
    """One file of fills: ``images`` with masks from ``seed``, ``n_samples`` kept each
    (with ``tolerance``: at most, each image stopping once its fill is that precise);
    ``first``, the index of its first image among the run's test images (a shard's
    scoring masks are seeded by it)."""

    name: str
    images: Tensor
    n_samples: int
    seed: int
    tolerance: float | None = None
    first: int = 0


class FillCache:
    """The fills of a run under ``folder``, one file per :class:`FillJob`.

    A file's name holds the images, masks and seed it was computed for; ``key`` (the run's
    :meth:`~.config.RunConfig.manifest_key`) holds everything else that decides it, written
    to ``folder/manifest.json`` on first use. A folder whose manifest differs holds another
    run's fills and is refused. Only the process that passes ``check_manifest`` reads or
    writes the manifest (rank 0: the others wait for its verdict).

    Each file holds ``fill`` (MaskFill, ``target=None``), ``n_kept`` (the draws each image
    kept), ``control_fill`` (the control model's fill toward the trained model's
    prediction, every draw kept) and ``predicted`` (the trained model's labels).
    """

    def __init__(
        self,
        folder: Path,
        model: Callable,
        control: Callable,
        config: RunConfig,
        check_manifest: bool = True,
    ):
        self.folder, self.model, self.control, self.config = Path(folder), model, control, config
        if check_manifest:
            self._check_manifest(config.manifest_key())

    def _check_manifest(self, key: dict) -> None:
        refuse_links(self.folder, within=self.folder.parent.parent)
        self.folder.mkdir(parents=True, exist_ok=True)
        manifest = self.folder / "manifest.json"
        if not manifest.exists():
            text = json.dumps(key, indent=1, sort_keys=True) + "\n"
            write_atomically(manifest, lambda handle: handle.write(text.encode()))
            return
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
                f"{self.folder} holds the fills of another run (they differ in {', '.join(changed)}: "
                f"{ {k: found.get(k) for k in changed} } there, { {k: key.get(k) for k in changed} } now); "
                "give another --out, or delete that folder to recompute"
            )

    def has(self, name: str) -> bool:
        return (self.folder / name).exists()

    def load(self, job: FillJob) -> dict[str, Tensor]:
        """The fills of ``job``, checked to be what :meth:`compute` saves for its images."""
        path = self.folder / job.name
        try:
            saved = load_tensors_file(path)
            if not isinstance(saved, dict) or not {"fill", "control_fill", "predicted"} <= set(saved):
                raise ValueError(f"it holds {type(saved).__name__} {sorted(saved) if isinstance(saved, dict) else ''}")
            n = len(job.images)
            expected = {"fill": tuple(job.images.shape), "control_fill": tuple(job.images.shape), "predicted": (n,)}
            expected.update({key: (n,) for key in ("n_kept", "converged") if key in saved})
            if not all(isinstance(saved[key], Tensor) for key in expected):
                raise ValueError(f"its fields {sorted(expected)} are not all tensors")
            shapes = {key: tuple(saved[key].shape) for key in expected}
            if shapes != expected:
                raise ValueError(f"shapes {shapes}, expected {expected} for its {n} images")
            if job.tolerance is not None and "converged" not in saved:
                raise ValueError("it says nothing of which images converged, and this run stops by tolerance")
            n_classes = len(self.config.weights.meta["categories"])
            predicted = saved["predicted"]
            if predicted.is_floating_point() or not bool(((predicted >= 0) & (predicted < n_classes)).all()):
                raise ValueError(f"its predicted labels are not classes 0 to {n_classes - 1}")
            n_kept = saved.get("n_kept")
            if n_kept is not None and (
                n_kept.is_floating_point() or not bool(((n_kept >= 0) & (n_kept <= job.n_samples)).all())
            ):
                raise ValueError(f"its kept-mask counts are not whole numbers up to {job.n_samples}")
        except Exception as error:  # truncated, foreign or planted: torch says only what broke
            raise ValueError(
                f"{path} is not a complete fill file ({type(error).__name__}: {error}); delete it and "
                "rerun the same command: it will be recomputed"
            ) from error
        return saved

    def compute(self, job: FillJob, show_progress: bool = False) -> None:
        """Fill ``job``'s images and save them under ``job.name``."""
        config, images = self.config, job.images
        with torch.no_grad():
            predicted = self.model(images).argmax(1)
        fill_method = MaskFill(self.model)
        fill = fill_method.attribute(
            images,
            n_samples=job.n_samples,
            max_draws=config.max_draws_per_sample * job.n_samples,
            tolerance=job.tolerance,
            seed=job.seed,
            show_progress=show_progress,
            **config.masks,
        )
        control_fill = MaskFill(self.control).attribute(
            images,
            target=predicted,
            selection="all",
            n_samples=min(job.n_samples, config.control_samples_cap),
            seed=job.seed,
            **config.masks,
        )
        saved = {
            "fill": fill.cpu(),
            # an image the model seldom gives its own label under a mask keeps fewer than
            # n_samples draws within max_draws; the report says how many did
            "n_kept": fill_method.counts.n_kept.cpu(),
            "control_fill": control_fill.cpu(),
            "predicted": predicted.cpu(),
        }
        if job.tolerance is not None:
            saved["converged"] = fill_method.counts.converged.cpu()
        save_tensors_file(saved, self.folder / job.name)
