"""The second-order update (paper section 4.5, Fig. 5): BFGS in input space.

The first-order method moves a masked copy ``x_0 = M(x)`` by one gradient step. Here the
copy is moved by ``T`` iterations of BFGS instead: ``x_{t+1} = x_t + alpha_t p_t`` with
``B_t p_t = -grad L(x_t)``, and the update is ``x_T - x_0``.

Two layers, as elsewhere in the package:

- pure functions on a batch of independent problems flattened to ``(rows, n)``:
  :func:`bfgs_minimize`, its line searches (:func:`armijo_line_search`,
  :func:`fixed_step`) and :func:`fill_cosine_similarity`, to compare two fills;
- :class:`BFGSMaskFill`, ``MaskFill`` with this update in place of the gradient step.

Each row keeps its own curvature: one ``(n, n)`` inverse Hessian per row, or, where that
would not fit, its own ``(s, y)`` pairs in the two-loop recursion. Nothing is shared
between rows, so a row gives the same result in any batch.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, overload

import torch
import torch.nn.functional as F
from captum.log import log_usage
from torch import Tensor

from ._captum_compat import TargetType, TensorOrTupleOfTensorsGeneric
from ._checks import check_positive_int, check_step_size
from ._estimator import FillOptions
from ._problem import FillProblem, LossFn
from .mask_fill import MaskFill
from .masks import SeedLike

__all__ = [
    "BFGSMaskFill",
    "BFGSResult",
    "bfgs_minimize",
    "armijo_line_search",
    "fixed_step",
    "dense_fits",
    "fill_cosine_similarity",
    "DENSE_BUDGET_BYTES",
]

LossAndGrad = Callable[[Tensor], tuple[Tensor, Tensor]]
"""``loss_and_grad(x) -> (losses, grads)``: ``x`` is ``(rows, n)``, losses ``(rows,)``,
grads ``(rows, n)``; row ``r`` of the result may depend only on row ``r`` of ``x``."""

LineSearch = Callable[[LossAndGrad, Tensor, Tensor, Tensor, Tensor], tuple[Tensor, Tensor, Tensor]]
"""``line_search(loss_and_grad, x, direction, loss, grad) -> (step, new_loss, new_grad)``:
one step length ``alpha`` per row, and the loss and gradient at ``x + alpha * direction``."""

DENSE_BUDGET_BYTES = 2**30
"""Largest total size of the dense inverse Hessians chosen automatically: 1 GiB holds one
``784 x 784`` float32 matrix (MNIST) for each of 256 masked copies, ``MaskFill``'s CPU
default chunk."""


def dense_fits(rows: int, n: int, dtype: torch.dtype = torch.float32, budget: float = DENSE_BUDGET_BYTES) -> bool:
    """Whether ``rows`` dense ``n x n`` inverse Hessians of ``dtype`` fit in ``budget`` bytes.

    The rule :func:`bfgs_minimize` uses with ``memory=None``:
    ``rows * n * n * itemsize <= budget``.
    """
    return rows * n * n * torch.empty((), dtype=dtype).element_size() <= budget


@dataclass
class BFGSResult:
    """What :func:`bfgs_minimize` returns, per row.

    Attributes:
        x (Tensor): ``(rows, n)``, the last iterate ``x_T``.
        displacement (Tensor): ``(rows, n)``, ``x_T - x_0`` summed from the steps taken
            (no cancellation against ``x_0``).
        loss (Tensor): ``(rows,)``, the loss at ``x_T``.
        grad (Tensor): ``(rows, n)``, the gradient at ``x_T``.
        steps (Tensor): ``(n_iter, rows)``, the step length ``alpha_t`` each iteration took;
            ``0`` where the line search found no acceptable step (the row stayed put).
        n_pairs (Tensor): ``(rows,)``, curvature pairs that passed ``y.s > 0`` and updated
            the row's inverse Hessian.
        dense (bool): whether dense inverse Hessians were used (else the two-loop recursion).
    """

    x: Tensor
    displacement: Tensor
    loss: Tensor
    grad: Tensor
    steps: Tensor
    n_pairs: Tensor
    dense: bool


def armijo_line_search(
    loss_and_grad: LossAndGrad,
    x: Tensor,
    direction: Tensor,
    loss: Tensor,
    grad: Tensor,
    *,
    initial: float = 1.0,
    c1: float = 1e-4,
    shrink: float = 0.5,
    max_backtracks: int = 20,
    tolerance: None | float | Tensor = None,
) -> tuple[Tensor, Tensor, Tensor]:
    """Backtracking line search with the Armijo condition, one step length per row.

    Tries ``alpha = initial * shrink**k`` for ``k = 0 .. max_backtracks`` and keeps, per row,
    the first that decreases the loss enough:
    ``L(x + alpha p) <= L(x) + c1 * alpha * grad.p + tolerance``. The tolerance is the
    precision of the loss (default ``4 * eps * max(|L(x)|, 1)``, ``eps`` of the loss's
    dtype; losses are taken to be of order one or larger, as cross-entropy and logits
    are): where the predicted decrease is below it, the loss cannot confirm it (a
    confident cross-entropy rounds to a constant in float32), and a step that does not
    measurably raise the loss is taken. A row that finds no step gets ``alpha = 0`` and
    stays where it is; it stops searching early once its step is below the precision of
    ``x`` (``alpha * max|p| <= eps * max|x|``), and a row with ``p = 0`` takes
    ``alpha = 0`` at once. Every trial evaluates all rows (they form one batch for the
    model); rows already served keep their accepted value, and the search ends as soon
    as every row is served. ``initial = 1`` is the natural quasi-Newton step.

    Follows the :data:`LineSearch` protocol; use ``functools.partial`` to change the
    keyword arguments.
    """
    slope = (grad * direction).sum(dim=1)
    length = direction.abs().amax(dim=1)
    resolution = torch.finfo(x.dtype).eps * x.abs().amax(dim=1)
    if tolerance is None:
        tolerance = 4 * torch.finfo(loss.dtype).eps * loss.abs().clamp(min=1)
    alpha = torch.full_like(length, initial)
    step = torch.zeros_like(alpha)
    served = length == 0
    new_loss, new_grad = loss.clone(), grad.clone()
    for _ in range(max_backtracks + 1):
        if bool(served.all()):
            break
        trial_loss, trial_grad = loss_and_grad(x + alpha[:, None] * direction)
        # NaN losses compare False, so a step into a NaN region is rejected
        ok = ~served & (trial_loss <= loss + c1 * alpha * slope + tolerance)
        step = torch.where(ok, alpha, step)
        new_loss = torch.where(ok, trial_loss, new_loss)
        new_grad = torch.where(ok[:, None], trial_grad, new_grad)
        alpha = torch.where(served | ok, alpha, alpha * shrink)
        served |= ok | (alpha * length <= resolution)
    return step, new_loss, new_grad


def fixed_step(
    loss_and_grad: LossAndGrad,
    x: Tensor,
    direction: Tensor,
    loss: Tensor,
    grad: Tensor,
    *,
    step: float = 1.0,
) -> tuple[Tensor, Tensor, Tensor]:
    """The same step length ``alpha = step`` for every row and iteration, no search.

    With the default ``step = 1`` one iteration from the identity is exactly the
    gradient step ``-grad``. Follows the :data:`LineSearch` protocol.
    """
    new_loss, new_grad = loss_and_grad(x + step * direction)
    return torch.full_like(loss, step, dtype=x.dtype), new_loss, new_grad


_LINE_SEARCHES = {"armijo": armijo_line_search, "fixed": fixed_step}


def _resolve_line_search(line_search: str | LineSearch) -> LineSearch:
    if callable(line_search):
        return line_search
    if line_search not in _LINE_SEARCHES:
        raise ValueError(
            f"line_search must be one of {tuple(_LINE_SEARCHES)} or a callable "
            f"(loss_and_grad, x, direction, loss, grad) -> (step, loss, grad), got {line_search!r}"
        )
    return _LINE_SEARCHES[line_search]


def _check_memory(memory: Any) -> None:
    if memory is None or memory == "dense":
        return
    if isinstance(memory, bool) or not isinstance(memory, int) or memory < 1:
        raise ValueError(
            f"memory must be None (choose automatically), 'dense', or a positive int "
            f"(curvature pairs kept per row), got {memory!r}"
        )


class _DenseInverse:
    """One inverse-Hessian approximation ``H`` per row, ``(rows, n, n)``, from the identity."""

    def __init__(self, rows: int, n: int, like: Tensor) -> None:
        eye = torch.eye(n, dtype=like.dtype, device=like.device)
        self.matrix = eye.expand(rows, n, n).clone()
        self._eye = eye

    def apply(self, grad: Tensor) -> Tensor:
        return torch.bmm(self.matrix, grad.unsqueeze(2)).squeeze(2)

    def update(self, s: Tensor, y: Tensor, rho: Tensor) -> Tensor:
        """Update the rows with ``rho != 0``; return which rows were updated."""
        # H+ = (I - rho s y^T) H (I - rho y s^T) + rho s s^T, as one batched rank-2 update;
        # rho = 0 leaves a row unchanged
        h = self.apply(y)
        c = rho * (1 + rho * (y * h).sum(dim=1))
        updated = (rho != 0) & torch.isfinite(c)
        rho = torch.where(updated, rho, torch.zeros_like(rho))
        c = torch.where(updated, c, torch.zeros_like(c))
        left = torch.stack([s, h], dim=2)
        right = torch.stack([c[:, None] * s - rho[:, None] * h, -rho[:, None] * s], dim=1)
        self.matrix.baddbmm_(left, right)
        return updated

    def reset(self, rows: Tensor) -> None:
        self.matrix[rows] = self._eye


class _TwoLoop:
    """Limited-memory BFGS: each row's last ``memory`` pairs, applied by the two-loop recursion.

    Pairs are stored per iteration for all rows; a row whose pair was skipped holds
    ``rho = 0`` in that slot, which makes the slot a no-op for that row. Every iteration
    takes a slot, skipped or not, so which pairs a row keeps never depends on other rows.
    """

    def __init__(self, memory: int | None) -> None:
        self.history: deque[tuple[Tensor, Tensor, Tensor]] = deque(maxlen=memory)

    def apply(self, grad: Tensor) -> Tensor:
        q = grad.clone()
        alphas = []
        for s, y, rho in reversed(self.history):
            a = rho * (s * q).sum(dim=1)
            q -= a[:, None] * y
            alphas.append(a)
        for (s, y, rho), a in zip(self.history, reversed(alphas)):  # H_0 = I: r starts as q
            b = rho * (y * q).sum(dim=1)
            q += (a - b)[:, None] * s
        return q

    def update(self, s: Tensor, y: Tensor, rho: Tensor) -> Tensor:
        self.history.append((s, y, rho))
        return rho != 0

    def reset(self, rows: Tensor) -> None:
        for i, (s, y, rho) in enumerate(self.history):
            self.history[i] = (s, y, torch.where(rows, torch.zeros_like(rho), rho))


def bfgs_minimize(
    loss_and_grad: LossAndGrad,
    x0: Tensor,
    n_iter: int,
    *,
    memory: None | int | str = None,
    line_search: str | LineSearch = "armijo",
    initial: tuple[Tensor, Tensor] | None = None,
    dense_budget: float = DENSE_BUDGET_BYTES,
) -> BFGSResult:
    r"""Run ``n_iter`` BFGS iterations on each row of ``x0``, every row its own problem.

    Iteration ``t``: ``p_t = -H_t grad L(x_t)``, ``x_{t+1} = x_t + alpha_t p_t``, then the
    standard inverse update with ``s = x_{t+1} - x_t``, ``y = grad_{t+1} - grad_t``,
    ``rho = 1 / y.s``:
    ``H_{t+1} = (I - rho s y^T) H_t (I - rho y s^T) + rho s s^T``.
    ``H_0 = I`` (no scaling), so one iteration is a gradient step of length ``alpha_0``.
    A row skips the update when its curvature is not safely positive,
    ``y.s <= eps |y| |s|`` with ``eps`` the square root of the dtype's machine epsilon,
    or when ``1 / y.s`` would overflow (also when it did not move). A row whose
    direction is not a descent direction (rounding) takes ``-grad`` instead. A row whose
    line search finds no step (``alpha = 0``) restarts from ``H = I``; if even ``-grad``
    finds none, the row has converged as far as the loss can tell and stays where it is
    for the remaining iterations.

    Args:
        loss_and_grad (Callable): ``loss_and_grad(x) -> (losses, grads)`` for ``x`` of
            shape ``(rows, n)``: losses ``(rows,)``, gradients ``(rows, n)``. Row ``r`` of
            the result must depend only on row ``r`` of ``x``.
        x0 (Tensor): ``(rows, n)`` floating-point starting points.
        n_iter (int): iterations ``T`` (``0`` returns ``x0``).
        memory (None, int or "dense", optional): how each row stores its curvature.
            ``None`` chooses: a dense ``(n, n)`` inverse Hessian per row if
            :func:`dense_fits` (``rows * n * n * itemsize <= dense_budget``), else the
            two-loop recursion over all of the row's pairs (``2 * n_iter`` vectors per
            row) — the same algorithm, so the choice changes cost, not the result.
            ``"dense"`` forces the matrices. An int ``m`` uses limited-memory BFGS: the
            two-loop recursion over the last ``m`` iterations' pairs (equal to dense
            BFGS while ``m >= n_iter``). Default: None.
        line_search (str or Callable, optional): ``"armijo"``:
            :func:`armijo_line_search` (backtracking from ``alpha = 1``, per row);
            ``"fixed"``: :func:`fixed_step` (``alpha = 1``); or a callable following
            :data:`LineSearch`, e.g. an exact line search for a quadratic.
            Default: "armijo".
        initial (tuple[Tensor, Tensor], optional): ``(losses, grads)`` already computed
            at ``x0``, to save one evaluation. Default: None.
        dense_budget (float, optional): bytes allowed for the dense matrices when
            ``memory=None``. Default: :data:`DENSE_BUDGET_BYTES` (1 GiB).

    Returns:
        :class:`BFGSResult`: ``x_T``, ``x_T - x_0``, the loss and gradient at ``x_T``, the
        step lengths and the number of curvature pairs used, per row.

    Examples::

        >>> import torch
        >>> a = torch.tensor([[1.0, 10.0], [2.0, 3.0]])  # two diagonal quadratics
        >>> result = bfgs_minimize(
        ...     lambda x: ((a * x * x).sum(1) / 2, a * x), torch.ones(2, 2), n_iter=20)
        >>> result.x.abs().max() < 1e-4
        tensor(True)
    """
    if not isinstance(x0, Tensor) or x0.dim() != 2 or not x0.is_floating_point():
        raise ValueError(
            f"x0 must be a floating-point Tensor of shape (rows, n), got "
            f"{tuple(x0.shape) if isinstance(x0, Tensor) else type(x0).__name__}"
            + (f" of dtype {x0.dtype}" if isinstance(x0, Tensor) else "")
        )
    if isinstance(n_iter, bool) or not isinstance(n_iter, int) or n_iter < 0:
        raise ValueError(f"n_iter must be a non-negative int, got {n_iter!r}")
    _check_memory(memory)
    search = _resolve_line_search(line_search)
    rows, n = x0.shape
    x = x0.detach()
    loss, grad = initial if initial is not None else loss_and_grad(x)
    loss, grad = _check_evaluation(loss, grad, rows, n)

    dense = memory == "dense" or (memory is None and dense_fits(rows, n, x.dtype, dense_budget))
    curvature = _DenseInverse(rows, n, x) if dense else _TwoLoop(None if memory is None else memory)
    eps = torch.finfo(x.dtype).eps ** 0.5
    tiny = torch.finfo(x.dtype).tiny
    displacement = torch.zeros_like(x)
    steps = torch.zeros(n_iter, rows, dtype=x.dtype, device=x.device)
    n_pairs = torch.zeros(rows, dtype=torch.long, device=x.device)
    pairs_since_reset = torch.zeros_like(n_pairs)
    converged = torch.zeros(rows, dtype=torch.bool, device=x.device)
    for t in range(n_iter):
        grad = grad.to(x.dtype)
        gradient_step = pairs_since_reset == 0
        if bool(gradient_step.all()):  # H = I everywhere (the first iteration): skip H g
            direction = -grad
        else:
            direction = -curvature.apply(grad)
            gradient_step |= (grad * direction).sum(dim=1) >= 0
            direction = torch.where(gradient_step[:, None], -grad, direction)
        direction = torch.where(converged[:, None], torch.zeros_like(direction), direction)
        step, new_loss, new_grad = search(loss_and_grad, x, direction, loss, grad)
        step = _check_step(step, rows)
        new_loss, new_grad = _check_evaluation(new_loss, new_grad, rows, n)
        s = step[:, None] * direction
        y = new_grad.to(x.dtype) - grad
        ys = (y * s).sum(dim=1)
        curved = (ys > eps * y.norm(dim=1) * s.norm(dim=1)) & (ys >= tiny)
        rho = torch.where(curved, 1.0 / torch.where(curved, ys, torch.ones_like(ys)), torch.zeros_like(ys))
        curved = curvature.update(s, y, rho)
        failed = (step == 0) & (direction != 0).any(dim=1)
        if bool(failed.any()):
            curvature.reset(failed)
            converged |= failed & gradient_step
        pairs_since_reset = torch.where(failed, 0, pairs_since_reset + curved.long())
        x = x + s
        displacement += s
        loss, grad = new_loss, new_grad
        steps[t] = step
        n_pairs += curved.long()
    return BFGSResult(x, displacement, loss, grad, steps, n_pairs, dense)


def _check_step(step: Any, rows: int) -> Tensor:
    """The line search's step: one finite, non-negative length per row."""
    if not isinstance(step, Tensor) or step.shape != (rows,):
        raise ValueError(
            f"line_search must return one step length per row, shape ({rows},), got "
            f"{tuple(step.shape) if isinstance(step, Tensor) else type(step).__name__}"
        )
    if not bool(torch.isfinite(step).all()) or bool((step < 0).any()):
        raise ValueError(f"line_search returned step lengths that are not finite and non-negative: {step.tolist()[:8]}")
    return step.detach()


