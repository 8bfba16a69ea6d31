"""MNIST and Fashion-MNIST through torchvision, from a plain folder of IDX files.

torchvision's :class:`~torchvision.datasets.MNIST` wants its files in
``root/MNIST/raw/`` and decompressed. The datasets here are the same classes, reading
instead a folder that simply holds the four IDX files, gzipped (``*.gz``) or not, as
the data sets are distributed (e.g. ``data/mnist``, or Debian's
``/usr/share/datasets/fashion-mnist``). torchvision's own layout still works, and so
does ``download=True``, which fetches the files into ``root``. The user's folder is only
read: a ``.gz`` file is decompressed into a temporary folder by torchvision's
``torchvision.datasets.utils.extract_archive``, parsed by torchvision's IDX reader,
and the copy deleted.

The package also ships about 100 real images per data set (:func:`load_samples`) for
the offline demo; ``captum_fillblanks/paper/samples/README.md`` says where they come from.
"""

from __future__ import annotations

import gzip
import os
import tempfile
import zlib
from collections.abc import Callable
from importlib.resources import files
from pathlib import Path
from types import MappingProxyType
from typing import NamedTuple

import torch
from torch import Tensor
from torchvision import datasets
from torchvision.datasets.mnist import read_image_file, read_label_file
from torchvision.datasets.utils import extract_archive

from .datasets import data_sets

__all__ = [
    "DATASETS",
    "CLASS_NAMES",
    "MNIST",
    "FashionMNIST",
    "TrainingSplit",
    "mnist",
    "fashion_mnist",
    "load_dataset",
    "load_tensors",
    "load_samples",
    "sample_indices",
    "split_training_set",
]

#: The image data sets (:data:`~captum_fillblanks.paper.datasets.DATA_SETS` of kind ``"images"``).
DATASETS = data_sets("images")

#: The names of each data set's classes, by label (Fashion-MNIST's as torchvision
#: names them), for captions and figure titles.
CLASS_NAMES = MappingProxyType(
    {"mnist": tuple(str(digit) for digit in range(10)), "fashion-mnist": tuple(datasets.FashionMNIST.classes)}
)

_IMAGE_SIZE = (28, 28)
_CORRUPT_FILE_ERRORS = (AssertionError, TypeError, ValueError, RuntimeError, EOFError)
_CORRUPT_FILE_ERRORS += (gzip.BadGzipFile, zlib.error)


class _IDXFolder:
    """Lets a torchvision MNIST-family dataset read a flat folder of IDX files."""

    def _file_names(self) -> tuple[str, str]:
        split = "train" if self.train else "t10k"
        return f"{split}-images-idx3-ubyte", f"{split}-labels-idx1-ubyte"

    def _has_split(self, folder: str) -> bool:
        return all(
            any(os.path.isfile(os.path.join(folder, name + suffix)) for suffix in ("", ".gz"))
            for name in self._file_names()
        )

    @property
    def raw_folder(self) -> str:
        # root itself, unless only torchvision's layout (root/MNIST/raw) has the files
        torchvision_folder = super().raw_folder
        if not self._has_split(self.root) and self._has_split(torchvision_folder):
            return torchvision_folder
        return self.root

    def _check_exists(self) -> bool:
        # only the requested split: a folder with just the t10k files serves train=False
        return self._has_split(self.raw_folder)

    def _load_data(self) -> tuple[Tensor, Tensor]:
        image_name, label_name = self._file_names()
        images = self._read(image_name, read_image_file)
        labels = self._read(label_name, read_label_file)
        if images.shape[1:] != _IMAGE_SIZE or len(images) != len(labels):
            raise ValueError(
                f"{self.raw_folder!r} holds {tuple(images.shape)} images and {len(labels)} labels; "
                f"expected (N, 28, 28) images and N labels in {image_name} and {label_name}."
            )
        return images, labels

    def _read(self, name: str, reader: Callable[[str], Tensor]) -> Tensor:
        path = os.path.join(self.raw_folder, name)
        try:
            if os.path.isfile(path):
                return reader(path)
            path += ".gz"
            with tempfile.TemporaryDirectory() as scratch:
                return reader(extract_archive(path, scratch))
        except _CORRUPT_FILE_ERRORS as error:
            raise ValueError(
                f"{path!r} is not a readable IDX file ({type(error).__name__}: {error}). "
                f"Expected {name} (or {name}.gz) as distributed with {type(self).__name__}."
            ) from error

    def _missing_files_message(self) -> str:
        expected = " and ".join(self._file_names())
        return (
            f"No {type(self).__name__} {'train' if self.train else 't10k'} files in {self.root!r}: "
            f"expected {expected} (plain or .gz) in that folder, or in "
            f"{super().raw_folder!r} (torchvision's layout). Point root at the folder that "
            "holds them, or pass download=True to fetch them."
        )


