"""Data-set runs under torchrun: 2 CPU processes (gloo) give the 1-process result, a
killed run resumes, and ranks that disagree stop with one clear error.

Every run here goes through the real launcher (``python -m torch.distributed.run``,
i.e. torchrun). ``OMP_NUM_THREADS=1`` in every process, as torchrun sets it for more
than one process, so the 1- and 2-process runs sum in the same order: the fills come
out equal, and the test allows 1e-6 (float summation order) although none is measured.
"""

import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch
from conftest import SHARED_DATA

from captum_fillblanks.attr.metrics import ROWS

SHARED_MNIST = SHARED_DATA / "mnist"
needs_mnist = pytest.mark.skipif(not SHARED_MNIST.is_dir(), reason="needs ../shared/data/mnist")


def _torchrun(n_processes: int, *args: str, wait: bool = True):
    command = [
        # --standalone: a c10d rendezvous on a free port, which also serves restarts
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(n_processes), *args,
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    if wait:
        return subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _reproduce_args(out: Path, n_images: int = 12, shard_size: int = 5, n_samples: int = 8) -> list[str]:
    return [
        "-m", "captum_fillblanks", "reproduce", "--dataset", "mnist", "--data-dir", str(SHARED_MNIST),
        "--out", str(out), "--n-images", str(n_images), "--shard-size", str(shard_size),
        "--n-samples", str(n_samples), "--n-validation", "10", "--figure-samples", "8", "--no-progress",
        "--device", "cpu",
    ]  # fmt: skip


def _table_1(report: str) -> list[str]:
    return [line for line in report.splitlines() if line.startswith("| **")]


def _assert_same_results(a: Path, b: Path) -> None:
    one, two = torch.load(a / "results.pt"), torch.load(b / "results.pt")
    assert one["settings"] == two["settings"]
    assert set(one["chosen"]) == set(ROWS)
    for row in ROWS:  # integer confusion matrices: identical
        assert torch.equal(one["chosen"][row], two["chosen"][row]), row
        assert torch.equal(one["min_max_only"][row], two["min_max_only"][row]), row
    assert torch.equal(one["class_counts"], two["class_counts"])
    assert (one["class_means"] - two["class_means"]).abs().max() <= 1e-6
    assert _table_1((a / "report.md").read_text()) == _table_1((b / "report.md").read_text())


@pytest.fixture(scope="module")
def one_process_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("one")
    done = _torchrun(1, *_reproduce_args(out))
    assert done.returncode == 0, done.stderr[-3000:]
    return out


@needs_mnist
def test_two_processes_give_the_one_process_report(one_process_run, tmp_path):
    done = _torchrun(2, *_reproduce_args(tmp_path))
    assert done.returncode == 0, done.stderr[-3000:]
    _assert_same_results(one_process_run, tmp_path)
    report = (tmp_path / "report.md").read_text()
    assert "2 processes (torchrun)" in report and "12 test images" in report
    # every shard and the validation fills computed once, by one rank or the other
    filled = re.findall(r"\[rank (\d)/2\] filled (\S+)", done.stdout)
    names = sorted(name for _, name in filled)
    assert names == sorted(p.name for p in (tmp_path / "shards" / "mnist_simple-cnn").glob("*.pt"))
    assert len(names) == 4 and {rank for rank, _ in filled} == {"0", "1"}
    assert "wrote" in done.stdout and done.stdout.count("wrote ") == 1  # rank 0 alone writes the report


def _descendants(pid: int) -> list[int]:
    """The processes below ``pid`` (torchrun starts its workers in sessions of their own,
    so killing torchrun's process group would leave them running)."""
    parents = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        children = parents.get(todo.pop(), [])
        found += children
        todo += children
    return found


@needs_mnist
@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="finds torchrun's workers in /proc")
def test_a_killed_run_resumes_with_the_missing_shards_only(tmp_path):
    reference = tmp_path / "reference"
    args = dict(n_images=12, shard_size=2, n_samples=150)
    assert _torchrun(1, *_reproduce_args(reference, **args)).returncode == 0

    out = tmp_path / "out"
    folder = out / "shards" / "mnist_simple-cnn"
    run = _torchrun(2, *_reproduce_args(out, **args), wait=False)
    deadline = time.monotonic() + 300
    while not list(folder.glob("shard_*.pt")) and run.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    for pid in [*_descendants(run.pid), run.pid]:  # every rank and torchrun itself, mid-run
        os.kill(pid, signal.SIGKILL)
    run.wait()
    assert not (out / "report.md").exists()
    kept = {p.name: p.stat().st_mtime_ns for p in folder.glob("shard_*.pt")}
    assert 1 <= len(kept)
    # a half-written file of the killed run (what a rank leaves while saving)
    (folder / "shard_000000-000002_150_0.pt.12345.partial").write_bytes(b"half a shard")

    done = _torchrun(1, *_reproduce_args(out, **args))  # resumed with another number of processes
    assert done.returncode == 0, done.stderr[-3000:]
    assert {p.name: p.stat().st_mtime_ns for p in folder.glob("shard_*.pt") if p.name in kept} == kept
    assert not list(folder.glob("*.partial"))
    recomputed = set(re.findall(r"filled (shard_\S+)", done.stdout))
    assert recomputed == {f"shard_{s:06d}-{s + 2:06d}_150_0.pt" for s in range(0, 12, 2)} - set(kept)
    assert f"loaded {len(kept)} of 6 shards" in (out / "report.md").read_text()
    _assert_same_results(reference, out)


