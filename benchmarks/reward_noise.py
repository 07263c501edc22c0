"""The reward's noise floor: how much reward would an objective get from held-out sampling noise alone?

Evaluates one checkpoint on two *disjoint* held-out draws of the same size, many times, and turns each pair of loss
vectors into the reward Birdie's policy would compute (`objective_rewards(draw_a, draw_b)`): the model did not
change, so any reward is noise. Reports, per mixture entry and per held-out size (target tokens per entry), the
95th percentile of that noise-only |reward|, next to the median |reward| of real intervals of a training run (from
its `mixture_trajectory.json`, early half of training). Baseline: the real rewards measured in the same table.

    python benchmarks/reward_noise.py --checkpoint outputs/birdie_vs_ntp/birdie \
        --trajectory outputs/birdie_vs_ntp/birdie/mixture_trajectory.json

Each window's loss is measured once per entry (one forward pass), then draws are resampled from those per-window
sums, so the table costs one sweep over the pool. Targets at the defaults: noise-only p95 |reward| <= 0.05 for every
entry, and below a tenth of the median real |reward| early in training.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", required=True, help="a birdie_hf pre-trained checkpoint folder")
    parser.add_argument("--genomes", nargs="*", default=None, help="FASTA for held-out windows (default: shipped)")
    parser.add_argument("--window_length", type=int, default=256)
    parser.add_argument("--validation_fraction", type=float, default=0.05, help="as in the pre-training run")
    parser.add_argument("--data_seed", type=int, default=42, help="seed of the pre-training run's split")
    parser.add_argument("--max_length", type=int, default=512)
    parser.add_argument(
        "--budgets",
        nargs="+",
        type=int,
        default=[1024, 4096, 8192, 16384],
        help="target tokens per entry in one held-out draw",
    )
    parser.add_argument("--max_windows", type=int, default=256, help="the trainer's cap of windows per entry")
    parser.add_argument(
        "--min_windows",
        nargs="+",
        type=int,
        default=[1, 160],
        help="fewest windows per entry in a draw (the trainer's policy_validation_min_windows); "
        "one column per budget and minimum",
    )
    parser.add_argument("--cache", default=None, help="npz of per-window losses: reused when it exists")
    parser.add_argument("--pool_windows", type=int, default=1024, help="windows measured per entry")
    parser.add_argument("--draws", type=int, default=200)
    parser.add_argument("--trajectory", default=None, help="mixture_trajectory.json of a real run")
    parser.add_argument("--output", default=None, help="write the table as JSON here")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


@torch.no_grad()
def per_window_losses(model, collator, windows, entry: int, batch_size: int = 16) -> tuple[np.ndarray, np.ndarray]:
    """Loss sum and target count of every window under `entry`, shapes `(num_windows,)` each."""
    from birdie_hf.packing import to_model_inputs

    sums, counts = [], []
    for start in range(0, len(windows), batch_size):
        chunk = windows[start : start + batch_size]
        batch = collator.collate_with_objectives(chunk, [entry] * len(chunk))
        labels = batch.pop("labels")
        batch.pop("objective_ids")
        logits = model(**to_model_inputs(batch, torch.float32, "dense"), use_cache=False).logits[:, :-1].float()
        targets = labels[:, 1:]
        loss = torch.nn.functional.cross_entropy(logits.transpose(1, 2), targets, reduction="none", ignore_index=-100)
        segments = batch["segment_ids"][:, 1:]
        valid = targets != -100
        # Packed rows hold several windows: split the row's losses by segment.
        for row in range(loss.shape[0]):
            for segment in torch.unique(segments[row][valid[row]]).tolist():
                keep = valid[row] & (segments[row] == segment)
                sums.append(float(loss[row][keep].sum()))
                counts.append(int(keep.sum()))
    return np.asarray(sums), np.asarray(counts)


def draw_pair(rng, sums, counts, budget: int, max_windows: int, min_windows: int = 1):
    """Two disjoint draws, each adding windows until `budget` targets and `min_windows` windows (or `max_windows`
    windows), the trainer's rule."""
    order = rng.permutation(len(sums))
    losses, used, complete = [], 0, True
    for _ in range(2):
        total = n = taken = 0
        while used < len(order) and (n < budget or taken < min_windows) and taken < max_windows:
            i = order[used]
            total, n, taken, used = total + sums[i], n + counts[i], taken + 1, used + 1
        losses.append(total / max(n, 1))
        complete &= (n >= budget and taken >= min_windows) or taken >= max_windows
    return losses, complete


