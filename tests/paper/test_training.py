"""Seeded training, accuracy, and the ``captum-fillblanks train`` command."""

import gzip
import struct

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

from captum_fillblanks.cli import main
from captum_fillblanks.paper.data import load_samples
from captum_fillblanks.paper.models import resnet5, simple_cnn
from captum_fillblanks.paper.training import evaluate_accuracy, random_blanks, random_shift, train_model


@pytest.fixture(scope="module")
def tiny_set():
    images, labels = load_samples("mnist")
    return images[::2], labels[::2]  # 50 images, 5 per digit


def trained_weights(data, seed, **settings):
    torch.manual_seed(0)
    model = train_model(
        simple_cnn(),
        data,
        epochs=1,
        batch_size=16,
        lr=3e-3,
        seed=seed,
        show_progress=False,
        **settings,
    )
    return model.state_dict()


@pytest.mark.parametrize("augment", [{"max_shift": 0}, {"max_shift": 2}, {"max_shift": 2, "mask_augment": 0.5}])
def test_same_seed_gives_the_same_weights(tiny_set, augment):
    first = trained_weights(tiny_set, seed=1, **augment)
    second = trained_weights(tiny_set, seed=1, **augment)
    assert all(torch.equal(first[key], second[key]) for key in first)


def test_masks_change_training_and_no_masks_change_nothing(tiny_set):
    plain = trained_weights(tiny_set, seed=1, max_shift=2)
    unmasked = trained_weights(tiny_set, seed=1, max_shift=2, mask_augment=0)
    assert all(torch.equal(plain[key], unmasked[key]) for key in plain)
    masked = trained_weights(tiny_set, seed=1, max_shift=2, mask_augment=0.5)
    assert not all(torch.equal(plain[key], masked[key]) for key in plain)


@pytest.mark.parametrize("probability", [0.0, 0.3, 1.0])
def test_random_blanks_mask_a_quarter_of_the_patches_in_that_fraction_of_images(probability):
    images = torch.rand(2000, 1, 28, 28) + 1  # no pixel is 0 before masking
    blanked = random_blanks(images, probability, torch.Generator().manual_seed(0))
    zeros = (blanked == 0).sum((1, 2, 3))
    masked = zeros > 0
    # a masked image: 49 of the 196 patches of 2 x 2 set to 0, the rest untouched
    assert set(zeros[masked].tolist()) <= {49 * 4}
    assert torch.equal(blanked[~masked], images[~masked])
    assert torch.equal(blanked[masked] != 0, (blanked[masked] == images[masked]))
    assert abs(masked.float().mean().item() - probability) < 0.04


@pytest.mark.parametrize("bad", [-0.1, 1.5, "half"])
def test_train_model_rejects_a_mask_fraction_outside_0_1(tiny_set, bad):
    with pytest.raises(ValueError, match="mask_augment"):
        train_model(simple_cnn(), tiny_set, epochs=1, mask_augment=bad)


def test_another_seed_gives_other_weights(tiny_set):
    first = trained_weights(tiny_set, seed=1)
    second = trained_weights(tiny_set, seed=2)
    assert not all(torch.equal(first[key], second[key]) for key in first)


def test_training_leaves_the_global_random_state_alone(tiny_set):
    model = simple_cnn()
    torch.manual_seed(123)
    train_model(model, tiny_set, epochs=1, batch_size=25, seed=0, show_progress=False)
    after_training = torch.rand(3)
    torch.manual_seed(123)
    assert torch.equal(after_training, torch.rand(3))


def test_training_learns_and_returns_an_eval_mode_model(tiny_set):
    torch.manual_seed(0)
    model = simple_cnn()
    before = evaluate_accuracy(model, *tiny_set)
    train_model(model, tiny_set, epochs=15, batch_size=10, lr=3e-3, seed=0, show_progress=False)
    assert not model.training
    assert evaluate_accuracy(model, *tiny_set) >= max(0.8, before + 0.3)


def test_a_dataset_trains_reproducibly_too(tiny_set):
    first = trained_weights(TensorDataset(*tiny_set), seed=3)
    second = trained_weights(TensorDataset(*tiny_set), seed=3)
    assert all(torch.equal(first[key], second[key]) for key in first)


def test_train_model_rejects_unpaired_data():
    with pytest.raises(TypeError, match="as many labels as images"):
        train_model(simple_cnn(), (torch.rand(4, 1, 28, 28), torch.zeros(3)), epochs=1)


def test_random_shift_moves_each_image_by_at_most_max_shift():
    images = torch.zeros(500, 1, 28, 28)
    images[:, :, 13, 13] = 1  # one lit pixel, far from the border
    shifted = random_shift(images, 2, torch.Generator().manual_seed(0))
    assert shifted.shape == images.shape
    assert torch.equal(shifted.sum((1, 2, 3)), torch.ones(500))
    rows, cols = shifted[:, 0].nonzero()[:, 1], shifted[:, 0].nonzero()[:, 2]
    assert (rows - 13).abs().max() <= 2 and (cols - 13).abs().max() <= 2
    assert len(set(zip(rows.tolist(), cols.tolist()))) == 25  # all 5 x 5 offsets occur


