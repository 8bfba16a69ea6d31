"""The token view: scores equal the loss change of writing each token, and the filled
text, the prototype and the progressive rebuild write the tokens those scores pick."""

import pytest
import torch
from torch import nn

from captum_fillblanks.attr import (
    LayerMaskFill,
    filled_tokens,
    progressive_tokens,
    text_prototype,
    token_scores,
)

VOCAB, DIM = 12, 4
PAD, UNK, MASK = 0, 1, 2


class Bag(nn.Module):
    """Mean of the embeddings of the real tokens, then a linear head: the loss
    ``-logit_y`` is linear in each embedding, so first order is exact."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.embedding = nn.Embedding(VOCAB, DIM)
        self.head = nn.Linear(DIM, 2)

    def forward(self, ids, attention_mask=None):
        h = self.embedding(ids)
        weight = torch.ones_like(ids, dtype=h.dtype) if attention_mask is None else attention_mask.to(h.dtype)
        return self.head((h * weight[..., None]).sum(1) / weight.sum(1, keepdim=True))


def test_token_scores_are_the_brute_force_loss_change_of_writing_each_token():
    model = Bag().eval()
    ids = torch.tensor([[5, 7, MASK, 9, 4]])
    blank = model.embedding.weight[MASK].detach()
    mask = torch.tensor([1, 1, 0, 1, 1]).reshape(5, 1)
    fill = LayerMaskFill(model, model.embedding).attribute(
        ids, layer_baselines=blank, target=1, loss="target", masks=mask, selection="all"
    )
    scores = token_scores(fill, model.embedding, blank, k=VOCAB)
    # brute force: the loss -logit_1 with each token written at the blank
    with torch.no_grad():
        base = -model(ids)[0, 1]
        change = {}
        for w in range(VOCAB):
            written = ids.clone()
            written[0, 2] = w
            change[w] = float(base - (-model(written)[0, 1]))  # decrease of the loss
    got = dict(zip(scores.ids[0, 2].tolist(), scores.scores[0, 2].tolist()))
    assert got.keys() == change.keys()
    for w in change:
        assert got[w] == pytest.approx(change[w], abs=1e-6)
    assert scores.scores[0, 2].tolist() == sorted(scores.scores[0, 2].tolist(), reverse=True)


def test_excluded_tokens_are_never_scored_or_written():
    model = Bag().eval()
    fill = torch.randn(1, 3, DIM)
    scores = token_scores(fill, model.embedding, 0.0, k=VOCAB, exclude=[PAD, UNK, MASK])
    assert scores.ids.shape == (1, 3, VOCAB - 3)
    assert not set(scores.ids.flatten().tolist()) & {PAD, UNK, MASK}
    ids = torch.tensor([[4, 5, 6]])
    written = text_prototype(ids, fill, model.embedding, exclude=[PAD, UNK, MASK])
    assert torch.equal(written, scores.ids[..., 0])


def test_filled_tokens_write_only_at_the_blanks_and_leave_the_ids_alone():
    weight = torch.eye(DIM + 2, DIM)  # token w's embedding is the unit vector e_w (w < DIM)
    ids = torch.tensor([5, 5, 5, 5])
    fill = torch.eye(DIM)  # position i asks for direction e_i
    blanks = torch.tensor([True, False, True, False])
    before = ids.clone()
    written = filled_tokens(ids, fill, weight, blanks=blanks)
    assert written.tolist() == [0, 5, 2, 5]
    assert torch.equal(ids, before)


def test_the_prototype_keeps_the_padding():
    weight = torch.eye(DIM + 2, DIM)
    ids = torch.tensor([[5, 5, 0, 0]])
    attention = torch.tensor([[1, 1, 0, 0]])
    written = text_prototype(ids, torch.eye(DIM)[None], weight, attention_mask=attention)
    assert written.tolist() == [[0, 1, 0, 0]]


def test_progressive_writes_every_real_position_once_with_the_token_the_model_asks_for():
    model = Bag().eval()
    with torch.no_grad():  # token 7 is class 1 written large: the best word at every blank
        model.embedding.weight[7] = 10 * (model.head.weight[1] - model.head.weight[0])
    method = LayerMaskFill(model, model.embedding)
    ids = torch.tensor([4, 5, 6, 8, 9, 3, 0, 0])
    attention = (ids != 0).long()
    course = progressive_tokens(method, ids, MASK, n_steps=3, target=1, attention_mask=attention, seed=0)
    assert course.token_ids.shape == (3, 8)
    assert sorted(course.groups.tolist()) == [-1, -1, 0, 0, 1, 1, 2, 2]
    for step in range(3):
        written = course.groups <= step
        # what a step wrote stays; what is still to come is the original text
        assert bool((course.token_ids[step][written & (attention == 1)] == 7).all())
        assert torch.equal(course.token_ids[step][course.groups > step], ids[course.groups > step])
    assert course.token_ids[-1].tolist() == [7, 7, 7, 7, 7, 7, 0, 0]
    assert course.labels.tolist() == [1, 1, 1]


def test_token_view_errors_name_the_argument():
    weight = torch.eye(DIM + 2, DIM)
    with pytest.raises(ValueError, match="fill must be"):
        token_scores(torch.zeros(3, DIM + 1), weight)
    with pytest.raises(TypeError, match="embedding must be"):
        token_scores(torch.zeros(3, DIM), [1, 2])
    with pytest.raises(ValueError, match="exclude holds ids outside"):
        token_scores(torch.zeros(3, DIM), weight, exclude=[99])
    with pytest.raises(ValueError, match="blanks must be a bool Tensor"):
        filled_tokens(torch.zeros(3, dtype=torch.long), torch.zeros(3, DIM), weight, blanks=torch.ones(3))
    model = Bag().eval()
    with pytest.raises(ValueError, match="n_steps must be"):
        progressive_tokens(LayerMaskFill(model, model.embedding), torch.tensor([3, 4]), MASK, n_steps=3)


def _view():
    model = Bag().eval()
    return model, torch.tensor([[5, 7, 3, 9, 4]]), model.embedding.weight[MASK].detach()


def test_exclude_is_read_once_whatever_iterable_it_is_and_duplicates_are_one_id():
    model, ids, blank = _view()
    fill = torch.randn(1, 5, DIM, generator=torch.Generator().manual_seed(0))
    listed = token_scores(fill, model.embedding, blank, k=VOCAB, exclude=[PAD, UNK, MASK])
    for exclude in ((i for i in (PAD, UNK, MASK)), [PAD, PAD, UNK, MASK, MASK], torch.tensor([PAD, UNK, MASK])):
        scores = token_scores(fill, model.embedding, blank, k=VOCAB, exclude=exclude)
        assert torch.equal(scores.ids, listed.ids) and scores.ids.shape[-1] == VOCAB - 3
        assert bool(scores.scores.isfinite().all())  # no excluded id comes back with -inf
    # as many duplicates as the vocabulary is no refusal: three ids are excluded
    token_scores(fill, model.embedding, blank, exclude=[PAD] * VOCAB + [UNK, MASK])


@pytest.mark.parametrize(
    "call, error, message",
    [
        (lambda m, ids, b: token_scores(torch.zeros(5, DIM), m.embedding, b, exclude=None), TypeError, "exclude must"),
        (lambda m, ids, b: token_scores(torch.zeros(5, DIM), m.embedding, b, exclude="01"), TypeError, "exclude must"),
        (
            lambda m, ids, b: filled_tokens(ids, [0.0] * 5, m.embedding, b, blanks=ids > 4),
            TypeError,
            "fill must be a Tensor",
        ),
        (
            lambda m, ids, b: filled_tokens(
                ids, torch.zeros(1, 5, DIM), m.embedding, torch.full((DIM,), float("nan")), blanks=ids > 4
            ),
            ValueError,
            "blank holds NaN",
        ),
        (
            lambda m, ids, b: text_prototype(
                ids, torch.zeros(1, 5, DIM), m.embedding, b, attention_mask=torch.ones(1, 4)
            ),
            ValueError,
            "attention_mask must be shaped like token_ids",
        ),
    ],
    ids=["exclude-None", "exclude-str", "fill-list", "nan-blank", "mask-length"],
)
def test_bad_token_view_arguments_are_refused_by_name(call, error, message):
    model, ids, blank = _view()
    with pytest.raises(error, match=message):
        call(model, ids, blank)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"token_ids": torch.tensor([[5, 7, 3], [4, 9, 3]])}, "one text, \\(L,\\) or \\(1, L\\), got shape \\(2, 3\\)"),
        ({"blank_id": VOCAB}, f"blank_id must be a token id in \\[0, {VOCAB}\\)"),
        ({"blank_id": -1}, "blank_id must be a token id"),
        ({"attention_mask": torch.ones(4)}, "attention_mask must be shaped like token_ids"),
    ],
    ids=["batch", "blank-too-large", "blank-negative", "mask-length"],
)
def test_the_progressive_rebuild_refuses_what_would_glue_texts_or_read_outside_the_vocabulary(kwargs, message):
    model = Bag().eval()
    arguments = {"token_ids": torch.tensor([5, 7, 3]), "blank_id": MASK, "n_steps": 2, "seed": 0, **kwargs}
    with pytest.raises(ValueError, match=message):
        progressive_tokens(LayerMaskFill(model, model.embedding), **arguments)
