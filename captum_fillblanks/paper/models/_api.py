"""The weights API and the registry of shipped models (as torchvision's ``models/_api.py``).

:class:`Weights` and :class:`WeightsEnum` describe a trained file shipped in
``captum_fillblanks/paper/weights``; :data:`MODELS` is the one registry of the shipped
models, by ``(data set, architecture)``, that ``reproduce``, the demo and the command
line read (:func:`shipped_model`, :func:`list_shipped_models`, :func:`shipped_weights`).
Each architecture's module registers its models (:func:`register_shipped_model`). A
private module: its public names are re-exported by :mod:`captum_fillblanks.paper.models`
(the helpers the architecture modules share too: :func:`build_model`, :func:`recipe`,
:func:`mnist_5k_meta`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import Enum
from importlib.resources import files
from types import MappingProxyType
from typing import Any

import torch
from torch import Tensor, nn

from ..robust import PGD

__all__ = [
    "MNIST_CLASSES",
    "FASHION_MNIST_CLASSES",
    "MNIST_5K_SPLIT",
    "FASHION_MNIST_SPLIT",
    "Weights",
    "WeightsEnum",
    "recipe",
    "mnist_5k_meta",
    "build_model",
    "robust_accuracy_meta",
    "ShippedModel",
    "MODELS",
    "register_shipped_model",
    "DEFAULT_ARCH",
    "JUDGE_ARCH",
    "list_shipped_models",
    "shipped_model",
    "shipped_weights",
]

MNIST_CLASSES = ("0", "1", "2", "3", "4", "5", "6", "7", "8", "9")
FASHION_MNIST_CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)


@dataclass(frozen=True)
class Weights:
    """One trained weight file shipped in ``captum_fillblanks/paper/weights``.

    Attributes:
        file_name (str): The file's name inside the package.
        meta (dict): ``dataset``, ``training_split`` (which images trained it),
            ``t10k_accuracy`` (measured on the data set's 10,000-image test split, a
            fraction), ``num_params``, ``input_range`` (``(0.0, 1.0)``: raw pixels),
            ``categories`` (class names, in logit order), ``recipe`` (the
            ``captum-fillblanks train`` settings that rebuild the file) and, where the
            architecture has options, ``builder_kwargs`` (those the file was trained
            with; the builder applies them).
    """

    file_name: str
    meta: dict[str, Any]


class WeightsEnum(Enum):
    """torchvision's ``WeightsEnum``, reading files from the package instead of a URL."""

    @classmethod
    def verify(cls, weights: Any, builder: str) -> WeightsEnum | None:
        """Turns ``None``, a member or a member's name into ``None`` or a member."""
        if weights is None or isinstance(weights, cls):
            return weights
        if isinstance(weights, str):
            name = weights.removeprefix(f"{cls.__name__}.")
            if name in cls.__members__:
                return cls[name]
        valid = ", ".join(f"{cls.__name__}.{name}" for name in cls.__members__)
        raise ValueError(
            f"{builder}() got weights={weights!r}; expected None, one of {valid}, "
            f"or one of their names as a string ({', '.join(map(repr, cls.__members__))})."
        )

    @property
    def file_name(self) -> str:
        return self.value.file_name

    @property
    def meta(self) -> dict[str, Any]:
        return self.value.meta

    @property
    def builder_kwargs(self) -> dict[str, Any]:
        """The architecture options the file was trained with (``{}`` where none)."""
        return self.meta.get("builder_kwargs", {})

    def get_state_dict(self) -> dict[str, Tensor]:
        """Reads the state dict from the package (offline, on the CPU)."""
        resource = files("captum_fillblanks.paper").joinpath("weights", self.file_name)
        with resource.open("rb") as handle:
            return torch.load(handle, map_location="cpu", weights_only=True)

    def __repr__(self) -> str:
        return f"{type(self).__name__}.{self.name}"


