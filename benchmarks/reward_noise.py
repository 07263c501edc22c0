"""The reward's noise, measured the way the policy uses it: the same fixed held-out windows at two checkpoints.

The policy's reward for an interval compares each entry's loss on a *fixed* set of held-out examples (windows
collated once, corruption included) at the interval's two ends. This script takes two checkpoints of one run a real
policy interval apart (`--pairs 20:40 120:160 240:280` are intervals of the README's default run), measures every
window's loss under every entry at both ends (one forward pass per entry and checkpoint), and then asks: with only
`k` windows per entry, how far does the reward land from the reward of the whole pool?

- **paired** (the policy's way): the same `k` windows at both ends.
- **unpaired** (the baseline, and how the noise was measured before): `k` windows at one end, `k` other windows at
  the other end.
- **stream**: the training stream's own per-entry losses (`loss/<entry>` in the run's `trainer_state.json`, the
  batches just before each end), which cost nothing extra but are not paired.

Reported per entry and `k`: the 95th percentile over `--draws` resamplings of |reward_k - reward_pool| and of
|rel_k - rel_pool| where `rel = loss_end / loss_start - 1` (the reward's input, whatever reward formula is used),
next to the pool's own reward and relative change (the signal). The pool's own sampling error is reported too
(`rel` standard error from the per-window changes), so a `k` is only judged against what the pool can resolve.

    accelerate launch recipes/pretrain.py --output_dir outputs/noise-run --save_steps 20 --save_total_limit 20
    python benchmarks/reward_noise.py --run outputs/noise-run --genomes ../shared/data/genomes/bacterial_contigs.fna \
        --output benchmarks/results/reward_noise.json

The pool: `--pool_windows` windows of `--window_length` from `--genomes` (default: the held-out split of the genome
shipped with the package, as the default run uses; pass other FASTA files for a larger pool of unseen DNA).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", required=True, help="output_dir of a birdie_hf pre-training run with checkpoints")
    parser.add_argument("--pairs", nargs="+", default=["20:40", "120:160", "240:280"], help="start:end steps")
    parser.add_argument("--genomes", nargs="*", default=None, help="FASTA for the pool (default: shipped genome)")
    parser.add_argument(
        "--held_out_only",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="take the pool from the held-out split (as the run did); --no-held_out_only for "
        "all windows of --genomes (other organisms)",
    )
    parser.add_argument("--window_length", type=int, default=256)
    parser.add_argument("--max_length", type=int, default=520)
    parser.add_argument("--data_seed", type=int, default=42, help="seed of the pre-training run's split")
    parser.add_argument("--pool_windows", type=int, default=256, help="windows measured per entry")
    parser.add_argument("--sizes", nargs="+", type=int, default=[1, 2, 4, 8, 16, 32, 64], help="windows per entry")
    parser.add_argument("--draws", type=int, default=400)
    parser.add_argument("--output", default=None, help="write every row as JSON here")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


@torch.no_grad()
def per_window_losses(model, batches) -> tuple[np.ndarray, np.ndarray]:
    """Loss sum and target count of every window in `batches` (collated once), shapes `(num_windows,)` each."""
    from birdie_hf.packing import to_model_inputs

    sums, counts = [], []
    for batch in batches:
        batch = dict(batch)
        labels = batch.pop("labels")
        batch.pop("objective_ids")
        logits = model(**to_model_inputs(batch, torch.float32, "dense"), use_cache=False).logits[:, :-1].float()
        targets = labels[:, 1:]
        loss = torch.nn.functional.cross_entropy(logits.transpose(1, 2), targets, reduction="none", ignore_index=-100)
        segments = batch["segment_ids"][:, 1:]
        valid = targets != -100
        for row in range(loss.shape[0]):  # packed rows hold several windows: split each row by segment
            for segment in torch.unique(segments[row][valid[row]]).tolist():
                keep = valid[row] & (segments[row] == segment)
                sums.append(float(loss[row][keep].sum()))
                counts.append(int(keep.sum()))
    return np.asarray(sums), np.asarray(counts)


def stream_losses(run: Path, step: int, names: list[str]) -> dict[str, float]:
    """The training stream's `loss/<entry>` logged at `step` (the batches of the logging window before it)."""
    for candidate in sorted(run.glob("checkpoint-*"), key=lambda p: -int(p.name.split("-")[1])):
        state = json.loads((candidate / "trainer_state.json").read_text())
        for record in state["log_history"]:
            if record.get("step") == step and "loss" in record:
                return {name: record[f"loss/{name}"] for name in names if f"loss/{name}" in record}
    return {}


def _load_model(checkpoint: Path):
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(checkpoint, attn_implementation="sdpa").eval()


