"""Data-set runs on ``torch.distributed``: one process per device, started by ``torchrun``.

:func:`launch` reads torchrun's environment (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``),
picks this rank's device (``cuda:LOCAL_RANK`` where CUDA is present, else the CPU) and
joins the process group with the backend that device needs (NCCL for CUDA, gloo for the
CPU). Without torchrun it returns a single rank and starts nothing, so every caller runs
the same code with one process or many.

The work is split by item, not by rank: the caller fixes the items (shards of images,
each with its own seed) from its arguments, and :meth:`Ranks.share` deals them out. The
result of an item does not depend on which rank computed it, so it does not depend on
the number of processes either.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar

import torch
import torch.distributed as dist

__all__ = ["Ranks", "launch", "resolve_device", "finish"]

T = TypeVar("T")

# torchrun's variables; a process group needs all of them (MASTER_ADDR/PORT too)
_ENV = ("RANK", "WORLD_SIZE", "LOCAL_RANK")


@dataclass(frozen=True)
class Ranks:
    """This process's place in the run: ``rank`` of ``world_size`` (one when not started
    by torchrun), and ``local_rank`` on its machine. The collectives below are no-ops
    with one rank."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        """Rank 0: the one that chooses, writes the report and shows progress."""
        return self.rank == 0

    def share(self, items: Sequence[T]) -> list[T]:
        """This rank's items: every ``world_size``-th, starting at ``rank``."""
        return list(items[self.rank :: self.world_size])

    def barrier(self) -> None:
        if self.world_size > 1:
            dist.barrier()

    def broadcast(self, value: T) -> T:
        """Rank 0's ``value``, on every rank (any picklable object)."""
        if self.world_size == 1:
            return value
        box = [value if self.is_main else None]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def gather(self, value: T) -> list[T]:
        """Every rank's ``value``, in rank order, on every rank."""
        if self.world_size == 1:
            return [value]
        values: list[Any] = [None] * self.world_size
        dist.all_gather_object(values, value)
        return values

    def check(self, step: Callable[[], T]) -> T:
        """Run ``step`` on every rank; if it raised ``ValueError`` on any, raise it on all.

        A check that fails on one rank only would leave the others waiting at the next
        collective; this way every rank stops with the same message (prefixed with the
        ranks it failed on)."""
        try:
            result, failure = step(), None
        except ValueError as error:
            result, failure = None, str(error)
        failures = self.gather(failure)
        failed = [(rank, message) for rank, message in enumerate(failures) if message is not None]
        if failed:
            if self.world_size == 1:
                raise ValueError(failed[0][1])
            ranks = ", ".join(str(rank) for rank, _ in failed)
            raise ValueError(f"on rank {ranks} of {self.world_size}: {failed[0][1]}")
        return result


def resolve_device(device: str | None, ranks: Ranks) -> torch.device:
    """This rank's device. ``None`` (or ``"auto"``) means CUDA where present, else the
    CPU; ``"cuda"`` without an index means ``cuda:LOCAL_RANK``, one device per process
    on each machine. An explicit index is taken as given."""
    if device in (None, "auto"):
        device = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as error:
        raise ValueError(f"device={device!r} is not a torch device ({error}); give cpu, cuda or cuda:N") from None
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={device!r} asks for CUDA, but this machine has no CUDA device; give cpu")
    if resolved.type == "cuda" and resolved.index is None:
        resolved = torch.device("cuda", ranks.local_rank)
    return resolved


def launch(device: str | None = None, timeout: timedelta = timedelta(minutes=30)) -> tuple[Ranks, torch.device]:
    """This process's :class:`Ranks` and device, joining the default process group when
    started by torchrun with more than one process (and none is initialized yet).

    ``device`` as in :func:`resolve_device`. The backend is NCCL when the device is a
    CUDA device and gloo otherwise. ``timeout`` bounds every collective: a rank that
    waits longer for the others fails rather than hangs (torchrun then stops the run).
    Long waits (a rank that finished its shards waiting for the slowest) are spent
    polling the shared folder, not in a collective, so the timeout bounds only the
    short exchanges; a rank that fails does not make the others wait, since torchrun
    stops them all.
    """
    if dist.is_available() and dist.is_initialized():
        ranks = Ranks(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", 0)))
        return ranks, resolve_device(device, ranks)
    found = {name: os.environ.get(name) for name in _ENV}
    if found["WORLD_SIZE"] is None or int(found["WORLD_SIZE"]) == 1:
        ranks = Ranks(local_rank=int(found["LOCAL_RANK"] or 0))
        return ranks, resolve_device(device, ranks)
    missing = [name for name, value in found.items() if value is None]
    if missing:
        raise ValueError(
            f"WORLD_SIZE={found['WORLD_SIZE']} is set but {', '.join(missing)} is not; start the "
            "processes with torchrun (it sets all of them), not by hand"
        )
    ranks = Ranks(int(found["RANK"]), int(found["WORLD_SIZE"]), int(found["LOCAL_RANK"]))
    resolved = resolve_device(device, ranks)
    if resolved.type == "cuda":
        if resolved.index >= torch.cuda.device_count():
            raise ValueError(
                f"rank {ranks.rank} would run on {resolved} but this machine has "
                f"{torch.cuda.device_count()} CUDA device(s); start at most that many processes per "
                "machine (--nproc-per-node)"
            )
        torch.cuda.set_device(resolved)
    backend = "nccl" if resolved.type == "cuda" else "gloo"
    dist.init_process_group(backend, timeout=timeout, **({"device_id": resolved} if backend == "nccl" else {}))
    return ranks, resolved


def finish() -> None:
    """Leave the process group, if :func:`launch` or the caller joined one."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
