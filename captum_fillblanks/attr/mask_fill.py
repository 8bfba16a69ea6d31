"""``MaskFill``: the expected fill over random masks (paper section 4.1, Fig. 2).

The estimator it shares with the other fill methods is in :mod:`._estimator`; the
names a user reads of (:class:`FillCounts`, :class:`RecordedFill`,
:func:`relative_error`, the tolerance constants) are re-exported here.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Literal, overload

import torch
from captum.attr import GradientAttribution
from captum.log import log_usage
from torch import Tensor

from ._captum_compat import TargetType, TensorOrTupleOfTensorsGeneric
from ._checks import check_step_size
from ._estimator import (
    FIRST_TOLERANCE_CHECK,
    RECOMMENDED_CAP,
    RECOMMENDED_TOLERANCE,
    Estimate,
    FillCounts,
    FillOptions,
    GradientStep,
    RecordedFill,
    UpdateRule,
    default_internal_batch_size,
    fill_sums,
    finish_estimate,
    relative_error,
)
from ._problem import FillProblem, LossFn, buffers_restored
from .masks import SeedLike

__all__ = [
    "MaskFill",
    "FillCounts",
    "RecordedFill",
    "default_internal_batch_size",
    "relative_error",
    "FIRST_TOLERANCE_CHECK",
    "RECOMMENDED_TOLERANCE",
    "RECOMMENDED_CAP",
]


class MaskFill(GradientAttribution):
    r"""Fill in the blanks with random masks: the model's expected fill of each example.

    From "Fill in the Blanks: Rethinking Interpretability in Vision" (Deelaka et al.).
    Random masks ``M`` blank a fraction ``eta`` (``mask_ratio``) of the input's patches.
    For each masked copy ``M(x)`` the model predicts a class, and the update
    ``delta = -gamma * grad_{x'} L(f(x'), y)`` is taken *with respect to the masked image
    itself* (``gamma`` is ``step_size``): the change the model would make to the blanks
    to make the image more like class ``y``. Draws whose prediction is ``y`` are kept
    (``selection="correct"``), and each position's estimate is the mean update over the
    kept draws in which it was blank::

        fill = sum_i (1 - m_i) * delta_i / sum_i (1 - m_i)

    Visualized through :func:`captum_fillblanks.attr.transforms.prototype`, the fill is the
    model's own prototype of the class, conditioned on the example.

    Every example of a batch walks the same mask sequence, fixed by ``seed``, so a batch
    gives for each example exactly what that example gives alone, for any
    ``internal_batch_size`` and on any device (up to float summation order).

    After each call, :attr:`counts` holds a :class:`FillCounts` (draws made, draws kept
    per example, per-position coverage); it is ``None`` from the start of a call until
    the call succeeds.

    Args:
        forward_func (Callable): the model, or any function returning its outputs.
    """

    def __init__(self, forward_func: Callable) -> None:
        super().__init__(forward_func)
        self.counts: FillCounts | None = None

    def has_convergence_delta(self) -> bool:
        return True

    @overload
    def attribute(
        self,
        inputs: TensorOrTupleOfTensorsGeneric,
        baselines: Any = 0.0,
        target: TargetType = None,
        additional_forward_args: Any = None,
        feature_mask: None | Tensor | tuple[Tensor, ...] = None,
        internal_batch_size: int | None = None,
        show_progress: bool = False,
        return_convergence_delta: Literal[False] = False,
        **kwargs: Any,
    ) -> TensorOrTupleOfTensorsGeneric: ...

    @overload
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
        return_convergence_delta: Literal[True],
        **kwargs: Any,
    ) -> tuple[TensorOrTupleOfTensorsGeneric, Tensor]: ...

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
        return_convergence_delta: bool = False,
        *,
        n_samples: int = 1000,
        mask_ratio: float = 0.25,
        patch_size: int = 2,
        selection: str = "correct",
        loss: str | LossFn = "cross_entropy",
        step_size: float = 1.0,
        max_draws: int | None = None,
        tolerance: float | None = None,
        masks: None | Tensor | tuple[Tensor, ...] = None,
        seed: SeedLike = None,
        select_first: bool | None = None,
        amp_dtype: torch.dtype | None = None,
        record_at: Sequence[int] | None = None,
    ) -> TensorOrTupleOfTensorsGeneric | tuple[TensorOrTupleOfTensorsGeneric, Tensor]:
        r"""
        Args:
            inputs (Tensor or tuple[Tensor, ...]): examples to fill, batch first. Must be
                floating point. 4-D inputs ``(B, C, H, W)`` are masked by patches shared
                over channels; inputs of other ranks element by element.
            baselines (scalar, Tensor or tuple, optional): what a blank holds (``b``);
                tensors broadcast to the input. ``M(x) = m * x + (1 - m) * b``. Default: 0.
            target (int, tuple, Tensor or list, optional): Captum's target, in any of its
                forms. ``None`` for a classifier means the model's prediction on the
                unmasked input. Default: None.
            additional_forward_args (Any, optional): extra arguments to ``forward_func``
                after the inputs; tensors are repeated for the masked copies as Captum
                does. Default: None.
            feature_mask (Tensor or tuple[Tensor, ...], optional): integer unit ids
                broadcastable to the input, as in ``FeatureAblation``; each id is one unit
                (shared across the tensors of a tuple). Replaces patches. One mask for all
                examples (shaped like one example, or with a leading dimension of 1): every
                example walks the same mask sequence over the same units, so a mask with a
                batch dimension whose examples differ is refused (call once per example
                instead). Default: None.
            internal_batch_size (int, optional): masked copies per forward/backward pass
                (all examples together). ``None`` picks one from the input size (see
                :func:`default_internal_batch_size`). Memory does not grow with
                ``n_samples``. Default: None.
            show_progress (bool, optional): show a progress bar of the draws. Default: False.
            return_convergence_delta (bool, optional): also return, per example, the
                Monte-Carlo standard error of the estimate: the largest per-position
                standard error of the mean over positions covered at least once (``inf``
                where a covered position was covered only once; ``NaN`` for an example
                with no kept draw, where no position was covered: no data is not zero
                error). Default: False.
            n_samples (int, optional): kept draws per example. The paper uses more than
                10,000; use the convergence delta to choose. Default: 1000.
            mask_ratio (float, optional): ``eta``, the fraction of units each mask blanks,
                in (0, 1); at least one unit. Default: 0.25.
            patch_size (int, optional): ``p``, side of the square patches of 4-D inputs.
                Default: 2.
            selection (str, optional): ``"correct"`` keeps draws the model classifies as
                the target (the paper); ``"all"`` keeps every draw. Default: "correct".
            loss (str or Callable, optional): ``"cross_entropy"`` on logits,
                ``"target"`` (``L = -f(x')[y]``, for any output Captum can select), or
                ``loss(outputs, target) -> (rows,)`` losses, where ``target`` is the class
                index per row when one is known, else Captum's target expanded to the rows.
                Default: "cross_entropy".
            step_size (float, optional): ``gamma``; only scales the update. Default: 1.0.
            max_draws (int, optional): stop after this many draws even if some example
                has fewer than ``n_samples`` kept (with a warning); a hard limit, at least
                ``n_samples``. Default: ``10 * n_samples``.
            tolerance (float, optional): stop each example once its fill is this
                precise: when the relative Monte-Carlo error of its fill
                (:func:`relative_error`: the L2 norm of the per-position standard errors
                over the L2 norm of the fill, over the positions its kept draws covered)
                is at most ``tolerance``. The error is checked when the example's own kept
                draws reach 32, 64, 128, ... (doubling), so where it stops, and so its
                fill, depend only on the example and the seed, not on the batch or
                ``internal_batch_size``. ``n_samples`` is then the most kept draws and
                ``max_draws`` the most draws; ``counts.converged`` says which examples
                reached the tolerance, ``counts.n_kept`` where each stopped, and the
                convergence delta is this same relative error. ``None``: exactly
                ``n_samples`` kept draws. Not with ``masks``. Measured to be enough for
                the paper's results: :data:`RECOMMENDED_TOLERANCE` (0.15) with
                ``n_samples=RECOMMENDED_CAP`` (3000). Default: None.
            masks (Tensor or tuple[Tensor, ...], optional): the caller's own masks
                (``1`` kept, ``0`` blank) instead of random draws: one mask, or a stack with
                a leading mask dimension (images: ``(H, W)`` or ``(n, H, W)``). Every mask
                is used once; ``n_samples``, ``mask_ratio``, ``patch_size``,
                ``feature_mask``, ``max_draws`` and ``seed`` do not apply. With one mask
                and ``selection="all"`` the result is that mask's update at its blanks.
            seed (int or torch.Generator, optional): fixes the mask sequence. ``None``
                draws one seed per call from torch's global RNG. Default: None.
            select_first (bool, optional): with ``selection="correct"``, ``True`` first
                classifies each chunk with a forward-only pass and back-propagates only
                the kept copies; ``False`` does one forward+backward pass over every copy.
                ``None`` decides on the first chunk: select first when fewer than half
                of its copies are kept. The result is the same either way. Default: None.
            amp_dtype (torch.dtype, optional): run the model under ``torch.autocast``
                with this dtype (e.g. ``torch.bfloat16``) for speed; the inputs, the
                gradient and the running sums stay in the input's precision. Compare
                with a float32 run before trusting it. Default: None (no autocast).
            record_at (sequence of int, optional): also keep each example's fill as it
                was when its own kept draws reached each of these counts (each at most
                ``n_samples``), in ``counts.recorded``. The first ``n`` kept draws of a
                call are the kept draws of a call with ``n_samples=n`` (same seed), so one
                call gives the fill at every count: a study of how many masks a result
                needs costs one run at the largest. Default: None.

        Returns:
            **attributions** or (**attributions**, **delta**):
            - **attributions** (Tensor or tuple[Tensor, ...]): the fill, shaped like the
              inputs, on their device; zero where no kept draw blanked a position.
            - **delta** (Tensor): ``(batch,)`` Monte-Carlo standard error, if asked;
              ``NaN`` for an example with no kept draw.

        Examples::

            >>> import torch
            >>> from captum.attr import IntegratedGradients
            >>> from captum_fillblanks import MaskFill
            >>> net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 10)).eval()
            >>> images = torch.rand(2, 1, 28, 28)
            >>> fill, delta = MaskFill(net).attribute(
            ...     images, target=3, n_samples=200, seed=0, return_convergence_delta=True)
            >>> fill.shape, delta.shape
            (torch.Size([2, 1, 28, 28]), torch.Size([2]))
            >>> ig = IntegratedGradients(net).attribute(images, target=3)

        The shared arguments come in Captum's order (``inputs, baselines, target,
        additional_forward_args, feature_mask``, as in ``IntegratedGradients`` and
        ``FeatureAblation``), so a positional call copied from those means the same here.
        """
        self.counts = None  # a call that raises leaves no earlier call's counts behind
        check_step_size(step_size)
        options = FillOptions.from_call(locals())
        estimate = self._attribute(
            inputs, baselines, target, additional_forward_args, feature_mask, options, GradientStep(step_size)
        )
        return self._finish(estimate, return_convergence_delta)

    def compute_convergence_delta(self, *args: Any, **kwargs: Any) -> Tensor:
        """Not available from attributions alone: the convergence delta of the fill
        methods is the Monte-Carlo standard error of the estimate, which needs the
        per-draw updates. Ask ``attribute(..., return_convergence_delta=True)`` for it.

        (Captum's inherited version computes Integrated Gradients' completeness gap,
        which means nothing for a fill.)

        Raises:
            NotImplementedError: always.
        """
        raise NotImplementedError(
            f"{type(self).__name__}'s convergence delta is the Monte-Carlo standard error of "
            "the fill, which needs the draws: call attribute(..., return_convergence_delta=True)"
        )

    def _attribute(
        self,
        inputs: Any,
        baselines: Any,
        target: TargetType,
        additional_forward_args: Any,
        feature_mask: Any,
        options: FillOptions,
        update: UpdateRule,
    ) -> Estimate:
        """The estimator over the call's inputs: normalize them into a
        :class:`FillProblem`, then :func:`fill_sums`. Returns the sums, not the fill."""
        with buffers_restored(self.forward_func):  # a model in training mode is left as it was
            problem = FillProblem(
                self.forward_func,
                inputs,
                target,
                additional_forward_args,
                baselines,
                options.loss,
                options.selection,
                options.amp_dtype,
            )
            return fill_sums(problem, feature_mask, options, update, desc=f"{type(self).__name__} draws")

    def _finish(self, estimate: Estimate, return_convergence_delta: bool) -> Any:
        """The fill (and its standard error) from the sums; sets :attr:`counts`."""
        result, self.counts = finish_estimate(estimate, return_convergence_delta)
        return result
