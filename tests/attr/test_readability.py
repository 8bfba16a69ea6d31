"""The readability checks on cases whose answer is known by hand."""

import itertools

import pytest
import torch

from captum_fillblanks.attr.readability import (
    ink,
    inpainting_agreement,
    intersection_over_union,
    judge_accuracy,
    roc_auc,
    wrong_target_control,
    wrong_targets,
)
from captum_fillblanks.attr.transforms import TransformSetting
from captum_fillblanks.paper.data import load_samples


def brute_force_auc(scores, positives):
    pos = [s for s, p in zip(scores, positives) if p]
    neg = [s for s, p in zip(scores, positives) if not p]
    wins = sum(1.0 if a > b else 0.5 if a == b else 0.0 for a, b in itertools.product(pos, neg))
    return wins / (len(pos) * len(neg))


def test_auc_is_one_for_a_perfect_score_zero_reversed_and_one_half_for_ties():
    positives = torch.tensor([[True, True, False, False]] * 3)
    scores = torch.tensor([[2.0, 3.0, 0.0, 1.0], [0.0, 1.0, 2.0, 3.0], [5.0, 5.0, 5.0, 5.0]])
    assert roc_auc(scores, positives).tolist() == [1.0, 0.0, 0.5]


def test_auc_equals_counting_every_pair_with_ties():
    generator = torch.Generator().manual_seed(0)
    scores = torch.randint(0, 5, (6, 30), generator=generator).double()  # many ties
    positives = torch.rand(6, 30, generator=generator) < 0.4
    expected = [brute_force_auc(s.tolist(), p.tolist()) for s, p in zip(scores, positives)]
    assert roc_auc(scores, positives).tolist() == pytest.approx(expected, abs=1e-12)


def test_auc_is_nan_without_positives_or_negatives():
    auc = roc_auc(torch.rand(2, 4), torch.tensor([[False] * 4, [True] * 4]))
    assert auc.isnan().all()


def test_iou_counts_overlap_over_union_and_is_nan_for_two_empty_sets():
    predicted = torch.tensor([[1, 1, 0, 0], [0, 0, 0, 0], [1, 0, 0, 0]]).bool()
    truth = torch.tensor([[0, 1, 1, 0], [0, 0, 0, 0], [1, 0, 0, 0]]).bool()
    iou = intersection_over_union(predicted, truth)
    assert iou[0] == pytest.approx(1 / 3) and iou[1].isnan() and iou[2] == 1.0


def test_ink_maps_the_input_range_and_averages_channels():
    images = torch.tensor([0.0, 0.4, 0.6, 1.0]).reshape(1, 1, 2, 2)
    assert ink(images).flatten().tolist() == [False, False, True, True]
    normalized = (images - 0.5) / 0.25  # input range (-2, 2)
    assert torch.equal(ink(normalized, input_range=(-2.0, 2.0)), ink(images))
    rgb = torch.stack([images[:, 0], torch.zeros(1, 2, 2), torch.ones(1, 2, 2)], 1)
    assert ink(rgb, threshold=0.5).flatten().tolist() == [False, False, True, True]  # means 1/3 .. 2/3


def test_a_fill_that_draws_the_image_agrees_perfectly_and_its_negative_not_at_all():
    images, _ = load_samples("mnist")
    images = images[:4]
    assert (images.flatten(1).amax(1) == 1).all()  # so T at tau 0.5 draws exactly the ink
    half = TransformSetting(threshold=0.5, scale_percentile=100.0)
    perfect = inpainting_agreement(images.clone(), images, transform=half)
    assert perfect.auc.tolist() == [1.0] * 4 and perfect.iou.tolist() == [1.0] * 4
    reversed_ = inpainting_agreement(-images, images, transform=half)
    assert reversed_.auc.tolist() == [0.0] * 4
    assert reversed_.iou.isnan().logical_not().all() and (reversed_.iou == 0).all()  # nothing drawn


def test_the_prototypes_iou_uses_the_transform_given():
    images = torch.zeros(1, 1, 4, 4)
    images[..., :2, :] = 1.0  # the top half is ink
    fill = torch.linspace(1.0, 0.0, 16).reshape(1, 1, 4, 4)  # strongest at the top
    loose = inpainting_agreement(fill, images, transform=TransformSetting(threshold=0.05, scale_percentile=100.0))
    tight = inpainting_agreement(fill, images, transform=TransformSetting(threshold=0.5, scale_percentile=100.0))
    # tau 0.05: 15 of 16 pixels drawn, IoU 8/15; tau 0.5: the 8 largest, the top half exactly
    assert loose.iou.item() == pytest.approx(8 / 15) and tight.iou.item() == 1.0
    assert loose.auc.item() == tight.auc.item() == 1.0


def test_judge_accuracy_is_the_percentage_it_labels_right():
    prototypes = torch.eye(4)
    judge = torch.nn.Identity()
    assert judge_accuracy(judge, prototypes, torch.tensor([0, 1, 2, 3])) == 100.0
    assert judge_accuracy(judge, prototypes, torch.tensor([0, 1, 3, 2])) == 50.0
    with pytest.raises(ValueError, match="one per prototype"):
        judge_accuracy(judge, prototypes, torch.tensor([0, 1]))


