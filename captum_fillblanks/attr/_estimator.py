"""The estimator every fill method shares: masks drawn, updates kept, sums and stopping.

:class:`~captum_fillblanks.MaskFill`, :class:`~captum_fillblanks.BFGSMaskFill` and
:class:`~captum_fillblanks.LayerMaskFill` each state their call as a
:class:`~._problem.FillProblem`, a :class:`FillOptions` and an :data:`UpdateRule`, and
hand them to :func:`fill_sums`; :func:`finish_estimate` turns the sums into the fill and
the call's :class:`FillCounts`. Private to the package: the names in ``__all__`` are
what the method modules import (as ``_captum_compat``'s are); the public ones among
them (the counts, the tolerance constants) are re-exported by
:mod:`captum_fillblanks.attr.mask_fill`, where the docs name them.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any, NamedTuple, Protocol

import torch
from torch import Tensor

from ._captum_compat import format_output, progress
from ._checks import check_positive_int
from ._problem import FillProblem, LossFn, caller_stacklevel
from ._units import Units, unit_maps
from .masks import MaskSequence, SeedLike, blank_stack, n_blank_units, resolve_seed

__all__ = [
    "FIRST_TOLERANCE_CHECK",
    "RECOMMENDED_TOLERANCE",
    "RECOMMENDED_CAP",
    "RecordedFill",
    "FillCounts",
    "default_internal_batch_size",
    "relative_error",
    "FillOptions",
    "UpdateRule",
    "GradientStep",
    "Estimate",
    "fill_sums",
    "finish_estimate",
]

#: With ``tolerance``, each example's error is first checked when its own kept draws
#: reach this count, then at every doubling (64, 128, 256, ...): where it stops depends
#: only on the example and the seed, never on the batch or the chunking.
FIRST_TOLERANCE_CHECK = 32

#: The tolerance to stop by, with :data:`RECOMMENDED_CAP` as ``n_samples``: in the mask
#: study of the reproduction (``docs/reproduction/*/masks.md``) it kept Table 1's fill
#: rows and the readability checks of the shipped MNIST models within one standard error
#: of their 10,000-mask values, drawing 10--17 % of the draws (``docs/choosing.rst``).
#: ``tolerance`` is off unless given: ``tolerance=RECOMMENDED_TOLERANCE``.
RECOMMENDED_TOLERANCE = 0.15

#: The cap (``n_samples``) that goes with :data:`RECOMMENDED_TOLERANCE`: the images whose
#: fill never gets that precise stop here instead of at 10,000.
RECOMMENDED_CAP = 3000

# Acceptance rate under which ``select_first=None`` switches to a forward-only selection
# pass followed by back-propagation of the kept copies only.
SELECT_FIRST_BELOW = 0.5


class RecordedFill(NamedTuple):
    """Each example's fill as it was when its own kept draws reached one count of
    ``record_at`` (or where it stopped, for an example that never reached it).

    Attributes:
        fill (Tensor or tuple[Tensor, ...]): shaped like the inputs, as ``attribute``
            returns the fill: exactly the fill of a call with ``n_samples`` equal to the
            count (the same masks, kept the same way; up to float summation order).
        n_kept (Tensor): ``(batch,)`` the kept draws in it: the count, or fewer where the
            example stopped before it (``tolerance``, ``max_draws``).
        relative_error (Tensor): ``(batch,)`` :func:`relative_error` of that fill.
    """

    fill: Any
    n_kept: Tensor
    relative_error: Tensor


@dataclass
class FillCounts:
    """What one call of a fill method measured.

    Attributes:
        n_drawn (int): masks drawn (every example walks the same sequence).
        n_kept (Tensor): ``(batch,)`` kept draws per example (at most ``n_samples``).
        coverage (tuple[Tensor, ...]): per input, shaped like it: the number of kept
            draws in which each element was blank — the denominator of the estimate.
        select_first (bool): whether the call selected with a forward-only pass and
            back-propagated only the kept copies.
        n_nonfinite (Tensor or None): ``(batch,)`` per example, the values of kept
            updates at blank positions that were NaN or infinite and so left out of the
            estimate (and of ``coverage``); ``None`` when not counted.
        converged (Tensor or None): with ``tolerance``, ``(batch,)`` bool: which examples
            stopped because their fill reached it (the others stopped at ``n_samples``
            kept draws or at ``max_draws``); ``None`` without ``tolerance``.
        relative_error (Tensor or None): with ``tolerance``, ``(batch,)``: the relative
            Monte-Carlo error of each example's fill where it stopped
            (:func:`relative_error`); ``None`` without ``tolerance``.
        recorded (dict or None): with ``record_at``, per count a :class:`RecordedFill`:
            the fill each example had at that many kept draws; ``None`` without it.
    """

    n_drawn: int
    n_kept: Tensor
    coverage: tuple[Tensor, ...]
    select_first: bool = False
    n_nonfinite: Tensor | None = None
    converged: Tensor | None = None
    relative_error: Tensor | None = None
    recorded: dict[int, RecordedFill] | None = None


def default_internal_batch_size(inputs: tuple[Tensor, ...]) -> int:
    """Masked copies per forward pass when the caller gives none.

    About 2**18 input values per chunk on a CPU (256 MNIST copies), 2**24 on an
    accelerator, within [16, 256] and [64, 4096] copies (the benchmark in
    ``benchmarks/bench_maskfill.py`` measures the CPU choice).
    """
    per_copy = sum(t[0].numel() for t in inputs)
    if inputs[0].device.type == "cpu":
        return max(16, min(256, 2**18 // per_copy))
    return max(64, min(4096, 2**24 // per_copy))


def format_user_masks(masks: Any, inputs: tuple[Tensor, ...]) -> tuple[Tensor, ...]:
    """Caller-given masks (``1`` kept, ``0`` blank) as element blank indicators
    ``(n, 1, ...)``, one stack per input (:func:`~captum_fillblanks.attr.masks.blank_stack`)."""
    given = masks if isinstance(masks, tuple) else (masks,)
    if len(given) != len(inputs):
        raise ValueError(f"masks must give one mask (or stack) per input tensor ({len(inputs)}), got {len(given)}")
    blanks = tuple(
        blank_stack(mask, tensor.shape[1:], f"masks[{i}]").to(tensor.device)[:, None]
        for i, (mask, tensor) in enumerate(zip(given, inputs))
    )
    if len({b.shape[0] for b in blanks}) != 1:
        raise ValueError(
            f"every input's mask stack must hold the same number of masks, got {[b.shape[0] for b in blanks]}"
        )
    return blanks


class _RandomMasks:
    """Element blank indicators of the call's reproducible random mask sequence."""

    def __init__(self, units: Units, n_blank: tuple[int, ...], seed: int) -> None:
        self.sequence = MaskSequence(units.n_units, n_blank, seed)
        self.unit_maps, self.groups = units.maps, units.groups

    def take(self, start: int, stop: int) -> tuple[Tensor, ...]:
        units = self.sequence.take(start, stop)
        blanks = []
        for unit_map, group in zip(self.unit_maps, self.groups):
            per_unit = units[group].to(unit_map.device, non_blocking=True)
            blanks.append(per_unit[:, unit_map])
        return tuple(blanks)


