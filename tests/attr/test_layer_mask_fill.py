"""LayerMaskFill: the fill at a layer, on models whose gradients are known in closed form."""

import pytest
import torch
from torch import nn

from captum_fillblanks.attr import LayerMaskFill, MaskFill, token_layer_mask

VOCAB, DIM, CLASSES = 20, 4, 3
MASK_ID = 2


class BagOfEmbeddings(nn.Module):
    """``logits = W . mean over real tokens of E[ids] + c``: linear in the embeddings,
    so ``grad_h (-logit_y)`` at position ``i`` is ``-W_y / n_real`` for every mask."""

    def __init__(self, nonlinear: bool = False) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.embedding = nn.Embedding(VOCAB, DIM)
        self.head = nn.Linear(DIM, CLASSES)
        self.nonlinear = nonlinear

    def forward(self, ids, attention_mask=None):
        h = self.embedding(ids)
        weight = torch.ones_like(ids, dtype=h.dtype) if attention_mask is None else attention_mask.to(h.dtype)
        pooled = (h * weight[..., None]).sum(1) / weight.sum(1, keepdim=True)
        return self.head(torch.tanh(pooled) if self.nonlinear else pooled)


@pytest.fixture
def model():
    return BagOfEmbeddings().eval()


@pytest.fixture
def ids():
    return torch.randint(3, VOCAB, (3, 6), generator=torch.Generator().manual_seed(1))


def blank_embedding(model):
    return model.embedding.weight[MASK_ID].detach()


def test_fill_at_the_embedding_of_a_linear_model_is_the_exact_gradient(model, ids):
    fill = LayerMaskFill(model, model.embedding).attribute(
        ids, layer_baselines=blank_embedding(model), target=1, loss="target", selection="all", n_samples=40, seed=0
    )
    expected = model.head.weight[1].detach() / ids.shape[1]
    assert fill.shape == (3, 6, DIM)
    torch.testing.assert_close(fill, expected.expand_as(fill), rtol=1e-6, atol=1e-7)


def test_one_mask_gives_the_cross_entropy_gradient_at_its_blanks(model, ids):
    mask = torch.tensor([1, 0, 1, 1, 0, 1]).reshape(6, 1)  # blanks positions 1 and 4
    fill = LayerMaskFill(model, model.embedding).attribute(
        ids, layer_baselines=blank_embedding(model), target=[0, 1, 2], masks=mask, selection="all"
    )
    h = model.embedding(ids).detach()
    masked = torch.where(mask.bool(), h, blank_embedding(model)).requires_grad_()
    loss = nn.functional.cross_entropy(model.head(masked.mean(1)), torch.tensor([0, 1, 2]), reduction="sum")
    (grad,) = torch.autograd.grad(loss, masked)
    expected = torch.where(mask.bool(), torch.zeros_like(grad), -grad)
    torch.testing.assert_close(fill, expected, rtol=1e-6, atol=1e-8)


def test_it_is_mask_fill_at_the_embedding_with_tokens_as_units(model, ids):
    nonlinear = BagOfEmbeddings(nonlinear=True).eval()
    options = dict(target=2, n_samples=30, seed=5, selection="all")
    fill = LayerMaskFill(nonlinear, nonlinear.embedding).attribute(
        ids, layer_baselines=blank_embedding(nonlinear), **options
    )
    h = nonlinear.embedding(ids).detach()
    reference = MaskFill(lambda e: nonlinear.head(torch.tanh(e.mean(1)))).attribute(
        h, baselines=blank_embedding(nonlinear), feature_mask=torch.arange(6).reshape(1, 6, 1), **options
    )
    torch.testing.assert_close(fill, reference, rtol=0, atol=0)


@pytest.mark.parametrize("chunk", [1, 7, 64])
def test_batched_equals_one_by_one_for_any_chunking(ids, chunk):
    model = BagOfEmbeddings(nonlinear=True).eval()
    method = LayerMaskFill(model, model.embedding)
    options = dict(layer_baselines=blank_embedding(model), n_samples=25, seed=3)
    together = method.attribute(ids, internal_batch_size=chunk, **options)
    kept = method.counts.n_kept
    for e in range(len(ids)):
        alone = method.attribute(ids[e : e + 1], **options)
        torch.testing.assert_close(together[e : e + 1], alone, rtol=1e-6, atol=1e-7)
        assert int(method.counts.n_kept) == int(kept[e])


