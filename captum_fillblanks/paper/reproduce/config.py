"""One reproduction run, described once: :class:`RunConfig`.

Everything that decides a run's results is a field of one frozen record. What the fill
files depend on (:meth:`RunConfig.manifest_key`), what every torchrun rank must agree on
(:meth:`RunConfig.agreement`), where the fills are kept (:meth:`RunConfig.shards_folder`)
and the report's description of the run are all read from it, so they cannot drift
apart.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from ...attr.transforms import TransformSetting
from ..datasets import IMAGE_REPRODUCTION
from ..models import DEFAULT_ARCH, WeightsEnum, shipped_model, shipped_weights
from .settings import CANDIDATE_SETTINGS

__all__ = ["RunConfig", "MAX_SEED"]

#: The largest seed a run takes: its shards' and validation's seeds (``seed`` plus up to
#: ``10**6 + n_images``) stay below ``2**63``, where a generator's seed would wrap.
MAX_SEED = 2**62


# the weights whose fill folders are named DATASET_ARCH, where the default has changed since
_FIRST_DEFAULT = {("mnist", "resnet5"): "MNIST_5K"}


@dataclass(frozen=True)
class RunConfig:
    """The arguments of one :func:`~captum_fillblanks.paper.reproduce.reproduce` run.

    Build it with :meth:`create`, which checks the sizes and resolves the model. The
    masks are the paper's (section 4.1: a quarter of the 2 x 2 patches blanked;
    progressive: k = 4 steps). MaskFill keeps a draw only if the model still gives the
    masked image its own label and stops after ``max_draws_per_sample * n_samples``
    draws (MaskFill's own default bound, written out so the report can name it).
    """

    dataset: str
    arch: str
    weights: WeightsEnum
    n_images: int
    n_samples: int
    shard_size: int
    n_validation: int
    figure_samples: int
    seed: int
    candidates: tuple[TransformSetting, ...]
    mask_ratio: float = 0.25
    patch_size: int = 2
    n_steps: int = 4
    #: not a field: it is not in the manifest, so another value would reuse other fills
    max_draws_per_sample: ClassVar[int] = 10
    #: the random-model control is a baseline: at most this many masks per image
    control_samples_cap: int = 1000
    #: stop each image's fill once its relative error is at most this (MaskFill's
    #: ``tolerance``); ``n_samples`` is then the cap. ``None``: exactly ``n_samples``
    tolerance: float | None = None

    @classmethod
    def create(
        cls,
        dataset: str,
        *,
        arch: str | None = None,
        weights: str | None = None,
        n_images: int = IMAGE_REPRODUCTION.n_items,
        n_samples: int = IMAGE_REPRODUCTION.n_samples,
        shard_size: int = 50,
        n_validation: int = 200,
        figure_samples: int = 2000,
        seed: int = 0,
        candidates: Sequence[TransformSetting] = CANDIDATE_SETTINGS,
        tolerance: float | None = None,
    ) -> RunConfig:
        """Check the sizes (each an int >= 1, else a ``ValueError`` naming it) and the
        candidates (at least one), and resolve ``arch`` (default: the data set's,
        :data:`~captum_fillblanks.paper.models.DEFAULT_ARCH`) and ``weights`` (a member
        name of the model's weights, default: the model's own)."""
        sizes = {
            "n_images": n_images,
            "n_samples": n_samples,
            "shard_size": shard_size,
            "n_validation": n_validation,
            "figure_samples": figure_samples,
        }
        for name, value in sizes.items():
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an int >= 1, got {value!r}")
        # every shard's masks come from seed + its first image, the validation's from
        # seed + 10**6: all of them must be seeds a torch.Generator takes as they are
        if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
            raise ValueError(f"seed must be an int in [0, {MAX_SEED}], got {seed!r}")
        if tolerance is not None and (
            isinstance(tolerance, bool) or not isinstance(tolerance, (int, float)) or not 0 < tolerance < math.inf
        ):
            raise ValueError(f"tolerance must be a positive finite number or None, got {tolerance!r}")
        candidates = tuple(candidates)
        if not candidates:
            raise ValueError("candidates must hold at least one TransformSetting")
        arch = arch or DEFAULT_ARCH.get(dataset)
        resolved = shipped_weights(dataset, arch, weights)
        return cls(dataset, arch, resolved, seed=seed, candidates=candidates, tolerance=tolerance, **sizes)

    @property
    def masks(self) -> dict[str, float | int]:
        """The mask settings of every fill, as keyword arguments of :class:`MaskFill`."""
        return {"mask_ratio": self.mask_ratio, "patch_size": self.patch_size}

    @property
    def fill_suffix(self) -> str:
        """What a fill file's name adds for the tolerance (nothing without one, so the
        files of a fixed-count run keep their names)."""
        return "" if self.tolerance is None else f"_tol{self.tolerance:g}"

    @property
    def control_samples(self) -> int:
        return min(self.n_samples, self.control_samples_cap)

    @property
    def weights_name(self) -> str:
        """``"ResNet5_Weights.MNIST_5K_FLATTEN"``."""
        return f"{type(self.weights).__name__}.{self.weights.name}"

    @property
    def model_name(self) -> str:
        """The model as the report names it: ``"ResNet5 (ResNet5_Weights.MNIST_5K)"``."""
        return f"{shipped_model(self.dataset, self.arch).name} ({self.weights_name})"

    @property
    def validation_seed(self) -> int:
        """The masks of the validation fills: apart from every test shard's seed."""
        return self.seed + 10**6

    def manifest_key(self) -> dict:
        """What decides the fills beyond what a fill file's name holds (its images, mask
        count and seed): a fill folder whose manifest differs holds another run's fills."""
        return {
            "dataset": self.dataset,
            "arch": self.arch,
            "weights": f"{self.weights_name} ({self.weights.file_name})",
            "mask_ratio": self.mask_ratio,
            "patch_size": self.patch_size,
            "control_seed": self.seed,
            "control_samples": self.control_samples,
        }

    def agreement(self, device_type: str) -> dict:
        """Everything every torchrun rank must have been given alike."""
        return {
            "dataset": self.dataset,
            "arch": self.arch,
            "weights": self.weights.name,
            "n_images": self.n_images,
            "n_samples": self.n_samples,
            "shard_size": self.shard_size,
            "n_validation": self.n_validation,
            "figure_samples": self.figure_samples,
            "seed": self.seed,
            "tolerance": self.tolerance,
            "candidates": [str(c) for c in self.candidates],
            "device type": device_type,
        }

    def shards_folder(self, out: Path) -> Path:
        """Where the fills are kept under ``out``: the weights that were the model's own
        when its fill folders were first named keep ``DATASET_ARCH`` (for ResNet5 on
        MNIST the average-pool ``MNIST_5K``, the default before the flatten head), others
        add their name (``DATASET_ARCH_NAME``), so every earlier folder keeps its name."""
        first = _FIRST_DEFAULT.get((self.dataset, self.arch)) or shipped_model(self.dataset, self.arch).weights.name
        if self.weights.name == first:
            return Path(out) / "shards" / f"{self.dataset}_{self.arch}"
        return Path(out) / "shards" / f"{self.dataset}_{self.arch}_{self.weights.name}"
