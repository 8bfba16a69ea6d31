"""The units a mask blanks in one call: patches of images, single elements of other
inputs, or the groups of a Captum ``feature_mask``. A 4-D input ``(B, C, H, W)`` is an
image, blanked by square patches shared over its channels; an input of any other rank has
no spatial layout to follow, so each element is its own unit.

A unit map gives each element of an input the index of its unit; the samplers of
:mod:`~captum_fillblanks.attr.masks` draw blank units, and the unit map turns them into
blank elements.
"""

from __future__ import annotations

import math
import warnings
from typing import Any, NamedTuple

import torch
from torch import Tensor

from ._captum_compat import format_tensor_into_tuples
from ._checks import broadcasts_to
from ._problem import caller_stacklevel
from .masks import patch_grid

__all__ = [
    "Units",
    "unit_maps",
    "default_unit_maps",
    "feature_unit_maps",
    "shared_feature_masks",
    "FINE_PATCHES_PER_SIDE",
]


class Units(NamedTuple):
    """The units a mask blanks, for one call: per input a unit map (unit index of each
    element, broadcastable to the input), the group of units it draws from, and the
    number of units in each group."""

    maps: tuple[Tensor, ...]
    groups: tuple[int, ...]
    n_units: tuple[int, ...]


def unit_maps(inputs: tuple[Tensor, ...], feature_mask: Any, patch_size: int) -> Units:
    """The units of one call: the groups of ``feature_mask`` when given, else patches of
    4-D inputs and single elements of other inputs."""
    if feature_mask is None:
        return Units(*default_unit_maps(inputs, patch_size))
    return Units(*feature_unit_maps(feature_mask, inputs))


def default_unit_maps(
    inputs: tuple[Tensor, ...], patch_size: int
) -> tuple[tuple[Tensor, ...], tuple[int, ...], tuple[int, ...]]:
    """Units of each input when no ``feature_mask`` is given.

    4-D inputs ``(batch, C, H, W)`` get ``patch_size`` patches shared over channels; any
    other rank gets one unit per element. Each input is its own group.

    Returns ``(unit_maps, group_of_input, units_per_group)``; each unit map broadcasts to
    its input and holds unit indices.
    """
    maps = []
    for tensor in inputs:
        if tensor.dim() == 4:
            _warn_fine_patches(tensor.shape[2], tensor.shape[3], patch_size)
            grid = patch_grid(tensor.shape[2], tensor.shape[3], patch_size, device=tensor.device)
            maps.append(grid[None, None])
        else:
            numel = tensor[0].numel()
            maps.append(torch.arange(numel, device=tensor.device).reshape(1, *tensor.shape[1:]))
    return tuple(maps), tuple(range(len(inputs))), tuple(int(m.max()) + 1 for m in maps)


#: Patches along the shorter side above which a call warns: the paper's 2 x 2 patches
#: on 28 x 28 images are 14 per side, its finest (Fig. 4, 1 x 1) 28.
FINE_PATCHES_PER_SIDE = 56


def _warn_fine_patches(height: int, width: int, patch_size: int) -> None:
    per_side = min(height, width) / patch_size
    if per_side > FINE_PATCHES_PER_SIDE:
        suggested = max(1, round(min(height, width) / 14))
        warnings.warn(
            f"patch_size={patch_size} on {height} x {width} inputs makes {math.ceil(height / patch_size)} x "
            f"{math.ceil(width / patch_size)} patches per mask, each far smaller than any feature the model sees "
            f"(the paper's 2 x 2 on 28 x 28 is 1/14 of the side). For this size try patch_size={suggested} "
            "(1/14 of the side).",
            stacklevel=caller_stacklevel(),
        )


def feature_unit_maps(
    feature_mask: Any, inputs: tuple[Tensor, ...]
) -> tuple[tuple[Tensor, ...], tuple[int, ...], tuple[int, ...]]:
    """Units from a Captum ``feature_mask``: each distinct id is one unit, shared across
    the tensors of a tuple (as in ``FeatureAblation``)."""
    shaped = shared_feature_masks(feature_mask, inputs)
    ids = torch.cat([m.reshape(-1) for m in shaped])
    _, inverse = torch.unique(ids, return_inverse=True)
    maps, start = [], 0
    for mask in shaped:
        maps.append(inverse[start : start + mask.numel()].reshape(mask.shape))
        start += mask.numel()
    return tuple(maps), (0,) * len(inputs), (int(inverse.max()) + 1,)


def shared_feature_masks(feature_mask: Any, inputs: tuple[Tensor, ...]) -> tuple[Tensor, ...]:
    """A Captum ``feature_mask`` checked against ``inputs``: one integer tensor per
    input, of the input's rank with a leading dimension of 1, on its device.

    Every example of a batch walks the same mask sequence over the same units, so the
    mask must be the same for every example: a mask with a batch dimension is taken as
    its first example when all its examples are equal, and refused when they differ
    (pooling their ids into one set of units would make an example's fill depend on
    the other examples of its batch).
    """
    masks = format_tensor_into_tuples(feature_mask)
    if not isinstance(masks, tuple) or len(masks) != len(inputs):
        raise ValueError(
            f"feature_mask must give one tensor per input tensor ({len(inputs)}), "
            f"got {len(masks) if isinstance(masks, tuple) else type(feature_mask).__name__}"
        )
    shaped = []
    for i, (mask, tensor) in enumerate(zip(masks, inputs)):
        if not isinstance(mask, Tensor) or mask.is_floating_point() or mask.is_complex() or mask.dtype == torch.bool:
            given = f"dtype {mask.dtype}" if isinstance(mask, Tensor) else type(mask).__name__
            raise TypeError(f"feature_mask[{i}] must be an integer Tensor of group ids, got {given}")
        if mask.device.type == "meta":
            raise ValueError(
                f"feature_mask[{i}] is on the meta device, which holds shapes but no values; give a mask "
                "with values (e.g. feature_mask.to('cpu'))"
            )
        if mask.dim() > tensor.dim():
            raise ValueError(f"feature_mask[{i}] has more dimensions than inputs[{i}]")
        given_shape = tuple(mask.shape)
        mask = mask.reshape((1,) * (tensor.dim() - mask.dim()) + given_shape)
        if not broadcasts_to(mask.shape, tensor.shape):
            raise ValueError(
                f"feature_mask[{i}] of shape {given_shape} does not broadcast to "
                f"inputs[{i}] of shape {tuple(tensor.shape)}"
            )
        if mask.shape[0] > 1:
            differs = (mask != mask[:1]).reshape(mask.shape[0], -1).any(1).nonzero().flatten().tolist()
            if differs:
                raise ValueError(
                    f"feature_mask[{i}] of shape {given_shape} gives the {mask.shape[0]} examples different "
                    f"groups (example {differs[0]} differs from example 0), but every example of a batch "
                    "walks the same mask sequence over the same units; give one mask for all examples, "
                    f"of shape {(1, *given_shape[1:])} or {given_shape[1:]} (without the batch dimension), "
                    "or call attribute once per example"
                )
            mask = mask[:1]
        shaped.append(mask.to(tensor.device))
    return tuple(shaped)
