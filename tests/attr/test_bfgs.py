"""The second-order update: batched BFGS (pure functions) and ``BFGSMaskFill``."""

import functools

import numpy as np
import pytest
import scipy.optimize
import torch
import torch.nn.functional as F
from captum.attr import NoiseTunnel
from torch import nn

from captum_fillblanks import MaskFill
from captum_fillblanks.attr.bfgs import (
    BFGSMaskFill,
    armijo_line_search,
    bfgs_minimize,
    dense_fits,
    fill_cosine_similarity,
)


def _generator(seed):
    return torch.Generator().manual_seed(seed)


def _quadratics(rows, n, seed=0, smallest=0.5, largest=5.0):
    """Per row ``L(x) = x^T A x / 2 - b^T x``, ``A`` with eigenvalues in ``[smallest, largest]``."""
    g = _generator(seed)
    q = torch.linalg.qr(torch.randn(rows, n, n, generator=g, dtype=torch.float64))[0]
    eigenvalues = smallest + (largest - smallest) * torch.rand(rows, n, generator=g, dtype=torch.float64)
    a = q @ torch.diag_embed(eigenvalues) @ q.transpose(1, 2)
    b = torch.randn(rows, n, generator=g, dtype=torch.float64)

    def loss_and_grad(x):
        ax = torch.einsum("rij,rj->ri", a, x)
        return (x * ax).sum(1) / 2 - (b * x).sum(1), ax - b

    return a, b, loss_and_grad


def _exact_line_search(a):
    """Exact minimizing step along ``p`` for the quadratics with Hessians ``a``."""

    def search(loss_and_grad, x, direction, loss, grad):
        curvature = torch.einsum("ri,rij,rj->r", direction, a, direction)
        step = -(grad * direction).sum(1) / curvature
        new_loss, new_grad = loss_and_grad(x + step[:, None] * direction)
        return step, new_loss, new_grad

    return search


def _smooth_problems(shift, scale):
    """A smooth non-quadratic loss per row (log-sum-exp plus a quartic), parameters per row."""

    def loss_and_grad(x):
        x = x.detach().requires_grad_()
        with torch.enable_grad():
            z = scale * (x - shift)
            loss = torch.logsumexp(torch.stack([z, -z], 2), 2).sum(1) + 0.1 * (z**4).sum(1) + 0.5 * z[:, 0] * z[:, 1]
            (grad,) = torch.autograd.grad(loss.sum(), x)
        return loss.detach(), grad

    return loss_and_grad


def _smooth_rows(rows, n=4, seed=1):
    g = _generator(seed)
    shift = torch.randn(rows, n, generator=g, dtype=torch.float64)
    scale = 0.5 + torch.rand(rows, n, generator=g, dtype=torch.float64)
    x0 = torch.randn(rows, n, generator=g, dtype=torch.float64)
    return shift, scale, x0


# --- the pure functions -------------------------------------------------------------


