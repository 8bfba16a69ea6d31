"""The ``captum-fillblanks`` command.

Each subcommand is one ``_add_<name>(subcommands)`` function that declares its
arguments and sets ``run`` to the function doing the work; :func:`build_parser` lists
them. Every subcommand calls the package's public API, as a user would.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from pathlib import Path

import torch

from .data import DATASETS, load_tensors, split_training_set
from .models import ResNet5_Weights, SimpleCNN_Weights, resnet5, simple_cnn
from .training import evaluate_accuracy, train_model

__all__ = ["main", "build_parser"]

_BUILDERS = {"simple-cnn": simple_cnn, "resnet5": resnet5}
_SHIPPED_WEIGHTS = {
    ("mnist", "simple-cnn"): SimpleCNN_Weights.MNIST_5K,
    ("mnist", "resnet5"): ResNet5_Weights.MNIST_5K,
    ("fashion-mnist", "resnet5"): ResNet5_Weights.FASHION_MNIST,
}
_DEFAULT_ARCH = {"mnist": "simple-cnn", "fashion-mnist": "resnet5"}


def build_parser() -> argparse.ArgumentParser:
    """The command's parser, one subparser per subcommand."""
    parser = argparse.ArgumentParser(
        prog="captum-fillblanks",
        description="Fill in the blanks: see how a vision model fills masked-out patches.",
    )
    subcommands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_demo(subcommands)
    _add_train(subcommands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Runs ``captum-fillblanks`` with ``argv`` (default: the command line)."""
    args = build_parser().parse_args(argv)
    return args.run(args)


def _add_demo(subcommands: argparse._SubParsersAction) -> None:
    parser = subcommands.add_parser(
        "demo",
        help="offline demo on the bundled samples: Figs. 1-3 as PNGs and a small Table 1",
        description=(
            "Run the method on the shipped weights and bundled sample images (no network, "
            "no data folder): write the paper's Fig. 1, 2 and 3 analogues for MNIST and "
            "Fashion-MNIST as PNGs and print a small consistency table."
        ),
    )
    parser.add_argument("--out", type=Path, default=Path("fillblanks-demo"), help="output folder (default: ./fillblanks-demo)")
    parser.add_argument("--n-samples", type=int, default=300, help="kept masks per image (default: 300)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")
    parser.set_defaults(run=_demo)


def _demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    if args.n_samples < 1:
        raise SystemExit("captum-fillblanks demo: --n-samples must be >= 1")
    start = time.perf_counter()
    run_demo(args.out, n_samples=args.n_samples, seed=args.seed, show_progress=not args.no_progress)
    print(f"done in {time.perf_counter() - start:.0f} s")
    return 0


def _add_train(subcommands: argparse._SubParsersAction) -> None:
    parser = subcommands.add_parser(
        "train",
        help="rebuild a shipped weight file and print its test accuracy",
        description=(
            "Rebuild one of the weight files shipped in captum_fillblanks/weights, with "
            "the recipe recorded in its meta (seeded), and print its accuracy on the "
            "data set's t10k test split."
        ),
    )
    parser.add_argument("--dataset", required=True, choices=DATASETS)
    parser.add_argument(
        "--arch",
        choices=sorted(_BUILDERS),
        help="model; default: simple-cnn for mnist, resnet5 for fashion-mnist",
    )
    parser.add_argument(
        "--data-dir",
        required=True,
        type=Path,
        help="folder with the data set's IDX files, plain or .gz (train-* and t10k-*)",
    )
    parser.add_argument(
        "--out", type=Path, help="weight file to write; default: the shipped file's name, here"
    )
    parser.add_argument("--epochs", type=int, help="default: the shipped weights' recipe")
    parser.add_argument("--seed", type=int, help="default: the shipped weights' recipe")
    parser.set_defaults(run=_train)


def _train(args: argparse.Namespace) -> int:
    arch = args.arch or _DEFAULT_ARCH[args.dataset]
    weights = _SHIPPED_WEIGHTS.get((args.dataset, arch))
    if weights is None:
        shipped = ", ".join(f"--dataset {d} --arch {a}" for d, a in _SHIPPED_WEIGHTS)
        raise SystemExit(
            f"captum-fillblanks train: no shipped weights for {arch} on {args.dataset}; "
            f"it rebuilds {shipped}. Use captum_fillblanks.training.train_model for others."
        )
    recipe = weights.meta["recipe"]
    epochs = recipe["epochs"] if args.epochs is None else args.epochs
    seed = recipe["seed"] if args.seed is None else args.seed
    out = args.out or Path(weights.file_name)

    test_images, test_labels = load_tensors(args.dataset, args.data_dir, train=False)
    images, labels = load_tensors(args.dataset, args.data_dir, train=True)
    train_indices = split_training_set(args.dataset, labels).train
    print(
        f"Training {arch} on {len(train_indices):,} {args.dataset} images "
        f"({len(labels) - len(train_indices):,} held out), {epochs} epochs, seed {seed}."
    )

    started = time.perf_counter()
    torch.manual_seed(seed)
    model = _BUILDERS[arch]()
    train_model(
        model,
        (images[train_indices], labels[train_indices]),
        epochs=epochs,
        batch_size=recipe["batch_size"],
        lr=recipe["lr"],
        seed=seed,
        max_shift=recipe["max_shift"],
    )
    seconds = time.perf_counter() - started
    accuracy = evaluate_accuracy(model, test_images, test_labels)

    out.parent.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), out)
    print(f"Trained in {seconds:.0f} s; wrote {out}")
    print(
        f"t10k test accuracy: {accuracy:.2%} on {len(test_labels):,} images "
        f"(shipped {weights!r}: {weights.meta['t10k_accuracy']:.2%})"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
