"""Reference classifiers for the paper's experiments, with trained weights in the package.

The paper probes "a simple three-layered CNN" trained on MNIST (Figs. 1-2) and a small
ResNet, "ResNet5", trained on Fashion-MNIST (Fig. 2) and MNIST (Table 1). This module
gives both as torchvision-style builders::

    model = simple_cnn(weights="DEFAULT")          # SimpleCNN_Weights.MNIST_5K
    model = resnet5(weights=ResNet5_Weights.MNIST_5K)

Every model takes raw pixels in ``[0, 1]`` (no mean/std normalization), shape
``(batch, 1, 28, 28)``, and returns ``(batch, 10)`` logits. Trained weights are files
inside the package, loaded offline; a builder given weights returns the model in eval
mode. ``captum-fillblanks train`` rebuilds each file (see ``meta["recipe"]``).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import Enum
from importlib.resources import files
from types import MappingProxyType
from typing import Any

import torch
from torch import Tensor, nn
from torchvision.models.resnet import BasicBlock

__all__ = [
    "SimpleCNN",
    "ResNet5",
    "BlurPool2d",
    "Weights",
    "WeightsEnum",
    "SimpleCNN_Weights",
    "ResNet5_Weights",
    "LeNet5",
    "LeNet5_Weights",
    "simple_cnn",
    "resnet5",
    "lenet5",
    "JUDGE_ARCH",
    "ShippedModel",
    "MODELS",
    "DEFAULT_ARCH",
    "shipped_model",
    "list_shipped_models",
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


def _conv_relu_pool(in_channels: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
    )


class SimpleCNN(nn.Module):
    """The paper's "simple three-layered CNN": three conv layers, then a linear classifier.

    ::

        (1, 28, 28) -> conv1: conv 3x3, 16 -> ReLU -> max-pool 2 -> (16, 14, 14)
                    -> conv2: conv 3x3, 32 -> ReLU -> max-pool 2 -> (32, 7, 7)
                    -> conv3: conv 3x3, 64 -> ReLU -> max-pool 2 -> (64, 3, 3)
                    -> flatten -> classifier: linear 576 -> num_classes logits

    The classifier fixes the input size to 28 x 28. Every pixel reaches the output
    (the last pooling drops a row and a column of the 7 x 7 map, but conv3 has already
    mixed them into their neighbours), so a gradient with respect to the input is
    defined everywhere, which the fill method needs.

    Args:
        in_channels (int, optional): Channels of the input image. Default: 1.
        num_classes (int, optional): Number of output logits. Default: 10.
    """

    def __init__(self, in_channels: int = 1, num_classes: int = 10) -> None:
        super().__init__()
        self.conv1 = _conv_relu_pool(in_channels, 16)
        self.conv2 = _conv_relu_pool(16, 32)
        self.conv3 = _conv_relu_pool(32, 64)
        self.classifier = nn.Linear(64 * 3 * 3, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        x = self.conv1(x)
        x = self.conv2(x)
        x = self.conv3(x)
        return self.classifier(torch.flatten(x, 1))


class ResNet5(nn.Module):
    """A five-convolution ResNet: a conv stem, two residual stages, a linear classifier.

    ::

        (1, 28, 28) -> stem:   conv 3x3, 32 -> BN -> ReLU -> max-pool 2    -> (32, 14, 14)
                    -> layer1: BasicBlock(32 -> 32)                        -> (32, 14, 14)
                    -> layer2: BasicBlock(32 -> 64, stride 2)              -> (64, 7, 7)
                    -> head="avgpool": global average pool -> fc: linear 64 -> num_classes
                       head="flatten": flatten -> fc: linear 64 * 7 * 7 -> num_classes

    The "5" counts the 3 x 3 convolutions on the main path: the stem's one and two in
    each ``BasicBlock`` (torchvision's own block, one per stage). As in torchvision's
    ResNet names, the 1 x 1 projection on layer2's shortcut is not counted; unlike them,
    neither is the final linear layer (one block per stage cannot make an odd total
    otherwise).

    The head decides what the fill can show. With torchvision's global average pooling
    (``"avgpool"``) any input size of 8 x 8 or more works, but the logits forget where
    a feature was, so the gradient asks for strokes of the class anywhere, not for the
    class's shape where the blanks are. With ``"flatten"`` each position of the last
    map has its own classifier weights, as in :class:`SimpleCNN`; the input size is
    then fixed to 28 x 28. See ``docs/reproduction/README.md`` for what this changes
    in Table 1.

    Every downsampling reads one position in two, and the gradient pushed back through
    it repeats with that stride: the fills of the model carry a regular grid. With
    ``antialias=True`` each one is split into its operation at stride 1 and a fixed
    3 x 3 binomial blur applied at stride 2 (:class:`BlurPool2d`; Zhang, "Making
    Convolutional Networks Shift-Invariant Again", 2019): the stem's max-pool becomes a
    max-pool of stride 1 then the blur, layer2's first convolution a convolution of
    stride 1 then the blur, and its 1 x 1 shortcut the blur then the convolution. The
    shapes and the parameters stay as they are.

    Args:
        in_channels (int, optional): Channels of the input image. Default: 1.
        num_classes (int, optional): Number of output logits. Default: 10.
        head (str, optional): ``"avgpool"`` or ``"flatten"``. Default: ``"avgpool"``.
        antialias (bool, optional): blur before every subsampling. Default: False.
    """

    def __init__(
        self, in_channels: int = 1, num_classes: int = 10, head: str = "avgpool", antialias: bool = False
    ) -> None:
        super().__init__()
        if head not in _HEADS:
            raise ValueError(f"ResNet5 got head={head!r}; expected one of {', '.join(map(repr, _HEADS))}.")
        if not isinstance(antialias, bool):
            raise TypeError(f"ResNet5 got antialias={antialias!r}; expected a bool.")
        pool = [nn.MaxPool2d(2, stride=1), BlurPool2d(32)] if antialias else [nn.MaxPool2d(2)]
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, 32, kernel_size=3, padding=1, bias=False),
            nn.BatchNorm2d(32),
            nn.ReLU(),
            *pool,
        )
        self.layer1 = BasicBlock(32, 32)
        if antialias:
            self.layer2 = BasicBlock(32, 64, downsample=_projection(32, 64, stride=1, blur=True))
            self.layer2.conv1 = nn.Sequential(self.layer2.conv1, BlurPool2d(64))
        else:
            self.layer2 = BasicBlock(32, 64, stride=2, downsample=_projection(32, 64, stride=2))
        self.avgpool = nn.AdaptiveAvgPool2d(1) if head == "avgpool" else nn.Identity()
        self.fc = nn.Linear(64 * _HEADS[head], num_classes)
        _init_like_torchvision_resnet(self)

    def forward(self, x: Tensor) -> Tensor:
        x = self.stem(x)
        x = self.layer1(x)
        x = self.layer2(x)
        x = self.avgpool(x)
        return self.fc(torch.flatten(x, 1))


# positions of the last feature map that reach the classifier, per head (28 x 28 input)
class LeNet5(nn.Module):
    """LeNet-5 (LeCun et al., 1998) with ReLU: the **judge** of the readability checks.

    Another architecture than the models whose fills it reads (no residual blocks, no
    max pooling, 5 x 5 kernels), trained separately on the same images, so a prototype
    it recognises is not one that only fools the model that drew it.

    ::

        (1, 28, 28) -> conv 5x5, 6, pad 2 -> ReLU -> avg-pool 2 -> (6, 14, 14)
                    -> conv 5x5, 16       -> ReLU -> avg-pool 2 -> (16, 5, 5)
                    -> flatten -> linear 400 -> 120 -> ReLU -> linear 120 -> 84 -> ReLU
                    -> classifier: linear 84 -> num_classes logits

    Args:
        in_channels (int, optional): Channels of the input image. Default: 1.
        num_classes (int, optional): Number of output logits. Default: 10.
    """

    def __init__(self, in_channels: int = 1, num_classes: int = 10) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 6, kernel_size=5, padding=2),
            nn.ReLU(),
            nn.AvgPool2d(2),
            nn.Conv2d(6, 16, kernel_size=5),
            nn.ReLU(),
            nn.AvgPool2d(2),
        )
        self.hidden = nn.Sequential(nn.Linear(16 * 5 * 5, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU())
        self.classifier = nn.Linear(84, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.hidden(torch.flatten(self.features(x), 1)))


_HEADS = {"avgpool": 1, "flatten": 7 * 7}


class BlurPool2d(nn.Module):
    """A fixed 3 x 3 binomial blur (``[1, 2, 1]`` outer itself, over 16) of each channel,
    applied at stride 2 with one pixel of reflected padding: ``H -> ceil(H / 2)``.

    The low-pass before the subsampling of :class:`ResNet5` with ``antialias=True``; it
    has no parameters (the kernel is a buffer that is not saved with the weights).

    Args:
        channels (int): Channels of the input.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        taps = torch.tensor([1.0, 2.0, 1.0])
        kernel = (taps[:, None] * taps[None, :]) / 16
        self.register_buffer("kernel", kernel.expand(channels, 1, 3, 3).clone(), persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        padded = nn.functional.pad(x, (1, 1, 1, 1), mode="reflect")
        return nn.functional.conv2d(padded, self.kernel.to(x.dtype), stride=2, groups=x.shape[1])


def _projection(in_channels: int, out_channels: int, stride: int, blur: bool = False) -> nn.Sequential:
    layers = [BlurPool2d(in_channels)] if blur else []
    return nn.Sequential(
        *layers,
        nn.Conv2d(in_channels, out_channels, kernel_size=1, stride=stride, bias=False),
        nn.BatchNorm2d(out_channels),
    )


def _init_like_torchvision_resnet(model: nn.Module) -> None:
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(module, nn.BatchNorm2d):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)


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
        resource = files(__package__).joinpath("weights", self.file_name)
        with resource.open("rb") as handle:
            return torch.load(handle, map_location="cpu", weights_only=True)

    def __repr__(self) -> str:
        return f"{type(self).__name__}.{self.name}"


def _recipe(dataset: str, arch: str, weights: str = "", **settings: Any) -> dict[str, Any]:
    choice = f" --weights {weights}" if weights else ""
    return {
        "command": f"captum-fillblanks train --dataset {dataset} --arch {arch}{choice} --data-dir DIR",
        "seed": 0,
        "lr": 3e-3,
        **settings,
    }


_MNIST_5K_SPLIT = (
    "the 5,000-image MNIST training subset (500 per digit) minus "
    "the last 50 images of each digit in file order, held out (see "
    "captum_fillblanks.paper.data.split_training_set): 4,500 images"
)

_FASHION_MNIST_SPLIT = (
    "the 60,000-image Fashion-MNIST training split minus the last 500 images "
    "of each class in file order, held out for validation (see "
    "captum_fillblanks.paper.data.split_training_set): 55,000 images"
)


def _mnist_5k_meta(t10k_accuracy: float, num_params: int, recipe: dict[str, Any], **more: Any) -> dict[str, Any]:
    """The meta of a file trained on the 4,500 images of the offline MNIST subset."""
    return {
        "dataset": "MNIST",
        "training_split": _MNIST_5K_SPLIT,
        "t10k_accuracy": t10k_accuracy,
        "num_params": num_params,
        "input_range": (0.0, 1.0),
        "categories": MNIST_CLASSES,
        **more,
        "recipe": recipe,
    }


class SimpleCNN_Weights(WeightsEnum):
    """Trained weights for :func:`simple_cnn`."""

    MNIST_5K = Weights(
        file_name="simple_cnn_mnist_5k.pt",
        meta=_mnist_5k_meta(0.9871, 29_066, _recipe("mnist", "simple-cnn", epochs=30, batch_size=64, max_shift=2)),
    )
    DEFAULT = MNIST_5K


class ResNet5_Weights(WeightsEnum):
    """Trained weights for :func:`resnet5`."""

    MNIST_5K = Weights(
        file_name="resnet5_mnist_5k.pt",
        meta=_mnist_5k_meta(
            0.9868,
            77_290,
            _recipe("mnist", "resnet5", epochs=20, batch_size=64, max_shift=2),
            builder_kwargs={"head": "avgpool"},
        ),
    )
    MNIST_5K_FLATTEN = Weights(
        file_name="resnet5_mnist_5k_flatten.pt",
        meta=_mnist_5k_meta(
            0.9896,
            108_010,
            _recipe("mnist", "resnet5", "MNIST_5K_FLATTEN", epochs=20, batch_size=64, max_shift=2),
            builder_kwargs={"head": "flatten"},
        ),
    )
    MNIST_5K_ANTIALIAS = Weights(
        file_name="resnet5_mnist_5k_antialias.pt",
        meta=_mnist_5k_meta(
            0.9879,
            77_290,
            _recipe("mnist", "resnet5", "MNIST_5K_ANTIALIAS", epochs=20, batch_size=64, max_shift=2),
            builder_kwargs={"head": "avgpool", "antialias": True},
        ),
    )
    MNIST_5K_FLATTEN_ANTIALIAS = Weights(
        file_name="resnet5_mnist_5k_flatten_antialias.pt",
        meta=_mnist_5k_meta(
            0.9882,
            108_010,
            _recipe("mnist", "resnet5", "MNIST_5K_FLATTEN_ANTIALIAS", epochs=20, batch_size=64, max_shift=2),
            builder_kwargs={"head": "flatten", "antialias": True},
        ),
    )
    FASHION_MNIST = Weights(
        file_name="resnet5_fashion_mnist.pt",
        meta={
            "dataset": "Fashion-MNIST",
            "training_split": _FASHION_MNIST_SPLIT,
            "t10k_accuracy": 0.9232,
            "num_params": 77_290,
            "input_range": (0.0, 1.0),
            "categories": FASHION_MNIST_CLASSES,
            "builder_kwargs": {"head": "avgpool"},
            "recipe": _recipe("fashion-mnist", "resnet5", epochs=12, batch_size=128, max_shift=0),
        },
    )
    FASHION_MNIST_ANTIALIAS = Weights(
        file_name="resnet5_fashion_mnist_antialias.pt",
        meta={
            "dataset": "Fashion-MNIST",
            "training_split": _FASHION_MNIST_SPLIT,
            "t10k_accuracy": 0.9244,
            "num_params": 77_290,
            "input_range": (0.0, 1.0),
            "categories": FASHION_MNIST_CLASSES,
            "builder_kwargs": {"head": "avgpool", "antialias": True},
            "recipe": _recipe(
                "fashion-mnist", "resnet5", "FASHION_MNIST_ANTIALIAS", epochs=12, batch_size=128, max_shift=0
            ),
        },
    )
    DEFAULT = FASHION_MNIST


class LeNet5_Weights(WeightsEnum):
    """Trained weights for :func:`lenet5`, the judges of the readability checks: each
    trained on the same images as the data set's other shipped models, separately."""

    MNIST_5K = Weights(
        file_name="lenet5_mnist_5k.pt",
        meta=_mnist_5k_meta(0.9809, 61_706, _recipe("mnist", "lenet5", epochs=30, batch_size=64, max_shift=2)),
    )
    FASHION_MNIST = Weights(
        file_name="lenet5_fashion_mnist.pt",
        meta={
            "dataset": "Fashion-MNIST",
            "training_split": _FASHION_MNIST_SPLIT,
            "t10k_accuracy": 0.9047,
            "num_params": 61_706,
            "input_range": (0.0, 1.0),
            "categories": FASHION_MNIST_CLASSES,
            "recipe": _recipe("fashion-mnist", "lenet5", epochs=12, batch_size=128, max_shift=0),
        },
    )
    DEFAULT = MNIST_5K


def _build(
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


def simple_cnn(
    *,
    weights: SimpleCNN_Weights | str | None = None,
    in_channels: int = 1,
    num_classes: int = 10,
    **kwargs: Any,
) -> SimpleCNN:
    """Builds the paper's simple three-layered CNN (:class:`SimpleCNN`).

    Args:
        weights (SimpleCNN_Weights or str, optional): Trained weights to load, as a
            member (``SimpleCNN_Weights.MNIST_5K``) or its name (``"MNIST_5K"``,
            ``"DEFAULT"``). ``None`` gives a randomly initialized model. Default: None.
        in_channels (int, optional): Input channels; must stay 1 with weights. Default: 1.
        num_classes (int, optional): Output logits; must match the weights' categories
            when weights are given. Default: 10.
        **kwargs: Passed to :class:`SimpleCNN`.

    Returns:
        SimpleCNN: In eval mode when weights were loaded.

    Examples::

        >>> model = simple_cnn(weights="DEFAULT")
        >>> model(torch.zeros(2, 1, 28, 28)).shape
        torch.Size([2, 10])
    """
    weights = SimpleCNN_Weights.verify(weights, "simple_cnn")
    return _build(SimpleCNN, weights, in_channels, num_classes, **kwargs)


def resnet5(
    *,
    weights: ResNet5_Weights | str | None = None,
    in_channels: int = 1,
    num_classes: int = 10,
    **kwargs: Any,
) -> ResNet5:
    """Builds the small ResNet of the paper's Fig. 2 and Table 1 (:class:`ResNet5`).

    Args:
        weights (ResNet5_Weights or str, optional): Trained weights to load, as a member
            (``ResNet5_Weights.MNIST_5K``, ``ResNet5_Weights.MNIST_5K_FLATTEN``,
            ``ResNet5_Weights.FASHION_MNIST``, and each one's anti-aliased twin
            ``..._ANTIALIAS``, trained with the same recipe) or its name
            (``"FASHION_MNIST"``; ``"DEFAULT"`` is ``FASHION_MNIST``). ``None`` gives a
            randomly initialized model. Default: None.
        in_channels (int, optional): Input channels; must stay 1 with weights. Default: 1.
        num_classes (int, optional): Output logits; must match the weights' categories
            when weights are given. Default: 10.
        **kwargs: Passed to :class:`ResNet5` (``head``, ``antialias``). With weights,
            the ``head`` and ``antialias`` they were trained with are used; another one
            is a ``ValueError``.

    Returns:
        ResNet5: In eval mode when weights were loaded.

    Examples::

        >>> model = resnet5(weights=ResNet5_Weights.MNIST_5K)
        >>> model(torch.zeros(2, 1, 28, 28)).shape
        torch.Size([2, 10])
    """
    weights = ResNet5_Weights.verify(weights, "resnet5")
    return _build(ResNet5, weights, in_channels, num_classes, **kwargs)


def lenet5(
    *,
    weights: LeNet5_Weights | str | None = None,
    in_channels: int = 1,
    num_classes: int = 10,
    **kwargs: Any,
) -> LeNet5:
    """Builds the readability judge (:class:`LeNet5`).

    Args:
        weights (LeNet5_Weights or str, optional): Trained weights to load
            (``LeNet5_Weights.MNIST_5K``, ``LeNet5_Weights.FASHION_MNIST``) or a member's
            name (``"DEFAULT"`` is ``MNIST_5K``). ``None`` gives a randomly initialized
            model. Default: None.
        in_channels (int, optional): Input channels; must stay 1 with weights. Default: 1.
        num_classes (int, optional): Output logits; must match the weights' categories
            when weights are given. Default: 10.
        **kwargs: Passed to :class:`LeNet5`.

    Returns:
        LeNet5: In eval mode when weights were loaded.

    Examples::

        >>> judge = lenet5(weights="DEFAULT")
        >>> judge(torch.zeros(2, 1, 28, 28)).shape
        torch.Size([2, 10])
    """
    weights = LeNet5_Weights.verify(weights, "lenet5")
    return _build(LeNet5, weights, in_channels, num_classes, **kwargs)


@dataclass(frozen=True)
class ShippedModel:
    """A model the package ships trained weights for, on one data set.

    Attributes:
        dataset (str): ``"mnist"`` or ``"fashion-mnist"``.
        arch (str): ``"simple-cnn"`` or ``"resnet5"``.
        builder (Callable): the torchvision-style builder (:func:`simple_cnn`,
            :func:`resnet5`).
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

    def __getitem__(self, index: int) -> Any:
        # ``MODELS[key]`` was a (builder, weights, name) tuple until version 0.1
        warnings.warn(
            "MODELS[dataset, arch] is a ShippedModel now: read .builder, .weights and .name "
            "instead of indexing it as a (builder, weights, name) tuple",
            DeprecationWarning,
            stacklevel=2,
        )
        return (self.builder, self.weights, self.name)[index]


#: The shipped models, by ``(data set, architecture)``; read-only. ``reproduce``, the
#: demo and the command line all read this one registry (:func:`shipped_model`,
#: :func:`list_shipped_models`).
MODELS: Mapping[tuple[str, str], ShippedModel] = MappingProxyType(
    {
        (model.dataset, model.arch): model
        for model in (
            ShippedModel("mnist", "simple-cnn", simple_cnn, SimpleCNN_Weights.MNIST_5K, "SimpleCNN"),
            # the flatten head: the better MNIST ResNet5 by every check (docs/reproduction/README.md);
            # the average-pool weights run with weights="MNIST_5K"
            ShippedModel("mnist", "resnet5", resnet5, ResNet5_Weights.MNIST_5K_FLATTEN, "ResNet5"),
            ShippedModel("fashion-mnist", "resnet5", resnet5, ResNet5_Weights.FASHION_MNIST, "ResNet5"),
            ShippedModel("mnist", "lenet5", lenet5, LeNet5_Weights.MNIST_5K, "LeNet-5"),
            ShippedModel("fashion-mnist", "lenet5", lenet5, LeNet5_Weights.FASHION_MNIST, "LeNet-5"),
        )
    }
)
#: The architecture each data set uses unless told otherwise (the paper's Figs. 1-2).
DEFAULT_ARCH = MappingProxyType({"mnist": "simple-cnn", "fashion-mnist": "resnet5"})


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
