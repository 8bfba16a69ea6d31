"""Speed of LayerMaskFill on the shipped tweet model against the bare passes it needs.

The reference ("floor") is what any fill at the embedding must do: for the same masked
copies, one forward+backward pass of the model with the embedding's output replaced,
through a forward hook, by a leaf tensor (the masked embeddings, built beforehand), in
chunks of the same size. LayerMaskFill adds the mask sequence, the masking, the
selection and the sums. ``selection="all"`` so both process every copy; the default
``selection="correct"`` is timed too, beside it. Ratios are medians of interleaved
repeats in one process (the machine is shared and noisy).

    python benchmarks/bench_layer_mask_fill.py            # about a minute on two cores
    python benchmarks/bench_layer_mask_fill.py --quick

Not part of the test run.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import torch
import torch.nn.functional as F

from captum_fillblanks import LayerMaskFill, token_layer_mask
from captum_fillblanks.attr.masks import MaskSequence, n_blank_units
from captum_fillblanks.paper.models.tweet_transformer import TweetTransformer_Weights, tweet_transformer
from captum_fillblanks.paper.text.data import load_tweet_samples


def floor_pass(model, ids, attention, masked, labels, chunk):
    """Forward+backward of pre-masked embeddings, handed to the model by a hook."""
    replacement = {}
    handle = model.embedding.register_forward_hook(lambda module, args, output: replacement["value"])
    try:
        for start in range(0, len(masked), chunk):
            leaf = masked[start : start + chunk].detach().requires_grad_()
            replacement["value"] = leaf
            rows = slice(start, start + len(leaf))
            loss = F.cross_entropy(model(ids[rows], attention[rows]), labels[rows], reduction="sum")
            torch.autograd.grad(loss, leaf)
    finally:
        handle.remove()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats and masks")
    parser.add_argument("--n-texts", type=int, default=4, help="bundled tweets in the batch (default: 4)")
    args = parser.parse_args()
    repeats, n = (3, 200) if args.quick else (5, 1000)
    chunk = 256

    weights = TweetTransformer_Weights.DEFAULT
    model, tokenizer = tweet_transformer(weights=weights), weights.get_tokenizer()
    samples = load_tweet_samples()
    texts = [t for t in samples.texts if len(tokenizer.encode(t)) >= 12][: args.n_texts]
    ids, attention = tokenizer.batch_encode(texts)
    blank = model.embedding.weight[tokenizer.mask_id].detach()
    with torch.no_grad():
        label = model(ids, attention).argmax(1)
        h = model.embedding(ids)
    length = ids.shape[1]
    # the same number of masked copies, mask-major as LayerMaskFill lays them out (which
    # positions are blank does not change the cost of a pass)
    units = MaskSequence((length,), (n_blank_units(length, 0.25),), seed=0).take(0, n)[0]
    masked = torch.where(units[:, None, :, None], blank, h[None]).reshape(n * len(texts), length, -1)
    rep_ids, rep_attention, rep_labels = ids.repeat(n, 1), attention.repeat(n, 1), label.repeat(n)

    method = LayerMaskFill(model, model.embedding)
    options = dict(
        layer_baselines=blank, additional_forward_args=(attention,), layer_mask=token_layer_mask(attention),
        n_samples=n, seed=0, internal_batch_size=chunk,
    )  # fmt: skip
    run = {
        "LayerMaskFill, selection='all'": lambda: method.attribute(ids, selection="all", **options),
        "LayerMaskFill, selection='correct'": lambda: method.attribute(ids, **options),
        "floor: hooked forward+backward": lambda: floor_pass(model, rep_ids, rep_attention, masked, rep_labels, chunk),
    }
    for fn in run.values():
        fn()
    times = {name: [] for name in run}
    for _ in range(repeats):
        for name, fn in run.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    floor = times["floor: hooked forward+backward"]
    print(
        f"# LayerMaskFill benchmark\n\nmachine: {platform.processor() or platform.machine()}, "
        f"{torch.get_num_threads()} torch threads, torch {torch.__version__}; model: TweetTransformer "
        f"({weights!r}); {len(texts)} bundled tweets of at least 12 tokens, padded to {length}; n = {n:,} masks "
        f"per tweet, {chunk} copies per pass; "
        f"{repeats} interleaved repeats\n"
    )
    print("| run | median time (s) | ratio to the floor (median of paired ratios) |")
    print("|---|---|---|")
    for name, values in times.items():
        ratio = statistics.median(a / b for a, b in zip(values, floor))
        print(f"| {name} | {statistics.median(values):.3f} | {ratio:.2f}x |")


if __name__ == "__main__":
    main()
