"""The reference models: shapes, the shipped weights, and the ``weights=`` argument."""

import math

import pytest
import torch
from conftest import SHARED_DATA
from torch import nn

from captum_fillblanks.paper.data import load_samples
from captum_fillblanks.paper.models import (
    JUDGE_ARCH,
    LeNet5,
    LeNet5_Weights,
    ResNet5,
    ResNet5_Weights,
    SimpleCNN,
    SimpleCNN_Weights,
    lenet5,
    resnet5,
    shipped_weights,
    simple_cnn,
)
from captum_fillblanks.paper.training import evaluate_accuracy

SHIPPED = [
    (simple_cnn, SimpleCNN_Weights.MNIST_5K, "mnist"),
    (simple_cnn, SimpleCNN_Weights.MNIST_5K_ROBUST, "mnist"),
    (resnet5, ResNet5_Weights.MNIST_5K, "mnist"),
    (resnet5, ResNet5_Weights.MNIST_5K_FLATTEN, "mnist"),
    (resnet5, ResNet5_Weights.MNIST_5K_ANTIALIAS, "mnist"),
    (resnet5, ResNet5_Weights.MNIST_5K_FLATTEN_ANTIALIAS, "mnist"),
    (resnet5, ResNet5_Weights.MNIST_5K_FLATTEN_ROBUST, "mnist"),
    (resnet5, ResNet5_Weights.FASHION_MNIST, "fashion-mnist"),
    (resnet5, ResNet5_Weights.FASHION_MNIST_ANTIALIAS, "fashion-mnist"),
    (resnet5, ResNet5_Weights.FASHION_MNIST_ROBUST, "fashion-mnist"),
    (lenet5, LeNet5_Weights.MNIST_5K, "mnist"),
    (lenet5, LeNet5_Weights.FASHION_MNIST, "fashion-mnist"),
]
SHIPPED_IDS = [repr(weights) for _, weights, _ in SHIPPED]


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("builder", [simple_cnn, resnet5, lenet5])
def test_builders_map_a_batch_of_digits_to_ten_logits(builder):
    model = builder()
    assert model(torch.rand(3, 1, 28, 28)).shape == (3, 10)


def test_simple_cnn_has_three_conv_layers_and_a_linear_classifier():
    model = simple_cnn()
    assert isinstance(model, SimpleCNN)
    assert sum(isinstance(m, nn.Conv2d) for m in model.modules()) == 3
    assert isinstance(model.classifier, nn.Linear)


