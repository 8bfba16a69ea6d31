"""Would smoothing the fill before T close ResNet5's gap to the paper? (Not the method.)

ResNet5's fills carry the stride of its downsampling (a period-4 grid, pixel speckle on
MNIST's strokes; ``fill_spectrum.py``). This check blurs the kept fills of a finished
``reproduce`` run (read back by :func:`~captum_fillblanks.paper.reproduce.run_fills`)
with a Gaussian of width ``sigma`` before ``T``, chooses the setting of ``T`` for each
row on the run's validation fills (best macro F1 among the ``max_abs`` settings, as
``reproduce`` chooses), and scores the paper-style and strict rows of Table 1 on the
run's test images as the report scores them: the same labels and each image under its
own scoring mask (:func:`~captum_fillblanks.paper.scoring.per_image_blanks`).
``sigma = 0`` reproduces the report's rows where the report chose a ``max_abs`` setting.
Only forward passes: a minute or two on a CPU.

``--every-setting`` adds a diagnosis: the two rows on the test images, unblurred, under
every candidate setting of ``T`` (min-max too). It asks whether another choice of ``T``
would have closed the gap; nothing is chosen from it, since the test images are the
ones scored.

``--scoring-masks N`` adds another: the paper-style row under each image's first ``N``
scoring masks (draw ``k`` of an image: the ``k``-th mask of its scoring seed), the fill
and the chosen ``T`` fixed. The report scores each image under the first; the others
show how far that one draw moves the row.

    python experiments/fill_smoothing.py --run RUN_DIR --dataset mnist --arch resnet5 \\
        --data-dir ../shared/data/mnist [--weights MNIST_5K_FLATTEN] [--n-images 500] \\
        [--tolerance T] [--every-setting] [--scoring-masks 20]

(the run's own ``--n-images``, ``--n-samples``, ``--seed``, ``--weights``,
``--tolerance``, ``--shard-size``, ``--n-validation`` and ``--figure-samples``).

Recorded in ``docs/reproduction/README.md`` (MNIST, ResNet5, both heads). Those numbers
were measured when the report scored every image of a shard under one shared mask,
before the per-image scoring masks; a rerun scores as the report now does.
"""

import argparse
from pathlib import Path

import torch
import torch.nn.functional as F
from torchvision.transforms.functional import gaussian_blur

from captum_fillblanks import filled_image, random_patch_masks
from captum_fillblanks.attr.masks import apply_masks
from captum_fillblanks.attr.metrics import ConsistencyCounts, rebuild_rows, score_rows
from captum_fillblanks.paper.models import shipped_model
from captum_fillblanks.paper.reproduce import CANDIDATE_SETTINGS, RunConfig, best_settings, run_fills
from captum_fillblanks.paper.scoring import per_image_blanks, scoring_seed

ROWS = ("paper-style", "strict")
SIGMAS = (0.0, 0.7, 1.0, 1.5, 2.0)


def blur(fill: torch.Tensor, sigma: float) -> torch.Tensor:
    """torchvision's Gaussian blur of width ``sigma`` (radius ``3 sigma``), zero outside
    the image; ``sigma = 0``: unchanged."""
    if sigma == 0:
        return fill
    radius = int(3 * sigma + 0.5)
    padded = F.pad(fill, (radius,) * 4)
    return gaussian_blur(padded, [2 * radius + 1] * 2, [sigma] * 2)[..., radius:-radius, radius:-radius]


def scoring_masks(images, config: RunConfig, first: int, n: int) -> torch.Tensor:
    """Draw ``k`` of each image's scoring masks, ``k < n``, as blank indicators shaped
    ``(n, *images.shape)``; draw 0 is :func:`per_image_blanks`, the report's."""
    draws = []
    for i in range(len(images)):
        generator = torch.Generator().manual_seed(scoring_seed(config, first + i))
        draws.append(random_patch_masks(n, *images.shape[-2:], **config.masks, generator=generator) == 0)
    return torch.stack(draws, 1)[:, :, None].expand(n, *images.shape)


