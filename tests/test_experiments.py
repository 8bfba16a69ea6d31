"""Every research script in experiments/ runs on a tiny setting and prints what it says.

Each test runs the script as a reader would (a subprocess from the repository root) and
checks a property of its output that would fail if the script measured the wrong thing:
an equality with the package's own result, an order the script claims, or a sum.
"""

import json
import re
import subprocess
import sys

import pytest
from conftest import REPO, SHARED_DATA

from captum_fillblanks.paper.files import load_tensors_file
from captum_fillblanks.paper.models import ResNet5_Weights
from captum_fillblanks.paper.reproduce import reproduce

EXPERIMENTS = REPO / "experiments"
needs_data = pytest.mark.skipif(not (SHARED_DATA / "mnist").is_dir(), reason="needs ../shared/data")


def run(script: str, *arguments) -> str:
    command = [sys.executable, str(EXPERIMENTS / script), *map(str, arguments)]
    return subprocess.run(command, check=True, capture_output=True, text=True, cwd=REPO).stdout


def table(output: str, first_cell: str = "") -> list[list[str]]:
    """The Markdown table rows of ``output`` (each table's header and rule left out), as
    cells, those whose first cell starts with ``first_cell``."""
    rows: list[list[str]] = []
    for line in output.splitlines():
        if not line.startswith("|"):
            continue
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if set("".join(cells)) <= set("-: "):
            rows.pop()  # the header above the rule
        else:
            rows.append(cells)
    return [row for row in rows if row[0].startswith(first_cell)]


def number(cell: str) -> float:
    return float(re.match(r"-?[\d.]+", cell).group())


def test_every_research_script_has_a_smoke_test_here():
    scripts = sorted(path.stem for path in EXPERIMENTS.glob("*.py"))
    source = (REPO / "tests" / "test_experiments.py").read_text()
    assert [s for s in scripts if f'"{s}.py"' not in source] == []
    bench = sorted(path.name for path in (REPO / "benchmarks").iterdir())
    assert all(name.startswith("bench_") or name == "gpu_check.sh" for name in bench), bench


@needs_data
def test_robust_training_compares_variants_and_draws_their_prototypes(tmp_path):
    command = ["robust_training.py", "--data-dir", SHARED_DATA, "--out", tmp_path]
    command += ["--variants", "standard", "noise-0.5", "--n-images", "20", "--quick"]
    run(*command, "--figure")
    rows = {
        name: json.loads((tmp_path / f"mnist_simple-cnn_{name}_validation_20.json").read_text())
        for name in ("standard", "noise-0.5")
    }
    for row in rows.values():
        assert (
            0 <= row["judge correct"] <= 100
            and 0 <= row["AUC correct"] <= 1
            and len(row["judge per class correct"]) == 10
        )
    assert rows["standard"]["clean t10k"] != rows["noise-0.5"]["clean t10k"]  # one epoch of noise is another model
    assert (tmp_path / "mnist_simple-cnn_noise-0.5.pt").is_file()  # kept: a rerun loads it
    assert (tmp_path / "figure_mnist_simple-cnn_validation.png").read_bytes()[:4] == b"\x89PNG"
    rerun = run(*command, "--displays")
    assert "trained in" not in rerun and json.loads(rerun.splitlines()[0].split(" ", 1)[1]) == rows["standard"]
    # the default T and the grid's best on the kept fills: the best scores at least the default
    merits = [float(m) for m in re.findall(r"merit ([\d.]+)", rerun)]
    assert len(merits) == 4 and merits[1] >= merits[0] and merits[3] >= merits[2]


@needs_data
def test_antialias_pairs_each_resnet5_with_its_twin_and_reads_their_meta(tmp_path):
    output = run("antialias.py", "--data-dir", SHARED_DATA, "--n-images", 10, "--n-samples", 4)
    rows = table(output)
    pairs = [("MNIST_5K", "MNIST_5K_ANTIALIAS"), ("MNIST_5K_FLATTEN", "MNIST_5K_FLATTEN_ANTIALIAS")]
    pairs.append(("FASHION_MNIST", "FASHION_MNIST_ANTIALIAS"))
    assert [row[0] for row in rows] == [f"ResNet5_Weights.{name}" for pair in pairs for name in pair]
    for row in rows:
        weights = ResNet5_Weights[row[0].split(".")[1]]
        assert number(row[1]) == pytest.approx(100 * weights.meta["t10k_accuracy"], abs=0.005)
        assert all(0 <= number(cell) <= 100 for cell in row[2:4])  # spectral shares, in percent
    figure = tmp_path / "pairs.png"
    run("antialias.py", "--data-dir", SHARED_DATA, "--n-samples", 4, "--figure", figure)
    assert figure.read_bytes()[:4] == b"\x89PNG"


@needs_data
def test_choose_display_picks_the_setting_at_the_top_of_its_own_ranking():
    arguments = ["--data-dir", SHARED_DATA, "--n-images", 10, "--n-samples", 4, "--wrong-target-samples", 2]
    output = run("choose_display.py", *arguments)
    chosen = re.search(r"chosen on the MNIST models: (.+) \(mean judge/100 \+ IoU ([\d.]+)\)", output)
    rows = table(output, "max_abs")
    merits = [float(row[1]) for row in rows]
    assert len(rows) == 36 and merits == sorted(merits, reverse=True)
    binarized = [row for row in rows if "not binarized" not in row[0]]
    assert binarized[0][0] == chosen.group(1) and float(binarized[0][1]) == float(chosen.group(2))
    assert output.count("wrong-target control") == 1 and output.count(f"{chosen.group(1)}: ") >= 3


