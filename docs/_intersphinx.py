"""Offline intersphinx inventories for the objects these docs link to.

The build machine has no network, so Sphinx cannot fetch ``objects.inv`` from the
Python, PyTorch, torchvision, Captum, NumPy and matplotlib sites. Each project's
entry below lists the objects our pages and docstrings name, with their address in
that project's documentation; :func:`write_inventories` writes them as Sphinx
inventories (version 2) that ``intersphinx_mapping`` reads from disk, so the links
point at the real pages. Add an object here when the docs start naming it.
"""

from __future__ import annotations

import zlib
from pathlib import Path

#: project -> (documentation root, [(name, domain:role, page relative to the root)])
PROJECTS: dict[str, tuple[str, list[tuple[str, str, str]]]] = {
    "python": (
        "https://docs.python.org/3/",
        [
            ("collections.abc.Callable", "py:class", "library/collections.abc.html"),
            ("collections.abc.Sequence", "py:class", "library/collections.abc.html"),
            ("collections.abc.Iterable", "py:class", "library/collections.abc.html"),
            ("pathlib.Path", "py:class", "library/pathlib.html"),
            ("ValueError", "py:exception", "library/exceptions.html"),
            ("TypeError", "py:exception", "library/exceptions.html"),
        ],
    ),
    "torch": (
        "https://docs.pytorch.org/docs/stable/",
        [
            ("torch.Tensor", "py:class", "tensors.html"),
            ("torch.Generator", "py:class", "generated/torch.Generator.html"),
            ("torch.device", "py:class", "tensor_attributes.html"),
            ("torch.dtype", "py:class", "tensor_attributes.html"),
            ("torch.nn.Module", "py:class", "generated/torch.nn.Module.html"),
            ("torch.distributed", "py:module", "distributed.html"),
            ("torch.distributed.init_process_group", "py:function", "distributed.html"),
            ("torch.utils.data.DataLoader", "py:class", "data.html"),
            ("torch.utils.data.distributed.DistributedSampler", "py:class", "data.html"),
        ],
    ),
    "torchvision": (
        "https://docs.pytorch.org/vision/stable/",
        [
            ("torchvision.datasets.MNIST", "py:class", "generated/torchvision.datasets.MNIST.html"),
            ("torchvision.datasets.FashionMNIST", "py:class", "generated/torchvision.datasets.FashionMNIST.html"),
        ],
    ),
    "captum": (
        "https://captum.ai/api/",
        [
            ("captum.attr.GradientAttribution", "py:class", "base_classes.html"),
            ("captum.attr.Attribution", "py:class", "base_classes.html"),
            ("captum.attr.IntegratedGradients", "py:class", "integrated_gradients.html"),
            ("captum.attr.Saliency", "py:class", "saliency.html"),
            ("captum.attr.NoiseTunnel", "py:class", "noise_tunnel.html"),
        ],
    ),
    "numpy": (
        "https://numpy.org/doc/stable/",
        [("numpy.ndarray", "py:class", "reference/generated/numpy.ndarray.html")],
    ),
    "matplotlib": (
        "https://matplotlib.org/stable/",
        [
            ("matplotlib.figure.Figure", "py:class", "api/_as_gen/matplotlib.figure.Figure.html"),
            ("matplotlib.axes.Axes", "py:class", "api/_as_gen/matplotlib.axes.Axes.html"),
        ],
    ),
}


def write_inventories(folder: Path) -> dict[str, tuple[str, str]]:
    """Write one ``<project>.inv`` per project into ``folder``; returns the
    ``intersphinx_mapping`` that reads them."""
    folder.mkdir(parents=True, exist_ok=True)
    mapping = {}
    for project, (root, objects) in PROJECTS.items():
        header = (
            "# Sphinx inventory version 2\n"
            f"# Project: {project}\n"
            "# Version: \n"
            "# The remainder of this file is compressed using zlib.\n"
        )
        # "$" in the address stands for the object's name: the anchor Sphinx gives it
        lines = "".join(f"{name} {role} 1 {page}#$ -\n" for name, role, page in objects)
        path = folder / f"{project}.inv"
        path.write_bytes(header.encode() + zlib.compress(lines.encode()))
        mapping[project] = (root, str(path))
    return mapping
