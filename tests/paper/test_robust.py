"""PGD, robust accuracy and robust training, on models whose worst case is known in closed form."""

import pytest
import torch
from torch import nn

from captum_fillblanks.cli import main
from captum_fillblanks.paper.data import load_samples
from captum_fillblanks.paper.models import simple_cnn
from captum_fillblanks.paper.robust import PGD, robust_accuracy
from captum_fillblanks.paper.training import train_model

WIDE = (-100.0, 100.0)  # an input range the attacks below never reach


class TwoClassLinear(nn.Module):
    """``logits = (0, w . x)``: the cross-entropy's input gradient for either label is
    a multiple of ``w``, so the worst change within an L2 ball of radius ``eps`` is
    ``eps * w / |w|`` (away from the label), and within an L-inf cube ``eps * sign(w)``."""

    def __init__(self, w: torch.Tensor) -> None:
        super().__init__()
        self.w = nn.Parameter(w.clone())

    def forward(self, x):
        score = x.flatten(1) @ self.w.flatten()
        return torch.stack([torch.zeros_like(score), score], dim=1)


@pytest.fixture
def linear():
    return TwoClassLinear(torch.randn(1, 4, 4, generator=torch.Generator().manual_seed(0))).eval()


@pytest.mark.parametrize("steps", [1, 7])
@pytest.mark.parametrize("random_start", [False, True])
def test_pgd_finds_the_closed_form_worst_case_of_a_linear_model(linear, steps, random_start):
    images = torch.randn(6, 1, 4, 4, generator=torch.Generator().manual_seed(1))
    labels = torch.tensor([0, 1, 0, 1, 0, 1])
    away = torch.where(labels == 0, 1.0, -1.0)[:, None, None, None]  # label 0 is beaten by raising w . x
    w = linear.w.detach()
    generator = torch.Generator().manual_seed(2)
    l2 = PGD("l2", 0.5, steps=steps, random_start=random_start, input_range=WIDE, step_size=1.0 if steps == 1 else None)
    change = l2.perturb(linear, images, labels, generator=generator) - images
    worst = away * 0.5 * w / w.norm()
    if not random_start:
        torch.testing.assert_close(change, worst, rtol=1e-4, atol=1e-5)
    else:  # on the surface, turned toward the worst case (one step of 1.0 from the surface: most of the way)
        torch.testing.assert_close(change.flatten(1).norm(dim=1), torch.full((6,), 0.5))
        cosine = torch.nn.functional.cosine_similarity(change.flatten(1), worst.flatten(1))
        assert (cosine > 0.85).all()
    linf = PGD("linf", 0.1, steps=steps, random_start=random_start, input_range=WIDE, step_size=0.2)
    attacked = linf.perturb(linear, images, labels, generator=generator)
    torch.testing.assert_close(attacked - images, away * 0.1 * w.sign(), rtol=1e-5, atol=1e-6)


def test_every_attacked_image_stays_in_its_ball_and_the_input_range():
    model = simple_cnn().eval()
    images, labels = load_samples("mnist")
    generator = torch.Generator().manual_seed(0)
    for attack in (PGD("l2", 2.0, steps=3), PGD("linf", 0.3, steps=3), PGD("l2", 2.0, steps=1)):
        attacked = attack.perturb(model, images[:20], labels[:20], generator=generator)
        change = (attacked - images[:20]).flatten(1)
        bound = change.norm(dim=1) if attack.norm == "l2" else change.abs().amax(1)
        assert (bound <= attack.epsilon * (1 + 1e-5)).all() and (bound > 0).all()
        assert attacked.min() >= 0 and attacked.max() <= 1


def test_the_attack_leaves_the_models_gradients_and_the_callers_images_alone(linear):
    images, labels = torch.rand(3, 1, 4, 4), torch.tensor([0, 1, 0])
    before = images.clone()
    linear.w.grad = torch.full_like(linear.w, 7.0)
    PGD("l2", 1.0).perturb(linear, images, labels, generator=torch.Generator().manual_seed(0))
    assert torch.equal(images, before) and torch.equal(linear.w.grad, torch.full_like(linear.w, 7.0))
    assert linear.w.requires_grad


def test_the_random_start_is_the_generators():
    model, (images, labels) = simple_cnn().eval(), load_samples("mnist")
    attack = PGD("l2", 1.0, steps=2)
    first = attack.perturb(model, images[:4], labels[:4], generator=torch.Generator().manual_seed(5))
    again = attack.perturb(model, images[:4], labels[:4], generator=torch.Generator().manual_seed(5))
    other = attack.perturb(model, images[:4], labels[:4], generator=torch.Generator().manual_seed(6))
    assert torch.equal(first, again) and not torch.equal(first, other)


