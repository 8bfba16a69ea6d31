"""Files the experiment kit writes and reads back, safely in a folder others can write to.

A reproduction's ``--out`` may be shared (several machines of one run write their
shards there), so nothing read back may run code and no write may follow a link that
someone planted there:

- :func:`write_atomically` writes through a fresh, uniquely named file, created
  exclusively (``O_CREAT | O_EXCL``: an existing name, a symbolic link included, is
  never opened), then renamed over the target. A rename replaces the directory entry,
  so a link planted at the target's name is replaced, not followed; a reader sees the
  old file or the whole new one, never a partial one.
- :func:`load_tensors_file` loads a torch file with ``weights_only=True``: tensors,
  numbers, strings and containers of them, never a pickled object that runs code.
"""

from __future__ import annotations

import os
import stat
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import torch

__all__ = ["PARTIAL_SUFFIX", "write_atomically", "save_tensors_file", "load_tensors_file"]

#: The suffix of a file being written; a leftover one (a killed process) is never read.
PARTIAL_SUFFIX = ".partial"

_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0)


def write_atomically(path: str | os.PathLike, write: Callable[[IO[bytes]], None]) -> Path:
    """Write ``path`` with ``write(handle)`` through a fresh file beside it, then rename.

    The temporary file is ``NAME.<random>.partial`` in the same folder, opened with
    ``O_EXCL`` (and ``O_NOFOLLOW``), with the permissions the umask gives (as ``open``
    would). If ``write`` raises, the temporary file is removed and ``path`` is left as it
    was. Returns ``path``.
    """
    path = Path(path)
    temporary = path.with_name(f"{path.name}.{uuid.uuid4().hex}{PARTIAL_SUFFIX}")
    descriptor = os.open(temporary, _FLAGS, 0o666)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            write(handle)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return path


def save_tensors_file(obj: Any, path: str | os.PathLike) -> Path:
    """``torch.save(obj)`` into ``path`` through :func:`write_atomically`."""
    return write_atomically(path, lambda handle: torch.save(obj, handle))


def load_tensors_file(path: str | os.PathLike, map_location: Any = None) -> Any:
    """``torch.load(path, weights_only=True)``: a file that holds anything but tensors,
    numbers, strings and containers of them (a pickle that would run code, say) raises
    ``pickle.UnpicklingError`` and runs nothing.

    Only a regular file is read: ``path`` is opened without blocking and refused
    (``ValueError``) if it is a FIFO, a device or a folder, which would otherwise hang
    the reader or feed it an endless stream.
    """
    descriptor = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    if not stat.S_ISREG(os.fstat(descriptor).st_mode):
        os.close(descriptor)
        raise ValueError(f"{path} is not a regular file; a saved tensors file was expected")
    with os.fdopen(descriptor, "rb") as handle:
        return torch.load(handle, map_location=map_location, weights_only=True)
