import math

import pytest
import torch

from captum_fillblanks.attr.transforms import (
    DEFAULT_SCALE_PERCENTILE,
    TransformSetting,
    binarize,
    fill_transform,
    filled_image,
    normalize_over_blanks,
    prototype,
    resolve_transform,
    signed_update,
    to_input_range,
)

#: Settings of T and the loose keywords that mean each: defaults, one field, all three.
SETTINGS = [
    (TransformSetting(), {}),
    (TransformSetting(threshold=0.5), {"threshold": 0.5}),
    (TransformSetting(binarized=False), {"binarized": False}),
    (TransformSetting("min_max", 0.3), {"normalization": "min_max", "threshold": 0.3}),
    (TransformSetting("min_max", 0.7, False), {"normalization": "min_max", "threshold": 0.7, "binarized": False}),
]


def test_min_max_uses_only_blank_positions_per_example():
    update = torch.tensor([[[-100.0, 2.0, 4.0, 3.0]], [[1.0, 1.0, 5.0, 9.0]]])
    blank = torch.tensor([[[False, True, True, True]], [[True, True, False, True]]])
    out = normalize_over_blanks(update, blank, "min_max")
    expected = torch.tensor([[[0.0, 0.0, 1.0, 0.5]], [[0.0, 0.0, 0.0, 1.0]]])
    assert torch.allclose(out, expected)


def test_max_abs_divides_by_the_largest_magnitude_over_the_blanks():
    update = torch.tensor([[[-100.0, 2.0, -4.0, 1.0]], [[0.0, 3.0, 50.0, -6.0]]])
    blank = torch.tensor([[[False, True, True, True]], [[True, True, False, True]]])
    out = normalize_over_blanks(update, blank, "max_abs")
    expected = torch.tensor([[[0.0, 0.5, -1.0, 0.25]], [[0.0, 0.5, 0.0, -1.0]]])
    assert torch.allclose(out, expected)
    assert torch.equal(normalize_over_blanks(update, blank), out)  # the default


def test_max_abs_keeps_zero_where_min_max_moves_it_to_mid_range():
    update = torch.tensor([[-1.0, 0.0, 0.0, 1.0]])
    assert torch.equal(normalize_over_blanks(update, normalization="max_abs"), torch.tensor([[-1.0, 0.0, 0.0, 1.0]]))
    assert torch.equal(normalize_over_blanks(update, normalization="min_max"), torch.tensor([[0.0, 0.5, 0.5, 1.0]]))
    # at tau = 0.4 the zeros are background under max_abs, ink under min_max
    assert torch.equal(fill_transform(update, threshold=0.4), torch.tensor([[0.0, 0.0, 0.0, 1.0]]))
    assert torch.equal(
        fill_transform(update, threshold=0.4, normalization="min_max"), torch.tensor([[0.0, 1.0, 1.0, 1.0]])
    )


def test_constant_updates():
    blank = torch.ones(2, 3, dtype=torch.bool)
    positive, negative = torch.full((2, 3), 4.0), torch.full((2, 3), -4.0)
    assert torch.equal(normalize_over_blanks(positive, blank, "min_max"), torch.zeros(2, 3))
    assert torch.equal(normalize_over_blanks(positive, blank, "max_abs"), torch.ones(2, 3))
    assert torch.equal(normalize_over_blanks(negative, blank, "max_abs"), -torch.ones(2, 3))
    assert torch.equal(normalize_over_blanks(torch.zeros(2, 3), blank, "max_abs"), torch.zeros(2, 3))


def test_all_negative_updates_give_no_ink_under_max_abs():
    update = -torch.rand(3, 1, 4, 4, generator=torch.Generator().manual_seed(0)) - 0.1
    for tau in (0.0, 0.05, 0.5):
        assert torch.equal(fill_transform(update, threshold=tau), torch.zeros_like(update))
    assert torch.equal(fill_transform(update, binarized=False), torch.zeros_like(update))
    assert fill_transform(update, normalization="min_max", threshold=0.05).sum() > 0  # min_max inks them


