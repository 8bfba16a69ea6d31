import math
import warnings

import pytest
import torch
import torch.nn.functional as F
from captum.attr import GradientAttribution, NoiseTunnel, Saliency
from conftest import MultiOutput, SoftmaxRegression, TinyCNN, assert_max_close
from torch import nn

from captum_fillblanks import MaskFill, random_patch_masks
from captum_fillblanks.attr.masks import MaskSequence, n_blank_units


def reference_fill(model, x, masks, target=None, selection="correct", step_size=1.0):
    """The estimator written as a plain loop: one example, one mask at a time."""
    fills = []
    for example in x:
        example = example[None]
        y = model(example).argmax(1) if target is None else torch.tensor([target])
        total = torch.zeros_like(example)
        count = torch.zeros_like(example)
        for m in masks:
            masked = (m * example).requires_grad_()
            logits = model(masked)
            if selection == "correct" and logits.argmax(1).item() != y.item():
                continue
            (grad,) = torch.autograd.grad(F.cross_entropy(logits, y), masked)
            total += (1 - m) * (-step_size * grad)
            count += (1 - m).expand_as(example)
        fills.append(total / count.clamp(min=1))
    return torch.cat(fills)


def test_is_a_captum_gradient_attribution():
    method = MaskFill(TinyCNN())
    assert isinstance(method, GradientAttribution)
    assert method.has_convergence_delta()
    assert hasattr(MaskFill.attribute, "__wrapped__")  # captum.log.log_usage, for NoiseTunnel


def test_single_mask_update_matches_closed_form(softmax_regression, images):
    mask = torch.ones(6, 6)
    mask[0:2, 2:4] = 0
    mask[4:6, 0:2] = 0
    target = [0, 2, 1]
    fill = MaskFill(softmax_regression).attribute(images, target=target, masks=mask, selection="all", step_size=0.5)
    W, c = softmax_regression.linear.weight.detach(), softmax_regression.linear.bias.detach()
    masked = (mask * images).flatten(1)
    residual = torch.softmax(masked @ W.T + c, dim=1) - F.one_hot(torch.tensor(target), 4)
    expected = (1 - mask) * (-0.5 * residual @ W).reshape(3, 1, 6, 6)
    assert_max_close(fill, expected)
    # the gradient is taken against the masked image: non-zero at the blanks
    assert torch.all(fill[:, :, mask == 0] != 0)
    assert torch.all(fill[:, :, mask == 1] == 0)


def test_estimator_matches_plain_loop_on_the_same_masks(tiny_cnn, images):
    masks = random_patch_masks(40, 6, 6, mask_ratio=0.25, generator=torch.Generator().manual_seed(0))
    method = MaskFill(tiny_cnn)
    fill = method.attribute(images, masks=masks, internal_batch_size=21)
    expected = reference_fill(tiny_cnn, images, masks)
    assert_max_close(fill, expected)
    assert method.counts.n_drawn == 40


def test_random_estimate_agrees_with_independent_masks_within_standard_error(tiny_cnn, images):
    method = MaskFill(tiny_cnn)
    fill, error = method.attribute(images, n_samples=3000, seed=0, return_convergence_delta=True)
    masks = random_patch_masks(3000, 6, 6, generator=torch.Generator().manual_seed(123))
    other, other_error = method.attribute(images, masks=masks, return_convergence_delta=True)
    assert torch.all(error > 0) and torch.all(torch.isfinite(error))
    bound = 5 * torch.sqrt(error**2 + other_error**2)
    assert torch.all((fill - other).abs().amax(dim=(1, 2, 3)) <= bound)
    assert not torch.allclose(fill, other)


def test_convergence_delta_is_the_largest_standard_error(tiny_cnn, images):
    masks = random_patch_masks(30, 6, 6, mask_ratio=0.5, generator=torch.Generator().manual_seed(1))
    _, delta = MaskFill(tiny_cnn).attribute(images, masks=masks, selection="all", return_convergence_delta=True)
    for e, example in enumerate(images):
        updates = []
        for m in masks:
            masked = (m * example[None]).requires_grad_()
            logits = tiny_cnn(masked)
            (grad,) = torch.autograd.grad(F.cross_entropy(logits, tiny_cnn(example[None]).argmax(1)), masked)
            updates.append(-grad[0, 0])
        updates = torch.stack(updates)
        blank = (masks == 0).float()
        n = blank.sum(0)
        mean = (blank * updates).sum(0) / n
        var = (blank * (updates - mean) ** 2).sum(0) / (n - 1)
        assert math.isclose(delta[e].item(), torch.sqrt(var / n).max().item(), rel_tol=1e-4)


