"""What a user can get wrong on the command line ends in one line naming it, before any
work that would be lost; and a data folder of the other data set is refused."""

from pathlib import Path

import pytest
from conftest import SHARED_DATA

from captum_fillblanks.cli import main
from captum_fillblanks.paper.reproduce import CANDIDATE_SETTINGS, reproduce
from captum_fillblanks.paper.training import train_model

SHARED = SHARED_DATA


def one_line_error(argv: list[str]) -> str:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    message = str(exit_info.value.code)
    assert message.startswith(f"captum-fillblanks {argv[0]}: ") and "\n" not in message, message
    return message


def reproduce_argv(out: Path, dataset: str = "mnist", data_dir: Path = SHARED / "mnist", *extra: str) -> list[str]:
    return [
        "reproduce", "--dataset", dataset, "--data-dir", str(data_dir), "--out", str(out), "--n-images", "2",
        "--n-samples", "2", "--n-validation", "10", "--figure-samples", "2", "--no-progress", *extra,
    ]  # fmt: skip


@pytest.mark.skipif(not (SHARED / "fashion-mnist").is_dir(), reason="needs ../shared/data")
def test_a_folder_of_the_other_data_set_is_refused_and_named(tmp_path):
    message = one_line_error(reproduce_argv(tmp_path / "out", "mnist", SHARED / "fashion-mnist"))
    assert "does not hold mnist's t10k split" in message and "give --dataset fashion-mnist" in message
    assert not (tmp_path / "out").exists()
    with pytest.raises(ValueError, match="does not hold fashion-mnist's t10k split.*give --dataset mnist"):
        reproduce("fashion-mnist", SHARED / "mnist", tmp_path / "out", n_images=2, candidates=CANDIDATE_SETTINGS[:1])


@pytest.mark.parametrize(
    ("device", "expected"),
    [("bogus", "device='bogus' is not a torch device"), ("cuda:x", "is not a torch device")]
    + [("cuda", "no CUDA device")] * (not __import__("torch").cuda.is_available()),
)
def test_a_device_that_is_not_there_is_named_in_one_line(tmp_path, device, expected):
    assert expected in one_line_error(reproduce_argv(tmp_path / "out", "mnist", SHARED / "mnist", "--device", device))


@pytest.mark.parametrize("command", ["reproduce", "demo"])
@pytest.mark.parametrize("seed", [str(2**64), "-1"])
def test_a_seed_out_of_range_is_named_in_one_line(tmp_path, command, seed):
    argv = reproduce_argv(tmp_path / "out") if command == "reproduce" else ["demo", "--out", str(tmp_path / "out")]
    assert "seed must be an int in [0, " in one_line_error([*argv, "--seed", seed])


def test_train_refuses_what_would_fail_after_training(tmp_path):
    data = ["--dataset", "mnist", "--data-dir", str(tmp_path / "no-data")]
    assert "--epochs must be >= 1, got 0" in one_line_error(["train", *data, "--epochs", "0"])
    assert "--epochs must be >= 1, got -1" in one_line_error(["train", *data, "--epochs", "-1"])
    assert "--seed must be in [0, 2**63)" in one_line_error(["train", *data, "--seed", str(2**64)])
    folder = tmp_path / "a-folder"
    folder.mkdir()
    assert f"--out {folder} is a folder" in one_line_error(["train", *data, "--out", str(folder)])


@pytest.mark.parametrize(("name", "value"), [("epochs", 0), ("batch_size", 0), ("seed", 2**64), ("seed", -1)])
def test_train_model_refuses_sizes_and_seeds_by_name(name, value):
    import torch

    from captum_fillblanks.paper.models import simple_cnn

    data = (torch.zeros(4, 1, 28, 28), torch.zeros(4, dtype=torch.long))
    arguments = {"epochs": 1, name: value}
    with pytest.raises(ValueError, match=f"{name}={value}"):
        train_model(simple_cnn(), data, show_progress=False, **arguments)


@pytest.mark.parametrize(
    ("device", "expected"),
    [("bogus", "device='bogus' is not a torch device")]
    + [("cuda", "no CUDA device")] * (not __import__("torch").cuda.is_available()),
)
def test_the_mask_study_names_a_device_that_is_not_there(tmp_path, device, expected):
    argv = ["mask-study", "--dataset", "mnist", "--data-dir", str(SHARED / "mnist"), "--out", str(tmp_path)]
    assert expected in one_line_error([*argv, "--n-images", "2", "--n-samples", "2", "--device", device])


