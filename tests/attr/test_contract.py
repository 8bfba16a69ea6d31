"""Captum's contract, checked for every fill method: bad input gets a clear error, and
nothing the caller gave (inputs, model parameters, gradients, hooks) is changed."""

import inspect
import subprocess
import sys

import pytest
import torch
from captum.attr import FeatureAblation, IntegratedGradients, Saliency
from conftest import TESTS, TinyCNN

from captum_fillblanks import BFGSMaskFill, MaskFill, ProgressiveMaskFill

METHODS = {
    "MaskFill": (MaskFill, dict(n_samples=8, seed=0)),
    "ProgressiveMaskFill": (ProgressiveMaskFill, dict(n_steps=3, seed=0)),
}
METHODS["BFGSMaskFill"] = (BFGSMaskFill, dict(n_samples=8, seed=0, n_iter=2))

BAD_COMMON = [
    (dict(patch_size=0), ValueError, "patch_size"),
    (dict(patch_size=7), ValueError, "patch_size"),
    (dict(loss="mse"), ValueError, "loss"),
    (dict(baselines=torch.zeros(2, 2)), ValueError, "baselines"),
    (dict(baselines="zero"), TypeError, "baselines"),
    (dict(baselines=float("nan")), ValueError, "baselines\\[0\\] must be finite"),
    (dict(internal_batch_size=0), ValueError, "internal_batch_size"),
    (dict(step_size=float("nan")), ValueError, "step_size must be a finite number"),
    (dict(step_size=float("inf")), ValueError, "step_size must be a finite number"),
    (dict(seed=2**63), ValueError, r"seed must be an int in \[0, 2\*\*63\), got 9223372036854775808"),
    (dict(seed=-1), ValueError, r"seed must be an int in \[0, 2\*\*63\), got -1"),
    (dict(seed=True), TypeError, "seed must be an int"),
    (dict(baselines=torch.zeros(1, 1, 6, 6, device="meta")), ValueError, r"baselines\[0\] is on the meta device"),
    (
        dict(baselines=torch.zeros(1, 1, 6, 6, dtype=torch.complex64)),
        TypeError,
        r"baselines\[0\] has dtype torch.complex64; a blank holds a real value",
    ),
    (
        dict(feature_mask=torch.zeros(1, 1, 6, 6, dtype=torch.long, device="meta")),
        ValueError,
        r"feature_mask\[0\] is on the meta device",
    ),
    (
        dict(feature_mask=torch.zeros(1, 1, 6, 6, dtype=torch.complex64)),
        TypeError,
        r"feature_mask\[0\] must be an integer Tensor of group ids, got dtype torch.complex64",
    ),
    (
        dict(feature_mask=torch.arange(72).reshape(2, 1, 6, 6)),
        ValueError,
        r"feature_mask\[0\] of shape \(2, 1, 6, 6\) gives the 2 examples different groups",
    ),
]
BAD_RANDOM = [
    (dict(mask_ratio=0.0), ValueError, "mask_ratio"),
    (dict(mask_ratio=1.0), ValueError, "mask_ratio"),
    (dict(n_samples=0), ValueError, "n_samples"),
    (dict(n_samples=20, max_draws=10), ValueError, "max_draws=10 is below n_samples=20"),
    (dict(selection="best"), ValueError, "selection"),
    (dict(masks=torch.full((6, 6), 0.5)), ValueError, "masks"),
    (dict(masks=torch.ones(5, 5)), ValueError, "masks"),
    (dict(masks=torch.ones(0, 6, 6)), ValueError, "masks"),
]
BAD = {
    "MaskFill": BAD_COMMON + BAD_RANDOM,
    "BFGSMaskFill": BAD_COMMON + BAD_RANDOM,
    "ProgressiveMaskFill": BAD_COMMON
    + [
        (dict(n_steps=0), ValueError, "n_steps"),
        (dict(n_steps=10), ValueError, r"n_steps=10 is more than the 9 patches of patch_size=2 of inputs\[0\]"),
        (
            dict(n_steps=5, feature_mask=torch.arange(4).repeat_interleave(9).reshape(1, 1, 6, 6)),
            ValueError,
            "n_steps=5 is more than the 4 groups of feature_mask",
        ),
        (dict(threshold=1.5), ValueError, "threshold"),
        (dict(threshold=float("nan")), ValueError, "threshold"),
        (dict(normalization="l2"), ValueError, "normalization"),
    ],
}
CASES = [(name, *case) for name in METHODS for case in BAD[name]]


