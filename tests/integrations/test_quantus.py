"""The Quantus adapter, against the real Quantus, on the shipped MNIST model and the
bundled digits."""

import copy

import numpy as np
import pytest
import torch

from captum_fillblanks import BFGSMaskFill, MaskFill, ProgressiveMaskFill
from captum_fillblanks.integrations.quantus import explain
from captum_fillblanks.paper.data import load_samples
from captum_fillblanks.paper.models import SimpleCNN_Weights, simple_cnn

quantus = pytest.importorskip("quantus")


@pytest.fixture(scope="module")
def digits():
    images, labels = load_samples("mnist")
    model = simple_cnn(weights=SimpleCNN_Weights.MNIST_5K)
    return model, images[:4], labels[:4]


def test_explain_is_the_estimator_with_a_fixed_seed_and_every_draw(digits):
    model, images, labels = digits
    got = explain(model=model, inputs=images.numpy(), targets=labels.numpy(), device="cpu", n_samples=30)
    expected = MaskFill(model).attribute(images, target=labels, n_samples=30, seed=0, selection="all")
    assert isinstance(got, np.ndarray) and got.dtype == np.float32 and got.shape == tuple(images.shape)
    np.testing.assert_array_equal(got, expected.numpy())
    second = explain(model, images.numpy(), labels.numpy(), method="bfgs", n_samples=10, n_iter=2)
    by_hand = BFGSMaskFill(model).attribute(images, target=labels, n_samples=10, n_iter=2, seed=0, selection="all")
    np.testing.assert_array_equal(second, by_hand.numpy())
    rebuilt = explain(model, images.numpy(), labels.numpy(), method="progressive", n_steps=2)
    np.testing.assert_array_equal(
        rebuilt, ProgressiveMaskFill(model).attribute(images, target=labels, n_steps=2, seed=0)
    )


def test_explain_leaves_the_model_and_the_inputs_as_they_were(digits):
    model, images, labels = digits
    before, x = copy.deepcopy(model.state_dict()), images.numpy().copy()
    explain(model, x, labels.numpy(), n_samples=10)
    assert np.array_equal(x, images.numpy())
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert all(p.grad is None for p in model.parameters())


def test_a_seeded_quantus_robustness_metric_is_repeatable_and_unseeded_masks_are_not(digits):
    model, images, labels = digits

    def max_sensitivity(seed):
        np.random.seed(0)  # Quantus draws its input noise from numpy's global state
        metric = quantus.MaxSensitivity(nr_samples=3, disable_warnings=True, display_progressbar=False)
        return metric(
            model=model,
            x_batch=images.numpy(),
            y_batch=labels.numpy(),
            device="cpu",
            explain_func=explain,
            explain_func_kwargs={"n_samples": 30, "seed": seed},
        )

    seeded = [max_sensitivity(0) for _ in range(2)]
    assert np.all(np.isfinite(seeded[0])) and len(seeded[0]) == 4
    np.testing.assert_array_equal(seeded[0], seeded[1])  # the masks are fixed: the same scores
    torch.manual_seed(0)
    unseeded = [max_sensitivity(None) for _ in range(2)]  # new masks on every call
    assert not np.array_equal(unseeded[0], unseeded[1])


def test_random_logit_scores_real_explanations_not_zeros(digits):
    model, images, labels = digits
    metric = quantus.RandomLogit(num_classes=10, seed=0, disable_warnings=True, display_progressbar=False)
    scores = metric(
        model=model,
        x_batch=images.numpy(),
        y_batch=labels.numpy(),
        device="cpu",
        explain_func=explain,
        explain_func_kwargs={"n_samples": 30},
    )
    assert np.all(np.isfinite(scores))
    # the off-class explanations it compared are not zero maps
    off_class = (labels + 1) % 10
    fills = explain(model, images.numpy(), off_class.numpy(), n_samples=30)
    assert (np.abs(fills).reshape(4, -1).max(1) > 0).all()


def test_selection_correct_with_no_kept_draw_is_an_error_not_a_zero_map(digits):
    model, images, labels = digits
    randomised = simple_cnn()  # untrained: it seldom predicts the label
    with torch.no_grad():
        predicted = randomised(images).argmax(1)
    never = (predicted + 1) % 10  # a target this model does not predict on the images
    with pytest.raises(ValueError, match=r"no draw was kept for example\(s\) \[.*\] with selection='correct'"):
        explain(randomised, images.numpy(), never.numpy(), selection="correct", n_samples=5, max_draws=5)
    # the default keeps every draw: a real map
    fills = explain(randomised, images.numpy(), never.numpy(), n_samples=5)
    assert (np.abs(fills).reshape(4, -1).max(1) > 0).all()


def test_mprt_gives_a_score_per_layer_not_nan(digits):
    model, images, labels = digits
    metric = quantus.MPRT(disable_warnings=True, display_progressbar=False, seed=0)
    scores = metric(
        model=copy.deepcopy(model),
        x_batch=images.numpy(),
        y_batch=labels.numpy(),
        device="cpu",
        explain_func=explain,
        explain_func_kwargs={"n_samples": 20},
    )
    values = np.concatenate([np.asarray(v, dtype=float).ravel() for v in scores.values()])
    assert len(scores) >= 3 and np.all(np.isfinite(values))


def test_bad_arguments_are_clear_errors(digits):
    model, images, labels = digits
    with pytest.raises(ValueError, match="method must be one of"):
        explain(model, images.numpy(), labels.numpy(), method="saliency")
    with pytest.raises(ValueError, match=r"targets must hold one class per image \(4\), got shape \(3,\)"):
        explain(model, images.numpy(), labels.numpy()[:3])
    with pytest.raises(TypeError, match="targets must be class indices"):
        explain(model, images.numpy(), labels.numpy().astype(float))
    with pytest.raises(ValueError, match="inputs must be a batch of images"):
        explain(model, images.numpy()[0, 0], labels.numpy())
    with pytest.raises(ValueError, match=r"inputs must be a batch of images \(N, C, H, W\).*add the channel dimension"):
        explain(model, images.numpy()[:, 0], labels.numpy())  # (N, H, W) would fail inside the model
    with pytest.raises(ValueError, match=r"inputs must be a batch of images \(N, C, H, W\)"):
        explain(model, images.numpy()[:, None], labels.numpy())
