import torch

from captum_fillblanks import MaskFill
from captum_fillblanks.reproduce import choose_threshold, class_prototypes

from conftest import TinyCNN


def test_class_prototypes_average_the_fills_of_each_class(images):
    model = TinyCNN().eval()
    labels = torch.tensor([2, 0, 2])
    batches = [(images[:2], labels[:2]), (images[2:], labels[2:])]
    means, counts = class_prototypes(model, batches, 3, n_samples=10, seed=0, selection="all")
    fills = MaskFill(model).attribute(images, target=labels, n_samples=10, seed=0, selection="all")
    assert counts.tolist() == [1, 0, 2]
    assert torch.allclose(means[2].float(), (fills[0] + fills[2]) / 2, atol=1e-6)
    assert torch.allclose(means[0].float(), fills[1], atol=1e-6)
    assert torch.equal(means[1], torch.zeros_like(means[1]))


def test_choose_threshold_picks_the_best_and_breaks_ties_towards_one_half():
    class Brightness(torch.nn.Module):
        """Class 1 when more than a quarter of the pixels are ink."""

        def forward(self, x):
            ink = x.flatten(1).mean(1)
            return torch.stack([0.25 - ink, ink - 0.25], 1)

    fills = torch.linspace(0, 1, 16).reshape(1, 1, 4, 4).repeat(2, 1, 1, 1)
    # tau = 0.3 leaves 11 of 16 pixels as ink, tau = 0.9 leaves one
    tau, scores = choose_threshold(Brightness(), fills, torch.tensor([1, 1]), [0.3, 0.9])
    assert tau == 0.3 and scores == {0.3: 100.0, 0.9: 0.0}
    tau, _ = choose_threshold(Brightness(), fills, torch.tensor([1, 1]), [0.1, 0.3, 0.8])
    assert tau == 0.3  # 0.1 and 0.3 both score 100: the one closer to 0.5
