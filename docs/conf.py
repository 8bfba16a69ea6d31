"""Sphinx configuration for captum-fillblanks.

Build (as CI does, warnings are errors):

    sphinx-build -W --keep-going -b html docs docs/_build/html

Everything is offline: intersphinx reads inventories written by ``_intersphinx.py``
(the objects these docs name, with their addresses on the Python, PyTorch,
torchvision, Captum, NumPy and matplotlib sites), not fetched ones.
"""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path

sys.path.insert(0, os.path.abspath(".."))

from sphinx.ext.napoleon.docstring import GoogleDocstring  # noqa: E402
from sphinx.util import logging  # noqa: E402
from sphinx.util.nodes import make_refnode  # noqa: E402

import captum_fillblanks  # noqa: E402

sys.path.insert(0, os.path.abspath("."))
from _intersphinx import write_inventories  # noqa: E402

# -- Project -------------------------------------------------------------------------

project = "captum-fillblanks"
author = "captum-fillblanks developers"
copyright = "captum-fillblanks developers; BSD-3-Clause"
release = captum_fillblanks.__version__
version = ".".join(release.split(".")[:2])

# -- General -------------------------------------------------------------------------

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "sphinx.ext.todo",
    "sphinx.ext.intersphinx",
]
# Offline inventories (see _intersphinx.py), written next to the build's doctrees.
intersphinx_mapping = write_inventories(Path(__file__).resolve().parent / "_build" / "intersphinx")
intersphinx_disabled_reftypes = ["std:doc"]
# ``.. todo::`` marks text waiting for measurements; hidden in the built pages.
todo_include_todos = False
exclude_patterns = ["_build", "figures/README*", "**.ipynb_checkpoints"]
root_doc = "index"
nitpicky = False
default_role = "code"
pygments_style = "sphinx"

# -- autodoc and napoleon: Captum's Google-style "Args:/Returns:/Examples:" -------------

autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_typehints_description_target = "documented"
autodoc_class_signature = "mixed"
autodoc_preserve_defaults = True
autodoc_default_options = {"members": True}
# A class's docstring documents the class, its __init__ arguments follow in it (Captum).
autoclass_content = "class"
# torch.nn.Module.forward's generic docstring says nothing about these models.
autodoc_inherit_docstrings = False

napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_use_param = True
napoleon_use_rtype = True
napoleon_use_ivar = True
napoleon_attr_annotations = True
# Short names in "Args:" types, linked to their projects' docs
napoleon_preprocess_types = True
napoleon_type_aliases = {
    "Tensor": "torch.Tensor",
    "ndarray": "numpy.ndarray",
    "Figure": "matplotlib.figure.Figure",
    "Axes": "matplotlib.axes.Axes",
    "Callable": "collections.abc.Callable",
    "Path": "pathlib.Path",
    "Generator": "torch.Generator",
    "nn.Module": "torch.nn.Module",
}

# -- HTML ----------------------------------------------------------------------------

html_theme = "alabaster"
html_title = f"captum-fillblanks {release}"
html_short_title = "captum-fillblanks"
html_static_path = ["_static"]
html_theme_options = {
    "description": "Fill in the blanks: mask-filling interpretability for Captum",
    "fixed_sidebar": True,
    "page_width": "1240px",
    "sidebar_width": "240px",
    "code_font_size": "0.8em",
    "show_powered_by": False,
}
html_sidebars = {"**": ["about.html", "navigation.html", "searchbox.html"]}

# -- Public names: every name a module exports must be documented -------------------

# Modules whose ``__all__`` is the public API (the top level re-exports some of them).
PUBLIC_MODULES = [
    "captum_fillblanks",
    "captum_fillblanks.attr.masks",
    "captum_fillblanks.attr.transforms",
    "captum_fillblanks.attr.mask_fill",
    "captum_fillblanks.attr.layer_mask_fill",
    "captum_fillblanks.attr.tokens",
    "captum_fillblanks.attr.progressive",
    "captum_fillblanks.attr.bfgs",
    "captum_fillblanks.attr.metrics",
    "captum_fillblanks.paper.models",
    "captum_fillblanks.paper.data",
    "captum_fillblanks.attr.visualization",
    "captum_fillblanks.paper.training",
    "captum_fillblanks.paper.text.data",
    "captum_fillblanks.paper.datasets",
    "captum_fillblanks.paper.text.training",
    "captum_fillblanks.paper.text.table",
    "captum_fillblanks.paper.text.figures",
    "captum_fillblanks.paper.text.report",
    "captum_fillblanks.paper.scoring",
    "captum_fillblanks.paper.figures",
    "captum_fillblanks.paper.mask_study.fills",
    "captum_fillblanks.paper.mask_study.report",
    "captum_fillblanks.paper.mask_study.run",
]

logger = logging.getLogger(__name__)


def _py_objects(env) -> dict:
    return env.get_domain("py").objects


def _resolve_unqualified(app, env, node, contnode):
    """Resolve a Python cross-reference that Sphinx's lookup missed by its unique suffix.

    Docstrings say ``:class:`MaskFill``` in the module that uses it, or
    ``captum_fillblanks.prototype`` for a re-exported name; each public object is
    documented once, under one path, so a unique match by last components is the object.
    """
    if node.get("refdomain") != "py":
        return None
    target = node["reftarget"].lstrip(".~")
    objects = _py_objects(env)
    candidates = [target]
    if target.startswith("captum_fillblanks."):  # a re-exported name, e.g. captum_fillblanks.prototype
        candidates.append(target.rsplit(".", 1)[-1])
    for candidate in candidates:
        matches = [
            name
            for name, obj in objects.items()
            if name.startswith("captum_fillblanks")
            and not obj.aliased
            and (name == candidate or name.endswith("." + candidate))
        ]
        if len(matches) == 1:
            obj = objects[matches[0]]
            return make_refnode(app.builder, node["refdoc"], obj.docname, obj.node_id, contnode, matches[0])
    return None


def _check_public_names_documented(app, env) -> None:
    """Warn (an error under -W) for a name in a public ``__all__`` that no page documents."""
    documented = {name.rsplit(".", 1)[-1] for name in _py_objects(env)}
    documented_full = set(_py_objects(env))
    for module_name in PUBLIC_MODULES:
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        for name in getattr(module, "__all__", ()):
            if f"{module_name}.{name}" in documented_full or name in documented:
                continue
            logger.warning(
                "public name %s.%s is not documented: add it to a page under docs/api/",
                module_name,
                name,
            )


def _no_inline_type_for_data(app, what, name, obj, options, lines) -> None:
    """Keep napoleon from reading a data docstring's first line ``X: Y`` as "type X".

    The package's constants and type aliases are documented in prose ("... chosen
    automatically: 1 GiB holds ..."), never as Google-style ``type: description``.
    Napoleon splits the first line at its colon only when text follows the colon, so
    the rest of that line moves to the next one (the paragraph reads the same).
    """
    if what != "data":
        return
    first = next((i for i, line in enumerate(lines) if line.strip()), None)
    if first is None:
        return
    before, colon, after = GoogleDocstring([], what="")._partition_field_on_colon(lines[first])
    if colon and after:
        lines[first : first + 1] = [before + colon, after]


def setup(app):
    # before napoleon (priority 500) turns the docstring into fields
    app.connect("autodoc-process-docstring", _no_inline_type_for_data, priority=400)
    app.connect("missing-reference", _resolve_unqualified)
    app.connect("env-check-consistency", _check_public_names_documented)
