"""``LayerMaskFill``: fill in the blanks at a layer, such as a text model's embedding.

The paper ends with its future work, "applications in language tasks such as sentiment
analysis". A text model's input is token ids, which have no gradient; Captum explains
such models at a layer (``LayerIntegratedGradients`` at the embedding). Here the layer's
output ``h`` plays the image: a mask blanks units of ``h`` (token positions), a forward
hook hands the model ``h' = m * h + (1 - m) * b``, and the update is
``delta = -gamma * grad_{h'} L`` at ``h'``. The estimator is :class:`MaskFill`'s own
(``fill_sums``): the same seeded mask sequence, selection, losses, tolerance and counts.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import torch
from captum.attr import GradientAttribution, LayerAttribution
from captum.log import log_usage
from torch import Tensor, nn

from ._captum_compat import TargetType, format_additional_forward_args, format_tensor_into_tuples
from ._checks import check_step_size
from ._estimator import Estimate, FillOptions, GradientStep, fill_sums, finish_estimate
from ._problem import FillProblem, LossFn, buffers_restored, format_baselines, warn_if_training
from .mask_fill import MaskFill
from .masks import MaskSequence, SeedLike, n_blank_units, patch_grid

__all__ = ["LayerMaskFill", "layer_unit_map", "token_layer_mask"]


def token_layer_mask(attention_mask: Tensor) -> Tensor:
    """A ``layer_mask`` for a ``(B, L, D)`` embedding from a ``(B, L)`` attention mask:
    each real token its own unit (its position), padding ``-1`` (never blanked).
    Shape ``(B, L, 1)``, shared over the embedding dimension."""
    if not isinstance(attention_mask, Tensor) or attention_mask.dim() != 2:
        given = tuple(attention_mask.shape) if isinstance(attention_mask, Tensor) else type(attention_mask).__name__
        raise ValueError(f"attention_mask must be a (batch, length) Tensor, got {given}")
    positions = torch.arange(attention_mask.shape[1], device=attention_mask.device).expand_as(attention_mask)
    return torch.where(attention_mask.bool(), positions, torch.full_like(positions, -1))[..., None]


def layer_unit_map(layer_shape: torch.Size | tuple[int, ...], layer_mask: Tensor | None, patch_size: int) -> Tensor:
    """Each element's unit id for a layer's output of ``layer_shape`` (batch first):
    ``layer_mask`` (integer ids broadcastable to it; negative ids are never blanked),
    else for ``(B, L, D)`` one unit per position along dim 1 (a token), for
    ``(B, C, H, W)`` ``patch_size`` patches shared over channels, otherwise one unit per
    element. Returns a long tensor of ``layer_shape``'s rank with a batch dimension of
    1 (shared by every example) or ``B``."""
    rank = len(layer_shape)
    if layer_mask is None:
        if rank == 3:
            return torch.arange(layer_shape[1]).reshape(1, -1, 1)
        if rank == 4:
            return patch_grid(layer_shape[2], layer_shape[3], patch_size)[None, None]
        return torch.arange(int(torch.Size(layer_shape[1:]).numel())).reshape(1, *layer_shape[1:])
    if not isinstance(layer_mask, Tensor) or layer_mask.is_floating_point() or layer_mask.is_complex():
        given = f"dtype {layer_mask.dtype}" if isinstance(layer_mask, Tensor) else type(layer_mask).__name__
        raise TypeError(f"layer_mask must be an integer Tensor of unit ids, got {given}")
    if layer_mask.dtype == torch.bool:
        raise TypeError("layer_mask must hold integer unit ids, got a bool Tensor (use token_layer_mask for padding)")
    if layer_mask.device.type == "meta":
        raise ValueError("layer_mask is on the meta device, which holds shapes but no values")
    shape = (1,) * (rank - layer_mask.dim()) + tuple(layer_mask.shape)
    try:
        fits = layer_mask.dim() <= rank and torch.broadcast_shapes(shape, layer_shape) == tuple(layer_shape)
    except RuntimeError:
        fits = False
    if not fits:
        raise ValueError(
            f"layer_mask of shape {tuple(layer_mask.shape)} does not broadcast to the layer's output of shape "
            f"{tuple(layer_shape)}; give unit ids shaped like it, with 1 where an id is shared (e.g. (B, L, 1) "
            "for token positions of a (B, L, D) embedding)"
        )
    return layer_mask.reshape(shape).long()


class _ExampleUnitMasks:
    """The random masks of a layer call whose examples may have units of their own.

    Example ``e`` has the ``n_e`` distinct non-negative ids of its unit map as units; its
    mask ``j`` is mask ``j`` of the sequence over ``n_e`` units (seeded by the call), so
    it depends only on the example's own units and the seed, never on the other examples
    or the padding beside them. A text alone gets the masks it gets in any batch.
    """

    def __init__(self, unit_map: Tensor, mask_ratio: float, seed: int) -> None:
        self.batch = unit_map.shape[0]  # 1: one map for every example, and (n, 1, ...) blanks
        index_maps, counts = [], []
        for e, ids in enumerate(unit_map):
            used = torch.unique(ids[ids >= 0])
            if used.numel() == 0:
                raise ValueError(f"layer_mask leaves example {e} no unit to blank: every id is negative (padding)")
            # unit index of each element; padding points at an extra unit that is never blank
            index = torch.searchsorted(used, ids.clamp(min=0).contiguous())
            index_maps.append(torch.where(ids >= 0, index, torch.full_like(index, used.numel())))
            counts.append(used.numel())
        # examples with the same number of units share one sequence and one gather
        self.groups = {}
        for n in sorted(set(counts)):
            members = [e for e, c in enumerate(counts) if c == n]
            self.groups[n] = (
                torch.tensor(members, device=unit_map.device),
                torch.stack([index_maps[e] for e in members]),
                MaskSequence((n,), (n_blank_units(n, mask_ratio),), seed),
            )

    def take(self, start: int, stop: int) -> tuple[Tensor, ...]:
        blanks = None
        never = torch.zeros(stop - start, 1, dtype=torch.bool)
        for members, index_maps, sequence in self.groups.values():
            per_unit = torch.cat([sequence.take(start, stop)[0], never], dim=1).to(index_maps.device)
            group_blanks = per_unit[:, index_maps]  # (n_masks, members, ...)
            if blanks is None:
                blanks = group_blanks.new_zeros((stop - start, self.batch, *index_maps.shape[1:]))
            blanks[:, members] = group_blanks
        return (blanks,)


class _LayerSwap:
    """Hands the model a given tensor in place of the layer's output (or input) during
    a forward pass, and checks that the layer runs exactly once per pass."""

    def __init__(self, layer: nn.Module, to_input: bool) -> None:
        self.layer, self.to_input = layer, to_input
        self.value: Tensor | None = None
        self.captured: Tensor | None = None
        self.calls = 0

    def _swap(self, found: Any) -> Tensor:
        self.calls += 1
        if self.calls > 1:
            raise ValueError(
                "the layer ran more than once in one forward pass (a shared module); give LayerMaskFill a layer "
                "the model calls once"
            )
        where = "input" if self.to_input else "output"
        if not isinstance(found, Tensor):
            raise TypeError(
                f"the layer's {where} is a {type(found).__name__}, not a Tensor; LayerMaskFill fills one Tensor: "
                "choose a layer whose " + where + " is one Tensor"
            )
        if self.value is None:
            # a copy: a model that changes the value in place after the layer (h.mul_(c),
            # h += pos, x += f(x)) must not change what the fill starts from
            self.captured = found.detach().clone()
            return found
        if found.shape != self.value.shape:
            raise ValueError(
                f"the layer's {where} has shape {tuple(found.shape)} in the masked pass but the fill expects "
                f"{tuple(self.value.shape)}: its shape must follow the batch of inputs"
            )
        return self.value

    def _output_hook(self, module: nn.Module, args: Any, output: Any) -> Any:
        return self._swap(output)

    def _input_hook(self, module: nn.Module, args: tuple) -> Any:
        if len(args) != 1:
            raise ValueError(
                f"attribute_to_layer_input=True needs a layer called with one input Tensor, but it got {len(args)}"
            )
        return (self._swap(args[0]),)

    @contextmanager
    def installed(self) -> Iterator[_LayerSwap]:
        if self.to_input:
            handle = self.layer.register_forward_pre_hook(self._input_hook)
        else:
            handle = self.layer.register_forward_hook(self._output_hook)
        try:
            yield self
        finally:
            handle.remove()

    def run(self, forward_func: Callable, value: Tensor | None, args: tuple) -> Any:
        """``forward_func(*args)`` with the layer's output (input) replaced by ``value``
        (``None``: left as it is, and captured)."""
        self.value, self.calls = value, 0
        output = forward_func(*args)
        if self.calls == 0:
            raise ValueError(
                "the layer did not run in the model's forward pass; give LayerMaskFill a layer of forward_func"
            )
        return output


class LayerMaskFill(LayerAttribution, GradientAttribution):
    r"""Fill in the blanks at a layer: the model's expected fill of the layer's output.

    The :class:`MaskFill` estimator with the layer's output ``h`` (or, with
    ``attribute_to_layer_input=True``, its input) in place of the image: random masks
    blank a fraction ``eta`` of ``h``'s units, ``h' = m * h + (1 - m) * b`` with ``b``
    from ``layer_baselines`` (for a text model, the embedding of its ``<mask>`` or
    ``<unk>`` token), the model runs from ``h'`` on through a forward hook, and
    ``delta = -gamma * grad_{h'} L`` is the change it would make to the blanks. The fill
    is the mean update over the kept draws in which a unit was blank, shaped like ``h``.

    Units: ``layer_mask`` when given (integer ids broadcastable to ``h``; negative ids,
    such as padding, are never blanked; examples may differ). Otherwise a ``(B, L, D)``
    output has one unit per position along dim 1 (a token, shared over ``D``), a
    ``(B, C, H, W)`` output ``patch_size`` patches shared over channels, any other
    output one unit per element. Each example walks the mask sequence of its own units
    (fixed by ``seed``), so its fill depends only on itself: a text gives alone what it
    gives in a padded batch, once its padding is ``-1`` in ``layer_mask``
    (:func:`token_layer_mask`). At an embedding, turn the fill into words with
    :func:`captum_fillblanks.attr.tokens.token_scores`.

    At a vision model's inner layer (a convolution's feature map) the fill is the change
    the model asks of the blanked activations: how the later layers would have the
    features of the blanked region look, a prototype in feature space. Upsample it to
    the image with :meth:`LayerAttribution.interpolate` to see where.

    After each call :attr:`counts` holds the :class:`~captum_fillblanks.attr.FillCounts`
    (coverage shaped like ``h``); it is ``None`` from the start of a call until it succeeds.

    Args:
        forward_func (Callable): the model, or any function returning its outputs.
        layer (torch.nn.Module): the layer whose output (or input) is filled; the model
            must run it exactly once per forward pass, and its output (input) must be
            one Tensor.
        device_ids (list[int], optional): Captum's argument for ``DataParallel``
            models; not supported (a ``DataParallel`` model scatters the batch, so one
            hook cannot hand each replica its part): run the module itself, or use
            ``torchrun`` with one process per device. Default: None.
    """

    def __init__(self, forward_func: Callable, layer: nn.Module, device_ids: list[int] | None = None) -> None:
        if not isinstance(layer, nn.Module):
            raise TypeError(f"layer must be a torch.nn.Module of the model, got {type(layer).__name__}")
        if device_ids is not None or isinstance(forward_func, nn.DataParallel):
            raise NotImplementedError(
                "LayerMaskFill does not support DataParallel (device_ids): pass the wrapped module "
                "(model.module), or run one process per device with torchrun"
            )
        LayerAttribution.__init__(self, forward_func, layer, device_ids)
        GradientAttribution.__init__(self, forward_func)
        self.counts = None

    def has_convergence_delta(self) -> bool:
        return True

    compute_convergence_delta = MaskFill.compute_convergence_delta

    @log_usage()
    def attribute(
        self,
        inputs: Tensor | tuple[Tensor, ...],
        layer_baselines: Any = 0.0,
        target: TargetType = None,
        additional_forward_args: Any = None,
        layer_mask: Tensor | None = None,
        internal_batch_size: int | None = None,
        show_progress: bool = False,
        return_convergence_delta: bool = False,
        attribute_to_layer_input: bool = False,
        *,
        n_samples: int = 1000,
        mask_ratio: float = 0.25,
        patch_size: int = 2,
        selection: str = "correct",
        loss: str | LossFn = "cross_entropy",
        step_size: float = 1.0,
        max_draws: int | None = None,
        tolerance: float | None = None,
        masks: Tensor | None = None,
        seed: SeedLike = None,
        select_first: bool | None = None,
        amp_dtype: torch.dtype | None = None,
        record_at: Sequence[int] | None = None,
    ) -> Tensor | tuple[Tensor, Tensor]:
        r"""
        The estimator's keyword options (``n_samples``, ``mask_ratio``, ``patch_size``,
        ``selection``, ``loss``, ``step_size``, ``max_draws``, ``tolerance``, ``masks``,
        ``seed``, ``select_first``, ``amp_dtype``, ``record_at``) are :meth:`MaskFill.attribute
        <captum_fillblanks.attr.MaskFill.attribute>`'s: ``mask_ratio`` is the fraction of
        each example's own units blanked, ``patch_size`` applies to 4-D layer outputs, and
        ``masks`` (``1`` kept, ``0`` blank) are shaped like one example of ``h`` (or a
        stack of them).

        Args:
            inputs (Tensor or tuple[Tensor, ...]): the model's inputs, batch first, of
                any dtype (token ids too): ``forward_func(*inputs,
                *additional_forward_args)`` is the model's call.
            layer_baselines (scalar or Tensor, optional): what a blank of ``h`` holds
                (``b``), broadcastable to ``h``: for an embedding, the ``(D,)`` embedding
                of the blank token (``embedding.weight[mask_id]``). Default: 0.
            target, additional_forward_args, internal_batch_size, show_progress: as in
                :meth:`MaskFill.attribute <captum_fillblanks.attr.MaskFill.attribute>`;
                ``internal_batch_size`` counts masked copies of the whole model input.
            layer_mask (Tensor, optional): integer unit ids broadcastable to ``h``, as in
                Captum's ``LayerFeatureAblation``; negative ids are never blanked
                (padding: see :func:`token_layer_mask`). It may differ between examples;
                each example's units are its own ids. Default: None (tokens, patches or
                elements, as the class docstring says).
            return_convergence_delta (bool, optional): also return the Monte-Carlo error
                per example, as :class:`MaskFill` does. Default: False.
            attribute_to_layer_input (bool, optional): fill the layer's input instead of
                its output (the layer must take one Tensor). Default: False.
        Returns:
            **attributions** or (**attributions**, **delta**): the fill, shaped like the
            layer's output (input), zero where no kept draw blanked a unit (padding);
            delta ``(batch,)`` as in :class:`MaskFill`.

        Examples::

            >>> import torch
            >>> from captum_fillblanks.attr import LayerMaskFill
            >>> class BagOfWords(torch.nn.Module):
            ...     def __init__(self):
            ...         super().__init__()
            ...         self.embedding = torch.nn.Embedding(50, 8)
            ...         self.head = torch.nn.Linear(8, 3)
            ...     def forward(self, ids):
            ...         return self.head(self.embedding(ids).mean(1))
            >>> model = BagOfWords().eval()
            >>> ids = torch.randint(3, 50, (2, 12))
            >>> fill = LayerMaskFill(model, model.embedding).attribute(
            ...     ids, layer_baselines=model.embedding.weight[0].detach(), n_samples=100, seed=0)
            >>> fill.shape
            torch.Size([2, 12, 8])
        """
        self.counts = None
        check_step_size(step_size)
        if not isinstance(attribute_to_layer_input, bool):
            raise TypeError(f"attribute_to_layer_input must be a bool, got {type(attribute_to_layer_input).__name__}")
        model_inputs = _format_model_inputs(inputs)
        extra = tuple(format_additional_forward_args(additional_forward_args) or ())
        options = FillOptions.from_call(locals())
        warn_if_training(self.forward_func)
        swap = _LayerSwap(self.layer, attribute_to_layer_input)
        with buffers_restored(self.forward_func), swap.installed():
            estimate = self._estimate(
                swap, model_inputs + extra, layer_baselines, target, layer_mask, options, step_size
            )
        result, self.counts = finish_estimate(estimate, return_convergence_delta)
        return result

    def _estimate(self, swap, model_args, layer_baselines, target, layer_mask, options, step_size) -> Estimate:
        """The layer's value on the unmasked inputs, then the estimator over it, with
        ``model_args`` (the inputs, then the extra arguments) going to the model."""
        with torch.no_grad():
            swap.run(self.forward_func, None, tuple(a.clone() if isinstance(a, Tensor) else a for a in model_args))
        layer_value = swap.captured
        if not layer_value.is_floating_point():
            raise TypeError(
                f"the layer's {'input' if swap.to_input else 'output'} has dtype {layer_value.dtype}; a fill takes "
                "its gradient, so it must be floating point (for token ids, choose the embedding layer)"
            )
        batch = model_args[0].shape[0]
        if layer_value.dim() < 1 or layer_value.shape[0] != batch:
            raise ValueError(
                f"the layer's output of shape {tuple(layer_value.shape)} has no batch dimension of {batch} "
                "first (the inputs' batch); LayerMaskFill needs one"
            )
        try:
            (baseline,) = format_baselines(layer_baselines, (layer_value,))
        except (TypeError, ValueError) as error:
            raise type(error)(str(error).replace("baselines[0]", "layer_baselines", 1)) from None
        unit_map = None
        if options.masks is None:
            unit_map = layer_unit_map(layer_value.shape, layer_mask, options.patch_size).to(layer_value.device)
        elif layer_mask is not None:
            raise ValueError("layer_mask does not apply with masks=: the given masks say what is blank")

        def layer_forward(value: Tensor, *args: Any) -> Any:
            return swap.run(self.forward_func, value, args)

        problem = FillProblem(
            layer_forward,
            layer_value,
            target,
            model_args,
            baseline,
            options.loss,
            options.selection,
            options.amp_dtype,
        )

        def random_masks(seed: int) -> _ExampleUnitMasks:
            return _ExampleUnitMasks(unit_map, options.mask_ratio, seed)

        return fill_sums(
            problem, None, options, GradientStep(step_size), desc="LayerMaskFill draws", random_masks=random_masks
        )


def _format_model_inputs(inputs: Any) -> tuple[Tensor, ...]:
    formatted = format_tensor_into_tuples(inputs) if isinstance(inputs, (Tensor, tuple)) else None
    if not formatted or not all(isinstance(t, Tensor) for t in formatted):
        raise TypeError(f"inputs must be a Tensor or a non-empty tuple of Tensors, got {type(inputs).__name__}")
    if any(t.dim() < 1 or t.shape[0] != formatted[0].shape[0] for t in formatted) or formatted[0].shape[0] == 0:
        raise ValueError(
            f"inputs must share one non-empty batch dimension, got shapes {[tuple(t.shape) for t in formatted]}"
        )
    return tuple(t.detach() for t in formatted)
