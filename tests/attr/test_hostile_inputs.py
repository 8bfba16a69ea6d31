"""Inputs that once gave a silent wrong answer or changed the caller's objects (issue
#25), for each of the three estimators: per-example feature masks, models that change
their input in place or run in training mode, models that ignore their input, negative
class targets and examples with no kept draw."""

import pytest
import torch
from captum.attr import Saliency
from conftest import TinyCNN
from torch import nn

from captum_fillblanks import BFGSMaskFill, MaskFill, ProgressiveMaskFill

METHODS = {
    "MaskFill": (MaskFill, dict(n_samples=8, seed=0)),
    "BFGSMaskFill": (BFGSMaskFill, dict(n_samples=4, seed=0, n_iter=2)),
    "ProgressiveMaskFill": (ProgressiveMaskFill, dict(n_steps=3, seed=0)),
}
RANDOM = ["MaskFill", "BFGSMaskFill"]

# the tiny models here keep few draws for some targets; these tests are about other things
pytestmark = pytest.mark.filterwarnings("ignore:no draw was kept", "ignore:only .* draws were kept")


@pytest.fixture
def x():
    return torch.rand(3, 1, 6, 6, generator=torch.Generator().manual_seed(3))


class ImageAndTable(nn.Module):
    """A tuple-input model: an image ``(B, 1, 6, 6)`` and a table ``(B, 3)``."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(1)
        self.image = nn.Linear(36, 3)
        self.table = nn.Linear(3, 3)

    def forward(self, image, table):
        return torch.tanh(self.image(image.flatten(1))) + self.table(table)


def table_inputs(batch=3):
    generator = torch.Generator().manual_seed(4)
    return torch.rand(batch, 1, 6, 6, generator=generator), torch.rand(batch, 3, generator=generator)


def halves(batch):
    """A feature mask per example: left and right halves for example 0, top and bottom
    for the others."""
    mask = torch.zeros(batch, 1, 6, 6, dtype=torch.long)
    mask[0, ..., 3:] = 1
    mask[1:, :, 3:] = 1
    return mask


# A. A feature mask is one for all examples.


@pytest.mark.parametrize("name", METHODS)
@pytest.mark.parametrize("internal_batch_size", [None, 1])
def test_a_feature_mask_that_differs_between_examples_is_refused(name, internal_batch_size, x):
    method, kwargs = METHODS[name]
    with pytest.raises(ValueError, match=r"feature_mask\[0\] of shape \(3, 1, 6, 6\) gives the 3 examples different"):
        method(TinyCNN().eval()).attribute(x, feature_mask=halves(3), internal_batch_size=internal_batch_size, **kwargs)
    image, table = table_inputs()
    per_example_table = torch.arange(3).repeat(3, 1) + 10 * torch.arange(3)[:, None]  # (3, 3), rows differ
    with pytest.raises(ValueError, match=r"feature_mask\[1\].*give one mask for all examples, of shape \(1, 3\)"):
        method(ImageAndTable().eval()).attribute(
            (image, table),
            target=0,
            feature_mask=(halves(1), per_example_table),
            internal_batch_size=internal_batch_size,
            **kwargs,
        )


@pytest.mark.parametrize("name", METHODS)
def test_a_feature_mask_repeated_for_every_example_is_the_shared_mask(name, x):
    method, kwargs = METHODS[name]
    shared = halves(1)
    kwargs = {**kwargs, "n_steps": 2} if name == "ProgressiveMaskFill" else kwargs
    expected = method(TinyCNN().eval()).attribute(x, feature_mask=shared, **kwargs)
    repeated = method(TinyCNN().eval()).attribute(x, feature_mask=shared.expand(3, -1, -1, -1), **kwargs)
    assert torch.equal(repeated, expected)
    alone = method(TinyCNN().eval()).attribute(x[1:2], feature_mask=shared, **kwargs)
    assert torch.allclose(expected[1:2], alone, atol=1e-6)  # every example gives what it gives alone
    image, table = table_inputs()
    table_groups = torch.tensor([0, 0, 1])
    given = method(ImageAndTable().eval()).attribute(
        (image, table), target=0, feature_mask=(shared, table_groups.expand(3, 3)), **kwargs
    )
    once = method(ImageAndTable().eval()).attribute(
        (image, table), target=0, feature_mask=(shared, table_groups), **kwargs
    )
    assert all(torch.equal(a, b) for a, b in zip(given, once))


# B. The caller's tensors and model state.


class InPlaceShift(nn.Module):
    """Normalizes its input in place, as some preprocessing wrappers do."""

    def __init__(self, net: nn.Module, in_place: bool = True) -> None:
        super().__init__()
        self.net, self.in_place = net, in_place

    def forward(self, z):
        z = z.sub_(0.5) if self.in_place else z - 0.5
        return self.net(z)


@pytest.mark.parametrize(
    "name, select_first", [(name, None) for name in METHODS] + [(name, s) for name in RANDOM for s in (True, False)]
)
def test_a_model_that_changes_its_input_in_place_leaves_the_callers_tensor_alone(name, select_first, x):
    method, kwargs = METHODS[name]
    if select_first is not None:
        kwargs = {**kwargs, "select_first": select_first}
    before = x.clone()
    net = TinyCNN().eval()
    result = method(InPlaceShift(net).eval()).attribute(x, **kwargs)
    assert torch.equal(x, before)  # bit for bit
    # and the model sees what it would see had it not worked in place
    assert torch.equal(result, method(InPlaceShift(net, in_place=False).eval()).attribute(x, **kwargs))


def batch_norm_model():
    torch.manual_seed(2)
    return nn.Sequential(
        nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.Tanh(), nn.Flatten(), nn.Linear(2 * 4 * 4, 3)
    ).train()


def buffers(model):
    return {name: buffer.clone() for name, buffer in model.named_buffers()}


def assert_same_buffers(model, before):
    after = dict(model.named_buffers())
    assert after.keys() == before.keys()
    for name, value in before.items():
        assert torch.equal(after[name], value), name


@pytest.mark.parametrize("name", METHODS)
@pytest.mark.parametrize("bound_method", [False, True])
def test_a_model_in_training_mode_gets_its_buffers_back(name, bound_method, x):
    method, kwargs = METHODS[name]
    model = batch_norm_model()
    before = buffers(model)
    forward = model.forward if bound_method else model
    with pytest.warns(UserWarning, match="training mode"):
        method(forward).attribute(x, target=0, **kwargs)
    assert_same_buffers(model, before)  # running_mean, running_var, num_batches_tracked
    assert model.training
    with pytest.warns(UserWarning, match="training mode"), pytest.raises(ValueError, match="one loss per row"):
        method(forward).attribute(x, target=0, loss=lambda outputs, target: outputs.sum(), **kwargs)
    assert_same_buffers(model, before)  # after a call that raised too


# C. Silent or misleading results.


@pytest.mark.parametrize("name", METHODS)
def test_a_model_that_ignores_its_input_raises_what_captum_raises(name, x):
    method, kwargs = METHODS[name]
    net = TinyCNN().eval()

    def detached(z):
        return net(z.detach())

    def constant(z):  # no graph at all
        return torch.ones(z.shape[0], 3)

    def image_only(image, table):
        return net(image)

    with pytest.raises(Exception) as captum_error:
        Saliency(detached).attribute(x.clone().requires_grad_(), target=0)
    with pytest.raises(type(captum_error.value), match=r"the model's output does not depend on inputs\[0\]"):
        method(detached).attribute(x, target=0, **kwargs)
    every_draw = {} if name == "ProgressiveMaskFill" else {"selection": "all"}
    with pytest.raises(type(captum_error.value), match=r"does not depend on inputs\[0\]"):
        method(constant).attribute(x, target=0, **kwargs, **every_draw)
    # a tuple whose second tensor the model does not use: Captum raises for it too
    image, table = table_inputs()
    with pytest.raises(Exception) as captum_error:
        Saliency(image_only).attribute((image.clone().requires_grad_(), table.clone().requires_grad_()), target=0)
    with pytest.raises(type(captum_error.value), match=r"does not depend on inputs\[1\]"):
        method(image_only).attribute((image, table), target=0, **kwargs)


@pytest.mark.parametrize("name", RANDOM)
@pytest.mark.parametrize("loss", ["cross_entropy", "target"])
@pytest.mark.parametrize("selection", ["correct", "all"])
@pytest.mark.parametrize("select_first", [None, True, False])
def test_a_negative_class_target_means_what_it_means_in_captum(name, loss, selection, select_first, x):
    method, kwargs = METHODS[name]
    net = TinyCNN().eval()  # three classes
    options = dict(kwargs, loss=loss, selection=selection, select_first=select_first, max_draws=40)
    expected = method(net).attribute(x, target=2, **options)
    assert torch.equal(method(net).attribute(x, target=-1, **options), expected)
    assert torch.equal(method(net).attribute(x, target=torch.tensor(-1), **options), expected)
    assert torch.equal(method(net).attribute(x, target=-3, **options), method(net).attribute(x, target=0, **options))
    saliency = Saliency(net)  # the reference: Captum reads -1 as the last class
    assert torch.equal(
        saliency.attribute(x.clone().requires_grad_(), target=-1),
        saliency.attribute(x.clone().requires_grad_(), target=2),
    )


@pytest.mark.parametrize("loss", ["cross_entropy", "target"])
def test_a_negative_class_target_means_the_same_in_the_progressive_fill(loss, x):
    method = ProgressiveMaskFill(TinyCNN().eval())
    expected = method.attribute(x, target=2, loss=loss, n_steps=3, seed=0)
    labels = method.steps.labels
    assert torch.equal(method.attribute(x, target=-1, loss=loss, n_steps=3, seed=0), expected)
    assert torch.equal(method.steps.labels, labels)


def always_class_zero(z):
    """Predicts class 0 for every input in [0, 1) (its score is 1, the others the mean
    value), with a gradient for every class."""
    mean = z.flatten(1).mean(1)
    return torch.stack([1 + 0 * mean, mean, -mean], 1)


@pytest.mark.parametrize("name", RANDOM)
def test_an_example_with_no_kept_draw_has_a_nan_convergence_delta(name, x):
    method, kwargs = METHODS[name]
    estimator = method(always_class_zero)
    with pytest.warns(UserWarning, match=r"no draw was kept for example\(s\) \[0\]"):
        fill, delta = estimator.attribute(x, target=[1, 0, 0], max_draws=16, return_convergence_delta=True, **kwargs)
    assert estimator.counts.n_kept.tolist() == [0, kwargs["n_samples"], kwargs["n_samples"]]
    assert torch.isnan(delta[0])  # no data is not zero error
    assert not bool(torch.isnan(delta[1:]).any())
    assert torch.equal(fill[0], torch.zeros_like(fill[0]))


# D. Obscure errors.


@pytest.mark.parametrize("name", METHODS)
@pytest.mark.parametrize("loss", ["cross_entropy", "target"])
def test_a_model_that_returns_class_ids_gets_a_type_error(name, loss, x):
    method, kwargs = METHODS[name]
    net = TinyCNN().eval()
    options = dict(kwargs, loss=loss)
    if name != "ProgressiveMaskFill":
        options["selection"] = "all"
    for ids in (lambda z: net(z).argmax(1), lambda z: (100 * net(z)).long()):
        with pytest.raises(TypeError, match=r"forward_func returned a tensor of dtype torch.int64.*not class ids"):
            method(ids).attribute(x, target=0, **options)
