import math

import pytest
import torch

from captum_fillblanks.attr.masks import (
    MaskSequence,
    n_blank_units,
    partition_units,
    patch_grid,
    random_partition_masks,
    random_patch_masks,
    resolve_seed,
    sample_unit_masks,
)


def _patch_values(masks, patch_size):
    """Per mask and patch, the set of values inside the patch."""
    n, h, w = masks.shape
    out = []
    for r in range(0, h, patch_size):
        for c in range(0, w, patch_size):
            out.append(masks[:, r : r + patch_size, c : c + patch_size].reshape(n, -1))
    return out


def test_blank_count_rounds_half_up_and_is_at_least_one():
    assert n_blank_units(196, 0.25) == 49
    assert n_blank_units(10, 0.25) == 3  # 2.5 rounds up
    assert n_blank_units(3, 0.01) == 1
    assert n_blank_units(4, 0.9) == 4


def test_each_mask_blanks_exact_number_of_whole_patches():
    masks = random_patch_masks(50, 28, 28, mask_ratio=0.25, patch_size=2, generator=torch.Generator().manual_seed(0))
    assert masks.shape == (50, 28, 28)
    patches = _patch_values(masks, 2)
    assert len(patches) == 196
    for patch in patches:  # patch alignment: every patch is entirely kept or entirely blank
        assert torch.all((patch == 0).all(1) | (patch == 1).all(1))
    blank_patches = torch.stack([(p == 0).all(1) for p in patches], 1).sum(1)
    assert torch.all(blank_patches == 49)


def test_partial_edge_patches():
    grid = patch_grid(5, 7, 2)
    assert grid.shape == (5, 7)
    assert int(grid.max()) + 1 == 3 * 4
    # last row of patches is one pixel high, last column one pixel wide
    assert (grid == grid[4, 6]).sum() == 1
    assert (grid == grid[4, 0]).sum() == 2
    masks = random_patch_masks(200, 5, 7, mask_ratio=0.5, patch_size=2, generator=torch.Generator().manual_seed(1))
    # the one-pixel-high edge patch (4, 0)-(4, 1) is blanked as a unit
    assert torch.equal(masks[:, 4, 0], masks[:, 4, 1])
    # partial patches count as whole units: 6 of the 12 are blank in every mask
    blank_units = torch.stack([(1 - masks)[:, grid == u].amax(1) for u in range(12)], 1)
    assert torch.all(blank_units.sum(1) == 6)
    assert 0 < blank_units[:, 11].sum() < 200  # the corner pixel is a unit that gets drawn


def test_blank_frequency_is_uniform_across_patches():
    n, units, blank = 20000, 16, 4
    masks = sample_unit_masks(n, units, blank, torch.Generator().manual_seed(2))
    freq = masks.float().mean(0)
    # each unit is blank with probability 1/4; binomial standard error ~0.003
    assert torch.all((freq - 0.25).abs() < 5 * math.sqrt(0.25 * 0.75 / n))
    assert torch.all(masks.sum(1) == blank)


def test_partition_covers_every_patch_exactly_once():
    masks = random_partition_masks(4, 28, 28, patch_size=2, generator=torch.Generator().manual_seed(3))
    blank = masks == 0
    assert torch.all(blank.sum(0) == 1)
    assert torch.all(blank.reshape(4, -1).sum(1) == 196)  # 49 patches of 4 pixels each
    groups = partition_units(10, 3, torch.Generator().manual_seed(0))
    assert sorted(torch.bincount(groups).tolist()) == [3, 3, 4]


def test_partition_rejects_more_groups_than_units():
    with pytest.raises(ValueError, match="cannot split"):
        partition_units(3, 4)


def test_sequence_is_independent_of_chunking():
    whole = MaskSequence((196, 9), (49, 2), seed=7).take(0, 600)
    chunked = MaskSequence((196, 9), (49, 2), seed=7)
    pieces = [chunked.take(a, b) for a, b in [(0, 1), (1, 255), (255, 257), (257, 600)]]
    for group in range(2):
        assert torch.equal(whole[group], torch.cat([p[group] for p in pieces]))
    # random access gives the same masks too
    assert torch.equal(MaskSequence((196, 9), (49, 2), seed=7).take(300, 310)[0], whole[0][300:310])
    assert not torch.equal(MaskSequence((196, 9), (49, 2), seed=8).take(0, 600)[0], whole[0])


def test_resolve_seed_from_generator_is_reproducible():
    a = resolve_seed(torch.Generator().manual_seed(5))
    b = resolve_seed(torch.Generator().manual_seed(5))
    assert a == b and resolve_seed(11) == 11
    with pytest.raises(TypeError, match="seed"):
        resolve_seed(1.5)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(mask_ratio=0.0), "mask_ratio"),
        (dict(mask_ratio=1.0), "mask_ratio"),
        (dict(patch_size=0), "patch_size"),
        (dict(patch_size=29), "patch_size"),
    ],
)
def test_bad_mask_parameters(kwargs, match):
    with pytest.raises(ValueError, match=match):
        random_patch_masks(1, 28, 28, **kwargs)


@pytest.mark.parametrize("seed", [2**63, 2**64 - 1, -1, -(2**63)])
def test_a_seed_a_generator_would_wrap_is_refused(seed):
    # torch reads a seed modulo 2**63: 2**63 seeds as 0, -1 as 2**63 - 1
    assert torch.equal(
        torch.rand(4, generator=torch.Generator().manual_seed(2**63 + 5)),
        torch.rand(4, generator=torch.Generator().manual_seed(5)),
    )
    with pytest.raises(ValueError, match=r"seed must be an int in \[0, 2\*\*63\)"):
        resolve_seed(seed)
    assert resolve_seed(2**63 - 1) == 2**63 - 1 and resolve_seed(0) == 0
    with pytest.raises(TypeError, match="seed must be an int, a torch.Generator or None, got bool"):
        resolve_seed(True)
