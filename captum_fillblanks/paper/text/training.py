"""Seeded training of the shipped tweet classifier, its scores, and its baseline.

What ``captum-fillblanks train --dataset tweets`` runs: fit the tokenizer on the train
split, train :class:`~captum_fillblanks.paper.models.TweetTransformer` with
:func:`~captum_fillblanks.paper.training.train_model` (``<mask>`` tokens as the blanks
of its ``mask_augment``), and fit a TF-IDF and logistic-regression baseline on the same
tweets, each scored by accuracy and macro-average F1::

    splits = load_tweet_splits("data/tweets-sentiment")
    model, tokenizer = train_tweet_transformer(splits.train, epochs=8, dropout=0.2)
    print(score_tweets(model, tokenizer, splits.test))
    baseline = tfidf_logistic_regression(splits.train)
    print(score_predictions(torch.as_tensor(baseline.predict(splits.test.texts)), splits.test.labels))

Classes are left at their natural frequencies (no class weights): 42 % negative, 39 %
neutral, 18 % positive in the train split.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import torch
from torch import Tensor, nn

from ..models.tweet_transformer import TweetTransformer, tweet_transformer
from ..training import train_model
from .data import TweetTable, TweetTokenizer

__all__ = ["TextScores", "score_predictions", "score_tweets", "train_tweet_transformer", "tfidf_logistic_regression"]


class TextScores(NamedTuple):
    """A classifier's scores on labelled texts, fractions in ``[0, 1]``."""

    accuracy: float
    macro_f1: float
    """F1 of each class, averaged with equal weights (scikit-learn's ``average="macro"``;
    a class neither among the labels nor predicted counts as 0)."""

    def __str__(self) -> str:
        return f"accuracy {self.accuracy:.2%}, macro F1 {self.macro_f1:.2%}"


def score_predictions(predicted: Tensor, labels: Tensor, num_classes: int = 3) -> TextScores:
    """Accuracy and macro F1 of predicted labels against the true ones."""
    from sklearn.metrics import f1_score

    if predicted.shape != labels.shape or len(labels) == 0:
        raise ValueError(
            f"score_predictions() needs one prediction per label, at least one; "
            f"got {tuple(predicted.shape)} predictions and {tuple(labels.shape)} labels."
        )
    predicted, labels = predicted.cpu().numpy(), labels.cpu().numpy()
    accuracy = float((predicted == labels).mean())
    macro_f1 = f1_score(labels, predicted, labels=range(num_classes), average="macro", zero_division=0)
    return TextScores(accuracy, float(macro_f1))


@torch.no_grad()
def score_tweets(
    model: nn.Module, tokenizer: TweetTokenizer, tweets: TweetTable, max_length: int = 64, batch_size: int = 500
) -> TextScores:
    """:func:`score_predictions` of ``model`` on ``tweets``, tokenized by ``tokenizer``.

    The model is called as ``model(token_ids, attention_mask)``, in eval mode, and left
    in the mode it was in.
    """
    was_training = model.training
    device = next(model.parameters()).device
    model.eval()
    predicted = []
    for start in range(0, len(tweets.texts), batch_size):
        token_ids, attention_mask = tokenizer.batch_encode(tweets.texts[start : start + batch_size], max_length)
        predicted.append(model(token_ids.to(device), attention_mask.to(device)).argmax(1).cpu())
    model.train(was_training)
    return score_predictions(torch.cat(predicted), tweets.labels)


def train_tweet_transformer(
    train: TweetTable,
    *,
    epochs: int,
    batch_size: int = 64,
    lr: float = 2e-3,
    seed: int = 0,
    mask_augment: float = 0.5,
    max_length: int = 64,
    vocabulary: dict[str, int] | None = None,
    show_progress: bool = True,
    **model_options: Any,
) -> tuple[TweetTransformer, TweetTokenizer]:
    """Fits a :class:`TweetTokenizer` on ``train`` and trains a :class:`TweetTransformer` on it.

    The model is initialized from ``seed`` and trained by
    :func:`~captum_fillblanks.paper.training.train_model` with that seed, under
    ``torch.random.fork_rng``: the same call gives the same weights bit for bit (same
    device and number of threads), and the caller's random state is left alone.

    Args:
        train (TweetTable): The training tweets.
        epochs, batch_size, lr, seed, show_progress: As
            :func:`~captum_fillblanks.paper.training.train_model`'s. Defaults: batch size
            64, learning rate 2e-3, seed 0.
        mask_augment (float, optional): The fraction of training tweets (drawn per tweet
            and batch) in which 15-25 % of the tokens are replaced by ``<mask>``, so that
            the model has seen blanks. Default: 0.5.
        max_length (int, optional): Tokens kept per tweet, and the model's longest
            input. Default: 64 (no tweet of the corpus has more than 63).
        vocabulary (dict, optional): ``min_count`` and ``max_size`` for
            :meth:`TweetTokenizer.fit`. Default: its defaults (2 and 8,000).
        **model_options: Passed to :func:`tweet_transformer` (``embedding_dim``,
            ``dropout``, ...).

    Returns:
        (TweetTransformer, TweetTokenizer): the trained model, in eval mode, and its
        tokenizer.
    """
    tokenizer = TweetTokenizer.fit(train.texts, **(vocabulary or {}))
    token_ids, _ = tokenizer.batch_encode(train.texts, max_length)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = tweet_transformer(vocab_size=len(tokenizer), max_length=max_length, **model_options)
    train_model(
        model,
        (token_ids, train.labels),
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        seed=seed,
        mask_augment=mask_augment,
        mask_token_id=tokenizer.mask_id,
        show_progress=show_progress,
    )
    return model, tokenizer


def tfidf_logistic_regression(train: TweetTable, C: float = 3.0) -> Any:
    """A TF-IDF and logistic-regression classifier fit on ``train``: the baseline.

    Word unigrams and bigrams of :meth:`TweetTokenizer.tokenize` seen in at least two
    tweets, sublinear term frequencies, L2-normalized; a multinomial logistic regression
    with inverse regularization strength ``C`` (chosen on the validation split among 1,
    3 and 10). Deterministic (no random numbers).

    Returns:
        sklearn.pipeline.Pipeline: ``.predict(texts)`` gives labels.
    """
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    vectorizer = TfidfVectorizer(
        tokenizer=TweetTokenizer.tokenize, lowercase=False, token_pattern=None, ngram_range=(1, 2), min_df=2,
        sublinear_tf=True,
    )  # fmt: skip
    pipeline = make_pipeline(vectorizer, LogisticRegression(C=C, max_iter=2000))
    return pipeline.fit(train.texts, train.labels.numpy())
