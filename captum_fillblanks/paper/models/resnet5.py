"""ResNet5, the small ResNet of the paper's Fig. 2 and Table 1, its weights and builder."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn
from torchvision.models.resnet import BasicBlock

from ..robust import PGD
from ._api import (
    FASHION_MNIST_CLASSES,
    FASHION_MNIST_SPLIT,
    ShippedModel,
    Weights,
    WeightsEnum,
    build_model,
    mnist_5k_meta,
    recipe,
    register_shipped_model,
    robust_accuracy_meta,
)

__all__ = ["ResNet5", "BlurPool2d", "ResNet5_Weights", "resnet5"]


# positions of the last feature map that reach the classifier, per head (28 x 28 input)
_HEADS = {"avgpool": 1, "flatten": 7 * 7}


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


class ResNet5_Weights(WeightsEnum):
    """Trained weights for :func:`resnet5`."""

    MNIST_5K = Weights(
        file_name="resnet5_mnist_5k.pt",
        meta=mnist_5k_meta(
            0.9868,
            77_290,
            recipe("mnist", "resnet5", epochs=20, batch_size=64, max_shift=2),
            builder_kwargs={"head": "avgpool"},
        ),
    )
    MNIST_5K_FLATTEN = Weights(
        file_name="resnet5_mnist_5k_flatten.pt",
        meta=mnist_5k_meta(
            0.9896,
            108_010,
            recipe("mnist", "resnet5", "MNIST_5K_FLATTEN", epochs=20, batch_size=64, max_shift=2),
            builder_kwargs={"head": "flatten"},
        ),
    )
    MNIST_5K_ANTIALIAS = Weights(
        file_name="resnet5_mnist_5k_antialias.pt",
        meta=mnist_5k_meta(
            0.9879,
            77_290,
            recipe("mnist", "resnet5", "MNIST_5K_ANTIALIAS", epochs=20, batch_size=64, max_shift=2),
            builder_kwargs={"head": "avgpool", "antialias": True},
        ),
    )
    MNIST_5K_FLATTEN_ANTIALIAS = Weights(
        file_name="resnet5_mnist_5k_flatten_antialias.pt",
        meta=mnist_5k_meta(
            0.9882,
            108_010,
            recipe("mnist", "resnet5", "MNIST_5K_FLATTEN_ANTIALIAS", epochs=20, batch_size=64, max_shift=2),
            builder_kwargs={"head": "flatten", "antialias": True},
        ),
    )
    #: The flatten head trained against PGD L2 perturbations of radius 2 (the largest of
    #: 2 and 2.5 within a point of MNIST_5K_FLATTEN's clean accuracy, as the SimpleCNN's
    #: epsilon was chosen; the recipe otherwise MNIST_5K_FLATTEN's): its fills read as
    #: digits (experiments/robust_training.py, docs/reproduction/robust.md).
    MNIST_5K_FLATTEN_ROBUST = Weights(
        file_name="resnet5_mnist_5k_flatten_robust.pt",
        meta=mnist_5k_meta(
            0.9849,
            108_010,
            recipe(
                "mnist",
                "resnet5",
                "MNIST_5K_FLATTEN_ROBUST",
                epochs=20,
                batch_size=64,
                max_shift=2,
                attack=PGD("l2", 2.0, steps=7, warmup=0.2).as_meta(),
            ),
            builder_kwargs={"head": "flatten"},
            robust_accuracy=robust_accuracy_meta(l2=(0.922, 0.923), linf=(0.935, 0.936)),
        ),
    )
    FASHION_MNIST = Weights(
        file_name="resnet5_fashion_mnist.pt",
        meta={
            "dataset": "Fashion-MNIST",
            "training_split": FASHION_MNIST_SPLIT,
            "t10k_accuracy": 0.9232,
            "num_params": 77_290,
            "input_range": (0.0, 1.0),
            "categories": FASHION_MNIST_CLASSES,
            "builder_kwargs": {"head": "avgpool"},
            "recipe": recipe("fashion-mnist", "resnet5", epochs=12, batch_size=128, max_shift=0),
        },
    )
    FASHION_MNIST_ANTIALIAS = Weights(
        file_name="resnet5_fashion_mnist_antialias.pt",
        meta={
            "dataset": "Fashion-MNIST",
            "training_split": FASHION_MNIST_SPLIT,
            "t10k_accuracy": 0.9244,
            "num_params": 77_290,
            "input_range": (0.0, 1.0),
            "categories": FASHION_MNIST_CLASSES,
            "builder_kwargs": {"head": "avgpool", "antialias": True},
            "recipe": recipe(
                "fashion-mnist", "resnet5", "FASHION_MNIST_ANTIALIAS", epochs=12, batch_size=128, max_shift=0
            ),
        },
    )
    #: The Fashion-MNIST recipe trained against one-step L2 perturbations of radius 1
    #: from a random start (fast adversarial training): chosen on the validation images
    #: as the only epsilon and recipe within 5 points of FASHION_MNIST's clean accuracy
    #: (experiments/robust_training.py, docs/reproduction/robust.md).
    FASHION_MNIST_ROBUST = Weights(
        file_name="resnet5_fashion_mnist_robust.pt",
        meta={
            "dataset": "Fashion-MNIST",
            "training_split": FASHION_MNIST_SPLIT,
            "t10k_accuracy": 0.8778,
            "num_params": 77_290,
            "input_range": (0.0, 1.0),
            "categories": FASHION_MNIST_CLASSES,
            "builder_kwargs": {"head": "avgpool"},
            "recipe": recipe(
                "fashion-mnist",
                "resnet5",
                "FASHION_MNIST_ROBUST",
                epochs=12,
                batch_size=128,
                max_shift=0,
                attack=PGD("l2", 1.0, steps=1, warmup=0.2).as_meta(),
            ),
            "robust_accuracy": robust_accuracy_meta(l2=(0.726, 0.724), linf=(0.523, 0.526)),
        },
    )
    DEFAULT = FASHION_MNIST


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
    return build_model(ResNet5, weights, in_channels, num_classes, **kwargs)


# the flatten head: the better MNIST ResNet5 by every check (docs/reproduction/README.md);
# the average-pool weights run with weights="MNIST_5K"
register_shipped_model(ShippedModel("mnist", "resnet5", resnet5, ResNet5_Weights.MNIST_5K_FLATTEN, "ResNet5"))
register_shipped_model(ShippedModel("fashion-mnist", "resnet5", resnet5, ResNet5_Weights.FASHION_MNIST, "ResNet5"))
