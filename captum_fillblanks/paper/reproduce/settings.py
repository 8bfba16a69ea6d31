"""The settings of ``T`` a reproduction tries, and how one is chosen per row on
validation images (never on the images scored)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from torch import Tensor

from ...attr.metrics import TRANSFORMED_ROWS, consistency_counts
from ...attr.transforms import NORMALIZATIONS, TransformSetting

__all__ = ["CANDIDATE_SETTINGS", "CRITERIA", "choose_settings", "best_settings"]

#: The scores :func:`choose_settings` can choose by.
CRITERIA = ("macro_f1", "accuracy", "weighted_f1")

_TAUS = (0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)

#: The settings of ``T`` that :func:`~captum_fillblanks.paper.reproduce.reproduce` tries
#: on validation, in the order that breaks ties: per normalization (``"max_abs"``
#: first), ``tau`` from 0.05 to 0.9, then not binarized; every one scaled by the largest
#: value (``scale_percentile=100``, whatever the package's default scale), so the
#: committed reports' choices stay the ones these runs make.
CANDIDATE_SETTINGS = tuple(
    setting
    for normalization in NORMALIZATIONS
    for setting in (
        *(TransformSetting(normalization, tau, scale_percentile=100.0) for tau in _TAUS),
        TransformSetting(normalization, binarized=False, scale_percentile=100.0),
    )
)


def choose_settings(
    model: Callable,
    images: Tensor,
    candidates: Sequence[TransformSetting],
    *,
    n_classes: int,
    fill: Tensor,
    control_fill: Tensor | None = None,
    seed: int = 0,
    criterion: str = "macro_f1",
    **consistency_kwargs,
) -> tuple[dict[str, TransformSetting], dict[str, dict[TransformSetting, float]]]:
    """One setting of ``T`` (normalization, ``tau``, binarized or not) per row of the
    consistency table, each the candidate under which the model recognises that row's
    rebuilt images best, chosen on validation images (never on the images scored).

    "Best" is the highest macro-average F1 by default, not accuracy: a setting that
    makes every rebuilt image look like one class (a canvas of ink, or none) can score a
    high accuracy against ``y_k``, the prediction on the last progressive step's masked
    input, because that masked input is then the same degenerate image; macro F1 gives
    such a fill the score of one class in ten. Against the label of ``x`` itself the two
    criteria nearly agree.

    Every candidate is scored with :func:`~captum_fillblanks.attr.metrics.consistency_counts`
    on the same ``fill`` (and ``control_fill``), so only the progressive rows are
    recomputed per candidate. Ties go to the candidate that comes first in
    ``candidates``. The random-model control gets its own best setting too: a control
    that is as good as it can be is the honest comparison.

    Args:
        model (Callable): the classifier.
        images (Tensor): validation images.
        candidates (sequence of TransformSetting): settings to try, e.g.
            :data:`CANDIDATE_SETTINGS`.
        n_classes (int): number of classes.
        fill (Tensor): the images' MaskFill fills (``target=None``).
        control_fill (Tensor, optional): the control model's fills; adds that row.
        seed (int): seed of the masks, as in ``consistency_counts``.
        criterion (str): ``"macro_f1"``, ``"accuracy"`` or ``"weighted_f1"``.
            Default: "macro_f1".
        **consistency_kwargs: more arguments of ``consistency_counts`` (``n_steps``,
            ``patch_size``, ``input_range``, ...).

    Returns:
        (dict, dict): the chosen setting per transformed row, and the criterion in
        percent per row and candidate.
    """
    candidates = list(candidates)
    if not candidates:
        raise ValueError("candidates must hold at least one TransformSetting")
    if criterion not in CRITERIA:
        raise ValueError(f"criterion must be one of {CRITERIA}, got {criterion!r}")
    value: dict[str, dict[TransformSetting, float]] = {}
    for setting in candidates:
        counts = consistency_counts(
            model,
            images,
            n_classes=n_classes,
            transform=setting,
            fill=fill,
            control_fill=control_fill,
            seed=seed,
            **consistency_kwargs,
        )
        for row, scores in counts.scores().items():
            if row in TRANSFORMED_ROWS:
                value.setdefault(row, {})[setting] = scores[criterion]
    return best_settings(value, candidates), value


def best_settings(
    scores: dict[str, dict[TransformSetting, float]], candidates: Sequence[TransformSetting]
) -> dict[str, TransformSetting]:
    """Per row, the candidate of ``candidates`` with the highest score; ties go to the
    one that comes first. ``candidates`` may be a subset of those scored (e.g. one
    normalization only)."""
    order = {setting: i for i, setting in enumerate(candidates)}
    return {
        row: max((s for s in per_setting if s in order), key=lambda s: (per_setting[s], -order[s]))
        for row, per_setting in scores.items()
    }
