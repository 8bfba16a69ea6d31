import pytest
import torch
from conftest import Brightness, TinyCNN

from captum_fillblanks import MaskFill
from captum_fillblanks.attr.metrics import TRANSFORMED_ROWS, consistency_counts
from captum_fillblanks.attr.transforms import TransformSetting
from captum_fillblanks.paper.reproduce import CANDIDATE_SETTINGS, best_settings, choose_settings, class_prototypes


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


def test_choose_settings_picks_the_best_per_row_and_breaks_ties_by_order():
    images = torch.ones(2, 1, 4, 4)  # class 1 for the model
    fills = torch.linspace(0, 1, 16).reshape(1, 1, 4, 4).repeat(2, 1, 1, 1)
    # T(fill) at tau = 0.1 keeps 14 of 16 pixels as ink, at 0.3 eleven, at 0.8 three
    # (scaled by the largest value)
    late, middle, early = (
        TransformSetting(threshold=0.8, scale_percentile=100.0),
        TransformSetting(threshold=0.3, scale_percentile=100.0),
        TransformSetting(threshold=0.1, scale_percentile=100.0),
    )
    chosen, accuracy = choose_settings(
        Brightness().eval(), images, [late, middle, early], n_classes=2, fill=fills, n_steps=2, criterion="accuracy"
    )
    assert accuracy["strict"] == {late: 0.0, middle: 100.0, early: 100.0}
    assert chosen["strict"] == middle  # 0.3 and 0.1 tie: the one that comes first
    assert best_settings(accuracy, [early, late])["strict"] == early  # a subset of the candidates
    assert set(chosen) == set(TRANSFORMED_ROWS) - {"random-model control"}  # no control fill, no control row


def test_choose_settings_agrees_with_scoring_each_candidate_on_validation_images_only(images):
    model, control = TinyCNN().eval(), TinyCNN(seed=1).eval()
    fill = MaskFill(model).attribute(images, n_samples=20, seed=0)
    reference = model(images).argmax(1)
    control_fill = MaskFill(control).attribute(images, target=reference, selection="all", n_samples=20, seed=0)
    candidates = [
        TransformSetting("max_abs", 0.05),
        TransformSetting("min_max", 0.5),
        TransformSetting(binarized=False),
    ]
    chosen, macro_f1 = choose_settings(
        model, images, candidates, n_classes=3, fill=fill, control_fill=control_fill, seed=3, n_steps=2
    )
    for setting in candidates:
        scores = consistency_counts(
            model, images, n_classes=3, transform=setting, fill=fill, control_fill=control_fill, seed=3, n_steps=2
        ).scores()
        for row in TRANSFORMED_ROWS:
            assert macro_f1[row][setting] == scores[row]["macro_f1"]
    for row, setting in chosen.items():
        assert macro_f1[row][setting] == max(macro_f1[row].values())
    with pytest.raises(ValueError, match="criterion must be one of"):
        choose_settings(model, images, candidates, n_classes=3, fill=fill, criterion="f1")


def test_macro_f1_does_not_choose_a_fill_that_makes_every_image_one_class():
    # two classes, one image each; the strict prototype at tau 0.8 is a dark canvas
    # (class 0 for both: accuracy 50, macro F1 1/3), at tau 0.1 each image keeps its class
    images = torch.stack([torch.ones(1, 4, 4), torch.zeros(1, 4, 4)])
    fills = torch.stack([torch.linspace(0, 1, 16).reshape(1, 4, 4), -torch.ones(1, 4, 4)])
    dark = TransformSetting(threshold=0.8, scale_percentile=100.0)
    right = TransformSetting(threshold=0.1, scale_percentile=100.0)
    chosen, macro_f1 = choose_settings(Brightness().eval(), images, [dark, right], n_classes=2, fill=fills, n_steps=2)
    assert macro_f1["strict"] == {dark: pytest.approx(100 / 3), right: 100.0}
    assert chosen["strict"] == right


def test_candidate_settings_try_both_normalizations_binarized_and_not():
    assert {c.normalization for c in CANDIDATE_SETTINGS} == {"max_abs", "min_max"}
    assert CANDIDATE_SETTINGS[0] == TransformSetting("max_abs", 0.05, scale_percentile=100.0)
    # every candidate scales by the largest value, whatever the default, so the reports' choices stay theirs
    assert {c.scale_percentile for c in CANDIDATE_SETTINGS} == {100.0}
    assert sum(not c.binarized for c in CANDIDATE_SETTINGS) == 2
    assert len(set(CANDIDATE_SETTINGS)) == len(CANDIDATE_SETTINGS)
