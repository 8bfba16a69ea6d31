"""The data sets the kit runs on, and what differs between them: one registry that the
command line, the image reproduction and the text reproduction read.

Each :class:`DataSet` names its kind (``"images"``: the image kit,
:mod:`~captum_fillblanks.paper.reproduce`; ``"texts"``: the text kit,
:mod:`~captum_fillblanks.paper.text`), what its ``--data-dir`` holds, the reproduction's
defaults for it and the command-line options its kit does not take. The shipped models
of a data set are in :data:`~captum_fillblanks.paper.models.MODELS`, its default
architecture in :data:`~captum_fillblanks.paper.models.DEFAULT_ARCH`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

__all__ = ["ReproduceDefaults", "DataSet", "DATA_SETS", "IMAGE_REPRODUCTION", "TEXT_REPRODUCTION", "data_sets"]


@dataclass(frozen=True)
class ReproduceDefaults:
    """What a reproduction scores unless told otherwise: ``n_items`` test items (images
    or texts; ``None``: the whole test split) with ``n_samples`` kept masks each."""

    n_items: int | None
    n_samples: int


#: The image reproduction's defaults (:func:`~captum_fillblanks.paper.reproduce.reproduce`).
IMAGE_REPRODUCTION = ReproduceDefaults(n_items=500, n_samples=10_000)
#: The text reproduction's (:class:`~captum_fillblanks.paper.text.report.TextRun`): every
#: test tweet, 500 masks each (a fill at an embedding converges sooner than on pixels).
TEXT_REPRODUCTION = ReproduceDefaults(n_items=None, n_samples=500)

# the options of an image command that the text kit does not take, and what to say
_IMAGE_ONLY_REPRODUCE = ("arch", "weights", "normalization", "tolerance")
_IMAGE_ONLY_TRAIN = ("arch", "noise_std", "attack", "epsilon", "attack_steps", "warmup")


@dataclass(frozen=True)
class DataSet:
    """One data set of the kit.

    Attributes:
        name (str): the ``--dataset`` name.
        kind (str): ``"images"`` or ``"texts"``: the kit that runs it.
        data_dir (str): what its ``--data-dir`` holds.
        reproduce (ReproduceDefaults): the reproduction's defaults.
        devices (tuple[str, ...] | None): the device types its reproduction runs on
            (``None``: any).
        not_for_reproduce (tuple[str, ...]): ``reproduce`` options it does not take.
        not_for_train (tuple[str, ...]): ``train`` options it does not take.
        mask_study (bool): whether ``mask-study`` runs on it.
    """

    name: str
    kind: str
    data_dir: str
    reproduce: ReproduceDefaults
    devices: tuple[str, ...] | None = None
    not_for_reproduce: tuple[str, ...] = ()
    not_for_train: tuple[str, ...] = ()
    mask_study: bool = True


_IDX = "a folder of IDX files, plain or .gz (train-* and t10k-*)"

#: Every data set of the kit by its ``--dataset`` name (read-only), in the command line's
#: order.
DATA_SETS: Mapping[str, DataSet] = MappingProxyType(
    {
        "mnist": DataSet("mnist", "images", _IDX, IMAGE_REPRODUCTION),
        "fashion-mnist": DataSet("fashion-mnist", "images", _IDX, IMAGE_REPRODUCTION),
        "tweets": DataSet(
            "tweets",
            "texts",
            "the folder with tweets.csv.gz",
            TEXT_REPRODUCTION,
            devices=("cpu",),
            not_for_reproduce=_IMAGE_ONLY_REPRODUCE,
            not_for_train=_IMAGE_ONLY_TRAIN,
            mask_study=False,
        ),
    }
)


def data_sets(kind: str | None = None) -> tuple[str, ...]:
    """The names of the data sets (of ``kind`` only, if given), in registry order."""
    return tuple(name for name, entry in DATA_SETS.items() if kind in (None, entry.kind))