def test_resnet5_has_five_3x3_convolutions_on_its_main_path():
    model = resnet5()
    assert isinstance(model, ResNet5)
    kernels = [m.kernel_size for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert kernels.count((3, 3)) == 5
    assert kernels.count((1, 1)) == 1  # layer2's shortcut projection, not counted


def test_resnet5_takes_other_channels_and_class_counts():
    model = resnet5(in_channels=3, num_classes=7)
    assert model(torch.rand(2, 3, 32, 32)).shape == (2, 7)


def test_untrained_builders_return_train_mode_models():
    assert simple_cnn().training and resnet5().training and lenet5().training


def test_the_judge_is_another_architecture_lenet5():
    judge = lenet5()
    assert isinstance(judge, LeNet5) and JUDGE_ARCH == {"mnist": "lenet5", "fashion-mnist": "lenet5"}
    kernels = {m.kernel_size for m in judge.modules() if isinstance(m, nn.Conv2d)}
    assert kernels == {(5, 5)}  # the judged models use 3 x 3 kernels
    assert not any(isinstance(m, (nn.MaxPool2d, nn.BatchNorm2d)) for m in judge.modules())


@pytest.mark.parametrize(("builder", "weights", "dataset"), SHIPPED, ids=SHIPPED_IDS)
def test_shipped_weights_classify_the_bundled_samples(builder, weights, dataset):
    model = builder(weights=weights)
    assert not model.training
    assert all(not m.training for m in model.modules())
    images, labels = load_samples(dataset)
    # 100 images: within three binomial standard errors of the t10k accuracy (about 10
    # points at the robust Fashion-MNIST model's 87.8 %, 4 at MNIST's 98 %)
    expected = weights.meta["t10k_accuracy"]
    assert evaluate_accuracy(model, images, labels) >= expected - 3 * math.sqrt(expected * (1 - expected) / len(labels))


@pytest.mark.parametrize(("builder", "weights", "dataset"), SHIPPED, ids=SHIPPED_IDS)
def test_shipped_weights_meta_describes_the_file(builder, weights, dataset):
    meta = weights.meta
    model = builder(weights=weights)
    assert meta["num_params"] == n_params(model)
    assert meta["input_range"] == (0.0, 1.0)
    assert len(meta["categories"]) == 10
    assert 0.85 < meta["t10k_accuracy"] <= 1.0
    assert dataset in meta["recipe"]["command"]
    assert weights.file_name.endswith(".pt")


def test_weights_load_from_a_member_name_or_default():
    reference = simple_cnn(weights=SimpleCNN_Weights.MNIST_5K).state_dict()
    for name in ("MNIST_5K", "DEFAULT", "SimpleCNN_Weights.MNIST_5K"):
        loaded = simple_cnn(weights=name).state_dict()
        assert all(torch.equal(loaded[key], reference[key]) for key in reference)
    assert ResNet5_Weights.DEFAULT is ResNet5_Weights.FASHION_MNIST
    assert SimpleCNN_Weights.DEFAULT is SimpleCNN_Weights.MNIST_5K


def test_shipped_weights_differ_from_a_fresh_model():
    torch.manual_seed(0)
    fresh, trained = resnet5(), resnet5(weights="MNIST_5K")
    assert not torch.equal(fresh.fc.weight, trained.fc.weight)


@pytest.mark.parametrize(
    ("builder", "bad"),
    [
        (simple_cnn, "IMAGENET1K_V1"),
        (simple_cnn, ResNet5_Weights.MNIST_5K),
        (resnet5, SimpleCNN_Weights.MNIST_5K),
        (resnet5, True),
        (resnet5, "fashion_mnist"),
    ],
)
def test_a_bad_weights_value_names_weights_and_the_valid_values(builder, bad):
    with pytest.raises(ValueError, match="weights=") as error:
        builder(weights=bad)
    assert "MNIST_5K" in str(error.value) and "DEFAULT" in str(error.value)


def test_weights_with_a_different_class_count_are_refused():
    with pytest.raises(ValueError, match="num_classes=10"):
        resnet5(weights="DEFAULT", num_classes=5)


def test_resnet5_flatten_head_gives_each_position_its_own_weights():
    torch.manual_seed(0)
    model = resnet5(head="flatten").eval()
    assert model.fc.in_features == 64 * 7 * 7
    assert [m.kernel_size for m in model.modules() if isinstance(m, nn.Conv2d)].count((3, 3)) == 5
    # the same feature at another place of the last map moves the logits differently
    features = torch.zeros(2, 64, 7, 7)
    features[0, 3, 1, 1] = features[1, 3, 5, 5] = 1
    logits = model.fc(torch.flatten(model.avgpool(features), 1))
    assert not torch.allclose(logits[0], logits[1])
    pooled = resnet5().eval()
    logits = pooled.fc(torch.flatten(pooled.avgpool(features), 1))
    assert torch.allclose(logits[0], logits[1])  # global average pooling forgets where


def test_blurpool_removes_a_period_two_checkerboard_and_halves_the_side():
    from captum_fillblanks.paper.models import BlurPool2d

    blur = BlurPool2d(2)
    rows, cols = torch.meshgrid(torch.arange(9), torch.arange(9), indexing="ij")
    checker = ((rows + cols) % 2).float().expand(1, 2, 9, 9)
    out = blur(checker)
    assert out.shape == (1, 2, 5, 5)  # ceil(9 / 2)
    # [1, 2, 1] / 4 along each axis sends (-1)^n to 0: a checkerboard of 0 and 1 gives 1/2
    # wherever the window lies inside the image (the reflected border does the same)
    assert torch.allclose(out, torch.full_like(out, 0.5))
    constant = torch.full((1, 2, 8, 8), 3.0)
    assert torch.allclose(blur(constant), torch.full((1, 2, 4, 4), 3.0))  # the taps sum to one
    assert not list(blur.parameters()) and "kernel" not in blur.state_dict()


def test_resnet5_antialias_keeps_the_shapes_and_parameters_and_blurs_before_each_subsampling():
    from captum_fillblanks.paper.models import BlurPool2d

    for head in ("avgpool", "flatten"):
        plain, smooth = resnet5(head=head), resnet5(head=head, antialias=True)
        assert n_params(smooth) == n_params(plain)
        assert smooth(torch.rand(2, 1, 28, 28)).shape == (2, 10)
    model = resnet5(antialias=True)
    assert sum(isinstance(m, BlurPool2d) for m in model.modules()) == 3  # stem, layer2 conv1, shortcut
    strided = [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.MaxPool2d)) and m.stride not in (1, (1, 1))]
    assert not strided  # only the blurs subsample
    with pytest.raises(TypeError, match="antialias=1"):
        resnet5(antialias=1)


def test_resnet5_refuses_an_unknown_head():
    with pytest.raises(ValueError, match="head='max'.*'avgpool', 'flatten'"):
        resnet5(head="max")


def test_weights_build_the_head_they_were_trained_with_and_refuse_another():
    assert isinstance(resnet5(weights="MNIST_5K").avgpool, nn.AdaptiveAvgPool2d)
    assert resnet5(weights="MNIST_5K_FLATTEN").fc.in_features == 64 * 7 * 7
    with pytest.raises(ValueError, match="trained with head='avgpool'; got head='flatten'"):
        resnet5(weights="MNIST_5K", head="flatten")


