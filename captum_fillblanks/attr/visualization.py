"""The paper's figures as one-call functions, on top of ``captum.attr.visualization``.

Every function draws one layout and returns ``(figure, axes)`` like Captum's
``visualize_image_attr``; ``axes`` is always a 2-D ``numpy`` array of
:class:`~matplotlib.axes.Axes`, ``(rows, columns)``, so ``axes[0, 1]`` is the second
panel of the first row in every layout. Heat maps are drawn by Captum's own
``visualize_image_attr`` (its normalization, outlier clipping and sign handling); this
module adds the panels Captum has no method for (masks, masked and filled images) and
the layouts.

Arguments shared by every function:

- **Images** may be tensors on any device (detached and copied to the CPU for drawing)
  or ``numpy`` arrays, grayscale or RGB. Tensors are channels first: ``(H, W)``,
  ``(C, H, W)`` or a batch ``(B, C, H, W)``. ``numpy`` arrays may be channels last as
  matplotlib and Captum draw them, ``(H, W, C)`` / ``(B, H, W, C)``, or channels first:
  an array whose last dimension is 1 or 3 is read as channels last, any other as channels
  first. ``C`` must be 1 (grayscale) or 3 (RGB). Anything else raises a ``ValueError``
  that says which shape was given.
- **Masks** follow the package's convention: ``(H, W)``, ``1`` = kept, ``0`` = blank
  (also ``(1, H, W)``, or one per example ``(B, H, W)``).
- ``input_range`` (tuple): the values of the model's input that mean background and
  ink (see :func:`~captum_fillblanks.attr.transforms.to_input_range`), each a number or a
  tensor of one value per channel (``(C,)`` or ``(1, C, 1, 1)``, for normalized RGB). Images are
  drawn with ``input_range[0]`` as black and ``input_range[1]`` as white, per channel;
  values outside are clipped. Default: ``(0.0, 1.0)``.
- ``fig_size`` (tuple, optional): size of a figure created here, in inches. Default:
  about 2 inches per panel.
- ``plt_fig_axis`` (tuple, optional): ``(figure, axes)`` to draw into instead of a new
  figure, as in Captum; ``axes`` holds exactly one ``Axes`` per panel of the layout (any
  nesting, row-major), or is ``None`` to let the layout add its own subplots to
  ``figure``. Default: None.
- ``use_pyplot`` (bool): as in Captum, ``True`` creates the figure with ``pyplot`` and
  calls ``plt.show()``; ``False`` creates a bare :class:`~matplotlib.figure.Figure`, safe
  on headless machines, and shows nothing. Unlike Captum the default is ``False``.

Sign colours follow the paper: positive red, negative blue. Captum's own
``visualize_image_attr`` draws positive green and negative red, so red means the
opposite there. So that a figure of this module is not misread beside one of Captum's:

- a signed map (and every map of :func:`visualize_methods` drawn through a colour map)
  has a legend under its panel in the last row naming its colours, taken from the
  colour map actually used (``sign_legend=False`` leaves it out);
- every function that draws a signed map takes ``cmap``: Captum's colours are
  ``cmap=signed_overlay_cmap("green", "red")`` for the overlay of :func:`visualize_fill`
  and ``cmap=CAPTUM_SIGNED_CMAP`` for the heat maps of :func:`visualize_expected_fill` and
  :func:`visualize_methods`.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from captum.attr import visualization as captum_viz
from matplotlib import colormaps
from matplotlib import pyplot as plt
from matplotlib.axes import Axes
from matplotlib.colors import Colormap, LinearSegmentedColormap, to_rgb
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from torch import Tensor

from ._problem import caller_stacklevel
from .mask_fill import MaskFill
from .masks import apply_masks, blank_stack
from .transforms import (
    InputRange,
    TransformSetting,
    filled_image,
    prototype,
    range_end,
    resolve_transform,
    signed_update,
)

__all__ = [
    "visualize_fill",
    "visualize_mask_fill",
    "visualize_expected_fill",
    "visualize_prototypes",
    "visualize_progressive",
    "visualize_parameter_grid",
    "visualize_comparison",
    "visualize_methods",
    "SIGNED_OVERLAY_CMAP",
    "CAPTUM_SIGNED_CMAP",
    "signed_overlay_cmap",
    "to_unit_range",
]

ImageLike = Tensor | np.ndarray
FigureAxes = tuple[Figure, np.ndarray]
PltFigAxis = tuple[Figure, Any] | None


def signed_overlay_cmap(
    positive: Any = "red", negative: Any = "blue", *, name: str = "signed_overlay"
) -> LinearSegmentedColormap:
    """A colour map for an overlay of a signed map on Captum's ``sign="all"`` scale
    ``[-1, 1]``: ``negative`` below zero, ``positive`` above, transparent at zero, so that
    overlaid on an image it colours only where the map is nonzero (paper Fig. 1).

    The opacity rises steeply with the magnitude (0.5 at a tenth of the scale) so that
    small values stay visible next to the largest.

    Args:
        positive (color, optional): any matplotlib colour for values above zero.
            Default: "red".
        negative (color, optional): any matplotlib colour for values below zero.
            Default: "blue".
        name (str, optional): the colour map's name. Default: "signed_overlay".

    Returns:
        LinearSegmentedColormap: the overlay map.

    Examples::

        >>> captum_colours = signed_overlay_cmap("green", "red")  # Captum's sign colours
        >>> [round(float(c), 3) for c in captum_colours(1.0)]  # the largest positive value
        [0.0, 0.502, 0.0, 1.0]
        >>> float(captum_colours(0.5)[3])  # zero: transparent
        0.0
    """
    rgb = {}
    for argument, colour in (("positive", positive), ("negative", negative)):
        try:
            rgb[argument] = to_rgb(colour)
        except ValueError:
            raise ValueError(f"{argument} must be a matplotlib colour, got {colour!r}") from None
    channels = {
        key: [(0.0, low, low), (0.5, low, high), (1.0, high, high)]
        for key, low, high in zip(("red", "green", "blue"), rgb["negative"], rgb["positive"])
    }
    # zero stays fully transparent in the 256-entry table (entries 127 and 128)
    channels["alpha"] = [
        (0.0, 1.0, 1.0),
        (0.35, 0.8, 0.8),
        (0.45, 0.5, 0.5),
        (0.495, 0.0, 0.0),
        (0.505, 0.0, 0.0),
        (0.55, 0.5, 0.5),
        (0.65, 0.8, 0.8),
        (1.0, 1.0, 1.0),
    ]
    return LinearSegmentedColormap(name, channels)


#: :func:`signed_overlay_cmap` in the paper's colours: positive red, negative blue.
SIGNED_OVERLAY_CMAP = signed_overlay_cmap("red", "blue", name="fillblanks_blue_clear_red")

#: Captum's own colour map for ``sign="all"`` (``visualize_image_attr``'s default): red
#: negative, white zero, green positive. Pass it as ``cmap`` to draw a heat map in
#: Captum's colours.
CAPTUM_SIGNED_CMAP = LinearSegmentedColormap.from_list("RdWhGn", ["red", "white", "green"])

_PANEL_INCHES = 2.0


# ---------------------------------------------------------------------------------------
# Inputs: everything becomes a float32 CPU tensor (N, C, H, W) before drawing.


def _as_tensor(value: Any, name: str) -> tuple[Tensor, bool]:
    """``value`` as a float32 CPU tensor, and whether its channels may be last (numpy)."""
    if isinstance(value, Tensor):
        return value.detach().to("cpu", torch.float32), False
    if isinstance(value, (np.ndarray, list, tuple)):
        array = np.asarray(value, dtype=np.float32)
        return torch.from_numpy(np.ascontiguousarray(array)), True
    raise TypeError(f"{name} must be a torch.Tensor or a numpy array, got {type(value).__name__}")


def _images(value: Any, name: str) -> Tensor:
    """Any accepted image form as a ``(N, C, H, W)`` float32 CPU tensor."""
    x, from_numpy = _as_tensor(value, name)
    shape = tuple(x.shape)
    channels_last = from_numpy and x.dim() >= 3 and shape[-1] in (1, 3)
    if x.dim() == 2:
        x = x[None, None]
    elif x.dim() == 3:
        x = x.permute(2, 0, 1)[None] if channels_last else x[None]
    elif x.dim() == 4:
        x = x.permute(0, 3, 1, 2) if channels_last else x
    else:
        raise ValueError(
            f"{name} of shape {shape} cannot be drawn: expected an image (H, W) or "
            "(C, H, W), or a batch (B, C, H, W) (numpy arrays also (H, W, C) or "
            f"(B, H, W, C)); got {x.dim()} dimensions"
        )
    if x.shape[1] not in (1, 3):
        raise ValueError(
            f"{name} of shape {shape} has {x.shape[1]} channels; expected 1 (grayscale) or "
            "3 (RGB), channels first for tensors. A batch of grayscale images (B, H, W) "
            "needs its channel dimension: images.unsqueeze(1)"
        )
    if x.shape[0] == 0:
        raise ValueError(f"{name} of shape {shape} holds no image: give at least one")
    return x


def _finite_map(values: Tensor, name: str) -> Tensor:
    """A map for a heat-map panel with its non-finite values (NaN or inf) drawn as 0,
    as the transforms draw them as background, with a warning that counts them (Captum
    cannot scale a map that holds them)."""
    finite = torch.isfinite(values)
    if bool(finite.all()):
        return values
    per_example = (~finite).reshape(values.shape[0], -1).sum(1).tolist()
    warnings.warn(
        f"{name} holds {sum(per_example)} non-finite values (NaN or inf) in example(s) "
        f"{[i for i, c in enumerate(per_example) if c]}; its heat map draws them as 0",
        UserWarning,
        stacklevel=caller_stacklevel(),
    )
    return torch.where(finite, values, torch.zeros_like(values))


def _like(value: Any, name: str, images: Tensor) -> Tensor:
    """A per-pixel map (update, fill, attribution) checked against ``images``, expanded
    to its batch size; it keeps its own channel count (1 or that of the images)."""
    x = _images(value, name)
    n, c, h, w = images.shape
    if x.shape[-2:] != (h, w) or x.shape[0] not in (1, n) or x.shape[1] not in (1, c):
        raise ValueError(
            f"{name} of shape {tuple(_as_tensor(value, name)[0].shape)} does not match the "
            f"images, {n} of shape ({c}, {h}, {w}): give one map per image (or one for "
            "all), with the images' height and width"
        )
    return x.expand(n, -1, -1, -1)


def _blanks(mask: Any, name: str, images: Tensor) -> Tensor:
    """A mask (``1`` kept, ``0`` blank), or one per image, as a ``(N, 1, H, W)`` bool
    tensor, True = blank (:func:`~captum_fillblanks.attr.masks.blank_stack`)."""
    m, _ = _as_tensor(mask, name)
    n, _, h, w = images.shape
    stack = blank_stack(m, (1, h, w), name)
    if stack.shape[0] not in (1, n):
        raise ValueError(
            f"{name} of shape {tuple(m.shape)} does not match the image(s), {n} of height and width "
            f"({h}, {w}): expected a mask (H, W) = ({h}, {w}), or one per image ({n}, {h}, {w})"
        )
    return stack.expand(n, 1, h, w)


def _check_range(input_range: InputRange) -> tuple[Tensor, Tensor]:
    try:
        low, high = input_range
        low, high = (torch.as_tensor(v).detach().to("cpu", torch.float32) for v in (low, high))
    except (TypeError, ValueError, RuntimeError):
        raise ValueError(
            f"input_range must be a pair (background, ink) of numbers or tensors, got {type(input_range).__name__}"
        ) from None
    if bool((high == low).any()):
        raise ValueError(f"input_range must hold two different values, got {input_range}")
    return low, high


def to_unit_range(images: Tensor, input_range: InputRange) -> Tensor:
    """Input values mapped to display values: ``input_range`` -> ``[0, 1]``, clipped.
    Per-channel ends ``(1, C, 1, 1)`` also fit a single image ``(C, H, W)``."""
    low, high = _check_range(input_range)
    low, high = (range_end(end, images, which) for end, which in ((low, "background"), (high, "ink")))
    return ((images - low) / (high - low)).clamp(0.0, 1.0)


def _masked(images: Tensor, blank: Tensor, baselines: float | Tensor) -> Tensor:
    """``M(x)`` for drawing, on the CPU."""
    if isinstance(baselines, Tensor):
        baselines = baselines.detach().cpu()
    return apply_masks(images, blank, baselines)


def _hwc(image: Tensor) -> np.ndarray:
    return image.permute(1, 2, 0).numpy()


# ---------------------------------------------------------------------------------------
# Figures and panels.


def _figure(
    plt_fig_axis: PltFigAxis,
    use_pyplot: bool,
    nrows: int,
    ncols: int,
    fig_size: tuple[float, float] | None,
) -> FigureAxes:
    """Captum's semantics for ``plt_fig_axis`` and ``use_pyplot``, for a grid of panels."""
    if plt_fig_axis is not None:
        figure, axes = plt_fig_axis
        if axes is None:
            axes = figure.subplots(nrows, ncols, squeeze=False)
        axes = np.asarray(axes, dtype=object)
        if axes.size != nrows * ncols:
            raise ValueError(
                f"plt_fig_axis holds {axes.size} axes; this layout needs {nrows} x {ncols} = "
                f"{nrows * ncols} (or pass (figure, None) to add them to the figure)"
            )
        return figure, axes.reshape(nrows, ncols)
    size = fig_size or (_PANEL_INCHES * ncols, _PANEL_INCHES * nrows + 0.3)
    figure = (plt.figure if use_pyplot else Figure)(figsize=size, layout="constrained")
    return figure, figure.subplots(nrows, ncols, squeeze=False)