def test_texts_of_different_lengths_give_in_a_padded_batch_what_each_gives_alone():
    model = BagOfEmbeddings(nonlinear=True).eval()
    lengths = [6, 4, 2]
    ids = torch.randint(3, VOCAB, (3, 6), generator=torch.Generator().manual_seed(2))
    attention = (torch.arange(6)[None] < torch.tensor(lengths)[:, None]).long()
    padded = ids * attention
    method = LayerMaskFill(model, model.embedding)
    options = dict(layer_baselines=blank_embedding(model), n_samples=30, seed=11, selection="all", target=0)
    together = method.attribute(
        padded, additional_forward_args=attention, layer_mask=token_layer_mask(attention), **options
    )
    coverage = method.counts.coverage[0]
    for e, length in enumerate(lengths):
        alone = method.attribute(ids[e : e + 1, :length], **options)
        torch.testing.assert_close(together[e, :length], alone[0], rtol=1e-5, atol=1e-7)
        # padding is never blanked: no coverage and no fill
        assert bool((coverage[e, length:] == 0).all()) and bool((together[e, length:] == 0).all())
        assert bool((coverage[e, :length] > 0).all())


def test_negative_layer_mask_ids_are_never_blanked_and_the_ratio_counts_the_example_own_units(model, ids):
    layer_mask = torch.tensor([[0, 1, 2, 3, -1, -1]]).reshape(1, 6, 1)
    masks = LayerMaskFill(model, model.embedding)
    masks.attribute(ids, layer_mask=layer_mask, n_samples=200, seed=0, selection="all", mask_ratio=0.5)
    coverage = masks.counts.coverage[0][..., 0]
    assert bool((coverage[:, 4:] == 0).all())
    # 2 of the 4 units blank in each mask: coverage sums to 2 per mask
    assert bool((coverage.sum(1) == 2 * 200).all())


def test_grouped_units_are_blanked_together(model, ids):
    layer_mask = torch.tensor([0, 0, 1, 1, 2, 2]).reshape(1, 6, 1)
    method = LayerMaskFill(model, model.embedding)
    method.attribute(ids, layer_mask=layer_mask, n_samples=50, seed=0, selection="all")
    coverage = method.counts.coverage[0][..., 0]
    assert torch.equal(coverage[:, 0::2], coverage[:, 1::2])
    assert bool((coverage[:, ::2].sum(1) == 50).all())  # one of the three pairs per mask


def test_layer_input_of_the_head_gives_its_weight_row(model, ids):
    fill = LayerMaskFill(model, model.head).attribute(
        ids, target=2, loss="target", selection="all", n_samples=20, seed=0, attribute_to_layer_input=True
    )
    assert fill.shape == (3, DIM)  # (B, D): each element a unit
    torch.testing.assert_close(fill, model.head.weight[2].detach().expand(3, DIM), rtol=1e-6, atol=1e-7)


def test_a_conv_feature_map_is_masked_by_patches_as_mask_fill_masks_an_image():
    torch.manual_seed(0)
    features = nn.Conv2d(1, 3, 3, padding=1)
    rest = nn.Sequential(nn.Tanh(), nn.Flatten(), nn.Linear(3 * 8 * 8, 4))
    model = nn.Sequential(features, rest).eval()
    images = torch.rand(2, 1, 8, 8)
    options = dict(target=1, n_samples=20, seed=4, selection="all", patch_size=2)
    fill = LayerMaskFill(model, features).attribute(images, **options)
    reference = MaskFill(rest).attribute(features(images).detach(), **options)
    torch.testing.assert_close(fill, reference, rtol=0, atol=0)


def test_convergence_delta_and_tolerance_follow_mask_fill():
    model = BagOfEmbeddings(nonlinear=True).eval()
    ids = torch.randint(3, VOCAB, (2, 6), generator=torch.Generator().manual_seed(4))
    method = LayerMaskFill(model, model.embedding)
    fill, delta = method.attribute(ids, n_samples=64, seed=0, selection="all", return_convergence_delta=True)
    assert delta.shape == (2,) and bool((delta > 0).all())
    stopped = method.attribute(ids, n_samples=4096, seed=0, selection="all", tolerance=0.5)
    assert bool(method.counts.converged.all()) and int(method.counts.n_kept.max()) < 4096
    for e in range(2):
        alone = method.attribute(ids[e : e + 1], n_samples=4096, seed=0, selection="all", tolerance=0.5)
        torch.testing.assert_close(stopped[e : e + 1], alone)


def test_the_call_leaves_the_model_and_inputs_as_they_were(model, ids):
    before = ids.clone()
    LayerMaskFill(model, model.embedding).attribute(ids, n_samples=10, seed=0, selection="all")
    assert torch.equal(ids, before)
    assert all(p.grad is None for p in model.parameters())
    assert not model.embedding._forward_hooks and not model.embedding._forward_pre_hooks


class RaisesOnMaskedPasses(BagOfEmbeddings):
    def forward(self, ids, attention_mask=None):
        if ids.shape[0] > 3:  # the masked copies, not the first pass
            raise RuntimeError("boom inside the model")
        return super().forward(ids, attention_mask)


@pytest.mark.parametrize("to_input", [False, True])
def test_hooks_are_removed_after_an_exception_inside_the_model(ids, to_input):
    model = RaisesOnMaskedPasses().eval()
    layer = model.head if to_input else model.embedding
    with pytest.raises(RuntimeError, match="boom inside the model"):
        LayerMaskFill(model, layer).attribute(ids, n_samples=10, seed=0, attribute_to_layer_input=to_input)
    assert not layer._forward_hooks and not layer._forward_pre_hooks