def score(model, images, fill, seed, blank, settings, counts: dict, masks: dict) -> None:
    """Add the two rows, for each setting, as the report builds them."""
    for setting in settings:
        rebuilt = rebuild_rows(model, images, transform=setting, fill=fill, seed=seed, rows=ROWS, blank=blank, **masks)
        counts[setting] = ConsistencyCounts.combine(
            [counts[setting], score_rows(model, rebuilt, counts[setting].n_classes)]
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--run", required=True, help="the --out folder of a finished reproduce run")
    parser.add_argument("--dataset", required=True, choices=["mnist", "fashion-mnist"])
    parser.add_argument("--arch", required=True, choices=["resnet5", "simple-cnn"])
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--n-samples", type=int, default=10000, help="the run's --n-samples")
    parser.add_argument("--seed", type=int, default=0, help="the run's --seed")
    parser.add_argument("--weights", default=None, help="the run's --weights (default: the model's own)")
    parser.add_argument("--n-images", type=int, default=500, help="the run's --n-images")
    parser.add_argument("--tolerance", type=float, default=None, help="the run's --tolerance")
    parser.add_argument("--shard-size", type=int, default=50, help="the run's --shard-size")
    parser.add_argument("--n-validation", type=int, default=200, help="the run's --n-validation")
    parser.add_argument("--figure-samples", type=int, default=2000, help="the run's --figure-samples")
    parser.add_argument(
        "--every-setting", action="store_true", help="also score the test images under every candidate T (diagnosis)"
    )
    parser.add_argument(
        "--scoring-masks", type=int, default=0, help="also score paper-style under N masks per image (diagnosis)"
    )
    args = parser.parse_args()
    config = RunConfig.create(
        args.dataset,
        arch=args.arch,
        weights=args.weights,
        n_images=args.n_images,
        n_samples=args.n_samples,
        shard_size=args.shard_size,
        n_validation=args.n_validation,
        figure_samples=args.figure_samples,
        seed=args.seed,
        candidates=CANDIDATE_SETTINGS,
        tolerance=args.tolerance,
    )
    model = shipped_model(args.dataset, args.arch).build(config.weights)
    masks = config.masks
    settings = [s for s in CANDIDATE_SETTINGS if s.normalization == "max_abs"]
    n_classes = 10
    try:
        fills = run_fills(config, args.data_dir, Path(args.run))
    except ValueError as error:
        raise SystemExit(str(error)) from None

    # every kept fill is read once: (images, fill, mask seed, scoring masks, first image) per job
    validation_job, saved = fills.validation
    validation = (validation_job.images, saved["fill"], validation_job.seed)
    n_validation = len(validation_job.images)
    test = []
    for job, saved in fills.test:
        blank = per_image_blanks(job.images, config, first=job.first)
        test.append((job.images, saved["fill"], job.seed, blank, job.first))

    print(f"{len(test)} test shards, {n_validation} validation images, {args.dataset} {args.arch}")
    print("| sigma | row | T (chosen on validation) | validation macro F1 | test accuracy | test macro F1 |")
    print("|---|---|---|---|---|---|")
    with torch.no_grad():
        for sigma in SIGMAS:
            on_validation = {s: ConsistencyCounts(n_classes) for s in settings}
            images, fill, seed = validation
            score(model, images, blur(fill, sigma), seed, None, settings, on_validation, masks)
            f1 = {row: {s: on_validation[s].scores()[row]["macro_f1"] for s in settings} for row in ROWS}
            chosen = best_settings(f1, settings)
            on_test = {s: ConsistencyCounts(n_classes) for s in set(chosen.values())}
            for images, fill, seed, blank, _ in test:
                score(model, images, blur(fill, sigma), seed, blank, list(on_test), on_test, masks)
            if sigma == 0:
                chosen_unblurred = chosen
            for row, setting in chosen.items():
                scores = on_test[setting].scores()[row]
                print(
                    f"| {sigma:g} | {row} | {setting} | {f1[row][setting]:.1f} | "
                    f"{scores['accuracy']:.1f} | {scores['macro_f1']:.1f} |",
                    flush=True,
                )
        if args.every_setting:
            on_test = {s: ConsistencyCounts(n_classes) for s in CANDIDATE_SETTINGS}
            for images, fill, seed, blank, _ in test:
                score(model, images, fill, seed, blank, CANDIDATE_SETTINGS, on_test, masks)
            print("\nEvery candidate on the test images (diagnosis only: nothing is chosen from it)")
            print("| T | paper-style accuracy | paper-style correct | strict accuracy |")
            print("|---|---|---|---|")
            for setting, counts in on_test.items():
                scores = counts.scores()
                paper_style = counts.confusion["paper-style"]
                print(
                    f"| {setting} | {scores['paper-style']['accuracy']:.1f} | "
                    f"{int(paper_style.diagonal().sum())} of {int(paper_style.sum())} | "
                    f"{scores['strict']['accuracy']:.1f} |"
                )
        if args.scoring_masks:
            setting = chosen_unblurred["paper-style"]
            print(f"\nPaper-style, {args.scoring_masks} scoring masks per image (T: {setting}; draw 0: the report's)")
            print("| draw | accuracy | correct |")
            print("|---|---|---|")
            correct = torch.zeros(args.scoring_masks, dtype=torch.long)
            for images, fill, _, _, first in test:  # each shard's labels and masks once, for every draw
                reference = model(images).argmax(1)
                for draw, blank in enumerate(scoring_masks(images, config, first, args.scoring_masks)):
                    rebuilt = filled_image(apply_masks(images, blank, 0.0), fill, blank, transform=setting)
                    correct[draw] += int((model(rebuilt).argmax(1) == reference).sum())
            total = sum(len(images) for images, *_ in test)
            accuracies = []
            for draw, right in enumerate(correct.tolist()):
                accuracies.append(100 * right / total)
                print(f"| {draw} | {accuracies[-1]:.1f} | {right} of {total} |")
            spread = torch.tensor(accuracies)
            print(
                f"mean {spread.mean():.2f}, standard deviation {spread.std():.2f}, "
                f"min {spread.min():.1f}, max {spread.max():.1f}"
            )


if __name__ == "__main__":
    main()