def main(args):
    from transformers import AutoTokenizer

    from birdie_hf import DataCollatorForBirdie, load_genome_windows
    from birdie_hf.policy import objective_rewards

    run = Path(args.run)
    pairs = [tuple(int(s) for s in pair.split(":")) for pair in args.pairs]
    tokenizer = AutoTokenizer.from_pretrained(run / f"checkpoint-{pairs[0][0]}")
    collator = DataCollatorForBirdie(tokenizer, max_length=args.max_length)
    names = collator.entry_names
    data = load_genome_windows(args.genomes, tokenizer, window_length=args.window_length, seed=args.data_seed)
    source = data["validation"] if args.held_out_only else data["train"]
    rng = np.random.default_rng(args.seed)
    pool = [source[int(i)] for i in rng.permutation(len(source))[: args.pool_windows]]
    # Collated once per entry, as the trainer does: the same examples (corruption included) at both ends.
    batches = {
        entry: [
            collator.collate_with_objectives(pool[i : i + 16], [entry] * len(pool[i : i + 16]))
            for i in range(0, len(pool), 16)
        ]
        for entry in range(len(names))
    }
    from tqdm.auto import tqdm

    measured: dict[int, dict[int, tuple[np.ndarray, np.ndarray]]] = {}
    for step in tqdm(sorted({s for pair in pairs for s in pair}), desc="checkpoints"):
        model = _load_model(run / f"checkpoint-{step}")
        measured[step] = {entry: per_window_losses(model, batches[entry]) for entry in range(len(names))}

    rows = []
    for start, end in pairs:
        stream_start, stream_end = stream_losses(run, start, names), stream_losses(run, end, names)
        for entry, name in enumerate(names):
            sums_a, counts = measured[start][entry]
            sums_b, _ = measured[end][entry]
            loss_a, loss_b = sums_a.sum() / counts.sum(), sums_b.sum() / counts.sum()
            pool_reward = float(objective_rewards([loss_a], [loss_b])[0])
            pool_rel = loss_b / loss_a - 1
            per_window_rel = sums_b / np.maximum(sums_a, 1e-9) - 1
            row = {
                "start": start,
                "end": end,
                "entry": name,
                "windows": len(counts),
                "targets_per_window": float(counts.mean()),
                "loss_start": float(loss_a),
                "loss_end": float(loss_b),
                "pool_rel": float(pool_rel),
                "pool_rel_se": float(per_window_rel.std(ddof=1) / np.sqrt(len(counts))),
                "pool_reward": pool_reward,
            }
            for k in args.sizes:
                if 2 * k > len(counts):
                    continue
                paired_r, paired_rel, unpaired_r, unpaired_rel = [], [], [], []
                for _ in range(args.draws):
                    order = rng.permutation(len(counts))
                    s1, s2 = order[:k], order[k : 2 * k]
                    a = sums_a[s1].sum() / counts[s1].sum()
                    b = sums_b[s1].sum() / counts[s1].sum()
                    b2 = sums_b[s2].sum() / counts[s2].sum()
                    paired_r.append(abs(float(objective_rewards([a], [b])[0]) - pool_reward))
                    paired_rel.append(abs(b / a - 1 - pool_rel))
                    unpaired_r.append(abs(float(objective_rewards([a], [b2])[0]) - pool_reward))
                    unpaired_rel.append(abs(b2 / a - 1 - pool_rel))
                row[f"paired_reward_p95@{k}"] = float(np.percentile(paired_r, 95))
                row[f"paired_rel_p95@{k}"] = float(np.percentile(paired_rel, 95))
                row[f"unpaired_reward_p95@{k}"] = float(np.percentile(unpaired_r, 95))
                row[f"unpaired_rel_p95@{k}"] = float(np.percentile(unpaired_rel, 95))
            if name in stream_start and name in stream_end:
                a, b = stream_start[name], stream_end[name]
                row["stream_reward_error"] = abs(float(objective_rewards([a], [b])[0]) - pool_reward)
                row["stream_rel_error"] = abs(b / a - 1 - pool_rel)
            rows.append(row)

    sizes = [k for k in args.sizes if 2 * k <= len(pool)]
    for kind, unit in (("rel", "relative change"), ("reward", "reward")):
        print(f"\n### p95 error of the {unit} per interval against the whole pool ({len(pool)} windows per entry)\n")
        header = ["interval", "entry", f"pool {unit}", "pool rel s.e."]
        header += [f"paired @{k}" for k in sizes] + [f"unpaired @{k}" for k in sizes[-2:]] + ["stream"]
        print("| " + " | ".join(header) + " |")
        print("|" + "---|" * len(header))
        for row in rows:
            cells = [
                f"{row['start']}->{row['end']}",
                row["entry"],
                f"{row[f'pool_{kind}']:+.4f}",
                f"{row['pool_rel_se']:.4f}",
            ]
            cells += [f"{row[f'paired_{kind}_p95@{k}']:.4f}" for k in sizes]
            cells += [f"{row[f'unpaired_{kind}_p95@{k}']:.4f}" for k in sizes[-2:]]
            stream = row.get(f"stream_{kind}_error")
            cells.append("–" if stream is None else f"{stream:.4f}")
            print("| " + " | ".join(cells) + " |")
        print(
            "\n| worst entry over intervals | "
            + " | ".join(f"paired @{k}" for k in sizes)
            + " | "
            + " | ".join(f"unpaired @{k}" for k in sizes)
            + " |"
        )
        print("|---|" + "---|" * (2 * len(sizes)))
        worst = [max(r[f"paired_{kind}_p95@{k}"] for r in rows) for k in sizes]
        worst_u = [max(r[f"unpaired_{kind}_p95@{k}"] for r in rows) for k in sizes]
        print("| p95 |" + "".join(f" {w:.4f} |" for w in worst + worst_u))
    if args.output:
        Path(args.output).write_text(json.dumps({"settings": vars(args), "rows": rows}, indent=2))


if __name__ == "__main__":
    main(parse_args())
