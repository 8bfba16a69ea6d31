"""LayerMaskFill on a Hugging Face BERT classifier through its word embeddings, with the
attention mask as an additional forward argument (a small random model: nothing is
downloaded)."""

import pytest
import torch

from captum_fillblanks.attr import LayerMaskFill, token_layer_mask, token_scores

transformers = pytest.importorskip("transformers")

MASK_ID = 3


@pytest.fixture(scope="module")
def bert():
    config = transformers.BertConfig(
        vocab_size=40,
        hidden_size=16,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=16,
        num_labels=3,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
    )
    torch.manual_seed(0)
    return transformers.BertForSequenceClassification(config).eval()


def logits(bert):
    def forward(input_ids, attention_mask):
        return bert(input_ids=input_ids, attention_mask=attention_mask).logits

    return forward


def test_one_mask_gives_the_gradient_at_the_word_embeddings(bert):
    ids = torch.tensor([[5, 9, 12, 7, 20, 0], [6, 8, 30, 0, 0, 0]])
    attention = (ids != 0).long()
    layer = bert.bert.embeddings.word_embeddings
    blank = layer.weight[MASK_ID].detach()
    mask = torch.tensor([1, 0, 1, 1, 1, 1]).reshape(6, 1)
    fill = LayerMaskFill(logits(bert), layer).attribute(
        ids, layer_baselines=blank, target=[2, 0], additional_forward_args=(attention,), masks=mask, selection="all"
    )
    # the same gradient by hand, through inputs_embeds
    words = layer(ids).detach()
    masked = torch.where(mask.bool(), words, blank).requires_grad_()
    out = bert(inputs_embeds=masked, attention_mask=attention).logits
    loss = torch.nn.functional.cross_entropy(out, torch.tensor([2, 0]), reduction="sum")
    (grad,) = torch.autograd.grad(loss, masked)
    expected = torch.where(mask.bool(), torch.zeros_like(grad), -grad)
    torch.testing.assert_close(fill, expected, rtol=1e-5, atol=1e-7)
    assert all(p.grad is None for p in bert.parameters())
    assert not layer._forward_hooks


def test_padded_batch_gives_each_text_what_it_gives_alone(bert):
    lengths = [7, 4]
    ids = torch.tensor([[5, 9, 12, 7, 20, 11, 14], [6, 8, 30, 17, 0, 0, 0]])
    attention = (torch.arange(7)[None] < torch.tensor(lengths)[:, None]).long()
    layer = bert.bert.embeddings.word_embeddings
    method = LayerMaskFill(logits(bert), layer)
    options = dict(layer_baselines=layer.weight[MASK_ID].detach(), n_samples=40, seed=2, selection="all")
    together = method.attribute(
        ids, additional_forward_args=(attention,), layer_mask=token_layer_mask(attention), **options
    )
    for e, length in enumerate(lengths):
        alone = method.attribute(
            ids[e : e + 1, :length], additional_forward_args=(attention[e : e + 1, :length],), **options
        )
        torch.testing.assert_close(together[e, :length], alone[0], rtol=1e-4, atol=1e-6)
        assert bool((together[e, length:] == 0).all())
    top = token_scores(together, layer, layer.weight[MASK_ID].detach(), k=3, exclude=[0, MASK_ID])
    assert top.ids.shape == (2, 7, 3)
