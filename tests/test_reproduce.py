import torch

from captum_fillblanks import MaskFill
from captum_fillblanks.metrics import BINARIZED_ROWS, consistency_counts
from captum_fillblanks.reproduce import choose_thresholds, class_prototypes

from conftest import TinyCNN


def test_class_prototypes_average_the_fills_of_each_class(images):
    model = TinyCNN().eval()
    labels = torch.tensor([2, 0, 2])
    batches = [(images[:2], labels[:2]), (images[2:], labels[2:])]
    means, counts = class_prototypes(model, batches, 3, n_samples=10, seed=0, selection="all")
    fills = MaskFill(model).attribute(images, target=labels, n_samples=10, seed=0, selection="all")
    assert counts.tolist() == [1, 0, 2]
    assert torch.allclose(means[2].float(), (fills[0] + fills[2]) / 2, atol=1e-6)
    assert torch.allclose(means[0].float(), fills[1], atol=1e-6)
    assert torch.equal(means[1], torch.zeros_like(means[1]))


class Brightness(torch.nn.Module):
    """Class 1 when more than a quarter of the pixels are ink."""

    def forward(self, x):
        ink = x.flatten(1).mean(1)
        return torch.stack([0.25 - ink, ink - 0.25], 1)


def test_choose_thresholds_picks_the_best_per_row_and_breaks_ties_towards_one_half():
    images = torch.ones(2, 1, 4, 4)  # class 1 for the model
    fills = torch.linspace(0, 1, 16).reshape(1, 1, 4, 4).repeat(2, 1, 1, 1)
    # T(fill) at tau = 0.1 keeps 14 of 16 pixels as ink, at 0.3 eleven, at 0.8 three
    chosen, accuracy = choose_thresholds(Brightness().eval(), images, [0.1, 0.3, 0.8], n_classes=2, fill=fills, n_steps=2)
    assert accuracy["strict"] == {0.1: 100.0, 0.3: 100.0, 0.8: 0.0}
    assert chosen["strict"] == 0.3  # 0.1 and 0.3 tie: the one closer to 0.5
    assert set(chosen) == {"paper-style", "strict", "progressive"}  # no control fill, no control row


def test_choose_thresholds_agrees_with_scoring_each_candidate(images):
    model, control = TinyCNN().eval(), TinyCNN(seed=1).eval()
    fill = MaskFill(model).attribute(images, n_samples=20, seed=0)
    reference = model(images).argmax(1)
    control_fill = MaskFill(control).attribute(images, target=reference, selection="all", n_samples=20, seed=0)
    candidates = [0.2, 0.5, 0.7]
    chosen, accuracy = choose_thresholds(
        model, images, candidates, n_classes=3, fill=fill, control_fill=control_fill, seed=3, n_steps=2
    )
    for tau in candidates:
        scores = consistency_counts(
            model, images, n_classes=3, threshold=tau, fill=fill, control_fill=control_fill, seed=3, n_steps=2
        ).scores()
        for row in BINARIZED_ROWS:
            assert accuracy[row][tau] == scores[row]["accuracy"]
    for row, tau in chosen.items():
        assert accuracy[row][tau] == max(accuracy[row].values())
