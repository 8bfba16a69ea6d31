"""Mask sampling: which units of an input are blanked.

A mask switches off whole *units*. For an image the units are the cells of a grid of
``patch_size x patch_size`` patches (the last row and column may be partial); for other
inputs they are single elements or the groups of a Captum ``feature_mask``. Everything
here works on unit indices first and maps them to pixels with a unit map, so the same
sampler serves images, tabular inputs and feature groups.

Conventions: in an *image mask* ``1`` means kept and ``0`` means blank;
in a *blank indicator* over units ``True`` means blank.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor

__all__ = [
    "n_blank_units",
    "patch_grid",
    "sample_unit_masks",
    "partition_units",
    "random_patch_masks",
    "random_partition_masks",
    "resolve_seed",
    "MaskSequence",
    "blank_stack",
    "apply_masks",
]

SeedLike = int | torch.Generator | None

# Masks are drawn in blocks of this many, each block from its own seeded generator, so
# that mask ``j`` depends only on the seed and on ``j`` (not on how callers chunk them).
_BLOCK = 256


def _check_ratio(mask_ratio: float) -> None:
    if not isinstance(mask_ratio, (int, float)) or isinstance(mask_ratio, bool):
        raise TypeError(f"mask_ratio must be a float in (0, 1), got {type(mask_ratio).__name__}")
    if not 0.0 < mask_ratio < 1.0:
        raise ValueError(f"mask_ratio must be in (0, 1) (exclusive), got {mask_ratio}")


def _check_patch_size(patch_size: int, height: int, width: int) -> None:
    if not isinstance(patch_size, int) or isinstance(patch_size, bool):
        raise TypeError(f"patch_size must be an int, got {type(patch_size).__name__}")
    if patch_size < 1:
        raise ValueError(f"patch_size must be >= 1, got {patch_size}")
    if patch_size > max(height, width):
        raise ValueError(
            f"patch_size={patch_size} is larger than the image ({height}x{width}); "
            f"use a patch_size of at most {max(height, width)}"
        )


def n_blank_units(n_units: int, mask_ratio: float) -> int:
    """Number of units one mask blanks: ``round(mask_ratio * n_units)``, at least one.

    Halves round up (``0.5 -> 1``), unlike Python's ``round``, so the count does not
    depend on the parity of ``n_units``.
    """
    _check_ratio(mask_ratio)
    if n_units < 1:
        raise ValueError(f"n_units must be >= 1, got {n_units}")
    return min(n_units, max(1, math.floor(mask_ratio * n_units + 0.5)))


def patch_grid(height: int, width: int, patch_size: int, device=None) -> Tensor:
    """Unit map of an ``height x width`` image cut into ``patch_size`` patches.

    Returns a ``(height, width)`` long tensor holding, for each pixel, the row-major
    index of its patch in the ``ceil(H/p) x ceil(W/p)`` grid.
    """
    _check_patch_size(patch_size, height, width)
    cols = math.ceil(width / patch_size)
    rows = torch.arange(height, device=device) // patch_size
    columns = torch.arange(width, device=device) // patch_size
    return rows[:, None] * cols + columns[None, :]


def sample_unit_masks(n_masks: int, n_units: int, n_blank: int, generator: torch.Generator | None = None) -> Tensor:
    """Draw ``n_masks`` blank indicators, each with exactly ``n_blank`` of ``n_units``
    units blank, uniformly over all such subsets.

    Returns a ``(n_masks, n_units)`` bool tensor on the CPU, ``True`` = blank.
    """
    if not 1 <= n_blank <= n_units:
        raise ValueError(f"n_blank must be in [1, n_units={n_units}], got {n_blank}")
    scores = torch.rand(n_masks, n_units, generator=generator)
    chosen = scores.topk(n_blank, dim=1).indices
    blank = torch.zeros(n_masks, n_units, dtype=torch.bool)
    return blank.scatter_(1, chosen, True)


def partition_units(n_units: int, n_groups: int, generator: torch.Generator | None = None) -> Tensor:
    """Split ``n_units`` units at random into ``n_groups`` disjoint groups of equal size.

    Where ``n_units`` is not a multiple of ``n_groups`` the sizes differ by at most one.
    Returns a ``(n_units,)`` long tensor holding each unit's group.
    """
    if not isinstance(n_groups, int) or n_groups < 1:
        raise ValueError(f"n_groups must be a positive int, got {n_groups!r}")
    if n_groups > n_units:
        raise ValueError(f"cannot split {n_units} units into {n_groups} non-empty groups")
    order = torch.randperm(n_units, generator=generator)
    group = torch.empty(n_units, dtype=torch.long)
    group[order] = torch.arange(n_units) * n_groups // n_units
    return group


def random_patch_masks(
    n_masks: int,
    height: int,
    width: int,
    *,
    mask_ratio: float = 0.25,
    patch_size: int = 2,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Random patch masks for ``height x width`` images.

    Each mask blanks exactly ``n_blank_units(n_patches, mask_ratio)`` patches (``eta``,
    the mask ratio; ``p``, the patch size), uniformly at random.

    Returns:
        ``(n_masks, height, width)`` float tensor, ``1`` = kept, ``0`` = blank.
    """
    grid = patch_grid(height, width, patch_size)
    n_units = int(grid.max()) + 1
    blank = sample_unit_masks(n_masks, n_units, n_blank_units(n_units, mask_ratio), generator)
    return (~blank[:, grid]).float()


