"""The token view of a fill at an embedding layer: which words the model would write.

A :class:`~captum_fillblanks.attr.LayerMaskFill` fill at a token embedding is a vector
per position, the change the model asks of the blank's embedding ``b``. Writing token
``w`` at blank position ``i`` changes the embedding by ``E_w - b``, and to first order
decreases the loss by

    ``s_i(w) = (E_w - b) . fill_i``

(HotFlip's first-order token score; ``fill = -gamma * grad L``). The functions here turn
fills into those scores, into the filled text (the best token at each blank) and into
the text prototype (the best token at every position), and rebuild a text progressively
in token space. They work on token ids; a tokenizer turns them back into words.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import torch
from torch import Tensor, nn

from .layer_mask_fill import LayerMaskFill
from .masks import partition_units, resolve_seed

__all__ = ["TokenScores", "token_scores", "filled_tokens", "text_prototype", "ProgressiveText", "progressive_tokens"]


class TokenScores(NamedTuple):
    """The ``k`` best tokens per position: ``scores`` and token ``ids``, each
    ``(..., L, k)``, best first."""

    scores: Tensor
    ids: Tensor


def _embedding_matrix(embedding: nn.Embedding | Tensor) -> Tensor:
    weight = embedding.weight if isinstance(embedding, nn.Embedding) else embedding
    if not isinstance(weight, Tensor) or weight.dim() != 2 or not weight.is_floating_point():
        raise TypeError(
            "embedding must be an nn.Embedding or its (vocabulary, dim) floating-point weight, got "
            f"{type(embedding).__name__}{'' if not isinstance(weight, Tensor) else f' of shape {tuple(weight.shape)}'}"
        )
    return weight.detach()


def _excluded_ids(exclude: Any) -> list[int]:
    """``exclude`` as a sorted list of distinct ids (any iterable of ints, read once)."""
    if isinstance(exclude, (str, bytes)) or exclude is None:
        raise TypeError(f"exclude must be a sequence of token ids, got {type(exclude).__name__}")
    try:
        ids = list(exclude)
    except TypeError:
        raise TypeError(f"exclude must be a sequence of token ids, got {type(exclude).__name__}") from None

    def is_id(value: Any) -> bool:  # a Python int, or a one-element integer tensor
        if isinstance(value, Tensor):
            return value.numel() == 1 and not value.is_floating_point()
        return isinstance(value, int) and not isinstance(value, bool)

    if not all(is_id(i) for i in ids):
        raise TypeError(f"exclude must hold integer token ids, got {ids!r:.80}")
    return sorted({int(i) for i in ids})


def _all_scores(fill: Tensor, embedding: nn.Embedding | Tensor, blank: Any, exclude: list[int]) -> Tensor:
    """``s_i(w)`` for every position and token: ``(..., L, vocabulary)``, ``-inf`` at
    ``exclude`` (distinct ids, :func:`_excluded_ids`)."""
    weight = _embedding_matrix(embedding)
    if not isinstance(fill, Tensor):
        raise TypeError(f"fill must be a Tensor, a LayerMaskFill fill at the embedding, got {type(fill).__name__}")
    if fill.dim() < 2 or fill.shape[-1] != weight.shape[1]:
        given = tuple(fill.shape) if isinstance(fill, Tensor) else type(fill).__name__
        raise ValueError(
            f"fill must be (..., length, {weight.shape[1]}), a LayerMaskFill fill at this embedding, got {given}"
        )
    blank = torch.as_tensor(blank, dtype=weight.dtype, device=weight.device)
    if blank.dim() > 1 or (blank.dim() == 1 and blank.shape[0] != weight.shape[1]):
        raise ValueError(
            f"blank must be a scalar or the blank's ({weight.shape[1]},) embedding, got {tuple(blank.shape)}"
        )
    if not bool(blank.isfinite().all()):
        raise ValueError("blank holds NaN or infinite values: no token would score better than another")
    fill = fill.detach().to(weight.dtype)
    if not bool(fill.isfinite().all()):
        raise ValueError("fill holds NaN or infinite values: no token would score better than another")
    scores = fill @ weight.T - (fill * blank).sum(-1, keepdim=True)
    if any(not 0 <= i < weight.shape[0] for i in exclude):
        raise ValueError(f"exclude holds ids outside the vocabulary [0, {weight.shape[0]}): {exclude}")
    if len(exclude) >= weight.shape[0]:
        raise ValueError("exclude leaves no token to write")
    scores[..., exclude] = -torch.inf
    return scores


def token_scores(
    fill: Tensor, embedding: nn.Embedding | Tensor, blank: Any = 0.0, *, k: int = 5, exclude: Sequence[int] = ()
) -> TokenScores:
    """The ``k`` tokens the model would most like to write at each position.

    Args:
        fill (Tensor): ``(B, L, D)`` or ``(L, D)``, a fill at the embedding's output.
        embedding (nn.Embedding or Tensor): the embedding, or its ``(V, D)`` weight ``E``.
        blank (scalar or Tensor, optional): the blank's embedding ``b``, the
            ``layer_baselines`` of the fill. Default: 0.
        k (int, optional): tokens per position. Default: 5.
        exclude (sequence of int, optional): ids never written (padding, unknown,
            the blank token). Default: none.

    Returns:
        :class:`TokenScores`: ``s_i(w) = (E_w - b) . fill_i`` of the ``k`` best tokens and
        their ids, ``(..., L, k)``, best first. Positions no kept draw blanked have a zero
        fill and so all-zero scores: read them only at blanks.
    """
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"k must be a positive int, got {k!r}")
    exclude = _excluded_ids(exclude)
    scores = _all_scores(fill, embedding, blank, exclude)
    values, ids = scores.topk(min(k, scores.shape[-1] - len(exclude)), dim=-1)
    return TokenScores(values, ids)


def filled_tokens(
    token_ids: Tensor,
    fill: Tensor,
    embedding: nn.Embedding | Tensor,
    blank: Any = 0.0,
    *,
    blanks: Tensor,
    exclude: Sequence[int] = (),
) -> Tensor:
    """The filled text: ``token_ids`` with the best-scoring token written at each blank.

    Args:
        token_ids (Tensor): ``(B, L)`` or ``(L,)`` ids of the text.
        fill, embedding, blank, exclude: as in :func:`token_scores`.
        blanks (Tensor): bool, shaped like ``token_ids``: where to write.

    Returns:
        Tensor: a new id tensor shaped like ``token_ids``; the caller's is unchanged.
    """
    if not isinstance(token_ids, Tensor) or token_ids.is_floating_point():
        raise TypeError("token_ids must be an integer Tensor of token ids")
    if not isinstance(blanks, Tensor) or blanks.dtype != torch.bool or blanks.shape != token_ids.shape:
        given = f"{blanks.dtype} {tuple(blanks.shape)}" if isinstance(blanks, Tensor) else type(blanks).__name__
        raise ValueError(f"blanks must be a bool Tensor shaped like token_ids {tuple(token_ids.shape)}, got {given}")
    if not isinstance(fill, Tensor):
        raise TypeError(f"fill must be a Tensor, a LayerMaskFill fill at the embedding, got {type(fill).__name__}")
    if fill.shape[:-1] != token_ids.shape:
        raise ValueError(f"fill of shape {tuple(fill.shape)} does not match token_ids {tuple(token_ids.shape)}")
    best = _all_scores(fill, embedding, blank, _excluded_ids(exclude)).argmax(-1).to(token_ids.device, token_ids.dtype)
    return torch.where(blanks.to(token_ids.device), best, token_ids)


def text_prototype(
    token_ids: Tensor,
    fill: Tensor,
    embedding: nn.Embedding | Tensor,
    blank: Any = 0.0,
    *,
    attention_mask: Tensor | None = None,
    exclude: Sequence[int] = (),
) -> Tensor:
    """The text prototype: the best token written at every real position (where
    ``attention_mask`` is non-zero; every position without one). Padding stays."""
    if attention_mask is not None and (
        not isinstance(attention_mask, Tensor) or attention_mask.shape != getattr(token_ids, "shape", None)
    ):
        given = tuple(attention_mask.shape) if isinstance(attention_mask, Tensor) else type(attention_mask).__name__
        raise ValueError(
            f"attention_mask must be shaped like token_ids {tuple(getattr(token_ids, 'shape', ()))}, got {given}"
        )
    real = torch.ones_like(token_ids, dtype=torch.bool) if attention_mask is None else attention_mask.bool()
    return filled_tokens(token_ids, fill, embedding, blank, blanks=real, exclude=exclude)


@dataclass
class ProgressiveText:
    """The course of one progressive rebuild in token space.

    Attributes:
        token_ids (Tensor): ``(k, L)``: the text after each step.
        groups (Tensor): ``(L,)`` the step (``0 .. k-1``) at which each position was
            written; ``-1`` for padding.
        labels (Tensor): ``(k,)`` the class the model predicts on the text after each step.
    """

    token_ids: Tensor
    groups: Tensor
    labels: Tensor


def progressive_tokens(
    method: LayerMaskFill,
    token_ids: Tensor,
    blank_id: int,
    *,
    n_steps: int = 4,
    target: int | None = None,
    attention_mask: Tensor | None = None,
    exclude: Sequence[int] = (),
    seed: Any = None,
    additional_forward_args: Any = None,
) -> ProgressiveText:
    """Rebuild one text from the model, ``n_steps`` groups of positions at a time.

    The real positions are split at random (``seed``) into ``n_steps`` (``k``) disjoint
    groups. Step ``t`` blanks group ``t`` of the current text (its embeddings become the
    blank token's), takes the update of that one mask (``method`` with ``masks=``,
    ``selection="all"``, the paper's progressive step) and writes the best-scoring token
    at each of the group's positions; those words are context for the later steps. After
    the last step every real position holds a word the model wrote.

    Args:
        method (LayerMaskFill): the layer method, at the model's token embedding
            (an ``nn.Embedding``).
        token_ids (Tensor): ``(L,)`` or ``(1, L)`` ids of one text.
        blank_id (int): the blank token (``<mask>``); its embedding is the blank ``b``.
        n_steps (int, optional): ``k``. Default: 4.
        target (int, optional): the class every step fills toward. Default: the model's
            prediction on the original text.
        attention_mask (Tensor, optional): ``(L,)`` or ``(1, L)``; zeros are padding,
            never written, and it is passed to the model after the ids. Default: None.
        exclude (sequence of int, optional): ids never written; ``blank_id`` never is.
            Default: none.
        seed (int or torch.Generator, optional): fixes the groups. Default: None.
        additional_forward_args (tuple, optional): more arguments to the model, after
            the attention mask when there is one. Default: None.
    """
    if not isinstance(method, LayerMaskFill) or not isinstance(method.layer, nn.Embedding):
        raise TypeError("method must be a LayerMaskFill at the model's nn.Embedding")
    if not isinstance(token_ids, Tensor) or token_ids.is_floating_point():
        raise TypeError("token_ids must be an integer Tensor of token ids")
    if not (token_ids.dim() == 1 or (token_ids.dim() == 2 and token_ids.shape[0] == 1)) or token_ids.numel() == 0:
        raise ValueError(
            f"token_ids must be one text, (L,) or (1, L), got shape {tuple(token_ids.shape)}: rebuild a batch "
            "one text at a time"
        )
    ids = token_ids.reshape(1, -1).clone()
    length = ids.shape[1]
    vocabulary = method.layer.weight.shape[0]
    if isinstance(blank_id, bool) or not isinstance(blank_id, int) or not 0 <= blank_id < vocabulary:
        raise ValueError(f"blank_id must be a token id in [0, {vocabulary}), got {blank_id!r}")
    if attention_mask is not None and (
        not isinstance(attention_mask, Tensor) or attention_mask.numel() != length or attention_mask.dim() > 2
    ):
        given = tuple(attention_mask.shape) if isinstance(attention_mask, Tensor) else type(attention_mask).__name__
        raise ValueError(f"attention_mask must be shaped like token_ids {tuple(token_ids.shape)}, got {given}")
    real = torch.ones(length, dtype=torch.bool) if attention_mask is None else attention_mask.reshape(-1).bool()
    n_real = int(real.sum())
    if isinstance(n_steps, bool) or not isinstance(n_steps, int) or not 1 <= n_steps <= n_real:
        raise ValueError(f"n_steps must be an int in [1, {n_real}] (the text's real tokens), got {n_steps!r}")
    extra = () if attention_mask is None else (attention_mask.reshape(1, -1),)
    if additional_forward_args is not None:
        extra += additional_forward_args if isinstance(additional_forward_args, tuple) else (additional_forward_args,)
    generator = torch.Generator().manual_seed(resolve_seed(seed))
    groups = torch.full((length,), -1, dtype=torch.long)
    groups[real.cpu()] = partition_units(n_real, n_steps, generator)
    weight = method.layer.weight
    blank = weight[blank_id].detach()
    exclude = sorted({*_excluded_ids(exclude), blank_id})  # writing the blank back says nothing
    with torch.no_grad():
        start_logits = method.forward_func(ids.clone(), *extra)
    target = int(start_logits.argmax(1)) if target is None else target
    steps, labels = [], []
    for step in range(n_steps):
        chosen = (groups == step).to(ids.device)
        mask = (~chosen).long().reshape(length, 1)  # 1 kept, 0 blank; shared over the embedding
        fill = method.attribute(
            ids,
            layer_baselines=blank,
            target=target,
            additional_forward_args=extra or None,
            masks=mask,
            selection="all",
        )
        ids = filled_tokens(ids, fill, weight, blank, blanks=chosen[None], exclude=exclude)
        steps.append(ids[0])
        with torch.no_grad():
            labels.append(method.forward_func(ids.clone(), *extra).argmax(1)[0])
    return ProgressiveText(torch.stack(steps), groups, torch.stack(labels))
