"""The text reproduction's pictures: the words the model writes in the blanks of a few
test tweets (a matplotlib figure) and Captum's ``visualize_text`` records of them.

The tweets are chosen by a rule (:func:`figure_indices`), their blanks are the scoring
blanks of the text Table 1, and their fills are taken exactly as the table takes them.
"""

from __future__ import annotations

import contextlib
import io
import textwrap
from dataclasses import dataclass

import torch
from matplotlib.figure import Figure
from torch import nn

from ...attr import filled_tokens, token_scores
from ..scoring import per_text_blanks
from .data import TWEET_CLASSES, TweetTable, TweetTokenizer
from .table import predict_texts, text_fills

__all__ = ["FigureExample", "figure_indices", "figure_examples", "top_words_figure", "blank_records_html"]


def figure_indices(tweets: TweetTable, tokenizer: TweetTokenizer, per_class: int = 2) -> list[int]:
    """The first ``per_class`` tweets of each human label with 8 to 24 tokens, in label
    order: the rule every text figure states in its caption."""
    chosen: list[int] = []
    for label in range(len(TWEET_CLASSES)):
        found = [
            i
            for i, (text, y) in enumerate(zip(tweets.texts, tweets.labels.tolist()))
            if y == label and 8 <= len(tokenizer.encode(text)) <= 24
        ]
        chosen += found[:per_class]
    return chosen


@dataclass
class FigureExample:
    """One tweet of the figures: its tokens, blanks, the five best words per blank with
    their scores, the words written in, the labels and the prediction on the filled tweet."""

    index: int
    tokens: list[str]
    blanks: list[int]
    top_words: list[list[tuple[str, float]]]
    written: list[str]
    human: str
    model: str
    filled_label: str
    filled_probability: float
    delta: float


def figure_examples(model: nn.Module, tokenizer: TweetTokenizer, tweets: TweetTable, run, blank: str) -> list:
    """The :class:`FigureExample` of each tweet of :func:`figure_indices`."""
    indices = figure_indices(tweets, tokenizer)
    ids, attention = tokenizer.batch_encode([tweets.texts[i] for i in indices], run.max_length)
    blank_id = tokenizer.vocab.index(blank)
    exclude = sorted(tokenizer.special_ids.values())
    fills = text_fills(model, ids, attention, blank_id, n_samples=run.n_samples, seed=run.seed,
                       mask_ratio=run.mask_ratio)  # fmt: skip
    blanks = per_text_blanks(attention, indices, run.seed, run.mask_ratio)
    weight = model.embedding.weight.detach()
    top = token_scores(fills.fills, weight, fills.blank, k=5, exclude=exclude)
    filled = filled_tokens(ids, fills.fills, weight, fills.blank, blanks=blanks, exclude=exclude)
    with torch.no_grad():
        probabilities = model(filled, attention).softmax(1)
    labels = predict_texts(model, ids, attention)
    examples = []
    for row, index in enumerate(indices):
        length = int(attention[row].sum())
        positions = blanks[row].nonzero().squeeze(1).tolist()
        examples.append(
            FigureExample(
                index=index,
                tokens=[tokenizer.vocab[i] for i in ids[row, :length].tolist()],
                blanks=positions,
                top_words=[
                    [(tokenizer.vocab[w], float(s)) for w, s in zip(top.ids[row, p].tolist(), top.scores[row, p])]
                    for p in positions
                ],
                written=[tokenizer.vocab[int(filled[row, p])] for p in positions],
                human=TWEET_CLASSES[int(tweets.labels[index])],
                model=TWEET_CLASSES[int(labels[row])],
                filled_label=TWEET_CLASSES[int(probabilities[row].argmax())],
                filled_probability=float(probabilities[row].max()),
                delta=float(fills.delta[row]),
            )
        )
    return examples


def top_words_figure(examples: list[FigureExample], n_samples: int) -> Figure:
    """One row per tweet: the tweet with its blanks in brackets, then per blank (up to
    three) the model's five best words as bars of their scores ``s_i(w)``."""
    columns = 1 + max(min(3, len(e.blanks)) for e in examples)
    figure = Figure(figsize=(3.2 * columns + 1.5, 1.9 * len(examples)), layout="constrained")
    axes = figure.subplots(len(examples), columns, squeeze=False)
    for row, example in zip(axes, examples):
        shown = [f"[{t}]" if i in example.blanks else t for i, t in enumerate(example.tokens)]
        row[0].text(0, 1, "\n".join(textwrap.wrap(" ".join(shown), 42)), va="top", fontsize=8, family="monospace")
        row[0].set_title(
            f"test #{example.index}: human {example.human}, model {example.model}\n"
            f"filled: {example.filled_label} ({example.filled_probability:.2f})",
            fontsize=8,
            loc="left",
        )
        row[0].axis("off")
        for column, axis in enumerate(row[1:]):
            if column >= len(example.blanks):
                axis.axis("off")
                continue
            words, scores = zip(*example.top_words[column])
            axis.barh(range(len(words))[::-1], scores, color="#2a6fb0")
            axis.set_yticks(range(len(words))[::-1], words, fontsize=8)
            axis.tick_params(axis="x", labelsize=7)
            position = example.blanks[column]
            axis.set_title(f"blank {position}: was '{example.tokens[position]}'", fontsize=8)
            axis.set_xlabel("s(w) = (E_w - b) . fill", fontsize=7)
    figure.suptitle(
        f"The model's five best words per blank (LayerMaskFill at the embedding, {n_samples:,} kept masks per "
        "tweet; the first two test tweets of each human label with 8-24 tokens; blanks: the table's scoring mask)",
        fontsize=9,
    )
    return figure


def blank_records_html(examples: list[FigureExample]) -> str:
    """Captum ``visualize_text`` records of the examples: every token, the blanks as
    ``original→written`` coloured by the written word's score (scaled by the largest of
    the tweet), the prediction on the filled tweet, and the model's label as the
    attribution class."""
    from captum.attr import visualization

    if not getattr(visualization, "HAS_IPYTHON", True):
        raise ImportError("Captum's visualize_text needs IPython, which is not installed")
    records = []
    for example in examples:
        scores = torch.zeros(len(example.tokens))
        words = list(example.tokens)
        for position, best, written in zip(example.blanks, example.top_words, example.written):
            scores[position] = best[0][1]
            words[position] = f"{example.tokens[position]}→{written}"
        scale = float(scores.abs().max()) or 1.0
        records.append(
            visualization.VisualizationDataRecord(
                scores / scale, example.filled_probability, example.filled_label, example.human, example.model,
                float(scores.sum()), words, example.delta,
            )
        )  # fmt: skip
    with contextlib.redirect_stdout(io.StringIO()):  # visualize_text also displays, outside a notebook as text
        html = visualization.visualize_text(records)
    return "<meta charset='utf-8'>\n" + html.data