@pytest.mark.parametrize("memory", ["dense", 3])
def test_exact_line_search_reaches_quadratic_minimizer_in_n_iterations(memory):
    n = 6
    a, b, loss_and_grad = _quadratics(rows=4, n=n)
    x0 = torch.zeros(4, n, dtype=torch.float64)
    minimizer = torch.linalg.solve(a, b)
    after_n = bfgs_minimize(
        loss_and_grad, x0, n, memory="dense" if memory == "dense" else n, line_search=_exact_line_search(a)
    )
    torch.testing.assert_close(after_n.x, minimizer, rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(after_n.grad, torch.zeros_like(b), rtol=0, atol=1e-9)
    assert after_n.n_pairs.tolist() == [n] * 4
    # half as many iterations do not get there: the test above can fail
    early = bfgs_minimize(loss_and_grad, x0, n // 2, memory=memory, line_search=_exact_line_search(a))
    assert (early.x - minimizer).abs().amax() > 1e-3


def test_matches_scipy_bfgs_minimizer_on_a_smooth_problem():
    shift, scale, x0 = _smooth_rows(rows=3)
    loss_and_grad = _smooth_problems(shift, scale)
    for memory in (None, 5):
        result = bfgs_minimize(loss_and_grad, x0, 60, memory=memory)
        for r in range(3):
            row = _smooth_problems(shift[r : r + 1], scale[r : r + 1])

            def fun(v, row=row):
                loss, grad = row(torch.from_numpy(v)[None])
                return loss.item(), grad[0].numpy()

            reference = scipy.optimize.minimize(fun, x0[r].numpy(), jac=True, method="BFGS", options={"gtol": 1e-9})
            assert np.abs(reference.jac).max() < 1e-7
            np.testing.assert_allclose(result.x[r].numpy(), reference.x, atol=1e-6)
            assert result.loss[r].item() == pytest.approx(reference.fun, abs=1e-10)


def test_one_iteration_from_identity_is_the_gradient_step():
    # large curvature: the unit step overshoots, so Armijo must backtrack
    _, _, loss_and_grad = _quadratics(rows=3, n=5, seed=2, smallest=1.0, largest=40.0)
    x0 = torch.randn(3, 5, generator=_generator(3), dtype=torch.float64)
    loss, grad = loss_and_grad(x0)

    fixed = bfgs_minimize(loss_and_grad, x0, 1, line_search="fixed")
    torch.testing.assert_close(fixed.displacement, -grad, rtol=0, atol=0)

    armijo = bfgs_minimize(loss_and_grad, x0, 1, line_search="armijo")
    expected = []
    for r in range(3):  # the Armijo rule by hand, one row at a time
        alpha = 1.0
        while loss_and_grad(x0 - alpha * grad)[0][r] > loss[r] - 1e-4 * alpha * grad[r].dot(grad[r]):
            alpha /= 2
        expected.append(alpha)
    assert min(expected) < 1.0
    assert armijo.steps[0].tolist() == expected
    torch.testing.assert_close(armijo.displacement, -torch.tensor(expected, dtype=torch.float64)[:, None] * grad)


def test_dense_and_limited_memory_agree_when_memory_covers_all_iterations():
    shift, scale, x0 = _smooth_rows(rows=5, n=6, seed=4)
    loss_and_grad = _smooth_problems(shift, scale)
    dense = bfgs_minimize(loss_and_grad, x0, 6, memory="dense")
    two_loop = bfgs_minimize(loss_and_grad, x0, 6, memory=6)
    assert dense.dense and not two_loop.dense
    torch.testing.assert_close(two_loop.x, dense.x, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(two_loop.steps, dense.steps)
    # a shorter memory is a different algorithm
    short = bfgs_minimize(loss_and_grad, x0, 6, memory=1)
    assert (short.x - dense.x).abs().amax() > 1e-6


def test_automatic_choice_follows_the_budget_and_not_the_result():
    assert dense_fits(256, 784) and not dense_fits(1024, 784)
    assert dense_fits(2, 10, torch.float64, budget=1600) and not dense_fits(2, 10, torch.float64, budget=1599)
    shift, scale, x0 = _smooth_rows(rows=2, n=10, seed=5)
    loss_and_grad = _smooth_problems(shift, scale)
    small = bfgs_minimize(loss_and_grad, x0, 8)
    over_budget = bfgs_minimize(loss_and_grad, x0, 8, dense_budget=1599)
    assert small.dense and not over_budget.dense
    torch.testing.assert_close(over_budget.x, small.x, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("memory", ["dense", 2])
@pytest.mark.parametrize("line_search", ["armijo", "fixed"])
def test_rows_in_one_batch_equal_rows_one_at_a_time(memory, line_search):
    shift, scale, x0 = _smooth_rows(rows=4, n=5, seed=6)
    batched = bfgs_minimize(_smooth_problems(shift, scale), x0, 7, memory=memory, line_search=line_search)
    for r in range(4):
        alone = bfgs_minimize(
            _smooth_problems(shift[r : r + 1], scale[r : r + 1]),
            x0[r : r + 1],
            7,
            memory=memory,
            line_search=line_search,
        )
        torch.testing.assert_close(batched.x[r : r + 1], alone.x, rtol=1e-12, atol=1e-12)
        assert batched.steps[:, r].tolist() == alone.steps[:, 0].tolist()
        assert batched.n_pairs[r] == alone.n_pairs[0]


@pytest.mark.parametrize("memory", [None, 2])
def test_a_row_whose_line_search_fails_stays_put_and_leaves_the_others_alone(memory):
    shift, scale, x0 = _smooth_rows(rows=2, n=3, seed=7)
    smooth = _smooth_problems(shift, scale)
    calls = []

    def loss_and_grad(x):  # row 0 is NaN everywhere except at its start
        calls.append(1)
        loss, grad = smooth(x)
        away = (x[0] != x0[0]).any()
        loss = loss.clone()
        loss[0] = torch.where(away, torch.tensor(float("nan"), dtype=loss.dtype), loss[0])
        return loss, grad

    result = bfgs_minimize(loss_and_grad, x0, 4, memory=memory)
    assert result.displacement[0].abs().max() == 0 and result.steps[:, 0].abs().max() == 0
    alone_calls = []
    row = _smooth_problems(shift[1:], scale[1:])
    alone = bfgs_minimize(lambda x: alone_calls.append(1) or row(x), x0[1:], 4, memory=memory)
    torch.testing.assert_close(result.x[1:], alone.x)
    # once even the gradient step failed, the row costs no more evaluations
    assert len(calls) <= len(alone_calls) + 21


def test_the_evaluation_at_x0_is_reused_when_given():
    _, _, loss_and_grad = _quadratics(rows=2, n=3, seed=9)
    x0 = torch.ones(2, 3, dtype=torch.float64)
    calls = []

    def counted(x):
        calls.append(1)
        return loss_and_grad(x)

    plain = bfgs_minimize(counted, x0, 3, line_search="fixed")
    assert len(calls) == 4
    calls.clear()
    reused = bfgs_minimize(counted, x0, 3, line_search="fixed", initial=loss_and_grad(x0))
    assert len(calls) == 3
    torch.testing.assert_close(reused.x, plain.x, rtol=0, atol=0)


def test_no_curvature_update_without_positive_curvature():
    c = torch.tensor([[1.0, -2.0, 0.5]], dtype=torch.float64)
    result = bfgs_minimize(
        lambda x: ((c * x).sum(1), c.expand_as(x)), torch.zeros(1, 3, dtype=torch.float64), 3, line_search="fixed"
    )
    assert result.n_pairs.tolist() == [0]  # y = 0 every step: H stays the identity
    torch.testing.assert_close(result.displacement, -3 * c)
    # concave: y.s < 0, so H stays the identity and every step is a gradient step
    a = torch.tensor([[0.5], [2.0]], dtype=torch.float64)
    x0 = torch.tensor([[1.0, -1.0], [0.5, 2.0]], dtype=torch.float64)
    concave = bfgs_minimize(lambda x: (-(a * x * x).sum(1) / 2, -a * x), x0, 3, line_search="fixed")
    assert concave.n_pairs.tolist() == [0, 0]
    torch.testing.assert_close(concave.x, (1 + a) ** 3 * x0)


def test_armijo_takes_a_step_the_float32_loss_cannot_resolve():
    # a confident cross-entropy: the loss rounds to a constant in float32 while the
    # gradient does not vanish; the step must not be refused for want of a measurable decrease
    weight = torch.tensor([[30.0, 0.0], [0.0, 1.0], [-1.0, 1.0]])

    def loss_and_grad(x):
        x = x.detach().requires_grad_()
        with torch.enable_grad():
            loss = F.cross_entropy(x @ weight.T, torch.zeros(len(x), dtype=torch.long), reduction="none")
            (grad,) = torch.autograd.grad(loss.sum(), x)
        return loss.detach(), grad

    x0 = torch.tensor([[0.6, 0.0], [0.7, 0.1]])
    loss, grad = loss_and_grad(x0)
    assert (grad.abs().amax(1) > 0).all() and (loss_and_grad(x0 - grad)[0] >= loss + 1e-4 * (grad * -grad).sum(1)).all()
    result = bfgs_minimize(loss_and_grad, x0, 1)
    assert result.steps.tolist() == [[1.0, 1.0]]
    torch.testing.assert_close(result.displacement, -grad)


def test_custom_line_search_keywords_through_partial():
    a, b, loss_and_grad = _quadratics(rows=2, n=3, seed=8)
    x0 = torch.zeros(2, 3, dtype=torch.float64)
    half = bfgs_minimize(loss_and_grad, x0, 1, line_search=functools.partial(armijo_line_search, initial=0.5, c1=0.0))
    assert half.steps.tolist() == [[0.5, 0.5]]  # any decrease accepted at once


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"memory": 0}, "memory"),
        ({"memory": "full"}, "memory"),
        ({"line_search": "wolfe"}, "line_search"),
        ({"n_iter": -1}, "n_iter"),
    ],
)
def test_bad_arguments_say_what_was_given(kwargs, message):
    _, _, loss_and_grad = _quadratics(rows=1, n=2)
    kwargs = {"n_iter": 2, **kwargs}
    with pytest.raises(ValueError, match=message):
        bfgs_minimize(loss_and_grad, torch.zeros(1, 2, dtype=torch.float64), **kwargs)


