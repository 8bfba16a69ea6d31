"""The library a Captum user imports: the three estimators and their building blocks.

- :class:`MaskFill` (random masks, section 4.1), :class:`ProgressiveMaskFill`
  (section 4.2) and :class:`BFGSMaskFill` (section 4.5), Captum attribution methods;
- :class:`LayerMaskFill`, the random-mask fill at a layer (a text model's embedding),
  and :mod:`~captum_fillblanks.attr.tokens`, its token view;
- :mod:`~captum_fillblanks.attr.masks`: the reproducible mask sequences;
- :mod:`~captum_fillblanks.attr.transforms`: the visual transform ``T``;
- :mod:`~captum_fillblanks.attr.visualization`: the paper's figures;
- :mod:`~captum_fillblanks.attr.metrics`: the consistency test of Table 1.

The paper's experiment kit (reference models, data, training, the reproduction and the
demo) is in :mod:`captum_fillblanks.paper`, on top of this.
"""

from .bfgs import BFGSMaskFill, bfgs_minimize, fill_cosine_similarity
from .layer_mask_fill import LayerMaskFill, token_layer_mask
from .mask_fill import FillCounts, MaskFill
from .masks import (
    MaskSequence,
    n_blank_units,
    partition_units,
    patch_grid,
    random_partition_masks,
    random_patch_masks,
    sample_unit_masks,
)
from .progressive import ProgressiveMaskFill, ProgressiveSteps
from .tokens import ProgressiveText, TokenScores, filled_tokens, progressive_tokens, text_prototype, token_scores
from .transforms import (
    DEFAULT_THRESHOLD,
    NORMALIZATIONS,
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

__all__ = [
    "MaskFill",
    "FillCounts",
    "ProgressiveMaskFill",
    "ProgressiveSteps",
    "BFGSMaskFill",
    "LayerMaskFill",
    "token_layer_mask",
    "TokenScores",
    "token_scores",
    "filled_tokens",
    "text_prototype",
    "ProgressiveText",
    "progressive_tokens",
    "bfgs_minimize",
    "fill_cosine_similarity",
    "MaskSequence",
    "n_blank_units",
    "partition_units",
    "patch_grid",
    "random_partition_masks",
    "random_patch_masks",
    "sample_unit_masks",
    "DEFAULT_THRESHOLD",
    "NORMALIZATIONS",
    "TransformSetting",
    "binarize",
    "fill_transform",
    "filled_image",
    "normalize_over_blanks",
    "prototype",
    "resolve_transform",
    "signed_update",
    "to_input_range",
]