def main(args):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from birdie_hf import DataCollatorForBirdie, load_genome_windows
    from birdie_hf.objectives import DEFAULT_MIXTURE
    from birdie_hf.policy import objective_rewards

    tokenizer = AutoTokenizer.from_pretrained(args.checkpoint)
    model = AutoModelForCausalLM.from_pretrained(args.checkpoint, attn_implementation="sdpa").eval()
    collator = DataCollatorForBirdie(tokenizer, objectives=DEFAULT_MIXTURE, max_length=args.max_length)
    data = load_genome_windows(
        args.genomes,
        tokenizer,
        window_length=args.window_length,
        validation_fraction=args.validation_fraction,
        seed=args.data_seed,
    )["validation"]
    rng = np.random.default_rng(args.seed)
    pool = [data[int(i)] for i in rng.permutation(len(data))[: args.pool_windows]]
    real = {}
    if args.trajectory:
        evaluations = json.loads(Path(args.trajectory).read_text())["evaluations"]
        rewarded = [e for e in evaluations if e.get("rewards")]
        early = rewarded[: max(1, len(rewarded) // 2)]
        real = {name: float(np.median([abs(e["rewards"][name]) for e in early])) for name in collator.objective_names}
    from tqdm.auto import tqdm

    cached = dict(np.load(args.cache)) if args.cache and Path(args.cache).exists() else {}
    columns = [(budget, minimum) for minimum in args.min_windows for budget in args.budgets]
    rows = []
    for entry, name in enumerate(tqdm(collator.objective_names, desc="entries")):
        if f"{name}/sums" not in cached:
            cached[f"{name}/sums"], cached[f"{name}/counts"] = per_window_losses(model, collator, pool, entry)
        sums, counts = cached[f"{name}/sums"], cached[f"{name}/counts"]
        row = {"entry": name, "loss": float(sums.sum() / counts.sum()), "targets_per_window": float(counts.mean())}
        for budget, minimum in columns:
            noise = []
            for _ in range(args.draws):
                (a, b), complete = draw_pair(rng, sums, counts, budget, args.max_windows, minimum)
                if complete:  # the pool held two full draws
                    noise.append(abs(float(objective_rewards([a], [b])[0])))
            row[f"p95_{budget}_{minimum}"] = float(np.percentile(noise, 95)) if noise else float("nan")
        row["real_median"] = real.get(name)
        rows.append(row)
    if args.cache:
        np.savez(args.cache, **cached)
    header = (
        "| entry | loss | targets/window | "
        + " | ".join(f"p95 noise @{b} tokens, >= {m} windows" for b, m in columns)
        + " | median real (early) |"
    )
    print(header)
    print("|---" * (4 + len(columns)) + "|")
    for row in rows:
        real_text = "–" if row["real_median"] is None else f"{row['real_median']:.3f}"
        print(
            f"| {row['entry']} | {row['loss']:.3f} | {row['targets_per_window']:.0f} | "
            + " | ".join(f"{row[f'p95_{b}_{m}']:.4f}" for b, m in columns)
            + f" | {real_text} |"
        )
    if args.output:
        Path(args.output).write_text(json.dumps({"settings": vars(args), "rows": rows}, indent=2))


if __name__ == "__main__":
    main(parse_args())