class MNIST(_IDXFolder, datasets.MNIST):
    """torchvision's MNIST, reading ``root`` as a plain folder of IDX files (``.gz`` or not).

    Same arguments and items as :class:`torchvision.datasets.MNIST`: ``root``,
    ``train`` (the 60,000-image training split, or the 10,000-image ``t10k`` test
    split), ``transform``, ``target_transform``, ``download``. Items are
    ``(PIL image, int label)`` unless ``transform`` says otherwise;
    ``transforms.ToTensor()`` gives the ``[0, 1]`` pixels the reference models take.

    Raises:
        FileNotFoundError: ``root`` lacks the split's files (and ``download=False``).
        ValueError: A file is there but is not a valid IDX file of 28 x 28 images.
    """

    def __init__(
        self,
        root: str | Path,
        train: bool = True,
        transform: Callable | None = None,
        target_transform: Callable | None = None,
        download: bool = False,
    ) -> None:
        try:
            super().__init__(
                root,
                train=train,
                transform=transform,
                target_transform=target_transform,
                download=download,
            )
        except RuntimeError as error:
            # torchvision's "Dataset not found"; a failed download keeps its own message
            if download or self._check_exists():
                raise
            raise FileNotFoundError(self._missing_files_message()) from error


class FashionMNIST(MNIST, datasets.FashionMNIST):
    """torchvision's FashionMNIST, reading ``root`` as a plain folder of IDX files.

    Same arguments, items and errors as :class:`MNIST` (this module's); the classes are
    Fashion-MNIST's ten clothing categories.
    """


def mnist(root: str | Path, train: bool = True, transform: Callable | None = None, download: bool = False) -> MNIST:
    """MNIST from a folder of IDX files; see :class:`MNIST`.

    The shipped MNIST weights were trained on a 5,000-image subset of the training
    split (500 per digit, the standard ``t10k`` test split beside it);
    ``download=True`` into an empty folder gets the full 60,000.

    Examples::

        >>> test_set = mnist("data/mnist", train=False)
        >>> len(test_set)
        10000
    """
    return MNIST(root, train=train, transform=transform, download=download)


def fashion_mnist(
    root: str | Path, train: bool = True, transform: Callable | None = None, download: bool = False
) -> FashionMNIST:
    """Fashion-MNIST from a folder of IDX files; see :class:`FashionMNIST`.

    Examples::

        >>> test_set = fashion_mnist("data/fashion-mnist", train=False)
        >>> test_set.classes[9]
        'Ankle boot'
    """
    return FashionMNIST(root, train=train, transform=transform, download=download)


_LOADERS = {"mnist": mnist, "fashion-mnist": fashion_mnist}


def _check_name(name: str) -> str:
    if name not in DATASETS:
        expected = ", ".join(map(repr, DATASETS))
        raise ValueError(f"Unknown dataset {name!r}; expected one of {expected}.")
    return name


def load_dataset(
    name: str,
    root: str | Path,
    train: bool = True,
    transform: Callable | None = None,
    download: bool = False,
) -> MNIST:
    """:func:`mnist` or :func:`fashion_mnist`, by ``name`` (``"mnist"``, ``"fashion-mnist"``)."""
    return _LOADERS[_check_name(name)](root, train=train, transform=transform, download=download)


