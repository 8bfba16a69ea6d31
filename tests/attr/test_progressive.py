import pytest
import torch
import torch.nn.functional as F
from conftest import assert_max_close

from captum_fillblanks import MaskFill, ProgressiveMaskFill, TransformSetting, fill_transform, to_input_range


@pytest.fixture
def run(tiny_cnn, images):
    method = ProgressiveMaskFill(tiny_cnn)
    final = method.attribute(images, n_steps=3, seed=4, input_range=(-0.5, 2.0))
    return method, final


def test_every_pixel_is_written_exactly_once(run, images):
    method, final = run
    groups = method.steps.groups
    assert groups.shape == (3, 6, 6)
    assert torch.all((groups == 0).sum(0) == 1)
    # a pixel changes from the input only at its own step, and never afterwards
    previous = images
    for step, image in enumerate(method.steps.images):
        blank = groups[step] == 0
        assert torch.equal(image[:, :, ~blank], previous[:, :, ~blank])
        previous = image
    assert torch.equal(method.steps.images[-1], final)


def test_no_value_of_the_input_survives(run):
    _, final = run
    assert set(final.unique().tolist()) <= {-0.5, 2.0}


def test_step_depends_only_on_the_previous_image(tiny_cnn, run):
    method, _ = run
    step = 1
    before = method.steps.images[step - 1]
    blank = method.steps.groups[step] == 0
    masked = torch.where(blank, torch.zeros(()), before).requires_grad_()
    logits = tiny_cnn(masked)
    labels = logits.argmax(1)
    (grad,) = torch.autograd.grad(F.cross_entropy(logits, labels, reduction="sum"), masked)
    written = to_input_range(fill_transform(-grad, blank.expand_as(grad)), (-0.5, 2.0))
    expected = torch.where(blank, written, before)
    assert torch.equal(method.steps.images[step], expected)
    assert torch.equal(method.steps.labels[step], labels)


def test_step_labels_are_the_predictions_on_the_masked_input(tiny_cnn, run, images):
    method, _ = run
    previous = images
    for step in range(3):
        masked = previous * method.steps.groups[step]
        assert torch.equal(method.steps.labels[step], tiny_cnn(masked).argmax(1))
        previous = method.steps.images[step]


def test_one_step_equals_one_fill_of_the_whole_image(tiny_cnn, images):
    method = ProgressiveMaskFill(tiny_cnn)
    final = method.attribute(images, n_steps=1, seed=0, binarized=False)
    update = MaskFill(tiny_cnn).attribute(
        images, masks=torch.zeros(6, 6), selection="all", target=tiny_cnn(torch.zeros_like(images)).argmax(1)
    )
    assert_max_close(final, fill_transform(update, binarized=False))


def test_batch_equals_one_by_one(tiny_cnn, images):
    method = ProgressiveMaskFill(tiny_cnn)
    batched = method.attribute(images, n_steps=4, seed=2)
    split = method.attribute(images, n_steps=4, seed=2, internal_batch_size=2)
    assert torch.equal(batched, split)
    for e in range(3):
        assert torch.equal(method.attribute(images[e : e + 1], n_steps=4, seed=2), batched[e : e + 1])


def test_tuple_inputs_and_target_list():
    class Two(torch.nn.Module):
        def forward(self, a, b):
            return torch.stack([a.flatten(1).sum(1), b.sum(1), (a.flatten(1) ** 2).sum(1)], 1)

    a, b = torch.rand(2, 1, 4, 4), torch.rand(2, 6)
    method = ProgressiveMaskFill(Two().eval())
    fa, fb = method.attribute((a, b), target=[0, 2], n_steps=2, seed=0)
    assert fa.shape == a.shape and fb.shape == b.shape
    ga, gb = method.steps.groups
    assert ga.shape == (2, 4, 4) and gb.shape == (2, 6)
    assert torch.all((gb == 0).sum(0) == 1)


def test_a_non_finite_input_is_counted_and_drawn_as_background_not_smeared(tiny_cnn, images):
    method = ProgressiveMaskFill(tiny_cnn)
    clean = method.attribute(images[:2], n_steps=2, seed=3)
    # a pixel that step 1 keeps, so that the model sees the NaN
    row, col = (method.steps.groups[0] == 1).nonzero()[0].tolist()
    broken = images.clone()
    broken[2, 0, row, col] = float("nan")
    with pytest.warns(UserWarning, match=r"non-finite values \(NaN or inf\) at blank positions of example\(s\) \[2\]"):
        rebuilt = method.attribute(broken, n_steps=2, seed=3)
    assert method.steps.n_nonfinite[2] > 0 and method.steps.n_nonfinite[:2].tolist() == [0, 0]
    assert torch.isfinite(rebuilt[:2]).all()
    assert torch.equal(rebuilt[:2], clean)


