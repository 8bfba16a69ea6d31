"""A reference text classifier for fill in the blanks on text, with trained weights.

:class:`TweetTransformer` classifies the sentiment of a tweet (negative, neutral,
positive) from the token ids of :class:`~captum_fillblanks.paper.text.data.TweetTokenizer`;
the builder follows the image models' (:mod:`~captum_fillblanks.paper.models`)::

    model = tweet_transformer(weights="DEFAULT")          # TweetTransformer_Weights.TWEETS
    tokenizer = TweetTransformer_Weights.TWEETS.get_tokenizer()
    token_ids, attention_mask = tokenizer.batch_encode(["what a great flight :)"])
    model(token_ids, attention_mask).argmax(1)            # tensor([2]): positive

A fill in the blanks on text works on the output of ``model.embedding``: blanks are
``<mask>`` tokens (id 2), and the fill is a step on their embedding vectors.
``captum-fillblanks train --dataset tweets`` rebuilds the weights (``meta["recipe"]``).
"""

from __future__ import annotations

from importlib.resources import files
from typing import Any

import torch
from torch import Tensor, nn

from ..text.data import TWEET_CLASSES, TweetTokenizer
from ._api import ShippedModel, Weights, WeightsEnum, register_shipped_model

__all__ = ["TweetTransformer", "TweetTransformer_Weights", "tweet_transformer"]


class TweetTransformer(nn.Module):
    """A small Transformer encoder over token embeddings, averaged into three logits.

    ::

        token_ids (B, L) -> embedding: nn.Embedding(V, d), padding_idx 0   -> (B, L, d)
                         -> + position: learned, nn.Embedding(max_length, d)
                         -> encoder: num_layers x TransformerEncoderLayer(d, num_heads,
                            pre-norm, GELU), then LayerNorm; padding is never attended to
                         -> mean over the real (non-padding) tokens             -> (B, d)
                         -> classifier: linear d -> num_classes logits

    The token embedding enters the network linearly (the positions are added after it),
    so a step on ``model.embedding``'s output at a blank is a step in the space the
    tokens live in. A text's logits do not depend on the padding after it: padding is
    masked out of the attention and of the mean. A text with no real token gives the
    classifier's bias.

    Args:
        vocab_size (int): Number of token ids ``V``.
        num_classes (int, optional): Number of output logits. Default: 3.
        embedding_dim (int, optional): ``d``. Default: 64.
        num_layers (int, optional): Encoder layers. Default: 2.
        num_heads (int, optional): Attention heads per layer. Default: 4.
        feedforward_dim (int, optional): Width of each layer's feed-forward block.
            Default: 128.
        max_length (int, optional): The most tokens a text may have. Default: 64.
        dropout (float, optional): Dropout in the encoder, in training. Default: 0.1.
    """

    def __init__(
        self,
        vocab_size: int,
        num_classes: int = 3,
        embedding_dim: int = 64,
        num_layers: int = 2,
        num_heads: int = 4,
        feedforward_dim: int = 128,
        max_length: int = 64,
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embedding_dim, padding_idx=0)
        self.position = nn.Embedding(max_length, embedding_dim)
        layer = nn.TransformerEncoderLayer(
            embedding_dim, num_heads, feedforward_dim, dropout, activation="gelu", batch_first=True, norm_first=True
        )
        self.encoder = nn.TransformerEncoder(
            layer, num_layers, norm=nn.LayerNorm(embedding_dim), enable_nested_tensor=False
        )
        self.classifier = nn.Linear(embedding_dim, num_classes)

    def forward(self, token_ids: Tensor, attention_mask: Tensor | None = None) -> Tensor:
        """Logits ``(B, num_classes)`` of token ids ``(B, L)``.

        ``attention_mask`` ``(B, L)`` is 1 (or True) at real tokens and 0 at padding,
        as :meth:`~captum_fillblanks.paper.text.data.TweetTokenizer.batch_encode` gives it;
        ``None``: every non-zero id is a real token.
        """
        length = token_ids.shape[1]
        if length > self.position.num_embeddings:
            raise ValueError(
                f"TweetTransformer got {length} tokens per text; it takes at most {self.position.num_embeddings}. "
                "Truncate the texts (TweetTokenizer.batch_encode(texts, max_length=...))."
            )
        real = token_ids != 0 if attention_mask is None else attention_mask.bool()
        x = self.embedding(token_ids) + self.position(torch.arange(length, device=token_ids.device))
        # a text without a real token attends to its padding (a fully masked row is NaN)
        x = self.encoder(x, src_key_padding_mask=~real & real.any(1, keepdim=True))
        weights = real.unsqueeze(-1).to(x.dtype)
        pooled = (x * weights).sum(1) / weights.sum(1).clamp(min=1)
        return self.classifier(pooled)


