"""Execute the tutorial notebooks; exit non-zero if any cell of any of them raises.

CI runs, from the repository root, with the package installed and nbformat, nbclient,
ipykernel and ipywidgets::

    python tutorials/run_notebooks.py

Every ``tutorials/*.ipynb`` is executed with nbclient in a kernel running *this*
Python (the one that runs the script, so the kernel sees the same installed packages),
in a fresh temporary working directory, so a notebook cannot write into the
repository. The committed files are not touched unless ``--write`` is given, which
stores the fresh outputs back into them (do this after editing a notebook; the
committed outputs must come from a real run). The script prints the time each notebook
took and exits with status 1 if any cell of any notebook raised.

Options::

    python tutorials/run_notebooks.py [NOTEBOOK ...] [--write] [--timeout SECONDS]
                                      [--output-dir DIR]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from jupyter_client.kernelspec import KernelSpec, KernelSpecManager
from jupyter_client.manager import KernelManager
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

TUTORIALS = Path(__file__).resolve().parent


class _ThisPython(KernelSpecManager):
    """The ipykernel kernel of the Python running this script, whatever kernelspecs
    are installed (a user-level ``python3`` kernelspec may point at another Python)."""

    def get_kernel_spec(self, kernel_name: str) -> KernelSpec:
        from ipykernel.kernelspec import RESOURCES, get_kernel_dict

        return KernelSpec(resource_dir=RESOURCES, **get_kernel_dict())


def _kernel_manager(workdir: str) -> KernelManager:
    if os.name == "nt":  # no Unix sockets
        return KernelManager(kernel_spec_manager=_ThisPython())
    # Unix sockets in the temporary folder: no TCP ports open, nothing to eavesdrop on
    return KernelManager(kernel_spec_manager=_ThisPython(), transport="ipc", ip=str(Path(workdir) / "kernel"))


def execute(path: Path, timeout: int) -> tuple[nbformat.NotebookNode, str | None]:
    """Run one notebook in a fresh kernel; return it with its outputs, and the error."""
    notebook = nbformat.read(path, as_version=4)
    with tempfile.TemporaryDirectory(prefix="tutorial-") as workdir:
        client = NotebookClient(
            notebook,
            km=_kernel_manager(workdir),
            timeout=timeout,
            record_timing=False,  # no timestamps in committed notebooks
            resources={"metadata": {"path": workdir}},
        )
        try:
            # the client owns no kernel manager it was given: shut the kernel down here
            client.execute(cleanup_kc=True)
        except (CellExecutionError, CellTimeoutError, DeadKernelError) as error:
            return notebook, str(error)
        except Exception as error:  # the kernel did not start, or died in between
            return notebook, f"{type(error).__name__}: {error}"
    return notebook, None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "notebooks",
        nargs="*",
        type=Path,
        help="notebooks to run (default: every tutorials/*.ipynb)",
    )
    parser.add_argument(
        "--write",
        action="store_true",
        help="store the fresh outputs back into the notebooks (only those that ran cleanly)",
    )
    parser.add_argument("--timeout", type=int, default=600, help="seconds allowed per cell (default: 600)")
    parser.add_argument(
        "--output-dir",
        type=Path,
        help="also save the executed notebooks here (e.g. as CI artifacts)",
    )
    args = parser.parse_args(argv)
    paths = args.notebooks or sorted(TUTORIALS.glob("*.ipynb"))
    if not paths:
        print(f"no notebooks found in {TUTORIALS}", file=sys.stderr)
        return 1

    failed = []
    total = 0.0
    for path in paths:
        print(f"running {path.name} ...", flush=True)
        start = time.perf_counter()
        notebook, error = execute(path, args.timeout)
        seconds = time.perf_counter() - start
        total += seconds
        if error is None:
            print(f"  ok     {seconds:6.1f} s  {path.name}", flush=True)
            if args.write:
                nbformat.write(notebook, path)
        else:
            failed.append(path.name)
            print(f"  FAILED {seconds:6.1f} s  {path.name}\n{error}", file=sys.stderr, flush=True)
        if args.output_dir is not None:
            args.output_dir.mkdir(parents=True, exist_ok=True)
            nbformat.write(notebook, args.output_dir / path.name)

    print(f"{len(paths) - len(failed)} of {len(paths)} notebooks ran cleanly in {total:.1f} s")
    if failed:
        print("failed: " + ", ".join(failed), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
