"""The estimators as a Quantus ``explain_func``.

Quantus calls ``explain_func(model=..., inputs=..., targets=..., **explain_func_kwargs)``
with NumPy batches, adds ``device=`` to the keyword arguments, and expects a NumPy array
back. :func:`explain` is that function for :class:`~captum_fillblanks.MaskFill`,
:class:`~captum_fillblanks.BFGSMaskFill` and :class:`~captum_fillblanks.ProgressiveMaskFill`:

.. code-block:: python

   import quantus
   from captum_fillblanks.integrations.quantus import explain

   metric = quantus.MaxSensitivity(nr_samples=10)
   scores = metric(model=model, x_batch=x, y_batch=y, device="cpu",
                   explain_func=explain, explain_func_kwargs={"n_samples": 500})

Two defaults differ from :meth:`MaskFill.attribute`, because a metric changes the model
or the target and calls the method again:

- ``selection="all"``: every masked copy counts. With the paper's ``"correct"`` a
  randomised model (MPRT) or an off-class target (RandomLogit) almost never predicts
  the target on a masked copy, so almost no draw would be kept and the fill would be
  zero: the metric would score zeros. ``"correct"`` can still be asked for; an example
  with no kept draw is then a ``ValueError``, never a silent zero map.
- ``seed=0``: the same masks on every call, so a robustness metric measures how the
  explanation moves with the input, not Monte-Carlo noise (unseeded, MaxSensitivity
  reads about twice as high).

Quantus itself is not imported here; install it with ``pip install
"captum-fillblanks[quantus]"``.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from ..attr.bfgs import BFGSMaskFill
from ..attr.mask_fill import MaskFill
from ..attr.progressive import ProgressiveMaskFill

__all__ = ["explain", "METHODS"]

#: The estimators :func:`explain` can run, by name.
METHODS = {"mask_fill": MaskFill, "bfgs": BFGSMaskFill, "progressive": ProgressiveMaskFill}


def explain(
    model: nn.Module,
    inputs: np.ndarray | Tensor,
    targets: np.ndarray | Tensor | int | list[int] | None,
    *,
    method: str = "mask_fill",
    device: str | torch.device | None = None,
    seed: int = 0,
    selection: str = "all",
    **attribute_kwargs: Any,
) -> np.ndarray:
    """Explain ``inputs`` with one of the estimators, in Quantus's calling convention.

    Args:
        model (nn.Module): the classifier (Quantus passes the model it evaluates, e.g.
            a randomised copy for MPRT). It is neither moved nor changed.
        inputs (ndarray or Tensor): ``(N, C, H, W)`` images.
        targets (ndarray, Tensor, int, list or None): one class per image (or one for
            all); ``None``: the model's prediction, as in Captum.
        method (str): ``"mask_fill"`` (default), ``"bfgs"`` or ``"progressive"``
            (:data:`METHODS`); the progressive method returns the rebuilt image.
        device (str or torch.device, optional): where the inputs go; Quantus passes the
            device it was given. Default: the device of the model's parameters.
        seed (int): the masks' seed. Default: 0 (fixed, see the module's text).
        selection (str): ``"all"`` (default here) or ``"correct"`` (the paper's); not
            used by ``"progressive"``.
        **attribute_kwargs: passed to the method's ``attribute`` (``n_samples``,
            ``patch_size``, ``mask_ratio``, ``internal_batch_size``, ...).

    Returns:
        ndarray: float32 explanations of the same shape as ``inputs``.

    Raises:
        ValueError: for an unknown ``method``, inputs that are not a batch of images, or,
            with ``selection="correct"``, an example for which no draw was kept.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {sorted(METHODS)}, got {method!r}")
    device = torch.device(device) if device is not None else _model_device(model)
    x = torch.as_tensor(np.asarray(inputs) if not isinstance(inputs, Tensor) else inputs)
    if x.dim() != 4:
        hint = "; for grayscale images (N, H, W) add the channel dimension, inputs[:, None]" if x.dim() == 3 else ""
        raise ValueError(
            f"inputs must be a batch of images (N, C, H, W), channels first as the model takes them, got "
            f"shape {tuple(x.shape)}{hint}"
        )
    x = x.to(device=device, dtype=torch.float32)
    target = _targets(targets, len(x), device)
    estimator = METHODS[method](model)
    options = dict(attribute_kwargs, seed=seed)
    if method != "progressive":
        options["selection"] = selection
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        explanation = estimator.attribute(x, target=target, **options)
    if method != "progressive" and selection == "correct":
        empty = (estimator.counts.n_kept == 0).nonzero().flatten().tolist()
        if empty:  # the error says it all; the estimator's warnings about it would repeat it
            raise ValueError(
                f"no draw was kept for example(s) {empty} with selection='correct': the model never predicted "
                "the target on a masked copy (a randomised model or an off-class target, as randomisation "
                "metrics use), so the fill would be all zeros; use selection='all' (the default here)"
            )
    for warning in caught:
        warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)
    return explanation.detach().cpu().float().numpy()


def _model_device(model: nn.Module) -> torch.device:
    parameter = next(iter(model.parameters()), None) if isinstance(model, nn.Module) else None
    return parameter.device if parameter is not None else torch.device("cpu")


def _targets(targets: Any, n: int, device: torch.device) -> Tensor | int | None:
    if targets is None or isinstance(targets, int):
        return targets
    target = torch.as_tensor(np.asarray(targets) if not isinstance(targets, Tensor) else targets)
    if target.dim() == 0:
        return int(target)
    if target.is_floating_point():
        raise TypeError(f"targets must be class indices (integers), got {target.dtype}")
    if target.shape != (n,):
        raise ValueError(f"targets must hold one class per image ({n}), got shape {tuple(target.shape)}")
    return target.to(device=device, dtype=torch.long)