@pytest.mark.parametrize(
    ("setting", "loose"),
    [
        (TransformSetting(), {}),
        (TransformSetting("min_max", 0.3), {"normalization": "min_max", "threshold": 0.3}),
        (TransformSetting(binarized=False), {"binarized": False}),
    ],
)
def test_transform_gives_exactly_what_the_loose_keywords_give(tiny_cnn, images, setting, loose):
    method = ProgressiveMaskFill(tiny_cnn)
    given = method.attribute(images, n_steps=3, seed=1, transform=setting)
    given_images = method.steps.images
    assert torch.equal(given, method.attribute(images, n_steps=3, seed=1, **loose))
    assert torch.equal(given_images, method.steps.images)


def test_transform_and_loose_keywords_at_once_are_refused(tiny_cnn, images):
    with pytest.raises(TypeError, match="give transform= or threshold/binarized/normalization, not both"):
        ProgressiveMaskFill(tiny_cnn).attribute(images, transform=TransformSetting(), threshold=0.3)


class _Recording(torch.nn.Module):
    """The model, keeping every batch of masked copies it is given."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model
        self.seen: list[torch.Tensor] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.seen.append(x.detach().clone())
        return self.model(x)


BLANK = -7.0  # a baseline no pixel of the images has, so the copies show their blanks


def test_an_averaged_step_is_the_mean_cross_entropy_gradient_over_its_copies(tiny_cnn, images):
    recording = _Recording(tiny_cnn).eval()
    method = ProgressiveMaskFill(recording)
    setting = TransformSetting(binarized=False)
    method.attribute(images, baselines=BLANK, n_steps=3, seed=5, n_samples=5, context_ratio=0.5, transform=setting)
    # one pass over the inputs (their labels), then per step the group's own mask and the 4
    # added copies in one pass
    assert torch.equal(recording.seen[0], images) and len(recording.seen) == 7
    previous = images
    for step in range(3):
        blank = method.steps.groups[step] == 0
        own, added = recording.seen[2 * step + 1], recording.seen[2 * step + 2].reshape(4, 3, 1, 6, 6)
        assert torch.equal(own, torch.where(blank, torch.tensor(BLANK), previous))
        # every copy blanks the whole group and 3 of the 6 other 2x2 patches, and shows
        # the rest of the current image
        assert torch.all(added[:, :, :, blank] == BLANK)
        blanked = added == BLANK
        assert torch.equal((blanked & ~blank).sum((1, 2, 3, 4)), torch.full((4,), 3 * 3 * 4))
        assert torch.equal(torch.where(blanked, previous, added), previous.expand_as(added))
        labels = tiny_cnn(own).argmax(1)
        assert torch.equal(method.steps.labels[step], labels)
        copies = torch.cat([own[None], added]).requires_grad_()
        logits = tiny_cnn(copies.reshape(-1, 1, 6, 6))
        loss = F.cross_entropy(logits, labels.repeat(5), reduction="sum")
        (grad,) = torch.autograd.grad(loss, copies)
        written = to_input_range(setting(-grad.mean(0), blank.expand_as(previous)))
        assert_max_close(method.steps.images[step], torch.where(blank, written, previous), 1e-6)
        previous = method.steps.images[step]


def test_averaged_steps_give_the_same_in_a_batch_alone_and_in_any_chunks(tiny_cnn, images):
    method = ProgressiveMaskFill(tiny_cnn)
    options = dict(n_steps=3, seed=2, n_samples=7, binarized=False)
    whole = method.attribute(images, **options)
    groups = method.steps.groups
    for chunks in (1, 2, 5):
        assert_max_close(method.attribute(images, internal_batch_size=chunks, **options), whole, 1e-6)
    for e in range(3):
        assert_max_close(method.attribute(images[e : e + 1], **options), whole[e : e + 1], 1e-6)
    # the partition is drawn before the added copies: the groups do not depend on n_samples
    method.attribute(images, n_steps=3, seed=2)
    assert torch.equal(method.steps.groups, groups)


def test_copies_with_one_gradient_average_to_it(softmax_regression):
    # loss="target" on a linear model: the gradient is -W[target] under any mask, so the
    # mean over 6 copies is the one copy's update
    x = torch.rand(2, 1, 6, 6, generator=torch.Generator().manual_seed(0))
    method = ProgressiveMaskFill(softmax_regression)
    one = method.attribute(x, target=1, loss="target", n_steps=2, seed=0, binarized=False)
    six = method.attribute(x, target=1, loss="target", n_steps=2, seed=0, binarized=False, n_samples=6)
    assert_max_close(six, one, 1e-6)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"n_samples": 0}, ValueError, "n_samples must be >= 1, got 0"),
        ({"n_samples": 2.0}, TypeError, "n_samples must be a positive int, got float"),
        ({"n_samples": 4, "context_ratio": 1.0}, ValueError, r"context_ratio must be in \(0, 1\)"),
        ({"n_samples": 4, "context_ratio": "half"}, TypeError, "context_ratio must be a float"),
    ],
)
def test_bad_averaging_settings_are_refused_by_name(tiny_cnn, images, kwargs, error, match):
    before = images.clone()
    with pytest.raises(error, match=match):
        ProgressiveMaskFill(tiny_cnn).attribute(images, **kwargs)
    assert torch.equal(images, before)
