"""``captum-fillblanks reproduce --dataset tweets``: the text Table 1, its blank
recovery, a figure of the words the model writes and Captum's text records.

Everything goes through the public API (:class:`~captum_fillblanks.LayerMaskFill`, the
token view, :mod:`~captum_fillblanks.paper.text.table`); the figures are drawn with
matplotlib's object API, and the process's random state and backend are left alone.
"""

from __future__ import annotations

import platform
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from ..datasets import TEXT_REPRODUCTION
from ..files import write_atomically
from ..models.tweet_transformer import TweetTransformer_Weights, tweet_transformer
from ..scoring import per_text_blanks
from .data import TWEET_CLASSES, TweetTable, load_tweet_splits
from .table import (
    TEXT_ROWS,
    blank_recovery,
    frequent_tokens,
    predict_texts,
    score_rows,
    text_fills,
    text_rows,
    token_counts,
)

__all__ = ["TextRun", "reproduce_tweets", "evenly_spaced", "BLANK_CANDIDATES"]

#: The blank tokens tried on the validation split; the one whose paper-style row scores
#: best is used on the test split.
BLANK_CANDIDATES = ("<mask>", "<unk>")


@dataclass(frozen=True)
class TextRun:
    """One text reproduction's settings: ``n_texts`` test tweets evenly spaced over the
    split (``None``: all of them), ``n_samples`` kept masks each, ``n_validation``
    validation tweets (evenly spaced) to choose the blank token, ``n_steps`` progressive
    groups, texts per batch."""

    n_texts: int | None = TEXT_REPRODUCTION.n_items
    n_samples: int = TEXT_REPRODUCTION.n_samples
    n_validation: int = 200
    n_steps: int = 4
    mask_ratio: float = 0.25
    seed: int = 0
    batch_size: int = 50
    max_length: int = 64

    def __post_init__(self) -> None:
        for name in ("n_texts", "n_samples", "n_validation", "n_steps", "batch_size", "max_length"):
            value = getattr(self, name)
            if name == "n_texts" and value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an int >= 1, got {value!r}")
        # the per-text seeds are seed * 1_000_003 + index: they must stay below 2**63
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or not 0 <= self.seed < 2**32:
            raise ValueError(f"seed must be an int in [0, 2**32), got {self.seed!r}")
        if not 0 < self.mask_ratio < 1:
            raise ValueError(f"mask_ratio must be in (0, 1), got {self.mask_ratio!r}")


class _Accumulator:
    """Predictions of every row and the recovery counts, batch by batch."""

    def __init__(self) -> None:
        self.labels: list[Tensor] = []
        self.rows: dict[str, list[Tensor]] = {name: [] for name in TEXT_ROWS}
        self.recovery = {"trained": [0, 0, 0], "random-init model": [0, 0, 0], "word frequency": [0, 0, 0]}
        self.n_kept: list[Tensor] = []
        self.written = [Counter() for _ in TWEET_CLASSES]  # paper-style words per model label
        self.blanked: Counter = Counter()  # the words the scoring blanks took away


def evenly_spaced(n_wanted: int | None, n_total: int) -> list[int]:
    """``n_wanted`` indices spread evenly over ``range(n_total)`` (all of them for
    ``None`` or more): the corpus is sorted by label, so its first rows are one class."""
    if n_wanted is None or n_wanted >= n_total:
        return list(range(n_total))
    return sorted({round(i * (n_total - 1) / max(n_wanted - 1, 1)) for i in range(n_wanted)})


