"""Text Table 1: the paper's consistency rows for a sentiment classifier, at its token
embedding, with the text analogue of inpainting agreement (blank recovery).

Per text ``x`` with the model's label ``y_hat`` (on the whole text) and one scoring mask
(a quarter of its real tokens, drawn from a generator seeded by the run's seed and the
text's index, so every text has its own mask and the same one in every row):

- **control** ``M(x)``: the blanks hold the blank token;
- **paper-style**: the blanks hold the best token of the expected fill
  (:func:`~captum_fillblanks.attr.tokens.filled_tokens`);
- **strict**: every real position holds the best token (the text prototype);
- **progressive**: the text rebuilt in ``n_steps`` groups, each filled given the words
  written before (:func:`~captum_fillblanks.attr.tokens.progressive_tokens`);
- **random-init model**: the blanks hold the best tokens of a random-init model's fill;
- **random tokens**: the blanks hold tokens drawn uniformly from the vocabulary.

Each row is scored by the trained model against ``y_hat``: accuracy (with a bootstrap
standard error over texts) and macro F1. Blank recovery: how often the blanked word is
the model's top-1 / among its top-5 words for that blank, against a random-init model's
fill and against the most frequent words of the train split.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from ...attr import LayerMaskFill, filled_tokens, progressive_tokens, text_prototype, token_layer_mask, token_scores
from ..scoring import standard_error
from .data import TweetTokenizer
from .training import score_predictions

__all__ = [
    "TEXT_ROWS",
    "TextFills",
    "text_fills",
    "predict_texts",
    "text_rows",
    "blank_recovery",
    "token_counts",
    "frequent_tokens",
    "score_rows",
]

#: The rows of the text Table 1, in the report's order.
TEXT_ROWS = ("control", "paper-style", "strict", "progressive", "random-init model", "random tokens")


@dataclass
class TextFills:
    """Expected fills of a batch of texts at a model's embedding, ``(B, L, D)``, and the
    blank ``b`` they were taken with."""

    fills: Tensor
    blank: Tensor
    n_kept: Tensor
    delta: Tensor  # (B,) the Monte-Carlo standard error of each fill


def text_fills(
    model: nn.Module,
    token_ids: Tensor,
    attention: Tensor,
    blank_id: int,
    *,
    n_samples: int,
    seed: int,
    mask_ratio: float = 0.25,
    selection: str = "correct",
    show_progress: bool = False,
) -> TextFills:
    """:class:`~captum_fillblanks.LayerMaskFill` at ``model.embedding``, toward the model's
    own label of each text, padding never blanked, with ``<blank_id>``'s embedding as
    ``b``. ``target=None``: the prediction on the whole text."""
    method = LayerMaskFill(model, model.embedding)
    blank = model.embedding.weight[blank_id].detach()
    fills, delta = method.attribute(
        token_ids,
        layer_baselines=blank,
        additional_forward_args=(attention,),
        layer_mask=token_layer_mask(attention),
        n_samples=n_samples,
        mask_ratio=mask_ratio,
        selection=selection,
        seed=seed,
        show_progress=show_progress,
        return_convergence_delta=True,
    )
    return TextFills(fills, blank, method.counts.n_kept, delta)


@torch.no_grad()
def predict_texts(model: nn.Module, token_ids: Tensor, attention: Tensor) -> Tensor:
    """The model's label of each text, ``(B,)``."""
    return model(token_ids, attention).argmax(1)


def _random_tokens(shape: torch.Size, first_id: int, vocab_size: int, seed: int) -> Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(first_id, vocab_size, tuple(shape), generator=generator)