def test_binarize_and_transform():
    assert torch.equal(binarize(torch.tensor([0.2, 0.5, 0.51])), torch.tensor([0.0, 0.0, 1.0]))
    update = torch.tensor([[-1.0, 1.0, 2.0, 4.0]])
    blank = torch.tensor([[True, True, True, False]])
    # max_abs over the blanks, scaled by the largest value: -0.5, 0.5, 1.0
    largest = {"normalization": "max_abs", "scale_percentile": 100.0}
    half = TransformSetting(threshold=0.5, **largest)
    assert torch.equal(fill_transform(update, blank, transform=half), torch.tensor([[0.0, 0.0, 1.0, 0.0]]))
    tau_02 = TransformSetting(threshold=0.2, **largest)
    assert torch.equal(fill_transform(update, blank, transform=tau_02), torch.tensor([[0.0, 1.0, 1.0, 0.0]]))
    plain = TransformSetting(binarized=False, **largest)
    assert torch.allclose(fill_transform(update, blank, transform=plain), torch.tensor([[0.0, 0.5, 1.0, 0.0]]))
    # min_max over the blanks: 0, 2/3, 1
    assert torch.allclose(
        fill_transform(update, blank, binarized=False, normalization="min_max"),
        torch.tensor([[0.0, 2 / 3, 1.0, 0.0]]),
    )


def test_transform_setting_applies_fill_transform_and_checks_its_arguments():
    update = torch.randn(2, 1, 4, 4, generator=torch.Generator().manual_seed(1))
    setting = TransformSetting("min_max", 0.3)
    assert torch.equal(setting(update), fill_transform(update, threshold=0.3, normalization="min_max"))
    assert str(setting) == "min_max, tau 0.3"
    assert str(TransformSetting(binarized=False, scale_percentile=DEFAULT_SCALE_PERCENTILE)).startswith(
        "max_abs, not binarized"
    )
    with pytest.raises(ValueError, match="normalization must be one of"):
        TransformSetting("l2")
    for bad in (1.0, 1.5, -0.5, math.nan, math.inf):
        with pytest.raises(ValueError, match=r"threshold must be a number in \[0, 1\)"):
            TransformSetting(threshold=bad)
        with pytest.raises(ValueError, match="threshold"):
            prototype(update, threshold=bad)
    with pytest.raises(TypeError, match="threshold must be a number"):
        fill_transform(update, threshold="0.5")


def test_signed_update_splits_at_blanks():
    update = torch.tensor([[-2.0, 3.0, -1.0, 5.0]])
    blank = torch.tensor([[True, True, True, False]])
    pos, neg = signed_update(update, blank)
    assert torch.equal(pos, torch.tensor([[0.0, 3.0, 0.0, 0.0]]))
    assert torch.equal(neg, torch.tensor([[2.0, 0.0, 1.0, 0.0]]))


def test_filled_image_keeps_input_outside_blanks_and_uses_input_range():
    masked = torch.tensor([[0.3, 0.7, -0.4242, -0.4242]])
    update = torch.tensor([[9.0, 9.0, 0.0, 2.0]])
    blank = torch.tensor([[False, False, True, True]])
    low, high = (0 - 0.1307) / 0.3081, (1 - 0.1307) / 0.3081
    out = filled_image(masked, update, blank, input_range=(low, high))
    assert torch.allclose(out, torch.tensor([[0.3, 0.7, low, high]]))
    with pytest.raises(ValueError, match="same examples, got batch sizes 1 and 2"):
        filled_image(masked, update.repeat(2, 1), blank)


def test_prototype_covers_every_pixel():
    fill = torch.tensor([[[1.0, 2.0], [3.0, 4.0]]])
    half = TransformSetting(threshold=0.5, scale_percentile=100.0)
    assert torch.equal(prototype(fill, transform=half), torch.tensor([[[0.0, 0.0], [1.0, 1.0]]]))  # 0.25 .. 1
    assert torch.equal(
        prototype(fill, normalization="min_max", threshold=0.5), torch.tensor([[[0.0, 0.0], [1.0, 1.0]]])
    )
    # the default: tau 0.5 after dividing by the 90th percentile, 3.7: 0.27, 0.54, 0.81, 1 (clipped)
    assert torch.equal(prototype(fill), torch.tensor([[[0.0, 1.0], [1.0, 1.0]]]))
    assert torch.equal(to_input_range(torch.tensor([0.0, 1.0]), (-1.0, 2.0)), torch.tensor([-1.0, 2.0]))