def _check_evaluation(loss: Any, grad: Any, rows: int, n: int) -> tuple[Tensor, Tensor]:
    if not (isinstance(loss, Tensor) and isinstance(grad, Tensor)) or loss.shape != (rows,) or grad.shape != (rows, n):
        raise ValueError(
            f"loss_and_grad must return (losses of shape ({rows},), gradients of shape "
            f"({rows}, {n})), got shapes "
            f"{tuple(getattr(loss, 'shape', ()))} and {tuple(getattr(grad, 'shape', ()))}"
        )
    return loss.detach(), grad.detach()


def fill_cosine_similarity(first: TensorOrTupleOfTensorsGeneric, second: TensorOrTupleOfTensorsGeneric) -> Tensor:
    """Cosine similarity, per example, between two fills of the same inputs.

    Each example's fill (all tensors of a tuple together) is one vector. The paper's
    Fig. 5 compares the first-order fill with the second-order one this way; ``0`` where
    either fill is zero.

    Args:
        first, second (Tensor or tuple[Tensor, ...]): fills of the same shapes, batch first,
            e.g. ``MaskFill(net).attribute(x, seed=0)`` and
            ``BFGSMaskFill(net).attribute(x, seed=0)``.

    Returns:
        Tensor: ``(batch,)`` cosine similarities in ``[-1, 1]``.

    Examples::

        >>> import torch
        >>> first = torch.tensor([[1.0, 0.0], [1.0, 1.0], [3.0, 4.0]])
        >>> fill_cosine_similarity(first, torch.tensor([[0.0, 2.0], [-1.0, -1.0], [6.0, 8.0]]))
        tensor([ 0., -1.,  1.])
    """
    a = first if isinstance(first, tuple) else (first,)
    b = second if isinstance(second, tuple) else (second,)
    if len(a) != len(b) or any(
        not isinstance(u, Tensor) or not isinstance(v, Tensor) or u.shape != v.shape for u, v in zip(a, b)
    ):
        raise ValueError(
            "the two fills must have the same structure and shapes, got "
            f"{[tuple(getattr(u, 'shape', ())) for u in a]} and {[tuple(getattr(v, 'shape', ())) for v in b]}"
        )
    return F.cosine_similarity(_flatten_rows(a).double(), _flatten_rows(b).double(), dim=1).float()


