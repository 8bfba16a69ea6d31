"""The paper's experiments on MNIST or Fashion-MNIST, into a folder with ``report.md``.

Figs. 2-6 and Table 1 (with its controls), computed through the public API on the
shipped weights and a folder of IDX files. The loop over test images runs in shards
whose confusion matrices and per-class sums add exactly: each finished shard is saved
under ``shards/`` (a rerun skips it), and the report is written only when every shard is
done, so an interrupted run never leaves a report that looks complete.

The modules, in the order a run uses them:

- :mod:`~.config`: :class:`RunConfig`, the one record of a run's arguments;
- :mod:`~.cache`: the fill files (:class:`FillCache`, :class:`FillJob`);
- :mod:`~.settings`: the candidate settings of ``T`` and how one is chosen per row;
- :mod:`~.stages`: the fill jobs, the validation choice, the scoring of the shards;
- :mod:`~.prototypes`: :func:`class_prototypes`, the mean fill per class;
- ``figures`` (the recipes of :mod:`captum_fillblanks.paper.figures`) and ``report``: Figs. 2-6
  and the Markdown report;
- :mod:`~.run`: :func:`reproduce`, all of it.
"""

from .cache import FillCache, FillJob
from .config import RunConfig
from .prototypes import class_prototypes
from .report import PAPER_TABLE_1, kept_summary
from .run import RunFills, reproduce, run_fills
from .settings import CANDIDATE_SETTINGS, CRITERIA, best_settings, choose_settings
from .stages import class_balanced, same_run_everywhere, validation_images

__all__ = [
    "reproduce",
    "RunConfig",
    "class_prototypes",
    "choose_settings",
    "best_settings",
    "CANDIDATE_SETTINGS",
    "CRITERIA",
    "PAPER_TABLE_1",
    "FillCache",
    "FillJob",
    "kept_summary",
    "class_balanced",
    "validation_images",
    "run_fills",
    "RunFills",
    "same_run_everywhere",
]
