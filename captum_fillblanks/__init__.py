"""Fill in the blanks: a mask-filling interpretability method, as Captum attribution methods.

The method (Deelaka et al., "Fill in the Blanks: Rethinking Interpretability in Vision"):
blank out patches of an input, take the gradient of the model's loss with respect to the
masked input, and show how the model would fill the blanks.
"""

from . import attr
from .attr import *  # the library's public names: attr.__all__

__version__ = "0.1.0.dev0"

__all__ = list(attr.__all__)