def _finish(figure: Figure, axes: np.ndarray, use_pyplot: bool) -> FigureAxes:
    if use_pyplot:
        plt.show()
    return figure, axes


def _plain(ax: Axes, title: str | None = None) -> None:
    # ticks off but the frame kept, so a row label (ylabel) still shows
    ax.set_xticks([])
    ax.set_yticks([])
    if title is not None:
        ax.set_title(title)


def _show_image(ax: Axes, image: Tensor, title: str | None = None) -> None:
    """Draw one ``(C, H, W)`` image of display values in ``[0, 1]``."""
    if image.shape[0] == 1:
        ax.imshow(image[0].numpy(), cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest")
    else:
        ax.imshow(_hwc(image), interpolation="nearest")
    _plain(ax, title)


def _show_white(ax: Axes, white: Tensor, title: str | None = None) -> None:
    """Draw an ``(H, W)`` bool map: True white, False black."""
    ax.imshow(white.float().numpy(), cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest")
    _plain(ax, title)


def _rgb(image: Tensor) -> np.ndarray:
    """``(C, H, W)`` display values as an ``(H, W, 3)`` array, the form every Captum
    method accepts as ``original_image``."""
    return _hwc(image.expand(3, -1, -1))


#: Captum's colour map for each ``sign`` when it is given none (``visualize_image_attr``).
_CAPTUM_CMAPS = {
    "all": CAPTUM_SIGNED_CMAP,
    "positive": "Greens",
    "negative": "Reds",
    "absolute_value": "Blues",
}

#: What the legend names for each ``sign``: a label and the end of the colour map that
#: shows it (Captum scales ``"all"`` to [-1, 1] and the others, negative included, to
#: [0, 1] with 1 the strongest).
_SIGN_LEGEND = {
    "all": (("+ positive", 1.0), ("− negative", 0.0)),
    "positive": (("+ positive", 1.0),),
    "negative": (("− negative", 1.0),),
    "absolute_value": (("|value|", 1.0),),
}


#: Captum's visualization methods for a map; the first two draw it through a colour map,
#: the others scale the image itself (so no colour stands for a sign there, and they
#: cannot show both signs).
_CAPTUM_METHODS = ("heat_map", "blended_heat_map", "masked_image", "alpha_scaling")
_COLOUR_MAP_METHODS = _CAPTUM_METHODS[:2]


def _check_method(method: str, sign: str, argument: str = "sign") -> None:
    if method not in _CAPTUM_METHODS:
        raise ValueError(f"method must be one of {list(_CAPTUM_METHODS)}, got {method!r}")
    if sign not in _SIGN_LEGEND:
        raise ValueError(f"{argument} must be one of {sorted(_SIGN_LEGEND)}, got {sign!r}")
    if sign == "all" and method not in _COLOUR_MAP_METHODS:
        raise ValueError(f'method={method!r} cannot show both signs: give {argument} other than "all"')


def _colormap(cmap: Any, sign: str, argument: str = "cmap") -> Colormap:
    """The colour map a panel of ``sign`` is drawn with: the caller's, or Captum's default."""
    cmap = _CAPTUM_CMAPS[sign] if cmap is None else cmap
    if isinstance(cmap, Colormap):
        return cmap
    try:
        return colormaps[cmap]
    except (KeyError, TypeError):
        raise ValueError(
            f"{argument} must be a matplotlib Colormap or the name of one in matplotlib.colormaps, got {cmap!r}"
        ) from None


def _sign_legend(ax: Axes, cmap: Colormap, sign: str, alpha: float = 1.0) -> None:
    """Under ``ax``, one swatch per colour that stands for a sign, taken from ``cmap``
    at the opacity it is drawn with."""
    handles = [
        Patch(facecolor=cmap(end), alpha=alpha, edgecolor="0.6", linewidth=0.5, label=label)
        for label, end in _SIGN_LEGEND[sign]
    ]
    ax.legend(
        handles=handles,
        loc="upper center",
        bbox_to_anchor=(0.5, 0.0),
        ncol=len(handles),
        frameon=False,
        fontsize="small",
        handlelength=1.0,
        handleheight=1.0,
        handletextpad=0.4,
        columnspacing=0.8,
        borderaxespad=0.3,
    )


def _captum_panel(
    figure: Figure,
    ax: Axes,
    attribution: Tensor,
    image: Tensor,
    *,
    method: str,
    sign: str,
    title: str | None,
    cmap: Colormap,
    **captum_kwargs: Any,
) -> None:
    """One panel drawn by Captum's ``visualize_image_attr`` (attribution ``(C, H, W)``,
    image ``(C, H, W)`` in display values)."""
    combined = attribution.sum(0)  # Captum sums the channels before it scales the map
    shown = {"positive": combined > 0, "negative": combined < 0}.get(sign, combined != 0)
    if not bool(shown.any()):
        # Captum cannot scale a map with nothing of this sign: draw what it would draw
        # for a map of zeros
        zeros = np.zeros(attribution.shape[-2:])
        scale = {"cmap": cmap, "vmin": -1.0 if sign == "all" else 0.0, "vmax": 1.0}
        if method == "heat_map":
            ax.imshow(zeros, **scale)
            _plain(ax, title)
        elif method == "blended_heat_map":  # gray image under the map's zero colour
            _show_image(ax, image.mean(0, keepdim=True), title)
            ax.imshow(zeros, alpha=captum_kwargs.get("alpha_overlay", 0.5), **scale)
        elif method == "masked_image":  # the image times zero
            _show_image(ax, torch.zeros_like(image), title)
        else:  # alpha_scaling: every pixel fully transparent
            ax.imshow(np.zeros((*attribution.shape[-2:], 4)))
            _plain(ax, title)
        return
    captum_viz.visualize_image_attr(
        _hwc(attribution),
        original_image=_rgb(image),
        method=method,
        sign=sign,
        plt_fig_axis=(figure, ax),
        title=title,
        cmap=cmap,
        use_pyplot=False,
        **captum_kwargs,
    )
    for drawn in ax.get_images():
        drawn.set_interpolation("nearest")
    if method == "blended_heat_map":
        # Captum scales the gray background to its own min..max; keep black = 0, white = 1
        ax.get_images()[0].set_clim(0, 255)


def _label_text(label: Any, class_names: Sequence[str] | None) -> str:
    label = int(label) if isinstance(label, (Tensor, np.integer)) else label
    return str(class_names[label]) if class_names is not None else str(label)


def _value_text(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


# ---------------------------------------------------------------------------------------
# Layouts.


def visualize_fill(
    image: ImageLike,
    mask: ImageLike,
    update: ImageLike,
    *,
    baselines: float | Tensor = 0.0,
    input_range: InputRange = (0.0, 1.0),
    transform: TransformSetting | None = None,
    threshold: float | None = None,
    binarized: bool | None = None,
    normalization: str | None = None,
    show_inputs: bool = False,
    titles: Sequence[str] | None = None,
    cmap: Any = None,
    sign_legend: bool = True,
    outlier_perc: float = 2,
    alpha_overlay: float = 1.0,
    fig_size: tuple[float, float] | None = None,
    plt_fig_axis: PltFigAxis = None,
    use_pyplot: bool = False,
) -> FigureAxes:
    r"""How the model fills the blanks of one mask (paper Fig. 1).

    One row per image, with the panels:

    1. ``M(x)``: the masked input;
    2. the update ``delta`` at the blanks over ``M(x)``: by default its positive part
       red, its negative part blue, by Captum's ``blended_heat_map`` with ``sign="all"``
       and :data:`SIGNED_OVERLAY_CMAP` (transparent where the update is zero, so kept
       pixels show ``M(x)`` unchanged), with a legend of the two colours under the last
       row;
    3. ``M(x) + T(delta)``: the blanks filled with the transformed update
       (:func:`~captum_fillblanks.attr.transforms.filled_image`).

    The update is what ``MaskFill(model).attribute(x, masks=mask, selection="all")``
    returns for that one mask; :func:`visualize_mask_fill` computes it and calls this.

    Args:
        image (Tensor or ndarray): ``x``, one image or a batch (see the module docs).
        mask (Tensor or ndarray): ``m``, ``(H, W)`` with ``1`` kept and ``0`` blank, or
            one per image ``(B, H, W)``.
        update (Tensor or ndarray): ``delta``, shaped like ``image`` (one channel is
            enough); values outside the blanks are ignored.
        baselines (float or Tensor, optional): what a blank holds, ``b`` in
            ``M(x) = m * x + (1 - m) * b``, as passed to ``MaskFill``. Default: 0.
        input_range (tuple, optional): see the module docs; also the range ``T`` maps
            into. Default: ``(0.0, 1.0)``.
        transform (TransformSetting, optional): the setting of ``T``: normalization
            (``"max_abs"`` or ``"min_max"``, :mod:`captum_fillblanks.attr.transforms`),
            threshold ``tau``, and whether to binarize (``False`` draws ``T`` without the
            threshold). Default: None (``TransformSetting()``, the package's default
            ``T``: see :class:`~captum_fillblanks.attr.transforms.TransformSetting`).
        threshold, binarized, normalization (optional): a convenience for the same
            setting, field by field
            (:func:`~captum_fillblanks.attr.transforms.resolve_transform`); not together
            with ``transform``. Default: None (the default of each field).
        show_inputs (bool, optional): add two first panels, the image ``x`` and the
            blanks of the mask (white). Default: False.
        titles (sequence of str, optional): one title per panel of a row, replacing the
            defaults. Default: None.
        cmap (str or Colormap, optional): colour map of the update on Captum's
            ``[-1, 1]`` scale; ``None`` is :data:`SIGNED_OVERLAY_CMAP` (positive red,
            negative blue). :func:`signed_overlay_cmap` makes one in other colours that
            stays transparent at zero, e.g. ``signed_overlay_cmap("green", "red")`` for
            Captum's sign colours; an ordinary colour map is opaque at zero too and
            covers the kept pixels. Default: None.
        sign_legend (bool, optional): name the colour of each sign in a legend under
            the update panel of the last row. Default: True.
        outlier_perc (float, optional): Captum's ``outlier_perc`` for the update's colour
            scale. Default: 2.
        alpha_overlay (float, optional): opacity of the overlay at the largest updates.
            Default: 1.0.
        fig_size, plt_fig_axis, use_pyplot: see the module docs.

    Returns:
        (Figure, ndarray): the figure and its axes, ``(B, 3)`` (``(B, 5)`` with
        ``show_inputs``).

    Examples::

        >>> import torch
        >>> from captum_fillblanks.attr.visualization import visualize_fill
        >>> image = torch.rand(1, 28, 28)
        >>> mask = torch.ones(28, 28); mask[10:18, 10:18] = 0
        >>> figure, axes = visualize_fill(image, mask, torch.randn(1, 28, 28))
        >>> axes.shape
        (1, 3)
    """
    setting = resolve_transform(transform, threshold=threshold, binarized=binarized, normalization=normalization)
    images = _images(image, "image")
    blank = _blanks(mask, "mask", images)
    delta = _like(update, "update", images)
    colours = _colormap(SIGNED_OVERLAY_CMAP if cmap is None else cmap, "all")
    masked = _masked(images, blank, baselines)
    positive, negative = signed_update(delta, blank)
    signed = _finite_map(positive - negative, "update")
    filled = filled_image(masked, delta.expand_as(images), blank, input_range=input_range, transform=setting)
    defaults = ["M(x)", "Δx", "M(x) + T(Δx)"]
    if show_inputs:
        defaults[:0] = ["x", "blanks of M"]
    titles = _check_titles(titles, defaults)

    figure, axes = _figure(plt_fig_axis, use_pyplot, images.shape[0], len(defaults), fig_size)
    masked_unit, filled_unit = to_unit_range(masked, input_range), to_unit_range(filled, input_range)
    for row in range(images.shape[0]):
        panels, names = list(axes[row]), list(titles if row == 0 else [None] * len(titles))
        if show_inputs:
            _show_image(panels.pop(0), to_unit_range(images[row], input_range), names.pop(0))
            _show_white(panels.pop(0), blank[row, 0], names.pop(0))
        _show_image(panels[0], masked_unit[row], names[0])
        _captum_panel(
            figure,
            panels[1],
            signed[row],
            masked_unit[row],
            method="blended_heat_map",
            sign="all",
            title=names[1],
            cmap=colours,
            outlier_perc=outlier_perc,
            alpha_overlay=alpha_overlay,
        )
        _show_image(panels[2], filled_unit[row], names[2])
        if sign_legend and row == images.shape[0] - 1:
            _sign_legend(panels[1], colours, "all", alpha=alpha_overlay)
    return _finish(figure, axes, use_pyplot)


def visualize_mask_fill(
    forward_func: Callable,
    image: Tensor,
    mask: Tensor,
    target: Any = None,
    *,
    additional_forward_args: Any = None,
    baselines: float | Tensor = 0.0,
    loss: Any = "cross_entropy",
    step_size: float = 1.0,
    **visualize_kwargs: Any,
) -> FigureAxes:
    """Fill the caller's mask with :class:`~captum_fillblanks.MaskFill`, then draw it
    with :func:`visualize_fill` (paper Fig. 1 in one call).

    Runs ``MaskFill(forward_func).attribute(image, target, additional_forward_args,
    baselines, masks=mask, selection="all", loss=loss, step_size=step_size)``, whose
    result for a single mask is the update at its blanks.

    Args:
        forward_func (Callable): the model.
        image (Tensor): ``(C, H, W)`` or a batch ``(B, C, H, W)``, on the model's device,
            in the model's input form.
        mask (Tensor or ndarray): one ``(H, W)`` mask, ``1`` kept, ``0`` blank.
        target, additional_forward_args, baselines, loss, step_size: as in
            :meth:`MaskFill.attribute`. Default: None, None, 0, "cross_entropy", 1.
        **visualize_kwargs: passed to :func:`visualize_fill` (``input_range``,
            ``transform`` or ``threshold``, ``binarized``, ``normalization``,
            ``show_inputs``, ``cmap``, ``sign_legend``, ``plt_fig_axis``, ...).

    Returns:
        (Figure, ndarray): as :func:`visualize_fill`.

    Examples::

        >>> import torch
        >>> net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 10)).eval()
        >>> mask = torch.ones(28, 28); mask[:, :14] = 0
        >>> figure, axes = visualize_mask_fill(net, torch.rand(1, 28, 28), mask, target=3)
    """
    if not isinstance(image, Tensor):
        raise TypeError(f"image must be a Tensor (the model's input), got {type(image).__name__}")
    if image.dim() not in (3, 4):
        raise ValueError(f"image must be (C, H, W) or (B, C, H, W), got shape {tuple(image.shape)}")
    batch = image if image.dim() == 4 else image[None]
    mask_tensor = torch.as_tensor(np.asarray(mask) if not isinstance(mask, Tensor) else mask)
    if blank_stack(mask_tensor, batch.shape[1:], "mask").shape[0] != 1:
        raise ValueError(
            f"mask must be one (H, W) mask, got shape {tuple(mask_tensor.shape)}; for a "
            "stack of masks MaskFill returns their average, not one update per mask"
        )
    mask_tensor = mask_tensor.to(device=batch.device, dtype=batch.dtype).reshape(batch.shape[-2:])
    update = MaskFill(forward_func).attribute(
        batch,
        target=target,
        additional_forward_args=additional_forward_args,
        baselines=baselines,
        masks=mask_tensor,
        selection="all",
        loss=loss,
        step_size=step_size,
    )
    return visualize_fill(batch, mask_tensor, update, baselines=baselines, **visualize_kwargs)


def visualize_expected_fill(
    image: ImageLike,
    fill: ImageLike,
    *,
    mask: ImageLike | None = None,
    baselines: float | Tensor = 0.0,
    input_range: InputRange = (0.0, 1.0),
    transform: TransformSetting | None = None,
    threshold: float | None = None,
    binarized: bool | None = None,
    normalization: str | None = None,
    titles: Sequence[str] | None = None,
    cmap: Any = "bwr",
    sign_legend: bool = True,
    outlier_perc: float = 2,
    fig_size: tuple[float, float] | None = None,
    plt_fig_axis: PltFigAxis = None,
    use_pyplot: bool = False,
) -> FigureAxes:
    r"""An example and the model's expected fill of it (paper Fig. 2, one example per row).

    Panels: the image ``x``; the fill ``E[delta]`` as a signed heat map (Captum's
    ``heat_map`` with ``sign="all"``; by default red positive, blue negative, named in a
    legend under the last row); the prototype
    ``T(fill)`` over all pixels (:func:`~captum_fillblanks.attr.transforms.prototype`); and,
    if ``mask`` is given, ``M(x) + T(fill)`` with the fill normalized over that mask's
    blanks (section 4.1's visualization).

    Args:
        image (Tensor or ndarray): ``x``, one image or a batch.
        fill (Tensor or ndarray): what ``MaskFill.attribute`` returned for ``image``.
        mask (Tensor or ndarray, optional): a mask ``(H, W)`` (``1`` kept, ``0`` blank)
            or one per image, for the fourth panel. Default: None.
        baselines (float or Tensor, optional): ``b`` of ``M(x)``. Default: 0.
        input_range, transform: of ``T``, as in :func:`visualize_fill`.
        threshold, binarized, normalization (optional): the convenience for
            ``transform``, as in :func:`visualize_fill`.
        titles (sequence of str, optional): one per panel of a row. Default: None.
        cmap (str or Colormap, optional): colour map of the heat map on Captum's
            ``[-1, 1]`` scale, e.g. :data:`CAPTUM_SIGNED_CMAP` for Captum's colours
            (positive green, negative red). Default: "bwr" (positive red, negative
            blue, as the paper).
        sign_legend (bool, optional): name the colour of each sign in a legend under
            the heat map of the last row. Default: True.
        outlier_perc (float, optional): Captum's ``outlier_perc``. Default: 2.
        fig_size, plt_fig_axis, use_pyplot: see the module docs.

    Returns:
        (Figure, ndarray): axes ``(B, 3)``, or ``(B, 4)`` with ``mask``.

    Examples::

        >>> import torch
        >>> figure, axes = visualize_expected_fill(torch.rand(2, 1, 28, 28), torch.randn(2, 1, 28, 28))
        >>> axes.shape
        (2, 3)
    """
    setting = resolve_transform(transform, threshold=threshold, binarized=binarized, normalization=normalization)
    images = _images(image, "image")
    fills = _like(fill, "fill", images)
    colours = _colormap(cmap, "all")
    protos = prototype(fills, input_range=input_range, transform=setting)
    defaults = ["x", "fill E[Δx]", "prototype T(fill)"]
    if mask is not None:
        blank = _blanks(mask, "mask", images)
        masked = _masked(images, blank, baselines)
        paper_style = filled_image(masked, fills.expand_as(images), blank, input_range=input_range, transform=setting)
        defaults.append("M(x) + T(fill)")
    titles = _check_titles(titles, defaults)
    heat = _finite_map(fills, "fill")

    figure, axes = _figure(plt_fig_axis, use_pyplot, images.shape[0], len(defaults), fig_size)
    images_unit = to_unit_range(images, input_range)
    for row in range(images.shape[0]):
        names = titles if row == 0 else [None] * len(titles)
        _show_image(axes[row, 0], images_unit[row], names[0])
        _captum_panel(
            figure,
            axes[row, 1],
            heat[row],
            images_unit[row],
            method="heat_map",
            sign="all",
            title=names[1],
            cmap=colours,
            outlier_perc=outlier_perc,
        )
        if sign_legend and row == images.shape[0] - 1:
            _sign_legend(axes[row, 1], colours, "all")
        _show_image(axes[row, 2], to_unit_range(protos[row], input_range), names[2])
        if mask is not None:
            _show_image(axes[row, 3], to_unit_range(paper_style[row], input_range), names[3])
    return _finish(figure, axes, use_pyplot)


def visualize_prototypes(
    prototypes: ImageLike | Sequence[ImageLike],
    titles: Sequence[Any] | None = None,
    *,
    ncols: int = 5,
    input_range: InputRange = (0.0, 1.0),
    fig_size: tuple[float, float] | None = None,
    plt_fig_axis: PltFigAxis = None,
    use_pyplot: bool = False,
) -> FigureAxes:
    """A grid of images, e.g. one prototype per class (paper Fig. 2).

    Args:
        prototypes (Tensor, ndarray or sequence of them): a batch of images, or a
            sequence of single images, in input values (e.g. from
            :func:`~captum_fillblanks.attr.transforms.prototype`).
        titles (sequence, optional): one title per image (class names or labels; each is
            passed through ``str``). Default: None.
        ncols (int, optional): images per row. Default: 5.
        input_range, fig_size, plt_fig_axis, use_pyplot: see the module docs.

    Returns:
        (Figure, ndarray): axes ``(ceil(N / ncols), min(N, ncols))``, read row by row;
        the axes after the last image are switched off.

    Examples::

        >>> import torch
        >>> figure, axes = visualize_prototypes(torch.rand(10, 1, 28, 28), range(10))
        >>> axes.shape
        (2, 5)
    """
    if isinstance(prototypes, (list, tuple)):
        if not prototypes:
            raise ValueError("prototypes is empty: give at least one image")
        parts = [_images(p, f"prototypes[{i}]") for i, p in enumerate(prototypes)]
        if len({p.shape[1:] for p in parts}) != 1:
            raise ValueError(f"prototypes differ in shape: {[tuple(p.shape[1:]) for p in parts]}")
        images = torch.cat(parts)
    else:
        images = _images(prototypes, "prototypes")
    n = images.shape[0]
    if isinstance(ncols, bool) or not isinstance(ncols, int) or ncols < 1:
        raise ValueError(f"ncols must be a positive int, got {ncols!r}")
    titles = None if titles is None else [str(t) for t in titles]
    if titles is not None and len(titles) != n:
        raise ValueError(f"got {len(titles)} titles for {n} prototypes")
    ncols = min(ncols, n)
    nrows = math.ceil(n / ncols)
    figure, axes = _figure(plt_fig_axis, use_pyplot, nrows, ncols, fig_size)
    images = to_unit_range(images, input_range)
    for index, ax in enumerate(axes.flat):
        if index < n:
            _show_image(ax, images[index], None if titles is None else titles[index])
        else:
            ax.set_axis_off()
    return _finish(figure, axes, use_pyplot)


def visualize_progressive(
    images: ImageLike,
    groups: ImageLike,
    labels: ImageLike | None = None,
    *,
    example: int = 0,
    image: ImageLike | None = None,
    class_names: Sequence[str] | None = None,
    input_range: InputRange = (0.0, 1.0),
    fig_size: tuple[float, float] | None = None,
    plt_fig_axis: PltFigAxis = None,
    use_pyplot: bool = False,
) -> FigureAxes:
    """The course of a progressive fill (paper Fig. 3), one column per step.

    Rows: the blanks of step ``i``'s mask ``M_i`` (white); the part of the image
    predicted so far, the union of the blanks of steps ``1..i`` (white); and the image
    ``x_i`` after step ``i``. Column titles give the step and, with ``labels``, the class
    predicted on the masked input of that step.

    Takes plain tensors shaped as ``ProgressiveMaskFill``'s ``steps`` holds them, so
    ``visualize_progressive(pmf.steps.images, pmf.steps.groups, pmf.steps.labels)``.

    Args:
        images (Tensor or ndarray): ``(k, B, C, H, W)`` the images after each step, or
            ``(k, C, H, W)`` for a single example (``numpy`` also channels last).
        groups (Tensor or ndarray): ``(k, H, W)`` the masks of the steps, ``1`` kept,
            ``0`` blank (also ``(k, 1, H, W)``).
        labels (Tensor or ndarray, optional): ``(k, B)`` (or ``(k,)``) the class
            predicted at each step. Default: None.
        example (int, optional): which example of the batch to draw. Default: 0.
        image (Tensor or ndarray, optional): the input ``x_0``, one image or the batch;
            drawn as a first column. Default: None.
        class_names (sequence of str, optional): names of the labels. Default: None.
        input_range, fig_size, plt_fig_axis, use_pyplot: see the module docs.

    Returns:
        (Figure, ndarray): axes ``(3, k)``, or ``(3, k + 1)`` with ``image`` (whose
        first two rows are switched off).

    Examples::

        >>> import torch
        >>> from captum_fillblanks.attr.masks import random_partition_masks
        >>> groups = random_partition_masks(4, 28, 28)
        >>> figure, axes = visualize_progressive(torch.rand(4, 2, 1, 28, 28), groups, example=1)
        >>> axes.shape
        (3, 4)
    """
    steps, from_numpy = _as_tensor(images, "images")
    shape = tuple(steps.shape)
    if steps.dim() == 5:
        if not isinstance(example, int) or not -shape[1] <= example < shape[1]:
            raise ValueError(f"example={example!r} is out of range for a batch of {shape[1]}")
        steps = steps[:, example]
    elif steps.dim() != 4:
        raise ValueError(
            f"images of shape {shape} cannot be drawn: expected (k, B, C, H, W) or, for one example, (k, C, H, W)"
        )
    if from_numpy:
        steps = steps.numpy()
    steps = _images(steps, "images")
    k, _, h, w = steps.shape

    masks, _ = _as_tensor(groups, "groups")
    if masks.dim() == 4 and masks.shape[1] == 1:
        masks = masks[:, 0]
    if masks.dim() != 3 or masks.shape != (k, h, w):
        raise ValueError(
            f"groups of shape {tuple(masks.shape)} does not match the {k} steps of images "
            f"{shape}: expected (k, H, W) = ({k}, {h}, {w})"
        )
    blank = masks == 0
    so_far = blank.cumsum(0) > 0

    step_labels = None
    if labels is not None:
        step_labels, _ = _as_tensor(labels, "labels")
        if step_labels.dim() == 2 and step_labels.shape[0] == k:
            step_labels = step_labels[:, example]
        if step_labels.shape != (k,):
            raise ValueError(
                f"labels of shape {tuple(step_labels.shape)} do not match {k} steps: expected (k, B) or (k,)"
            )
        step_labels = step_labels.long().tolist()

    first = 0
    if image is not None:
        original = _images(image, "image")
        original = original[example] if original.shape[0] > 1 else original[0]
        if original.shape != steps.shape[1:]:
            raise ValueError(
                f"image of shape {tuple(original.shape)} does not match the steps' {tuple(steps.shape[1:])}"
            )
        first = 1

    figure, axes = _figure(plt_fig_axis, use_pyplot, 3, k + first, fig_size)
    if image is not None:
        axes[0, 0].set_axis_off()
        axes[1, 0].set_axis_off()
        _show_image(axes[2, 0], to_unit_range(original, input_range), "x")
        axes[2, 0].set_ylabel("image after step")
    steps = to_unit_range(steps, input_range)
    for i in range(k):
        title = f"step {i + 1}"
        if step_labels is not None:
            title += f"\nŷ = {_label_text(step_labels[i], class_names)}"
        _show_white(axes[0, first + i], blank[i], title)
        _show_white(axes[1, first + i], so_far[i])
        _show_image(axes[2, first + i], steps[i])
    axes[0, first].set_ylabel("blanks of M_i")
    axes[1, first].set_ylabel("predicted so far")
    if image is None:
        axes[2, 0].set_ylabel("image after step")
    return _finish(figure, axes, use_pyplot)


def visualize_parameter_grid(
    images_grid: ImageLike | Sequence[Sequence[ImageLike]],
    row_values: Sequence[Any],
    col_values: Sequence[Any],
    row_label: str = "mask ratio η",
    col_label: str = "patch size p",
    *,
    input_range: InputRange = (0.0, 1.0),
    fig_size: tuple[float, float] | None = None,
    plt_fig_axis: PltFigAxis = None,
    use_pyplot: bool = False,
) -> FigureAxes:
    """One image per pair of parameter values (paper Fig. 4: mask ratio x patch size).

    Args:
        images_grid (Tensor, ndarray or nested sequence): ``(R, K, C, H, W)`` or, for
            grayscale, ``(R, K, H, W)`` (``numpy`` also ``(R, K, H, W, C)``); or a list of
            ``R`` rows of ``K`` single images each.
        row_values (sequence): the ``R`` values of the row parameter.
        col_values (sequence): the ``K`` values of the column parameter.
        row_label (str, optional): its name. Default: "mask ratio η".
        col_label (str, optional): its name. Default: "patch size p".
        input_range, fig_size, plt_fig_axis, use_pyplot: see the module docs.

    Returns:
        (Figure, ndarray): axes ``(R, K)``; columns titled ``"{col_label} = {value}"``,
        rows labelled ``"{row_label} = {value}"``.

    Examples::

        >>> import torch
        >>> figure, axes = visualize_parameter_grid(
        ...     torch.rand(2, 3, 1, 28, 28), [0.25, 0.5], [1, 2, 4])
        >>> axes.shape
        (2, 3)
    """
    if isinstance(images_grid, (list, tuple)):
        rows = [list(r) for r in images_grid]
        if not rows or len({len(r) for r in rows}) != 1 or not rows[0]:
            raise ValueError(
                f"images_grid must be R rows of K >= 1 images each, got rows of lengths {[len(r) for r in rows]}"
            )
        cells = [
            _images(cell, f"images_grid[{i}][{j}]")
            for i, cells_of_row in enumerate(rows)
            for j, cell in enumerate(cells_of_row)
        ]
        if any(c.shape[0] != 1 for c in cells) or len({c.shape for c in cells}) > 1:
            raise ValueError("images_grid must hold one image per cell, all of the same shape")
        n_rows, n_cols = len(rows), len(rows[0])
        images = torch.cat(cells)
    else:
        grid, from_numpy = _as_tensor(images_grid, "images_grid")
        if grid.dim() not in (4, 5):
            raise ValueError(
                f"images_grid of shape {tuple(grid.shape)} cannot be drawn: expected (R, K, C, H, W) or (R, K, H, W)"
            )
        n_rows, n_cols = grid.shape[:2]
        flat = grid.reshape(n_rows * n_cols, *grid.shape[2:])
        if grid.dim() == 4:
            flat = flat[:, None]
        images = _images(flat.numpy() if from_numpy and grid.dim() == 5 else flat, "images_grid")
    if len(row_values) != n_rows or len(col_values) != n_cols:
        raise ValueError(
            f"images_grid has {n_rows} x {n_cols} cells but {len(row_values)} row_values and "
            f"{len(col_values)} col_values were given"
        )
    figure, axes = _figure(plt_fig_axis, use_pyplot, n_rows, n_cols, fig_size)
    images = to_unit_range(images, input_range)
    for index, ax in enumerate(axes.flat):
        row, col = divmod(index, n_cols)
        title = f"{col_label} = {_value_text(col_values[col])}" if row == 0 else None
        _show_image(ax, images[index], title)
        if col == 0:
            ax.set_ylabel(f"{row_label} = {_value_text(row_values[row])}")
    return _finish(figure, axes, use_pyplot)


def visualize_comparison(
    columns: Mapping[str, ImageLike],
    *,
    row_titles: Sequence[str] | None = None,
    input_range: InputRange = (0.0, 1.0),
    fig_size: tuple[float, float] | None = None,
    plt_fig_axis: PltFigAxis = None,
    use_pyplot: bool = False,
) -> FigureAxes:
    """Images side by side, one column per variant (paper Fig. 5: first vs second order;
    Fig. 6: binarized vs not).

    Args:
        columns (dict[str, Tensor or ndarray]): column title -> images, each one image or
            a batch of the same size ``N`` (one row per example).
        row_titles (sequence of str, optional): ``N`` row labels. Default: None.
        input_range, fig_size, plt_fig_axis, use_pyplot: see the module docs.

    Returns:
        (Figure, ndarray): axes ``(N, len(columns))``, the first row titled by the keys.

    Examples::

        >>> import torch
        >>> figure, axes = visualize_comparison(
        ...     {"first order": torch.rand(3, 1, 28, 28), "second order": torch.rand(3, 1, 28, 28)})
        >>> axes.shape
        (3, 2)
    """
    if not columns:
        raise ValueError("columns is empty: give at least one title -> images")
    stacks = {title: _images(images, f"columns[{title!r}]") for title, images in columns.items()}
    sizes = {title: tuple(s.shape) for title, s in stacks.items()}
    if len({(s.shape[0], *s.shape[-2:]) for s in stacks.values()}) != 1:
        raise ValueError(f"every column must hold the same number of images of the same size, got {sizes}")
    n = next(iter(stacks.values())).shape[0]
    if row_titles is not None and len(row_titles) != n:
        raise ValueError(f"got {len(row_titles)} row_titles for {n} rows")
    figure, axes = _figure(plt_fig_axis, use_pyplot, n, len(stacks), fig_size)
    for col, (title, stack) in enumerate(stacks.items()):
        stack = to_unit_range(stack, input_range)
        for row in range(n):
            _show_image(axes[row, col], stack[row], title if row == 0 else None)
            if col == 0 and row_titles is not None:
                axes[row, col].set_ylabel(str(row_titles[row]))
    return _finish(figure, axes, use_pyplot)


def visualize_methods(
    images: ImageLike,
    attributions: Mapping[str, ImageLike],
    *,
    method: str = "heat_map",
    sign: str | Mapping[str, str] = "absolute_value",
    cmap: None | Any | Mapping[str, Any] = None,
    outlier_perc: float = 2,
    alpha_overlay: float = 0.5,
    show_colorbar: bool = False,
    sign_legend: bool = True,
    image_title: str = "image",
    row_titles: Sequence[str] | None = None,
    input_range: InputRange = (0.0, 1.0),
    fig_size: tuple[float, float] | None = None,
    plt_fig_axis: PltFigAxis = None,
    use_pyplot: bool = False,
) -> FigureAxes:
    """Attributions of several methods for the same inputs, one row per example: the
    image, then each method's map drawn by Captum's ``visualize_image_attr``.

    For comparative studies: e.g. ``{"IntegratedGradients": ig, "Saliency": sal,
    "Occlusion": occ, "MaskFill": fill}``, each the ``attribute`` output for ``images``.

    Args:
        images (Tensor or ndarray): the inputs, one image or a batch of ``N``.
        attributions (dict[str, Tensor or ndarray]): method name -> attributions shaped
            like ``images`` (or with one channel).
        method (str, optional): Captum's visualization method for every map
            (``"heat_map"``, ``"blended_heat_map"``, ``"masked_image"``,
            ``"alpha_scaling"``). Default: "heat_map".
        sign (str or dict[str, str], optional): Captum's ``sign`` (``"all"``,
            ``"positive"``, ``"negative"``, ``"absolute_value"``) for every map, or per
            method name (methods left out use ``"absolute_value"``). Default:
            "absolute_value".
        cmap (str, Colormap or dict, optional): colour map for every map, or per method
            name. ``None``: ``"bwr"`` (red positive, blue negative, as in this module's
            other figures) where the sign is ``"all"``, else Captum's default for the
            sign (``"Blues"`` for ``"absolute_value"``). :data:`CAPTUM_SIGNED_CMAP` draws
            signed maps in Captum's colours (positive green, negative red). Default: None.
        outlier_perc, alpha_overlay, show_colorbar: passed to Captum.
        sign_legend (bool, optional): under each map of the last row, a legend naming
            what its colours stand for (``+ positive`` and ``− negative``, or
            ``|value|``); only for the methods drawn through a colour map
            (``"heat_map"``, ``"blended_heat_map"``) and without ``show_colorbar``,
            which is a legend of its own. Default: True.
        image_title (str, optional): title of the image column. Default: "image".
        row_titles (sequence of str, optional): ``N`` row labels. Default: None.
        input_range, fig_size, plt_fig_axis, use_pyplot: see the module docs.

    Returns:
        (Figure, ndarray): axes ``(N, 1 + len(attributions))``.

    Examples::

        >>> import torch
        >>> from captum.attr import Saliency
        >>> net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 10)).eval()
        >>> x = torch.rand(2, 1, 28, 28)
        >>> figure, axes = visualize_methods(x, {"Saliency": Saliency(net).attribute(x, target=3)})
        >>> axes.shape
        (2, 2)
    """
    inputs = _images(images, "images")
    if not attributions:
        raise ValueError("attributions is empty: give at least one method name -> attributions")
    maps = {
        name: _finite_map(_like(a, f"attributions[{name!r}]", inputs), f"attributions[{name!r}]")
        for name, a in attributions.items()
    }
    signs, cmaps = {}, {}
    for name in maps:
        signs[name] = sign.get(name, "absolute_value") if isinstance(sign, Mapping) else sign
        _check_method(method, signs[name], f"sign[{name!r}]" if isinstance(sign, Mapping) else "sign")
        chosen = cmap.get(name) if isinstance(cmap, Mapping) else cmap
        chosen = "bwr" if chosen is None and signs[name] == "all" else chosen
        cmaps[name] = _colormap(chosen, signs[name], f"cmap[{name!r}]" if isinstance(cmap, Mapping) else "cmap")
    n = inputs.shape[0]
    if row_titles is not None and len(row_titles) != n:
        raise ValueError(f"got {len(row_titles)} row_titles for {n} rows")
    figure, axes = _figure(plt_fig_axis, use_pyplot, n, 1 + len(maps), fig_size)
    inputs = to_unit_range(inputs, input_range)
    for row in range(n):
        _show_image(axes[row, 0], inputs[row], image_title if row == 0 else None)
        if row_titles is not None:
            axes[row, 0].set_ylabel(str(row_titles[row]))
        for col, (name, attribution) in enumerate(maps.items(), start=1):
            _captum_panel(
                figure,
                axes[row, col],
                attribution[row],
                inputs[row],
                method=method,
                sign=signs[name],
                title=name if row == 0 else None,
                cmap=cmaps[name],
                outlier_perc=outlier_perc,
                alpha_overlay=alpha_overlay,
                show_colorbar=show_colorbar,
            )
            if sign_legend and row == n - 1 and method in _COLOUR_MAP_METHODS and not show_colorbar:
                alpha = alpha_overlay if method == "blended_heat_map" else 1.0
                _sign_legend(axes[row, col], cmaps[name], signs[name], alpha=alpha)
    return _finish(figure, axes, use_pyplot)


def _check_titles(titles: Sequence[str] | None, defaults: list[str]) -> list[str]:
    if titles is None:
        return defaults
    titles = list(titles)
    if len(titles) != len(defaults):
        raise ValueError(f"titles must give {len(defaults)} titles ({defaults}), got {len(titles)}")
    return titles
