from pathlib import Path

import pytest
import torch
from torch import nn

#: The repository, the tests folder and the shared data beside the checkout (CI has it too).
REPO = Path(__file__).resolve().parents[1]
TESTS = REPO / "tests"
SHARED_DATA = REPO.parent / "shared" / "data"


class SoftmaxRegression(nn.Module):
    """``f(x) = W x + c`` on flattened images: gradients known in closed form."""

    def __init__(self, n_inputs: int = 36, n_classes: int = 4, seed: int = 0) -> None:
        super().__init__()
        generator = torch.Generator().manual_seed(seed)
        self.linear = nn.Linear(n_inputs, n_classes)
        with torch.no_grad():
            self.linear.weight.copy_(torch.randn(n_classes, n_inputs, generator=generator))
            self.linear.bias.copy_(torch.randn(n_classes, generator=generator))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x.flatten(1))


class TinyCNN(nn.Module):
    """A small nonlinear image classifier with an optional additional argument."""

    def __init__(self, seed: int = 0) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.head = nn.Linear(4 * 36, 3)

    def forward(self, x: torch.Tensor, scale: torch.Tensor = None) -> torch.Tensor:
        h = torch.tanh(self.conv(x)).flatten(1)
        logits = self.head(h)
        return logits if scale is None else logits * scale[:, None]


class Brightness(nn.Module):
    """Class 1 when more than a quarter of the pixels are ink."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ink = x.flatten(1).mean(1)
        return torch.stack([0.25 - ink, ink - 0.25], 1)


class MultiOutput(nn.Module):
    """A small ReLU net whose output is ``(batch, 2)`` or, with ``multidim_output``,
    ``(batch, 2, 2, 2)`` (a Captum tuple target of three indices picks one value); ``shift`` is an optional
    additional forward argument added to the input."""

    def __init__(self) -> None:
        super().__init__()
        generator = torch.Generator().manual_seed(5)
        self.hidden = nn.Linear(3, 4)
        self.out = nn.Linear(4, 8)
        with torch.no_grad():
            for layer in (self.hidden, self.out):
                layer.weight.copy_(torch.randn(layer.weight.shape, generator=generator))
                layer.bias.copy_(torch.randn(layer.bias.shape, generator=generator))

    def forward(self, x: torch.Tensor, shift=None, multidim_output: bool = False) -> torch.Tensor:
        h = torch.relu(self.hidden(x if shift is None else x + shift))
        y = self.out(h)
        return y.reshape(-1, 2, 2, 2) if multidim_output else y[:, :2]


def assert_max_close(actual: torch.Tensor, expected: torch.Tensor, delta: float = 1e-6) -> None:
    """The largest absolute difference is at most ``delta`` (and the shapes agree)."""
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    diff = float((actual - expected).abs().max()) if actual.numel() else 0.0
    assert diff <= delta, f"largest difference {diff} > {delta}"


@pytest.fixture
def softmax_regression():
    return SoftmaxRegression().eval()


@pytest.fixture
def tiny_cnn():
    return TinyCNN().eval()


@pytest.fixture
def images():
    return torch.rand(3, 1, 6, 6, generator=torch.Generator().manual_seed(42))