class MaskSource(Protocol):
    """Where the estimator's masks come from: ``take(start, stop)`` gives masks ``start ..
    stop - 1`` as element blank indicators, one ``(n, 1 or B, ...)`` bool stack per
    input; mask ``j`` depends only on ``j`` (and the call's seed), never on the chunking."""

    def take(self, start: int, stop: int) -> tuple[Tensor, ...]: ...


class _GivenMasks:
    def __init__(self, blanks: tuple[Tensor, ...]) -> None:
        self.blanks = blanks

    def take(self, start: int, stop: int) -> tuple[Tensor, ...]:
        return tuple(b[start:stop] for b in self.blanks)


def finish_estimate(estimate: Estimate, return_convergence_delta: bool) -> tuple[Any, FillCounts]:
    """The fill (and its error, if asked) from the estimator's sums, in the form of the
    inputs, and the call's :class:`FillCounts`; warns about short or non-finite draws."""
    stopping = estimate.stopping
    error = None
    if stopping is not None:
        # where an example stopped at the cap or max_draws, its error there
        error = relative_error(estimate.sums, estimate.sq_sums, estimate.coverage)
    counts = FillCounts(
        estimate.n_drawn,
        estimate.n_kept,
        estimate.coverage,
        estimate.select_first,
        estimate.n_nonfinite,
        converged=None if stopping is None else stopping.converged,
        relative_error=error,
        recorded=None if estimate.recorder is None else estimate.recorder.results(estimate),
    )
    n_kept = estimate.n_kept
    if stopping is not None:  # an example that reached the tolerance is complete
        n_kept = torch.where(stopping.converged, torch.full_like(n_kept, estimate.n_samples), n_kept)
    _warn_short(n_kept, estimate.n_samples, estimate.n_drawn, estimate.given_masks)
    _warn_nonfinite(estimate.n_nonfinite)
    fills = format_output(estimate.is_tuple, estimate.fills())
    if not return_convergence_delta:
        return fills, counts
    if stopping is not None:
        return (fills, error), counts
    return (fills, _standard_error(estimate.sums, estimate.sq_sums, estimate.coverage)), counts