def _evaluate(model, random_model, tokenizer, tweets: TweetTable, chosen, run: TextRun, blank, frequent, progress):
    """Every row's predictions for the tweets ``chosen`` (indices into ``tweets``, which
    also seed their scoring masks), the model's labels, and the recovery counts. With
    ``random_model=None`` (choosing the blank token) only the control and paper-style
    rows, and no recovery."""
    blank_id = tokenizer.vocab.index(blank)
    exclude = sorted(tokenizer.special_ids.values())
    frequent = torch.tensor(frequent)
    complete = random_model is not None
    result = _Accumulator()
    for start in range(0, len(chosen), run.batch_size):
        indices = chosen[start : start + run.batch_size]
        ids, attention = tokenizer.batch_encode([tweets.texts[i] for i in indices], run.max_length)
        empty = (attention.sum(1) == 0).nonzero().flatten().tolist()
        if empty:
            index = indices[empty[0]]
            raise ValueError(
                f"tweet #{index} of its split ({tweets.texts[index]!r:.80}) has no token the tokenizer reads, so "
                "there is nothing to blank: remove it from the corpus"
            )
        fills = text_fills(model, ids, attention, blank_id, n_samples=run.n_samples, seed=run.seed,
                           mask_ratio=run.mask_ratio, show_progress=progress)  # fmt: skip
        random_fills = None
        if complete:
            random_fills = text_fills(random_model, ids, attention, blank_id, n_samples=run.n_samples,
                                      seed=run.seed, mask_ratio=run.mask_ratio, selection="all")  # fmt: skip
        blanks = per_text_blanks(attention, indices, run.seed, run.mask_ratio)
        rows = text_rows(model, ids, attention, fills, random_fills, random_model, blanks, blank_id=blank_id,
                         exclude=exclude, n_steps=run.n_steps, seed=run.seed, indices=indices,
                         rows=TEXT_ROWS if complete else ("control", "paper-style"))  # fmt: skip
        labels = predict_texts(model, ids, attention)
        result.labels.append(labels)
        for name, row_ids in rows.items():
            result.rows[name].append(predict_texts(model, row_ids, attention))
        if not complete:
            continue
        for label, word in zip(labels[:, None].expand_as(ids)[blanks].tolist(), rows["paper-style"][blanks].tolist()):
            result.written[label][word] += 1
        result.blanked.update(ids[blanks].tolist())
        result.n_kept.append(fills.n_kept)
        unk = tokenizer.unk_id
        for name, (filled, embedding) in {
            "trained": (fills, model.embedding.weight.detach()),
            "random-init model": (random_fills, random_model.embedding.weight.detach()),
        }.items():
            counts = blank_recovery(ids, blanks, filled, embedding, exclude=exclude, unk_id=unk)
            result.recovery[name] = [a + b for a, b in zip(result.recovery[name], counts)]
        counted = blanks & (ids != unk)
        truth = ids[counted]
        frequency = [int((truth == frequent[0]).sum()), int(torch.isin(truth, frequent).sum()), int(counted.sum())]
        result.recovery["word frequency"] = [a + b for a, b in zip(result.recovery["word frequency"], frequency)]
    labels = torch.cat(result.labels)
    predicted = {name: torch.cat(parts) for name, parts in result.rows.items() if parts}
    return labels, predicted, result


