"""The command-line front on the bundled data: real images, real weights, tiny settings."""

import json

import pytest
import torch
from conftest import SHARED_DATA

from captum_fillblanks import MaskFill
from captum_fillblanks.attr.metrics import ROWS, TRANSFORMED_ROWS
from captum_fillblanks.cli import main
from captum_fillblanks.paper.data import load_tensors
from captum_fillblanks.paper.demo import format_table
from captum_fillblanks.paper.models import SimpleCNN_Weights, simple_cnn
from captum_fillblanks.paper.reproduce import CANDIDATE_SETTINGS, reproduce


def test_demo_writes_every_figure_and_the_table(tmp_path, capsys):
    assert main(["demo", "--out", str(tmp_path), "--n-samples", "5", "--no-progress"]) == 0
    written = sorted(p.name for p in tmp_path.glob("*.png"))
    expected = sorted(
        f"{d}_{f}.png"
        for d in ("mnist", "fashion-mnist")
        for f in ("fig1_one_mask", "fig2_expected_fill", "fig2_prototypes", "fig3_progressive")
    )
    # both data sets ship a robust twin of their default model
    expected = sorted([*expected, "mnist_fig2_standard_vs_robust.png", "fashion-mnist_fig2_standard_vs_robust.png"])
    assert written == expected
    assert all((tmp_path / name).stat().st_size > 5000 for name in written)
    out = capsys.readouterr().out
    for row in ROWS:  # every row of Table 1, for both data sets
        assert out.count(f"| {row}: ") == 2
    assert str(tmp_path) in out
    # the readability checks beside it, one row per data set, and the draws each fill kept
    assert "| mnist | SimpleCNN | 20 | 0." in out and "| fashion-mnist | ResNet5 | 20 | 0." in out
    assert "| mnist | SimpleCNN (robust) | 20 | 0." in out and "| fashion-mnist | ResNet5 (robust) | 20 | 0." in out
    assert out.count(" kept masks per image (tolerance 0.3, at most 5)") == 2


def test_the_demo_stops_by_precision_and_reports_its_readability(tmp_path):
    from captum_fillblanks.paper.demo import run_demo

    said, summaries = [], {}
    run_demo(
        tmp_path,
        n_samples=64,
        tolerance=0.6,
        images_per_class=1,
        show_progress=False,
        echo=said.append,
        readability=summaries,
    )
    stops = [line for line in said if line.startswith("  fills:")]
    assert len(stops) == 2 and all("(tolerance 0.6, at most 64)" in line for line in stops)
    assert any(not line.startswith("  fills: 64 to 64") for line in stops)  # some image stopped before the cap
    assert set(summaries) == {"mnist", "fashion-mnist", "mnist, robust", "fashion-mnist, robust"}
    for summary in summaries.values():
        assert 0 <= summary.auc <= 1 and 0 <= summary.iou <= 1 and 0 <= summary.judge <= 100
        assert summary.wrong_target is not None


@pytest.mark.parametrize("value", ["0", "-1", "inf", "nan", "lots"])
def test_a_bad_demo_tolerance_is_refused_by_the_parser(value, capsys):
    with pytest.raises(SystemExit):
        main(["demo", "--tolerance", value])
    assert "--tolerance: expected a positive number or 'none'" in capsys.readouterr().err


def test_format_table_reports_scores_of_each_row():
    from captum_fillblanks.attr.metrics import ConsistencyCounts

    counts = ConsistencyCounts(2)
    counts.add("strict", torch.tensor([0, 1, 1, 0]), torch.tensor([0, 1, 0, 0]))
    table = format_table({"mnist": counts})
    assert "| mnist | SimpleCNN | 4 | strict: " in table
    assert "| 75.0 |" in table


SHARED_MNIST = SHARED_DATA / "mnist"


