"""The fill files of a reproduction: what they hold, the manifest that guards a folder,
and files that are not whole."""

import json
import os

import pytest
import torch
from conftest import Brightness

from captum_fillblanks import MaskFill
from captum_fillblanks.paper.models import SimpleCNN_Weights
from captum_fillblanks.paper.reproduce import CANDIDATE_SETTINGS, FillCache, FillJob, RunConfig, kept_summary


def config(**changes) -> RunConfig:
    fields = dict(n_images=2, n_samples=20, shard_size=2, n_validation=1, figure_samples=1, seed=0)
    fields.update(changes)
    return RunConfig("mnist", "simple-cnn", SimpleCNN_Weights.MNIST_5K, candidates=CANDIDATE_SETTINGS, **fields)


def half_inked_images() -> torch.Tensor:
    """Brightness calls an image class 1 when more than a quarter of it is ink. Blanking a
    quarter of the patches of a half-inked image at 0.62 leaves more than a quarter only
    when few of the blanks fall on the ink, so most draws of that image are not kept."""
    images = torch.zeros(2, 1, 28, 28)
    images[0] = 1.0  # every masked copy stays class 1
    images[1, :, :14] = 0.62
    return images


def test_fill_files_save_the_draws_an_image_kept_when_it_keeps_fewer(tmp_path):
    images, model = half_inked_images(), Brightness().eval()
    cache = FillCache(tmp_path, model, model, config(control_samples_cap=4))
    with pytest.warns(UserWarning, match="were kept"):
        cache.compute(FillJob("shard.pt", images, 20, 0))
    saved = cache.load(FillJob("shard.pt", images, 20, 0))
    method = MaskFill(model)
    with pytest.warns(UserWarning, match="were kept"):
        fill = method.attribute(images, n_samples=20, max_draws=200, seed=0, mask_ratio=0.25, patch_size=2)
    assert torch.equal(saved["fill"], fill) and torch.equal(saved["predicted"], torch.tensor([1, 1]))
    assert torch.equal(saved["n_kept"], method.counts.n_kept)
    assert saved["n_kept"][0] == 20 and 0 < saved["n_kept"][1] < 20
    control = MaskFill(model).attribute(
        images, target=saved["predicted"], selection="all", n_samples=4, seed=0, mask_ratio=0.25, patch_size=2
    )
    assert torch.equal(saved["control_fill"], control)  # at most control_samples_cap masks
    assert kept_summary([saved["n_kept"]], 20) == (
        f"1 of the 2 images kept fewer than 20 within 200 draws, fewest {int(saved['n_kept'][1])}"
    )


def test_the_manifest_is_written_once_and_another_runs_folder_is_refused(tmp_path):
    model = Brightness().eval()
    FillCache(tmp_path, model, model, config())
    written = json.loads((tmp_path / "manifest.json").read_text())
    assert written == config().manifest_key()
    FillCache(tmp_path, model, model, config(n_images=7))  # the fills do not depend on it
    with pytest.raises(ValueError, match="holds the fills of another run \\(they differ in control_seed"):
        FillCache(tmp_path, model, model, config(seed=1))
    FillCache(tmp_path / "other", model, model, config(), check_manifest=False)
    assert not (tmp_path / "other").exists()  # only the checking rank touches the folder


@pytest.mark.parametrize(
    "damage",
    [
        lambda path: path.write_bytes(path.read_bytes()[:100]),  # truncated
        lambda path: torch.save({}, path),  # a dict without the fills
        lambda path: torch.save([1, 2], path),  # not a dict
        lambda path: torch.save({**torch.load(path), "fill": torch.zeros(2, 1, 28, 28)}, path),  # other images
        lambda path: torch.save({**torch.load(path), "predicted": torch.tensor([12])}, path),  # not a class
        lambda path: torch.save({**torch.load(path), "predicted": torch.tensor([1.0])}, path),  # not a label
        lambda path: torch.save({**torch.load(path), "n_kept": torch.tensor([4, 4])}, path),  # other images
        lambda path: torch.save({**torch.load(path), "n_kept": torch.tensor([5])}, path),  # more than drawn
        lambda path: (path.unlink(), os.mkfifo(path)),  # a FIFO would block the reader forever
    ],
    ids=["truncated", "empty", "list", "fill", "label", "float-label", "n_kept-shape", "n_kept-count", "fifo"],
)
def test_a_fill_file_that_is_not_whole_is_named_with_the_way_out(tmp_path, damage):
    model = Brightness().eval()
    cache = FillCache(tmp_path, model, model, config(control_samples_cap=4))
    job = FillJob("shard.pt", torch.ones(1, 1, 28, 28), 4, 0)
    cache.compute(job)
    damage(tmp_path / "shard.pt")
    with pytest.raises(ValueError, match="shard.pt is not a complete fill file .*delete it and rerun"):
        cache.load(job)


def test_compute_leaves_no_temporary_file(tmp_path):
    model = Brightness().eval()
    cache = FillCache(tmp_path, model, model, config(control_samples_cap=4))
    cache.compute(FillJob("shard.pt", torch.ones(1, 1, 28, 28), 4, 0))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["manifest.json", "shard.pt"]


def test_with_a_tolerance_each_image_stops_where_mask_fill_stops_it_and_the_files_are_named_for_it(tmp_path):
    from captum_fillblanks.paper.reproduce.stages import shard_jobs

    images = torch.rand(2, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    model = Brightness().eval()
    run = config(n_samples=512, tolerance=0.5)
    (job,) = shard_jobs(images, run)
    assert job.name == "shard_000000-000002_512_0_tol0.5.pt" and job.tolerance == 0.5
    (fixed,) = shard_jobs(images, config(n_samples=512))
    assert fixed.name == "shard_000000-000002_512_0.pt" and fixed.tolerance is None  # as before
    cache = FillCache(tmp_path, model, model, run)
    cache.compute(job)
    saved = cache.load(job)
    method = MaskFill(model)
    fill = method.attribute(images, n_samples=512, max_draws=5120, tolerance=0.5, seed=0, mask_ratio=0.25, patch_size=2)
    assert torch.equal(saved["fill"], fill) and torch.equal(saved["n_kept"], method.counts.n_kept)
    assert bool(saved["converged"].all()) and int(saved["n_kept"].max()) < 512
    summary = kept_summary([saved["n_kept"]], 512, tolerance=0.5)
    assert summary.startswith("stopping each at relative error 0.5: the 2 images kept median")
    assert summary.endswith("0 ran to the cap of 512")