def reproduce_tweets(
    data_dir: str | Path,
    out: str | Path,
    run: TextRun = TextRun(),
    *,
    command: str = "",
    show_progress: bool = False,
    echo: Callable[[str], None] = print,
) -> Path:
    """Run the text Table 1 on the corpus in ``data_dir`` with the shipped model and
    write ``out/report.md``, ``out/top_words.png`` and ``out/blanks.html``."""
    from .figures import blank_records_html, figure_examples, top_words_figure

    started = time.perf_counter()
    out = Path(out)
    splits = load_tweet_splits(data_dir)
    for name in ("validation", "test"):
        if not getattr(splits, name).texts:
            raise ValueError(
                f"the corpus in {data_dir} has no {name} tweet (of {sum(len(part.texts) for part in splits)}; "
                "tweet_split puts one in ten there): the tweet report needs the whole corpus"
            )
    weights = TweetTransformer_Weights.DEFAULT
    tokenizer = weights.get_tokenizer()
    model = tweet_transformer(weights=weights)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(run.seed)
        random_model = tweet_transformer(**weights.builder_kwargs).eval()
    train_counts = token_counts(tokenizer, splits.train.texts)
    frequent = frequent_tokens(tokenizer, splits.train.texts, counts=train_counts)
    out.mkdir(parents=True, exist_ok=True)

    validation = evenly_spaced(run.n_validation, len(splits.validation.texts))
    choices = {}
    for blank in BLANK_CANDIDATES:
        labels, predicted, _ = _evaluate(
            model, None, tokenizer, splits.validation, validation, run, blank, frequent, False
        )
        choices[blank] = score_rows(predicted, labels)
    blank = max(BLANK_CANDIDATES, key=lambda b: choices[b]["paper-style"][0])

    test = evenly_spaced(run.n_texts, len(splits.test.texts))
    labels, predicted, result = _evaluate(
        model, random_model, tokenizer, splits.test, test, run, blank, frequent, show_progress
    )
    scores = score_rows(predicted, labels)
    examples = figure_examples(model, tokenizer, splits.test, run, blank)
    figure = top_words_figure(examples, run.n_samples)
    write_atomically(
        out / "top_words.png", lambda handle: figure.savefig(handle, dpi=110, bbox_inches="tight", format="png")
    )
    try:
        html = blank_records_html(examples)
    except ImportError as error:  # Captum's visualize_text needs IPython
        echo(f"blanks.html not written ({error}); pip install 'captum-fillblanks[text]' adds IPython")
    else:
        write_atomically(out / "blanks.html", lambda handle: handle.write(html.encode("utf-8")))
    report = _report(
        run, weights, tokenizer, blank, choices, scores, result, labels, (len(test), len(splits.test.texts)),
        train_counts, model.embedding.weight, command, time.perf_counter() - started,
    )  # fmt: skip
    write_atomically(out / "report.md", lambda handle: handle.write(report.encode("utf-8")))
    return out / "report.md"


def _texts(n: int, total: int) -> str:
    return f"all {total:,} tweets" if n == total else f"{n:,} tweets evenly spaced over the {total:,} (file order)"


def _percent(value: float) -> str:
    return f"{100 * value:.1f}"


def _mean_norm(embedding: Tensor, train_counts: Counter, low: int, high: int | None) -> str:
    """Mean embedding length of the words seen ``low`` to ``high`` times in train."""
    norms = embedding.detach().norm(dim=1)
    chosen = [i for i in range(6, len(norms)) if train_counts[i] >= low and (high is None or train_counts[i] < high)]
    return f"{float(norms[chosen].mean()):.2f}" if chosen else "—"