def test_bad_layers_are_clear_errors(model, ids):
    with pytest.raises(TypeError, match="layer must be a torch.nn.Module"):
        LayerMaskFill(model, "embedding")
    with pytest.raises(ValueError, match="did not run"):
        LayerMaskFill(model, nn.Linear(2, 2)).attribute(ids, n_samples=5, seed=0)
    with pytest.raises(NotImplementedError, match="DataParallel"):
        LayerMaskFill(model, model.embedding, device_ids=[0])

    class Twice(BagOfEmbeddings):
        def forward(self, ids):
            return super().forward(ids) + self.head(self.embedding(ids).mean(1))

    twice = Twice().eval()
    with pytest.raises(ValueError, match="more than once"):
        LayerMaskFill(twice, twice.embedding).attribute(ids, n_samples=5, seed=0)
    # token ids are no floating-point layer: the model's input of an embedding
    with pytest.raises(TypeError, match="floating point"):
        LayerMaskFill(model, model.embedding).attribute(ids, n_samples=5, seed=0, attribute_to_layer_input=True)


def test_bad_layer_masks_and_baselines_name_the_argument(model, ids):
    method = LayerMaskFill(model, model.embedding)
    with pytest.raises(ValueError, match="layer_mask of shape"):
        method.attribute(ids, layer_mask=torch.zeros(5, dtype=torch.long), n_samples=5, seed=0)
    with pytest.raises(TypeError, match="layer_mask must be an integer"):
        method.attribute(ids, layer_mask=torch.zeros(1, 6, 1), n_samples=5, seed=0)
    with pytest.raises(ValueError, match="no unit to blank"):
        method.attribute(ids, layer_mask=torch.full((1, 6, 1), -1), n_samples=5, seed=0)
    with pytest.raises(ValueError, match="layer_baselines of shape"):
        method.attribute(ids, layer_baselines=torch.zeros(DIM + 1), n_samples=5, seed=0)
    with pytest.raises(TypeError, match="layer_baselines must be a number or a Tensor"):
        method.attribute(ids, layer_baselines="mask", n_samples=5, seed=0)
    with pytest.raises(ValueError, match="layer_mask does not apply with masks="):
        method.attribute(ids, layer_mask=torch.zeros(1, 6, 1, dtype=torch.long), masks=torch.ones(6, 1))
    with pytest.raises(AssertionError, match="Target list length"):  # what Captum raises
        method.attribute(ids, target=[0, 1], n_samples=5, seed=0)


class ScaledEmbeddings(BagOfEmbeddings):
    """A Transformer-style input: the embeddings scaled and a position added, in place
    (``h.mul_(c); h += pos``) or not; the logits are the same either way."""

    def __init__(self, in_place: bool) -> None:
        super().__init__(nonlinear=True)
        self.in_place = in_place
        self.position = nn.Parameter(torch.linspace(-1, 1, 6 * DIM).reshape(6, DIM))

    def forward(self, ids):
        h = self.embedding(ids)
        if self.in_place:
            h.mul_(2.0)
            h += self.position
        else:
            h = h * 2.0 + self.position
        return self.head(torch.tanh(h.mean(1)))


class Residual(nn.Module):
    """``x = x + f(x)`` around ``block``, in place (``x += f(x)``) or not."""

    def __init__(self, in_place: bool) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.embedding = nn.Embedding(VOCAB, DIM)
        self.block = nn.Linear(DIM, DIM)
        self.head = nn.Linear(DIM, CLASSES)
        self.in_place = in_place

    def forward(self, ids):
        x = self.embedding(ids)
        if self.in_place:
            x += torch.tanh(self.block(x))
        else:
            x = x + torch.tanh(self.block(x))
        return self.head(torch.tanh(x).mean(1))


@pytest.mark.parametrize(
    "twins, layer, to_input",
    [(ScaledEmbeddings, "embedding", False), (Residual, "block", True)],
)
def test_a_model_that_changes_the_layers_value_in_place_gets_the_fill_of_its_out_of_place_twin(
    twins, layer, to_input, ids
):
    # the value captured from the unmasked pass is a copy: the model's own in-place
    # change after the layer (the scaled embeddings; the residual's input, which the
    # model adds to in place after the block read it) must not reach the fill
    fills = []
    for in_place in (False, True):
        model = twins(in_place).eval()
        method = LayerMaskFill(model, getattr(model, layer))
        fills.append(
            method.attribute(
                ids, target=[0, 1, 2], attribute_to_layer_input=to_input, n_samples=25, seed=3, selection="all"
            )
        )
    torch.testing.assert_close(fills[1], fills[0], rtol=1e-5, atol=1e-7)
    assert fills[0].abs().sum() > 0
