"""The data loaders on folders of IDX files, the bundled samples and the training split."""

import gzip
import os
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import SHARED_DATA

from captum_fillblanks.paper.data import (
    MNIST,
    FashionMNIST,
    load_dataset,
    load_samples,
    load_tensors,
    sample_indices,
    split_training_set,
)

FOLDERS = {"mnist": "mnist", "fashion-mnist": "fashion-mnist"}
N_SMALL = 30


def shared_folder(name: str) -> Path:
    folder = SHARED_DATA / FOLDERS[name]
    if not (folder / "t10k-images-idx3-ubyte.gz").is_file():
        pytest.skip(f"no shared data at {folder}")
    return folder


def read_gz_idx(path: Path) -> np.ndarray:
    """Test-only reader, independent of torchvision's, to check what the loader returns."""
    raw = gzip.decompress(path.read_bytes())
    n_dims = raw[3]
    shape = struct.unpack(f">{n_dims}I", raw[4 : 4 + 4 * n_dims])
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * n_dims).reshape(shape)


def idx_bytes(array: np.ndarray) -> bytes:
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim)  # 0x08: unsigned bytes
    return header + struct.pack(f">{array.ndim}I", *array.shape) + array.astype(np.uint8).tobytes()


def write_split(folder: Path, split: str, images: np.ndarray, labels: np.ndarray, gz: bool):
    folder.mkdir(parents=True, exist_ok=True)
    for kind, array, dims in (("images", images, 3), ("labels", labels, 1)):
        name = f"{split}-{kind}-idx{dims}-ubyte"
        data = idx_bytes(array)
        if gz:
            (folder / f"{name}.gz").write_bytes(gzip.compress(data))
        else:
            (folder / name).write_bytes(data)


def first_images(name: str, split: str = "t10k", n: int = N_SMALL):
    folder = shared_folder(name)
    images = read_gz_idx(folder / f"{split}-images-idx3-ubyte.gz")[:n]
    labels = read_gz_idx(folder / f"{split}-labels-idx1-ubyte.gz")[:n]
    return images, labels


@pytest.mark.parametrize("gz", [True, False], ids=["gz", "plain"])
@pytest.mark.parametrize("name", ["mnist", "fashion-mnist"])
def test_reads_a_flat_folder_of_idx_files(tmp_path, name, gz):
    images, labels = first_images(name)
    write_split(tmp_path, "t10k", images, labels, gz=gz)
    written = sorted(os.listdir(tmp_path))

    dataset = load_dataset(name, tmp_path, train=False)
    assert isinstance(dataset, {"mnist": MNIST, "fashion-mnist": FashionMNIST}[name])
    assert len(dataset) == N_SMALL
    assert torch.equal(dataset.data, torch.from_numpy(images.copy()))
    assert dataset[0][1] == int(labels[0])
    assert sorted(os.listdir(tmp_path)) == written  # the user's folder is only read


def test_load_tensors_gives_unit_range_floats_and_int64_labels(tmp_path):
    images, labels = first_images("mnist")
    write_split(tmp_path, "t10k", images, labels, gz=True)
    x, y = load_tensors("mnist", tmp_path, train=False)
    assert x.shape == (N_SMALL, 1, 28, 28) and x.dtype == torch.float32
    assert x.min() == 0 and x.max() == 1
    assert torch.equal((x[:, 0] * 255).round().to(torch.uint8), torch.from_numpy(images.copy()))
    assert y.dtype == torch.int64 and y.tolist() == labels.tolist()


def test_reads_the_shared_mnist_folder_as_is():
    folder = shared_folder("mnist")
    x, y = load_tensors("mnist", folder, train=True)
    assert x.shape == (5000, 1, 28, 28)
    assert torch.bincount(y).tolist() == [500] * 10


def test_torchvision_layout_still_works(tmp_path):
    images, labels = first_images("fashion-mnist")
    write_split(tmp_path / "FashionMNIST" / "raw", "t10k", images, labels, gz=False)
    assert len(load_dataset("fashion-mnist", tmp_path, train=False)) == N_SMALL


def test_a_missing_folder_names_the_folder_and_the_expected_files(tmp_path):
    missing = tmp_path / "nowhere"
    with pytest.raises(FileNotFoundError) as error:
        load_dataset("mnist", missing)
    message = str(error.value)
    assert str(missing) in message
    assert "train-images-idx3-ubyte" in message and "train-labels-idx1-ubyte" in message
    assert "download=True" in message


