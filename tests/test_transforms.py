import torch

from captum_fillblanks.transforms import (
    binarize,
    fill_transform,
    filled_image,
    normalize_over_blanks,
    prototype,
    signed_update,
    to_input_range,
)


def test_normalize_uses_only_blank_positions_per_example():
    update = torch.tensor([[[-100.0, 2.0, 4.0, 3.0]], [[1.0, 1.0, 5.0, 9.0]]])
    blank = torch.tensor([[[False, True, True, True]], [[True, True, False, True]]])
    out = normalize_over_blanks(update, blank)
    expected = torch.tensor([[[0.0, 0.0, 1.0, 0.5]], [[0.0, 0.0, 0.0, 1.0]]])
    assert torch.allclose(out, expected)


def test_constant_update_normalizes_to_zero():
    out = normalize_over_blanks(torch.full((2, 3), 4.0), torch.ones(2, 3, dtype=torch.bool))
    assert torch.equal(out, torch.zeros(2, 3))


def test_binarize_and_transform():
    assert torch.equal(binarize(torch.tensor([0.2, 0.5, 0.51])), torch.tensor([0.0, 0.0, 1.0]))
    update = torch.tensor([[0.0, 1.0, 2.0, 3.0]])
    blank = torch.tensor([[True, True, True, False]])
    assert torch.equal(fill_transform(update, blank), torch.tensor([[0.0, 0.0, 1.0, 0.0]]))
    assert torch.allclose(fill_transform(update, blank, binarized=False), torch.tensor([[0.0, 0.5, 1.0, 0.0]]))


def test_signed_update_splits_at_blanks():
    update = torch.tensor([[-2.0, 3.0, -1.0, 5.0]])
    blank = torch.tensor([[True, True, True, False]])
    pos, neg = signed_update(update, blank)
    assert torch.equal(pos, torch.tensor([[0.0, 3.0, 0.0, 0.0]]))
    assert torch.equal(neg, torch.tensor([[2.0, 0.0, 1.0, 0.0]]))


def test_filled_image_keeps_input_outside_blanks_and_uses_input_range():
    masked = torch.tensor([[0.3, 0.7, -0.4242, -0.4242]])
    update = torch.tensor([[9.0, 9.0, 1.0, 2.0]])
    blank = torch.tensor([[False, False, True, True]])
    low, high = (0 - 0.1307) / 0.3081, (1 - 0.1307) / 0.3081
    out = filled_image(masked, update, blank, input_range=(low, high))
    assert torch.allclose(out, torch.tensor([[0.3, 0.7, low, high]]))


def test_prototype_covers_every_pixel():
    fill = torch.tensor([[[1.0, 2.0], [3.0, 4.0]]])
    assert torch.equal(prototype(fill), torch.tensor([[[0.0, 0.0], [1.0, 1.0]]]))
    assert torch.equal(to_input_range(torch.tensor([0.0, 1.0]), (-1.0, 2.0)), torch.tensor([-1.0, 2.0]))