_DISAGREEING_RANKS = """
import os, sys
from pathlib import Path
from captum_fillblanks.paper.distributed import launch, finish
from captum_fillblanks.paper.reproduce import same_run_everywhere

ranks, _ = launch("cpu")
root = Path(sys.argv[1])
case = sys.argv[2]
out = root / ("out" if case == "arguments" or ranks.is_main else f"elsewhere{ranks.rank}")
out.mkdir(exist_ok=True)
arguments = {"n_samples": 100 if case == "arguments" and ranks.rank == 1 else 10, "seed": 0}
try:
    same_run_everywhere(out, arguments, ranks)
    message = "no error"
except ValueError as error:
    message = str(error)
(root / f"rank{ranks.rank}.txt").write_text(message)
finish()
"""


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        (
            "arguments",
            r"on rank 1 of 2: the ranks were started with different arguments \(n_samples: \{'n_samples': 10\}",
        ),
        ("folder", r"on rank 1 of 2: --out .*elsewhere1 is not the folder rank 0 writes to"),
    ],
)
def test_ranks_that_disagree_stop_with_one_clear_error_on_every_rank(tmp_path, case, expected):
    script = tmp_path / "ranks.py"
    script.write_text(textwrap.dedent(_DISAGREEING_RANKS))
    done = _torchrun(2, str(script), str(tmp_path), case)
    assert done.returncode == 0, done.stderr[-3000:]
    messages = [(tmp_path / f"rank{r}.txt").read_text() for r in (0, 1)]
    assert messages[0] == messages[1]  # the same error on both: neither waits for the other
    assert re.match(expected, messages[0]), messages[0]