@pytest.mark.parametrize("normalization", ["max_abs", "min_max"])
def test_a_non_finite_value_is_background_and_reported_not_smeared_over_its_example(normalization):
    fill = torch.tensor([[0.0, 1.0, 2.0, 4.0], [0.0, 1.0, 2.0, 4.0]])
    broken = fill.clone()
    broken[1, 2] = float("nan")
    with pytest.warns(
        UserWarning, match=r"1 non-finite values \(NaN or inf\) at blank positions of example\(s\) \[1\]"
    ):
        out = prototype(broken, binarized=False, normalization=normalization)
    clean = prototype(fill, binarized=False, normalization=normalization)
    assert torch.equal(out[0], clean[0])  # the other example is untouched
    assert out[1, 2] == 0 and torch.equal(out[1, [0, 1, 3]], clean[1, [0, 1, 3]])


def test_per_channel_input_range_of_shape_c_maps_each_channel():
    mean, std = torch.tensor([0.485, 0.456, 0.406]), torch.tensor([0.229, 0.224, 0.225])
    values = torch.rand(2, 3, 4, 5)
    per_channel = to_input_range(values, ((0 - mean) / std, (1 - mean) / std))
    by_hand = (values - mean.reshape(1, 3, 1, 1)) / std.reshape(1, 3, 1, 1)
    torch.testing.assert_close(per_channel, by_hand)
    # the same as the (1, C, 1, 1) form, and for one image (C, H, W)
    broadcast = ((0 - mean) / std).reshape(1, 3, 1, 1), ((1 - mean) / std).reshape(1, 3, 1, 1)
    torch.testing.assert_close(to_input_range(values, broadcast), per_channel)
    torch.testing.assert_close(to_input_range(values[0], ((0 - mean) / std, (1 - mean) / std)), per_channel[0])


def test_input_range_that_does_not_fit_the_channels_is_a_clear_error():
    values = torch.rand(2, 3, 4, 4)  # W == 4: a (4,) range would have broadcast along the width
    with pytest.raises(
        ValueError, match=r"input_range's background has 4 values, one per channel, but the images have 3"
    ):
        to_input_range(values, (torch.zeros(4), torch.ones(4)))
    with pytest.raises(ValueError, match=r"input_range's ink has shape \(2, 3, 1, 1\), which does not broadcast"):
        to_input_range(values[:1], (0.0, torch.ones(2, 3, 1, 1)))
    with pytest.raises(ValueError, match="channels"):
        filled_image(
            values, torch.rand(2, 3, 4, 4), torch.ones(2, 3, 4, 4, dtype=torch.bool), input_range=(torch.zeros(2), 1.0)
        )


def test_resolve_transform_returns_the_setting_or_builds_one_from_the_loose_keywords():
    setting = TransformSetting("min_max", 0.3, False)
    assert resolve_transform(setting) is setting
    assert resolve_transform() == TransformSetting()
    for expected, loose in SETTINGS:
        assert resolve_transform(**loose) == expected
    assert resolve_transform(binarized=True, threshold=0.0) == TransformSetting(threshold=0.0)


def test_resolve_transform_refuses_a_setting_with_loose_keywords_and_names_them():
    setting = TransformSetting()
    both = r"give transform= or threshold/binarized/normalization, not both"
    with pytest.raises(TypeError, match=both + r".*threshold=0.5"):
        resolve_transform(setting, threshold=0.5)
    with pytest.raises(TypeError, match=r"not both.*binarized=True, normalization='max_abs'"):
        resolve_transform(setting, binarized=True, normalization="max_abs")  # even the values it holds
    with pytest.raises(TypeError, match="transform must be a TransformSetting, got dict"):
        resolve_transform({"threshold": 0.5})
    with pytest.raises(TypeError, match="transform must be a TransformSetting, got str"):
        fill_transform(torch.ones(1, 2), transform="max_abs")
    with pytest.raises(ValueError, match="threshold"):
        resolve_transform(threshold=1.5)


@pytest.mark.parametrize(("setting", "loose"), SETTINGS)
def test_transform_gives_exactly_what_the_loose_keywords_give(setting, loose):
    generator = torch.Generator().manual_seed(4)
    update = torch.randn(3, 1, 5, 5, generator=generator)
    blank = torch.rand(3, 1, 5, 5, generator=generator) < 0.4
    masked = torch.where(blank, torch.zeros(()), torch.rand(3, 1, 5, 5, generator=generator))
    assert torch.equal(fill_transform(update, blank, transform=setting), fill_transform(update, blank, **loose))
    assert torch.equal(setting(update, blank), fill_transform(update, blank, **loose))
    assert torch.equal(
        filled_image(masked, update, blank, input_range=(-1.0, 2.0), transform=setting),
        filled_image(masked, update, blank, input_range=(-1.0, 2.0), **loose),
    )
    assert torch.equal(
        prototype(update, input_range=(-1.0, 2.0), transform=setting),
        prototype(update, input_range=(-1.0, 2.0), **loose),
    )


