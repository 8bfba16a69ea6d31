"""Seeded training and evaluation for the reference models.

This is what ``captum-fillblanks train`` runs to rebuild the shipped weights. With the
same seed, data, model initialization, device and number of threads, training gives
the same weights bit for bit.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import torch
from torch import Tensor, nn
from torch.nn import functional as F
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from ..attr.masks import random_patch_masks
from .robust import PGD

__all__ = ["train_model", "evaluate_accuracy", "random_shift", "random_blanks", "random_token_blanks"]


def _batches(
    data: Dataset | tuple[Tensor, Tensor], batch_size: int, generator: torch.Generator
) -> Iterator[tuple[Tensor, Tensor]]:
    """One epoch of shuffled ``(images, labels)`` batches."""
    if isinstance(data, Dataset):
        yield from DataLoader(data, batch_size=batch_size, shuffle=True, generator=generator)
        return
    images, labels = data
    order = torch.randperm(len(images), generator=generator)
    for start in range(0, len(order), batch_size):
        chosen = order[start : start + batch_size]
        yield images[chosen], labels[chosen]


def random_shift(images: Tensor, max_shift: int, generator: torch.Generator) -> Tensor:
    """Moves each image by up to ``max_shift`` pixels along each axis, filling with zeros."""
    height, width = images.shape[-2:]
    padded = F.pad(images, [max_shift] * 4)
    top, left = torch.randint(0, 2 * max_shift + 1, (2, len(images)), generator=generator).tolist()
    return torch.stack([padded[i, ..., t : t + height, s : s + width] for i, (t, s) in enumerate(zip(top, left))])


def random_blanks(images: Tensor, probability: float, generator: torch.Generator) -> Tensor:
    """Blanks (sets to 0) a random 25 % of the 2 x 2 patches, MaskFill's default masks,
    in each image with the given probability."""
    chosen = torch.rand(len(images), generator=generator) < probability
    masks = random_patch_masks(len(images), *images.shape[-2:], generator=generator)
    masks[~chosen] = 1
    return images * masks[:, None]


def random_token_blanks(
    token_ids: Tensor,
    probability: float,
    mask_token_id: int,
    generator: torch.Generator,
    blank_ratio: tuple[float, float] = (0.15, 0.25),
) -> Tensor:
    """Replaces some real tokens by ``mask_token_id``, in each text with the given probability.

    A chosen text with ``n`` real (non-zero) ids gets ``round(r * n)`` of them, picked at
    random, replaced; ``r`` is drawn per text, uniformly in ``blank_ratio``. Padding (id 0)
    stays.
    """
    chosen = torch.rand(len(token_ids), generator=generator) < probability
    low, high = blank_ratio
    ratios = low + (high - low) * torch.rand(len(token_ids), generator=generator)
    real = token_ids != 0
    n_blanks = (ratios * real.sum(1)).round() * chosen
    # the real tokens in a random order, first; the first n_blanks of them are blanked
    scores = torch.rand(token_ids.shape, generator=generator).masked_fill(~real, 2.0)
    rank = scores.argsort(1).argsort(1)
    return token_ids.masked_fill(rank < n_blanks[:, None], mask_token_id)


def _check_data(data: Dataset | tuple[Tensor, Tensor]) -> Dataset | tuple[Tensor, Tensor]:
    if isinstance(data, Dataset):
        return data
    if (
        isinstance(data, (tuple, list))
        and len(data) == 2
        and all(isinstance(part, Tensor) for part in data)
        and len(data[0]) == len(data[1])
    ):
        return tuple(data)
    raise TypeError(
        "train_model() expects a Dataset of (image tensor, label) items, or a tuple "
        f"(images, labels) of tensors with as many labels as images; got {type(data).__name__}."
    )


def train_model(
    model: nn.Module,
    train_data: Dataset | tuple[Tensor, Tensor],
    *,
    epochs: int,
    batch_size: int = 64,
    lr: float = 3e-3,
    seed: int = 0,
    max_shift: int = 0,
    mask_augment: float = 0.0,
    mask_token_id: int | None = None,
    noise_std: float = 0.0,
    attack: PGD | None = None,
    show_progress: bool = True,
) -> nn.Module:
    """Trains a classifier with cross-entropy, Adam and a cosine learning-rate decay.

    The learning rate starts at ``lr`` and falls to zero along a half cosine over all
    steps. ``seed`` fixes the order of the batches and any randomness inside the model
    (dropout) without touching the caller's global random state; the initial weights
    are the caller's, so seed before building the model for a fully reproducible run.

    Args:
        model (nn.Module): The classifier, returning logits; trained in place on the
            device its parameters are on.
        train_data (Dataset or (Tensor, Tensor)): Training images and int labels: a
            ``Dataset`` of ``(image tensor, label)`` items, or the tensors
            ``(images, labels)`` as :func:`captum_fillblanks.paper.data.load_tensors` gives
            them (faster); with ``mask_token_id``, the tensors ``(token_ids, labels)``.
        epochs (int): Passes over the training data.
        batch_size (int, optional): Images per step. Default: 64.
        lr (float, optional): Peak learning rate. Default: 3e-3.
        seed (int, optional): Seed for the batch order and the shifts. Default: 0.
        max_shift (int, optional): Augment each training image with a random
            translation by up to this many pixels along each axis, the uncovered border
            set to 0 (the background of MNIST-like data). Default: 0 (no augmentation).
        mask_augment (float, optional): The fraction of training images (drawn per
            image, after the shift) that get one random mask of the kind
            :class:`~captum_fillblanks.attr.MaskFill` draws by default: a quarter of
            the 2 x 2 patches set to 0. A model trained so keeps its answer on a
            masked copy, which the fill's ``selection="correct"`` and the paper's
            consistency test (Table 1) lean on. Default: 0 (no masks; the random draws
            are then exactly those of a run without this option).
        mask_token_id (int, optional): Says that the inputs are token ids, padded with
            0 on the right, rather than images: ``mask_augment`` then replaces a random
            15-25 % of a text's real tokens by this id (:func:`random_token_blanks`)
            instead of blanking patches, and each batch is cut after its longest text
            (the model must not depend on the padding after a text). Default: None.
        noise_std (float, optional): Gaussian-noise augmentation: add noise of this
            standard deviation to every training image (after the shift and mask; not
            clamped). Default: 0 (none; the random draws are those of a run without it).
        attack (PGD, optional): Adversarial training: train on the images as
            ``attack`` leaves them (after the shift, mask and noise), each batch attacked
            with the model in eval mode (batch norm's statistics are not updated by the
            attack), its radius warmed up over ``attack.warmup`` of the steps. Default:
            None (clean training).
        show_progress (bool, optional): Show a tqdm progress bar. Default: True.

    Returns:
        nn.Module: ``model`` itself, trained, in eval mode.

    Examples::

        >>> from captum_fillblanks.paper.data import load_tensors
        >>> from captum_fillblanks.paper.models import simple_cnn
        >>> images, labels = load_tensors("mnist", "data/mnist")
        >>> _ = torch.manual_seed(0)
        >>> model = train_model(simple_cnn(), (images, labels), epochs=1, show_progress=False)
    """
    train_data = _check_data(train_data)
    for name, value in (("epochs", epochs), ("batch_size", batch_size)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"train_model() got {name}={value!r}; expected an int >= 1.")
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**63:
        raise ValueError(f"train_model() got seed={seed!r}; expected an int in [0, 2**63).")
    if not (isinstance(mask_augment, (int, float)) and 0 <= mask_augment <= 1):
        raise ValueError(f"train_model() got mask_augment={mask_augment!r}; expected a fraction in [0, 1].")
    if isinstance(noise_std, bool) or not (isinstance(noise_std, (int, float)) and noise_std >= 0):
        raise ValueError(f"train_model() got noise_std={noise_std!r}; expected a number >= 0.")
    if attack is not None and not isinstance(attack, PGD):
        raise TypeError(f"train_model() got attack={attack!r}; expected a PGD or None.")
    if mask_token_id is not None and (noise_std > 0 or attack is not None):
        raise ValueError("train_model(): noise_std and attack apply to images, not to token ids (mask_token_id)")
    device = next(model.parameters()).device
    n_images = len(train_data) if isinstance(train_data, Dataset) else len(train_data[0])
    total_steps = epochs * math.ceil(n_images / batch_size)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total_steps)
    generator = torch.Generator().manual_seed(seed)
    model.train()
    step = 0
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(seed)
        with tqdm(total=total_steps, desc="training", disable=not show_progress) as progress:
            for epoch in range(epochs):
                for inputs, labels in _batches(train_data, batch_size, generator):
                    if max_shift > 0:
                        inputs = random_shift(inputs, max_shift, generator)
                    if mask_token_id is not None:
                        inputs = inputs[:, : max(1, int((inputs != 0).sum(1).max()))]
                        if mask_augment > 0:
                            inputs = random_token_blanks(inputs, mask_augment, mask_token_id, generator)
                    elif mask_augment > 0:
                        inputs = random_blanks(inputs, mask_augment, generator)
                    if noise_std > 0:
                        inputs = inputs + noise_std * torch.randn(inputs.shape, generator=generator)
                    inputs, labels = inputs.to(device), labels.to(device)
                    if attack is not None:
                        model.eval()
                        warm = step / (attack.warmup * total_steps) if attack.warmup > 0 else 1.0
                        epsilon = attack.epsilon * min(1.0, warm)
                        inputs = attack.perturb(model, inputs, labels, generator=generator, epsilon=epsilon)
                        model.train()
                    loss = F.cross_entropy(model(inputs), labels)
                    optimizer.zero_grad()
                    loss.backward()
                    optimizer.step()
                    schedule.step()
                    progress.set_postfix(epoch=epoch + 1, loss=f"{loss.item():.3f}", refresh=False)
                    progress.update()
                    step += 1
    return model.eval()


@torch.no_grad()
def evaluate_accuracy(model: nn.Module, images: Tensor, labels: Tensor, batch_size: int = 1000) -> float:
    """The fraction of ``images`` that ``model`` classifies as ``labels``.

    Args:
        model (nn.Module): A classifier returning logits; evaluated in eval mode, and
            left in the mode it was in.
        images (Tensor): Inputs, batch first.
        labels (Tensor): Integer labels, one per image.
        batch_size (int, optional): Images per forward pass. Default: 1000.

    Returns:
        float: Accuracy in ``[0, 1]``.
    """
    if len(images) != len(labels) or len(images) == 0:
        raise ValueError(
            f"evaluate_accuracy() needs as many labels as images, at least one; "
            f"got {len(images)} images and {len(labels)} labels."
        )
    was_training = model.training
    device = next(model.parameters()).device
    model.eval()
    correct = 0
    for start in range(0, len(images), batch_size):
        logits = model(images[start : start + batch_size].to(device))
        correct += (logits.argmax(1).cpu() == labels[start : start + batch_size].cpu()).sum().item()
    model.train(was_training)
    return correct / len(images)