_PROTOTYPES_ON_TWO_RANKS = """
import sys
import torch
from torch.utils.data import DataLoader, DistributedSampler, TensorDataset
from captum_fillblanks.attr.metrics import ConsistencyCounts
from captum_fillblanks.paper.distributed import launch, finish
from captum_fillblanks.paper.reproduce import class_prototypes
from captum_fillblanks.paper.data import load_samples
from captum_fillblanks.paper.models import simple_cnn, SimpleCNN_Weights

ranks, _ = launch("cpu")
images, labels = load_samples("mnist")
data = TensorDataset(images[:8], labels[:8])  # 8 images: no padding on 2 ranks
loader = DataLoader(data, batch_size=3, sampler=DistributedSampler(data, shuffle=False))
model = simple_cnn(weights=SimpleCNN_Weights.MNIST_5K)
means, counts = class_prototypes(model, loader, 10, n_samples=20, seed=0, selection="all")
mine = torch.cat([l for _, l in loader])
local = ConsistencyCounts(10)
local.add("strict", mine, (mine + ranks.rank) % 10)
if ranks.rank == 1:
    local.add("paper-style", mine, mine)  # a row only one rank has
total = local.all_reduce()
saved = {"means": means, "counts": counts, "total": total.confusion, "mine": mine}
torch.save(saved, sys.argv[1] + f"/rank{ranks.rank}.pt")
finish()
"""


def test_class_prototypes_and_counts_add_over_ranks(tmp_path):
    from captum_fillblanks.attr.metrics import ConsistencyCounts
    from captum_fillblanks.paper.data import load_samples
    from captum_fillblanks.paper.models import SimpleCNN_Weights, simple_cnn
    from captum_fillblanks.paper.reproduce import class_prototypes

    script = tmp_path / "prototypes.py"
    script.write_text(textwrap.dedent(_PROTOTYPES_ON_TWO_RANKS))
    done = _torchrun(2, str(script), str(tmp_path))
    assert done.returncode == 0, done.stderr[-3000:]
    ranks = [torch.load(tmp_path / f"rank{r}.pt") for r in (0, 1)]

    images, labels = load_samples("mnist")
    model = simple_cnn(weights=SimpleCNN_Weights.MNIST_5K)
    # one process over each rank's images, in their batches, then summed by hand
    parts = [
        class_prototypes(
            model, [(images[i], labels[i]) for i in (idx[:3], idx[3:])], 10, n_samples=20, seed=0, selection="all"
        )
        for idx in (torch.arange(0, 8, 2), torch.arange(1, 8, 2))
    ]
    counts = parts[0][1] + parts[1][1]
    sums = sum(m * c.reshape(-1, 1, 1, 1) for m, c in parts)
    for got in ranks:  # every rank has the total
        assert torch.equal(got["counts"], counts)
        torch.testing.assert_close(
            got["means"], sums / counts.clamp(min=1).reshape(-1, 1, 1, 1), rtol=1e-12, atol=1e-12
        )
    expected = ConsistencyCounts(10)
    for r, got in enumerate(ranks):
        expected.add("strict", got["mine"], (got["mine"] + r) % 10)
    expected.add("paper-style", ranks[1]["mine"], ranks[1]["mine"])
    for got in ranks:
        assert list(got["total"]) == ["paper-style", "strict"]  # ROWS order, the union of the ranks' rows
        assert all(torch.equal(got["total"][row], expected.confusion[row]) for row in expected.confusion)


def test_without_a_process_group_nothing_is_reduced():
    from captum_fillblanks.attr.metrics import ConsistencyCounts
    from captum_fillblanks.paper.distributed import Ranks, launch

    ranks, device = launch("cpu")
    assert ranks == Ranks() and device == torch.device("cpu")
    assert Ranks(1, 3).share(list(range(8))) == [1, 4, 7]
    counts = ConsistencyCounts(3)
    counts.add("strict", torch.tensor([0, 1, 2]), torch.tensor([0, 2, 2]))
    assert torch.equal(counts.all_reduce().confusion["strict"], counts.confusion["strict"])
    with pytest.raises(ValueError, match="boom"):
        Ranks().check(lambda: (_ for _ in ()).throw(ValueError("boom")))


def test_a_half_set_environment_is_refused(monkeypatch):
    from captum_fillblanks.paper.distributed import launch

    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.delenv("RANK", raising=False)
    with pytest.raises(ValueError, match="WORLD_SIZE=2 is set but RANK"):
        launch("cpu")
