"""Every research script in experiments/ runs, on a tiny setting, and writes what it says."""

import json
import subprocess
import sys

import pytest
from conftest import REPO

ROOT = REPO
SHARED_DATA = ROOT.parent / "shared" / "data"
needs_data = pytest.mark.skipif(not (SHARED_DATA / "mnist").is_dir(), reason="needs ../shared/data")


@needs_data
def test_robust_training_compares_variants_and_draws_their_prototypes(tmp_path):
    command = [sys.executable, str(ROOT / "experiments" / "robust_training.py"), "--data-dir", str(SHARED_DATA)]
    command += ["--out", str(tmp_path), "--variants", "standard", "noise-0.5", "--n-images", "20", "--quick"]
    subprocess.run([*command, "--figure"], check=True, capture_output=True, text=True)
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
    rerun = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    assert "trained in" not in rerun and json.loads(rerun.splitlines()[0].split(" ", 1)[1]) == rows["standard"]
