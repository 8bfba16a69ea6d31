import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from captum.attr import visualization as captum_viz  # noqa: E402
from matplotlib import colormaps  # noqa: E402
from matplotlib import pyplot as plt  # noqa: E402
from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from captum_fillblanks.attr.mask_fill import MaskFill  # noqa: E402
from captum_fillblanks.attr.masks import random_partition_masks  # noqa: E402
from captum_fillblanks.attr.transforms import TransformSetting, fill_transform, prototype  # noqa: E402
from captum_fillblanks.attr.visualization import (  # noqa: E402
    CAPTUM_SIGNED_CMAP,
    SIGNED_OVERLAY_CMAP,
    signed_overlay_cmap,
    to_unit_range,
    visualize_comparison,
    visualize_expected_fill,
    visualize_fill,
    visualize_mask_fill,
    visualize_methods,
    visualize_parameter_grid,
    visualize_progressive,
    visualize_prototypes,
)

SIZE = 6


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def render(figure):
    """The figure as an (H, W, 4) uint8 array, drawn by Agg."""
    canvas = FigureCanvasAgg(figure)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba()).copy()


def pixel_colours(figure, ax, pixels):
    """RGB of the rendered figure at the centre of each image pixel (row, col) of ``ax``."""
    picture = render(figure)
    height = picture.shape[0]
    colours = np.empty((SIZE, SIZE, 3), dtype=int)
    for row in range(pixels):
        for col in range(pixels):
            x, y = ax.transData.transform((col, row))
            colours[row, col] = picture[int(round(height - y)), int(round(x)), :3]
    return colours


def tinted(colours, channel):
    """Where the rendered colour is clearly ``channel`` (0 red, 1 green, 2 blue): that
    channel above both others by more than 40 of 255."""
    others = np.delete(colours, channel, axis=-1)
    return (colours[..., channel, None] > others + 40).all(axis=-1)


def drawn(ax, index=0):
    return np.asarray(ax.get_images()[index].get_array())


def corner_mask():
    mask = torch.ones(SIZE, SIZE)
    mask[:3, :4] = 0  # 12 blank pixels
    return mask


def signed_update_pattern():
    """Update with +1, +0.5, -1, -0.5 and 0 at the blanks, and large values elsewhere
    (which must not show)."""
    update = torch.full((1, SIZE, SIZE), 5.0)
    update[0, :3, :4] = torch.tensor([[1.0, 0.5, -1.0, -0.5], [0.0, 1.0, -1.0, 0.0], [0.5, -0.5, 0.0, 1.0]])
    return update


def test_fill_has_three_panels_titled_as_the_paper():
    image = torch.rand(1, SIZE, SIZE)
    figure, axes = visualize_fill(image, corner_mask(), signed_update_pattern())
    assert axes.shape == (1, 3)
    assert [ax.get_title() for ax in axes[0]] == ["M(x)", "Δx", "M(x) + T(Δx)"]
    _, axes = visualize_fill(image, corner_mask(), signed_update_pattern(), show_inputs=True)
    assert axes.shape == (1, 5)
    assert [ax.get_title() for ax in axes[0, :2]] == ["x", "blanks of M"]
    assert np.allclose(drawn(axes[0, 0]), image[0].numpy())
    assert np.array_equal(drawn(axes[0, 1]), (corner_mask() == 0).float().numpy())


def test_update_is_red_exactly_where_positive_and_blank_blue_where_negative():
    image = torch.full((1, SIZE, SIZE), 0.5)
    mask, update = corner_mask(), signed_update_pattern()
    figure = Figure(figsize=(9, 3), dpi=100)
    figure, axes = visualize_fill(image, mask, update, plt_fig_axis=(figure, None))
    colours = pixel_colours(figure, axes[0, 1], SIZE)
    r, g, b = colours[..., 0], colours[..., 1], colours[..., 2]
    red, blue = tinted(colours, 0), tinted(colours, 2)
    blank = mask == 0
    assert np.array_equal(red, (blank & (update[0] > 0)).numpy())
    assert np.array_equal(blue, (blank & (update[0] < 0)).numpy())
    # elsewhere the masked input shows through, untinted: grey where kept, black at blanks
    neutral = ~(red | blue)
    assert (np.abs(r - g)[neutral] <= 2).all() and (np.abs(r - b)[neutral] <= 2).all()
    assert (np.abs(r[neutral & ~blank.numpy()] - 128) <= 2).all()  # 0.5 stays mid-grey
    assert (r[neutral & blank.numpy()] < 20).all()


