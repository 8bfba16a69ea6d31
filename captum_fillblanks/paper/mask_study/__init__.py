"""How many masks: ``captum-fillblanks mask-study``, into a folder with ``masks.md``.

One run fills a reproduction's first test images once with up to ``n_samples`` kept
masks, recording each image's fill as its own kept masks pass each count, and scores
Table 1's fill rows and the readability checks at every count and at each tolerance,
with bootstrap errors over the images. It builds on a reproduction's
:class:`~captum_fillblanks.paper.reproduce.RunConfig` (the same images, masks and seeds)
and scores as the reproduction does (:mod:`captum_fillblanks.paper.scoring`); the
reproduction does not depend on it.

The modules, in the order a study uses them:

- :mod:`~.fills`: the recorded fills, and where ``tolerance`` would have stopped;
- :mod:`~.report`: the per-image scores, the bootstrap summary and the table;
- :mod:`~.figures`: the curves, the per-image figure and the prototypes;
- :mod:`~.run`: :func:`mask_study`, all of it.
"""

from .fills import STUDY_COUNTS, STUDY_TOLERANCES, stopped_by_tolerance, study_fills
from .run import mask_study

__all__ = ["mask_study", "study_fills", "stopped_by_tolerance", "STUDY_COUNTS", "STUDY_TOLERANCES"]