class TweetTransformer_Weights(WeightsEnum):
    """Trained weights for :func:`tweet_transformer`, each with its vocabulary file.

    ``meta``: ``dataset``, ``training_split``, ``validation_accuracy``,
    ``validation_macro_f1``, ``test_accuracy``, ``test_macro_f1`` (fractions, on the
    corpus' validation and test splits), ``baseline`` (the same scores of the TF-IDF and
    logistic-regression baseline fit on the same train split), ``num_params``,
    ``categories``, ``vocabulary_file`` (the weight file's name with ``.vocab.txt``),
    ``builder_kwargs`` and ``recipe``.

    The recipe's settings were chosen on the validation split alone, among learning
    rates 1e-3, 2e-3 and 3e-3, 4 to 12 epochs, dropout 0.1 and 0.2, a feed-forward width
    of 128 and 256, and ``mask_augment`` 0, 0.5 and 1 (all within about one point of
    validation accuracy of each other).
    """

    TWEETS = Weights(
        file_name="tweet_transformer_tweets.pt",
        meta={
            "dataset": "tweets",
            "training_split": (
                "the 30,724 train-split rows of the tweet sentiment corpus (see "
                "captum_fillblanks.paper.text.data.tweet_split); settings chosen on the 3,736 validation rows"
            ),
            "validation_accuracy": 0.7535,
            "validation_macro_f1": 0.7369,
            "test_accuracy": 0.7539,
            "test_macro_f1": 0.7352,
            "baseline": {
                "name": "TF-IDF + logistic regression (paper.text.training.tfidf_logistic_regression)",
                "validation_accuracy": 0.7655,
                "validation_macro_f1": 0.7446,
                "test_accuracy": 0.7623,
                "test_macro_f1": 0.7414,
            },
            "num_params": 583_363,
            "categories": TWEET_CLASSES,
            "vocabulary_file": "tweet_transformer_tweets.vocab.txt",
            "builder_kwargs": {
                "vocab_size": 8000,
                "embedding_dim": 64,
                "num_layers": 2,
                "num_heads": 4,
                "feedforward_dim": 128,
                "max_length": 64,
            },
            "recipe": {
                "command": "captum-fillblanks train --dataset tweets --data-dir DIR",
                "seed": 0,
                "lr": 2e-3,
                "epochs": 8,
                "batch_size": 64,
                "dropout": 0.2,
                "mask_augment": 0.5,
                "max_length": 64,
                "vocabulary": {"min_count": 2, "max_size": 8000},
            },
        },
    )
    DEFAULT = TWEETS

    def get_tokenizer(self) -> TweetTokenizer:
        """The tokenizer the weights were trained with, read from the package."""
        resource = files("captum_fillblanks.paper").joinpath("weights", self.meta["vocabulary_file"])
        with resource.open("r", encoding="utf-8") as handle:
            return TweetTokenizer.load(handle)


def tweet_transformer(
    *, weights: TweetTransformer_Weights | str | None = None, vocab_size: int | None = None, **kwargs: Any
) -> TweetTransformer:
    """Builds the tweet sentiment classifier (:class:`TweetTransformer`).

    Args:
        weights (TweetTransformer_Weights or str, optional): Trained weights to load, as
            a member (``TweetTransformer_Weights.TWEETS``) or its name (``"TWEETS"``,
            ``"DEFAULT"``); their tokenizer is ``weights.get_tokenizer()``. ``None``
            gives a randomly initialized model. Default: None.
        vocab_size (int, optional): Number of token ids; with weights, theirs (another
            is a ``ValueError``). Default: None, 8,000 without weights.
        **kwargs: Passed to :class:`TweetTransformer`; with weights, the options they
            were trained with are used and another value is a ``ValueError``.

    Returns:
        TweetTransformer: In eval mode when weights were loaded.

    Examples::

        >>> model = tweet_transformer(weights="DEFAULT")
        >>> model(torch.tensor([[8, 9, 0]])).shape
        torch.Size([1, 3])
    """
    weights = TweetTransformer_Weights.verify(weights, "tweet_transformer")
    if weights is None:
        return TweetTransformer(8000 if vocab_size is None else vocab_size, **kwargs)
    trained = {**weights.builder_kwargs, "num_classes": len(weights.meta["categories"])}
    given = {**kwargs, **({} if vocab_size is None else {"vocab_size": vocab_size})}
    for name, value in given.items():
        if trained.get(name, value) != value:
            raise ValueError(
                f"{weights!r} was trained with {name}={trained[name]!r}; got {name}={value!r}. Leave it out, "
                "or pass weights=None to train a new model."
            )
    model = TweetTransformer(**{**given, **trained})
    model.load_state_dict(weights.get_state_dict())
    return model.eval()


register_shipped_model(
    ShippedModel("tweets", "tweet-transformer", tweet_transformer, TweetTransformer_Weights.TWEETS, "TweetTransformer")
)
