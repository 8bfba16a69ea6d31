import math

import torch

import pytest

from captum_fillblanks import MaskFill
from captum_fillblanks.metrics import ConsistencyCounts, classification_scores, consistency_counts, row_thresholds

from conftest import TinyCNN


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
    assert set(counts.confusion) == {"control", "paper-style", "strict", "progressive", "random-model control"}
    assert all(int(m.sum()) == 3 for m in counts.confusion.values())
    # the reference labels are the model's predictions on the images themselves
    reference = model(images).argmax(1)
    assert torch.equal(counts.confusion["strict"].sum(1), torch.bincount(reference, minlength=3))


def test_row_thresholds_one_for_all_or_one_per_row():
    assert set(row_thresholds(0.3).values()) == {0.3}
    tau = row_thresholds({"strict": 0.2, "progressive": 0.7})
    assert tau == {"paper-style": 0.5, "strict": 0.2, "progressive": 0.7, "random-model control": 0.2}
    assert row_thresholds({"strict": 0.2, "random-model control": 0.6})["random-model control"] == 0.6
    with pytest.raises(ValueError, match="unknown rows \\['control'\\]"):
        row_thresholds({"control": 0.5})
    with pytest.raises(ValueError, match="'strict' must be a number in \\[0, 1\\)"):
        row_thresholds({"strict": 1.5})
    with pytest.raises(TypeError, match="threshold must be a float or a mapping"):
        row_thresholds("0.5")


def test_per_row_thresholds_score_each_row_as_its_own_threshold_would(images):
    model, control = TinyCNN().eval(), TinyCNN(seed=1).eval()
    fill = MaskFill(model).attribute(images, n_samples=20, seed=0)
    kwargs = dict(n_classes=3, n_steps=2, fill=fill, control_model=control, control_samples=10, seed=2)
    per_row = consistency_counts(model, images, threshold={"paper-style": 0.2, "strict": 0.4, "progressive": 0.7}, **kwargs)
    for row, tau in [("paper-style", 0.2), ("strict", 0.4), ("progressive", 0.7), ("random-model control", 0.4)]:
        alone = consistency_counts(model, images, threshold=tau, **kwargs)
        assert torch.equal(per_row.confusion[row], alone.confusion[row]), row
    assert torch.equal(per_row.confusion["control"], alone.confusion["control"])


def test_a_given_control_fill_is_the_one_the_control_model_would_compute(images):
    model, control = TinyCNN().eval(), TinyCNN(seed=1).eval()
    fill = MaskFill(model).attribute(images, n_samples=20, seed=0)
    computed = consistency_counts(model, images, n_classes=3, n_steps=2, fill=fill, control_model=control,
                                  control_samples=10, seed=2)
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