def test_one_mask_has_infinite_standard_error(softmax_regression, images):
    _, delta = MaskFill(softmax_regression).attribute(
        images,
        masks=torch.ones(6, 6).index_fill_(0, torch.tensor([0]), 0),
        selection="all",
        return_convergence_delta=True,
    )
    assert torch.all(torch.isinf(delta))


class VisibleRegionModel(nn.Module):
    """Predicts class 1 only while the top-left 2x2 patch of a bright image is visible."""

    def forward(self, x):
        evidence = 10 * x[:, 0, 0:2, 0:2].sum(dim=(1, 2)) - 20
        return torch.stack([torch.zeros_like(evidence), evidence], dim=1)


def test_selection_keeps_exactly_the_draws_with_the_region_visible():
    x = torch.stack([torch.ones(1, 4, 4), torch.zeros(1, 4, 4)])  # predicted 1 and 0
    method = MaskFill(VisibleRegionModel().eval())
    method.attribute(x, n_samples=100, mask_ratio=0.25, patch_size=2, seed=3)
    counts = method.counts
    assert counts.n_kept.tolist() == [100, 100]
    # replay the call's mask sequence: 4 patches, one blank per draw
    blank = MaskSequence((4,), (1,), seed=3).take(0, counts.n_drawn)[0]
    first_kept = torch.nonzero(~blank[:, 0]).squeeze(1)[:100]
    assert len(first_kept) == 100
    patch_coverage = counts.coverage[0][0, 0, ::2, ::2].flatten()
    assert torch.equal(patch_coverage, blank[first_kept].sum(0).float())
    assert patch_coverage[0] == 0  # the region is never blank in a kept draw
    # example 1 is predicted 0 under every mask: it keeps exactly its first 100 draws
    assert torch.equal(counts.coverage[0][1, 0, ::2, ::2].flatten(), blank[:100].sum(0).float())


def test_batch_equals_one_by_one_for_any_internal_batch_size(tiny_cnn, images):
    method = MaskFill(tiny_cnn)
    reference = method.attribute(images, n_samples=100, seed=5)
    for size in (1, 7, 1000):
        assert_max_close(
            method.attribute(images, n_samples=100, seed=5, internal_batch_size=size),
            reference,
        )
    for e in range(len(images)):
        alone = method.attribute(images[e : e + 1], n_samples=100, seed=5, internal_batch_size=4)
        assert_max_close(alone, reference[e : e + 1])


def test_same_seed_same_result_and_generator_seed(tiny_cnn, images):
    method = MaskFill(tiny_cnn)
    a = method.attribute(images, n_samples=50, seed=9)
    assert torch.equal(a, method.attribute(images, n_samples=50, seed=9))
    assert not torch.equal(a, method.attribute(images, n_samples=50, seed=10))
    g1, g2 = torch.Generator().manual_seed(4), torch.Generator().manual_seed(4)
    assert torch.equal(method.attribute(images, n_samples=50, seed=g1), method.attribute(images, n_samples=50, seed=g2))


@pytest.mark.parametrize(
    "target, per_example",
    [
        (1, [1, 1, 1]),
        (torch.tensor(2), [2, 2, 2]),
        (torch.tensor([0, 2, 1]), [0, 2, 1]),
        ([2, 0, 1], [2, 0, 1]),
    ],
)
def test_every_class_target_form(tiny_cnn, images, target, per_example):
    method = MaskFill(tiny_cnn)
    batched = method.attribute(images, target=target, n_samples=60, selection="all", seed=1)
    for e, t in enumerate(per_example):
        alone = method.attribute(images[e : e + 1], target=t, n_samples=60, selection="all", seed=1)
        assert_max_close(batched[e : e + 1], alone)


@pytest.mark.parametrize("target", [(0, 1, 1), [(0, 1, 0), (1, 0, 1)]])
def test_target_loss_on_multidimensional_output_matches_saliency(target):
    model = MultiOutput().eval()
    x = torch.tensor([[1.0, 2.0, -1.0], [0.5, 3.0, 2.0]])
    mask = torch.tensor([1.0, 0.0, 0.0])
    fill = MaskFill(model).attribute(
        x,
        target=target,
        additional_forward_args=(None, True),
        masks=mask,
        loss="target",
        selection="all",
    )
    masked = (x * mask).requires_grad_()
    expected = Saliency(model).attribute(masked, target=target, abs=False, additional_forward_args=(None, True))
    assert_max_close(fill, (1 - mask) * expected)


