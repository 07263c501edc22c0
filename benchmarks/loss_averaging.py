"""What `--loss_averaging example` changes against the default `token`: each objective's weight in the loss, and what
runs trained both ways learned.

1. From batches collated with the library's default mixture (the README's run: windows of 256, rows of 520), each
   objective's share of the loss's weight: under `token` every target weighs the same, so an objective weighs its
   share of the targets; under `example` every packed example weighs the same, whatever its number of targets.
2. With `--runs token=DIR ... example=DIR ...` (recipe output folders, `name=folder`, several per name for seeds):
   the held-out next-base loss (`held_out_next_base.md`) and each entry's last held-out loss (`summary.md`'s table) of
   each run, and the mean per name.

    accelerate launch recipes/pretrain.py --seed 42 --output_dir outputs/la-token-42
    accelerate launch recipes/pretrain.py --seed 42 --loss_averaging example --output_dir outputs/la-example-42
    python benchmarks/loss_averaging.py --runs token=outputs/la-token-42 example=outputs/la-example-42
"""

from __future__ import annotations

import argparse
import re
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch

from birdie_hf import BirdieTrainingArguments, DataCollatorForBirdie, build_dna_tokenizer, load_genome_windows
from birdie_hf.objectives import IGNORE_INDEX
from birdie_hf.trainer import example_slots


def weight_shares(
    batches: int = 50, window_length: int = 256, max_length: int = 520
) -> dict[str, tuple[float, float]]:
    """`{objective: (share under token averaging, share under example averaging)}` over `batches` of 8 windows."""
    tokenizer = build_dna_tokenizer()
    data = load_genome_windows(None, tokenizer, window_length=window_length)
    args = BirdieTrainingArguments(output_dir="unused", max_length=max_length, use_cpu=True)
    collator = DataCollatorForBirdie.from_training_args(tokenizer, args)
    classes = collator.reward_classes
    targets, examples = defaultdict(float), defaultdict(float)
    for b in range(batches):
        batch = collator([data["train"][b * 8 + i] for i in range(8)])
        valid = batch["labels"][:, 1:] != IGNORE_INDEX
        slots = example_slots(batch)[:, 1:]
        entries = batch["objective_ids"][:, 1:]
        for slot in torch.unique(slots[valid]).tolist():
            tokens = valid & (slots == slot)
            entry = int(entries[tokens][0])
            targets[classes[entry]] += int(tokens.sum())
            examples[classes[entry]] += 1
    total_targets, total_examples = sum(targets.values()), sum(examples.values())
    return {name: (targets[name] / total_targets, examples[name] / total_examples) for name in dict.fromkeys(classes)}


def run_results(folder: Path) -> dict[str, float]:
    """`{"next-base": nats, <entry>: last held-out loss}` of a recipe output folder."""
    held_out = (folder / "held_out_next_base.md").read_text()
    results = {"next-base": float(re.search(r"this model \(read left to right\)\s*\|\s*([\d.]+)", held_out).group(1))}
    for line in (folder / "summary.md").read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 3 and re.fullmatch(r"[\d.]+", cells[1]) and re.fullmatch(r"[\d.]+", cells[2]):
            results[cells[0]] = float(cells[1])
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--runs", nargs="*", default=[], help="name=folder of recipe outputs (several per name: seeds)"
    )
    parser.add_argument("--batches", type=int, default=50)
    args = parser.parse_args()
    print("| objective | weight in the loss, token averaging | example averaging | ratio |")
    print("|---|---|---|---|")
    for name, (token, example) in weight_shares(args.batches).items():
        print(f"| {name} | {token:.1%} | {example:.1%} | {example / token:.2f}x |")
    if not args.runs:
        return
    runs = defaultdict(list)
    for pair in args.runs:
        name, _, folder = pair.partition("=")
        runs[name].append(run_results(Path(folder)))
    keys = list(next(iter(runs.values()))[0])
    print()
    print("| held-out loss (nats) | " + " | ".join(f"{name} ({len(r)} runs)" for name, r in runs.items()) + " |")
    print("|---|" + "---|" * len(runs))
    for key in keys:
        cells = [
            " / ".join(f"{r[key]:.4f}" for r in results) + f" (mean {np.mean([r[key] for r in results]):.4f})"
            for results in runs.values()
        ]
        print(f"| {key} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