def recipe(dataset: str, arch: str, weights: str = "", **settings: Any) -> dict[str, Any]:
    choice = f" --weights {weights}" if weights else ""
    return {
        "command": f"captum-fillblanks train --dataset {dataset} --arch {arch}{choice} --data-dir DIR",
        "seed": 0,
        "lr": 3e-3,
        **settings,
    }


MNIST_5K_SPLIT = (
    "the 5,000-image MNIST training subset (500 per digit) minus "
    "the last 50 images of each digit in file order, held out (see "
    "captum_fillblanks.paper.data.split_training_set): 4,500 images"
)

FASHION_MNIST_SPLIT = (
    "the 60,000-image Fashion-MNIST training split minus the last 500 images "
    "of each class in file order, held out for validation (see "
    "captum_fillblanks.paper.data.split_training_set): 55,000 images"
)


def mnist_5k_meta(t10k_accuracy: float, num_params: int, recipe: dict[str, Any], **more: Any) -> dict[str, Any]:
    """The meta of a file trained on the 4,500 images of the offline MNIST subset."""
    return {
        "dataset": "MNIST",
        "training_split": MNIST_5K_SPLIT,
        "t10k_accuracy": t10k_accuracy,
        "num_params": num_params,
        "input_range": (0.0, 1.0),
        "categories": MNIST_CLASSES,
        **more,
        "recipe": recipe,
    }


#: The attacks a robust file's ``meta["robust_accuracy"]`` is measured with: 20 PGD
#: steps with a random start, on the first 1,000 test images.
ROBUST_EVALUATION = {"l2": ("L2 1.0", "l2", 1.0), "linf": ("L-inf 0.1", "linf", 0.1)}
ROBUST_EVALUATION_IMAGES = 1000


def robust_accuracy_meta(**measured: tuple[float, float]) -> dict[str, dict[str, Any]]:
    """``meta["robust_accuracy"]``: per attack of :data:`ROBUST_EVALUATION` (by its key),
    ``(ours, art)``, the robust accuracy under :func:`~..robust.robust_accuracy` and under
    the Adversarial Robustness Toolbox's PGD (:func:`~..robust.art_robust_accuracy`)."""
    meta = {}
    for key, (ours, art) in measured.items():
        label, norm, epsilon = ROBUST_EVALUATION[key]
        meta[label] = {
            "attack": PGD(norm, epsilon, steps=20).as_meta(),
            "images": ROBUST_EVALUATION_IMAGES,
            "accuracy": ours,
            "art_accuracy": art,
        }
    return meta


def build_model(
    model_class: type[nn.Module],
    weights: WeightsEnum | None,
    in_channels: int,
    num_classes: int,
    **kwargs: Any,
) -> nn.Module:
    if weights is None:
        return model_class(in_channels=in_channels, num_classes=num_classes, **kwargs)
    categories = weights.meta["categories"]
    if num_classes != len(categories) or in_channels != 1:
        raise ValueError(
            f"{weights!r} was trained for in_channels=1 and num_classes={len(categories)}; "
            f"got in_channels={in_channels} and num_classes={num_classes}. Leave them at "
            "their defaults, or pass weights=None to train a new model."
        )
    for name, value in weights.builder_kwargs.items():
        if kwargs.setdefault(name, value) != value:
            raise ValueError(
                f"{weights!r} was trained with {name}={value!r}; got {name}={kwargs[name]!r}. Leave it out, "
                "or pass weights=None to train a new model."
            )
    model = model_class(in_channels=1, num_classes=len(categories), **kwargs)
    model.load_state_dict(weights.get_state_dict())
    return model.eval()


