"""How many masks a result needs: ``record_at`` keeps each example's fill at counts of
its own kept draws, and the mask study reads every count and every tolerance off one
run."""

import os

import pytest
import torch
from conftest import SHARED_DATA

from captum_fillblanks import MaskFill
from captum_fillblanks.attr.metrics import scoring_blank
from captum_fillblanks.paper.data import load_samples
from captum_fillblanks.paper.mask_study.fills import (
    recorded_counts,
    stopped_by_tolerance,
    study_fills,
    tolerance_checks,
)
from captum_fillblanks.paper.mask_study.report import STUDY_COLUMNS, StudyRow, study_table, summarize
from captum_fillblanks.paper.models import simple_cnn
from captum_fillblanks.paper.reproduce import RunConfig
from captum_fillblanks.paper.scoring import bootstrap, per_image_blanks


@pytest.fixture(scope="module")
def model():
    return simple_cnn(weights="DEFAULT")


@pytest.fixture(scope="module")
def images():
    return load_samples("mnist")[0][::10][:6]


@pytest.mark.parametrize("selection", ["correct", "all"])
def test_each_recorded_fill_is_the_fill_of_a_run_with_that_many_samples(model, images, selection):
    method = MaskFill(model)
    final = method.attribute(
        images, n_samples=300, seed=4, selection=selection, record_at=(300, 40, 128), internal_batch_size=96
    )
    recorded = method.counts.recorded
    assert sorted(recorded) == [40, 128, 300]
    assert torch.equal(recorded[300].fill, final)
    for count, record in recorded.items():
        alone = MaskFill(model)
        fill = alone.attribute(images, n_samples=count, seed=4, selection=selection, internal_batch_size=50)
        assert torch.allclose(record.fill, fill, atol=1e-6, rtol=0)
        assert torch.equal(record.n_kept, alone.counts.n_kept)
        # its error is the one a run stopping at that count reports (a tolerance never met)
        capped = MaskFill(model)
        _, error = capped.attribute(
            images, n_samples=count, seed=4, selection=selection, tolerance=1e-9, return_convergence_delta=True
        )
        assert torch.allclose(record.relative_error, error, rtol=1e-5)


def test_an_example_that_stops_first_has_its_final_fill_at_the_later_counts(model, images):
    method = MaskFill(model)
    fill = method.attribute(images, n_samples=512, seed=0, tolerance=0.4, record_at=(32, 512))
    stopped = method.counts.n_kept
    assert bool((stopped < 512).any())  # some example stopped by precision
    later = method.counts.recorded[512]
    assert torch.equal(later.fill, fill)
    assert torch.equal(later.n_kept, stopped)
    assert torch.equal(method.counts.recorded[32].n_kept, torch.full_like(stopped, 32))


def test_a_batch_records_for_each_example_what_it_records_alone(model, images):
    together = MaskFill(model)
    together.attribute(images, n_samples=200, seed=1, record_at=(50, 150), internal_batch_size=64)
    for i in range(len(images)):
        alone = MaskFill(model)
        alone.attribute(images[i : i + 1], n_samples=200, seed=1, record_at=(50, 150), internal_batch_size=7)
        for count in (50, 150):
            assert torch.allclose(
                together.counts.recorded[count].fill[i], alone.counts.recorded[count].fill[0], atol=1e-6
            )


@pytest.mark.parametrize(
    "record_at, error",
    [((0, 5), ValueError), ((5, 2.5), TypeError), (5, TypeError), ("12", TypeError), ((501,), ValueError)],
)
def test_bad_record_counts_are_refused_by_name(model, images, record_at, error):
    with pytest.raises(error, match="record_at"):
        MaskFill(model).attribute(images, n_samples=500, seed=0, record_at=record_at)


def test_the_study_reads_off_exactly_what_tolerance_gives(model, images):
    config = RunConfig.create("mnist", n_images=len(images), n_samples=256, shard_size=4, seed=7)
    study = study_fills(model, images, config)
    assert study["counts"].tolist() == recorded_counts(256) == [32, 64, 100, 128, 256]
    assert tolerance_checks(256) == [32, 64, 128, 256]
    for tolerance, cap in ((0.45, None), (0.3, None), (0.3, 128)):
        stopped = stopped_by_tolerance(study, tolerance, cap)
        for start in range(0, len(images), 4):
            shard = images[start : start + 4]
            method = MaskFill(model)
            fill, error = method.attribute(
                shard,
                n_samples=cap or 256,
                max_draws=2560,
                tolerance=tolerance,
                seed=7 + start,
                return_convergence_delta=True,
            )
            rows = slice(start, start + 4)
            assert torch.allclose(stopped.fill[rows], fill, atol=1e-6)
            assert torch.equal(stopped.n_kept[rows], method.counts.n_kept)
            assert torch.equal(stopped.converged[rows], method.counts.converged)
            assert torch.allclose(stopped.relative_error[rows], error, rtol=1e-5)
    with pytest.raises(ValueError, match="cap must be one of the study's recorded counts"):
        stopped_by_tolerance(study, 0.3, 200)