@needs_data
def test_compare_orders_measures_the_same_masks_by_both_orders():
    output = run("compare_orders.py", "--data-dir", SHARED_DATA / "mnist", "--n-images", 2, "--n-samples", 8)
    cosine = re.search(r"mean (-?[\d.]+), median (-?[\d.]+), 5%-95% \[(-?[\d.]+), (-?[\d.]+)\]", output)
    low, high = float(cosine.group(3)), float(cosine.group(4))
    assert "2 MNIST t10k images" in output and -1 <= low <= float(cosine.group(2)) <= high <= 1


def test_display_scale_scores_every_display_of_every_shipped_model(tmp_path):
    figure = tmp_path / "displays.png"
    output = run("display_scale.py", "--n-samples", 2, "--figure", figure)
    rows = table(output)
    displays = sorted({row[1] for row in rows})
    models = sorted({row[0] for row in rows})
    assert len(rows) == len(displays) * len(models) and len(models) >= 3
    assert all(0 <= number(row[2]) <= 100 and 0 <= number(row[4]) <= 1 for row in rows)
    assert figure.read_bytes()[:4] == b"\x89PNG"


@needs_data
def test_fill_limits_best_threshold_is_never_below_the_default_displays_iou():
    arguments = ["--data-dir", SHARED_DATA, "--validation", "--n-images", 10, "--n-samples", 4]
    rows = table(run("fill_limits.py", *arguments))
    auc, shown = rows[0], rows[1:]
    assert [row[0] for row in shown] == ["as it is", "blurred, sigma 0.5", "blurred, sigma 1"]
    assert all(0 <= float(cell) <= 1 for cell in auc)
    # T is one threshold of the (one-channel) fill: the best of all thresholds reaches its IoU
    assert all(float(row[3]) >= float(row[2]) for row in shown)


@needs_data
def test_fill_smoothing_at_sigma_0_scores_what_the_report_scored(tmp_path):
    sizes = {"n_images": 4, "n_samples": 4, "shard_size": 2, "n_validation": 10, "figure_samples": 4}
    sizes_given = [f"--{key.replace('_', '-')}={value}" for key, value in sizes.items()]
    reproduce("mnist", SHARED_DATA / "mnist", tmp_path, show_progress=False, echo=lambda _: None, **sizes)
    results = load_tensors_file(tmp_path / "results.pt")
    arguments = ["--run", tmp_path, "--dataset", "mnist", "--arch", "simple-cnn", "--data-dir", SHARED_DATA / "mnist"]
    output = run("fill_smoothing.py", *arguments, *sizes_given, "--scoring-masks", 3)
    rows, draws = output.split("scoring masks per image")
    at_zero = {row[1]: row for row in table(rows) if row[0] == "0"}
    for row, (setting, accuracy) in {r: (at_zero[r][2], number(at_zero[r][4])) for r in at_zero}.items():
        confusion = results["chosen"][row]
        if results["settings"][row] == setting:  # the report chose a max_abs setting too
            assert accuracy == pytest.approx(100 * float(confusion.diagonal().sum() / confusion.sum()), abs=0.05)
    draws = table(draws)
    assert [row[0] for row in draws] == ["0", "1", "2"]
    assert number(draws[0][1]) == number(at_zero["paper-style"][4])  # draw 0: the mask the rows use
    missing = subprocess.run(
        [sys.executable, str(EXPERIMENTS / "fill_smoothing.py"), *map(str, arguments), *sizes_given, "--n-images=6"],
        capture_output=True,
        text=True,
    )
    assert missing.returncode == 1 and "lacks" in missing.stderr and "fill files" in missing.stderr


def test_fill_spectrum_shares_sum_to_the_whole_energy():
    rows = table(run("fill_spectrum.py", "--n-samples", 2))
    assert [row[0] for row in rows] == ["ResNet5, Fashion-MNIST", "ResNet5, MNIST", "SimpleCNN, MNIST"]
    for row in rows:
        shares = json.loads(row[1])
        assert len(shares) == 15 and shares[0] >= 0 and sum(shares) == pytest.approx(100, abs=1)


@needs_data
def test_progressive_readability_rebuilds_with_both_targets():
    arguments = ["--data-dir", SHARED_DATA, "--n-images", 4, "--variants", "1:0.25", "--weights", "simple-cnn:MNIST_5K"]
    rows = table(run("progressive_readability.py", *arguments))
    assert [row[1] for row in rows] == ["per step", "fixed y_0"]
    # four images: every rate is a multiple of 25 %
    assert all(number(cell) % 25 == 0 for row in rows for cell in row[4:7])


def test_readability_adds_an_untrained_twin_for_each_shipped_model():
    rows = table(run("readability.py", "--n-images", 10, "--n-samples", 2))
    names = [row[0] for row in rows]
    untrained = [name for name in names if name.endswith("random init")]
    assert len(untrained) >= 2 and all(0 <= number(row[1]) <= 1 and 0 <= number(row[2]) <= 1 for row in rows)