def _corpus(folder: Path, content: bytes, *, compress: bool = True) -> Path:
    import gzip

    folder.mkdir(exist_ok=True)
    (folder / "tweets.csv.gz").write_bytes(gzip.compress(content) if compress else content)
    return folder


HEADER = b"sentiment,confidence,text\n"


@pytest.mark.parametrize("command", ["reproduce", "train"])
@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (lambda d: _corpus(d, HEADER + b"positive,1,great\n" * 50, compress=False), "is not a gzip file"),
        (
            lambda d: (
                _corpus(d, HEADER + b"positive,1,great\n" * 500),
                (d / "tweets.csv.gz").write_bytes((d / "tweets.csv.gz").read_bytes()[:60]),
            ),
            "is cut short or damaged",
        ),
        (
            lambda d: _corpus(d, HEADER + b'positive,1,"' + b"a" * 200_000 + b'"\n'),
            "is not the tweet corpus: field larger",
        ),
        (lambda d: _corpus(d, HEADER), "holds no tweet"),
        (lambda d: _corpus(d, HEADER + b"positive,1,great\n"), "has no validation tweet"),
    ],
    ids=["plain-csv", "truncated", "huge-field", "empty", "no-split"],
)
def test_a_damaged_tweet_corpus_is_named_in_one_line(tmp_path, command, make, expected):
    if command == "train" and expected == "has no validation tweet":
        pytest.skip("training needs no validation tweet to start")
    make(tmp_path / "corpus")
    argv = ["--dataset", "tweets", "--data-dir", str(tmp_path / "corpus"), "--out", str(tmp_path / "out")]
    assert expected in one_line_error([command, *argv, *(["--no-progress"] if command == "reproduce" else [])])


@pytest.mark.parametrize(
    "option",
    [["--weights", "MNIST_5K"], ["--arch", "resnet5"], ["--normalization", "min_max"], ["--tolerance", "0.1"]],
)
def test_image_options_with_the_tweets_are_refused_not_ignored(tmp_path, option):
    argv = ["reproduce", "--dataset", "tweets", "--data-dir", str(tmp_path), "--out", str(tmp_path / "out"), *option]
    assert f"{option[0]} is not for --dataset tweets (its texts kit" in one_line_error(argv)


@pytest.mark.parametrize(
    "options",
    [["--arch", "resnet5"], ["--noise-std", "0.5"], ["--attack-steps", "3"], ["--epsilon", "1", "--warmup", "0.1"]],
)
def test_image_training_options_with_the_tweets_are_refused_not_ignored(tmp_path, options):
    argv = ["train", "--dataset", "tweets", "--data-dir", str(tmp_path), "--out", str(tmp_path / "out.pt"), *options]
    named = [option for option in options if option.startswith("--")]
    assert f"{', '.join(named)} {'is' if len(named) == 1 else 'are'} not for --dataset tweets" in one_line_error(argv)


def test_a_bad_demo_tolerance_from_python_writes_nothing(tmp_path):
    from captum_fillblanks.paper.demo import run_demo

    with pytest.raises(ValueError, match="tolerance must be a positive finite number"):
        run_demo(tmp_path / "demo", tolerance=float("nan"), echo=lambda text: None)
    assert not (tmp_path / "demo").exists()


def test_a_test_tweet_with_no_token_is_named_with_its_index(tmp_path):
    # "ääääää" is mojibake only (no token) and falls in the test split, as the others do in theirs
    rows = ["positive,1,great flight 12", "positive,1,great flight 16", "negative,1,late again 10", "negative,1,ääääää"]
    _corpus(tmp_path / "corpus", HEADER + "".join(f"{row}\n" for row in rows).encode("latin-1"))
    argv = ["reproduce", "--dataset", "tweets", "--data-dir", str(tmp_path / "corpus"), "--out", str(tmp_path / "out")]
    message = one_line_error([*argv, "--n-images", "2", "--n-samples", "2", "--n-validation", "1", "--no-progress"])
    assert "tweet #1 of its split ('ääääää') has no token the tokenizer reads" in message