def test_robust_accuracy_counts_the_images_farther_from_the_boundary_than_epsilon(linear):
    # images at L2 distances 0.2, 0.4, ..., 2.0 from the boundary, on the right side
    w = linear.w.detach()
    distance = torch.linspace(0.2, 2.0, 10)
    labels = torch.tensor([0, 1] * 5)
    side = torch.where(labels == 1, 1.0, -1.0)
    images = (side * distance)[:, None, None, None] * (w / w.norm())[None]
    linear.train()
    attack = PGD("l2", 1.1, steps=10, input_range=WIDE)
    assert robust_accuracy(linear, images, labels, attack, batch_size=3) == pytest.approx(0.5)  # 1.2 ... 2.0
    assert linear.training  # left in the mode it was in


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("norm", "l1", "norm must be one of"),
        ("epsilon", 0, "epsilon must be a number > 0"),
        ("steps", 0, "steps must be an int >= 1"),
        ("warmup", 1.0, "warmup must be a fraction"),
        ("step_size", -1.0, "step_size must be None or a number > 0"),
    ],
)
def test_a_bad_attack_is_refused_by_name(field, value, message):
    settings = {"norm": "l2", "epsilon": 1.0, field: value}
    with pytest.raises(ValueError, match=message):
        PGD(**settings)


def test_an_attack_goes_to_meta_and_back():
    attack = PGD("linf", 0.3, steps=1, warmup=0.2)
    assert PGD(**attack.as_meta()) == attack
    assert str(attack) == "PGD L-inf, epsilon 0.3, 1 steps of 0.375, random start"


@pytest.fixture(scope="module")
def tiny_set():
    images, labels = load_samples("mnist")
    return images[::2], labels[::2]


def _trained(data, **settings):
    torch.manual_seed(0)
    model = train_model(simple_cnn(), data, epochs=1, batch_size=16, seed=1, show_progress=False, **settings)
    return model.state_dict()


@pytest.mark.parametrize("settings", [{"noise_std": 0.5}, {"attack": PGD("l2", 2.0, steps=2, warmup=0.5)}])
def test_robust_training_is_reproducible_and_changes_the_weights(tiny_set, settings):
    first, again, clean = _trained(tiny_set, **settings), _trained(tiny_set, **settings), _trained(tiny_set)
    assert all(torch.equal(first[key], again[key]) for key in first)
    assert not all(torch.equal(first[key], clean[key]) for key in first)


def test_the_radius_grows_linearly_over_the_warmup(tiny_set):
    asked = []

    class RecordingPGD(PGD):
        """Records the radius training asks for and changes nothing."""

        def perturb(self, model, images, labels, *, generator=None, epsilon=None):
            asked.append(epsilon)
            assert not model.training  # attacked in eval mode
            return images

    # 50 images in batches of 10: 5 steps an epoch, 2 epochs, a warm-up of 5 steps
    model = train_model(
        simple_cnn(), tiny_set, epochs=2, batch_size=10, attack=RecordingPGD("l2", 2.0, warmup=0.5), show_progress=False
    )
    assert asked == pytest.approx([0.0, 0.4, 0.8, 1.2, 1.6, 2.0, 2.0, 2.0, 2.0, 2.0])
    assert not model.training


@pytest.mark.parametrize(
    "settings, message",
    [
        ({"noise_std": -1.0}, "noise_std=-1.0"),
        ({"attack": {"norm": "l2"}}, "expected a PGD"),
        ({"noise_std": 0.5, "mask_token_id": 2}, "apply to images"),
    ],
)
def test_train_model_refuses_bad_robust_settings_by_name(tiny_set, settings, message):
    with pytest.raises((ValueError, TypeError), match=message):
        train_model(simple_cnn(), tiny_set, epochs=1, show_progress=False, **settings)


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--epsilon", "2"], "--epsilon need --attack"),
        (["--attack-steps", "1"], "--attack-steps need --attack"),
        (["--attack", "none", "--warmup", "0.1"], "--warmup need --attack"),
        (["--attack", "l2"], "--attack needs --epsilon"),
        (["--attack", "l2", "--epsilon", "-1"], "epsilon must be a number > 0"),
        (["--noise-std", "-0.5"], "--noise-std must be >= 0"),
        (["--dataset", "tweets", "--attack", "l2", "--epsilon", "1"], "--attack, --epsilon are not for --dataset"),
    ],
)
def test_the_train_command_refuses_bad_robust_options_in_one_line(tmp_path, extra, message):
    dataset = [] if "--dataset" in extra else ["--dataset", "mnist"]
    with pytest.raises(SystemExit, match=message):
        main(["train", *dataset, "--data-dir", str(tmp_path), *extra])


def test_arts_pgd_finds_the_same_robust_accuracy_on_a_linear_model(linear):
    pytest.importorskip("art", reason="the optional extra 'robust'")
    from captum_fillblanks.paper.robust import art_robust_accuracy

    w = linear.w.detach()
    labels = torch.tensor([0, 1] * 5)
    side = torch.where(labels == 1, 1.0, -1.0)
    images = (side * torch.linspace(0.2, 2.0, 10))[:, None, None, None] * (w / w.norm())[None]
    state = torch.random.get_rng_state()
    for attack, expected in (
        (PGD("l2", 1.1, steps=10, input_range=WIDE), 0.5),
        (PGD("l2", 0.3, steps=10, input_range=WIDE), 0.9),
    ):
        assert art_robust_accuracy(linear, images, labels, attack) == pytest.approx(expected)
        assert robust_accuracy(linear, images, labels, attack) == pytest.approx(expected)
    assert torch.equal(torch.random.get_rng_state(), state)