def test_additional_forward_args_are_expanded_per_example(tiny_cnn, images):
    scale = torch.tensor([1.0, -2.0, 0.5])
    batched = MaskFill(tiny_cnn).attribute(
        images, additional_forward_args=(scale,), n_samples=80, seed=2, internal_batch_size=10
    )
    for e in range(3):

        def fixed(x, s=scale[e]):
            return tiny_cnn(x, s.expand(x.shape[0]))

        alone = MaskFill(fixed).attribute(images[e : e + 1], n_samples=80, seed=2)
        assert_max_close(batched[e : e + 1], alone)


class TwoInputLinear(nn.Module):
    def __init__(self):
        super().__init__()
        generator = torch.Generator().manual_seed(0)
        self.image_weight = nn.Parameter(torch.randn(3, 16, generator=generator))
        self.table_weight = nn.Parameter(torch.randn(3, 5, generator=generator))

    def forward(self, image, table):
        return image.flatten(1) @ self.image_weight.T + table @ self.table_weight.T


def test_tuple_inputs_closed_form_and_own_masks():
    model = TwoInputLinear().eval()
    image, table = torch.rand(2, 1, 4, 4), torch.rand(2, 5)
    image_mask = torch.ones(4, 4)
    image_mask[2:, 2:] = 0
    table_mask = torch.tensor([1.0, 0.0, 1.0, 0.0, 1.0])
    fill_image, fill_table = MaskFill(model).attribute(
        (image, table), target=[0, 2], masks=(image_mask, table_mask), selection="all"
    )
    logits = model(image * image_mask, table * table_mask)
    residual = torch.softmax(logits, 1) - F.one_hot(torch.tensor([0, 2]), 3)
    expected_image = (1 - image_mask) * (-residual @ model.image_weight).reshape(2, 1, 4, 4)
    expected_table = (1 - table_mask) * (-residual @ model.table_weight)
    assert_max_close(fill_image, expected_image.detach())
    assert_max_close(fill_table, expected_table.detach())


def test_tuple_inputs_draw_one_mask_per_tensor():
    model = TwoInputLinear().eval()
    image, table = torch.rand(2, 1, 4, 4), torch.rand(2, 5)
    method = MaskFill(model)
    method.attribute((image, table), n_samples=40, selection="all", seed=0)
    image_coverage, table_coverage = method.counts.coverage
    # per draw: 1 of 4 image patches (4 pixels) and round(0.25 * 5) = 1 of 5 table entries
    assert torch.all(image_coverage.sum(dim=(1, 2, 3)) == 40 * 4)
    assert torch.all(table_coverage.sum(dim=1) == 40 * 1)


class SumModel(nn.Module):
    """One output per example: ``f(x) = sum(w * x)``, so ``-grad(-f) = w``."""

    def __init__(self, shape):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(shape, generator=torch.Generator().manual_seed(0)))

    def forward(self, x):
        return (x * self.weight).flatten(1).sum(1)


@pytest.mark.parametrize("shape", [(7,), (5, 3)])
def test_non_image_inputs_are_masked_by_element(shape):
    model = SumModel(shape).eval()
    x = torch.rand(2, *shape)
    method = MaskFill(model)
    fill = method.attribute(x, loss="target", selection="all", n_samples=200, seed=0, mask_ratio=0.3)
    per_draw = n_blank_units(math.prod(shape), 0.3)  # 0.3 * 15 = 4.5 rounds up to 5
    assert torch.all(method.counts.coverage[0].flatten(1).sum(1) == 200 * per_draw)
    assert_max_close(fill, model.weight.detach().expand_as(x))


def test_feature_mask_groups_are_units(tiny_cnn, images):
    groups = torch.zeros(1, 1, 6, 6, dtype=torch.long)
    groups[..., 3:] = 1  # two units: left and right halves
    method = MaskFill(tiny_cnn)
    method.attribute(images, feature_mask=groups, n_samples=30, selection="all", seed=0, mask_ratio=0.5)
    coverage = method.counts.coverage[0]
    # one half is blank per draw, as a whole
    assert torch.all(coverage.sum(dim=(1, 2, 3)) == 30 * 18)
    assert torch.all(coverage[..., :3] == coverage[..., :1]) and torch.all(coverage[..., 3:] == coverage[..., 3:4])