def snapshot(model, inputs):
    return dict(
        values=inputs.detach().clone(),
        requires_grad=inputs.requires_grad,
        grad=inputs.grad.clone(),
        params=[p.detach().clone() for p in model.parameters()],
        hooks=[(len(m._forward_hooks), len(m._backward_hooks), len(m._forward_pre_hooks)) for m in model.modules()],
    )


def assert_unchanged(model, inputs, before):
    assert torch.equal(inputs.detach(), before["values"])
    assert inputs.requires_grad == before["requires_grad"]
    assert torch.equal(inputs.grad, before["grad"])
    for p, q in zip(model.parameters(), before["params"]):
        assert torch.equal(p.detach(), q)
        assert p.grad is None
    assert before["hooks"] == [
        (len(m._forward_hooks), len(m._backward_hooks), len(m._forward_pre_hooks)) for m in model.modules()
    ]


@pytest.fixture
def caller_state():
    model = TinyCNN().eval()
    inputs = torch.rand(2, 1, 6, 6, generator=torch.Generator().manual_seed(0)).requires_grad_()
    inputs.grad = torch.full_like(inputs, 7.0)
    return model, inputs, snapshot(model, inputs)


@pytest.mark.parametrize("name", METHODS)
def test_successful_call_changes_nothing(name, caller_state):
    model, inputs, before = caller_state
    cls, kwargs = METHODS[name]
    result = cls(model).attribute(inputs, **kwargs)
    assert result.shape == inputs.shape and result.device == inputs.device
    assert not result.requires_grad
    assert_unchanged(model, inputs, before)


@pytest.mark.parametrize("name, bad, error, word", CASES)
def test_bad_argument_gets_a_clear_error_and_changes_nothing(name, bad, error, word, caller_state):
    model, inputs, before = caller_state
    cls, kwargs = METHODS[name]
    with pytest.raises(error, match=word):
        cls(model).attribute(inputs, **{**kwargs, **bad})
    assert_unchanged(model, inputs, before)


@pytest.mark.parametrize("name", METHODS)
def test_non_floating_inputs_are_rejected(name):
    cls, kwargs = METHODS[name]
    with pytest.raises(TypeError, match="inputs"):
        cls(TinyCNN().eval()).attribute(torch.ones(2, 1, 6, 6, dtype=torch.long), **kwargs)


@pytest.mark.parametrize("name", METHODS)
def test_output_that_is_not_class_scores_needs_target_loss(name):
    cls, kwargs = METHODS[name]
    with pytest.raises(ValueError, match="loss='target'"):
        cls(lambda x: x.flatten(1).sum(1)).attribute(torch.rand(2, 1, 6, 6), **kwargs)


@pytest.mark.parametrize("name", METHODS)
@pytest.mark.parametrize(
    "target", [10, -4, [0, 1, 2], torch.tensor([0, 1, 2]), [0, 7], "a", [-1, 0], torch.tensor([0, -1])]
)
def test_bad_target_raises_what_captum_raises(name, target, caller_state):
    model, inputs, before = caller_state
    with pytest.raises(Exception) as captum_error:
        Saliency(model).attribute(inputs.detach().clone().requires_grad_(), target=target)
    cls, kwargs = METHODS[name]
    with pytest.raises(type(captum_error.value)) as ours:
        cls(model).attribute(inputs, target=target, **kwargs)
    assert str(ours.value) == str(captum_error.value)
    assert_unchanged(model, inputs, before)


