"""One record of a reproduction's arguments, from which its manifest, its rank agreement
and its folders are derived."""

import dataclasses
from pathlib import Path

import pytest

from captum_fillblanks.paper.models import ResNet5_Weights, SimpleCNN_Weights
from captum_fillblanks.paper.reproduce import CANDIDATE_SETTINGS, RunConfig


def test_the_manifest_key_is_the_one_earlier_runs_wrote():
    # a fill folder written before the run was one record must still be accepted
    config = RunConfig.create("mnist", arch="resnet5", weights="MNIST_5K_FLATTEN", candidates=CANDIDATE_SETTINGS)
    assert config.manifest_key() == {
        "dataset": "mnist",
        "arch": "resnet5",
        "weights": "ResNet5_Weights.MNIST_5K_FLATTEN (resnet5_mnist_5k_flatten.pt)",
        "mask_ratio": 0.25,
        "patch_size": 2,
        "control_seed": 0,
        "control_samples": 1000,
    }
    assert (
        RunConfig.create("mnist", n_samples=40, candidates=CANDIDATE_SETTINGS).manifest_key()["control_samples"] == 40
    )


def test_defaults_resolve_the_data_sets_model():
    config = RunConfig.create("fashion-mnist", candidates=CANDIDATE_SETTINGS[:1])
    assert (config.arch, config.weights) == ("resnet5", ResNet5_Weights.FASHION_MNIST)
    assert config.model_name == "ResNet5 (ResNet5_Weights.FASHION_MNIST)"
    assert RunConfig.create("mnist", candidates=CANDIDATE_SETTINGS).weights is SimpleCNN_Weights.MNIST_5K


def test_shards_folders_keep_their_names():
    out = Path("out")
    default = RunConfig.create("mnist", arch="resnet5", candidates=CANDIDATE_SETTINGS)
    assert default.weights is ResNet5_Weights.MNIST_5K_FLATTEN  # MNIST's default ResNet5 now
    average_pool = dataclasses.replace(default, weights=ResNet5_Weights.MNIST_5K)
    # the folders keep the names they were first given, whichever weights are the default
    assert average_pool.shards_folder(out) == out / "shards" / "mnist_resnet5"
    assert default.shards_folder(out) == out / "shards" / "mnist_resnet5_MNIST_5K_FLATTEN"
    fashion = RunConfig.create("fashion-mnist", candidates=CANDIDATE_SETTINGS)
    assert fashion.shards_folder(out) == out / "shards" / "fashion-mnist_resnet5"


def test_every_argument_that_decides_the_results_is_in_the_rank_agreement():
    config = RunConfig.create("mnist", candidates=CANDIDATE_SETTINGS[:2])
    agreement = config.agreement("cpu")
    decided_elsewhere = {"weights", "candidates"}  # given by name / as strings
    for field in dataclasses.fields(RunConfig):
        if field.name in agreement and field.name not in decided_elsewhere:
            assert agreement[field.name] == getattr(config, field.name)
    assert agreement["candidates"] == [str(c) for c in CANDIDATE_SETTINGS[:2]]
    assert [c.threshold for c in CANDIDATE_SETTINGS[:2]] == [0.05, 0.1]
    assert agreement["weights"] == "MNIST_5K" and agreement["device type"] == "cpu"
    # the masks and the control's cap are fixed by RunConfig.create (no argument sets them),
    # so every rank has the same; every other field is compared
    fixed_by_create = {"mask_ratio", "patch_size", "n_steps", "control_samples_cap"}
    assert {field.name for field in dataclasses.fields(RunConfig)} <= set(agreement) | fixed_by_create
    for name in ("n_images", "n_samples", "shard_size", "n_validation", "figure_samples", "seed"):
        assert agreement[name] != RunConfig.create("mnist", candidates=CANDIDATE_SETTINGS[:2], **{name: 3}).agreement(
            "cpu"
        ).get(name)


@pytest.mark.parametrize("tolerance", [0, -0.1, float("inf"), True, "0.1"])
def test_a_tolerance_that_is_not_a_positive_number_is_refused(tolerance):
    with pytest.raises(ValueError, match="tolerance must be a positive finite number or None"):
        RunConfig.create("mnist", candidates=CANDIDATE_SETTINGS, tolerance=tolerance)


def test_the_tolerance_is_agreed_by_every_rank_and_leaves_the_manifest_alone():
    fixed = RunConfig.create("mnist", candidates=CANDIDATE_SETTINGS)
    stopped = RunConfig.create("mnist", candidates=CANDIDATE_SETTINGS, tolerance=0.05)
    assert stopped.agreement("cpu")["tolerance"] == 0.05 and fixed.agreement("cpu")["tolerance"] is None
    assert stopped.manifest_key() == fixed.manifest_key()  # the file names hold it
    assert (fixed.fill_suffix, stopped.fill_suffix) == ("", "_tol0.05")


@pytest.mark.parametrize(("name", "value"), [("n_images", 0), ("figure_samples", True), ("shard_size", 2.5)])
def test_a_size_that_is_not_a_positive_int_is_refused_by_name(name, value):
    with pytest.raises(ValueError, match=f"{name} must be an int >= 1, got {value!r}"):
        RunConfig.create("mnist", candidates=CANDIDATE_SETTINGS, **{name: value})


def test_no_candidates_and_unknown_models_are_refused():
    with pytest.raises(ValueError, match="candidates must hold at least one TransformSetting"):
        RunConfig.create("mnist", candidates=[])
    with pytest.raises(ValueError, match="no shipped model for arch='simple-cnn' on dataset='fashion-mnist'"):
        RunConfig.create("fashion-mnist", arch="simple-cnn", candidates=CANDIDATE_SETTINGS)
