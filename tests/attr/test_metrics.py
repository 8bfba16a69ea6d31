import math

import pytest
import torch
from conftest import Brightness, TinyCNN

from captum_fillblanks import MaskFill, ProgressiveMaskFill
from captum_fillblanks.attr.metrics import (
    ROWS,
    ConsistencyCounts,
    classification_scores,
    consistency_counts,
    rebuild_rows,
    row_settings,
    score_rows,
)
from captum_fillblanks.attr.transforms import TransformSetting


def test_scores_of_a_hand_computed_confusion_matrix():
    # rows: true class, columns: predicted. class 0: P=1, R=3/4; class 1: P=1/2, R=1
    scores = classification_scores(torch.tensor([[3, 1], [0, 1]]))
    f1_0, f1_1 = 2 * 1 * 0.75 / 1.75, 2 * 0.5 * 1 / 1.5
    assert math.isclose(scores["accuracy"], 80.0)
    assert math.isclose(scores["macro_f1"], 100 * (f1_0 + f1_1) / 2, rel_tol=1e-9)
    assert math.isclose(scores["weighted_f1"], 100 * (4 * f1_0 + 1 * f1_1) / 5, rel_tol=1e-9)


def test_class_never_predicted_counts_as_zero_f1():
    scores = classification_scores(torch.tensor([[2, 0, 0], [2, 0, 0], [0, 0, 0]]))
    f1_0 = 2 * 0.5 * 1 / 1.5
    assert math.isclose(scores["macro_f1"], 100 * f1_0 / 3, rel_tol=1e-9)  # three labels
    assert math.isclose(scores["weighted_f1"], 100 * (2 * f1_0) / 4, rel_tol=1e-9)


def test_shards_combine_exactly():
    reference = torch.tensor([0, 1, 2, 2, 1, 0, 2])
    predicted = torch.tensor([0, 2, 2, 1, 1, 0, 2])
    whole = ConsistencyCounts(3)
    whole.add("strict", reference, predicted)
    shards = []
    for rows in (slice(0, 2), slice(2, 5), slice(5, 7)):
        shard = ConsistencyCounts(3)
        shard.add("strict", reference[rows], predicted[rows])
        shards.append(shard)
    combined = ConsistencyCounts.combine(shards)
    assert torch.equal(combined.confusion["strict"], whole.confusion["strict"])
    assert combined.n_images == 7


def test_consistency_counts_scores_every_row(images):
    model = TinyCNN().eval()
    counts = consistency_counts(
        model, images, n_classes=3, n_samples=20, n_steps=2, control_model=TinyCNN(seed=1).eval()
    )
    assert list(counts.confusion) == list(ROWS)
    assert all(int(m.sum()) == 3 for m in counts.confusion.values())
    # the rows scored against y_0 use the model's predictions on the images themselves
    reference = model(images).argmax(1)
    for row in ("control", "strict", "progressive, recovery", "random-model control"):
        assert torch.equal(counts.confusion[row].sum(1), torch.bincount(reference, minlength=3)), row


def test_progressive_rows_score_against_the_last_step_label_or_the_original_one():
    # 0.3 everywhere is class 1; with half of it blanked the model sees class 0, pushes
    # toward 0 (no ink), and the last step's masked input is all zeros: y_k = 0 != y_0 = 1.
    model, images = Brightness().eval(), torch.full((2, 1, 4, 4), 0.3)
    fill = torch.zeros_like(images)
    counts = consistency_counts(model, images, n_classes=2, n_steps=2, fill=fill, seed=0)
    method = ProgressiveMaskFill(model)
    x_k = method.attribute(images, n_steps=2, seed=0)
    assert method.steps.labels[-1].tolist() == [0, 0] and torch.equal(x_k, torch.zeros_like(images))
    assert counts.confusion["progressive"].tolist() == [[2, 0], [0, 0]]  # x_k is class 0 = y_k
    assert counts.confusion["progressive, recovery"].tolist() == [[0, 0], [2, 0]]  # but y_0 = 1
    # one fixed target y_0 = 1 for every step writes ink everywhere: y_k = y_0 = 1
    fixed = method.attribute(images, target=1, n_steps=2, seed=0)
    assert torch.equal(fixed, torch.ones_like(images)) and method.steps.labels[-1].tolist() == [1, 1]
    assert counts.confusion["progressive, fixed target"].tolist() == [[0, 0], [0, 2]]
    assert counts.confusion["progressive, fixed target, recovery"].tolist() == [[0, 0], [0, 2]]