def random_partition_masks(
    n_groups: int,
    height: int,
    width: int,
    *,
    patch_size: int = 2,
    generator: torch.Generator | None = None,
) -> Tensor:
    """``n_groups`` disjoint patch masks whose blanks together cover the whole image.

    Returns:
        ``(n_groups, height, width)`` float tensor, ``1`` = kept, ``0`` = blank; every
        pixel is blank in exactly one mask.
    """
    grid = patch_grid(height, width, patch_size)
    group = partition_units(int(grid.max()) + 1, n_groups, generator)
    return (group[grid][None] != torch.arange(n_groups)[:, None, None]).float()


def resolve_seed(seed: SeedLike) -> int:
    """One integer seed for a call: ``seed`` itself, or a draw from the given generator,
    or (``None``) a draw from torch's global RNG.

    An int seed must lie in ``[0, 2**63)``: a ``torch.Generator`` reads a seed modulo
    ``2**63`` (``2**63`` seeds as ``0``, ``-1`` as ``2**63 - 1``), so a seed outside
    would silently repeat another seed's masks.
    """
    if isinstance(seed, torch.Generator):
        return int(torch.randint(0, 2**62, (1,), generator=seed, device=seed.device))
    if seed is None:
        return int(torch.randint(0, 2**62, (1,)))
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"seed must be an int, a torch.Generator or None, got {type(seed).__name__}")
    if not 0 <= seed < 2**63:
        raise ValueError(
            f"seed must be an int in [0, 2**63), got {seed}: a torch.Generator wraps other seeds around "
            "onto seeds in that range, so this one would repeat another seed's masks"
        )
    return seed


class MaskSequence:
    """The reproducible sequence of blank indicators used by one attribution call.

    Mask ``j`` depends only on ``seed`` and ``j``: masks are drawn on the CPU in blocks
    of fixed size, block ``b`` from a generator seeded by ``(seed, b)``. Asking for masks
    in chunks of any size therefore gives the same masks, on any device.

    Args:
        n_units (sequence of int): units of each independently masked group (one group per
            input tensor, or one group for a shared ``feature_mask``).
        n_blank (sequence of int): units each mask blanks in each group.
        seed (int): the call's seed.
    """

    def __init__(self, n_units: Sequence[int], n_blank: Sequence[int], seed: int) -> None:
        self.n_units = tuple(n_units)
        self.n_blank = tuple(n_blank)
        self.seed = seed
        self._block_index = -1
        self._block: tuple = ()

    def _load_block(self, index: int) -> None:
        generator = torch.Generator().manual_seed((self.seed * 1_000_003 + index) % 2**63)
        self._block = tuple(
            sample_unit_masks(_BLOCK, units, blank, generator) for units, blank in zip(self.n_units, self.n_blank)
        )
        self._block_index = index

    def take(self, start: int, stop: int) -> tuple:
        """Masks ``start .. stop - 1``: one ``(stop - start, n_units)`` bool tensor per group."""
        pieces: list = [[] for _ in self.n_units]
        position = start
        while position < stop:
            index, offset = divmod(position, _BLOCK)
            if index != self._block_index:
                self._load_block(index)
            end = min(stop - position, _BLOCK - offset) + offset
            for group, block in enumerate(self._block):
                pieces[group].append(block[offset:end])
            position += end - offset
        return tuple(torch.cat(p) for p in pieces)


def blank_stack(mask: Tensor, example_shape: Sequence[int], name: str = "mask") -> Tensor:
    """A caller's mask, or stack of masks, as blank indicators: ``(n, *S)`` bool, ``True``
    = blank, where ``S`` broadcasts to ``example_shape`` (the shape of one example).

    A mask uses ``1`` = kept and ``0`` = blank. For images (``example_shape`` of
    ``(C, H, W)``) a mask is ``(H, W)``, a stack ``(n, H, W)`` or ``(n, C or 1, H, W)``,
    shared over channels where it has one; for other inputs a mask is shaped like one
    example (broadcastable) and a stack has a leading mask dimension.

    Raises:
        TypeError: ``mask`` is not a Tensor.
        ValueError: it does not fit ``example_shape``, is an empty stack, or holds
            values other than 0 and 1. The message names ``name``.
    """
    if not isinstance(mask, Tensor):
        raise TypeError(f"{name} must be a Tensor, got {type(mask).__name__}")
    example_shape = tuple(example_shape)
    rank = len(example_shape)
    if rank == 3 and mask.dim() in (2, 3):
        stack = mask.reshape(-1, 1, *mask.shape[-2:])  # spatial masks, shared over channels
    elif mask.dim() == rank + 1:
        stack = mask
    elif mask.dim() == rank:
        stack = mask[None]
    else:
        stack = None
    try:
        fits = stack is not None and torch.broadcast_shapes(stack.shape[1:], example_shape) == example_shape
    except RuntimeError:
        fits = False
    if not fits:
        raise ValueError(
            f"{name} of shape {tuple(mask.shape)} does not match one example of shape "
            f"{example_shape}: give one mask shaped like one example (for images (H, W)) "
            "or a stack with a leading mask dimension"
        )
    if stack.shape[0] == 0:
        raise ValueError(f"{name} is an empty stack: give at least one mask")
    if not bool(((stack == 0) | (stack == 1)).all()):
        raise ValueError(f"{name} must hold only 0 (blank) and 1 (kept)")
    return stack == 0


def apply_masks(inputs: Tensor, blank: Tensor, baseline: float | Tensor = 0.0) -> Tensor:
    """The masked input ``M(x) = m * x + (1 - m) * b``: ``baseline`` where ``blank`` is
    ``True``, ``inputs`` elsewhere (all broadcast together)."""
    if not isinstance(baseline, Tensor):
        baseline = torch.tensor(float(baseline))
    return torch.where(blank, baseline.to(inputs.device, inputs.dtype), inputs)
