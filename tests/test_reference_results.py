"""The estimators give the results they gave when ``tests/data/reference_results.pt``
was written (``tests/data/make_reference_results.py``): a refactoring must not change
any fill, progressive image or BFGS result on fixed seeds.

Only numbers that survive another CPU's rounding are stored, each compared with a
tolerance measured for it (the module docs of ``make_reference_results.py`` say how):
relative to the result's largest value, 1e-5 for fills and progressive images, 1e-4
for the convergence delta and 2e-3 for BFGS, each about ten times the largest change
measured; binarized images and labels exactly.
"""

import importlib.util
from pathlib import Path

import pytest
import torch

DATA = Path(__file__).with_name("data")

#: the largest change allowed, relative to the largest value of the result
RELATIVE_TOLERANCE = {"delta": 1e-4, "bfgs": 2e-3}
DEFAULT_RELATIVE_TOLERANCE = 1e-5


def _compute():
    spec = importlib.util.spec_from_file_location("make_reference_results", DATA / "make_reference_results.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.compute()


@pytest.fixture(scope="module")
def results():
    return _compute()


@pytest.mark.parametrize("model", ["smooth", "simple_cnn"])
def test_results_on_fixed_seeds_are_unchanged(results, model):
    reference = torch.load(DATA / "reference_results.pt")[model]
    assert set(results[model]) == set(reference)
    for name, expected in reference.items():
        got = results[model][name]
        assert got.shape == expected.shape, name
        if expected.is_floating_point() and name != "progressive":
            change = (got - expected).abs().max() / expected.abs().max()
            assert change <= RELATIVE_TOLERANCE.get(name, DEFAULT_RELATIVE_TOLERANCE), (name, float(change))
        else:  # labels, and binarized images, which are exactly 0 or 1: not one pixel may differ
            assert torch.equal(got, expected), name
