"""The text reproduction end to end on the real corpus, small: every row, the recovery
table, the blank token's choice, the figure and Captum's text records are written."""

import pytest
from conftest import SHARED_DATA

from captum_fillblanks.cli import main
from captum_fillblanks.paper.text.table import TEXT_ROWS

TWEETS = SHARED_DATA / "tweets-sentiment"


@pytest.mark.skipif(not (TWEETS / "tweets.csv.gz").is_file(), reason="needs ../shared/data")
def test_reproduce_tweets_writes_every_row_and_its_pictures(tmp_path, capsys):
    out = tmp_path / "tweets"
    argv = ["reproduce", "--dataset", "tweets", "--data-dir", str(TWEETS), "--out", str(out)]
    argv += ["--n-images", "12", "--n-samples", "16", "--n-validation", "6", "--no-progress"]
    assert main(argv) == 0
    report = (out / "report.md").read_text()
    table = [line for line in report.splitlines() if line.startswith("| **")]
    assert len(table) == len(TEXT_ROWS)
    for row in TEXT_ROWS:
        assert f"**{row}**" in report
    for ranking in ("| trained |", "| random-init model |", "| word frequency |"):
        assert ranking in report
    assert "(chosen)" in report and "12 tweets evenly spaced" in report
    assert (out / "top_words.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    html = (out / "blanks.html").read_text(encoding="utf-8")
    assert html.count("<tr>") >= 2 and "→" in html