def load_tensors(name: str, root: str | Path, train: bool = True, download: bool = False) -> tuple[Tensor, Tensor]:
    """A whole split as tensors, for batched work.

    Args:
        name (str): ``"mnist"`` or ``"fashion-mnist"``.
        root (str or Path): Folder of IDX files, as for :func:`load_dataset`.
        train (bool, optional): Training split, or ``t10k`` test split. Default: True.
        download (bool, optional): As torchvision's. Default: False.

    Returns:
        (Tensor, Tensor): images, float32 ``(N, 1, 28, 28)`` in ``[0, 1]`` (pixel / 255,
        as ``ToTensor`` gives), and labels, int64 ``(N,)``.
    """
    dataset = load_dataset(name, root, train=train, download=download)
    return _to_unit_range(dataset.data), dataset.targets.to(torch.int64)


def _to_unit_range(pixels: Tensor) -> Tensor:
    return pixels.unsqueeze(1).to(torch.float32) / 255


class TrainingSplit(NamedTuple):
    """Indices into a data set's training split (int64 tensors, ascending)."""

    train: Tensor
    """Images that trained the shipped weights."""
    validation: Tensor
    """Held out, for choosing settings (the transform's threshold, say) without test images."""
    samples: Tensor
    """Held out and shipped in the package (:func:`load_samples`); empty for
    Fashion-MNIST, whose samples come from its test split."""


_HELD_OUT_PER_CLASS = {"mnist": 50, "fashion-mnist": 500}
_SAMPLES_PER_CLASS = {"mnist": 10, "fashion-mnist": 0}


def split_training_set(name: str, labels: Tensor) -> TrainingSplit:
    """The split that trained the shipped weights, from the training split's labels.

    For each class, the last images of that class in file order are held out: 50 per
    digit for MNIST (of the 5,000-image subset: the first 10 of each digit's 50 are
    the shipped samples, the other 40 a validation split), 500 per class for
    Fashion-MNIST (all validation). No random numbers, so the split is the same
    everywhere. On the full 60,000-image MNIST the rule still holds out 500 images,
    but not the shipped samples, which come from the 5k subset.

    Args:
        name (str): ``"mnist"`` or ``"fashion-mnist"``.
        labels (Tensor): The training split's labels, in file order.

    Returns:
        TrainingSplit: ``train``, ``validation`` and ``samples`` indices.

    Examples::

        >>> _, labels = load_tensors("mnist", "data/mnist")
        >>> [len(part) for part in split_training_set("mnist", labels)]
        [4500, 400, 100]
    """
    held_out = _HELD_OUT_PER_CLASS[_check_name(name)]
    n_samples = _SAMPLES_PER_CLASS[name]
    validation, samples = [], []
    for label in labels.unique():
        last = (labels == label).nonzero().flatten()[-held_out:]
        samples.append(last[:n_samples])
        validation.append(last[n_samples:])
    validation, samples = torch.cat(validation).sort().values, torch.cat(samples).sort().values
    is_train = torch.ones(len(labels), dtype=torch.bool)
    is_train[validation] = False
    is_train[samples] = False
    return TrainingSplit(is_train.nonzero().flatten(), validation, samples)


def _sample_file(name: str) -> dict:
    resource = files(__package__).joinpath("samples", f"{_check_name(name)}.pt")
    with resource.open("rb") as handle:
        return torch.load(handle, weights_only=True)


def load_samples(dataset: str) -> tuple[Tensor, Tensor]:
    """The real images shipped in the package: 10 per class, 100 per data set.

    MNIST's come from the 5,000-image training subset, held out of the shipped weights'
    training (:func:`split_training_set`); Fashion-MNIST's are the first ten of each
    class in its ``t10k`` test split. Ordered by class, then by position in the file.

    Args:
        dataset (str): ``"mnist"`` or ``"fashion-mnist"``.

    Returns:
        (Tensor, Tensor): images, float32 ``(100, 1, 28, 28)`` in ``[0, 1]``, and labels,
        int64 ``(100,)``.

    Examples::

        >>> images, labels = load_samples("mnist")
        >>> images.shape, labels[:3].tolist()
        (torch.Size([100, 1, 28, 28]), [0, 0, 0])
    """
    stored = _sample_file(dataset)
    return _to_unit_range(stored["images"]), stored["labels"].to(torch.int64)


def sample_indices(dataset: str) -> Tensor:
    """Where each of :func:`load_samples`' images sits in its source IDX file (int64)."""
    return _sample_file(dataset)["indices"]