@dataclass(frozen=True, eq=False)  # eq=False: it may hold the caller's mask tensors
class FillOptions:
    """The estimator's options of one call, as the fill methods' ``attribute`` take them
    (the update rule's own options, such as ``step_size``, go to the
    :data:`UpdateRule`), with no defaults of its own: each method's signature holds them,
    and :meth:`from_call` picks them out of it, so that the list is written once.

    Built once per call and passed down unchecked; each option is checked where it is
    first used.
    """

    n_samples: int
    mask_ratio: float
    patch_size: int
    selection: str
    loss: str | LossFn
    max_draws: int | None
    tolerance: float | None
    masks: Any
    seed: SeedLike
    select_first: bool | None
    amp_dtype: torch.dtype | None
    internal_batch_size: int | None
    show_progress: bool
    record_at: Sequence[int] | None
    with_squares: bool  # also sum the squared updates, for the convergence delta

    @classmethod
    def from_call(cls, arguments: Mapping[str, Any]) -> FillOptions:
        """The options from a method's ``attribute`` arguments (its ``locals()`` at the
        top of the call): every field by its name, and ``with_squares`` from
        ``return_convergence_delta``."""
        names = [f.name for f in fields(cls) if f.name != "with_squares"]
        return cls(
            **{name: arguments[name] for name in names}, with_squares=bool(arguments["return_convergence_delta"])
        )

    @classmethod
    def option_names(cls) -> tuple[str, ...]:
        """The keyword options every fill method's ``attribute`` offers (the estimator's,
        beside Captum's shared arguments)."""
        shared = {"internal_batch_size", "show_progress", "with_squares"}
        return tuple(f.name for f in fields(cls) if f.name not in shared)


UpdateRule = Callable[[FillProblem, tuple[Tensor, ...], int, Tensor | None], tuple[tuple[Tensor, ...], Tensor]]
"""``update(problem, masked, n_masks, rows) -> (updates, outputs)``: the update of each
masked copy and the model's outputs at the copies. ``masked`` holds the ``n_masks * B``
copies laid out mask-major, or only ``rows`` of them (select-first mode)."""


@dataclass(frozen=True)
class GradientStep:
    """The first-order update rule: ``delta = -step_size * grad L`` at the masked copy."""

    step_size: float = 1.0

    def __call__(
        self, problem: FillProblem, masked: tuple[Tensor, ...], n_masks: int, rows: Tensor | None = None
    ) -> tuple[tuple[Tensor, ...], Tensor]:
        grads, outputs, _ = problem.gradient(masked, n_masks, rows=rows)
        return tuple(-self.step_size * g for g in grads), outputs


