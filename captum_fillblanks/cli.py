"""The ``captum-fillblanks`` command.

Each subcommand is one ``_add_<name>(subcommands)`` function that declares its
arguments and sets ``run`` to the function doing the work; :func:`build_parser` lists
them. Every subcommand calls the package's public API, as a user would.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Sequence
from pathlib import Path

import torch

from .attr.transforms import NORMALIZATIONS
from .paper.data import DATASETS, load_tensors, split_training_set
from .paper.files import save_tensors_file
from .paper.models import DEFAULT_ARCH, list_shipped_models, shipped_model, shipped_weights
from .paper.reproduce import CANDIDATE_SETTINGS
from .paper.training import evaluate_accuracy, train_model

__all__ = ["main", "build_parser"]

# the shipped models' registry, shared with the reproduction
_ARCHS = sorted({arch for _, arch in list_shipped_models()})


def _draw_off_screen() -> None:
    """The command line draws into files only: matplotlib's Agg backend (library code
    never switches the caller's backend; this is the command's own process)."""
    import matplotlib

    matplotlib.use("Agg")


def build_parser() -> argparse.ArgumentParser:
    """The command's parser, one subparser per subcommand."""
    parser = argparse.ArgumentParser(
        prog="captum-fillblanks",
        description="Fill in the blanks: see how a vision model fills masked-out patches.",
    )
    parser.add_argument("--debug", action="store_true", help="on an error, show the traceback")
    subcommands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_demo(subcommands)
    _add_reproduce(subcommands)
    _add_train(subcommands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Runs ``captum-fillblanks`` with ``argv`` (default: the command line).

    A failure the user can mend (a missing data folder, an argument out of range, another
    run's files in ``--out``) ends the command with one line naming it on stderr and exit
    status 1 (``SystemExit``); ``--debug`` lets the exception through with its traceback.
    """
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except (ValueError, TypeError, OSError) as error:
        if args.debug:
            raise
        message = " ".join(str(error).split()) or type(error).__name__
        raise SystemExit(f"captum-fillblanks {args.command}: {message} (--debug shows the traceback)") from None


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
    parser.add_argument(
        "--out", type=Path, default=Path("fillblanks-demo"), help="output folder (default: ./fillblanks-demo)"
    )
    parser.add_argument("--n-samples", type=int, default=300, help="kept masks per image (default: 300)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")
    parser.set_defaults(run=_demo)


def _demo(args: argparse.Namespace) -> int:
    from .paper.demo import run_demo

    _draw_off_screen()
    if args.n_samples < 1:
        raise SystemExit("captum-fillblanks demo: --n-samples must be >= 1")
    start = time.perf_counter()
    run_demo(args.out, n_samples=args.n_samples, seed=args.seed, show_progress=not args.no_progress)
    print(f"done in {time.perf_counter() - start:.0f} s")
    return 0


def _add_reproduce(subcommands: argparse._SubParsersAction) -> None:
    parser = subcommands.add_parser(
        "reproduce",
        help="the paper's experiments (Figs. 2-6, Table 1) into a folder with report.md",
        description=(
            "Run the paper's experiments on a folder of IDX files with the shipped weights: "
            "Fig. 2 (class prototypes), Fig. 3 (progressive), Fig. 4 (mask ratio x patch "
            "size), Fig. 5 (first vs second order), Fig. 6 (binarized vs not) and Table 1 "
            "with its controls. Finished shards are kept under OUT/shards and reused; "
            "report.md is written only when the run completes. Under torchrun each process "
            "fills its share of the shards (gloo on CPUs, NCCL on GPUs) and rank 0 writes "
            "the report: torchrun --nproc-per-node N -m captum_fillblanks reproduce ..."
        ),
    )
    parser.add_argument("--dataset", required=True, choices=DATASETS)
    parser.add_argument("--data-dir", required=True, help="folder of IDX files (plain or .gz)")
    parser.add_argument(
        "--arch",
        choices=_ARCHS,
        help="shipped model; default: simple-cnn for mnist, resnet5 for fashion-mnist "
        "(resnet5 on mnist is the paper's Table 1 model)",
    )
    parser.add_argument(
        "--weights",
        help="another shipped weights member of the model, trained on the data set "
        "(e.g. MNIST_5K_FLATTEN for resnet5 on mnist); default: the model's own",
    )
    parser.add_argument("--n-images", type=int, default=500, help="test images scored (default: 500)")
    parser.add_argument("--n-samples", type=int, default=10_000, help="kept masks per image (default: 10000)")
    parser.add_argument(
        "--device",
        default=None,
        help="torch device: cpu, cuda (under torchrun: cuda:LOCAL_RANK) or cuda:N (default: cuda where present, "
        "else cpu)",
    )
    parser.add_argument("--out", type=Path, default=None, help="output folder (default: ./reproduce-DATASET)")
    parser.add_argument("--shard-size", type=int, default=50, help="images per shard (default: 50)")
    parser.add_argument("--n-validation", type=int, default=200, help="validation images for choosing T (default: 200)")
    parser.add_argument(
        "--normalization",
        choices=NORMALIZATIONS,
        default=None,
        help="try only this normalization of T on validation (default: both; the report then "
        "also scores Table 1 with the best min_max settings alone)",
    )
    parser.add_argument(
        "--figure-samples", type=int, default=2000, help="kept masks per image in Figs. 4-6 (default: 2000)"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")
    parser.set_defaults(run=_reproduce)


def _reproduce(args: argparse.Namespace) -> int:
    import shlex
    import sys

    from .paper.reproduce import reproduce

    _draw_off_screen()
    for name in ("n_images", "n_samples", "shard_size", "n_validation", "figure_samples"):
        if getattr(args, name) < 1:
            raise SystemExit(f"captum-fillblanks reproduce: --{name.replace('_', '-')} must be >= 1")
    arch = args.arch or DEFAULT_ARCH[args.dataset]
    if (args.dataset, arch) not in list_shipped_models():
        raise SystemExit(f"captum-fillblanks reproduce: no shipped weights for {arch} on {args.dataset}")
    try:
        shipped_weights(args.dataset, arch, args.weights)
    except ValueError as error:
        raise SystemExit(f"captum-fillblanks reproduce: {error}") from None
    reproduce(
        args.dataset,
        args.data_dir,
        args.out or Path(f"reproduce-{args.dataset}"),
        arch=arch,
        weights=args.weights,
        n_images=args.n_images,
        n_samples=args.n_samples,
        device=args.device,
        shard_size=args.shard_size,
        n_validation=args.n_validation,
        candidates=[c for c in CANDIDATE_SETTINGS if args.normalization in (None, c.normalization)],
        figure_samples=args.figure_samples,
        seed=args.seed,
        command="captum-fillblanks " + shlex.join(sys.argv[1:]) if sys.argv[1:2] == ["reproduce"] else "",
        show_progress=not args.no_progress,
    )
    return 0


def _add_train(subcommands: argparse._SubParsersAction) -> None:
    parser = subcommands.add_parser(
        "train",
        help="rebuild a shipped weight file and print its test accuracy",
        description=(
            "Rebuild one of the weight files shipped in captum_fillblanks/paper/weights, with "
            "the recipe recorded in its meta (seeded), and print its accuracy on the "
            "data set's t10k test split."
        ),
    )
    parser.add_argument("--dataset", required=True, choices=DATASETS)
    parser.add_argument(
        "--arch",
        choices=_ARCHS,
        help="model; default: simple-cnn for mnist, resnet5 for fashion-mnist",
    )
    parser.add_argument(
        "--weights",
        help="which of the model's shipped weights on the data set to rebuild "
        "(e.g. MNIST_5K_FLATTEN for resnet5 on mnist); default: the model's own",
    )
    parser.add_argument(
        "--data-dir",
        required=True,
        type=Path,
        help="folder with the data set's IDX files, plain or .gz (train-* and t10k-*)",
    )
    parser.add_argument("--out", type=Path, help="weight file to write; default: the shipped file's name, here")
    parser.add_argument("--epochs", type=int, help="default: the shipped weights' recipe")
    parser.add_argument("--seed", type=int, help="default: the shipped weights' recipe")
    parser.set_defaults(run=_train)


def _train(args: argparse.Namespace) -> int:
    arch = args.arch or DEFAULT_ARCH[args.dataset]
    if (args.dataset, arch) not in list_shipped_models():
        shipped = ", ".join(f"--dataset {d} --arch {a}" for d, a in list_shipped_models())
        raise SystemExit(
            f"captum-fillblanks train: no shipped weights for {arch} on {args.dataset}; "
            f"it rebuilds {shipped}. Use captum_fillblanks.paper.training.train_model for others."
        )
    try:
        weights = shipped_weights(args.dataset, arch, args.weights)
    except ValueError as error:
        raise SystemExit(f"captum-fillblanks train: {error}") from None
    recipe = weights.meta["recipe"]
    epochs = recipe["epochs"] if args.epochs is None else args.epochs
    seed = recipe["seed"] if args.seed is None else args.seed
    out = args.out or Path(weights.file_name)
    # what would fail only after training, when the trained weights would be lost
    if epochs < 1:
        raise SystemExit(f"captum-fillblanks train: --epochs must be >= 1, got {epochs}")
    if not 0 <= seed < 2**63:
        raise SystemExit(f"captum-fillblanks train: --seed must be in [0, 2**63), got {seed}")
    if out.is_dir():
        raise SystemExit(f"captum-fillblanks train: --out {out} is a folder; give the weight file to write")

    test_images, test_labels = load_tensors(args.dataset, args.data_dir, train=False)
    images, labels = load_tensors(args.dataset, args.data_dir, train=True)
    # only now that the data loaded: a failed start leaves no empty folder behind
    out.parent.mkdir(parents=True, exist_ok=True)
    if not os.access(out.parent, os.W_OK):
        raise SystemExit(f"captum-fillblanks train: cannot write into {out.parent} (--out {out})")
    train_indices = split_training_set(args.dataset, labels).train
    print(
        f"Training {arch} on {len(train_indices):,} {args.dataset} images "
        f"({len(labels) - len(train_indices):,} held out), {epochs} epochs, seed {seed}."
    )

    started = time.perf_counter()
    torch.manual_seed(seed)
    model = shipped_model(args.dataset, arch).builder(**weights.builder_kwargs)
    train_model(
        model,
        (images[train_indices], labels[train_indices]),
        epochs=epochs,
        batch_size=recipe["batch_size"],
        lr=recipe["lr"],
        seed=seed,
        max_shift=recipe["max_shift"],
        mask_augment=recipe.get("mask_augment", 0.0),
    )
    seconds = time.perf_counter() - started
    accuracy = evaluate_accuracy(model, test_images, test_labels)

    save_tensors_file(model.state_dict(), out)
    print(f"Trained in {seconds:.0f} s; wrote {out}")
    print(
        f"t10k test accuracy: {accuracy:.2%} on {len(test_labels):,} images "
        f"(shipped {weights!r}: {weights.meta['t10k_accuracy']:.2%})"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
