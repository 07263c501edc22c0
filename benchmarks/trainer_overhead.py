"""BirdieTrainer step time against a plain `transformers.Trainer`, and the policy's share of wall time.

Baseline: `transformers.Trainer` training the same model (same initial weights) on the *same collated batches*
(produced once by DataCollatorForBirdie, with the dense 4-D mask passed to the model), so the ratio isolates what
BirdieTrainer adds per step: per-objective loss bookkeeping, mask construction on the device and the callback.
Then a full default `policy="birdie"` run measures the share of wall time spent in policy evaluations and updates.
Targets: step ratio <= 1.05x; policy share <= 3% at the default schedule (evaluation every 250 steps).

    python benchmarks/trainer_overhead.py
    python benchmarks/trainer_overhead.py --steps 60 --hidden_size 256 --max_length 1024
"""

from __future__ import annotations

import argparse
import time

import torch
from torch.utils.data import Dataset
from transformers import Trainer, TrainerCallback, TrainingArguments

from birdie_hf import (
    BirdieTrainer,
    BirdieTrainingArguments,
    DataCollatorForBirdie,
    build_causal_lm,
    build_dna_tokenizer,
    default_model_config,
    load_genome_windows,
)
from birdie_hf.packing import to_model_inputs


class _Batches(Dataset):
    """Pre-collated batches served one per index (batch_size=1 + unwrapping collator)."""

    def __init__(self, batches):
        self.batches = batches

    def __len__(self):
        return len(self.batches)

    def __getitem__(self, i):
        return self.batches[i]


class _StepTimer(TrainerCallback):
    def __init__(self, skip: int):
        self.skip, self.times, self._start = skip, [], None

    def on_step_begin(self, args, state, control, **kwargs):
        self._start = time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step > self.skip:
            self.times.append(time.perf_counter() - self._start)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--window_length", type=int, default=256)
    parser.add_argument("--max_length", type=int, default=512)
    parser.add_argument("--batch_size", type=int, default=8)
    parser.add_argument("--hidden_size", type=int, default=128)
    parser.add_argument("--policy_steps", type=int, default=500, help="length of the policy-share run")
    args = parser.parse_args()
    device_kw = {"use_cpu": not torch.cuda.is_available()}

    tokenizer = build_dna_tokenizer()
    data = load_genome_windows(None, tokenizer, window_length=args.window_length)
    collator = DataCollatorForBirdie(tokenizer, max_length=args.max_length, seed=0)
    windows = [data["train"][i] for i in range(args.steps * args.batch_size)]
    batches = [collator(windows[i : i + args.batch_size]) for i in range(0, len(windows), args.batch_size)]
    config = default_model_config(tokenizer, hidden_size=args.hidden_size)
    common = dict(max_steps=args.steps, per_device_train_batch_size=1, logging_steps=10_000, save_strategy="no",
                  report_to="none", disable_tqdm=True, learning_rate=1e-3, seed=0, **device_kw)

    # Baseline: plain Trainer, model(**batch) computes its own loss.
    plain_timer = _StepTimer(skip=3)
    plain = Trainer(
        model=build_causal_lm(config, seed=0),
        args=TrainingArguments(output_dir="/tmp/bench-plain", remove_unused_columns=False, **common),
        train_dataset=_Batches([{k: v for k, v in to_model_inputs(b).items()} for b in batches]),
        data_collator=lambda items: items[0],
        callbacks=[plain_timer],
    )
    plain.train()

    birdie_timer = _StepTimer(skip=3)
    birdie = BirdieTrainer(
        model=build_causal_lm(config, seed=0),
        args=BirdieTrainingArguments(output_dir="/tmp/bench-birdie", max_length=args.max_length, policy="static",
                                     **common),
        train_dataset=data["train"],
        data_collator=collator,
        processing_class=tokenizer,
        callbacks=[birdie_timer],
    )
    birdie.get_train_dataloader = lambda: torch.utils.data.DataLoader(_Batches(batches), batch_size=None)
    birdie.train()

    # Policy share on a default-schedule birdie run (evaluations every 250 steps at this length).
    run = BirdieTrainer(
        model=build_causal_lm(config, seed=0),
        args=BirdieTrainingArguments(output_dir="/tmp/bench-policy", max_length=args.max_length,
                                     **{**common, "max_steps": args.policy_steps, "per_device_train_batch_size":
                                        args.batch_size}),
        train_dataset=data["train"], eval_dataset=data["validation"], processing_class=tokenizer,
    )
    policy_seconds = 0.0
    evaluate = run.evaluate

    def timed_evaluate(*a, **k):
        nonlocal policy_seconds
        start = time.perf_counter()
        out = evaluate(*a, **k)
        policy_seconds += time.perf_counter() - start
        return out

    run.evaluate = timed_evaluate
    start = time.perf_counter()
    run.train()
    wall = time.perf_counter() - start
    evaluations = len(run.birdie_callback.trajectory)

    p = sum(plain_timer.times) / len(plain_timer.times)
    b = sum(birdie_timer.times) / len(birdie_timer.times)
    device = torch.cuda.get_device_name() if torch.cuda.is_available() else "CPU"
    print(f"device: {device}; model hidden {args.hidden_size}, rows of {args.max_length}, {args.batch_size} windows "
          f"of {args.window_length} per step; {len(plain_timer.times)} timed steps")
    print(f"| {'measurement':<44} | {'value':>12} | {'ratio vs baseline':>18} |")
    print(f"|{'-' * 46}|{'-' * 14}|{'-' * 20}|")
    print(f"| {'Trainer step (baseline), s':<44} | {p:>12.4f} | {1.0:>17.3f}x |")
    print(f"| {'BirdieTrainer step, s':<44} | {b:>12.4f} | {b / p:>17.3f}x |")
    print(f"| {f'policy run wall time ({args.policy_steps} steps), s':<44} | {wall:>12.1f} | {'':>18} |")
    print(f"| {f'policy evaluations + updates ({evaluations}), s':<44} | {policy_seconds:>12.1f} | "
          f"{100 * policy_seconds / wall:>16.1f} % |")


if __name__ == "__main__":
    main()
