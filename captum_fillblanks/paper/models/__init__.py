"""Reference classifiers for the paper's experiments, with trained weights in the package.

The paper probes "a simple three-layered CNN" trained on MNIST (Figs. 1-2) and a small
ResNet, "ResNet5", trained on Fashion-MNIST (Fig. 2) and MNIST (Table 1). This module
gives both as torchvision-style builders, with LeNet-5 (the readability checks' judge)
and the tweet sentiment classifier of the text kit (:func:`tweet_transformer`)::

    model = simple_cnn(weights="DEFAULT")          # SimpleCNN_Weights.MNIST_5K
    model = resnet5(weights=ResNet5_Weights.MNIST_5K)
    model = shipped_model("tweets").build()        # TweetTransformer_Weights.TWEETS

Every image model takes raw pixels in ``[0, 1]`` (no mean/std normalization), shape
``(batch, 1, 28, 28)``, and returns ``(batch, 10)`` logits. Trained weights are files
inside the package, loaded offline; a builder given weights returns the model in eval
mode. ``captum-fillblanks train`` rebuilds each file (see ``meta["recipe"]``).
"""

from ._api import (
    DEFAULT_ARCH,
    JUDGE_ARCH,
    MODELS,
    ShippedModel,
    Weights,
    WeightsEnum,
    list_shipped_models,
    shipped_model,
    shipped_weights,
)

# imported in registry order: MODELS lists the models as these modules register them
from .simple_cnn import SimpleCNN, SimpleCNN_Weights, simple_cnn  # isort: skip
from .resnet5 import BlurPool2d, ResNet5, ResNet5_Weights, resnet5  # isort: skip
from .lenet5 import LeNet5, LeNet5_Weights, lenet5  # isort: skip
from .tweet_transformer import TweetTransformer, TweetTransformer_Weights, tweet_transformer  # isort: skip

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
    "TweetTransformer",
    "TweetTransformer_Weights",
    "tweet_transformer",
    "JUDGE_ARCH",
    "ShippedModel",
    "MODELS",
    "DEFAULT_ARCH",
    "shipped_model",
    "list_shipped_models",
    "shipped_weights",
]