def legend_entries(ax):
    """(label, RGBA) of each swatch of the legend of ``ax``, or [] without one."""
    legend = ax.get_legend()
    if legend is None:
        return []
    return [(t.get_text(), tuple(p.get_facecolor())) for t, p in zip(legend.get_texts(), legend.get_patches())]


def test_update_in_captum_colours_is_green_where_positive_red_where_negative_and_says_so():
    image = torch.full((1, SIZE, SIZE), 0.5)
    mask, update = corner_mask(), signed_update_pattern()
    figure = Figure(figsize=(9, 3), dpi=100)
    cmap = signed_overlay_cmap("green", "red")
    figure, axes = visualize_fill(image, mask, update, cmap=cmap, plt_fig_axis=(figure, None))
    colours = pixel_colours(figure, axes[0, 1], SIZE)
    green, red = tinted(colours, 1), tinted(colours, 0)
    blank = mask == 0
    assert np.array_equal(green, (blank & (update[0] > 0)).numpy())
    assert np.array_equal(red, (blank & (update[0] < 0)).numpy())
    green_rgba, red_rgba = (0.0, 128 / 255, 0.0, 1.0), (1.0, 0.0, 0.0, 1.0)
    assert legend_entries(axes[0, 1]) == [("+ positive", green_rgba), ("− negative", red_rgba)]


def test_every_signed_panel_has_a_legend_of_the_colours_it_is_drawn_in():
    generator = torch.Generator().manual_seed(2)
    images = torch.rand(2, 1, SIZE, SIZE, generator=generator)
    update = torch.randn(2, 1, SIZE, SIZE, generator=generator)
    red, blue = (1.0, 0.0, 0.0, 1.0), (0.0, 0.0, 1.0, 1.0)
    # the paper's colours by default, under the last row only
    _, axes = visualize_fill(images, corner_mask(), update)
    assert legend_entries(axes[1, 1]) == [("+ positive", red), ("− negative", blue)]
    assert [legend_entries(ax) for ax in [*axes[0], axes[1, 0], axes[1, 2]]] == [[]] * 5
    _, axes = visualize_fill(images, corner_mask(), update, sign_legend=False)
    assert legend_entries(axes[1, 1]) == []
    # the heat map of the expected fill: the legend takes the ends of the map it is drawn with
    _, axes = visualize_expected_fill(images, update)
    drawn_cmap = axes[1, 1].get_images()[0].get_cmap()
    assert drawn_cmap.name == "bwr"
    assert legend_entries(axes[1, 1]) == [("+ positive", drawn_cmap(1.0)), ("− negative", drawn_cmap(0.0))]
    _, axes = visualize_expected_fill(images, update, cmap="RdYlGn")
    (_, positive), (_, negative) = legend_entries(axes[1, 1])
    assert positive[1] > positive[0] and negative[0] > negative[1]  # green +, red -
    assert axes[1, 1].get_images()[0].get_cmap().name == "RdYlGn"
    # several methods: each column names what its colours mean, in Captum's colours where asked
    maps = {"Saliency": update.abs(), "MaskFill": update, "IG": update}
    _, axes = visualize_methods(images, maps, sign={"MaskFill": "all", "IG": "all"}, cmap={"IG": "RdYlGn"})
    assert [text for text, _ in legend_entries(axes[1, 1])] == ["|value|"]
    assert legend_entries(axes[1, 2]) == [("+ positive", red), ("− negative", blue)]
    assert legend_entries(axes[1, 3]) == [
        ("+ positive", colormaps["RdYlGn"](1.0)),
        ("− negative", colormaps["RdYlGn"](0.0)),
    ]
    assert legend_entries(axes[1, 0]) == [] and all(legend_entries(ax) == [] for ax in axes[0])
    _, axes = visualize_methods(images, maps, sign="negative")
    assert legend_entries(axes[1, 1]) == [("− negative", colormaps["Reds"](1.0))]
    # Saliency has no negative value: drawn as an empty map (Captum alone cannot scale it)
    assert (drawn(axes[0, 1]) == 0).all() and (drawn(axes[1, 1]) == 0).all()
    assert drawn(axes[0, 2]).max() > 0  # MaskFill has negative values
    # masked_image scales the image itself: no colour stands for a sign, so no legend
    _, axes = visualize_methods(images, {"Saliency": update.abs()}, method="masked_image", sign="positive")
    assert legend_entries(axes[1, 1]) == []


