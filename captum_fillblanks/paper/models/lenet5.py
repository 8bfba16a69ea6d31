"""LeNet-5, the judge of the readability checks, its weights and builder."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

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
)

__all__ = ["LeNet5", "LeNet5_Weights", "lenet5"]


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


class LeNet5_Weights(WeightsEnum):
    """Trained weights for :func:`lenet5`, the judges of the readability checks: each
    trained on the same images as the data set's other shipped models, separately."""

    MNIST_5K = Weights(
        file_name="lenet5_mnist_5k.pt",
        meta=mnist_5k_meta(0.9809, 61_706, recipe("mnist", "lenet5", epochs=30, batch_size=64, max_shift=2)),
    )
    FASHION_MNIST = Weights(
        file_name="lenet5_fashion_mnist.pt",
        meta={
            "dataset": "Fashion-MNIST",
            "training_split": FASHION_MNIST_SPLIT,
            "t10k_accuracy": 0.9047,
            "num_params": 61_706,
            "input_range": (0.0, 1.0),
            "categories": FASHION_MNIST_CLASSES,
            "recipe": recipe("fashion-mnist", "lenet5", epochs=12, batch_size=128, max_shift=0),
        },
    )
    DEFAULT = MNIST_5K


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
    return build_model(LeNet5, weights, in_channels, num_classes, **kwargs)


register_shipped_model(ShippedModel("mnist", "lenet5", lenet5, LeNet5_Weights.MNIST_5K, "LeNet-5"))
register_shipped_model(ShippedModel("fashion-mnist", "lenet5", lenet5, LeNet5_Weights.FASHION_MNIST, "LeNet-5"))