def test_loss_and_grad_of_the_wrong_shape_is_an_error():
    with pytest.raises(ValueError, match="loss_and_grad must return"):
        bfgs_minimize(lambda x: (x.sum(), x), torch.zeros(2, 3), 1)


def test_fill_cosine_similarity_per_example():
    a = torch.tensor([[1.0, 0.0], [1.0, 1.0], [0.0, 0.0], [2.0, 1.0]])
    b = torch.tensor([[0.0, 3.0], [-2.0, -2.0], [1.0, 0.0], [4.0, 2.0]])
    torch.testing.assert_close(fill_cosine_similarity(a, b), torch.tensor([0.0, -1.0, 0.0, 1.0]))
    # a tuple is one vector per example: [1, 0 | 0] . [0, 1 | 1]
    tuple_a = (torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0]]))
    tuple_b = (torch.tensor([[1.0, 0.0]]), torch.tensor([[1.0]]))
    torch.testing.assert_close(fill_cosine_similarity(tuple_a, tuple_b), torch.tensor([2**-0.5]))
    with pytest.raises(ValueError, match="same structure"):
        fill_cosine_similarity(a, a[:, :1])


# --- BFGSMaskFill --------------------------------------------------------------------


class LinearModel(nn.Module):
    def __init__(self, n_inputs, n_classes, seed=0, dtype=torch.float32):
        super().__init__()
        g = _generator(seed)
        self.weight = nn.Parameter(torch.randn(n_classes, n_inputs, generator=g, dtype=dtype))
        self.bias = nn.Parameter(torch.randn(n_classes, generator=g, dtype=dtype))

    def forward(self, x):
        return x.flatten(1) @ self.weight.T + self.bias