@dataclass
class Estimate:
    """What the estimator adds up in one call: per input the sums of the kept updates
    at the blanks (and of their squares, for the standard error) and the coverage (how
    many kept draws blanked each element), with the draw counts."""

    sums: tuple[Tensor, ...]
    sq_sums: tuple[Tensor, ...] | None
    coverage: tuple[Tensor, ...]
    n_kept: Tensor
    n_drawn: int
    n_samples: int
    select_first: bool
    is_tuple: bool
    dtypes: tuple[torch.dtype, ...]
    n_nonfinite: Tensor
    given_masks: bool
    stopping: _Stopping | None = None
    recorder: _Recorder | None = None

    def fills(self) -> tuple[Tensor, ...]:
        """The mean update per element, zero where no kept draw blanked it."""
        return tuple((s / c.clamp(min=1)).to(d) for s, c, d in zip(self.sums, self.coverage, self.dtypes))


@dataclass(frozen=True)
class _DrawPlan:
    """How :func:`_estimate` walks the mask sequence: the kept draws wanted per example,
    the most masks to draw, the masked copies per pass and the selection mode
    (``select_first``, ``None`` to decide on the first chunk)."""

    n_samples: int
    draw_budget: int
    chunk_copies: int
    select_first: bool | None
    show_progress: bool
    given_masks: bool
    desc: str
    tolerance: float | None = None
    with_squares: bool = False  # also sum the squared updates (the delta, tolerance)
    record_at: tuple[int, ...] = ()


def fill_sums(
    problem: FillProblem,
    feature_mask: Any,
    options: FillOptions,
    update: UpdateRule,
    desc: str,
    random_masks: Callable[[int], MaskSource] | None = None,
) -> Estimate:
    """The estimator shared by the fill methods: draw the masks ``options`` ask for over
    ``problem``'s inputs (units from ``feature_mask``, else patches), compute each masked
    copy's update with ``update``, and add up the kept ones. Returns the sums, not the fill.

    Anything that can state its call as a :class:`FillProblem`, an :class:`FillOptions`
    and an :data:`UpdateRule` reuses it as is. ``random_masks(seed)``, when given, makes
    the random mask source instead of the units of ``feature_mask`` (the layer method's
    per-example units).
    """
    check_positive_int("internal_batch_size", options.internal_batch_size, allow_none=True)
    _check_tolerance(options.tolerance, options.masks)
    record_at = _check_record_at(options.record_at)
    if options.masks is not None:
        source = _GivenMasks(format_user_masks(options.masks, problem.inputs))
        n_samples = draw_budget = source.blanks[0].shape[0]
    else:
        n_samples, max_draws = options.n_samples, options.max_draws
        check_positive_int("n_samples", n_samples)
        check_positive_int("max_draws", max_draws, allow_none=True)
        check_positive_int("patch_size", options.patch_size)
        if random_masks is None:
            units = unit_maps(problem.inputs, feature_mask, options.patch_size)
            n_blank = tuple(n_blank_units(n, options.mask_ratio) for n in units.n_units)
            source = _RandomMasks(units, n_blank, seed=resolve_seed(options.seed))
        else:
            source = random_masks(resolve_seed(options.seed))
        if max_draws is not None and max_draws < n_samples:
            raise ValueError(
                f"max_draws={max_draws} is below n_samples={n_samples}: at most max_draws masks are "
                "drawn, so fewer than n_samples could be kept; raise max_draws or lower n_samples"
            )
        draw_budget = n_samples if options.selection == "all" else (max_draws or 10 * n_samples)
    plan = _DrawPlan(
        n_samples=n_samples,
        draw_budget=draw_budget,
        chunk_copies=options.internal_batch_size or default_internal_batch_size(problem.inputs),
        select_first=options.select_first,
        show_progress=options.show_progress,
        given_masks=options.masks is not None,
        desc=desc,
        tolerance=options.tolerance,
        with_squares=options.with_squares or options.tolerance is not None or bool(record_at),
        record_at=record_at,
    )
    if record_at and record_at[-1] > n_samples:
        raise ValueError(
            f"record_at counts must be at most n_samples={n_samples} (the most kept draws), got {list(record_at)}"
        )
    return _estimate(problem, source, plan, update)