def test_shipped_weights_picks_the_default_or_a_named_member_of_the_data_set():
    # on MNIST the flatten head is the default (the better model by the readability checks)
    assert shipped_weights("mnist", "resnet5") is ResNet5_Weights.MNIST_5K_FLATTEN
    assert shipped_weights("mnist", "resnet5", "MNIST_5K") is ResNet5_Weights.MNIST_5K
    assert shipped_weights("fashion-mnist", "resnet5", "DEFAULT") is ResNet5_Weights.FASHION_MNIST
    with pytest.raises(ValueError, match="weights='FASHION_MNIST'.*trained on MNIST"):
        shipped_weights("mnist", "resnet5", "FASHION_MNIST")
    with pytest.raises(ValueError, match="no shipped model for arch='simple-cnn' on dataset='fashion-mnist'"):
        shipped_weights("fashion-mnist", "simple-cnn")


def test_the_registry_names_each_models_builder_weights_and_name():
    from captum_fillblanks.paper.models import (
        MODELS,
        ShippedModel,
        TweetTransformer_Weights,
        list_shipped_models,
        resnet5,
        shipped_model,
    )

    assert list_shipped_models() == [
        ("mnist", "simple-cnn"),
        ("mnist", "resnet5"),
        ("fashion-mnist", "resnet5"),
        ("mnist", "lenet5"),
        ("fashion-mnist", "lenet5"),
        ("tweets", "tweet-transformer"),
    ]
    assert shipped_model("tweets").weights is TweetTransformer_Weights.TWEETS
    assert list_shipped_models("fashion-mnist") == [("fashion-mnist", "resnet5"), ("fashion-mnist", "lenet5")]
    entry = shipped_model("mnist", "resnet5")
    assert isinstance(entry, ShippedModel) and entry is MODELS["mnist", "resnet5"]
    assert (entry.builder, entry.weights, entry.name) == (resnet5, ResNet5_Weights.MNIST_5K_FLATTEN, "ResNet5")
    assert shipped_model("mnist").arch == "simple-cnn" and shipped_model("fashion-mnist").arch == "resnet5"
    flatten = entry.build()
    assert not flatten.training and flatten.fc.in_features == 64 * 7 * 7
    assert isinstance(entry.build(ResNet5_Weights.MNIST_5K).avgpool, nn.AdaptiveAvgPool2d)
    with pytest.raises(TypeError):
        MODELS["mnist", "other"] = entry  # read-only
    with pytest.raises(ValueError, match="no shipped model for arch='simple-cnn' on dataset='fashion-mnist'"):
        shipped_model("fashion-mnist", "simple-cnn")


@pytest.mark.skipif(not (SHARED_DATA / "mnist").is_dir(), reason="needs ../shared/data")
@pytest.mark.parametrize(
    ("builder", "weights", "standard", "dataset", "attack"),
    [
        (simple_cnn, SimpleCNN_Weights.MNIST_5K_ROBUST, SimpleCNN_Weights.MNIST_5K, "mnist", ("l2", 2.5, 7)),
        (
            resnet5,
            ResNet5_Weights.MNIST_5K_FLATTEN_ROBUST,
            ResNet5_Weights.MNIST_5K_FLATTEN,
            "mnist",
            ("l2", 2.0, 7),
        ),
        (resnet5, ResNet5_Weights.FASHION_MNIST_ROBUST, ResNet5_Weights.FASHION_MNIST, "fashion-mnist", ("l2", 1.0, 1)),
    ],
    ids=["simple-cnn", "resnet5-flatten", "fashion-resnet5"],
)
def test_the_robust_weights_have_the_clean_and_robust_accuracy_their_meta_records(
    builder, weights, standard, dataset, attack
):
    from captum_fillblanks.paper.data import load_tensors
    from captum_fillblanks.paper.robust import PGD, robust_accuracy

    model = builder(weights=weights)
    images, labels = load_tensors(dataset, SHARED_DATA / dataset, train=False)
    assert evaluate_accuracy(model, images, labels) == pytest.approx(weights.meta["t10k_accuracy"], abs=5e-4)
    standard = builder(weights=standard)
    for measured in weights.meta["robust_accuracy"].values():
        evaluation, n = PGD(**measured["attack"]), measured["images"]
        robust = robust_accuracy(model, images[:n], labels[:n], evaluation)
        assert robust == pytest.approx(measured["accuracy"], abs=0.005)  # another CPU may round differently
        assert abs(measured["art_accuracy"] - measured["accuracy"]) <= 0.01  # ART's PGD agrees with ours
        # what robust means: the standard twin loses far more to the same attack (first 200 images)
        assert robust_accuracy(standard, images[:200], labels[:200], evaluation) < robust - 0.15
    norm, epsilon, steps = attack
    assert PGD(**weights.meta["recipe"]["attack"]) == PGD(norm, epsilon, steps=steps, warmup=0.2)