@dataclass(frozen=True)
class ShippedModel:
    """A model the package ships trained weights for, on one data set.

    Attributes:
        dataset (str): ``"mnist"``, ``"fashion-mnist"`` or ``"tweets"``.
        arch (str): ``"simple-cnn"``, ``"resnet5"``, ``"lenet5"`` or
            ``"tweet-transformer"``.
        builder (Callable): the torchvision-style builder (:func:`simple_cnn`,
            :func:`resnet5`, :func:`lenet5`, :func:`tweet_transformer`).
        weights (WeightsEnum): the member the model is built with unless told otherwise.
        name (str): the display name of the architecture (``"ResNet5"``).
    """

    dataset: str
    arch: str
    builder: Callable[..., nn.Module]
    weights: WeightsEnum
    name: str

    def build(self, weights: WeightsEnum | None = None) -> nn.Module:
        """The trained model (``weights``: another member, default this model's own)."""
        return self.builder(weights=weights or self.weights)


_REGISTRY: dict[tuple[str, str], ShippedModel] = {}
MODELS: Mapping[tuple[str, str], ShippedModel] = MappingProxyType(_REGISTRY)


def register_shipped_model(model: ShippedModel) -> ShippedModel:
    """Adds ``model`` to :data:`MODELS` (each architecture's module registers its own, in
    the order :mod:`captum_fillblanks.paper.models` imports them)."""
    key = (model.dataset, model.arch)
    if key in _REGISTRY:
        raise ValueError(f"a shipped model for {key} is registered already")
    _REGISTRY[key] = model
    return model


#: The architecture each data set uses unless told otherwise (the paper's Figs. 1-2).
DEFAULT_ARCH = MappingProxyType({"mnist": "simple-cnn", "fashion-mnist": "resnet5", "tweets": "tweet-transformer"})


#: The judge of each data set's readability checks (:func:`~captum_fillblanks.attr.readability.judge_accuracy`):
#: another architecture than the models whose prototypes it reads, trained separately.
JUDGE_ARCH = MappingProxyType({"mnist": "lenet5", "fashion-mnist": "lenet5"})


def list_shipped_models(dataset: str | None = None) -> list[tuple[str, str]]:
    """The ``(data set, architecture)`` pairs with shipped weights (of ``dataset`` only,
    if given), in registry order."""
    return [key for key in MODELS if dataset in (None, key[0])]


def shipped_model(dataset: str, arch: str | None = None) -> ShippedModel:
    """The shipped model of ``arch`` on ``dataset`` (``arch=None``: the data set's
    default, :data:`DEFAULT_ARCH`).

    Raises:
        ValueError: no shipped model for the pair.
    """
    key = (dataset, arch or DEFAULT_ARCH.get(dataset))
    if key not in MODELS:
        raise ValueError(
            f"no shipped model for arch={key[1]!r} on dataset={dataset!r}; expected one of {list_shipped_models()}"
        )
    return MODELS[key]


def shipped_weights(dataset: str, arch: str, weights: str | None = None) -> WeightsEnum:
    """The shipped weights of ``arch`` trained on ``dataset``.

    Args:
        dataset (str): ``"mnist"`` or ``"fashion-mnist"``.
        arch (str): ``"simple-cnn"`` or ``"resnet5"``.
        weights (str, optional): The name of a member of the architecture's weights
            enum (``"MNIST_5K_FLATTEN"``); it must have been trained on ``dataset``.
            Default: None, the one :data:`MODELS` lists for the pair.

    Returns:
        The weights enum member.

    Raises:
        ValueError: No shipped model for the pair, or ``weights`` names no member of
            the enum trained on ``dataset``.
    """
    default = shipped_model(dataset, arch).weights
    if weights is None:
        return default
    enum = type(default)
    fits = [name for name, member in enum.__members__.items() if member.meta["dataset"] == default.meta["dataset"]]
    if weights not in fits:
        raise ValueError(
            f"got weights={weights!r} for arch={arch!r} on dataset={dataset!r}; expected one of "
            f"{', '.join(map(repr, fits))} ({enum.__name__} trained on {default.meta['dataset']})"
        )
    return enum[weights]