@pytest.mark.parametrize("name", list(METHODS))
def test_shared_arguments_come_in_captums_order(name):
    method, _ = METHODS[name]
    ours = [p for p in inspect.signature(method.attribute).parameters.values() if p.name != "self"]
    assert all(p.kind is not p.VAR_KEYWORD for p in ours)  # a typed signature, no **kwargs
    names = [p.name for p in ours if p.kind is p.POSITIONAL_OR_KEYWORD]
    ig = list(inspect.signature(IntegratedGradients.attribute).parameters)[1:5]
    ablation = list(inspect.signature(FeatureAblation.attribute).parameters)[1:6]
    assert names[:4] == ig == ["inputs", "baselines", "target", "additional_forward_args"]
    assert names[:5] == ablation
    assert names[5:7] == ["internal_batch_size", "show_progress"]


@pytest.mark.parametrize("name", list(METHODS))
def test_a_positional_call_copied_from_integrated_gradients_means_the_same(name, images):
    method, kwargs = METHODS[name]
    model = TinyCNN().eval()
    baseline = torch.full_like(images, 0.25)
    positional = method(model).attribute(images, baseline, 2, **kwargs)
    named = method(model).attribute(images, baselines=baseline, target=2, **kwargs)
    assert torch.equal(positional, named)
    assert not torch.equal(named, method(model).attribute(images, target=2, **kwargs))  # the baseline counts


@pytest.mark.parametrize("name", ["MaskFill", "BFGSMaskFill"])
def test_compute_convergence_delta_says_where_the_delta_comes_from(name, images):
    method = METHODS[name][0](TinyCNN().eval())
    assert method.has_convergence_delta()
    with pytest.raises(NotImplementedError, match="return_convergence_delta=True"):
        method.compute_convergence_delta(torch.zeros_like(images), images, images)


@pytest.mark.parametrize("name", list(METHODS))
def test_inference_mode_gets_an_error_that_says_why(name, images):
    method, kwargs = METHODS[name]
    with torch.inference_mode(), pytest.raises(RuntimeError, match="torch.inference_mode\\(\\) prevents them"):
        method(TinyCNN().eval()).attribute(images, **kwargs)
    with torch.no_grad():  # no_grad works: the method turns gradients back on
        under_no_grad = method(TinyCNN().eval()).attribute(images, **kwargs)
    assert torch.equal(under_no_grad, method(TinyCNN().eval()).attribute(images, **kwargs))


@pytest.mark.parametrize("name", list(METHODS))
def test_target_errors_hold_under_python_optimize_and_for_float_tensors(name):
    method, kwargs = METHODS[name]
    code = (
        f"import sys, torch; sys.path.insert(0, {str(TESTS)!r}); from conftest import TinyCNN; "
        f"from captum_fillblanks import {name}; "
        f"{name}(TinyCNN().eval()).attribute(torch.rand(3, 1, 6, 6), target=[0, 1], **{kwargs!r})"
    )
    run = subprocess.run([sys.executable, "-O", "-c", code], capture_output=True, text=True)
    assert "AssertionError: Target list length does not match output!" in run.stderr
    with pytest.raises(TypeError, match="target must hold integer class indices.*float32"):
        method(TinyCNN().eval()).attribute(torch.rand(3, 1, 6, 6), target=torch.tensor([1.0, 2.0, 0.0]), **kwargs)


@pytest.mark.parametrize("name", list(METHODS))
def test_inputs_on_the_meta_device_get_a_clear_error(name):
    method, kwargs = METHODS[name]
    with pytest.raises(ValueError, match=r"inputs\[0\] is on the meta device"):
        method(TinyCNN().eval()).attribute(torch.rand(3, 1, 6, 6, device="meta"), **kwargs)