@pytest.mark.skipif(not SHARED_MNIST.is_dir(), reason="needs ../shared/data/mnist")
def test_reproduce_writes_a_complete_report_and_reuses_shards(tmp_path, capsys):
    argv = [
        "reproduce",
        "--dataset",
        "mnist",
        "--data-dir",
        str(SHARED_MNIST),
        "--out",
        str(tmp_path),
        "--n-images",
        "12",
        "--n-samples",
        "8",
        "--shard-size",
        "5",
        "--n-validation",
        "10",
        "--figure-samples",
        "8",
        "--no-progress",
    ]
    assert main(argv) == 0
    report = (tmp_path / "report.md").read_text()
    for row in ROWS:
        assert f"| **{row}**:" in report
    assert "12 test images" in report and "8 kept masks" in report
    assert "8 kept masks asked per panel, at most 160 drawn; a panel that kept fewer says how many" in report
    assert not (tmp_path / "report.md.partial").exists()
    for name in (
        "fig2_class_prototypes.png",
        "fig3_progressive.png",
        "fig4_ratio_patch_grid.png",
        "fig5_first_vs_second_order.png",
        "fig6_binarized.png",
    ):
        assert f"({name})" in report and (tmp_path / name).stat().st_size > 3000
    shards = sorted((tmp_path / "shards" / "mnist_simple-cnn").glob("shard_*.pt"))
    assert len(shards) == 3  # 5 + 5 + 2 images
    shards += sorted((tmp_path / "shards" / "mnist_simple-cnn").glob("validation_*.pt"))
    assert len(shards) == 4  # the validation fills are kept too
    # one setting of T per transformed row, the chosen one in bold, for every candidate
    choice = report[report.index("## The settings of T") : report.index("## Figures")]
    assert choice.count("**") == 2 * len(TRANSFORMED_ROWS)
    assert sum(line.startswith(f"| {c} | ") for c in CANDIDATE_SETTINGS for line in choice.splitlines()) == 22
    assert "## The same images with min–max normalization only" in report
    table = report[report.index("## Table 1") : report.index("The paper")]
    # a rerun reuses the finished shards and reports the same table
    stamps = [p.stat().st_mtime_ns for p in shards]
    assert main(argv) == 0
    assert [p.stat().st_mtime_ns for p in shards] == stamps
    rerun = (tmp_path / "report.md").read_text()
    assert "loaded" not in report
    assert "loaded 3 of 3 shards and the validation fills from an earlier run" in rerun
    assert rerun[rerun.index("## Table 1") : rerun.index("The paper")] == table


@pytest.mark.skipif(not SHARED_MNIST.is_dir(), reason="needs ../shared/data/mnist")
def test_reproduce_scores_each_image_under_its_own_mask_and_reads_it_with_the_judge(tmp_path):
    from captum_fillblanks.attr.masks import apply_masks
    from captum_fillblanks.attr.readability import inpainting_agreement
    from captum_fillblanks.paper.models import lenet5
    from captum_fillblanks.paper.reproduce import RunConfig
    from captum_fillblanks.paper.scoring import per_image_blanks

    sizes = {"n_images": 6, "n_samples": 4, "n_validation": 10, "figure_samples": 4}
    columns = {}
    for shard_size in (3, 2):
        out = tmp_path / f"shards_of_{shard_size}"
        reproduce("mnist", SHARED_MNIST, out, shard_size=shard_size, show_progress=False, **sizes)
        columns[shard_size] = torch.load(out / "results.pt")["per_image"]
    images = load_tensors("mnist", SHARED_MNIST, train=False)[0][:6]
    model, judge = simple_cnn(weights=SimpleCNN_Weights.MNIST_5K), lenet5(weights="DEFAULT")
    blank = per_image_blanks(images, RunConfig.create("mnist", **sizes))
    with torch.no_grad():
        y_0, masked = model(images).argmax(1), apply_masks(images, blank)
        control, control_judged = model(masked).argmax(1) == y_0, judge(masked).argmax(1) == y_0
    for per_image in columns.values():
        # the control row of each image: its own mask (seeded by its index), whatever the shards
        assert torch.equal(per_image["model: control"], control.double())
        assert torch.equal(per_image["judge: control"], control_judged.double())
        assert set(per_image) >= {f"{who}: {row}" for who in ("model", "judge") for row in ROWS} | {"auc", "iou"}
        assert all(len(values) == 6 for values in per_image.values())
    # the fills do depend on the shards (their seeds); the AUC is that of each shard's fill
    fills = torch.cat([torch.load(f)["fill"] for f in sorted((tmp_path / "shards_of_2").glob("shards/*/shard_*"))])
    assert torch.allclose(columns[2]["auc"], inpainting_agreement(fills, images).auc, equal_nan=True)


