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
from .paper.data import load_tensors, split_training_set
from .paper.datasets import DATA_SETS, IMAGE_REPRODUCTION, TEXT_REPRODUCTION, DataSet, data_sets
from .paper.demo import DEMO_TOLERANCE
from .paper.files import save_tensors_file
from .paper.models import DEFAULT_ARCH, WeightsEnum, list_shipped_models, shipped_model, shipped_weights
from .paper.reproduce import CANDIDATE_SETTINGS
from .paper.robust import PGD, robust_accuracy
from .paper.training import evaluate_accuracy, train_model

__all__ = ["main", "build_parser"]

# the shipped models' registry, shared with the reproduction
_ARCHS = sorted({arch for dataset in data_sets("images") for _, arch in list_shipped_models(dataset)})


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
    _add_mask_study(subcommands)
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
    parser.add_argument("--n-samples", type=int, default=1000, help="the most kept masks per image (default: 1000)")
    parser.add_argument(
        "--tolerance",
        type=_tolerance,
        default=DEMO_TOLERANCE,
        help=f"stop each image's fill once its relative error is at most this; 'none': exactly --n-samples "
        f"(default: {DEMO_TOLERANCE})",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")
    parser.set_defaults(run=_demo)


def _tolerance(text: str) -> float | None:
    """``--tolerance``: a positive number, or ``none``."""
    if text.lower() == "none":
        return None
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number or 'none', got {text!r}") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive number or 'none', got {text!r}")
    return value


def _demo(args: argparse.Namespace) -> int:
    from .paper.demo import run_demo

    _draw_off_screen()
    if args.n_samples < 1:
        raise SystemExit("captum-fillblanks demo: --n-samples must be >= 1")
    start = time.perf_counter()
    run_demo(
        args.out, n_samples=args.n_samples, tolerance=args.tolerance, seed=args.seed, show_progress=not args.no_progress
    )
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
    parser.add_argument(
        "--dataset",
        required=True,
        choices=data_sets(),
        help=f"{', '.join(data_sets('texts'))}: the text Table 1 of its shipped model (LayerMaskFill at its embedding)",
    )
    parser.add_argument("--data-dir", required=True, help=_data_dir_help())
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
    parser.add_argument(
        "--n-images",
        type=int,
        default=None,
        help=f"test images (texts) scored (default: {IMAGE_REPRODUCTION.n_items}; texts: "
        f"{TEXT_REPRODUCTION.n_items or 'the whole test split'})",
    )
    parser.add_argument(
        "--n-samples",
        type=int,
        default=None,
        help=f"kept masks per image (text) (default: {IMAGE_REPRODUCTION.n_samples}; texts: "
        f"{TEXT_REPRODUCTION.n_samples})",
    )
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
    parser.add_argument(
        "--tolerance",
        type=float,
        default=None,
        help="stop each image's fill once its relative Monte-Carlo error is at most this (MaskFill's tolerance); "
        "--n-samples is then the cap (default: off, exactly --n-samples, the paper's protocol; measured to be "
        "enough: --tolerance 0.15 --n-samples 3000, docs/choosing.rst)",
    )
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")
    parser.set_defaults(run=_reproduce)


def _data_dir_help() -> str:
    return "; ".join(f"{name}: {entry.data_dir}" for name, entry in DATA_SETS.items())


def _refuse_options(command: str, data_set: DataSet, args: argparse.Namespace, options: tuple[str, ...]) -> None:
    """One line for an option the data set's kit does not take (an option left at its
    default of ``None`` is not given)."""
    given = [f"--{name.replace('_', '-')}" for name in options if getattr(args, name, None) is not None]
    if given:
        raise SystemExit(
            f"captum-fillblanks {command}: {', '.join(given)} {'is' if len(given) == 1 else 'are'} not for "
            f"--dataset {data_set.name} (its {data_set.kind} kit runs its shipped model); leave "
            f"{'it' if len(given) == 1 else 'them'} out"
        )


def _reproduce(args: argparse.Namespace) -> int:
    import shlex
    import sys

    _draw_off_screen()
    data_set = DATA_SETS[args.dataset]
    if args.n_images is None:
        args.n_images = data_set.reproduce.n_items
    if args.n_samples is None:
        args.n_samples = data_set.reproduce.n_samples
    for name in ("n_images", "n_samples", "shard_size", "n_validation", "figure_samples"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            raise SystemExit(f"captum-fillblanks reproduce: --{name.replace('_', '-')} must be >= 1")
    _refuse_options("reproduce", data_set, args, data_set.not_for_reproduce)
    if data_set.devices is not None and args.device is not None and args.device not in data_set.devices:
        raise SystemExit(
            f"captum-fillblanks reproduce: --dataset {data_set.name} runs on {' or '.join(data_set.devices)} only "
            "(a small model)"
        )
    command = "captum-fillblanks " + shlex.join(sys.argv[1:]) if sys.argv[1:2] == ["reproduce"] else ""
    return _REPRODUCE[data_set.kind](args, command)


def _reproduce_images(args: argparse.Namespace, command: str) -> int:
    from .paper.reproduce import reproduce

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
        tolerance=args.tolerance,
        command=command,
        show_progress=not args.no_progress,
    )
    return 0