def test_row_settings_one_for_all_or_one_per_row():
    low, high = TransformSetting("min_max", 0.2), TransformSetting("max_abs", 0.7)
    assert set(row_settings(low).values()) == {low}
    settings = row_settings({"strict": low, "progressive": high})
    assert settings["strict"] == settings["random-model control"] == low
    assert settings["progressive"] == high and settings["paper-style"] == TransformSetting()
    assert row_settings({"strict": low, "random-model control": high})["random-model control"] == high
    with pytest.raises(ValueError, match="unknown rows \\['control'\\]"):
        row_settings({"control": low})
    with pytest.raises(TypeError, match="transform for row 'strict' must be a TransformSetting"):
        row_settings({"strict": 0.5})
    with pytest.raises(TypeError, match="transform must be a TransformSetting or a mapping"):
        row_settings(0.5)


def test_per_row_settings_score_each_row_as_its_own_setting_would(images):
    model, control = TinyCNN().eval(), TinyCNN(seed=1).eval()
    fill = MaskFill(model).attribute(images, n_samples=20, seed=0)
    kwargs = dict(n_classes=3, n_steps=2, fill=fill, control_model=control, control_samples=10, seed=2)
    chosen = {
        "paper-style": TransformSetting("min_max", 0.2),
        "strict": TransformSetting("max_abs", 0.4),
        "progressive": TransformSetting("max_abs", binarized=False),
        "progressive, fixed target, recovery": TransformSetting("min_max", 0.7),
    }
    per_row = consistency_counts(model, images, transform=chosen, **kwargs)
    expected = {**{row: TransformSetting() for row in ROWS if row != "control"}, **chosen}
    expected["random-model control"] = chosen["strict"]
    for row, setting in expected.items():
        alone = consistency_counts(model, images, transform=setting, **kwargs)
        assert torch.equal(per_row.confusion[row], alone.confusion[row]), row
    assert torch.equal(per_row.confusion["control"], alone.confusion["control"])


def test_a_given_control_fill_is_the_one_the_control_model_would_compute(images):
    model, control = TinyCNN().eval(), TinyCNN(seed=1).eval()
    fill = MaskFill(model).attribute(images, n_samples=20, seed=0)
    computed = consistency_counts(
        model, images, n_classes=3, n_steps=2, fill=fill, control_model=control, control_samples=10, seed=2
    )
    control_fill = MaskFill(control).attribute(
        images, target=model(images).argmax(1), selection="all", n_samples=10, seed=2
    )
    given = consistency_counts(model, images, n_classes=3, n_steps=2, fill=fill, control_fill=control_fill, seed=2)
    assert torch.equal(computed.confusion["random-model control"], given.confusion["random-model control"])


def test_max_draws_bounds_the_trained_models_fill(images):
    model = TinyCNN().eval()
    fill = MaskFill(model).attribute(images, n_samples=20, max_draws=20, seed=4)
    with pytest.warns(UserWarning, match="max_draws=20 draws"):
        counts = consistency_counts(model, images, n_classes=3, n_samples=20, max_draws=20, n_steps=2, seed=4)
    given = consistency_counts(model, images, n_classes=3, n_steps=2, seed=4, fill=fill)
    assert all(torch.equal(counts.confusion[row], given.confusion[row]) for row in counts.confusion)


@pytest.mark.parametrize(
    "reference, predicted, message",
    [
        ([0, 1], [2, 3], r"predicted holds labels \[3\] outside \[0, n_classes=3\)"),
        ([0, -1], [2, 0], r"reference holds labels \[-1\] outside \[0, n_classes=3\)"),
        ([0, 1, 2], [2, 0], "reference and predicted must hold one label per image each, got 3 and 2"),
    ],
)
def test_labels_that_do_not_fit_the_matrix_are_refused_and_count_nothing(reference, predicted, message):
    counts = ConsistencyCounts(3)
    counts.add("strict", torch.tensor([0]), torch.tensor([0]))
    with pytest.raises(ValueError, match=message):
        counts.add("strict", torch.tensor(reference), torch.tensor(predicted))
    assert counts.confusion["strict"].sum() == 1  # nothing counted into another cell
    with pytest.raises(TypeError, match="reference must be a Tensor of integer class labels"):
        counts.add("strict", torch.tensor([0.0]), torch.tensor([0]))
    with pytest.raises(ValueError, match="n_classes must be >= 1"):
        ConsistencyCounts(0)