@pytest.mark.parametrize("name", list(METHODS))
def test_a_call_that_raises_leaves_no_earlier_calls_results(name, images):
    method_class, kwargs = METHODS[name]
    method = method_class(TinyCNN().eval())
    result = "steps" if name == "ProgressiveMaskFill" else "counts"
    for bad, error in ((dict(step_size=float("nan")), "step_size"), (dict(loss="mse"), "loss")):
        method.attribute(images, **kwargs)
        assert getattr(method, result) is not None
        with pytest.raises(ValueError, match=error):
            method.attribute(images, **kwargs, **bad)
        assert getattr(method, result) is None  # not the good call's, for the next reader


@pytest.mark.parametrize("name", list(METHODS))
def test_warnings_about_the_call_point_at_the_callers_line(name, images):
    method_class, kwargs = METHODS[name]
    one_draw = {} if name == "ProgressiveMaskFill" else dict(n_samples=1, selection="all")
    wide = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 224 * 224, 2)).eval()
    with pytest.warns(UserWarning, match="patch_size=2 on 224 x 224 inputs") as record:
        method_class(wide).attribute(torch.rand(1, 3, 224, 224), target=0, **{**kwargs, **one_draw})
    assert {w.filename for w in record if "patch_size=2" in str(w.message)} == {__file__}
    with pytest.warns(UserWarning, match="the model is in training mode") as record:
        method_class(TinyCNN().train()).attribute(images, **kwargs)
    assert {w.filename for w in record if "training mode" in str(w.message)} == {__file__}


def test_the_three_estimators_offer_the_same_options_with_the_same_defaults():
    """MaskFill, BFGSMaskFill and LayerMaskFill share one estimator, and each offers all of
    its options (``FillOptions.option_names()``) and ``step_size`` with the same defaults.
    The one documented difference: BFGSMaskFill selects first by default (an update costs
    several passes, so only the kept copies get one)."""
    from captum_fillblanks import LayerMaskFill
    from captum_fillblanks.attr._estimator import FillOptions

    names = (*FillOptions.option_names(), "step_size", "internal_batch_size", "show_progress")
    assert {"n_samples", "tolerance", "record_at", "select_first", "masks"} <= set(names)
    defaults = {}
    for method in (MaskFill, BFGSMaskFill, LayerMaskFill):
        parameters = inspect.signature(method.attribute).parameters
        assert set(names) <= set(parameters), f"{method.__name__} lacks {set(names) - set(parameters)}"
        defaults[method.__name__] = {name: parameters[name].default for name in names}
    documented = {"select_first": True}
    assert defaults["LayerMaskFill"] == defaults["MaskFill"]
    assert defaults["BFGSMaskFill"] == {**defaults["MaskFill"], **documented}


@pytest.mark.parametrize("name", ["MaskFill", "BFGSMaskFill", "LayerMaskFill"])
def test_every_estimator_records_the_fill_of_a_shorter_call(name):
    from captum_fillblanks import LayerMaskFill

    model = TinyCNN().eval()
    images = torch.rand(3, 1, 6, 6, generator=torch.Generator().manual_seed(0))
    method = {"MaskFill": MaskFill, "BFGSMaskFill": BFGSMaskFill}.get(name)
    method = LayerMaskFill(model, model.conv) if method is None else method(model)
    options = {"n_iter": 2} if name == "BFGSMaskFill" else {}
    long = method.attribute(images, target=1, n_samples=12, seed=4, record_at=[5], selection="all", **options)
    recorded = method.counts.recorded[5]
    short = method.attribute(images, target=1, n_samples=5, seed=4, selection="all", **options)
    torch.testing.assert_close(recorded.fill, short, rtol=1e-5, atol=1e-7)
    assert torch.equal(recorded.n_kept, torch.full((3,), 5)) and not torch.equal(long, short)