def test_wrong_targets_are_never_the_label_and_are_seeded():
    labels = torch.arange(10).repeat(50)
    targets = wrong_targets(labels, 10, seed=3)
    assert not bool((targets == labels).any())
    assert torch.equal(targets, wrong_targets(labels, 10, seed=3))
    assert set((targets - labels).remainder(10).tolist()) == set(range(1, 10))  # every other class
    with pytest.raises(ValueError, match="labels must lie in"):
        wrong_targets(torch.tensor([10]), 10)


class MeanThreshold(torch.nn.Module):
    """Two classes: 0 when the image's mean is above 0.5, else 1. The fill toward class
    1 lowers every blank, so ``T(fill)`` writes ink 0 into the blanks."""

    def forward(self, x):
        s = 40.0 * (x.flatten(1).mean(1) - 0.5)
        return torch.stack([s, -s], 1)


@pytest.mark.parametrize("value, expected", [(0.55, 100.0), (0.9, 0.0)])
def test_wrong_target_control_scores_the_push_toward_the_wrong_class(value, expected):
    # uniform images of class 0, blanks holding the image's own value (M(x) = x): writing
    # 0 into a quarter of the pixels takes the mean to 0.41 (< 0.5, the wrong class 1)
    # for 0.55, and to 0.675 (still class 0) for 0.9
    images = torch.full((6, 1, 8, 8), value)
    rate, targets = wrong_target_control(MeanThreshold(), images, n_classes=2, n_samples=10, seed=0, baselines=value)
    assert targets.tolist() == [1] * 6
    assert rate == expected


def test_the_summary_is_the_median_of_each_check_and_the_rates_of_the_others():
    from captum_fillblanks import MaskFill, prototype
    from captum_fillblanks.attr.readability import readability_summary
    from captum_fillblanks.paper.models import lenet5, simple_cnn

    images = load_samples("mnist")[0][::10][:5]
    model, judge = simple_cnn(weights="DEFAULT"), lenet5(weights="DEFAULT")
    fill = MaskFill(model).attribute(images, n_samples=64, seed=0)
    setting = TransformSetting(threshold=0.3)
    summary = readability_summary(
        model, judge, images, fill, n_classes=10, transform=setting, wrong_target_samples=16, seed=2
    )
    agreement = inpainting_agreement(fill, images, transform=setting)
    assert summary.auc == float(agreement.auc.median()) and summary.iou == float(agreement.iou.median())
    labels = model(images).argmax(1)
    assert summary.judge == judge_accuracy(judge, prototype(fill, transform=setting), labels)
    wrong, _ = wrong_target_control(model, images, n_classes=10, n_samples=16, transform=setting, seed=2)
    assert summary.wrong_target == wrong
    skipped = readability_summary(model, judge, images, fill, n_classes=10, wrong_target_samples=None)
    assert skipped.wrong_target is None


@pytest.mark.parametrize(
    "judge, error, message",
    [
        (lambda x: x[:1], ValueError, "one row per prototype \\(4\\).*got shape \\(1, 4\\)"),  # would broadcast
        (lambda x: x[:, :1], ValueError, "at least two classes, got shape \\(4, 1\\)"),  # one logit
        (lambda x: x.argmax(1), ValueError, "got shape \\(4,\\)"),
        (lambda x: (x,), TypeError, "must return a Tensor of class scores, got tuple"),
        (lambda x: x[:, :3], ValueError, "labels must be classes of the judge, 0 to 2"),
    ],
    ids=["one-row", "one-logit", "labels", "tuple", "fewer-classes"],
)
def test_a_judge_whose_output_is_not_one_score_row_per_prototype_is_refused(judge, error, message):
    with pytest.raises(error, match=message):
        judge_accuracy(judge, torch.eye(4), torch.tensor([0, 1, 2, 3]))


def test_auc_is_nan_for_an_example_with_a_nan_score_and_the_others_keep_theirs():
    scores = torch.tensor([[0.1, 0.9, float("nan")], [float("nan")] * 3, [0.1, 0.9, 0.5]])
    positives = torch.tensor([[False, True, False]] * 3)
    auc = roc_auc(scores, positives)
    assert auc[:2].isnan().all() and auc[2] == 1.0


def test_ink_refuses_a_range_whose_ink_is_its_background():
    with pytest.raises(ValueError, match="input_range must give ink a value other than the background"):
        ink(torch.rand(1, 1, 4, 4), input_range=(0.0, 0.0))


def test_the_iou_is_nan_for_an_image_with_no_ink_or_all_ink_as_documented():
    images = torch.stack([torch.zeros(1, 4, 4), torch.ones(1, 4, 4), torch.eye(4)[None]])
    fill = torch.randn(3, 1, 4, 4, generator=torch.Generator().manual_seed(0))
    agreement = inpainting_agreement(fill, images)
    assert agreement.iou[:2].isnan().all() and not agreement.iou[2].isnan()
    assert agreement.auc[:2].isnan().all()


def test_the_wrong_target_control_draws_among_the_models_own_classes():
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 10))
    with pytest.raises(ValueError, match="n_classes=30 but the model gives 10 class scores"):
        wrong_target_control(model, torch.rand(2, 1, 4, 4), n_classes=30, n_samples=2)


def test_the_summary_names_its_own_argument_for_the_wrong_target_masks():
    from captum_fillblanks.attr.readability import readability_summary

    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 10))
    images = torch.rand(2, 1, 4, 4)
    with pytest.raises(ValueError, match="wrong_target_samples must be an int >= 1 or None, got 0"):
        readability_summary(model, model, images, torch.rand(2, 1, 4, 4), n_classes=10, wrong_target_samples=0)
