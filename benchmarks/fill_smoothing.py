"""Would smoothing the fill before T close ResNet5's gap to the paper? (Not the method.)

ResNet5's fills carry the stride of its downsampling (a period-4 grid, pixel speckle on
MNIST's strokes; ``fill_spectrum.py``). This check blurs the cached fills of a finished
``reproduce`` run with a Gaussian of width ``sigma`` before ``T``, chooses the setting of
``T`` for each row on the run's validation fills (best macro F1 among the ``max_abs``
settings, as ``reproduce`` chooses), and scores the paper-style and strict rows of
Table 1 on the run's test shards with the same masks and labels as the report.
``sigma = 0`` reproduces the report's rows where the report chose a ``max_abs`` setting.
Only forward passes: a minute or two on a CPU.

``--every-setting`` adds a diagnosis: the two rows on the test images, unblurred, under
every candidate setting of ``T`` (min-max too). It asks whether another choice of ``T``
would have closed the gap; nothing is chosen from it, since the test images are the
ones scored.

``--scoring-masks N`` adds another: the paper-style row under each of the first ``N``
masks of every shard's seed, the fill and the chosen ``T`` fixed. The report scores
each image under one random mask, the first of these; the others show how far that one
draw moves the row.

    python benchmarks/fill_smoothing.py --run RUN_DIR --dataset mnist --arch resnet5 \\
        --data-dir ../shared/data/mnist [--weights MNIST_5K_FLATTEN] [--every-setting] \\
        [--scoring-masks 20]

Recorded in ``docs/reproduction/README.md`` (MNIST, ResNet5, both heads).
"""

import argparse
import re
from pathlib import Path

import torch
import torch.nn.functional as F

from captum_fillblanks import filled_image, random_patch_masks
from captum_fillblanks.attr.masks import apply_masks
from captum_fillblanks.attr.metrics import ConsistencyCounts, rebuild_rows, score_rows
from captum_fillblanks.paper.data import load_tensors, sample_indices, split_training_set
from captum_fillblanks.paper.files import load_tensors_file
from captum_fillblanks.paper.models import shipped_model
from captum_fillblanks.paper.reproduce import CANDIDATE_SETTINGS, RunConfig, best_settings, class_balanced

ROWS = ("paper-style", "strict")
SIGMAS = (0.0, 0.7, 1.0, 1.5, 2.0)


def blur(fill: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of each channel, zero padding; ``sigma = 0``: unchanged."""
    if sigma == 0:
        return fill
    radius = int(3 * sigma + 0.5)
    offsets = torch.arange(-radius, radius + 1, dtype=fill.dtype)
    kernel = torch.exp(-(offsets**2) / (2 * sigma**2))
    kernel = kernel / kernel.sum()
    channels = fill.shape[1]
    rows = kernel.view(1, 1, 1, -1).repeat(channels, 1, 1, 1)
    out = F.conv2d(fill, rows, padding=(0, radius), groups=channels)
    return F.conv2d(out, rows.transpose(2, 3), padding=(radius, 0), groups=channels)


def scoring_masks(images, seed, masks: dict, n: int = 1) -> torch.Tensor:
    """The first ``n`` masks of ``seed``, as blank indicators shaped like ``images``;
    the first is the one ``consistency_counts`` scores with (``scoring_blank``)."""
    drawn = random_patch_masks(n, *images.shape[-2:], **masks, generator=torch.Generator().manual_seed(seed))
    return (drawn == 0)[:, None, None].expand(n, *images.shape)


def score(model, images, fill, seed, settings, counts: dict, masks: dict) -> None:
    """Add the two rows, for each setting, as ``consistency_counts`` builds them."""
    for setting in settings:
        rebuilt = rebuild_rows(model, images, transform=setting, fill=fill, seed=seed, rows=ROWS, **masks)
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
        n_samples=args.n_samples,
        seed=args.seed,
        candidates=CANDIDATE_SETTINGS,
    )
    model = shipped_model(args.dataset, args.arch).build(config.weights)
    shards, masks = config.shards_folder(Path(args.run)), config.masks
    settings = [s for s in CANDIDATE_SETTINGS if s.normalization == "max_abs"]
    n_classes = 10

    train_images, train_labels = load_tensors(args.dataset, args.data_dir, train=True)
    validation_file = next(shards.glob("validation_*.pt"), None)
    if validation_file is None:
        raise SystemExit(f"{shards} holds no validation fills: is --run the run's --out, with its --weights?")
    n_validation, _, validation_seed = map(int, re.findall(r"\d+", validation_file.stem))
    validation = class_balanced(split_training_set(args.dataset, train_labels).validation, train_labels, n_validation)
    test_images, _ = load_tensors(args.dataset, args.data_dir, train=False)
    keep = torch.ones(len(test_images), dtype=torch.bool)
    if args.dataset == "fashion-mnist":  # as reproduce: the bundled samples are left out
        keep[sample_indices(args.dataset)] = False
    test_images = test_images[keep]
    test_shards = sorted(shards.glob(f"shard_*_{args.n_samples}_{args.seed}.pt"))
    ends = [tuple(map(int, re.findall(r"\d+", path.stem)[:2])) for path in test_shards]
    if not ends or ends[0][0] != 0 or any(a[1] != b[0] for a, b in zip(ends, ends[1:])):
        raise SystemExit(f"{shards}: the shards for --n-samples {args.n_samples} --seed {args.seed} do not tile 0..n")

    # every cached fill is read once: (images, fill, mask seed) per shard
    validation_images = train_images[validation]
    validation_fill = load_tensors_file(validation_file)["fill"]
    test = []
    for path in test_shards:
        start, end, _, base_seed = map(int, re.findall(r"\d+", path.stem))
        test.append((test_images[start:end], load_tensors_file(path)["fill"], base_seed + start))

    print(f"{len(test)} test shards, {n_validation} validation images, {args.dataset} {args.arch}")
    print("| sigma | row | T (chosen on validation) | validation macro F1 | test accuracy | test macro F1 |")
    print("|---|---|---|---|---|---|")
    with torch.no_grad():
        for sigma in SIGMAS:
            on_validation = {s: ConsistencyCounts(n_classes) for s in settings}
            score(
                model, validation_images, blur(validation_fill, sigma), validation_seed, settings, on_validation, masks
            )
            f1 = {row: {s: on_validation[s].scores()[row]["macro_f1"] for s in settings} for row in ROWS}
            chosen = best_settings(f1, settings)
            on_test = {s: ConsistencyCounts(n_classes) for s in set(chosen.values())}
            for images, fill, seed in test:
                score(model, images, blur(fill, sigma), seed, list(on_test), on_test, masks)
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
            for images, fill, seed in test:
                score(model, images, fill, seed, CANDIDATE_SETTINGS, on_test, masks)
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
            for images, fill, seed in test:  # each shard's labels and masks once, for every draw
                reference = model(images).argmax(1)
                for draw, blank in enumerate(scoring_masks(images, seed, masks, args.scoring_masks)):
                    rebuilt = filled_image(apply_masks(images, blank, 0.0), fill, blank, transform=setting)
                    correct[draw] += int((model(rebuilt).argmax(1) == reference).sum())
            total = sum(len(images) for images, _, _ in test)
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
