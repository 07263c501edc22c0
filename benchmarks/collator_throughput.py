"""Tokens per second of DataCollatorForBirdie against DataCollatorForLanguageModeling(mlm=False).

Baseline: `transformers.DataCollatorForLanguageModeling(tokenizer, mlm=False)` on the same windows, in the same run.
Both collators see identical batches of windows cut from the genome shipped with the package. Tokens counted are the
source (window) tokens consumed, so the ratio is the cost per genome token. Target: Birdie <= 1.3x the baseline.

    python benchmarks/collator_throughput.py                 # defaults: windows of 512, rows of 1024, batch 16
    python benchmarks/collator_throughput.py --window_length 1024 --max_length 2048 --batch_size 32
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from transformers import DataCollatorForLanguageModeling

from birdie_hf import DataCollatorForBirdie, build_dna_tokenizer, load_genome_windows


def measure(collate, batches, repeats: int) -> float:
    """Best-of-`repeats` seconds to collate all `batches`."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for batch in batches:
            collate(batch)
        best = min(best, time.perf_counter() - start)
    return best


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--window_length", type=int, default=512)
    parser.add_argument("--max_length", type=int, default=1024)
    parser.add_argument("--batch_size", type=int, default=16)
    parser.add_argument("--num_batches", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    tokenizer = build_dna_tokenizer()
    data = load_genome_windows(None, tokenizer, window_length=args.window_length, validation_fraction=0)["train"]
    order = np.random.default_rng(0).permutation(len(data))
    batches = []
    for b in range(args.num_batches):
        idx = order[(b * args.batch_size) % len(data) :][: args.batch_size]
        batches.append([{"input_ids": data[int(i)]["input_ids"]} for i in idx])
    tokens = sum(len(f["input_ids"]) for batch in batches for f in batch)

    baseline = DataCollatorForLanguageModeling(tokenizer, mlm=False)
    candidates = {
        "DataCollatorForLanguageModeling(mlm=False)": baseline,
        "DataCollatorForBirdie (default mixture, segments mask)": DataCollatorForBirdie(
            tokenizer, max_length=args.max_length
        ),
        "DataCollatorForBirdie (default mixture, dense 4-D mask)": DataCollatorForBirdie(
            tokenizer, max_length=args.max_length, mask_format="dense"
        ),
    }
    for collate in candidates.values():  # warm-up
        collate(batches[0])
    seconds = {name: measure(collate, batches, args.repeats) for name, collate in candidates.items()}
    base = seconds["DataCollatorForLanguageModeling(mlm=False)"]
    print(
        f"windows of {args.window_length} bases, rows of {args.max_length} tokens, batch {args.batch_size}, "
        f"{args.num_batches} batches ({tokens} tokens), best of {args.repeats}"
    )
    print(f"| {'collator':<58} | {'tokens/s':>12} | {'cost per token vs baseline':>27} |")
    print(f"|{'-' * 60}|{'-' * 14}|{'-' * 29}|")
    for name, secs in seconds.items():
        print(f"| {name:<58} | {tokens / secs:>12,.0f} | {secs / base:>26.2f}x |")


if __name__ == "__main__":
    main()