def test_each_image_is_scored_under_its_own_mask(images):
    config = RunConfig.create("mnist", n_images=len(images), seed=3)
    blanks = per_image_blanks(images, config)
    for i in range(len(images)):
        assert torch.equal(blanks[i : i + 1], scoring_blank(images[i : i + 1], seed=3 + 3 * 10**6 + i))
    assert not torch.equal(blanks[0], blanks[1])
    assert blanks[0].float().mean().item() == pytest.approx(0.25)


def test_bootstrap_errors_and_paired_changes():
    resamples = torch.randint(0, 4, (200, 4), generator=torch.Generator().manual_seed(0))
    value, spread = bootstrap(torch.tensor([1.0, 1.0, 0.0, 0.0]), True, resamples)
    assert value == 50.0
    assert 20 < float(spread.std()) < 30  # the binomial error of 2 of 4, 25 points
    constant, spread = bootstrap(torch.ones(4), False, resamples)
    assert constant == 1.0 and float(spread.std()) == 0.0

    def row(label, values, converged=None):
        scores = {key: values.clone() for key in STUDY_COLUMNS}
        return StudyRow(label, torch.full((4,), 10), converged, torch.zeros(4), scores)

    rows = [row("10", torch.tensor([1.0, 0, 0, 0])), row("20", torch.tensor([1.0, 1, 0, 0]))]
    rows.append(row("tolerance 0.1", torch.tensor([1.0, 1, 0, 0]), torch.ones(4, dtype=torch.bool)))
    summary = summarize(rows, n_resamples=300)
    assert summary["20"]["strict"].change == 0 and summary["20"]["strict"].change_se == 0
    assert summary["tolerance 0.1"]["strict"].change_se == 0  # the same per-image values: no change
    assert summary["10"]["strict"].change == -25.0 and summary["10"]["strict"].change_se > 0
    lines = study_table(rows, summary)
    assert len(lines) == 2 + len(rows)
    assert lines[4].startswith("| tolerance 0.1 | 10 (100 %) | 100 % |")


SHARED_MNIST = SHARED_DATA / "mnist"


@pytest.mark.skipif(not SHARED_MNIST.is_dir(), reason="needs ../shared/data/mnist")
def test_the_mask_study_command_writes_its_report_and_reuses_its_fills(tmp_path):
    from captum_fillblanks.cli import main

    argv = ["mask-study", "--dataset", "mnist", "--data-dir", str(SHARED_MNIST), "--n-images", "6"]
    argv += ["--n-samples", "128", "--out", str(tmp_path), "--no-progress"]
    assert main(argv) == 0
    report = (tmp_path / "masks.md").read_text()
    rows = {line.split(" | ")[0][2:]: line.split(" | ") for line in report.splitlines() if line.startswith("| ")}
    assert list(rows)[1:] == ["100", "128", "tolerance 0.3", "tolerance 0.2", "tolerance 0.15", "tolerance 0.1"]
    assert rows["128"][1] == "128 (100 %)" and rows["128"][-1] == "1.000 ± 0.000 |"
    for name in ("masks.png", "masks_prototypes.png", "masks_per_image.png"):
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "The wrong-target control (each of the first 6 images" in report
    saved = next(tmp_path.glob("study_*.pt"))
    stamp = saved.stat().st_mtime_ns
    assert main(argv) == 0
    assert saved.stat().st_mtime_ns == stamp  # not recomputed
    assert "loaded from study_mnist_simple-cnn_MNIST_5K_6_128_0.pt" in (tmp_path / "masks.md").read_text()
    assert (tmp_path / "masks.md").read_text().split("| kept masks")[1] == report.split("| kept masks")[1]


def test_the_per_image_figure_takes_the_first_images_of_each_class_in_order():
    from captum_fillblanks.paper.mask_study.figures import first_of_each_class

    labels = torch.tensor([2, 0, 2, 1, 0, 2, 0])
    # rank by rank; class 1 has one image, so its second and third slots are empty
    assert first_of_each_class(labels, 3, 3) == [[1, 3, 0], [4, -1, 2], [6, -1, 5]]