def _median_count(words: Counter, train_counts: Counter) -> int:
    """The median, over every written (or blanked) word, of its count in the train split."""
    counts = sorted(train_counts[w] for w, n in words.items() for _ in range(n))
    return counts[len(counts) // 2] if counts else 0


def _report(run, weights, tokenizer, blank, choices, scores, result, labels, sizes, train_counts, embedding, command,
            seconds):  # fmt: skip
    kept = torch.cat(result.n_kept)
    per_class = ", ".join(f"{n} {c}" for c, n in zip(TWEET_CLASSES, labels.bincount(minlength=3).tolist()))
    lines = [
        "# Fill in the blanks for text: the tweet sentiment corpus",
        "",
        f"- command: `{command or 'reproduce_tweets(...)'}`",
        f"- model: TweetTransformer ({weights!r}), test accuracy {_percent(weights.meta['test_accuracy'])}, "
        f"macro F1 {_percent(weights.meta['test_macro_f1'])} against the human labels",
        f"- texts: {_texts(*sizes)} of the test split; labels `y_hat` are the model's own on each whole tweet "
        f"({per_class})",
        f"- fill: LayerMaskFill at `model.embedding`, {run.n_samples:,} kept masks per tweet asked "
        f"(kept: median {int(kept.median())}, min {int(kept.min())}), mask ratio {run.mask_ratio} of the tweet's "
        f'tokens, padding never blanked, `selection="correct"`, blank token `{blank}` (chosen on validation), '
        f"seed {run.seed}; progressive: k = {run.n_steps} groups",
        "- scoring: one scoring mask per tweet (a quarter of its tokens, seeded by the seed and the tweet's index); "
        "the standard error is a bootstrap over tweets (1,000 resamples)",
        f"- machine: {platform.machine()}, torch {torch.__version__}, {torch.get_num_threads()} threads; "
        f"run time {seconds / 60:.1f} min",
        "",
        "## Text Table 1: does the model recognise its own fills?",
        "",
        "Each tweet is rewritten as the row says and classified by the same model, against `y_hat`.",
        "",
        "| rewritten tweet | accuracy | s.e. | macro F1 |",
        "|---|---|---|---|",
    ]
    described = {
        "control": "**control**: M(x), the blanks hold the blank token",
        "paper-style": "**paper-style**: the same blanks hold the model's best word (expected fill)",
        "strict": "**strict**: every token is the model's best word (the text prototype)",
        "progressive": f"**progressive**: rebuilt in {run.n_steps} groups, each given the words written before",
        "random-init model": "**random-init model**: the blanks hold a random-init model's best words",
        "random tokens": "**random tokens**: the blanks hold uniformly random words",
    }
    for name in TEXT_ROWS:
        accuracy, error, f1 = scores[name]
        lines.append(f"| {described[name]} | {_percent(accuracy)} | {_percent(error)} | {_percent(f1)} |")
    lines += [
        "",
        "## Blank recovery: is the blanked word among the model's words for its blank?",
        "",
        "At each scoring blank whose word is in the vocabulary (an `<unk>` cannot be written back), the "
        "words ranked by `s_i(w) = (E_w - b) . fill_i`; word frequency ranks the train split's most "
        "frequent words, the same for every blank.",
        "",
        "| ranking | top-1 | top-5 | blanks |",
        "|---|---|---|---|",
    ]
    for name, (top1, top5, n) in result.recovery.items():
        lines.append(f"| {name} | {_percent(top1 / max(n, 1))} | {_percent(top5 / max(n, 1))} | {n:,} |")
    lines += [
        "",
        "## The words the model writes",
        "",
        "The words written most often into the scoring blanks (paper-style row), by the model's label of the tweet:",
        "",
        "| model's label | most written words (times written) |",
        "|---|---|",
    ]
    for name, written in zip(TWEET_CLASSES, result.written):
        common = ", ".join(f"{tokenizer.vocab[w]} ({n})" for w, n in written.most_common(12)) or "—"
        lines.append(f"| {name} | {common} |")
    written = sum(result.written, Counter())
    lines += [
        "",
        f"The median train-split count of a written word is {_median_count(written, train_counts):,}; of a "
        f"blanked word, {_median_count(result.blanked, train_counts):,}. The score `(E_w - b) . fill_i` does not "
        f"favour long embeddings: they are all about as long (mean norm {_mean_norm(embedding, train_counts, 0, 5)} "
        f"for words seen under 5 times in train, {_mean_norm(embedding, train_counts, 1000, None)} for words seen "
        "over 1,000 times). It ranks by direction, and a likely reason for the rare words is that among "
        "thousands of embeddings that training barely moved from their random start some point along the fill "
        "by chance, more than a frequent word's learned embedding does (not measured here).",
    ]
    lines += ["", f"## The blank token, chosen on {run.n_validation:,} validation tweets (evenly spaced)", ""]
    lines += ["| blank token | control | paper-style |", "|---|---|---|"]
    for candidate, rows in choices.items():
        mark = " (chosen)" if candidate == blank else ""
        lines.append(f"| `{candidate}`{mark} | {_percent(rows['control'][0])} | {_percent(rows['paper-style'][0])} |")
    lines += [
        "",
        "## Figures",
        "",
        "- `top_words.png`: for the first two test tweets of each human label with 8 to 24 tokens, the tweet "
        "with its scoring blanks and, per blank, the model's five best words and their scores.",
        "- `blanks.html`: the same tweets as Captum `visualize_text` records: the blanks highlighted by the "
        "score of the word written in (`original→written`), the prediction on the filled tweet.",
        "",
    ]
    return "\n".join(lines)
