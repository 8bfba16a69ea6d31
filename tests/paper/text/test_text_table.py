"""The text Table 1's pieces: scoring masks, the rewritten tweets of each row, blank
recovery and the bootstrap error, on the bundled tweets and a small model."""

import math

import pytest
import torch

from captum_fillblanks.attr.masks import n_blank_units
from captum_fillblanks.paper.models.tweet_transformer import TweetTransformer
from captum_fillblanks.paper.scoring import per_text_blanks, standard_error
from captum_fillblanks.paper.text.data import TweetTokenizer, load_tweet_samples
from captum_fillblanks.paper.text.table import (
    TEXT_ROWS,
    TextFills,
    blank_recovery,
    frequent_tokens,
    text_fills,
    text_rows,
)


@pytest.fixture(scope="module")
def setup():
    samples = load_tweet_samples()
    tokenizer = TweetTokenizer.fit(samples.texts, min_count=2)
    torch.manual_seed(0)
    model = TweetTransformer(len(tokenizer), embedding_dim=16, num_layers=1, num_heads=2, feedforward_dim=32).eval()
    random_model = TweetTransformer(len(tokenizer), embedding_dim=16, num_layers=1, num_heads=2).eval()
    ids, attention = tokenizer.batch_encode(samples.texts[:6])
    return tokenizer, model, random_model, ids, attention


def test_scoring_masks_blank_a_quarter_of_each_text_own_tokens_whatever_the_batch(setup):
    _, _, _, ids, attention = setup
    blanks = per_text_blanks(attention, range(6), seed=3)
    for row in range(6):
        n_real = int(attention[row].sum())
        assert int(blanks[row].sum()) == n_blank_units(n_real, 0.25)
        assert not bool(blanks[row, n_real:].any())
    # text 4 alone, with its own length, gets the same mask as in the batch
    n_real = int(attention[4].sum())
    alone = per_text_blanks(attention[4:5, :n_real], [4], seed=3)
    assert torch.equal(alone[0], blanks[4, :n_real])
    assert not torch.equal(per_text_blanks(attention, range(6), seed=4), blanks)


def test_each_row_rewrites_only_what_it_says(setup):
    tokenizer, model, random_model, ids, attention = setup
    exclude = sorted(tokenizer.special_ids.values())
    mask_id = tokenizer.mask_id
    fills = text_fills(model, ids, attention, mask_id, n_samples=8, seed=0, selection="all")
    random_fills = text_fills(random_model, ids, attention, mask_id, n_samples=8, seed=0, selection="all")
    blanks = per_text_blanks(attention, range(6), seed=0)
    rows = text_rows(
        model, ids, attention, fills, random_fills, random_model, blanks,
        blank_id=mask_id, exclude=exclude, n_steps=2, seed=0, indices=range(6),
    )  # fmt: skip
    assert tuple(rows) == TEXT_ROWS
    padding = attention == 0
    for name, rewritten in rows.items():
        assert torch.equal(rewritten[padding], ids[padding]), name  # padding is never written
        if name in ("control", "paper-style", "random-init model", "random tokens"):
            assert torch.equal(rewritten[~blanks], ids[~blanks]), name  # only the blanks change
    assert bool((rows["control"][blanks] == mask_id).all())
    for name in ("paper-style", "strict", "progressive", "random-init model", "random tokens"):
        written = rows[name][blanks if name != "strict" and name != "progressive" else ~padding]
        assert not bool(torch.isin(written, torch.tensor(exclude)).any()), name


def test_blank_recovery_counts_the_blanks_whose_word_is_the_best(setup):
    weight = torch.eye(6, 4)  # token w < 4 has the unit embedding e_w
    ids = torch.tensor([[0, 1, 2, 3]])
    blanks = torch.tensor([[False, True, True, True]])
    fill = torch.zeros(1, 4, 4)
    fill[0, 2, 2] = 1.0  # blank 2 asks for its own word
    fill[0, 3, 0] = 1.0  # blank 3 asks for another word
    top1, top5, counted = blank_recovery(
        ids, blanks, TextFills(fill, torch.zeros(4), None, None), weight, exclude=[5], unk_id=1
    )
    # position 1 holds <unk> (id 1), which can never be written back: not counted
    assert (top1, counted) == (1, 2)
    assert top5 == 2  # with every other score 0, word 3 is among the five best of blank 3


def test_frequent_tokens_rank_the_words_of_the_texts(setup):
    tokenizer = setup[0]
    ranked = frequent_tokens(tokenizer, ["good good good bad", "good bad <unk>"], k=2)
    assert [tokenizer.vocab[i] for i in ranked] == ["good", "bad"]


def test_standard_error_is_the_binomial_error_for_independent_texts():
    hits = torch.tensor([1, 0] * 200)
    assert standard_error(hits) == pytest.approx(math.sqrt(0.25 / 400), rel=0.1)
    assert standard_error(torch.ones(50)) == 0.0
