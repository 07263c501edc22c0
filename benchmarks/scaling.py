"""How collator and policy cost, and packed-mask memory, grow with objectives, sequence length and batch size.

Baselines named in each table: the smallest setting of the swept variable (ratios are against it), and for mask
memory the dense 4-D float32 mask. Growth is the fitted exponent b of cost ~ x^b (1 = linear, 2 = quadratic).

    python benchmarks/scaling.py
    python benchmarks/scaling.py --lengths 512 1024 2048 4096 8192 --batch_sizes 4 8 16 32
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from birdie_hf import DEFAULT_MIXTURE, DataCollatorForBirdie, build_dna_tokenizer, load_genome_windows
from birdie_hf.packing import packed_attention_mask, packed_block_mask
from birdie_hf.policy import BirdiePolicy, PolicyConfig


def best_time(fn, repeats: int = 3) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def growth(xs, ys) -> float:
    return float(np.polyfit(np.log(xs), np.log(ys), 1)[0])


def table(title, header, rows):
    print(f"\n{title}")
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join("---" for _ in header) + "|")
    for row in rows:
        print("| " + " | ".join(row) + " |")


def windows_of(data, length, count, rng):
    picks = rng.integers(0, len(data), size=count)
    out = []
    for i in picks.tolist():
        ids = data[i]["input_ids"]
        out.append({"input_ids": (ids * (length // len(ids) + 1))[:length]})
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lengths", nargs="+", type=int, default=[512, 1024, 2048, 4096, 8192])
    parser.add_argument("--batch_sizes", nargs="+", type=int, default=[4, 8, 16, 32])
    parser.add_argument("--entries", nargs="+", type=int, default=[1, 4, 7, 13])
    parser.add_argument("--policy_entries", nargs="+", type=int, default=[4, 13, 32, 64])
    args = parser.parse_args()
    tokenizer = build_dna_tokenizer()
    data = load_genome_windows(None, tokenizer, window_length=512, validation_fraction=0)["train"]
    rng = np.random.default_rng(0)

    # 1. Number of objective entries (rows of 1024, windows of 512, batch 16).
    rows, xs, ys = [], [], []
    batch = windows_of(data, 512, 16, rng)
    for k in args.entries:
        collator = DataCollatorForBirdie(tokenizer, objectives=DEFAULT_MIXTURE[:k], max_length=1024)
        seconds = best_time(lambda: [collator(batch) for _ in range(10)], repeats=5) / 10
        xs.append(k)
        ys.append(seconds)
        rows.append([str(k), f"{seconds * 1e3:.2f}", f"{seconds / ys[0]:.2f}x"])
    table(
        f"Collator vs number of mixture entries (growth exponent {growth(xs, ys):.2f})",
        ["entries", "ms / batch of 16 windows", "vs 1 entry"],
        rows,
    )

    # 2. Sequence length (windows of L/2 packed into rows of L, batch 8): collator time and mask memory.
    rows, xs, collate_s, dense_b, block_b = [], [], [], [], []
    for length in args.lengths:
        collator = DataCollatorForBirdie(tokenizer, max_length=length, pad_to_multiple_of=128)
        batch = windows_of(data, length // 2, 8, rng)
        seconds = best_time(lambda: collator(batch), repeats=5)
        packed = collator(batch)
        dense = packed_attention_mask(packed["segment_ids"], packed["bidirectional_mask"])
        dense_bytes = dense.numel() * dense.element_size()
        del dense
        block = packed_block_mask(packed["segment_ids"], packed["bidirectional_mask"])
        block_bytes = sum(t.numel() * t.element_size() for t in block.as_tuple() if isinstance(t, torch.Tensor))
        compact_bytes = sum(
            packed[k].numel() * packed[k].element_size() for k in ("segment_ids", "bidirectional_mask")
        )
        tokens = sum(len(f["input_ids"]) for f in batch)
        xs.append(length)
        collate_s.append(seconds / tokens)
        dense_b.append(dense_bytes)
        block_b.append(block_bytes)
        rows.append(
            [
                str(length),
                f"{tokens / seconds:,.0f}",
                f"{dense_bytes / 2**20:,.1f}",
                f"{block_bytes / 2**20:,.3f}",
                f"{compact_bytes / 2**20:,.3f}",
                f"{dense_bytes / block_bytes:,.0f}x",
            ]
        )
    table(
        f"Sequence length (batch 8). Growth exponents: collator time/token {growth(xs, collate_s):.2f}, "
        f"dense mask bytes {growth(xs, dense_b):.2f}, flex BlockMask bytes {growth(xs, block_b):.2f}",
        [
            "row length",
            "collator tokens/s",
            "dense 4-D mask MiB",
            "flex BlockMask MiB",
            "collated segments MiB",
            "dense / flex",
        ],
        rows,
    )

    # 3. Batch size (rows of 1024).
    rows, xs, ys = [], [], []
    collator = DataCollatorForBirdie(tokenizer, max_length=1024)
    for size in args.batch_sizes:
        batch = windows_of(data, 512, size, rng)
        seconds = best_time(lambda: collator(batch), repeats=5)
        xs.append(size)
        ys.append(seconds)
        rows.append([str(size), f"{seconds * 1e3:.2f}", f"{seconds / ys[0] * xs[0] / size:.2f}"])
    table(
        f"Batch size (growth exponent {growth(xs, ys):.2f})",
        ["windows", "ms / batch", "time per window vs smallest batch"],
        rows,
    )

    # 4. Policy update (reward-model fit of 200 iterations + action search over 2048 candidates) vs entries.
    rows, xs, ys = [], [], []
    for k in args.policy_entries:
        policy = BirdiePolicy([f"e{i}" for i in range(k)], [f"c{i % 7}" for i in range(k)], np.ones(k), PolicyConfig())
        losses = np.full(k, 3.0)
        for step in range(5):
            losses = losses * (1 - 0.01 * rng.random(k))
            policy.observe(step, losses, step / 10)
        seconds = best_time(lambda: policy.observe(10, losses * 0.99, 0.9), repeats=2)
        xs.append(k)
        ys.append(seconds)
        rows.append([str(k), f"{seconds:.3f}", f"{seconds / ys[0]:.2f}x"])
    table(
        f"Policy decision vs number of mixture entries (growth exponent {growth(xs, ys):.2f})",
        ["entries", "seconds / decision", f"vs {xs[0]} entries"],
        rows,
    )


if __name__ == "__main__":
    main()