class SmallCNN(nn.Module):
    def __init__(self):
        super().__init__()
        g = _generator(1)
        self.conv = nn.Conv2d(1, 3, 3, padding=1)
        self.head = nn.Linear(3 * 36, 3)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=g) * 0.5)

    def forward(self, x, scale=None):
        logits = self.head(torch.tanh(self.conv(x)).flatten(1))
        return logits if scale is None else logits * scale[:, None]


class TwoInputs(nn.Module):
    """Tuple inputs ``(B, 1, 6, 6)`` and ``(B, 4)`` and an extra argument."""

    def __init__(self):
        super().__init__()
        self.cnn = SmallCNN()
        self.side = nn.Linear(4, 3)
        with torch.no_grad():
            self.side.weight.copy_(torch.randn(3, 4, generator=_generator(2)))

    def forward(self, image, tabular, scale):
        return self.cnn(image, scale) + torch.tanh(self.side(tabular))


def _images(batch=3, seed=42):
    return torch.rand(batch, 1, 6, 6, generator=_generator(seed))


def test_quadratic_fill_is_the_closed_form_minimizer_at_the_blanks():
    n, k = 5, 7
    model = LinearModel(n, k, dtype=torch.float64).eval()
    w, c = model.weight.detach(), model.bias.detach()

    def squared_loss(outputs, target):
        return 0.5 * ((outputs - F.one_hot(target, k).to(outputs.dtype)) ** 2).sum(1)

    def exact(loss_and_grad, x, direction, loss, grad):  # Hessian W^T W
        step = -(grad * direction).sum(1) / (direction @ w.T).pow(2).sum(1)
        return (step, *loss_and_grad(x + step[:, None] * direction))

    inputs = torch.rand(2, n, generator=_generator(0), dtype=torch.float64)
    mask = torch.tensor([1.0, 0.0, 1.0, 0.0, 0.0], dtype=torch.float64)
    target = [2, 5]
    fill = BFGSMaskFill(model).attribute(
        inputs,
        target=target,
        masks=mask,
        selection="all",
        loss=squared_loss,
        step_size=0.5,
        n_iter=n,
        line_search=exact,
    )
    goal = F.one_hot(torch.tensor(target), k).to(torch.float64) - c
    minimizer = torch.linalg.lstsq(w.expand(2, k, n), goal[:, :, None]).solution[:, :, 0]
    expected = 0.5 * (minimizer - inputs * mask) * (1 - mask)
    torch.testing.assert_close(fill, expected, rtol=1e-8, atol=1e-8)


