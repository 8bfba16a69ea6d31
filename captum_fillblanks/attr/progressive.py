"""``ProgressiveMaskFill``: rebuild a whole input from the model (paper section 4.2, Fig. 3)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from captum.attr import GradientAttribution
from captum.log import log_usage
from torch import Tensor

from ._captum_compat import TargetType, TensorOrTupleOfTensorsGeneric, format_output, progress
from ._checks import check_positive_int, check_step_size
from ._problem import FillProblem, LossFn, buffers_restored, format_inputs, slice_examples
from ._units import Units, unit_maps
from .mask_fill import default_internal_batch_size
from .masks import SeedLike, n_blank_units, partition_units, resolve_seed
from .transforms import InputRange, TransformSetting, resolve_transform, to_input_range

__all__ = ["ProgressiveMaskFill", "ProgressiveSteps"]


@dataclass
class ProgressiveSteps:
    """The course of one progressive fill.

    Attributes:
        images (Tensor or tuple[Tensor, ...]): ``(k, B, ...)`` per input, the image after
            each step (``x_1 .. x_k``), in the form of the inputs.
        groups (Tensor or tuple[Tensor, ...]): the ``k`` disjoint masks (``1`` kept,
            ``0`` blank) as the ``masks=`` argument of :class:`MaskFill` takes them:
            ``(k, H, W)`` for images, ``(k, *example_shape)`` otherwise.
        labels (Tensor or None): ``(k, B)`` class predicted on the masked input of each
            step; ``None`` when the outputs are not class scores.
        n_nonfinite (Tensor or None): ``(B,)`` per example, the update values at the
            blanks of all steps that were NaN or infinite and so were drawn as
            background (the transform warns about them too).
    """

    images: Tensor | tuple[Tensor, ...]
    groups: Tensor | tuple[Tensor, ...]
    labels: Tensor | None
    n_nonfinite: Tensor | None = None


class ProgressiveMaskFill(GradientAttribution):
    r"""Fill in the blanks progressively until no pixel of the input is left.

    The units of the input (patches of ``patch_size``) are split at random into
    ``n_steps`` (``k``) disjoint groups of equal size. Starting from ``x_0 = x``, step
    ``i`` blanks group ``i`` of the current image ``x_{i-1}``, lets the model predict
    ``y_i`` (or uses the caller's target), takes the update ``delta_i`` at the masked
    image as :class:`MaskFill` does, and writes ``T(delta_i)`` — normalized over group
    ``i``, binarized at ``tau`` (the setting ``transform``), mapped to ``input_range`` —
    into the group's positions. Those pixels are context for the next steps. The result ``x_k`` comes
    entirely from the model.

    **One mask or many per step.** The paper's step (``n_samples=1``, the default) takes
    the gradient of one masked image: the group's own mask. That single gradient is
    noisy at the pixel level, and binarizing it writes scattered dots which the next
    steps take as context, so the rebuild decays into dots. With ``n_samples=n > 1``
    each step's update is averaged over ``n`` masked copies of ``x_{i-1}``, as the
    random-mask fill averages its draws: the group's own mask and ``n - 1`` masks that
    blank the group and, at random, ``context_ratio`` of the other units. Every copy
    blanks the whole group, so no pixel of the group is seen while it is filled; every
    copy is pushed toward the step's target (the prediction on the group's own mask, or
    the caller's target), and every copy counts (no selection). ``docs/method.rst``
    ("Progressive masks") names both and measures them.

    One partition per call, fixed by ``seed`` and shared by the batch, so a batch gives
    exactly what each example gives alone. After each call :attr:`steps` holds a
    :class:`ProgressiveSteps` (images after each step, the groups, the step labels); it
    is ``None`` from the start of a call until the call succeeds.

    Args:
        forward_func (Callable): the model, or any function returning its outputs.
    """

    def __init__(self, forward_func: Callable) -> None:
        super().__init__(forward_func)
        self.steps: ProgressiveSteps | None = None

    @log_usage()
    def attribute(
        self,
        inputs: TensorOrTupleOfTensorsGeneric,
        baselines: Any = 0.0,
        target: TargetType = None,
        additional_forward_args: Any = None,
        feature_mask: None | Tensor | tuple[Tensor, ...] = None,
        internal_batch_size: int | None = None,
        show_progress: bool = False,
        *,
        n_steps: int = 4,
        patch_size: int = 2,
        transform: TransformSetting | None = None,
        threshold: float | None = None,
        binarized: bool | None = None,
        normalization: str | None = None,
        input_range: InputRange = (0.0, 1.0),
        loss: str | LossFn = "cross_entropy",
        step_size: float = 1.0,
        seed: SeedLike = None,
        n_samples: int = 1,
        context_ratio: float = 0.25,
    ) -> TensorOrTupleOfTensorsGeneric:
        r"""
        Args:
            inputs, baselines, additional_forward_args, feature_mask: as in
                :meth:`MaskFill.attribute` (the shared arguments in Captum's order).
            loss, step_size, seed: as in :meth:`MaskFill.attribute`.
            target (int, tuple, Tensor or list, optional): as in
                :meth:`MaskFill.attribute`, except that with ``target=None`` each step's
                class target is the model's prediction on that step's masked input
                (paper section 4.2). Default: None.
            internal_batch_size (int, optional): at most this many examples per
                forward/backward pass (each step is one pass over the batch), and with
                ``n_samples > 1`` at most this many masked copies per pass. Default:
                None (the whole batch in one pass; the copies of ``n_samples`` in chunks
                of :func:`~captum_fillblanks.attr.mask_fill.default_internal_batch_size`).
            show_progress (bool, optional): a progress bar over the steps. Default: False.
            n_steps (int, optional): ``k``, the number of disjoint masks, each blanking
                ``1/k`` of the units; at most the number of units. Default: 4.
            patch_size (int, optional): ``p`` for 4-D inputs. Default: 2.
            transform (TransformSetting, optional): the setting of ``T`` applied to each
                step's update over its group: normalization (``"max_abs"`` or
                ``"min_max"``, :func:`~captum_fillblanks.attr.transforms.normalize_over_blanks`),
                threshold ``tau``, and whether to binarize (``False`` writes the
                normalized update without thresholding). Default: None
                (``TransformSetting()``, the package's default ``T``: see
                :class:`~captum_fillblanks.attr.transforms.TransformSetting`).
            threshold, binarized, normalization (optional): a convenience for the same
                setting, field by field
                (:func:`~captum_fillblanks.attr.transforms.resolve_transform`); not
                together with ``transform``. Default: None (the default of each field).
            input_range (tuple, optional): the values written for ``0`` (background)
                and ``1`` (ink): numbers, or tensors of one value per channel
                (``(1, C, 1, 1)``). Default: (0.0, 1.0).
            n_samples (int, optional): masked copies whose updates each step averages:
                1 is the paper's step (the group's own mask only); more adds random
                masks of the context (see above). The copies are drawn from ``seed``
                after the partition, so the groups do not depend on ``n_samples``, and
                they are shared by the batch. Default: 1.
            context_ratio (float, optional): with ``n_samples > 1``, the share of the
                units outside the step's group that each added copy blanks too, in
                ``(0, 1)`` (rounded as :func:`~captum_fillblanks.attr.masks.n_blank_units`
                rounds, at least one unit). Default: 0.25 (:class:`MaskFill`'s
                ``mask_ratio``).

        Returns:
            **x_k** (Tensor or tuple[Tensor, ...]): the rebuilt input, shaped like the
            inputs; no value of the input survives in it.

        Examples::

            >>> import torch
            >>> from captum_fillblanks import ProgressiveMaskFill
            >>> net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 10)).eval()
            >>> pmf = ProgressiveMaskFill(net)
            >>> rebuilt = pmf.attribute(torch.rand(2, 1, 28, 28), n_steps=4, seed=0)
            >>> pmf.steps.images.shape, pmf.steps.labels.shape
            (torch.Size([4, 2, 1, 28, 28]), torch.Size([4, 2]))
        """
        self.steps = None  # a call that raises leaves no earlier call's steps behind
        check_positive_int("n_steps", n_steps)
        check_positive_int("patch_size", patch_size)
        check_positive_int("internal_batch_size", internal_batch_size, allow_none=True)
        check_step_size(step_size)
        check_positive_int("n_samples", n_samples)
        _check_context_ratio(context_ratio)
        options = _StepOptions(
            n_steps,
            patch_size,
            resolve_transform(transform, threshold=threshold, binarized=binarized, normalization=normalization),
            input_range,
            loss,
            step_size,
            resolve_seed(seed),
            show_progress,
            n_samples,
            context_ratio,
            internal_batch_size,
        )
        is_tuple, formatted = format_inputs(inputs)
        batch = formatted[0].shape[0]
        # the units of the whole batch (a feature mask is one for all examples), so every
        # part of the batch is split into the same groups
        units = unit_maps(formatted, feature_mask, patch_size)
        _check_steps_fit(n_steps, units, feature_mask is not None, patch_size, formatted)
        size = internal_batch_size or batch
        parts = []
        with buffers_restored(self.forward_func):  # a model in training mode is left as it was
            for start in range(0, batch, size):
                rows = slice(start, start + size)
                parts.append(
                    self._fill(
                        slice_examples(inputs, rows, batch),
                        slice_examples(target, rows, batch, is_target=True),
                        slice_examples(additional_forward_args, rows, batch),
                        _slice_baselines(baselines, formatted, rows),
                        units,
                        options,
                    )
                )
        final = tuple(torch.cat(p) for p in zip(*(p[0] for p in parts)))
        images = tuple(torch.cat(p, dim=1) for p in zip(*(p[1] for p in parts)))
        labels = None if parts[0][2] is None else torch.cat([p[2] for p in parts], dim=1)
        self.steps = ProgressiveSteps(
            format_output(is_tuple, images),
            format_output(is_tuple, parts[0][3]),
            labels,
            torch.cat([p[4] for p in parts]),
        )
        return format_output(is_tuple, final)

    def _fill(self, inputs, target, additional_forward_args, baselines, units: Units, options: _StepOptions):
        """One part of the batch: the final images, the images per step, the step labels
        and the groups."""
        n_steps, transform, step_size = options.n_steps, options.transform, options.step_size
        problem = FillProblem(
            self.forward_func, inputs, target, additional_forward_args, baselines, options.loss, "all"
        )
        generator = torch.Generator().manual_seed(options.seed)
        step_of_unit = [partition_units(n, n_steps, generator) for n in units.n_units]
        step_of_element = tuple(step_of_unit[g].to(m.device)[m] for m, g in zip(units.maps, units.groups))
        context = _context_masks(step_of_unit, options, generator)

        current = tuple(t.clone() for t in problem.inputs)
        images: list[list[Tensor]] = [[] for _ in current]
        labels: list[Tensor] = []
        n_nonfinite = torch.zeros(problem.batch_size, dtype=torch.long, device=problem.device)
        for step in progress(range(n_steps), desc="ProgressiveMaskFill steps", disable=not options.show_progress):
            blanks = tuple((s == step)[None] for s in step_of_element)
            masked = problem.mask(blanks, current)
            grads, outputs, _ = problem.gradient(masked, 1, predicted_labels=True)
            if outputs.dim() == 2 and outputs.shape[1] > 1:
                labels.append(outputs.argmax(dim=1))
            if options.n_samples > 1:
                step_labels = outputs.argmax(dim=1) if problem.target is None and problem.labels is not None else None
                context_blanks = tuple(
                    context[step][g].to(m.device)[:, m] | blank for m, g, blank in zip(units.maps, units.groups, blanks)
                )
                grads = _mean_over_copies(problem, current, grads, context_blanks, step_labels, options)
            updated = []
            for tensor, grad, blank in zip(current, grads, blanks):
                n_nonfinite += (blank[0] & ~torch.isfinite(grad)).reshape(grad.shape[0], -1).sum(1)
                fill = transform(-step_size * grad, blank[0])
                updated.append(
                    torch.where(blank[0], to_input_range(fill, options.input_range).to(tensor.dtype), tensor)
                )
            current = tuple(updated)
            for store, tensor in zip(images, current):
                store.append(tensor)
        step_masks = tuple(self._group_masks(s, n_steps, t) for s, t in zip(step_of_element, problem.inputs))
        return (
            current,
            tuple(torch.stack(s) for s in images),
            torch.stack(labels) if labels else None,
            step_masks,
            n_nonfinite,
        )

    @staticmethod
    def _group_masks(step_of_element: Tensor, n_steps: int, tensor: Tensor) -> Tensor:
        steps = torch.arange(n_steps, device=step_of_element.device)
        masks = (step_of_element[None] != steps.reshape(-1, *([1] * step_of_element.dim()))).float()
        if masks.shape[1] == 1:  # the unit map is shared by the batch
            masks = masks[:, 0]
        if tensor.dim() == 4 and masks.dim() == 4 and masks.shape[1] == 1:  # shared over channels
            masks = masks[:, 0]
        return masks


@dataclass(frozen=True)
class _StepOptions:
    """The settings of one call, the same for every part of the batch."""

    n_steps: int
    patch_size: int
    transform: TransformSetting
    input_range: InputRange
    loss: str | LossFn
    step_size: float
    seed: int
    show_progress: bool
    n_samples: int = 1
    context_ratio: float = 0.25
    copies_per_pass: int | None = None


def _check_context_ratio(context_ratio: Any) -> None:
    if not isinstance(context_ratio, (int, float)) or isinstance(context_ratio, bool):
        raise TypeError(f"context_ratio must be a float in (0, 1), got {type(context_ratio).__name__}")
    if not 0.0 < context_ratio < 1.0:
        raise ValueError(f"context_ratio must be in (0, 1) (exclusive), got {context_ratio}")


def _context_masks(step_of_unit: list[Tensor], options: _StepOptions, generator: torch.Generator) -> list[list[Tensor]]:
    """Per step and unit group, the ``n_samples - 1`` added copies' blank units
    ``(n_samples - 1, n_units)``: ``context_ratio`` of the units outside the step's group,
    drawn in a fixed order (step, then group) after the partition. The step's own group
    is added where the copies are masked."""
    n_added = options.n_samples - 1
    masks: list[list[Tensor]] = []
    for step in range(options.n_steps if n_added else 0):
        per_group = []
        for groups in step_of_unit:
            others = (groups != step).nonzero().squeeze(1)
            blank = torch.zeros(n_added, groups.numel(), dtype=torch.bool)
            if others.numel():
                n_blank = n_blank_units(others.numel(), options.context_ratio)
                chosen = torch.rand(n_added, others.numel(), generator=generator).topk(n_blank, dim=1).indices
                blank.scatter_(1, others[chosen], True)
            per_group.append(blank)
        masks.append(per_group)
    return masks


def _mean_over_copies(
    problem: FillProblem,
    current: tuple[Tensor, ...],
    first: tuple[Tensor, ...],
    blanks: tuple[Tensor, ...],
    labels: Tensor | None,
    options: _StepOptions,
) -> tuple[Tensor, ...]:
    """The mean gradient over the group's own copy (``first``) and the added copies
    ``blanks`` (``(n_samples - 1, 1|B, ...)`` per input), in chunks of at most the pass
    size of copies; every copy's class target is ``labels`` when given."""
    batch = problem.batch_size
    per_pass = max(1, (options.copies_per_pass or default_internal_batch_size(problem.inputs)) // batch)
    totals = [g.clone() for g in first]
    n_added = blanks[0].shape[0]
    for start in range(0, n_added, per_pass):
        chunk = tuple(b[start : start + per_pass] for b in blanks)
        n_copies = chunk[0].shape[0]
        masked = problem.mask(chunk, current)
        grads, _, _ = problem.gradient(masked, n_copies, labels=None if labels is None else labels.repeat(n_copies))
        for total, grad in zip(totals, grads):
            total += grad.reshape(n_copies, batch, *grad.shape[1:]).sum(0)
    return tuple(t / options.n_samples for t in totals)


def _check_steps_fit(
    n_steps: int, units: Units, from_feature_mask: bool, patch_size: int, inputs: tuple[Tensor, ...]
) -> None:
    """Every step blanks at least one unit: ``n_steps`` is at most the units of each group."""
    for group, n_units in enumerate(units.n_units):
        if n_steps <= n_units:
            continue
        fix = f"use n_steps <= {n_units}"
        if from_feature_mask:
            what = f"the {n_units} groups of feature_mask"
        elif inputs[group].dim() == 4:
            what = f"the {n_units} patches of patch_size={patch_size} of inputs[{group}] {tuple(inputs[group].shape)}"
            fix += " or a smaller patch_size"
        else:
            what = f"the {n_units} elements of one example of inputs[{group}] {tuple(inputs[group].shape)}"
        raise ValueError(f"n_steps={n_steps} is more than {what}: each step blanks at least one unit; {fix}")


def _slice_baselines(baselines: Any, inputs: tuple[Tensor, ...], rows: slice) -> Any:
    """The baselines of examples ``rows``: only per-example baselines (the input's rank
    and batch size) are sliced; scalars and shared tensors apply to every example."""

    def part(baseline: Any, tensor: Tensor) -> Any:
        per_example = (
            isinstance(baseline, Tensor) and baseline.dim() == tensor.dim() and baseline.shape[0] == tensor.shape[0]
        )
        return baseline[rows] if per_example else baseline

    if isinstance(baselines, tuple):
        return tuple(part(b, t) for b, t in zip(baselines, inputs))
    return part(baselines, inputs[0])