@pytest.mark.skipif(not SHARED_MNIST.is_dir(), reason="needs ../shared/data/mnist")
@pytest.mark.parametrize(
    ("weights", "shards"), [(None, "mnist_resnet5_MNIST_5K_FLATTEN"), ("MNIST_5K", "mnist_resnet5")]
)
def test_reproduce_on_the_papers_table_1_model(tmp_path, weights, shards):
    argv = [
        "reproduce",
        "--dataset",
        "mnist",
        "--arch",
        "resnet5",
        *(["--weights", weights] if weights else []),
        "--data-dir",
        str(SHARED_MNIST),
        "--out",
        str(tmp_path),
        "--n-images",
        "4",
        "--n-samples",
        "4",
        "--n-validation",
        "10",
        "--figure-samples",
        "4",
        "--no-progress",
    ]
    assert main(argv) == 0
    named = f"ResNet5_Weights.{weights or 'MNIST_5K_FLATTEN'}"  # the flatten head is MNIST's default
    assert f"- model: ResNet5 ({named}) with the shipped weights" in (tmp_path / "report.md").read_text()
    assert [p.name for p in (tmp_path / "shards" / shards).glob("shard_*.pt")] == ["shard_000000-000004_4_0.pt"]
    manifest = json.loads((tmp_path / "shards" / shards / "manifest.json").read_text())
    assert manifest["weights"].startswith(named)


def test_reproduce_refuses_a_model_that_is_not_shipped(tmp_path):
    with pytest.raises(SystemExit, match="no shipped weights for simple-cnn on fashion-mnist"):
        main(["reproduce", "--dataset", "fashion-mnist", "--arch", "simple-cnn", "--data-dir", str(tmp_path)])


def test_reproduce_with_a_missing_folder_fails_in_one_line_and_leaves_no_folder(tmp_path, capsys):
    out = tmp_path / "out"
    argv = ["reproduce", "--dataset", "mnist", "--data-dir", str(tmp_path / "nothing"), "--out", str(out)]
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    message = str(exit_info.value.code)
    assert message.startswith("captum-fillblanks reproduce: ") and "t10k" in message and "\n" not in message
    assert not out.exists()  # a failed start leaves no empty --out folder
    with pytest.raises(FileNotFoundError, match="t10k"):
        main(["--debug", *argv])
    assert not out.exists()


