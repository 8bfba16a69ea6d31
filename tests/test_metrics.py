import math

import torch

from captum_fillblanks.metrics import ConsistencyCounts, classification_scores, consistency_counts

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