@pytest.mark.parametrize("step_size", [1.0, 0.3])
def test_one_fixed_unit_iteration_equals_mask_fill(step_size):
    model, images = SmallCNN().eval(), _images()
    kwargs = dict(target=[0, 1, 2], n_samples=6, seed=3, step_size=step_size, selection="all")
    first = MaskFill(model).attribute(images, **kwargs)
    second = BFGSMaskFill(model).attribute(images, n_iter=1, line_search="fixed", **kwargs)
    torch.testing.assert_close(second, first, rtol=1e-6, atol=1e-7)
    more = BFGSMaskFill(model).attribute(images, n_iter=3, line_search="fixed", **kwargs)
    assert (more - first).abs().max() > 1e-4


def test_step_size_scales_the_final_update():
    model, images = SmallCNN().eval(), _images()
    method = BFGSMaskFill(model)
    kwargs = dict(target=[0, 1, 2], n_samples=5, seed=4, n_iter=3, selection="all")
    unit = method.attribute(images, **kwargs)
    doubled = method.attribute(images, step_size=2.0, **kwargs)
    torch.testing.assert_close(doubled, 2 * unit)


def test_selection_uses_the_prediction_at_the_masked_copy():
    model, images = SmallCNN().eval(), _images()
    # one chunk holds every draw, so the kept draws are chosen on the outputs _update returns
    kwargs = dict(target=[0, 1, 2], n_samples=30, max_draws=30, seed=4, internal_batch_size=90)
    second = BFGSMaskFill(model)
    with pytest.warns(UserWarning, match="kept"):
        second.attribute(images, n_iter=5, **kwargs)
    first = MaskFill(model)
    with pytest.warns(UserWarning, match="kept"):
        first.attribute(images, **kwargs)
    kept = first.counts.n_kept.tolist()
    assert 0 < sum(kept) < 90  # some draws rejected: the test can tell
    assert second.counts.n_kept.tolist() == kept


