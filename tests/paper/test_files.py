"""What the kit reads back runs no code, and what it writes never follows a planted link."""

import os
import pickle
from pathlib import Path

import pytest
import torch
from conftest import SHARED_DATA

from captum_fillblanks.cli import main
from captum_fillblanks.paper.files import load_tensors_file, save_tensors_file, write_atomically

SHARED_MNIST = SHARED_DATA / "mnist"


class RunsCode:
    """Unpickling this makes the folder ``path``: proof that loading ran code."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self):
        return (os.mkdir, (str(self.path),))


def plant_pickle(path: Path, sentinel: Path) -> None:
    torch.save({"fill": RunsCode(sentinel), "predicted": torch.zeros(2)}, path)


def test_loading_a_pickle_that_runs_code_raises_and_runs_nothing(tmp_path):
    path, sentinel = tmp_path / "shard.pt", tmp_path / "ran"
    plant_pickle(path, sentinel)
    with pytest.raises(pickle.UnpicklingError):
        load_tensors_file(path)
    assert not sentinel.exists()
    # the same file loaded the unsafe way would have run it: the test plants real code
    torch.load(path, weights_only=False)
    assert sentinel.is_dir()


def test_what_the_kit_saves_loads_back_safely(tmp_path):
    saved = {"fill": torch.rand(2, 1, 4, 4), "n_kept": torch.tensor([3, 4]), "names": ["a"], "none": None}
    loaded = load_tensors_file(save_tensors_file(saved, tmp_path / "f.pt"))
    assert torch.equal(loaded["fill"], saved["fill"]) and loaded["names"] == ["a"] and loaded["none"] is None


def test_a_link_planted_at_the_target_is_replaced_and_its_victim_left_alone(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    target = tmp_path / "out" / "report.md"
    target.parent.mkdir()
    target.symlink_to(victim)
    write_atomically(target, lambda handle: handle.write(b"report"))
    assert victim.read_text() == "precious"
    assert not target.is_symlink() and target.read_text() == "report"
    assert [p.name for p in target.parent.iterdir()] == ["report.md"]  # no temporary left


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "results.pt"
    target.write_text("old")

    def fails(handle):
        handle.write(b"half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        write_atomically(target, fails)
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["results.pt"]


def run_argv(out: Path) -> list[str]:
    return [
        "reproduce", "--dataset", "mnist", "--data-dir", str(SHARED_MNIST), "--out", str(out),
        "--n-images", "2", "--n-samples", "2", "--n-validation", "10", "--figure-samples", "2",
        "--normalization", "max_abs", "--no-progress",
    ]  # fmt: skip


@pytest.mark.skipif(not SHARED_MNIST.is_dir(), reason="needs ../shared/data/mnist")
def test_a_rerun_over_planted_files_runs_no_code_and_writes_nothing_outside_out(tmp_path):
    out = tmp_path / "out"
    assert main(run_argv(out)) == 0
    folder = out / "shards" / "mnist_simple-cnn"
    # every file a run writes, and the names earlier versions wrote their temporaries under,
    # replaced by links to files outside --out
    victims = {}
    for name in ("report.md", "report.md.partial", "results.pt", "results.pt.partial", "fig3_progressive.png"):
        victim = tmp_path / f"victim_{name}"
        victim.write_text("precious")
        (out / name).unlink(missing_ok=True)
        (out / name).symlink_to(victim)
        victims[out / name] = victim
    assert main(run_argv(out)) == 0
    assert all(victim.read_text() == "precious" for victim in victims.values())
    assert not any((out / name).is_symlink() for name in ("report.md", "results.pt", "fig3_progressive.png"))
    assert "## Table 1" in (out / "report.md").read_text()
    # a shard and the validation fills replaced by pickles that would run code
    for i, path in enumerate([next(folder.glob("shard_*.pt")), next(folder.glob("validation_*.pt"))]):
        original = path.read_bytes()
        sentinel = tmp_path / f"ran_{i}"
        plant_pickle(path, sentinel)
        with pytest.raises(SystemExit, match=f"{path.name} is not a complete fill file"):
            main(run_argv(out))
        assert not sentinel.exists()
        path.write_bytes(original)
    assert main(run_argv(out)) == 0


@pytest.mark.skipif(not SHARED_MNIST.is_dir(), reason="needs ../shared/data/mnist")
@pytest.mark.parametrize("content", ["[]", "", "not json", '"a string"'])
def test_a_manifest_that_is_not_an_object_is_named_in_one_line(tmp_path, content):
    folder = tmp_path / "shards" / "mnist_simple-cnn"
    folder.mkdir(parents=True)
    (folder / "manifest.json").write_text(content)
    with pytest.raises(SystemExit, match="manifest.json is not a fill folder's manifest"):
        main(run_argv(tmp_path))


@pytest.mark.skipif(not SHARED_MNIST.is_dir(), reason="needs ../shared/data/mnist")
@pytest.mark.parametrize("linked", ["shards", "shards/mnist_simple-cnn"])
def test_a_linked_folder_in_out_is_refused_and_nothing_is_written_through_it(tmp_path, linked):
    out, elsewhere = tmp_path / "out", tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "victim.partial").write_text("precious")  # the leftover cleanup would delete it
    (out / linked).parent.mkdir(parents=True)
    (out / linked).symlink_to(elsewhere, target_is_directory=True)
    with pytest.raises(SystemExit, match="is a symbolic link"):
        main(run_argv(out))
    assert sorted(p.name for p in elsewhere.rglob("*")) == ["victim.partial"]
