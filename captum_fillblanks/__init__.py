"""Fill in the blanks: a mask-filling interpretability method, as Captum attribution methods.

The method (Deelaka et al., "Fill in the Blanks: Rethinking Interpretability in Vision"):
blank out patches of an input, take the gradient of the model's loss with respect to the
masked input, and show how the model would fill the blanks.
"""

from .bfgs import BFGSMaskFill, bfgs_minimize, fill_cosine_similarity
from .mask_fill import FillCounts, MaskFill
from .progressive import ProgressiveMaskFill, ProgressiveSteps
from .masks import (
    MaskSequence,
    n_blank_units,
    partition_units,
    patch_grid,
    random_partition_masks,
    random_patch_masks,
    sample_unit_masks,
)
from .transforms import (
    NORMALIZATIONS,
    TransformSetting,
    binarize,
    fill_transform,
    filled_image,
    normalize_over_blanks,
    prototype,
    signed_update,
    to_input_range,
)

__version__ = "0.1.0.dev0"

__all__ = [
    "MaskFill",
    "FillCounts",
    "ProgressiveMaskFill",
    "ProgressiveSteps",
    "BFGSMaskFill",
    "bfgs_minimize",
    "fill_cosine_similarity",
    "MaskSequence",
    "n_blank_units",
    "partition_units",
    "patch_grid",
    "random_partition_masks",
    "random_patch_masks",
    "sample_unit_masks",
    "NORMALIZATIONS",
    "TransformSetting",
    "binarize",
    "fill_transform",
    "filled_image",
    "normalize_over_blanks",
    "prototype",
    "signed_update",
    "to_input_range",
]
