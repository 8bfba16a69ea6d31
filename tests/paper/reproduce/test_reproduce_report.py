"""The Markdown report of a reproduction: its tables parse back to the scores, and its
sentences say what the fills kept."""

import torch

from captum_fillblanks.attr.metrics import ROWS, ConsistencyCounts, classification_scores
from captum_fillblanks.attr.transforms import TransformSetting
from captum_fillblanks.paper.reproduce import CANDIDATE_SETTINGS, RunConfig, kept_summary
from captum_fillblanks.paper.reproduce.report import RunRecord, table_lines, write_report
from captum_fillblanks.paper.reproduce.stages import Choice, Table


def counts_with_every_row(seed: int = 0) -> ConsistencyCounts:
    generator = torch.Generator().manual_seed(seed)
    counts = ConsistencyCounts(3)
    for row in ROWS:
        counts.add(row, torch.randint(3, (30,), generator=generator), torch.randint(3, (30,), generator=generator))
    return counts


def parse(lines: list[str]) -> dict[str, list[str]]:
    """Row name -> the cells after the description, of a Markdown table."""
    table = {}
    for line in lines[2:]:
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        table[cells[0].split("**")[1]] = cells[1:]
    return table


def test_table_1_parses_back_to_the_scores_of_each_row():
    counts = counts_with_every_row()
    settings = {row: TransformSetting("min_max", 0.3) for row in ROWS if row != "control"}
    lines = table_lines(counts, settings, "T")
    assert lines[0] == "| rebuilt image | T | accuracy | macro avg. F1 | weighted avg. F1 |"
    table = parse(lines)
    assert list(table) == list(ROWS)
    for row, (setting, accuracy, macro, weighted) in table.items():
        expected = classification_scores(counts.confusion[row])
        assert setting == ("—" if row == "control" else "min_max, tau 0.3")
        assert float(accuracy) == round(expected["accuracy"], 1)
        assert float(macro) == round(expected["macro_f1"], 1)
        assert float(weighted) == round(expected["weighted_f1"], 1)


def test_table_1_with_per_image_columns_gives_standard_errors_and_the_judges_reading():
    from captum_fillblanks.paper.scoring import standard_error

    counts = ConsistencyCounts(2)
    per_image = {"auc": torch.rand(8), "iou": torch.rand(8)}
    hits = torch.tensor([1, 1, 1, 1, 0, 0, 1, 1]).double()
    for row in ROWS:
        counts.add(row, torch.zeros(8, dtype=torch.long), (1 - hits).long())  # right where hits is 1
        per_image[f"model: {row}"], per_image[f"judge: {row}"] = hits, torch.ones(8).double()
    lines = table_lines(counts, {}, "T", per_image)
    assert lines[0].endswith("| judge reads y_0, % |")
    error = standard_error(hits)
    # the bootstrap error of a mean of 0/1 values is close to the binomial one
    assert abs(error - (0.75 * 0.25 / 8) ** 0.5) < 0.02
    for cells in parse(lines).values():
        assert cells[1] == f"75.0 ± {100 * error:.1f}" and cells[-1] == "100.0 ± 0.0"
    assert standard_error(torch.ones(5)) == 0.0
    # NaN left out: the median of 1 and 3 resampled
    assert 0 < standard_error(torch.tensor([1.0, float("nan"), 3.0]), median=True) < 1


def test_kept_summary_names_the_images_that_kept_fewer_masks():
    assert kept_summary([torch.tensor([4, 4]), torch.tensor([4, 4, 4])], 4) == "all 5 images kept 4"
    assert kept_summary([torch.tensor([4, 1, 4]), torch.tensor([3, 4])], 4) == (
        "2 of the 5 images kept fewer than 4 within 40 draws, fewest 1"
    )
    assert kept_summary([torch.tensor([4, 1])], 4, max_draws_per_sample=20) == (
        "1 of the 2 images kept fewer than 4 within 80 draws, fewest 1"
    )
    # files written before the counts were saved
    assert kept_summary([None, torch.tensor([2000, 1999])], 2000) == (
        "1 of the 2 images whose counts were saved kept fewer than 2,000 within 20,000 draws, fewest 1,999; "
        "1 of 2 fill files are an earlier version's, which did not save them"
    )
    assert kept_summary([None, None], 4) == "counts not saved: these fills are an earlier version's"


def test_the_report_describes_the_run_from_its_config_and_holds_both_tables():
    config = RunConfig.create("mnist", arch="resnet5", weights="MNIST_5K", n_samples=40, candidates=CANDIDATE_SETTINGS)
    chosen_setting, min_max_setting = CANDIDATE_SETTINGS[2], CANDIDATE_SETTINGS[13]
    transformed = [row for row in ROWS if row != "control"]
    scores = {row: {s: 50.0 for s in CANDIDATE_SETTINGS} for row in transformed}
    choice = Choice(
        dict.fromkeys(transformed, chosen_setting),
        dict.fromkeys(transformed, min_max_setting),
        scores,
        n_images=20,
        n_samples=40,
        n_kept=torch.full((20,), 40),
    )
    table = Table(
        counts_with_every_row(0),
        counts_with_every_row(1),
        torch.zeros(3, 1, 28, 28),
        torch.tensor([10, 10, 10]),
        [torch.full((15,), 40), torch.tensor([40] * 14 + [12])],
    )
    run = RunRecord(config, "captum-fillblanks reproduce ...", "cpu", 90.0, [], n_shards=2)
    report = write_report(run, table, choice, {"fig2.png": "Fig. 2: a caption."})
    assert report.startswith("# Fill in the blanks: reproduction on mnist\n")
    assert (
        "- model: ResNet5 (ResNet5_Weights.MNIST_5K) with the shipped weights; 30 test images (t10k; for "
        "Fashion-MNIST the bundled samples are left out); 40 kept masks asked per image (1 of the 30 images kept "
        "fewer than 40 within 400 draws, fewest 12), mask ratio 0.25, patch size 2; progressive: k = 4 steps"
    ) in report
    assert "run time 1.5 min" in report
    sections = report.split("\n## ")[1:3]  # Table 1, then the min-max-only table
    first, second = (parse([line for line in section.splitlines() if line.startswith("|")]) for section in sections)
    assert set(first) == set(second) == set(ROWS)
    assert first["strict"][0] == str(chosen_setting) and second["strict"][0] == str(min_max_setting)
    assert "all 20 images kept 40) per candidate setting" in report
    assert "![Fig. 2: a caption.](fig2.png)" in report
