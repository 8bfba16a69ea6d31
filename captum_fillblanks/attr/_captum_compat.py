"""Captum's private helpers, in one place.

The package relies on a few of ``captum._utils``'s functions so that its argument
handling is exactly Captum's (target selection and its errors, the expansion of
additional forward arguments, tuple formatting, the progress bar). They are private to
Captum and may move between releases; every other module imports them from here, so a
change in Captum is mended in this one file. The supported Captum releases are declared
in ``pyproject.toml`` and CI runs the tests on the lowest and the highest.
"""

from captum._utils.common import (
    _expand_additional_forward_args as expand_additional_forward_args,
)
from captum._utils.common import (
    _expand_target as expand_target,
)
from captum._utils.common import (
    _format_additional_forward_args as format_additional_forward_args,
)
from captum._utils.common import (
    _format_output as format_output,
)
from captum._utils.common import (
    _format_tensor_into_tuples as format_tensor_into_tuples,
)
from captum._utils.common import (
    _run_forward as run_forward,
)
from captum._utils.common import (
    _select_targets as select_targets,
)
from captum._utils.progress import progress
from captum._utils.typing import TargetType, TensorOrTupleOfTensorsGeneric

__all__ = [
    "expand_additional_forward_args",
    "expand_target",
    "format_additional_forward_args",
    "format_output",
    "format_tensor_into_tuples",
    "progress",
    "run_forward",
    "select_targets",
    "TargetType",
    "TensorOrTupleOfTensorsGeneric",
]