def text_rows(
    model: nn.Module,
    token_ids: Tensor,
    attention: Tensor,
    fills: TextFills,
    random_fills: TextFills | None,
    random_model: nn.Module | None,
    blanks: Tensor,
    *,
    blank_id: int,
    exclude: Sequence[int],
    n_steps: int,
    seed: int,
    indices: Sequence[int],
    rows: Sequence[str] = TEXT_ROWS,
) -> dict[str, Tensor]:
    """The token ids of the ``rows`` of :data:`TEXT_ROWS` (default: all) for one batch of
    texts; ``random_fills`` and ``random_model`` are needed only for the random-init row."""
    weight = model.embedding.weight.detach()
    written: dict[str, Tensor] = {}
    if "control" in rows:
        written["control"] = torch.where(blanks, torch.full_like(token_ids, blank_id), token_ids)
    if "paper-style" in rows:
        written["paper-style"] = filled_tokens(
            token_ids, fills.fills, weight, fills.blank, blanks=blanks, exclude=exclude
        )
    if "strict" in rows:
        written["strict"] = text_prototype(
            token_ids, fills.fills, weight, fills.blank, attention_mask=attention, exclude=exclude
        )
    if "progressive" in rows:
        method = LayerMaskFill(model, model.embedding)
        progressive = token_ids.clone()
        for row, index in enumerate(indices):
            length = int(attention[row].sum())
            course = progressive_tokens(
                method, token_ids[row, :length], blank_id, n_steps=min(n_steps, length), exclude=exclude,
                attention_mask=attention[row, :length], seed=seed * 1_000_003 + int(index),
            )  # fmt: skip
            progressive[row, :length] = course.token_ids[-1]
        written["progressive"] = progressive
    if "random-init model" in rows:
        written["random-init model"] = filled_tokens(
            token_ids, random_fills.fills, random_model.embedding.weight.detach(), random_fills.blank,
            blanks=blanks, exclude=exclude,
        )  # fmt: skip
    if "random tokens" in rows:
        noise = _random_tokens(token_ids.shape, max(exclude) + 1, weight.shape[0], seed + int(indices[0]))
        written["random tokens"] = torch.where(blanks, noise.to(token_ids.device), token_ids)
    return written


def token_counts(tokenizer: TweetTokenizer, texts: Sequence[str]) -> Counter:
    """How often each token id occurs in ``texts``."""
    return Counter(i for text in texts for i in tokenizer.encode(text))


def frequent_tokens(
    tokenizer: TweetTokenizer, texts: Sequence[str], k: int = 5, *, counts: Counter | None = None
) -> list[int]:
    """The ``k`` most frequent token ids in ``texts`` (the train split), special tokens
    and ``<unk>`` left out: the word-frequency baseline of blank recovery. ``counts``:
    :func:`token_counts` of ``texts``, when the caller has them already."""
    specials = set(tokenizer.special_ids.values())
    counts = token_counts(tokenizer, texts) if counts is None else counts
    return [i for i, _ in Counter({i: n for i, n in counts.items() if i not in specials}).most_common(k)]


def blank_recovery(
    token_ids: Tensor,
    blanks: Tensor,
    fills: TextFills,
    embedding: Tensor,
    *,
    exclude: Sequence[int],
    unk_id: int,
) -> tuple[int, int, int]:
    """``(top1_hits, top5_hits, n_blanks)`` over the blanks whose word is in the
    vocabulary (an ``<unk>`` can never be written back, so it is not counted)."""
    top = token_scores(fills.fills, embedding, fills.blank, k=5, exclude=exclude).ids
    counted = blanks & (token_ids != unk_id)
    truth = token_ids[counted]
    chosen = top[counted]
    return int((chosen[:, 0] == truth).sum()), int((chosen == truth[:, None]).any(1).sum()), int(counted.sum())


def score_rows(predicted: dict[str, Tensor], reference: Tensor) -> dict[str, tuple[float, float, float]]:
    """Per row: accuracy against ``reference`` (the model's labels), its bootstrap
    standard error and the macro F1."""
    scores = {}
    for name, labels in predicted.items():
        result = score_predictions(labels.cpu(), reference.cpu())
        scores[name] = (result.accuracy, standard_error(labels.cpu() == reference.cpu()), result.macro_f1)
    return scores
