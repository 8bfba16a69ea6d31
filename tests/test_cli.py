"""The command-line front on the bundled data: real images, real weights, tiny settings."""

import torch

from captum_fillblanks.cli import main
from captum_fillblanks.demo import format_table
from captum_fillblanks.metrics import ROWS


def test_demo_writes_every_figure_and_the_table(tmp_path, capsys):
    assert main(["demo", "--out", str(tmp_path), "--n-samples", "5", "--no-progress"]) == 0
    written = sorted(p.name for p in tmp_path.glob("*.png"))
    expected = sorted(
        f"{d}_{f}.png"
        for d in ("mnist", "fashion-mnist")
        for f in ("fig1_one_mask", "fig2_expected_fill", "fig2_prototypes", "fig3_progressive")
    )
    assert written == expected
    assert all((tmp_path / name).stat().st_size > 5000 for name in written)
    out = capsys.readouterr().out
    for row in ROWS:  # every row of Table 1, for both data sets
        assert out.count(f"| {row}: ") == 2
    assert str(tmp_path) in out


def test_format_table_reports_scores_of_each_row():
    from captum_fillblanks.metrics import ConsistencyCounts

    counts = ConsistencyCounts(2)
    counts.add("strict", torch.tensor([0, 1, 1, 0]), torch.tensor([0, 1, 0, 0]))
    table = format_table({"mnist": counts})
    assert "| mnist | SimpleCNN | 4 | strict: " in table
    assert "| 75.0 |" in table