@pytest.mark.skipif(not SHARED_MNIST.is_dir(), reason="needs ../shared/data/mnist")
def test_reproduce_refuses_another_runs_fills_and_names_a_truncated_file(tmp_path):
    argv = [
        "reproduce", "--dataset", "mnist", "--data-dir", str(SHARED_MNIST), "--out", str(tmp_path),
        "--n-images", "2", "--n-samples", "2", "--n-validation", "10", "--figure-samples", "2",
        "--normalization", "max_abs", "--no-progress",
    ]  # fmt: skip
    assert main(argv) == 0
    folder = tmp_path / "shards" / "mnist_simple-cnn"
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["weights"] == "SimpleCNN_Weights.MNIST_5K (simple_cnn_mnist_5k.pt)"
    # a truncated fill file: its name and the way out, not a bare unpickling error
    shard = next(folder.glob("shard_*.pt"))
    shard.write_bytes(shard.read_bytes()[:100])
    with pytest.raises(
        SystemExit, match=f"^captum-fillblanks reproduce: .*{shard.name} is not a complete fill file.*delete it"
    ):
        main(argv)
    with pytest.raises(ValueError, match=f"{shard.name} is not a complete fill file"):
        main(["--debug", *argv])  # the exception itself, with its traceback
    shard.unlink()
    assert main(argv) == 0 and shard.exists()  # recomputed
    # fills computed with other weights (or mask settings) are refused, not reused
    manifest["weights"] = "SimpleCNN_Weights.OTHER (other.pt)"
    (folder / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(SystemExit, match="holds the fills of another run \\(they differ in weights"):
        main(argv)


@pytest.mark.parametrize("command", ["reproduce", "train"])
def test_weights_of_another_data_set_are_refused_by_name(tmp_path, command):
    with pytest.raises(SystemExit, match="weights='FASHION_MNIST'.*expected one of 'MNIST_5K', 'MNIST_5K_FLATTEN'"):
        main(
            [
                command,
                "--dataset",
                "mnist",
                "--arch",
                "resnet5",
                "--weights",
                "FASHION_MNIST",
                "--data-dir",
                str(tmp_path),
            ]
        )


@pytest.mark.skipif(not SHARED_MNIST.is_dir(), reason="needs ../shared/data/mnist")
def test_reproduce_saves_and_reports_how_many_masks_each_image_kept(tmp_path):
    argv = [
        "reproduce", "--dataset", "mnist", "--data-dir", str(SHARED_MNIST), "--out", str(tmp_path),
        "--n-images", "6", "--shard-size", "3", "--n-samples", "4", "--n-validation", "10",
        "--figure-samples", "4", "--normalization", "max_abs", "--no-progress", "--device", "cpu",
    ]  # fmt: skip
    assert main(argv) == 0
    folder = tmp_path / "shards" / "mnist_simple-cnn"
    model = simple_cnn(weights=SimpleCNN_Weights.MNIST_5K)
    images = load_tensors("mnist", SHARED_MNIST, train=False)[0][:6]
    saved_counts = []
    for start in (0, 3):  # each shard's counts are MaskFill's own for those images and masks
        saved = torch.load(folder / f"shard_{start:06d}-{start + 3:06d}_4_0.pt")
        method = MaskFill(model)
        method.attribute(images[start : start + 3], n_samples=4, seed=start, mask_ratio=0.25, patch_size=2)
        assert torch.equal(saved["n_kept"], method.counts.n_kept)
        saved_counts.append(saved["n_kept"])
    validation_file = next(folder.glob("validation_*.pt"))
    assert torch.load(validation_file)["n_kept"].shape == (10,)
    results = torch.load(tmp_path / "results.pt")
    assert all(torch.equal(a, b) for a, b in zip(results["n_kept"], saved_counts, strict=True))
    report = (tmp_path / "report.md").read_text()
    assert "4 kept masks asked per image (all 6 images kept 4)" in report
    assert "## Readability: what another model and the image itself say" in report
    assert "| judge reads y_0, % |" in report
    assert "4 kept masks asked each; all 10 images kept 4) per candidate setting" in report
    # fills an earlier version wrote without the counts: the report says so instead of guessing
    for path in (folder / "shard_000000-000003_4_0.pt", validation_file):
        saved = torch.load(path)
        del saved["n_kept"]
        torch.save(saved, path)
    assert main(argv) == 0
    report = (tmp_path / "report.md").read_text()
    assert (
        "(all 3 images whose counts were saved kept 4; 1 of 2 fill files are an earlier version's, "
        "which did not save them)"
    ) in report
    assert "4 kept masks asked each; counts not saved: these fills are an earlier version's) per" in report
    results = torch.load(tmp_path / "results.pt")
    assert results["n_kept"][0] is None and results["validation_n_kept"] is None


@pytest.mark.parametrize(("name", "value"), [("n_images", 0), ("n_samples", -1), ("shard_size", 2.5)])
def test_reproduce_refuses_a_size_below_one_by_name(tmp_path, name, value):
    with pytest.raises(ValueError, match=f"{name} must be an int >= 1, got {value!r}"):
        reproduce("mnist", SHARED_MNIST, tmp_path / "out", **{name: value})
    assert not (tmp_path / "out").exists()


@pytest.fixture
def svg_backend():
    import matplotlib

    before = matplotlib.get_backend()
    matplotlib.use("svg")
    yield
    matplotlib.use(before)


def caller_state():
    import matplotlib

    cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []
    return torch.get_rng_state(), cuda, matplotlib.get_backend()


def same_state(a, b) -> bool:
    return torch.equal(a[0], b[0]) and all(torch.equal(x, y) for x, y in zip(a[1], b[1])) and a[2] == b[2]


def test_the_demo_leaves_the_callers_random_state_and_backend(tmp_path, svg_backend):
    from captum_fillblanks.paper.demo import run_demo

    torch.manual_seed(1234)
    before = caller_state()
    run_demo(tmp_path / "demo", n_samples=2, images_per_class=1, show_progress=False, echo=lambda text: None)
    assert same_state(before, caller_state()) and before[2] == "svg"


@pytest.mark.skipif(not SHARED_MNIST.is_dir(), reason="needs ../shared/data/mnist")
def test_reproduce_leaves_the_callers_random_state_and_backend(tmp_path, svg_backend):
    torch.manual_seed(1234)
    before = caller_state()
    sizes = dict(n_images=2, n_samples=2, n_validation=10, figure_samples=2)
    reproduce("mnist", SHARED_MNIST, tmp_path / "run", candidates=CANDIDATE_SETTINGS[:2], show_progress=False, **sizes)
    assert same_state(before, caller_state())
    assert (tmp_path / "run" / "fig2_class_prototypes.png").read_bytes()[:4] == b"\x89PNG"


def test_the_demo_draws_the_standard_and_the_robust_prototypes_of_the_same_samples(tmp_path, monkeypatch):
    import matplotlib.figure

    from captum_fillblanks import MaskFill, prototype
    from captum_fillblanks.paper.data import load_samples
    from captum_fillblanks.paper.demo import robust_twin, run_demo
    from captum_fillblanks.paper.models import shipped_model

    drawn, savefig = {}, matplotlib.figure.Figure.savefig

    def keep(figure, handle, *args, **kwargs):
        drawn[len(drawn)] = figure
        return savefig(figure, handle, *args, **kwargs)

    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", keep)
    run_demo(tmp_path, n_samples=6, tolerance=None, images_per_class=1, show_progress=False, echo=lambda text: None)

    def title(figure):
        return " ".join(text.get_text() for text in figure.texts)

    figures = [f for f in drawn.values() if "standard and robust" in title(f)]
    assert len(figures) == 2
    for figure, dataset in zip(figures, ("mnist", "fashion-mnist")):
        assert title(figure).startswith(dataset)
        entry = shipped_model(dataset)
        images, labels = load_samples(dataset)
        first = torch.stack([(labels == c).nonzero()[0, 0] for c in range(10)])
        for row, weights in ((1, entry.weights), (2, robust_twin(entry))):
            fill = MaskFill(entry.build(weights)).attribute(images[first], n_samples=6, seed=0)
            for c in range(10):
                panel = torch.from_numpy(figure.axes[10 * row + c].get_images()[0].get_array().data.copy())
                assert torch.allclose(panel, prototype(fill)[c, 0])
        assert "standard: judge reads" in title(figure) and "robust: judge reads" in title(figure)