class FirstTenPixels(nn.Module):
    """Logits are the first ten pixels: the predicted class is the brightest of them."""

    def __init__(self):
        super().__init__()
        self.unused = nn.Parameter(torch.zeros(1))

    def forward(self, x):
        return x.flatten(1)[:, :10]


def test_evaluate_accuracy_counts_correct_argmaxes_and_keeps_the_mode():
    images = torch.zeros(8, 1, 28, 28)
    predicted = torch.tensor([0, 1, 2, 3, 4, 5, 6, 7])
    images.view(8, -1)[torch.arange(8), predicted] = 1
    labels = torch.tensor([0, 1, 2, 3, 4, 5, 0, 0])
    model = FirstTenPixels().train()
    assert evaluate_accuracy(model, images, labels, batch_size=3) == 6 / 8
    assert model.training


def test_evaluate_accuracy_needs_one_label_per_image():
    with pytest.raises(ValueError, match="3 images and 2 labels"):
        evaluate_accuracy(FirstTenPixels(), torch.rand(3, 1, 28, 28), torch.zeros(2))


def write_idx_gz(path, array):
    header = struct.pack(f">BBBB{array.ndim}I", 0, 0, 0x08, array.ndim, *array.shape)
    path.write_bytes(gzip.compress(header + array.astype(np.uint8).tobytes()))


@pytest.fixture
def small_mnist_folder(tmp_path):
    images, labels = load_samples("mnist")
    pixels, labels = (images[:, 0] * 255).round().numpy(), labels.numpy()
    # 60 per digit: the command holds out the last 50 of each, so it trains on 100
    train_images, train_labels = np.concatenate([pixels] * 6), np.concatenate([labels] * 6)
    order = np.argsort(train_labels, kind="stable")
    train_images, train_labels = train_images[order], train_labels[order]
    for split, x, y in (("train", train_images, train_labels), ("t10k", pixels, labels)):
        write_idx_gz(tmp_path / f"{split}-images-idx3-ubyte.gz", x)
        write_idx_gz(tmp_path / f"{split}-labels-idx1-ubyte.gz", y)
    return tmp_path


def test_train_command_writes_loadable_weights_and_prints_test_accuracy(small_mnist_folder, capsys):
    out = small_mnist_folder / "weights" / "small.pt"

    status = main(
        ["train", "--dataset", "mnist", "--data-dir", str(small_mnist_folder), "--out", str(out), "--epochs", "1"]
    )

    printed = capsys.readouterr().out
    assert status == 0
    assert "t10k test accuracy:" in printed and str(out) in printed
    assert "on 100 mnist images" in printed
    simple_cnn().load_state_dict(torch.load(out, weights_only=True))


def test_train_command_rebuilds_another_weights_member_with_its_head(small_mnist_folder, capsys):
    out = small_mnist_folder / "flatten.pt"
    argv = ["train", "--dataset", "mnist", "--arch", "resnet5", "--weights", "MNIST_5K_FLATTEN"]
    assert main([*argv, "--data-dir", str(small_mnist_folder), "--out", str(out), "--epochs", "1"]) == 0
    assert "ResNet5_Weights.MNIST_5K_FLATTEN" in capsys.readouterr().out
    state = torch.load(out, weights_only=True)
    assert state["fc.weight"].shape == (10, 64 * 7 * 7)
    resnet5(head="flatten").load_state_dict(state)


def test_train_command_refuses_an_unshipped_combination(tmp_path):
    with pytest.raises(SystemExit, match="no shipped weights for simple-cnn on fashion-mnist"):
        main(["train", "--dataset", "fashion-mnist", "--arch", "simple-cnn", "--data-dir", str(tmp_path)])


def test_train_command_trains_against_an_attack_it_names(small_mnist_folder, capsys):
    clean, robust = small_mnist_folder / "clean.pt", small_mnist_folder / "robust.pt"
    argv = ["train", "--dataset", "mnist", "--data-dir", str(small_mnist_folder), "--epochs", "1"]
    assert main([*argv, "--out", str(clean)]) == 0
    assert main([*argv, "--out", str(robust), "--attack", "l2", "--epsilon", "2", "--attack-steps", "1"]) == 0
    assert "adversarial: PGD L2, epsilon 2, 1 steps of 2.5, random start." in capsys.readouterr().out
    clean, robust = torch.load(clean, weights_only=True), torch.load(robust, weights_only=True)
    assert not all(torch.equal(clean[key], robust[key]) for key in clean)
