"""Sums across the ranks of a ``torch.distributed`` process group, when there is one.

The estimators never need a process group; only the functions that add results over a
data set (per-class fills, confusion matrices) use these, so that a loop over a loader
built with ``DistributedSampler`` gives every rank the total of all ranks.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import Tensor


def process_group_active() -> bool:
    """Whether a default process group is initialized (and there is more than this rank)."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def all_reduce_sum(tensor: Tensor) -> Tensor:
    """``tensor`` summed over all ranks of the default group, on ``tensor``'s device.

    NCCL reduces only CUDA tensors, so under NCCL the sum goes through this rank's
    current CUDA device; gloo reduces CPU tensors. Every rank must call it, in the same
    order, with tensors of the same shape and dtype. Without a process group it returns
    ``tensor`` unchanged."""
    if not process_group_active():
        return tensor
    if dist.get_backend() == "nccl":
        through = torch.device("cuda", torch.cuda.current_device())
    else:
        through = torch.device("cpu")
    total = tensor.detach().to(through, copy=True)
    dist.all_reduce(total, op=dist.ReduceOp.SUM)
    return total.to(tensor.device)