def test_the_per_image_figure_draws_the_image_fill_prototype_and_paper_style_image(tmp_path, monkeypatch):
    from captum_fillblanks.attr.transforms import TransformSetting, filled_image, prototype
    from captum_fillblanks.paper.mask_study.figures import draw_study_per_image

    generator = torch.Generator().manual_seed(0)
    images = torch.rand(4, 1, 28, 28, generator=generator)
    fill = torch.randn(4, 1, 28, 28, generator=generator)
    blanks = torch.rand(4, 1, 28, 28, generator=generator) < 0.25
    setting = TransformSetting()
    import matplotlib.figure

    drawn, savefig = [], matplotlib.figure.Figure.savefig
    monkeypatch.setattr(
        matplotlib.figure.Figure, "savefig", lambda figure, *a, **k: (drawn.append(figure), savefig(figure, *a, **k))
    )
    ranks = draw_study_per_image(
        images,
        torch.tensor([1, 0, 1, 0]),
        fill,
        blanks,
        ["a", "b"],
        tmp_path / "f.png",
        transform=setting,
        per_class=2,
        title="t",
        n_kept=torch.tensor([5, 0, 7, 9]),
    )
    assert (tmp_path / "f.png").read_bytes()[:4] == b"\x89PNG"
    assert ranks == [[1, 0], [3, 2]]
    axes = drawn[0].axes[:16]  # 8 rows (two blocks of x, fill, T(fill), M(x) + T(fill)) x 2 classes

    def cell(row, col):
        return torch.from_numpy(axes[2 * row + col].get_images()[0].get_array().data.copy())

    pasted = filled_image(torch.where(blanks, 0.0, images), fill, blanks, transform=setting)
    for block, (first, second) in enumerate(ranks):
        for col, index in enumerate((first, second)):
            assert torch.allclose(cell(4 * block, col), images[index, 0])
            assert torch.allclose(cell(4 * block + 2, col), prototype(fill, transform=setting)[index, 0])
            assert torch.allclose(cell(4 * block + 3, col), pasted[index, 0])
            heat = cell(4 * block + 1, col)
            assert heat.abs().max() > 1 and (heat.abs() <= 1).float().mean() >= 0.98  # scaled by its 99th pct.
    # image #1 (class a, first block) kept no draw: its fill panel says so, image #0's does not
    assert axes[0].get_title() == "a #1\n0 kept" and axes[1].get_title() == "b #0\n5 kept"
    assert "no kept" in " ".join(t.get_text() for t in axes[2].texts) and not axes[3].texts


@pytest.mark.skipif(not SHARED_MNIST.is_dir(), reason="needs ../shared/data/mnist")
def test_a_foreign_study_file_is_refused_not_read(tmp_path):
    from captum_fillblanks.paper.mask_study.run import mask_study

    torch.save({"fill": torch.zeros(3)}, tmp_path / "study_mnist_simple-cnn_MNIST_5K_4_64_0.pt")
    with pytest.raises(ValueError, match="not a complete mask study.*delete it"):
        mask_study("mnist", SHARED_MNIST, tmp_path, n_images=4, n_samples=64, show_progress=False)
    assert not (tmp_path / "masks.md").exists()


@pytest.fixture(scope="module")
def saved_study(tmp_path_factory):
    """A real study file of the first 4 test images at 64 masks, and its name."""
    from captum_fillblanks.paper.mask_study.run import mask_study

    if not SHARED_MNIST.is_dir():
        pytest.skip("needs ../shared/data/mnist")
    out = tmp_path_factory.mktemp("study")
    mask_study("mnist", SHARED_MNIST, out, n_images=4, n_samples=64, show_progress=False)
    (path,) = out.glob("study_*.pt")
    return path


def _replaced(**fields):
    def damage(path):
        study = torch.load(path)
        study.update({key: value(study) for key, value in fields.items()})
        torch.save(study, path)

    return damage


@pytest.mark.parametrize(
    "damage, reason",
    [
        (_replaced(predicted=lambda s: s["predicted"][:1]), "fields of shape"),  # would be broadcast
        (_replaced(counts=lambda s: s["counts"] * 2), "recorded at"),  # rows would name the wrong counts
        (_replaced(n_kept=lambda s: s["n_kept"][:, :2]), "fields of shape"),
        (_replaced(n_kept=lambda s: s["n_kept"] + 1000), "kept-mask counts"),
        (_replaced(predicted=lambda s: s["predicted"] + 10), "not classes 0 to 9"),
        (_replaced(images_sha256=lambda s: "0" * 64), "other images"),
        (lambda path: (path.unlink(), os.mkfifo(path)), "not a regular file"),  # would block forever
    ],
    ids=["predicted-cut", "counts-relabelled", "n_kept-shape", "n_kept-count", "labels", "images", "fifo"],
)
def test_a_study_file_that_is_not_this_runs_is_refused_with_the_way_out(saved_study, tmp_path, damage, reason):
    from captum_fillblanks.paper.mask_study.run import mask_study

    planted = tmp_path / saved_study.name
    planted.write_bytes(saved_study.read_bytes())
    damage(planted)
    with pytest.raises(ValueError, match=f"not a complete mask study of this run .*{reason}.*delete it"):
        mask_study("mnist", SHARED_MNIST, tmp_path, n_images=4, n_samples=64, show_progress=False)
    assert not (tmp_path / "masks.md").exists()