def _kept_updates(problem, masked, n, update, cutoff, select_first, active):
    """Updates of one chunk, which copies the model got right, and which are kept.

    Only the copies of ``active`` examples (``None``: all) are computed: an example
    that has its kept draws costs nothing more while others catch up.
    """
    rows = None if active is None else active.repeat(n).nonzero().squeeze(1)
    if select_first:
        with torch.no_grad():
            outputs = problem.forward(_take_rows(masked, rows), n, rows)
        correct = problem.correct(outputs, n, rows)
        keep = cutoff(correct)
        rows = keep.reshape(-1).nonzero().squeeze(1)
        if rows.numel() == 0:
            return tuple(torch.zeros_like(m) for m in masked), correct, keep
    updates, outputs = update(problem, _take_rows(masked, rows), n, rows)
    if not select_first:
        correct = problem.correct(outputs, n, rows)
        keep = cutoff(correct)
    if rows is not None:
        updates = tuple(torch.zeros_like(m).index_copy_(0, rows, u.to(m.dtype)) for m, u in zip(masked, updates))
    return updates, correct, keep


def _estimate(problem: FillProblem, source: MaskSource, plan: _DrawPlan, update: UpdateRule) -> Estimate:
    """Walk the masks of ``source`` as ``plan`` says, adding up the kept updates."""
    n_samples, draw_budget, chunk_copies = plan.n_samples, plan.draw_budget, plan.chunk_copies
    select_first = plan.select_first
    batch = problem.batch_size
    device = problem.device
    sums = [torch.zeros_like(t, dtype=torch.float32 if t.dtype != torch.float64 else t.dtype) for t in problem.inputs]
    sq_sums = [torch.zeros_like(s) for s in sums] if plan.with_squares else None
    stopping = None if plan.tolerance is None else _Stopping(plan.tolerance, n_samples, batch, device)
    coverage = [torch.zeros_like(s) for s in sums]
    recorder = _Recorder(plan.record_at, sums) if plan.record_at else None
    n_kept = torch.zeros(batch, dtype=torch.long, device=device)
    n_nonfinite = torch.zeros(batch, dtype=torch.long, device=device)
    if problem.selection == "all":
        select_first = False

    def cutoff(keep: Tensor) -> Tensor:
        # each example uses exactly its first n_samples kept draws
        return keep & (n_kept[None] + keep.long().cumsum(0) <= n_samples)

    bar = progress(
        desc=plan.desc,
        total=draw_budget if draw_budget == n_samples else None,  # unknown when selecting
        disable=not plan.show_progress,
    )
    n_drawn = 0
    active = None  # every example, until some has its kept draws
    try:
        while n_drawn < draw_budget:
            # masks per chunk: ``chunk_copies`` masked copies over the examples still active
            n_active = batch if active is None else int(active.sum())
            n = min(max(1, chunk_copies // n_active), draw_budget - n_drawn)
            blanks = source.take(n_drawn, n_drawn + n)
            updates, correct, keep = _kept_updates(
                problem, problem.mask(blanks), n, update, cutoff, bool(select_first), active
            )
            if select_first is None:
                # decided once, on the first chunk: below this acceptance rate the
                # forward-only selection pass costs less than back-propagating the
                # copies that are thrown away (docs/benchmarks.md)
                select_first = correct.float().mean().item() < SELECT_FIRST_BELOW
            chunk = [_chunk_update(problem, i, u, b, n, sums[i].dtype) for i, (u, b) in enumerate(zip(updates, blanks))]
            if stopping is not None:
                keep = stopping.use(keep, chunk, n_kept, sums, sq_sums, coverage)
            if recorder is not None:
                recorder.use(keep, chunk, n_kept, sums, sq_sums, coverage)
            n_kept += keep.sum(0)
            for i, (chunk_update, finite, blank) in enumerate(chunk):
                parts = _kept_sums(chunk_update, finite, blank, keep, squares=sq_sums is not None)
                sums[i] += parts.sums
                coverage[i] += parts.coverage
                if sq_sums is not None:
                    sq_sums[i] += parts.sq_sums
                n_nonfinite += parts.n_nonfinite
            n_drawn += n
            bar.update(n)
            # no device sync until some example could be complete
            could_stop = n_samples if stopping is None else FIRST_TOLERANCE_CHECK
            if n_drawn >= could_stop and n_drawn < draw_budget:
                done = n_kept >= n_samples
                if stopping is not None:
                    done = done | stopping.converged
                if bool(done.all()):
                    break
                active = ~done if bool(done.any()) else None
    finally:
        bar.close()
    return Estimate(
        tuple(sums),
        sq_sums and tuple(sq_sums),
        tuple(coverage),
        n_kept,
        n_drawn,
        n_samples,
        bool(select_first),
        problem.is_tuple,
        tuple(t.dtype for t in problem.inputs),
        n_nonfinite,
        plan.given_masks,
        stopping,
        recorder,
    )


def _chunk_update(problem: FillProblem, i: int, update: Tensor, blank: Tensor, n: int, dtype: torch.dtype):
    """Input ``i``'s updates of a chunk as ``(n, B, ...)`` in the sums' dtype, where they
    are finite, and its blanks. A non-finite value (NaN or inf from the model or the
    data) is counted and left out, never added: it would turn the whole estimate at its
    position into NaN."""
    update = update.reshape(n, *problem.inputs[i].shape).to(dtype)
    return update, torch.isfinite(update), blank


class _KeptSums(NamedTuple):
    sums: Tensor
    sq_sums: Tensor | None
    coverage: Tensor
    n_nonfinite: Tensor


def _kept_sums(update: Tensor, finite: Tensor, blank: Tensor, keep: Tensor, squares: bool = True) -> _KeptSums:
    """The sums over the draws ``keep`` (``(n, B)``) of one input's chunk, at its blanks;
    rejected draws are masked out with where, as 0 * NaN is NaN."""
    n, batch = keep.shape
    used = keep.reshape((n, batch) + (1,) * (blank.dim() - 2)) & blank
    n_nonfinite = (used & ~finite).reshape(n, batch, -1).sum((0, 2))
    used = used & finite
    weighted = torch.where(used, update, torch.zeros((), dtype=update.dtype, device=update.device))
    sq_sums = (weighted * weighted).sum(0) if squares else None
    return _KeptSums(weighted.sum(0), sq_sums, used.sum(0, dtype=update.dtype), n_nonfinite)


def _position_errors(sums, sq_sums, coverage):
    """Per input, flattened per example: each position's kept-draw count, the mean of its
    updates and the squared standard error of that mean (``inf`` where it was covered
    once, ``0`` where never)."""
    for s, q, c in zip(sums, sq_sums, coverage):
        count = c.reshape(c.shape[0], -1)
        mean = s.reshape(count.shape) / count.clamp(min=1)
        variance = (q.reshape(count.shape) - count * mean**2).clamp(min=0) / (count - 1).clamp(min=1)
        error_sq = torch.where(count > 0, variance / count.clamp(min=1), torch.zeros_like(variance))
        yield count, mean, torch.where(count == 1, torch.full_like(error_sq, math.inf), error_sq)


def relative_error(sums, sq_sums, coverage) -> Tensor:
    """Per example, the relative Monte-Carlo error of the fill: the L2 norm of the
    per-position standard errors of the mean over the L2 norm of the mean, over the
    positions covered at least once (every input of a tuple together). ``inf`` while a
    covered position was covered only once; ``NaN`` for an example with no covered
    position; ``0`` for a fill that is zero with no spread."""
    error_sq, fill_sq, covered = 0.0, 0.0, 0
    for count, mean, per_position in _position_errors(sums, sq_sums, coverage):
        error_sq = error_sq + per_position.sum(1)
        fill_sq = fill_sq + (mean**2).sum(1)
        covered = covered + (count > 0).sum(1)
    ratio = torch.where(fill_sq > 0, error_sq / fill_sq.clamp(min=torch.finfo(fill_sq.dtype).tiny), error_sq * math.inf)
    ratio = torch.where(error_sq == 0, torch.zeros_like(ratio), ratio)
    return torch.where(covered > 0, ratio.sqrt(), torch.full_like(ratio, math.nan))


class _Stopping:
    """Stopping by precision: each example's next check is at a count of its own kept
    draws (:data:`FIRST_TOLERANCE_CHECK`, then doubling, at most ``n_samples``); at a
    check, an example whose fill is precise enough keeps exactly the draws up to it and
    stops. A chunk that carries an example past several checks is split at each."""

    def __init__(self, tolerance: float, n_samples: int, batch: int, device: torch.device) -> None:
        self.tolerance, self.n_samples = tolerance, n_samples
        self.next_check = torch.full((batch,), min(FIRST_TOLERANCE_CHECK, n_samples), dtype=torch.long, device=device)
        self.converged = torch.zeros(batch, dtype=torch.bool, device=device)

    def use(self, keep, chunk, n_kept, sums, sq_sums, coverage) -> Tensor:
        """The draws of this chunk each example uses (``keep``, cut where it stops)."""
        keep = keep & ~self.converged[None]
        reached = n_kept[None] + keep.long().cumsum(0)  # each example's kept count after each draw
        undecided = torch.ones_like(self.converged)
        while True:
            checking = undecided & ~self.converged & (reached[-1] >= self.next_check)
            if not bool(checking.any()):
                return keep
            upto = keep & (reached <= self.next_check[None])
            parts = [_kept_sums(u, f, b, upto) for u, f, b in chunk]
            error = relative_error(
                [s + p.sums for s, p in zip(sums, parts)],
                [q + p.sq_sums for q, p in zip(sq_sums, parts)],
                [c + p.coverage for c, p in zip(coverage, parts)],
            )
            precise = checking & (error <= self.tolerance)
            keep = torch.where(precise[None], upto, keep)
            self.converged |= precise
            last = checking & ~precise & (self.next_check >= self.n_samples)
            undecided &= ~last  # at n_samples the cap stops it anyway
            grow = checking & ~precise & ~last
            self.next_check = torch.where(grow, (2 * self.next_check).clamp(max=self.n_samples), self.next_check)


class _Recorder:
    """``record_at``: each example's sums, squares and coverage as they were when its own
    kept draws reached each count; a chunk that carries it past a count is cut there, as
    :class:`_Stopping` cuts it."""

    def __init__(self, counts: tuple[int, ...], sums: list[Tensor]) -> None:
        self.counts = counts
        batch = sums[0].shape[0]
        self.taken = {c: torch.zeros(batch, dtype=torch.bool, device=sums[0].device) for c in counts}
        self.state = {c: [[torch.zeros_like(s) for s in sums] for _ in range(3)] for c in counts}
        self.n_kept = {c: torch.zeros(batch, dtype=torch.long, device=sums[0].device) for c in counts}

    def use(self, keep, chunk, n_kept, sums, sq_sums, coverage) -> None:
        reached = n_kept[None] + keep.long().cumsum(0)
        for count in self.counts:
            new = ~self.taken[count] & (reached[-1] >= count)
            if not bool(new.any()):
                continue
            parts = [_kept_sums(u, f, b, keep & (reached <= count)) for u, f, b in chunk]
            for kind, (totals, stored) in enumerate(zip((sums, sq_sums, coverage), self.state[count])):
                for i, part in enumerate(parts):
                    value = totals[i] + (part.sums, part.sq_sums, part.coverage)[kind]
                    stored[i][new] = value[new]
            self.n_kept[count][new] = count
            self.taken[count] |= new

    def results(self, estimate: Estimate) -> dict[int, RecordedFill]:
        """Per count, the fills; an example that never reached a count (it stopped
        first) has its final fill there."""
        final = (estimate.sums, estimate.sq_sums, estimate.coverage)
        recorded = {}
        for count in self.counts:
            taken = self.taken[count]
            sums, sq_sums, coverage = (
                [torch.where(_expand(taken, s), s, f) for s, f in zip(stored, totals)]
                for stored, totals in zip(self.state[count], final)
            )
            fills = tuple((s / c.clamp(min=1)).to(d) for s, c, d in zip(sums, coverage, estimate.dtypes))
            recorded[count] = RecordedFill(
                format_output(estimate.is_tuple, fills),
                torch.where(taken, self.n_kept[count], estimate.n_kept),
                relative_error(sums, sq_sums, coverage),
            )
        return recorded


def _expand(per_example: Tensor, like: Tensor) -> Tensor:
    return per_example.reshape((-1,) + (1,) * (like.dim() - 1))


def _check_record_at(record_at: Any) -> tuple[int, ...]:
    if record_at is None:
        return ()
    if isinstance(record_at, (str, bytes)) or not isinstance(record_at, Sequence):
        raise TypeError(f"record_at must be a sequence of ints or None, got {type(record_at).__name__}")
    for count in record_at:
        check_positive_int("record_at", count)
    return tuple(sorted(set(record_at)))


def _check_tolerance(tolerance: Any, masks: Any) -> None:
    if tolerance is None:
        return
    if isinstance(tolerance, bool) or not isinstance(tolerance, (int, float)):
        raise TypeError(f"tolerance must be a positive number or None, got {type(tolerance).__name__}")
    if not (math.isfinite(tolerance) and tolerance > 0):
        raise ValueError(f"tolerance must be a positive finite number (a relative error), got {tolerance!r}")
    if masks is not None:
        raise ValueError("tolerance does not apply with masks=: every given mask is used once")


def _warn_nonfinite(n_nonfinite: Tensor) -> None:
    counts = n_nonfinite.tolist()
    if any(counts):
        warnings.warn(
            f"the model gave non-finite updates (NaN or inf) for example(s) "
            f"{[i for i, c in enumerate(counts) if c]}: {sum(counts)} values in all, left out of the fill "
            f"(per example: {counts}; counts.n_nonfinite). Check those inputs and the model's "
            "outputs for NaN or inf",
            UserWarning,
            stacklevel=caller_stacklevel(),
        )


def _warn_short(n_kept: Tensor, n_samples: int, n_drawn: int, given: bool) -> None:
    kept = n_kept.tolist()
    if all(k >= n_samples for k in kept):
        return
    if all(k == 0 for k in kept) or min(kept) == 0:
        warnings.warn(
            f"no draw was kept for example(s) {[i for i, k in enumerate(kept) if k == 0]} "
            f"after {n_drawn} draws (the model never predicted the target on a masked copy); "
            "their fill is zero. Try selection='all', a lower mask_ratio or a larger max_draws",
            UserWarning,
            stacklevel=caller_stacklevel(),
        )
    if not given and any(0 < k < n_samples for k in kept):
        warnings.warn(
            f"only {min(k for k in kept)} of n_samples={n_samples} draws were kept for some "
            f"example(s) after max_draws={n_drawn} draws (kept per example: {kept})",
            UserWarning,
            stacklevel=caller_stacklevel(),
        )


def _take_rows(tensors: tuple[Tensor, ...], rows: Tensor | None) -> tuple[Tensor, ...]:
    return tensors if rows is None else tuple(t.index_select(0, rows) for t in tensors)


def _standard_error(sums, sq_sums, coverage) -> Tensor:
    """Per example: the largest standard error of the mean over covered positions;
    ``NaN`` for an example with no covered position (no kept draw), where the estimate
    has no data, not zero error."""
    worst, covered = None, None
    for count, _, error_sq in _position_errors(sums, sq_sums, coverage):
        per_example = error_sq.sqrt().amax(dim=1)
        worst = per_example if worst is None else torch.maximum(worst, per_example)
        covered = (count > 0).any(1) if covered is None else covered | (count > 0).any(1)
    return torch.where(covered, worst, torch.full_like(worst, math.nan))
