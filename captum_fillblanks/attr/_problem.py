"""Plumbing shared by the fill methods: Captum's argument conventions in one place.

``FillProblem`` normalizes one ``attribute()`` call (tensor-or-tuple inputs, baselines,
targets, extra forward arguments, the loss) once at the top, so each estimator's body
only handles tuples of masked copies and their updates.
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ._captum_compat import (
    expand_additional_forward_args,
    expand_target,
    format_additional_forward_args,
    format_tensor_into_tuples,
    run_forward,
    select_targets,
)
from .masks import apply_masks

LossFn = Callable[[Tensor, Any], Tensor]
LOSSES = ("cross_entropy", "target")
SELECTIONS = ("correct", "all")


def format_inputs(inputs: Any) -> tuple[bool, tuple[Tensor, ...]]:
    """Check ``inputs`` and return ``(was_tuple, tuple_of_detached_tensors)``."""
    is_tuple = isinstance(inputs, tuple)
    formatted = format_tensor_into_tuples(inputs) if isinstance(inputs, (Tensor, tuple)) else None
    if not formatted or not all(isinstance(t, Tensor) for t in formatted):
        raise TypeError(f"inputs must be a Tensor or a non-empty tuple of Tensors, got {type(inputs).__name__}")
    for i, tensor in enumerate(formatted):
        if not tensor.is_floating_point():
            raise TypeError(
                f"inputs[{i}] has dtype {tensor.dtype}; filling in the blanks takes gradients "
                "with respect to the input, so it must be floating point (e.g. x.float())"
            )
        if tensor.device.type == "meta":
            raise ValueError(
                f"inputs[{i}] is on the meta device, which holds shapes but no values; move it to "
                "a real device (e.g. inputs.to('cpu')) first"
            )
        if tensor.dim() < 1 or tensor.shape[0] == 0:
            raise ValueError(f"inputs[{i}] must have a non-empty batch dimension, got {tuple(tensor.shape)}")
    batch = formatted[0].shape[0]
    if any(t.shape[0] != batch for t in formatted):
        raise ValueError(f"all input tensors must have the same batch size, got {[t.shape[0] for t in formatted]}")
    return is_tuple, tuple(t.detach() for t in formatted)


def format_baselines(baselines: Any, inputs: tuple[Tensor, ...]) -> tuple[Tensor, ...]:
    """Baselines as a tuple of tensors matching ``inputs`` in dtype and device: 0-dim for
    scalars, else broadcastable to each input."""
    if baselines is None:
        baselines = 0.0
    if not isinstance(baselines, tuple):
        baselines = (
            (baselines,) * len(inputs) if len(inputs) > 1 and not isinstance(baselines, Tensor) else (baselines,)
        )
    if len(baselines) != len(inputs):
        raise ValueError(f"baselines has {len(baselines)} entries but inputs has {len(inputs)} tensors")
    formatted: list[Tensor] = []
    for i, (baseline, tensor) in enumerate(zip(baselines, inputs)):
        if isinstance(baseline, bool) or not isinstance(baseline, (int, float, Tensor)):
            raise TypeError(f"baselines[{i}] must be a number or a Tensor, got {type(baseline).__name__}")
        if isinstance(baseline, Tensor):
            if baseline.device.type == "meta":
                raise ValueError(
                    f"baselines[{i}] is on the meta device, which holds shapes but no values; give a "
                    "baseline with values (e.g. baselines.to('cpu'))"
                )
            if baseline.is_complex():
                raise TypeError(
                    f"baselines[{i}] has dtype {baseline.dtype}; a blank holds a real value: give a real "
                    "number or a real Tensor"
                )
            try:
                shape = torch.broadcast_shapes(baseline.shape, tensor.shape)
            except RuntimeError:
                shape = None
            if shape != tensor.shape:
                raise ValueError(
                    f"baselines[{i}] of shape {tuple(baseline.shape)} does not broadcast to the "
                    f"input's shape {tuple(tensor.shape)}; give a scalar, one example's shape "
                    f"{tuple(tensor.shape[1:])}, or the input's shape"
                )
            baseline = baseline.detach().to(device=tensor.device, dtype=tensor.dtype)
        else:
            baseline = torch.tensor(float(baseline), dtype=tensor.dtype, device=tensor.device)
        if not bool(torch.isfinite(baseline).all()):
            raise ValueError(f"baselines[{i}] must be finite (what a blank holds), got NaN or inf")
        formatted.append(baseline)
    return tuple(formatted)


class FillProblem:
    """One call's inputs, baselines, target and loss, normalized.

    The batch of masked copies handed to :meth:`losses` and :meth:`gradient` is laid out
    mask-major: ``n`` masks times the ``B`` examples, row ``j * B + e`` is example ``e``
    under mask ``j`` (Captum's ``ExpansionTypes.repeat``).
    """

    def __init__(
        self,
        forward_func: Callable,
        inputs: Any,
        target: Any,
        additional_forward_args: Any,
        baselines: Any,
        loss: str | LossFn,
        selection: str,
        amp_dtype: torch.dtype | None = None,
    ) -> None:
        if torch.is_inference_mode_enabled():
            raise RuntimeError(
                "filling in the blanks needs gradients with respect to the masked input, and "
                "torch.inference_mode() prevents them; call the method outside inference_mode "
                "(torch.no_grad() is fine: the method turns gradients back on for its own pass)"
            )
        self.forward_func = forward_func
        if amp_dtype is not None and not (isinstance(amp_dtype, torch.dtype) and amp_dtype.is_floating_point):
            raise TypeError(f"amp_dtype must be a floating torch.dtype such as torch.bfloat16, got {amp_dtype!r}")
        self.amp_dtype = amp_dtype
        self.is_tuple, self.inputs = format_inputs(inputs)
        self.batch_size = self.inputs[0].shape[0]
        self.device = self.inputs[0].device
        self.baselines = format_baselines(baselines, self.inputs)
        self.additional_forward_args = format_additional_forward_args(additional_forward_args)
        if not (callable(loss) or loss in LOSSES):
            raise ValueError(f"loss must be one of {LOSSES} or a callable, got {loss!r}")
        if selection not in SELECTIONS:
            raise ValueError(f"selection must be one of {SELECTIONS}, got {selection!r}")
        self.loss = loss
        self.selection = selection
        self.target = target
        self._expanded_args: dict = {}
        warn_if_training(forward_func)

        with torch.no_grad():
            outputs = self.forward(self.inputs, 1)
            check_scores(outputs)
            check_target(target, outputs.shape[0])
            select_targets(outputs, target)  # raises exactly what Captum's Saliency raises
        self.labels = self._class_labels(outputs, target)
        needs_classes = loss == "cross_entropy" or selection == "correct"
        if needs_classes and self.labels is None:
            raise ValueError(
                f"loss={loss!r} with selection={selection!r} needs class scores of shape "
                f"(batch, classes) and an integer class target, but the model returned "
                f"shape {tuple(outputs.shape)} for target {target!r}; use loss='target' "
                "and selection='all' for other outputs"
            )

    @staticmethod
    def _class_labels(outputs: Tensor, target: Any) -> Tensor | None:
        """Per-example class index, when the output is class scores and the target a class."""
        if outputs.dim() != 2 or outputs.shape[1] < 2:
            return None
        batch, n_classes = outputs.shape
        if target is None:
            return outputs.argmax(dim=1)
        # a negative index counts from the last class, as Captum's output[:, target] reads
        # it (select_targets has already refused one out of range; Captum refuses negative
        # entries of a per-example list or tensor, and so has select_targets)
        if isinstance(target, int):
            return torch.full((batch,), target % n_classes, dtype=torch.long, device=outputs.device)
        if isinstance(target, Tensor) and not target.is_floating_point():
            labels = target.reshape(-1).to(outputs.device, torch.long).expand(batch)
            return labels.remainder(n_classes)
        if isinstance(target, list) and all(isinstance(t, int) for t in target):
            return torch.tensor(target, dtype=torch.long, device=outputs.device)
        return None

    def expanded_args(self, n_masks: int, rows: Tensor | None = None) -> Any:
        """Extra forward arguments for ``n_masks`` stacked copies (or only ``rows`` of them)."""
        if n_masks not in self._expanded_args:
            self._expanded_args = {n_masks: expand_additional_forward_args(self.additional_forward_args, n_masks)}
        args = self._expanded_args[n_masks]
        if rows is None or args is None:
            return args
        n_rows = n_masks * self.batch_size
        return tuple(a[rows] if isinstance(a, Tensor) and a.dim() > 0 and a.shape[0] == n_rows else a for a in args)

    def forward(self, batch: tuple[Tensor, ...], n_masks: int, rows: Tensor | None = None) -> Tensor:
        """Model outputs for ``n_masks`` stacked copies of the batch (or ``rows`` of them).

        The model gets copies: one that changes its input in place (``x.sub_(mean)``)
        changes neither the caller's inputs nor the masked copies the method reuses, and
        its gradient still reaches ``batch``.
        """
        copies = tuple(t.clone() for t in batch)
        with torch.autocast(self.device.type, dtype=self.amp_dtype, enabled=self.amp_dtype is not None):
            outputs = run_forward(self.forward_func, copies, None, self.expanded_args(n_masks, rows))
        if not isinstance(outputs, Tensor):
            raise TypeError(f"forward_func must return a Tensor, got {type(outputs).__name__}")
        return outputs

    def row_labels(self, n_masks: int, rows: Tensor | None = None) -> Tensor | None:
        if self.labels is None:
            return None
        labels = self.labels.repeat(n_masks)
        return labels if rows is None else labels[rows]

    def row_target(self, n_masks: int, rows: Tensor | None = None) -> Any:
        """Captum's target expanded to the rows, for targets that are not class indices."""
        target = expand_target(self.target, n_masks)
        if (
            rows is None
            or not isinstance(target, (list, Tensor))
            or (isinstance(target, Tensor) and target.numel() == 1)
        ):
            return target
        return target[rows] if isinstance(target, Tensor) else [target[i] for i in rows.tolist()]

    def losses(
        self,
        outputs: Tensor,
        n_masks: int,
        labels: Tensor | None = None,
        rows: Tensor | None = None,
    ) -> Tensor:
        """Per-row loss ``L(f(x'), y)`` of ``n_masks`` stacked copies of the batch (or of
        ``rows`` of them).

        ``labels`` overrides the rows' class targets (the progressive method uses the
        prediction on each step's masked input).
        """
        labels = self.row_labels(n_masks, rows) if labels is None else labels
        if self.loss == "cross_entropy":
            return F.cross_entropy(
                outputs.to(torch.promote_types(outputs.dtype, torch.float32)), labels, reduction="none"
            )
        if self.loss == "target":
            if labels is not None:
                selected = outputs.gather(1, labels[:, None]).squeeze(1)
            else:
                selected = select_targets(outputs, self.row_target(n_masks, rows))
            selected = selected.reshape(selected.shape[0], -1) if selected.dim() > 0 else selected
            if selected.dim() != 2 or selected.shape[1] != 1:
                raise ValueError(
                    f"loss='target' needs one output value per example, but target "
                    f"{self.target!r} selects shape {tuple(selected.shape)}; pass a target "
                    "that picks one value (an index, or a tuple of indices)"
                )
            return -selected[:, 0]
        target = labels if labels is not None else self.row_target(n_masks, rows)
        values = self.loss(outputs, target)
        if not isinstance(values, Tensor) or values.shape != (outputs.shape[0],):
            raise ValueError(
                f"the loss callable must return one loss per row, shape ({outputs.shape[0]},), "
                f"got {tuple(values.shape) if isinstance(values, Tensor) else type(values).__name__}"
            )
        return values

    def gradient(
        self,
        batch: tuple[Tensor, ...],
        n_masks: int,
        predicted_labels: bool = False,
        rows: Tensor | None = None,
        labels: Tensor | None = None,
    ) -> tuple[tuple[Tensor, ...], Tensor, Tensor]:
        """``grad_{x'} L`` at the copies themselves, the model outputs and the per-row losses.

        Rows are independent (a model in eval mode), so the gradient of the summed loss
        holds each copy's own gradient. With ``predicted_labels`` and no caller target, each
        row's class target is the model's prediction on that row; ``labels`` (one class
        per row) sets the rows' class targets instead. ``rows`` says which of the
        ``n_masks * B`` rows ``batch`` holds, when it holds only some.
        """
        with torch.enable_grad():
            leaves = tuple(t.detach().requires_grad_() for t in batch)
            outputs = self.forward(leaves, n_masks, rows)
            if predicted_labels and labels is None and self.target is None and self.labels is not None:
                labels = outputs.detach().argmax(dim=1)
            losses = self.losses(outputs, n_masks, labels, rows)
            grads = torch.autograd.grad(losses.sum(), leaves, allow_unused=True) if losses.requires_grad else None
        unused = list(range(len(leaves))) if grads is None else [i for i, g in enumerate(grads) if g is None]
        if unused:
            # Captum's gradient methods (Saliency) raise torch's RuntimeError here: the
            # fill of an input the output does not depend on would be zeros, not an answer
            names = ", ".join(f"inputs[{i}]" for i in unused)
            raise RuntimeError(
                f"the model's output does not depend on {names}: no gradient reaches it (is it detached "
                "inside forward_func, or not used?), so its fill would be all zeros; Captum's Saliency "
                "raises for such a model too. Make forward_func use it, or pass it in "
                "additional_forward_args instead of inputs"
            )
        return grads, outputs.detach(), losses.detach()

    def correct(self, outputs: Tensor, n_masks: int, rows: Tensor | None = None) -> Tensor:
        """``(n_masks, B)`` bool: which copies the model classifies as their target.

        With ``rows``, ``outputs`` holds only those rows; the others count as not correct.
        """
        if self.selection == "all":
            hits = torch.ones(outputs.shape[0], dtype=torch.bool, device=outputs.device)
        else:
            hits = outputs.argmax(dim=1) == self.row_labels(n_masks, rows)
        if rows is None:
            return hits.reshape(n_masks, self.batch_size)
        full = torch.zeros(n_masks * self.batch_size, dtype=torch.bool, device=outputs.device)
        return full.index_copy_(0, rows, hits).reshape(n_masks, self.batch_size)

    def mask(self, blanks: Sequence[Tensor], inputs: tuple[Tensor, ...] | None = None) -> tuple[Tensor, ...]:
        """The masked copies ``M(x)`` for element blank indicators of shape ``(n, 1|B, ...)``.

        ``inputs`` replaces the call's inputs as ``x`` (the progressive method masks the
        current image). Returns the copies flattened mask-major to ``(n * B, ...)``.
        """
        return tuple(
            apply_masks(tensor, blank, baseline).reshape(-1, *tensor.shape[1:])  # (n, B, ...) -> (n * B, ...)
            for tensor, baseline, blank in zip(inputs or self.inputs, self.baselines, blanks)
        )


def check_target(target: Any, batch_size: int) -> None:
    """The checks Captum makes of a target that do not survive ``python -O`` or end in a
    dtype error deep inside torch, made explicitly: a list must give one target per
    example (Captum's own ``AssertionError`` and message, raised even under ``-O``), and a
    tensor of class indices must be integer."""
    if isinstance(target, list) and len(target) != batch_size:
        raise AssertionError("Target list length does not match output!")
    if isinstance(target, Tensor) and (target.is_floating_point() or target.is_complex()):
        raise TypeError(
            f"target must hold integer class indices, got a tensor of dtype {target.dtype}; use target.long()"
        )


def check_scores(outputs: Tensor) -> None:
    """The model returns scores the method can differentiate: floating point, not class
    ids (an integer output has no gradient, and Captum's error would come from autograd)."""
    if not outputs.is_floating_point():
        raise TypeError(
            f"forward_func returned a tensor of dtype {outputs.dtype} (shape {tuple(outputs.shape)}); filling "
            "in the blanks takes the gradient of the model's scores, so it must return floating-point "
            "scores such as logits, not class ids (return the logits, not logits.argmax(1))"
        )


def _module_of(forward_func: Callable) -> nn.Module | None:
    """The module behind ``forward_func``: itself, or the module of a bound method."""
    module = forward_func if isinstance(forward_func, nn.Module) else getattr(forward_func, "__self__", None)
    return module if isinstance(module, nn.Module) else None


@contextmanager
def buffers_restored(forward_func: Callable) -> Iterator[None]:
    """Run the block and put the model's buffers back as they were, whether it succeeds
    or raises, when any of its modules is in training mode: batch norm then updates its
    running statistics on the masked copies, which would change the caller's model."""
    module = _module_of(forward_func)
    if module is None or not any(m.training for m in module.modules()):
        yield
        return
    saved = [
        (owner, name, buffer, buffer.detach().clone())
        for owner in module.modules()
        for name, buffer in owner._buffers.items()
        if buffer is not None
    ]
    try:
        yield
    finally:
        with torch.no_grad():
            for owner, name, buffer, value in saved:
                buffer.copy_(value)
                owner._buffers[name] = buffer  # in case the block replaced it


def warn_if_training(forward_func: Callable) -> None:
    module = _module_of(forward_func)
    if module is not None and module.training:
        warnings.warn(
            "the model is in training mode: batch norm couples the masked copies of a "
            "batch and dropout randomizes them; call model.eval() first (the model's buffers, "
            "such as batch norm's running statistics, are put back after the call)",
            UserWarning,
            stacklevel=caller_stacklevel(),
        )


#: Modules whose frames :func:`caller_stacklevel` steps over: the fill methods and
#: Captum's ``log_usage`` wrapper around ``attribute``.
_INTERNAL_MODULES = ("captum_fillblanks.attr", "captum.log")


def caller_stacklevel() -> int:
    """The ``stacklevel`` that makes a ``warnings.warn`` in the function calling this
    point at the caller's own call into the package: the first frame outside the fill
    methods. Counted rather than fixed, because the same check runs at different depths
    (``MaskFill`` and ``ProgressiveMaskFill`` reach it through different layers)."""
    level, frame = 1, sys._getframe(1)
    while frame.f_back is not None and frame.f_globals.get("__name__", "").startswith(_INTERNAL_MODULES):
        frame = frame.f_back
        level += 1
    return level


def slice_examples(value: Any, rows: slice, batch_size: int, *, is_target: bool = False) -> Any:
    """The part of a per-example argument that belongs to examples ``rows``.

    Tensors and lists whose leading length is the batch size are sliced; tuples of extra
    arguments are sliced element-wise; anything else (scalars, a Captum
    target given as an index tuple) applies to every example and is returned as is.
    """
    if isinstance(value, Tensor):
        if value.dim() > 0 and value.shape[0] == batch_size and (not is_target or value.numel() > 1):
            return value[rows]
        return value
    if isinstance(value, list) and len(value) == batch_size:
        return value[rows]
    if isinstance(value, tuple) and not is_target:
        return tuple(slice_examples(v, rows, batch_size) for v in value)
    return value