@pytest.mark.parametrize(
    "confusion, error, message",
    [
        (torch.ones(2, 3, dtype=torch.long), ValueError, r"square matrix .* got shape \(2, 3\)"),
        (torch.ones(4, dtype=torch.long), ValueError, r"square matrix .* got shape \(4,\)"),
        (torch.tensor([[3, -1], [0, 2]]), ValueError, r"negative counts: \[-1\]"),
        (torch.tensor([[1.5, 0.0], [0.0, 2.0]]), ValueError, "fractional counts"),
        ([[1, 0], [0, 1]], TypeError, "confusion must be a real Tensor of counts, got list"),
    ],
)
def test_a_confusion_matrix_that_is_not_square_counts_is_refused(confusion, error, message):
    with pytest.raises(error, match=message):
        classification_scores(confusion)


class CountingModel(torch.nn.Module):
    """TinyCNN that counts the examples it is given."""

    def __init__(self):
        super().__init__()
        self.net, self.seen = TinyCNN().eval(), 0

    def forward(self, x):
        self.seen += x.shape[0]
        return self.net(x)


@pytest.mark.parametrize(
    "n_classes, error, message",
    [
        (2, ValueError, r"n_classes=2 does not fit the model, whose output has shape \(3, 3\)"),
        (4, ValueError, r"n_classes=4 does not fit the model"),
        (0, ValueError, "n_classes must be >= 1"),
        (3.0, TypeError, "n_classes must be a positive int"),
    ],
)
def test_a_wrong_n_classes_is_refused_before_any_fill_is_computed(n_classes, error, message, images):
    model = CountingModel().eval()
    with pytest.raises(error, match=message):
        consistency_counts(model, images, n_classes=n_classes, n_samples=20, n_steps=2)
    assert model.seen <= len(images)  # at most the one forward pass that checks it
    rebuilt = rebuild_rows(TinyCNN().eval(), images, n_samples=4, n_steps=2, rows=["control"])
    with pytest.raises(error, match=message):
        score_rows(TinyCNN().eval(), rebuilt, n_classes)


def test_a_model_that_works_in_place_leaves_the_shards_images_alone(images):
    class InPlace(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.net = TinyCNN().eval()

        def forward(self, x):
            return self.net(x.mul_(0.5))

    before = images.clone()
    consistency_counts(InPlace().eval(), images, n_classes=3, n_samples=4, n_steps=2)
    assert torch.equal(images, before)


def test_given_scoring_masks_blank_each_image_where_they_say(images):
    from captum_fillblanks.attr.masks import apply_masks
    from captum_fillblanks.attr.metrics import scoring_blank
    from captum_fillblanks.attr.transforms import filled_image

    model = TinyCNN()
    fill = torch.randn(images.shape, generator=torch.Generator().manual_seed(1))
    # one mask per image: image i gets the first mask of seed 10 + i
    blank = torch.cat([scoring_blank(images[i : i + 1], seed=10 + i) for i in range(len(images))])
    assert not torch.equal(blank[0], blank[1])
    rebuilt = rebuild_rows(model, images, fill=fill, blank=blank, rows=("control", "paper-style"))
    assert torch.equal(rebuilt["control"][0], apply_masks(images, blank))
    assert torch.equal(rebuilt["paper-style"][0], filled_image(apply_masks(images, blank), fill, blank))
    # each image alone, with its own mask, is what it is in the batch
    for i in range(len(images)):
        alone = rebuild_rows(model, images[i : i + 1], fill=fill[i : i + 1], blank=blank[i : i + 1], rows=("control",))
        assert torch.equal(alone["control"][0][0], rebuilt["control"][0][i])
    # the default is one mask of seed for the whole shard
    shared = rebuild_rows(model, images, fill=fill, seed=3, rows=("control",))["control"][0]
    assert torch.equal(shared, apply_masks(images, scoring_blank(images, seed=3)))
    with pytest.raises(ValueError, match="blank must be a bool tensor shaped like images"):
        rebuild_rows(model, images, fill=fill, blank=blank.float(), rows=("control",))
    with pytest.raises(ValueError, match="blank must be a bool tensor shaped like images"):
        rebuild_rows(model, images, fill=fill, blank=blank[:1], rows=("control",))