def test_baselines_fill_the_blanks(softmax_regression, images):
    mask = torch.ones(6, 6)
    mask[:2] = 0
    baseline = torch.full((1, 6, 6), 0.3)
    for given in (0.3, baseline, baseline.expand(3, 1, 6, 6)):
        fill = MaskFill(softmax_regression).attribute(images, baselines=given, masks=mask, selection="all")
        W, c = softmax_regression.linear.weight.detach(), softmax_regression.linear.bias.detach()
        masked = (mask * images + (1 - mask) * 0.3).flatten(1)
        logits = masked @ W.T + c
        residual = torch.softmax(logits, 1) - F.one_hot(logits.argmax(1) * 0 + softmax_regression(images).argmax(1), 4)
        assert_max_close(fill, (1 - mask) * (-residual @ W).reshape(3, 1, 6, 6))


def test_works_under_no_grad_and_in_noise_tunnel(tiny_cnn, images):
    method = MaskFill(tiny_cnn)
    reference = method.attribute(images, n_samples=40, seed=0)
    with torch.no_grad():
        assert torch.equal(method.attribute(images, n_samples=40, seed=0), reference)
    tunnel = NoiseTunnel(method)
    smoothed, delta = tunnel.attribute(
        images,
        nt_type="smoothgrad",
        nt_samples=3,
        stdevs=0.0,
        n_samples=40,
        seed=0,
        return_convergence_delta=True,
    )
    assert_max_close(smoothed, reference)
    assert delta.shape == (3 * 3,)


def test_never_correct_warns_and_returns_zeros(tiny_cnn, images):
    def always_wrong(x):
        logits = torch.zeros(x.shape[0], 2)
        logits[:, 1] = 1 + x.sum() * 0
        return logits

    method = MaskFill(always_wrong)
    with pytest.warns(UserWarning, match="no draw was kept"):
        fill = method.attribute(images, target=0, n_samples=5, max_draws=20, seed=0)
    assert torch.equal(fill, torch.zeros_like(images))
    assert method.counts.n_drawn == 20  # max_draws is a hard limit, even with nothing kept


def test_few_kept_draws_warn_with_counts():
    x = torch.ones(1, 1, 4, 4)
    with pytest.warns(UserWarning, match="were kept"):
        MaskFill(VisibleRegionModel().eval()).attribute(x, n_samples=100, max_draws=100, seed=0)


def test_training_mode_warns(images):
    model = TinyCNN().train()
    with pytest.warns(UserWarning, match="training mode"):
        MaskFill(model).attribute(images, n_samples=4, seed=0)


@pytest.mark.parametrize("select_first", [True, False])
def test_select_first_gives_the_same_fill(tiny_cnn, images, select_first):
    method = MaskFill(tiny_cnn)
    reference = method.attribute(images, n_samples=60, seed=3, mask_ratio=0.5, select_first=False)
    kept = method.counts.n_kept
    fill = method.attribute(
        images, n_samples=60, seed=3, mask_ratio=0.5, select_first=select_first, internal_batch_size=20
    )
    assert_max_close(fill, reference)
    assert torch.equal(method.counts.n_kept, kept)
    assert method.counts.select_first == select_first


def test_auto_selects_first_only_when_few_draws_are_kept():
    x = torch.ones(1, 1, 4, 4)
    method = MaskFill(VisibleRegionModel().eval())
    method.attribute(x, n_samples=20, mask_ratio=0.25, seed=0)  # the region survives 3 in 4 draws
    assert not method.counts.select_first
    method.attribute(x, n_samples=20, mask_ratio=0.75, seed=0)  # 1 in 4 draws
    assert method.counts.select_first
    assert method.counts.n_kept.item() == 20


def test_bfloat16_autocast_agrees_with_float32(tiny_cnn, images):
    method = MaskFill(tiny_cnn)
    full = method.attribute(images, n_samples=100, seed=0, selection="all")
    half = method.attribute(images, n_samples=100, seed=0, selection="all", amp_dtype=torch.bfloat16)
    assert half.dtype == images.dtype
    cosine = F.cosine_similarity(full.flatten(1), half.flatten(1))
    assert torch.all(cosine > 0.99) and not torch.equal(full, half)
    with pytest.raises(TypeError, match="amp_dtype"):
        method.attribute(images, n_samples=4, amp_dtype="bf16")


