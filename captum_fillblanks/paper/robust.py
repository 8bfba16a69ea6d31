"""Robust training and its attack: projected gradient descent (PGD) in an L2 or L-inf ball.

A model trained on images pushed to their worst within a small ball (Madry et al. 2018,
"Towards deep learning models resistant to adversarial attacks") has input gradients
that look like its classes (Tsipras et al. 2019; Santurkar et al. 2019): the fill, an
average of such gradients, then draws the class. :class:`PGD` is the attack both for
training (:func:`~captum_fillblanks.paper.training.train_model`'s ``attack=``) and for
measuring robust accuracy (:func:`robust_accuracy`); one step with a random start is
"fast adversarial training" (Wong et al. 2020).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import functional as F

__all__ = ["PGD", "robust_accuracy", "art_robust_accuracy"]

_NORMS = ("l2", "linf")


@dataclass(frozen=True)
class PGD:
    """Projected gradient ascent on the cross-entropy within a ball around each image.

    Each of ``steps`` steps moves the images along the loss gradient (L2: the gradient
    scaled to length ``step_size``; L-inf: its sign times ``step_size``), then projects
    the change back into the ball of radius ``epsilon`` and the images into
    ``input_range``. With ``random_start`` the first point is a random one on the
    ball's surface (L2: a Gaussian direction scaled to ``epsilon``; L-inf: uniform in
    the cube), drawn from the caller's generator.

    Args:
        norm (str): ``"l2"`` or ``"linf"``.
        epsilon (float): The ball's radius, in the images' units (for MNIST in [0, 1],
            an L2 radius of 2 is a few strokes' worth of change; L-inf 0.3 is the
            classic setting).
        steps (int, optional): Gradient steps. Default: 7.
        step_size (float, optional): Length of one step. Default: ``None``, that is
            ``2.5 * epsilon / steps`` (enough to cross the ball and come back), or
            ``1.25 * epsilon`` for one step (fast adversarial training).
        random_start (bool, optional): Start from a random point of the ball.
            Default: True.
        warmup (float, optional): Training only: the radius grows linearly from 0 to
            ``epsilon`` over this fraction of the training steps. Default: 0.
        input_range (tuple of float, optional): Where image values live; attacked
            images are clamped into it. Default: ``(0.0, 1.0)``.
    """

    norm: str
    epsilon: float
    steps: int = 7
    step_size: float | None = None
    random_start: bool = True
    warmup: float = 0.0
    input_range: tuple[float, float] = (0.0, 1.0)

    def __post_init__(self) -> None:
        if self.norm not in _NORMS:
            raise ValueError(f"PGD norm must be one of {_NORMS}, got {self.norm!r}")
        checks = (
            ("epsilon", self.epsilon, lambda v: isinstance(v, (int, float)) and v > 0, "a number > 0"),
            ("steps", self.steps, lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 1, "an int >= 1"),
            (
                "step_size",
                self.step_size,
                lambda v: v is None or (isinstance(v, (int, float)) and v > 0),
                "None or a number > 0",
            ),
            ("warmup", self.warmup, lambda v: isinstance(v, (int, float)) and 0 <= v < 1, "a fraction in [0, 1)"),
        )
        for name, value, valid, expected in checks:
            if not valid(value):
                raise ValueError(f"PGD {name} must be {expected}, got {value!r}")
        low, high = self.input_range
        if not low < high:
            raise ValueError(f"PGD input_range must be (low, high) with low < high, got {self.input_range!r}")

    @property
    def step(self) -> float:
        """The step size in use (``step_size``, or its default)."""
        if self.step_size is not None:
            return float(self.step_size)
        return 1.25 * self.epsilon if self.steps == 1 else 2.5 * self.epsilon / self.steps

    def as_meta(self) -> dict[str, Any]:
        """The attack as plain values, for a weights file's ``meta`` (``PGD(**meta)``
        builds it again)."""
        return {**asdict(self), "input_range": tuple(self.input_range)}

    def __str__(self) -> str:
        start = ", random start" if self.random_start else ""
        name = "L2" if self.norm == "l2" else "L-inf"
        return f"PGD {name}, epsilon {self.epsilon:g}, {self.steps} steps of {self.step:.3g}{start}"

    def perturb(
        self,
        model: nn.Module,
        images: Tensor,
        labels: Tensor,
        *,
        generator: torch.Generator | None = None,
        epsilon: float | None = None,
    ) -> Tensor:
        """``images`` moved within the ball to raise ``model``'s cross-entropy on
        ``labels``.

        The model's parameters' ``.grad`` is left alone and its mode is the caller's
        (training attacks the model in eval mode: see :func:`~.training.train_model`). The random
        start is drawn on the CPU from ``generator`` (device-independent) and moved to
        the images' device.

        Args:
            epsilon (float, optional): A radius other than ``self.epsilon`` (the
                warm-up's). Default: ``self.epsilon``.

        Returns:
            Tensor: The attacked images, detached, shaped like ``images``.
        """
        epsilon = self.epsilon if epsilon is None else float(epsilon)
        low, high = self.input_range
        images = images.detach()
        if epsilon <= 0:
            return images.clone()
        step = self.step * epsilon / self.epsilon
        if self.random_start:
            if self.norm == "l2":
                direction = torch.randn(images.shape, generator=generator)
                delta = epsilon * direction / _norms(direction).clamp_min(1e-12)
            else:
                delta = epsilon * (2 * torch.rand(images.shape, generator=generator) - 1)
            delta = delta.to(images.device, images.dtype)
        else:
            delta = torch.zeros_like(images)
        adversarial = (images + delta).clamp(low, high)
        for _ in range(self.steps):
            adversarial.requires_grad_(True)
            with torch.enable_grad():
                loss = F.cross_entropy(model(adversarial), labels, reduction="sum")
                # the gradient of the images alone: the parameters' .grad is not touched
                (gradient,) = torch.autograd.grad(loss, adversarial)
            with torch.no_grad():
                if self.norm == "l2":
                    moved = adversarial + step * gradient / _norms(gradient).clamp_min(1e-12)
                    delta = moved - images
                    delta = delta * (epsilon / _norms(delta).clamp_min(1e-12)).clamp(max=1.0)
                else:
                    moved = adversarial + step * gradient.sign()
                    delta = (moved - images).clamp(-epsilon, epsilon)
                adversarial = (images + delta).clamp(low, high)
        return adversarial.detach()


def _norms(values: Tensor) -> Tensor:
    """Each example's L2 norm, shaped to broadcast over the example."""
    return values.flatten(1).norm(dim=1).reshape(-1, *[1] * (values.dim() - 1))


def robust_accuracy(
    model: nn.Module,
    images: Tensor,
    labels: Tensor,
    attack: PGD,
    *,
    batch_size: int = 500,
    seed: int = 0,
) -> float:
    """The fraction of ``images`` that ``model`` still classifies as ``labels`` after
    ``attack`` (an image it already gets wrong counts as broken). The model is attacked
    in eval mode and left in the mode it was in; the random starts come from ``seed``.

    Returns:
        float: Robust accuracy in ``[0, 1]``.
    """
    if len(images) != len(labels) or len(images) == 0:
        raise ValueError(
            f"robust_accuracy() needs as many labels as images, at least one; got {len(images)} images and "
            f"{len(labels)} labels"
        )
    device = next(model.parameters()).device
    generator = torch.Generator().manual_seed(seed)
    correct = 0
    with _in_eval_mode(model):
        for start in range(0, len(images), batch_size):
            batch = images[start : start + batch_size].to(device)
            truth = labels[start : start + batch_size].to(device)
            attacked = attack.perturb(model, batch, truth, generator=generator)
            with torch.no_grad():
                correct += int((model(attacked).argmax(1) == truth).sum())
    return correct / len(images)


@contextmanager
def _in_eval_mode(model: nn.Module) -> Iterator[None]:
    """``model`` in eval mode inside the block, in the mode it was in after it."""
    was_training = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(was_training)


def art_robust_accuracy(
    model: nn.Module,
    images: Tensor,
    labels: Tensor,
    attack: PGD,
    *,
    restarts: int = 1,
    batch_size: int = 500,
    seed: int = 0,
) -> float:
    """Robust accuracy under the Adversarial Robustness Toolbox's PGD: an attack we did
    not write, to check :func:`robust_accuracy` (our PGD) against.

    ``ProjectedGradientDescent`` of ``art.attacks.evasion`` with ``attack``'s norm,
    ``epsilon``, step size and steps, ``restarts`` random starts (ART keeps, per image,
    the start whose result fools the model), on a ``PyTorchClassifier`` with clip
    values ``attack.input_range``. Needs the optional extra ``robust``
    (``pip install "captum-fillblanks[robust]"``). ART draws its random starts from
    NumPy's global state: it is seeded with ``seed`` and given back afterwards, as
    torch's.

    Returns:
        float: Robust accuracy in ``[0, 1]``.
    """
    try:
        from art.attacks.evasion import ProjectedGradientDescent
        from art.estimators.classification import PyTorchClassifier
    except ImportError as error:
        raise ImportError(
            "art_robust_accuracy needs the Adversarial Robustness Toolbox: pip install 'captum-fillblanks[robust]'"
        ) from error
    import numpy as np

    device = next(model.parameters()).device
    state = np.random.get_state()
    with _in_eval_mode(model), torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        with torch.no_grad():
            n_classes = model(images[:1].to(device)).shape[1]
        classifier = PyTorchClassifier(
            model,
            loss=nn.CrossEntropyLoss(),
            input_shape=tuple(images.shape[1:]),
            nb_classes=n_classes,
            clip_values=attack.input_range,
            device_type="gpu" if device.type == "cuda" else "cpu",
        )
        pgd = ProjectedGradientDescent(
            classifier,
            norm=2 if attack.norm == "l2" else np.inf,
            eps=attack.epsilon,
            eps_step=attack.step,
            max_iter=attack.steps,
            num_random_init=restarts if attack.random_start else 0,
            batch_size=batch_size,
            verbose=False,
        )
        try:
            np.random.seed(seed)
            torch.manual_seed(seed)
            attacked = pgd.generate(x=images.cpu().numpy(), y=labels.cpu().numpy())
            predicted = classifier.predict(attacked, batch_size=batch_size).argmax(1)
        finally:
            np.random.set_state(state)
    return float((torch.from_numpy(predicted) == labels.cpu()).double().mean())