def test_transform_and_loose_keywords_at_once_are_refused_everywhere():
    update, blank = torch.randn(1, 4), torch.ones(1, 4, dtype=torch.bool)
    setting = TransformSetting()
    with pytest.raises(TypeError, match="not both"):
        fill_transform(update, blank, transform=setting, threshold=0.2)
    with pytest.raises(TypeError, match="not both"):
        filled_image(update, update, blank, transform=setting, binarized=False)
    with pytest.raises(TypeError, match="not both"):
        prototype(update, transform=setting, normalization="min_max")


@pytest.mark.parametrize("threshold", [float("nan"), 1.5, -1.0, 1.0])
def test_binarize_refuses_the_thresholds_the_transform_refuses(threshold):
    with pytest.raises(ValueError, match="threshold must be a number in \\[0, 1\\)"):
        binarize(torch.rand(2, 4), threshold)
    with pytest.raises(ValueError, match="threshold must be a number in \\[0, 1\\)"):
        fill_transform(torch.rand(2, 4), threshold=threshold)
    with pytest.raises(TypeError, match="threshold"):
        binarize(torch.rand(2, 4), "0.5")


@pytest.mark.parametrize("fill", [torch.zeros(0, 1, 6, 6), torch.tensor(1.0), torch.zeros(2, 0)])
def test_a_fill_with_no_example_to_transform_gets_a_clear_error(fill):
    with pytest.raises(ValueError, match=r"fill of shape .* holds no example to transform"):
        prototype(fill)
    with pytest.raises(ValueError, match=r"update of shape .* holds no example to transform"):
        fill_transform(fill)


def test_a_percentile_scale_divides_by_that_percentile_and_clips():
    from captum_fillblanks.attr.transforms import normalize_over_blanks

    update = torch.tensor([[[[0.1, 0.2, 0.3, 10.0]]]])
    # |delta|'s 75th percentile, interpolated: 0.3 + 0.25 * (10 - 0.3) = 2.725
    scaled = normalize_over_blanks(update, None, "max_abs", 75.0)
    torch.testing.assert_close(scaled, torch.tensor([[[[0.1, 0.2, 0.3, 2.725]]]]) / 2.725)
    # the median 0.25 lets 0.2 and everything above reach tau 0.5; the hot pixel clips at 1
    shown = prototype(update, transform=TransformSetting(threshold=0.5, scale_percentile=50))
    assert shown.flatten().tolist() == [0.0, 1.0, 1.0, 1.0]
    assert str(TransformSetting(scale_percentile=95)) == "max_abs, tau 0.5, scale p95"


def test_the_percentile_is_taken_over_the_blanks_only_and_100_is_the_largest_value():
    from captum_fillblanks.attr.transforms import normalize_over_blanks

    update = torch.randn(3, 1, 6, 6, generator=torch.Generator().manual_seed(0))
    assert torch.equal(normalize_over_blanks(update, None, "max_abs", 100.0), normalize_over_blanks(update))
    # the default setting is the default scale; its name says which
    assert TransformSetting().scale_percentile == DEFAULT_SCALE_PERCENTILE
    assert TransformSetting("min_max").scale_percentile == 100.0
    assert str(TransformSetting(scale_percentile=100)) == "max_abs, tau 0.5, scale max"
    assert str(TransformSetting()) == "max_abs, tau 0.5, scale p90" and DEFAULT_SCALE_PERCENTILE == 90
    blank = torch.zeros(3, 1, 6, 6, dtype=torch.bool)
    blank[..., :3] = True
    outside = update.clone()
    outside[..., 3:] = 1e6  # a huge value outside the blanks changes nothing
    torch.testing.assert_close(
        normalize_over_blanks(outside, blank, "max_abs", 90.0), normalize_over_blanks(update, blank, "max_abs", 90.0)
    )


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"scale_percentile": 0}, ValueError),
        ({"scale_percentile": 101}, ValueError),
        ({"scale_percentile": True}, TypeError),
        ({"scale_percentile": 95, "normalization": "min_max"}, ValueError),
    ],
)
def test_a_bad_scale_percentile_is_refused_by_name(kwargs, error):
    with pytest.raises(error, match="scale_percentile"):
        TransformSetting(**kwargs)