def test_a_folder_with_only_the_test_split_serves_it_and_explains_the_train_split(tmp_path):
    images, labels = first_images("mnist")
    write_split(tmp_path, "t10k", images, labels, gz=True)
    assert len(load_dataset("mnist", tmp_path, train=False)) == N_SMALL
    with pytest.raises(FileNotFoundError, match="train-images-idx3-ubyte"):
        load_dataset("mnist", tmp_path, train=True)


@pytest.mark.parametrize(
    "corrupt",
    [
        {"t10k-images-idx3-ubyte": b"not an idx file"},
        {"t10k-images-idx3-ubyte.gz": b"not gzip either"},
        {"t10k-images-idx3-ubyte": b""},
    ],
    ids=["garbage", "bad-gzip", "empty"],
)
def test_a_malformed_file_raises_value_error_naming_it(tmp_path, corrupt):
    labels = np.zeros(3, dtype=np.uint8)
    (tmp_path / "t10k-labels-idx1-ubyte").write_bytes(idx_bytes(labels))
    for name, content in corrupt.items():
        (tmp_path / name).write_bytes(content)
    with pytest.raises(ValueError, match="t10k-images-idx3-ubyte"):
        load_dataset("mnist", tmp_path, train=False)


def test_images_and_labels_of_different_lengths_are_refused(tmp_path):
    write_split(tmp_path, "t10k", np.zeros((4, 28, 28)), np.zeros(3), gz=False)
    with pytest.raises(ValueError, match="4 labels|3 labels"):
        load_dataset("mnist", tmp_path, train=False)


def test_images_of_another_size_are_refused(tmp_path):
    write_split(tmp_path, "t10k", np.zeros((3, 32, 32)), np.zeros(3), gz=False)
    with pytest.raises(ValueError, match="28, 28"):
        load_dataset("mnist", tmp_path, train=False)


def test_an_unknown_dataset_name_lists_the_known_ones(tmp_path):
    with pytest.raises(ValueError, match="'mnist', 'fashion-mnist'"):
        load_tensors("cifar10", tmp_path)


@pytest.mark.parametrize("name", ["mnist", "fashion-mnist"])
def test_bundled_samples_are_ten_real_images_per_class(name):
    images, labels = load_samples(name)
    assert images.shape == (100, 1, 28, 28) and images.dtype == torch.float32
    assert images.min() >= 0 and images.max() <= 1
    assert labels.dtype == torch.int64
    assert labels.tolist() == [c for c in range(10) for _ in range(10)]
    assert (images.flatten(1).amax(1) > 0.5).all()  # no blank images
    assert len({tuple(image.flatten().tolist()) for image in images}) == 100


def test_split_training_set_holds_out_the_last_50_of_each_digit():
    labels = torch.arange(10).repeat_interleave(500)  # the 5k subset's file order
    split = split_training_set("mnist", labels)
    assert [len(part) for part in split] == [4500, 400, 100]
    everything = torch.cat(list(split))
    assert torch.equal(everything.sort().values, torch.arange(5000))
    assert split.samples[:10].tolist() == list(range(450, 460))
    assert split.validation[:40].tolist() == list(range(460, 500))


def test_fashion_split_holds_out_500_per_class_for_validation():
    labels = torch.arange(60_000) % 10
    split = split_training_set("fashion-mnist", labels)
    assert [len(part) for part in split] == [55_000, 5_000, 0]
    assert torch.bincount(labels[split.validation]).tolist() == [500] * 10


def test_mnist_samples_are_held_out_of_training():
    labels = torch.arange(10).repeat_interleave(500)
    split = split_training_set("mnist", labels)
    shipped = sample_indices("mnist")
    assert torch.equal(shipped, split.samples)
    assert not set(shipped.tolist()) & set(split.train.tolist())


@pytest.mark.parametrize(("name", "split"), [("mnist", "train"), ("fashion-mnist", "t10k")])
def test_bundled_samples_are_the_documented_images_of_the_source_file(name, split):
    folder = shared_folder(name)
    source_images = read_gz_idx(folder / f"{split}-images-idx3-ubyte.gz")
    source_labels = read_gz_idx(folder / f"{split}-labels-idx1-ubyte.gz")
    indices = sample_indices(name).numpy()
    images, labels = load_samples(name)
    pixels = (images[:, 0] * 255).round().to(torch.uint8).numpy()
    assert np.array_equal(pixels, source_images[indices])
    assert labels.tolist() == source_labels[indices].tolist()
    if name == "mnist":
        split_indices = split_training_set(name, torch.from_numpy(source_labels.astype(np.int64)))
        assert indices.tolist() == split_indices.samples.tolist()