def _reproduce_texts(args: argparse.Namespace, command: str) -> int:
    from .paper.text.report import TextRun, reproduce_tweets

    run = TextRun(n_texts=args.n_images, n_samples=args.n_samples, n_validation=args.n_validation, seed=args.seed)
    out = args.out or Path(f"reproduce-{args.dataset}")
    report = reproduce_tweets(args.data_dir, out, run, command=command, show_progress=not args.no_progress)
    print(f"wrote {report}")
    return 0


#: The kit that reproduces each kind of data set (:data:`~.paper.datasets.DATA_SETS`).
_REPRODUCE = {"images": _reproduce_images, "texts": _reproduce_texts}


def _add_mask_study(subcommands: argparse._SubParsersAction) -> None:
    parser = subcommands.add_parser(
        "mask-study",
        help="how many masks the results need: Table 1's fill rows and the readability checks against the "
        "kept masks, and under tolerance, into OUT/masks.md",
        description=(
            "Fill the first --n-images test images of a reproduction once with up to --n-samples kept masks, "
            "recording each image's fill at every count, and score the paper-style and strict rows and the "
            "readability checks at 100, 300, 1,000, 3,000 and 10,000 kept masks and at tolerances 0.2, 0.1 "
            "and 0.05, with bootstrap errors. The fills are kept in OUT and reused by a rerun."
        ),
    )
    parser.add_argument(
        "--dataset", required=True, choices=tuple(name for name, entry in DATA_SETS.items() if entry.mask_study)
    )
    parser.add_argument("--data-dir", required=True, help="folder of IDX files (plain or .gz)")
    parser.add_argument("--arch", choices=_ARCHS, help="shipped model (default: the data set's, as reproduce)")
    parser.add_argument("--weights", help="another shipped weights member of the model (as reproduce)")
    parser.add_argument("--n-images", type=int, default=100, help="test images (default: 100)")
    parser.add_argument("--n-samples", type=int, default=10_000, help="the most kept masks per image (default: 10000)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default=None, help="torch device for the fills (default: cuda where present)")
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")
    parser.set_defaults(run=_mask_study)


def _mask_study(args: argparse.Namespace) -> int:
    import shlex
    import sys

    from .paper.mask_study import mask_study

    _draw_off_screen()
    for name in ("n_images", "n_samples"):
        if getattr(args, name) < 1:
            raise SystemExit(f"captum-fillblanks mask-study: --{name.replace('_', '-')} must be >= 1")
    command = "captum-fillblanks " + shlex.join(sys.argv[1:]) if sys.argv[1:2] == ["mask-study"] else ""
    report = mask_study(
        args.dataset,
        args.data_dir,
        args.out,
        arch=args.arch,
        weights=args.weights,
        n_images=args.n_images,
        n_samples=args.n_samples,
        seed=args.seed,
        device=args.device,
        command=command,
        show_progress=not args.no_progress,
    )
    print(f"wrote {report}")
    return 0


def _add_train(subcommands: argparse._SubParsersAction) -> None:
    parser = subcommands.add_parser(
        "train",
        help="rebuild a shipped weight file and print its test accuracy",
        description=(
            "Rebuild one of the weight files shipped in captum_fillblanks/paper/weights, with "
            "the recipe recorded in its meta (seeded), and print its accuracy on the "
            "data set's t10k test split. --dataset tweets trains the tweet sentiment "
            "TweetTransformer and its vocabulary, prints its validation and test accuracy and "
            "macro F1, and fits a TF-IDF + logistic-regression baseline on the same train "
            "split for comparison."
        ),
    )
    parser.add_argument("--dataset", required=True, choices=data_sets())
    parser.add_argument(
        "--arch",
        choices=_ARCHS,
        help="model; default: the data set's ("
        + ", ".join(f"{DEFAULT_ARCH[name]} for {name}" for name in data_sets("images"))
        + ")",
    )
    parser.add_argument(
        "--weights",
        help="which of the model's shipped weights on the data set to rebuild "
        "(e.g. MNIST_5K_FLATTEN for resnet5 on mnist); default: the model's own",
    )
    parser.add_argument("--data-dir", required=True, type=Path, help=_data_dir_help())
    parser.add_argument(
        "--out",
        type=Path,
        help="weight file to write (tweets: and its vocabulary beside it, NAME.vocab.txt); default: the shipped "
        "file's name, here",
    )
    parser.add_argument("--epochs", type=int, help="default: the shipped weights' recipe")
    parser.add_argument("--seed", type=int, help="default: the shipped weights' recipe")
    robust = parser.add_argument_group(
        "robust training (images; default: the shipped weights' recipe, which names its attack or noise if any)"
    )
    robust.add_argument("--noise-std", type=float, help="Gaussian-noise augmentation of this standard deviation")
    robust.add_argument(
        "--attack", choices=("l2", "linf", "none"), help="PGD adversarial training in this norm ('none': clean)"
    )
    robust.add_argument("--epsilon", type=float, help="the attack's radius (with --attack)")
    robust.add_argument(
        "--attack-steps", type=int, help="PGD steps (with --attack; default 7; 1: fast adversarial training)"
    )
    robust.add_argument(
        "--warmup", type=float, help="fraction of training over which epsilon grows to its value (with --attack; 0.2)"
    )
    parser.set_defaults(run=_train)


def _robust_settings(args: argparse.Namespace, recipe: dict) -> tuple[float, PGD | None]:
    """The noise and the attack of a train run: the recipe's, or the command line's."""
    noise_std = recipe.get("noise_std", 0.0) if args.noise_std is None else args.noise_std
    attack = PGD(**recipe["attack"]) if recipe.get("attack") else None
    if args.attack == "none":
        attack = None
    elif args.attack is not None:
        if args.epsilon is None:
            raise SystemExit("captum-fillblanks train: --attack needs --epsilon, the attack's radius")
        steps = 7 if args.attack_steps is None else args.attack_steps
        warmup = 0.2 if args.warmup is None else args.warmup
        try:
            attack = PGD(args.attack, args.epsilon, steps=steps, warmup=warmup)
        except ValueError as error:
            raise SystemExit(f"captum-fillblanks train: {error}") from None
    if args.attack in (None, "none"):
        given = [
            f"--{k.replace('_', '-')}" for k in ("epsilon", "attack_steps", "warmup") if getattr(args, k) is not None
        ]
        if given:
            raise SystemExit(f"captum-fillblanks train: {', '.join(given)} need --attack l2 or --attack linf")
    if noise_std < 0:
        raise SystemExit(f"captum-fillblanks train: --noise-std must be >= 0, got {noise_std}")
    return noise_std, attack


def _train(args: argparse.Namespace) -> int:
    data_set = DATA_SETS[args.dataset]
    _refuse_options("train", data_set, args, data_set.not_for_train)
    return _TRAIN[data_set.kind](args)


def _train_images(args: argparse.Namespace) -> int:
    arch = args.arch or DEFAULT_ARCH[args.dataset]
    if (args.dataset, arch) not in list_shipped_models():
        shipped = ", ".join(f"--dataset {d} --arch {a}" for d in data_sets("images") for _, a in list_shipped_models(d))
        raise SystemExit(
            f"captum-fillblanks train: no shipped weights for {arch} on {args.dataset}; "
            f"it rebuilds {shipped}. Use captum_fillblanks.paper.training.train_model for others."
        )
    try:
        weights = shipped_weights(args.dataset, arch, args.weights)
    except ValueError as error:
        raise SystemExit(f"captum-fillblanks train: {error}") from None
    recipe = weights.meta["recipe"]
    epochs, seed, out = _training_settings(args, weights)
    noise_std, attack = _robust_settings(args, recipe)

    test_images, test_labels = load_tensors(args.dataset, args.data_dir, train=False)
    images, labels = load_tensors(args.dataset, args.data_dir, train=True)
    _make_out_folder(out)
    train_indices = split_training_set(args.dataset, labels).train
    robust = "".join(
        [f", Gaussian noise {noise_std:g}" if noise_std else "", f", adversarial: {attack}" if attack else ""]
    )
    print(
        f"Training {arch} on {len(train_indices):,} {args.dataset} images "
        f"({len(labels) - len(train_indices):,} held out), {epochs} epochs, seed {seed}{robust}."
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
        noise_std=noise_std,
        attack=attack,
    )
    seconds = time.perf_counter() - started
    accuracy = evaluate_accuracy(model, test_images, test_labels)

    save_tensors_file(model.state_dict(), out)
    print(f"Trained in {seconds:.0f} s; wrote {out}")
    print(
        f"t10k test accuracy: {accuracy:.2%} on {len(test_labels):,} images "
        f"(shipped {weights!r}: {weights.meta['t10k_accuracy']:.2%})"
    )
    for name, measured in weights.meta.get("robust_accuracy", {}).items():
        evaluation = PGD(**measured["attack"])
        robust = robust_accuracy(
            model, test_images[: measured["images"]], test_labels[: measured["images"]], evaluation
        )
        print(
            f"robust accuracy, {evaluation} ({name}): {robust:.2%} on the first {measured['images']:,} t10k images "
            f"(shipped: {measured['accuracy']:.2%})"
        )
    return 0


def _training_settings(args: argparse.Namespace, weights: WeightsEnum) -> tuple[int, int, Path]:
    """Epochs, seed and weight file of a train run, checked: what would fail only after
    training, when the trained weights would be lost."""
    recipe = weights.meta["recipe"]
    epochs = recipe["epochs"] if args.epochs is None else args.epochs
    seed = recipe["seed"] if args.seed is None else args.seed
    out = args.out or Path(weights.file_name)
    if epochs < 1:
        raise SystemExit(f"captum-fillblanks train: --epochs must be >= 1, got {epochs}")
    if not 0 <= seed < 2**63:
        raise SystemExit(f"captum-fillblanks train: --seed must be in [0, 2**63), got {seed}")
    if out.is_dir():
        raise SystemExit(f"captum-fillblanks train: --out {out} is a folder; give the weight file to write")
    return epochs, seed, out


def _make_out_folder(out: Path) -> None:
    """Called once the data loaded: a failed start leaves no empty folder behind."""
    out.parent.mkdir(parents=True, exist_ok=True)
    if not os.access(out.parent, os.W_OK):
        raise SystemExit(f"captum-fillblanks train: cannot write into {out.parent} (--out {out})")


def _train_texts(args: argparse.Namespace) -> int:
    from .paper.text.data import load_tweet_splits
    from .paper.text.training import score_predictions, score_tweets, tfidf_logistic_regression, train_tweet_transformer

    try:
        weights = shipped_weights(args.dataset, DEFAULT_ARCH[args.dataset], args.weights)
    except ValueError as error:
        raise SystemExit(f"captum-fillblanks train: {error}") from None
    recipe = weights.meta["recipe"]
    epochs, seed, out = _training_settings(args, weights)
    vocabulary_out = out.with_suffix(".vocab.txt")
    if vocabulary_out.is_dir():
        raise SystemExit(f"captum-fillblanks train: {vocabulary_out} (the vocabulary of --out {out}) is a folder")

    splits = load_tweet_splits(args.data_dir)
    _make_out_folder(out)
    print(
        f"Training the TweetTransformer on the {len(splits.train.texts):,} train-split tweets "
        f"({len(splits.validation.texts):,} validation and {len(splits.test.texts):,} test tweets held out), "
        f"{epochs} epochs, seed {seed}."
    )
    started = time.perf_counter()
    model, tokenizer = train_tweet_transformer(
        splits.train,
        epochs=epochs,
        batch_size=recipe["batch_size"],
        lr=recipe["lr"],
        seed=seed,
        mask_augment=recipe["mask_augment"],
        max_length=recipe["max_length"],
        vocabulary=recipe["vocabulary"],
        dropout=recipe["dropout"],
    )
    seconds = time.perf_counter() - started
    save_tensors_file(model.state_dict(), out)
    tokenizer.save(vocabulary_out)
    print(f"Trained in {seconds:.0f} s; wrote {out} and {vocabulary_out} ({len(tokenizer):,} tokens)")
    meta = weights.meta
    for split in ("validation", "test"):
        scores = score_tweets(model, tokenizer, getattr(splits, split), recipe["max_length"])
        print(
            f"{split}: {scores} on {len(getattr(splits, split).texts):,} tweets (shipped {weights!r}: "
            f"accuracy {meta[f'{split}_accuracy']:.2%}, macro F1 {meta[f'{split}_macro_f1']:.2%})"
        )

    started = time.perf_counter()
    baseline = tfidf_logistic_regression(splits.train)
    scores = score_predictions(torch.as_tensor(baseline.predict(splits.test.texts)), splits.test.labels)
    print(
        f"baseline, TF-IDF + logistic regression on the same train split (fit in "
        f"{time.perf_counter() - started:.0f} s): test {scores}"
    )
    return 0


#: The kit that trains each kind of data set's shipped model.
_TRAIN = {"images": _train_images, "texts": _train_texts}


if __name__ == "__main__":
    raise SystemExit(main())