@pytest.mark.parametrize("select_first", [False, True])
def test_finished_examples_cost_no_more_passes(select_first):
    sizes = []

    class Counting(VisibleRegionModel):
        def forward(self, x):
            sizes.append(x.shape[0])
            return super().forward(x)

    x = torch.stack([torch.zeros(1, 4, 4), torch.ones(1, 4, 4)])  # kept always / 3 in 4
    method = MaskFill(Counting().eval())
    fill = method.attribute(x, n_samples=100, seed=0, internal_batch_size=20, select_first=select_first)
    assert method.counts.n_kept.tolist() == [100, 100]
    # once example 0 has its 100 draws (after 10 chunks of 10 masks), only example 1 is
    # computed, in chunks of up to 20 of its own copies
    drawn = method.counts.n_drawn
    passes = sizes[1:]  # after the forward on the unmasked inputs
    assert all(size <= 20 for size in passes)
    if select_first:
        selection_passes = passes[0::2]
        assert sum(selection_passes) == 2 * 100 + (drawn - 100)
        assert sum(passes[1::2]) == 200  # back-propagated: the kept copies only
    else:
        assert sum(passes) == 2 * 100 + (drawn - 100)
    alone = MaskFill(VisibleRegionModel().eval()).attribute(x[1:], n_samples=100, seed=0, internal_batch_size=10)
    assert_max_close(fill[1:], alone)


class NaNGradientWhenWrong(torch.nn.Module):
    """Softmax regression whose gradient is NaN (its outputs finite) on every row it
    classifies as class 1: the copies that selection for target 0 rejects."""

    def __init__(self):
        super().__init__()
        self.inner = SoftmaxRegression(n_classes=2, seed=3)

    def forward(self, x):
        logits = self.inner(x)
        rows = (logits.argmax(1) == 1).nonzero().squeeze(1)
        if rows.numel() == 0:
            return logits
        # sqrt at 0: a finite output whose backward pass is 0 * inf = NaN
        poisoned = torch.sqrt(torch.relu(-1 + 0 * x[rows].flatten(1).sum(1)))
        return logits.index_put((rows, torch.zeros_like(rows)), logits[rows, 0] + poisoned)


def test_rejected_draws_never_reach_the_sums_in_either_selection_mode():
    images = torch.rand(4, 1, 6, 6, generator=torch.Generator().manual_seed(8))
    model = NaNGradientWhenWrong().eval()
    method = MaskFill(model)
    fills, kept = {}, {}
    for select_first in (False, True):
        fills[select_first] = method.attribute(
            images, target=0, n_samples=30, seed=1, select_first=select_first, max_draws=3000
        )
        kept[select_first] = method.counts.n_kept.tolist()
        assert method.counts.n_nonfinite.tolist() == [0] * 4  # no kept draw was NaN
    # many copies were rejected (their gradient is NaN): they must not touch the fill
    assert min(kept[False]) > 0 and method.counts.n_drawn > 2 * max(kept[False])
    assert kept[False] == kept[True]
    assert torch.isfinite(fills[False]).all()
    assert_max_close(fills[False], fills[True])


def test_a_non_finite_pixel_is_reported_and_leaves_the_other_examples_alone(tiny_cnn, images):
    broken = images.clone()
    broken[1, 0, 2, 3] = float("nan")
    method = MaskFill(tiny_cnn)
    with pytest.warns(UserWarning, match=r"non-finite updates \(NaN or inf\) for example\(s\) \[1\]"):
        fill = method.attribute(broken, n_samples=20, seed=2, selection="all")
    assert method.counts.n_nonfinite[1] > 0 and method.counts.n_nonfinite[[0, 2]].tolist() == [0, 0]
    assert torch.isfinite(fill).all()  # the NaN values were left out, not added
    alone = MaskFill(tiny_cnn).attribute(images[[0, 2]], n_samples=20, seed=2, selection="all")
    assert_max_close(fill[[0, 2]], alone)


def test_patches_far_finer_than_the_papers_warn_with_a_size_for_the_image():
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 224 * 224, 2)).eval()
    x = torch.rand(1, 3, 224, 224)
    with pytest.warns(UserWarning, match=r"patch_size=2 on 224 x 224 inputs makes 112 x 112 patches .* patch_size=16"):
        MaskFill(model).attribute(x, target=0, n_samples=1, seed=0, selection="all")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # 1/14 of the side, and the paper's finest (1 x 1 on 28 x 28): silent
        MaskFill(model).attribute(x, target=0, n_samples=1, seed=0, selection="all", patch_size=16)
        small = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(28 * 28, 2)).eval()
        MaskFill(small).attribute(
            torch.rand(1, 1, 28, 28), target=0, n_samples=1, seed=0, patch_size=1, selection="all"
        )