def test_dense_and_limited_memory_fills_agree():
    model, images = SmallCNN().eval(), _images()
    kwargs = dict(target=1, n_samples=4, seed=5, selection="all", n_iter=3)
    dense = BFGSMaskFill(model).attribute(images, memory="dense", **kwargs)
    two_loop = BFGSMaskFill(model).attribute(images, memory=3, **kwargs)
    torch.testing.assert_close(two_loop, dense, rtol=1e-4, atol=1e-6)


def test_contract_tuple_inputs_target_list_extra_args_nothing_mutated():
    # float64, so that one-by-one must match the batch exactly: in float32 the different
    # summation order of another batch size is amplified by the curvature updates
    model = TwoInputs().eval().double()
    images, tabular = _images().double(), torch.rand(3, 4, generator=_generator(7), dtype=torch.float64)
    scale = torch.tensor([1.0, 2.0, 0.5], dtype=torch.float64)
    before = [t.clone() for t in (images, tabular, scale)]
    target = [2, 0, 1]
    kwargs = dict(n_samples=4, seed=6, selection="all", n_iter=2, internal_batch_size=5)
    fills = BFGSMaskFill(model).attribute((images, tabular), target=target, additional_forward_args=(scale,), **kwargs)
    assert isinstance(fills, tuple) and [f.shape for f in fills] == [images.shape, tabular.shape]
    assert all(f.abs().sum() > 0 for f in fills)
    for original, now in zip(before, (images, tabular, scale)):
        assert torch.equal(original, now) and not now.requires_grad and now.grad is None
    assert all(p.grad is None for p in model.parameters())
    for e in range(3):  # batch equals one by one with the same seed
        alone = BFGSMaskFill(model).attribute(
            (images[e : e + 1], tabular[e : e + 1]),
            target=target[e],
            additional_forward_args=(scale[e : e + 1],),
            **kwargs,
        )
        for f, a in zip(fills, alone):
            torch.testing.assert_close(f[e : e + 1], a, rtol=1e-10, atol=1e-12)


def test_works_under_no_grad_with_noise_tunnel_and_convergence_delta():
    model, images = SmallCNN().eval(), _images(batch=2)
    with torch.no_grad():
        fill, delta = BFGSMaskFill(model).attribute(
            images, target=0, n_samples=4, seed=1, selection="all", n_iter=2, return_convergence_delta=True
        )
    assert fill.shape == images.shape and delta.shape == (2,)
    smoothed = NoiseTunnel(BFGSMaskFill(model)).attribute(
        images, nt_samples=2, target=0, n_samples=3, seed=1, selection="all", n_iter=2
    )
    assert smoothed.shape == images.shape


@pytest.mark.parametrize(
    "kwargs, error",
    [
        ({"n_iter": 0}, ValueError),
        ({"n_iter": 1.5}, TypeError),
        ({"memory": -2}, ValueError),
        ({"line_search": "exact"}, ValueError),
    ],
)
def test_bad_method_arguments_raise(kwargs, error):
    with pytest.raises(error):
        BFGSMaskFill(SmallCNN().eval()).attribute(_images(), target=0, n_samples=2, **kwargs)


@pytest.mark.parametrize(
    "step, match",
    [
        (lambda rows: torch.ones(rows, 1), "one step length per row"),
        (lambda rows: torch.full((rows,), float("nan")), "not finite and non-negative"),
        (lambda rows: -torch.ones(rows), "not finite and non-negative"),
    ],
)
def test_a_line_search_that_returns_a_bad_step_gets_a_clear_error(step, match):
    loss_and_grad = _smooth_problems(torch.zeros(2, 3), torch.ones(2, 3))

    def bad_search(loss_and_grad, x, direction, loss, grad):
        new_loss, new_grad = loss_and_grad(x + direction)
        return step(x.shape[0]), new_loss, new_grad

    with pytest.raises(ValueError, match=match):
        bfgs_minimize(loss_and_grad, torch.zeros(2, 3), 2, line_search=bad_search)