def _flatten_rows(tensors: tuple[Tensor, ...]) -> Tensor:
    """The tensors of a tuple as one ``(rows, n)`` matrix, each row all of one example."""
    return torch.cat([t.reshape(t.shape[0], -1) for t in tensors], dim=1)


def _unflatten_rows(flat: Tensor, like: tuple[Tensor, ...]) -> tuple[Tensor, ...]:
    sizes = [t[0].numel() for t in like]
    return tuple(part.reshape(t.shape).to(t.dtype) for part, t in zip(flat.split(sizes, dim=1), like))


class BFGSMaskFill(MaskFill):
    r"""Fill in the blanks with a second-order update (paper section 4.5, Fig. 5).

    The estimator of :class:`~captum_fillblanks.MaskFill` (random masks, selection of
    the draws the model classifies as the target, mean update over the blanks), with the
    gradient step replaced by ``n_iter`` BFGS iterations in input space from the masked
    copy ``x_0 = M(x)``: each iteration solves ``B_t p_t = -grad L(x_t)`` with ``B_t`` the
    BFGS approximation of the Hessian, and the update is ``gamma * (x_T - x_0)``
    (``gamma`` is ``step_size``). The draw is still kept or not on the model's prediction
    at ``x_0``, the masked copy itself. See :func:`bfgs_minimize` for the iteration.

    All tensors of a tuple input form one vector per copy, and every masked copy of
    every example is its own problem with its own curvature; the copies of a chunk are
    minimized together with batched tensor operations. Steps are chosen by a per-copy
    Armijo backtracking line search by default; each iteration costs one forward and
    backward pass over the chunk, plus one per backtrack.

    Args:
        forward_func (Callable): the model, or any function returning its outputs.
    """

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
        n_iter: int = 5,
        memory: None | int | str = None,
        line_search: str | LineSearch = "armijo",
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
        select_first: bool | None = True,
        amp_dtype: torch.dtype | None = None,
        record_at: Sequence[int] | None = None,
    ) -> TensorOrTupleOfTensorsGeneric | tuple[TensorOrTupleOfTensorsGeneric, Tensor]:
        r"""
        Args:
            inputs, baselines, target, additional_forward_args: as in
                :meth:`MaskFill.attribute <captum_fillblanks.MaskFill.attribute>`.
            feature_mask, internal_batch_size, show_progress, return_convergence_delta: as
                in :meth:`MaskFill.attribute <captum_fillblanks.MaskFill.attribute>`.
            n_samples, mask_ratio, patch_size, selection, loss: as in
                :meth:`MaskFill.attribute <captum_fillblanks.MaskFill.attribute>`.
            max_draws, tolerance, masks, seed, amp_dtype, record_at: as in
                :meth:`MaskFill.attribute <captum_fillblanks.MaskFill.attribute>`.
            step_size (float, optional): ``gamma``; scales the final update
                ``x_T - x_0``, not the steps of the iteration. Default: 1.0.
            select_first (bool, optional): as in :meth:`MaskFill.attribute
                <captum_fillblanks.MaskFill.attribute>`, but ``True`` by default: an update
                costs several passes, so only the kept copies get one. Default: True.
            n_iter (int, optional): BFGS iterations ``T`` per masked copy. With ``1`` and
                ``line_search="fixed"`` the update is the gradient step, i.e. ``MaskFill``.
                Default: 5.
            memory (None, int or "dense", optional): ``None`` keeps a dense inverse
                Hessian per copy when :func:`dense_fits` for the chunk (MNIST: 256 copies
                of 784 values), else the two-loop recursion over all pairs — the same
                result either way. ``"dense"`` forces the matrices; an int ``m`` keeps
                only the last ``m`` pairs (limited-memory BFGS). Default: None.
            line_search (str or Callable, optional): ``"armijo"`` (per-copy backtracking
                from ``alpha = 1``, see :func:`armijo_line_search`), ``"fixed"``
                (``alpha = 1``) or a callable following :data:`LineSearch`.
                Default: "armijo".

        Returns:
            **attributions** or (**attributions**, **delta**): as in
            :meth:`MaskFill.attribute <captum_fillblanks.MaskFill.attribute>`, from the
            second-order updates.

        Examples::

            >>> import torch
            >>> from captum_fillblanks import BFGSMaskFill, MaskFill, fill_cosine_similarity
            >>> net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 10)).eval()
            >>> images = torch.rand(2, 1, 28, 28)
            >>> second = BFGSMaskFill(net).attribute(images, target=3, n_samples=20, seed=0)
            >>> first = MaskFill(net).attribute(images, target=3, n_samples=20, seed=0)
            >>> fill_cosine_similarity(first, second).shape
            torch.Size([2])
        """
        self.counts = None  # a call that raises leaves no earlier call's counts behind
        check_positive_int("n_iter", n_iter)
        _check_memory(memory)
        _resolve_line_search(line_search)
        check_step_size(step_size)
        options = FillOptions.from_call(locals())
        update = BFGSStep(n_iter, memory, line_search, step_size)
        estimate = self._attribute(inputs, baselines, target, additional_forward_args, feature_mask, options, update)
        return self._finish(estimate, return_convergence_delta)


@dataclass(frozen=True)
class BFGSStep:
    """The second-order update rule: ``step_size * (x_T - x_0)`` after ``n_iter`` BFGS
    iterations from each masked copy ``x_0``, with the outputs at ``x_0``."""

    n_iter: int = 5
    memory: None | int | str = None
    line_search: str | LineSearch = "armijo"
    step_size: float = 1.0

    def __call__(
        self, problem: FillProblem, masked: tuple[Tensor, ...], n_masks: int, rows: Tensor | None = None
    ) -> tuple[tuple[Tensor, ...], Tensor]:
        grads, outputs, losses = problem.gradient(masked, n_masks, rows=rows)

        def loss_and_grad(x: Tensor) -> tuple[Tensor, Tensor]:
            grads_x, _, losses_x = problem.gradient(_unflatten_rows(x, masked), n_masks, rows=rows)
            return losses_x, _flatten_rows(grads_x)

        result = bfgs_minimize(
            loss_and_grad,
            _flatten_rows(masked),
            self.n_iter,
            memory=self.memory,
            line_search=self.line_search,
            initial=(losses, _flatten_rows(grads)),
        )
        return _unflatten_rows(self.step_size * result.displacement, masked), outputs