def test_captum_colours_and_their_legend_match_captums_own_heat_map():
    generator = torch.Generator().manual_seed(4)
    images = torch.rand(1, 1, SIZE, SIZE, generator=generator)
    half = torch.randn(1, 1, SIZE, SIZE // 2, generator=generator)
    update = torch.cat([half, -half], dim=3)  # as strong negative as positive: both ends drawn
    _, axes = visualize_methods(images, {"MaskFill": update}, sign="all", cmap=CAPTUM_SIGNED_CMAP)
    ours = axes[0, 1].get_images()[0]
    _, theirs = captum_viz.visualize_image_attr(update[0].permute(1, 2, 0).numpy(), sign="all", use_pyplot=False)
    theirs = theirs.get_images()[0]
    assert np.array_equal(ours.to_rgba(ours.get_array()), theirs.to_rgba(theirs.get_array()))
    assert legend_entries(axes[0, 1]) == [
        ("+ positive", (0.0, 128 / 255, 0.0, 1.0)),
        ("− negative", (1.0, 0.0, 0.0, 1.0)),
    ]
    # each swatch is the colour of the strongest drawn pixel of its sign
    values, rgba = ours.get_array(), ours.to_rgba(ours.get_array())
    for (_, swatch), end in zip(legend_entries(axes[0, 1]), (values.argmax(), values.argmin())):
        pixel = np.unravel_index(end, values.shape)
        assert abs(values[pixel]) == 1.0  # Captum clips the outliers to the ends of the scale
        assert tuple(rgba[pixel]) == swatch


@pytest.mark.parametrize("method", ["heat_map", "blended_heat_map", "masked_image", "alpha_scaling"])
def test_a_map_with_nothing_of_its_sign_is_drawn_as_captum_draws_zeros(method):
    image = torch.full((3, SIZE, SIZE), 0.5)
    cancelling = torch.stack([torch.ones(SIZE, SIZE), -torch.ones(SIZE, SIZE), torch.zeros(SIZE, SIZE)])
    sign = "all" if method in ("heat_map", "blended_heat_map") else "positive"
    figure = Figure(figsize=(4, 2), dpi=100)
    _, axes = visualize_methods(
        image, {"cancels": cancelling}, method=method, sign=sign, cmap="bwr", plt_fig_axis=(figure, None)
    )
    colours = pixel_colours(figure, axes[0, 1], SIZE)  # channels summed: nothing to draw
    expected = {
        "heat_map": 255,  # bwr at zero: white
        "blended_heat_map": round(0.5 * 128 + 0.5 * 255),  # mid-grey under white at alpha 0.5
        "masked_image": 0,  # the image times zero
        "alpha_scaling": 255,  # fully transparent: the white figure shows
    }[method]
    assert (np.abs(colours - expected) <= 2).all()


def test_methods_that_cannot_draw_a_sign_or_do_not_exist_raise_a_clear_error():
    image, update = torch.rand(1, SIZE, SIZE), signed_update_pattern()
    with pytest.raises(ValueError, match="method must be one of"):
        visualize_methods(image, {"a": update}, method="contour")
    with pytest.raises(ValueError, match="cannot show both signs"):
        visualize_methods(image, {"a": update}, method="masked_image", sign="all")
    with pytest.raises(ValueError, match=r"sign\['a'\] must be one of"):
        visualize_methods(image, {"a": update}, sign={"a": "both"})
    with pytest.raises(ValueError, match=r"cmap\['a'\] must be a matplotlib Colormap"):
        visualize_methods(image, {"a": update}, cmap={"a": "no-such-map"})


def test_legend_is_left_out_where_a_colour_bar_or_the_caller_says_so_and_follows_the_overlay_opacity():
    images, update = torch.rand(1, 1, SIZE, SIZE), signed_update_pattern()[None]
    _, axes = visualize_methods(images, {"a": update}, sign="all", show_colorbar=True)
    assert legend_entries(axes[0, 1]) == []
    _, axes = visualize_methods(images, {"a": update}, sign="all", sign_legend=False)
    assert legend_entries(axes[0, 1]) == []
    _, axes = visualize_expected_fill(images, update, sign_legend=False)
    assert legend_entries(axes[0, 1]) == []
    _, axes = visualize_methods(images, {"a": update}, method="blended_heat_map", sign="all", alpha_overlay=0.4)
    assert [colour[3] for _, colour in legend_entries(axes[0, 1])] == [0.4, 0.4]


def test_colour_arguments_that_are_not_colours_raise_a_clear_error():
    with pytest.raises(ValueError, match="positive must be a matplotlib colour"):
        signed_overlay_cmap("not-a-colour")
    with pytest.raises(ValueError, match="negative must be a matplotlib colour"):
        signed_overlay_cmap("red", (1, 2))
    image, mask, update = torch.rand(1, SIZE, SIZE), corner_mask(), signed_update_pattern()
    with pytest.raises(ValueError, match="cmap must be a matplotlib Colormap"):
        visualize_fill(image, mask, update, cmap="no-such-map")
    with pytest.raises(ValueError, match="sign must be one of"):
        visualize_methods(image, {"a": update}, sign="both")


def test_filled_image_equals_masked_input_outside_the_blanks():
    input_range = (-0.5, 2.0)
    image = torch.rand(2, 1, SIZE, SIZE, generator=torch.Generator().manual_seed(0)) * 2.5 - 0.5
    update = torch.randn(2, 1, SIZE, SIZE, generator=torch.Generator().manual_seed(1))
    mask = corner_mask()
    _, axes = visualize_fill(image, mask, update, input_range=input_range, baselines=-0.5)
    kept = mask.bool().numpy()
    for row in range(2):
        masked, filled = drawn(axes[row, 0]), drawn(axes[row, 2])
        unit = ((image[row, 0] + 0.5) / 2.5).numpy()
        assert np.allclose(masked[kept], unit[kept], atol=1e-6)
        assert np.allclose(filled[kept], masked[kept])
        assert (masked[~kept] == 0).all()  # the baseline is the range's background
        blank = torch.from_numpy(~kept)[None, None]
        expected = fill_transform(update[row : row + 1], blank)[0, 0].numpy()
        assert np.array_equal(filled[~kept], expected[~kept])


def test_not_binarized_fill_keeps_the_normalized_update():
    update = signed_update_pattern()
    _, axes = visualize_fill(torch.zeros(1, SIZE, SIZE), corner_mask(), update, binarized=False)
    filled = drawn(axes[0, 2])
    assert filled.max() == 1.0 and filled[0, 1] == pytest.approx(0.5)  # max_abs: 0.5 stays 0.5
    assert filled[0, 2] == 0.0 and filled[1, 0] == 0.0  # negative and zero updates: background
    _, axes = visualize_fill(
        torch.zeros(1, SIZE, SIZE), corner_mask(), update, binarized=False, normalization="min_max"
    )
    filled = drawn(axes[0, 2])
    assert filled[0, 1] == pytest.approx(0.75) and filled[1, 0] == pytest.approx(0.5)  # min_max: 0 -> 0.5


@pytest.mark.parametrize("channels", [1, 3])
def test_numpy_and_tensor_inputs_give_the_same_picture(channels):
    generator = torch.Generator().manual_seed(3)
    image = torch.rand(channels, SIZE, SIZE, generator=generator)
    update = torch.randn(channels, SIZE, SIZE, generator=generator)
    mask = corner_mask()
    pictures = []
    for as_input in (
        lambda t: t,
        lambda t: t.numpy(),  # channels first
        lambda t: t.permute(1, 2, 0).numpy(),  # channels last
        lambda t: t[None].requires_grad_(),  # a batch of one, still attached to autograd
    ):
        figure, _ = visualize_fill(as_input(image), mask.numpy(), as_input(update))
        pictures.append(render(figure))
    for picture in pictures[1:]:
        assert np.array_equal(picture, pictures[0])


def test_rgb_images_are_drawn_in_colour():
    image = torch.zeros(3, SIZE, SIZE)
    image[0] = 1.0  # pure red
    _, axes = visualize_fill(image, corner_mask(), torch.randn(3, SIZE, SIZE))
    masked = drawn(axes[0, 0])
    assert masked.shape == (SIZE, SIZE, 3)
    assert (masked[corner_mask().bool().numpy()] == [1.0, 0.0, 0.0]).all()


@pytest.mark.parametrize(
    "image, mask, update, match",
    [
        (torch.rand(1, 1, 1, SIZE, SIZE), None, None, "cannot be drawn"),
        (torch.rand(2, SIZE, SIZE), None, None, "2 channels"),
        (torch.rand(1, SIZE, SIZE), torch.ones(SIZE, SIZE + 1), None, "does not match one example"),
        (torch.rand(1, SIZE, SIZE), torch.ones(3, SIZE, SIZE), None, "does not match the image"),
        (torch.rand(1, SIZE, SIZE), torch.full((SIZE, SIZE), 0.5), None, "only 0"),
        (torch.rand(1, SIZE, SIZE), None, torch.rand(1, SIZE - 1, SIZE), "does not match the images"),
        (torch.rand(2, 1, SIZE, SIZE), None, torch.rand(3, 1, SIZE, SIZE), "does not match the images"),
    ],
)
def test_shapes_it_cannot_draw_raise_a_clear_error(image, mask, update, match):
    mask = corner_mask() if mask is None else mask
    update = torch.rand_like(image) if update is None else update
    with pytest.raises(ValueError, match=match):
        visualize_fill(image, mask, update)


def test_mask_fill_draws_what_mask_fill_returns(softmax_regression):
    image = torch.rand(1, 1, SIZE, SIZE, generator=torch.Generator().manual_seed(5))
    mask = corner_mask()
    _, axes = visualize_mask_fill(softmax_regression, image, mask, target=2)
    update = MaskFill(softmax_regression).attribute(image, target=2, masks=mask, selection="all")
    _, expected = visualize_fill(image, mask, update)
    for ours, theirs in zip(axes[0], expected[0]):
        for a, b in zip(ours.get_images(), theirs.get_images()):
            assert np.array_equal(np.asarray(a.get_array()), np.asarray(b.get_array()))
    with pytest.raises(ValueError, match="one \\(H, W\\) mask"):
        visualize_mask_fill(softmax_regression, image, torch.stack([mask, mask]), target=2)


def test_expected_fill_panels_heat_map_and_prototype():
    generator = torch.Generator().manual_seed(7)
    images = torch.rand(2, 1, SIZE, SIZE, generator=generator)
    fill = torch.randn(2, 1, SIZE, SIZE, generator=generator)
    _, axes = visualize_expected_fill(images, fill)
    assert axes.shape == (2, 3)
    assert [ax.get_title() for ax in axes[0]] == ["x", "fill E[Δx]", "prototype T(fill)"]
    assert all(ax.get_title() == "" for ax in axes[1])
    for row in range(2):
        heat = drawn(axes[row, 1])
        assert np.array_equal(np.sign(heat), np.sign(fill[row, 0].numpy()))  # signed, not |.|
        assert np.array_equal(drawn(axes[row, 2]), prototype(fill[row : row + 1])[0, 0].numpy())
    _, axes = visualize_expected_fill(images, fill, mask=corner_mask())
    assert axes.shape == (2, 4) and axes[0, 3].get_title() == "M(x) + T(fill)"
    kept = corner_mask().bool().numpy()
    assert np.allclose(drawn(axes[0, 3])[kept], images[0, 0].numpy()[kept])


def test_prototypes_grid_one_per_class_and_unused_axes_off():
    prototypes = torch.rand(7, 1, SIZE, SIZE)
    figure, axes = visualize_prototypes(prototypes, titles=range(7), ncols=3)
    assert axes.shape == (3, 3)
    assert [ax.get_title() for ax in axes.flat][:7] == [str(i) for i in range(7)]
    assert [ax.axison for ax in axes.flat] == [True] * 7 + [False] * 2
    _, listed = visualize_prototypes(list(prototypes), ncols=3)
    assert all(np.array_equal(drawn(a), drawn(b)) for a, b in zip(axes.flat[:7], listed.flat[:7]))
    with pytest.raises(ValueError, match="titles"):
        visualize_prototypes(prototypes, titles=["a"])


def test_progressive_rows_are_blanks_predicted_so_far_and_images():
    k, batch = 4, 2
    groups = random_partition_masks(k, SIZE, SIZE, patch_size=2, generator=torch.Generator().manual_seed(0))
    images = torch.rand(k, batch, 1, SIZE, SIZE)
    labels = torch.tensor([[3, 1], [3, 7], [5, 7], [3, 7]])
    _, axes = visualize_progressive(images, groups, labels, example=1, class_names=list("abcdefgh"))
    assert axes.shape == (3, k)
    assert [ax.get_title() for ax in axes[0]] == [f"step {i + 1}\nŷ = {c}" for i, c in enumerate("bhhh")]
    union = torch.zeros(SIZE, SIZE, dtype=torch.bool)
    for i in range(k):
        union |= groups[i] == 0
        assert np.array_equal(drawn(axes[0, i]), (groups[i] == 0).float().numpy())
        assert np.array_equal(drawn(axes[1, i]), union.float().numpy())
        assert np.allclose(drawn(axes[2, i]), images[i, 1, 0].numpy())
    assert union.all()  # the last "predicted so far" panel is all white
    assert [axes[r, 0].get_ylabel() for r in range(3)] == ["blanks of M_i", "predicted so far", "image after step"]
    _, from_numpy = visualize_progressive(
        images.permute(0, 1, 3, 4, 2).numpy(), groups.numpy(), labels.numpy(), example=1
    )
    assert all(np.array_equal(drawn(a), drawn(b)) for a, b in zip(axes.flat, from_numpy.flat))
    _, with_input = visualize_progressive(images, groups, example=0, image=images[0])
    assert with_input.shape == (3, k + 1) and not with_input[0, 0].axison
    with pytest.raises(ValueError, match="groups"):
        visualize_progressive(images, groups[:3])


def test_parameter_grid_titles_rows_and_nested_lists():
    grid = torch.rand(2, 3, 1, SIZE, SIZE)
    _, axes = visualize_parameter_grid(grid, [0.25, 0.5], [1, 2, 4])
    assert [ax.get_title() for ax in axes[0]] == ["patch size p = 1", "patch size p = 2", "patch size p = 4"]
    assert [axes[r, 0].get_ylabel() for r in range(2)] == ["mask ratio η = 0.25", "mask ratio η = 0.5"]
    _, nested = visualize_parameter_grid([list(row) for row in grid], [0.25, 0.5], [1, 2, 4])
    assert all(np.array_equal(drawn(a), drawn(b)) for a, b in zip(axes.flat, nested.flat))
    with pytest.raises(ValueError, match="row_values"):
        visualize_parameter_grid(grid, [0.25], [1, 2, 4])


def test_comparison_columns_side_by_side():
    first, second = torch.rand(3, 1, SIZE, SIZE), torch.rand(3, 1, SIZE, SIZE)
    _, axes = visualize_comparison({"first order": first, "second order": second}, row_titles="abc")
    assert axes.shape == (3, 2)
    assert [ax.get_title() for ax in axes[0]] == ["first order", "second order"]
    assert np.allclose(drawn(axes[2, 1]), second[2, 0].numpy())
    with pytest.raises(ValueError, match="same number"):
        visualize_comparison({"a": first, "b": second[:2]})


def test_methods_one_row_per_example_drawn_by_captum():
    generator = torch.Generator().manual_seed(11)
    images = torch.rand(2, 1, SIZE, SIZE, generator=generator)
    maps = {
        "Saliency": torch.rand(2, 1, SIZE, SIZE, generator=generator),
        "MaskFill": torch.randn(2, 1, SIZE, SIZE, generator=generator),
        "Nothing": torch.zeros(2, 1, SIZE, SIZE),  # Captum cannot scale this one alone
    }
    _, axes = visualize_methods(images, maps, sign={"MaskFill": "all"})
    assert axes.shape == (2, 4)
    assert [ax.get_title() for ax in axes[0]] == ["image", "Saliency", "MaskFill", "Nothing"]
    for row in range(2):
        for col, (name, sign) in enumerate([("Saliency", "absolute_value"), ("MaskFill", "all")], start=1):
            _, reference = captum_viz.visualize_image_attr(
                maps[name][row].permute(1, 2, 0).numpy(), sign=sign, use_pyplot=False
            )
            assert np.array_equal(drawn(axes[row, col]), drawn(reference))
        assert (drawn(axes[row, 3]) == 0).all()
    # signed maps in the package's colours (red +, blue -), others in Captum's default
    assert axes[0, 2].get_images()[0].get_cmap().name == "bwr"
    assert axes[0, 1].get_images()[0].get_cmap().name == "Blues"
    _, axes = visualize_methods(images, maps, cmap={"Saliency": "Greens"})
    assert axes[0, 1].get_images()[0].get_cmap().name == "Greens"


def test_figure_arguments_follow_captum():
    image, mask, update = torch.rand(1, SIZE, SIZE), corner_mask(), signed_update_pattern()
    before = plt.get_fignums()
    figure, axes = visualize_fill(image, mask, update)
    assert plt.get_fignums() == before  # no pyplot figure unless use_pyplot=True
    own = Figure()
    own_axes = own.subplots(1, 3)
    figure, axes = visualize_fill(image, mask, update, plt_fig_axis=(own, own_axes))
    assert figure is own and list(axes[0]) == list(own_axes)
    with pytest.raises(ValueError, match="needs 1 x 3"):
        visualize_fill(image, mask, update, plt_fig_axis=(own, own_axes[:2]))


def test_use_pyplot_shows_once(monkeypatch):
    shown = []
    monkeypatch.setattr(plt, "show", lambda *a, **k: shown.append(1))
    figure, _ = visualize_comparison({"a": torch.rand(1, SIZE, SIZE)}, use_pyplot=True)
    assert shown == [1] and figure.number in plt.get_fignums()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_tensors_draw_like_cpu_tensors():
    image, mask, update = torch.rand(1, SIZE, SIZE), corner_mask(), signed_update_pattern()
    cpu, _ = visualize_fill(image, mask, update)
    cuda, _ = visualize_fill(image.cuda(), mask.cuda(), update.cuda())
    assert np.array_equal(render(cpu), render(cuda))


def test_per_channel_input_range_draws_what_the_unnormalized_image_draws():
    # a model that takes normalized RGB: the same picture as its [0, 1] image
    generator = torch.Generator().manual_seed(5)
    image = torch.rand(2, 3, SIZE, SIZE, generator=generator)
    update = torch.randn(2, 3, SIZE, SIZE, generator=generator)
    mean, std = torch.tensor([0.485, 0.456, 0.406]), torch.tensor([0.229, 0.224, 0.225])
    shape = (1, 3, 1, 1)
    low, high = (-mean / std).reshape(shape), ((1 - mean) / std).reshape(shape)
    normalized = (image - mean.reshape(shape)) / std.reshape(shape)
    _, plain = visualize_fill(image, corner_mask(), update)
    _, per_channel = visualize_fill(normalized, corner_mask(), update, input_range=(low, high), baselines=low)
    for row in range(2):
        for column in (0, 2):  # M(x) and M(x) + T(fill)
            assert np.allclose(drawn(plain[row, column]), drawn(per_channel[row, column]), atol=1e-5)
    with pytest.raises(ValueError, match="input_range must be a pair"):
        visualize_fill(image, corner_mask(), update, input_range=0.5)


def test_per_channel_input_range_draws_the_same_in_every_form():
    mean, std = torch.tensor([0.485, 0.456, 0.406]), torch.tensor([0.229, 0.224, 0.225])
    pixels = torch.rand(2, 3, 8, 8)
    normalized = (pixels - mean.reshape(1, 3, 1, 1)) / std.reshape(1, 3, 1, 1)
    flat = ((0 - mean) / std, (1 - mean) / std)
    shaped = tuple(end.reshape(1, 3, 1, 1) for end in flat)
    torch.testing.assert_close(to_unit_range(normalized, flat), pixels)
    torch.testing.assert_close(to_unit_range(normalized, shaped), pixels)
    torch.testing.assert_close(to_unit_range(normalized[0], shaped), pixels[0])
    with pytest.raises(ValueError, match="has 2 values, one per channel, but the images have 3"):
        to_unit_range(normalized, (torch.zeros(2), torch.ones(2)))


def drawn_panels(axes):
    """The arrays of every image drawn on ``axes``, panel by panel."""
    return [np.asarray(image.get_array()) for ax in axes.flat for image in ax.get_images()]


def assert_same_panels(ours, theirs):
    ours, theirs = drawn_panels(ours), drawn_panels(theirs)
    assert len(ours) == len(theirs)
    for a, b in zip(ours, theirs):
        assert np.array_equal(a, b)


@pytest.mark.parametrize(
    ("setting", "loose"),
    [
        (TransformSetting(), {}),
        (TransformSetting("min_max", 0.3), {"normalization": "min_max", "threshold": 0.3}),
        (TransformSetting(binarized=False), {"binarized": False}),
    ],
)
def test_transform_draws_exactly_what_the_loose_keywords_draw(softmax_regression, setting, loose):
    generator = torch.Generator().manual_seed(8)
    images = torch.rand(2, 1, SIZE, SIZE, generator=generator)
    update = torch.randn(2, 1, SIZE, SIZE, generator=generator)
    mask = corner_mask()
    _, given = visualize_fill(images, mask, update, transform=setting)
    _, by_keywords = visualize_fill(images, mask, update, **loose)
    assert_same_panels(given, by_keywords)
    _, given = visualize_expected_fill(images, update, mask=mask, transform=setting)
    _, by_keywords = visualize_expected_fill(images, update, mask=mask, **loose)
    assert_same_panels(given, by_keywords)
    _, given = visualize_mask_fill(softmax_regression, images, mask, target=2, transform=setting)
    _, by_keywords = visualize_mask_fill(softmax_regression, images, mask, target=2, **loose)
    assert_same_panels(given, by_keywords)


def test_transform_and_loose_keywords_at_once_are_refused():
    images, update = torch.rand(1, 1, SIZE, SIZE), torch.randn(1, 1, SIZE, SIZE)
    with pytest.raises(TypeError, match="give transform= or threshold/binarized/normalization, not both"):
        visualize_fill(images, corner_mask(), update, transform=TransformSetting(), threshold=0.5)
    with pytest.raises(TypeError, match="not both"):
        visualize_expected_fill(images, update, transform=TransformSetting(), binarized=False)


def test_signed_overlay_cmap_has_the_name_asked_for():
    assert signed_overlay_cmap().name == "signed_overlay"
    assert signed_overlay_cmap("green", "red", name="captum_colours").name == "captum_colours"
    assert SIGNED_OVERLAY_CMAP.name == "fillblanks_blue_clear_red"


@pytest.mark.filterwarnings("ignore:the update holds 1 non-finite")  # T's own warning, tested with T
@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_a_non_finite_update_is_drawn_as_zero_with_a_warning_not_a_crash(value):
    update = torch.randn(1, SIZE, SIZE, generator=torch.Generator().manual_seed(0))
    clean = update.clone()
    update[0, 0, 0] = value  # inside the corner blank
    clean[0, 0, 0] = 0.0
    with pytest.warns(UserWarning, match=r"update holds 1 non-finite values \(NaN or inf\) in example\(s\) \[0\]"):
        _, axes = visualize_fill(torch.zeros(1, SIZE, SIZE), corner_mask(), update)
    _, expected = visualize_fill(torch.zeros(1, SIZE, SIZE), corner_mask(), clean)
    np.testing.assert_array_equal(axes[0, 1].get_images()[-1].get_array(), expected[0, 1].get_images()[-1].get_array())
    with pytest.warns(UserWarning, match=r"fill holds 1 non-finite values"):
        _, axes = visualize_expected_fill(torch.zeros(1, SIZE, SIZE), update)
    _, expected = visualize_expected_fill(torch.zeros(1, SIZE, SIZE), clean)
    np.testing.assert_array_equal(axes[0, 1].get_images()[-1].get_array(), expected[0, 1].get_images()[-1].get_array())
    with pytest.warns(UserWarning, match=r"attributions\['fill'\] holds 1 non-finite values"):
        visualize_methods(torch.zeros(1, SIZE, SIZE), {"fill": update}, sign="all")


def test_an_empty_batch_of_prototypes_gets_a_clear_error():
    with pytest.raises(ValueError, match=r"prototypes of shape \(0, 1, 6, 6\) holds no image"):
        visualize_prototypes(torch.zeros(0, 1, 6, 6))
    with pytest.raises(ValueError, match="holds no image"):
        visualize_comparison({"first order": np.zeros((0, 6, 6, 1))})
