"""Stopping by precision: ``tolerance=`` stops each example at a count of its own kept
draws where its fill is precise enough, whatever the batch and the chunking."""

import math

import pytest
import torch
from conftest import SoftmaxRegression

from captum_fillblanks import BFGSMaskFill, MaskFill
from captum_fillblanks.attr.mask_fill import FIRST_TOLERANCE_CHECK, relative_error
from captum_fillblanks.paper.data import load_samples
from captum_fillblanks.paper.models import simple_cnn


@pytest.fixture(scope="module")
def model():
    return simple_cnn(weights="DEFAULT")


@pytest.fixture(scope="module")
def images():
    return load_samples("mnist")[0][::25][:4]  # one 0, 2, 5 and 7


def checkpoints(n_samples):
    points, c = [], FIRST_TOLERANCE_CHECK
    while c < n_samples:
        points.append(c)
        c *= 2
    return points + [n_samples]


def test_each_example_stops_at_the_first_check_where_its_fill_is_precise_enough(model, images):
    tolerance, n_samples = 0.4, 1024
    method = MaskFill(model)
    fill, error = method.attribute(
        images, n_samples=n_samples, tolerance=tolerance, seed=0, selection="all", return_convergence_delta=True
    )
    counts = method.counts
    assert counts.converged.all() and (error <= tolerance).all()
    assert torch.equal(error, counts.relative_error)
    for e in range(len(images)):
        kept = int(counts.n_kept[e])
        assert kept in checkpoints(n_samples)
        # the same example with exactly that many draws gives the same fill and error (a
        # tolerance it cannot reach makes n_samples the cap), and at the check before, its
        # error was above the tolerance
        alone = MaskFill(model)
        same = alone.attribute(images[e : e + 1], n_samples=kept, tolerance=1e-9, seed=0, selection="all")
        torch.testing.assert_close(fill[e : e + 1], same, rtol=1e-5, atol=1e-7)
        assert float(alone.counts.relative_error) == pytest.approx(float(error[e]), rel=1e-5)
        if kept > FIRST_TOLERANCE_CHECK:
            before = MaskFill(model)
            before.attribute(images[e : e + 1], n_samples=kept // 2, tolerance=1e-9, seed=0, selection="all")
            assert float(before.counts.relative_error) > tolerance


@pytest.mark.parametrize("internal_batch_size", [None, 7, 1000])
def test_a_batch_stops_each_example_where_it_stops_alone(model, images, internal_batch_size):
    kwargs = dict(n_samples=512, tolerance=0.45, seed=3)
    method = MaskFill(model)
    batched = method.attribute(images, internal_batch_size=internal_batch_size, **kwargs)
    kept = method.counts.n_kept
    assert len(set(kept.tolist())) > 1  # examples that stop at different checks
    for e in range(len(images)):
        alone = MaskFill(model)
        one = alone.attribute(images[e : e + 1], **kwargs)
        assert int(alone.counts.n_kept) == int(kept[e])
        torch.testing.assert_close(batched[e : e + 1], one, rtol=1e-5, atol=1e-7)


def test_without_reaching_the_tolerance_the_cap_is_n_samples(model, images):
    method = MaskFill(model)
    capped = method.attribute(images, n_samples=100, tolerance=1e-6, seed=0, selection="all")
    assert not method.counts.converged.any() and (method.counts.n_kept == 100).all()
    plain = MaskFill(model).attribute(images, n_samples=100, seed=0, selection="all")
    torch.testing.assert_close(capped, plain, rtol=1e-6, atol=0)


def test_relative_error_is_the_norm_of_the_standard_errors_over_the_norm_of_the_fill():
    # one example, two positions: updates (1, 3) at the first, (2, 2, 2) at the second
    sums = [torch.tensor([[4.0, 6.0]])]
    squares = [torch.tensor([[10.0, 12.0]])]
    coverage = [torch.tensor([[2.0, 3.0]])]
    # means 2 and 2; variances 2 and 0; standard errors sqrt(2 / 2) = 1 and 0
    assert relative_error(sums, squares, coverage).item() == pytest.approx(1 / math.sqrt(8))
    assert math.isinf(relative_error(sums, squares, [torch.tensor([[1.0, 3.0]])]).item())  # one draw only
    assert math.isnan(relative_error([torch.zeros(1, 2)], [torch.zeros(1, 2)], [torch.zeros(1, 2)]).item())


def test_bfgs_stops_by_precision_too():
    model = SoftmaxRegression(n_inputs=36, n_classes=4).eval()
    x = torch.rand(3, 1, 6, 6, generator=torch.Generator().manual_seed(0))
    method = BFGSMaskFill(model)
    method.attribute(x, n_samples=256, tolerance=0.2, seed=0, selection="all", n_iter=2)
    assert method.counts.converged.all() and all(int(k) in checkpoints(256) for k in method.counts.n_kept)


@pytest.mark.parametrize(
    ("tolerance", "error"), [(0, ValueError), (-0.1, ValueError), (math.nan, ValueError), ("1", TypeError)]
)
def test_a_tolerance_that_is_not_a_positive_number_is_refused(model, images, tolerance, error):
    with pytest.raises(error, match="tolerance"):
        MaskFill(model).attribute(images, n_samples=8, tolerance=tolerance)


def test_tolerance_does_not_apply_with_given_masks(model, images):
    with pytest.raises(ValueError, match="tolerance does not apply with masks"):
        MaskFill(model).attribute(images, masks=torch.ones(28, 28), tolerance=0.1)
