"""BirdieTrainer step time against a plain `transformers.Trainer`, and the policy's share of wall time.

Baseline: `transformers.Trainer` training the same model (same initial weights) on the *same collated batches*
(produced once by DataCollatorForBirdie, with the dense 4-D mask passed to the model), so the ratio isolates what
BirdieTrainer adds per step: per-objective loss bookkeeping, mask construction on the device and the callback.
Then a default `policy="birdie"` run measures the time of each policy evaluation (held-out sweep + reward-model
update + action search) and its share of wall time. The share for longer runs is projected with the default schedule
(Birdie's, `BirdieTrainingArguments.policy_schedule`) and the held-out set the trainer would build for that many
steps (`validation_windows_per_entry`), the sweep's cost scaled from the measured one by its number of windows.
Targets: step ratio <= 1.02x; policy share <= 5% at the README default (300 steps), <= 1% from 2,500 steps on.

    python benchmarks/trainer_overhead.py --policy_steps 300 --max_length 520   # the README's default run
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
    parser.add_argument("--policy_steps", type=int, default=200, help="length of the measured policy run")
    args = parser.parse_args()
    device_kw = {"use_cpu": not torch.cuda.is_available()}

    tokenizer = build_dna_tokenizer()
    data = load_genome_windows(None, tokenizer, window_length=args.window_length)
    collator = DataCollatorForBirdie(tokenizer, max_length=args.max_length, seed=0)
    windows = [data["train"][i] for i in range(args.steps * args.batch_size)]
    batches = [collator(windows[i : i + args.batch_size]) for i in range(0, len(windows), args.batch_size)]
    config = default_model_config(tokenizer, hidden_size=args.hidden_size)
    common = dict(
        max_steps=args.steps,
        per_device_train_batch_size=1,
        logging_steps=10_000,
        save_strategy="no",
        report_to="none",
        disable_tqdm=True,
        learning_rate=1e-3,
        seed=0,
        **device_kw,
    )

    # Baseline: plain Trainer, model(**batch) computes its own loss.
    plain_timer = _StepTimer(skip=3)
    plain = Trainer(
        model=build_causal_lm(config, seed=0),
        args=TrainingArguments(output_dir="/tmp/bench-plain", remove_unused_columns=False, **common),
        train_dataset=_Batches([to_model_inputs(b) for b in batches]),
        data_collator=lambda items: items[0],
        callbacks=[plain_timer],
    )
    plain.train()

    birdie_timer = _StepTimer(skip=3)
    birdie = BirdieTrainer(
        model=build_causal_lm(config, seed=0),
        args=BirdieTrainingArguments(
            output_dir="/tmp/bench-birdie", max_length=args.max_length, policy="static", **common
        ),
        train_dataset=data["train"],
        data_collator=collator,
        processing_class=tokenizer,
        callbacks=[birdie_timer],
    )
    birdie.get_train_dataloader = lambda: torch.utils.data.DataLoader(_Batches(batches), batch_size=None)
    birdie.train()

    # Policy cost: a real birdie run with the default schedule, timing every evaluation (validation sweep, reward,
    # reward-model update and action search together).
    run = BirdieTrainer(
        model=build_causal_lm(config, seed=0),
        args=BirdieTrainingArguments(
            output_dir="/tmp/bench-policy",
            max_length=args.max_length,
            **{**common, "max_steps": args.policy_steps, "per_device_train_batch_size": args.batch_size},
        ),
        train_dataset=data["train"],
        eval_dataset=data["validation"],
        processing_class=tokenizer,
    )
    evaluation_seconds = []
    evaluate = run.evaluate

    def timed_evaluate(*a, **k):
        start = time.perf_counter()
        out = evaluate(*a, **k)
        evaluation_seconds.append(time.perf_counter() - start)
        return out

    decision_seconds = []
    observe = run.birdie_callback.observe

    def timed_observe(*a, **k):
        start = time.perf_counter()
        out = observe(*a, **k)
        decision_seconds.append(time.perf_counter() - start)
        return out

    health_seconds = []
    training_health = run.training_health

    def timed_health(*a, **k):
        start = time.perf_counter()
        out = training_health(*a, **k)
        health_seconds.append(time.perf_counter() - start)
        return out

    run.evaluate = timed_evaluate
    run.birdie_callback.observe = timed_observe
    run.training_health = timed_health
    start = time.perf_counter()
    run.train()
    wall = time.perf_counter() - start
    policy_seconds = sum(evaluation_seconds)
    per_evaluation = policy_seconds / len(evaluation_seconds)
    per_step = (wall - policy_seconds) / args.policy_steps
    per_decision = sum(decision_seconds) / len(decision_seconds)  # reward-model fit + action search
    per_health = sum(health_seconds) / max(1, len(health_seconds))  # the health reading (32 windows, causal)
    measured_windows = run.validation_windows_per_entry(data["validation"])
    per_window_sweep = (per_evaluation - per_decision - per_health) / measured_windows

    p = sum(plain_timer.times) / len(plain_timer.times)
    b = sum(birdie_timer.times) / len(birdie_timer.times)
    device = torch.cuda.get_device_name() if torch.cuda.is_available() else "CPU"
    print(
        f"device: {device}; model hidden {args.hidden_size}, rows of {args.max_length}, {args.batch_size} windows "
        f"of {args.window_length} per step; {len(plain_timer.times)} timed steps"
    )
    print(f"| {'measurement':<44} | {'value':>12} | {'ratio vs baseline':>18} |")
    print(f"|{'-' * 46}|{'-' * 14}|{'-' * 20}|")
    print(f"| {'Trainer step (baseline), s':<44} | {p:>12.4f} | {1.0:>17.3f}x |")
    print(f"| {'BirdieTrainer step, s':<44} | {b:>12.4f} | {b / p:>17.3f}x |")
    print(f"| {'one policy evaluation + update, s':<44} | {per_evaluation:>12.3f} | {per_evaluation / b:>14.1f} st |")
    print(f"| {'  of which reward-model fit + search, s':<44} | {per_decision:>12.3f} | {'':>18} |")
    print(f"| {'  of which the health reading, s':<44} | {per_health:>12.3f} | {'':>18} |")
    print(f"| {'  held-out windows per entry':<44} | {measured_windows:>12d} | {'':>18} |")
    print(
        f"| {f'measured run of {args.policy_steps} steps: policy share':<44} | "
        f"{f'{len(evaluation_seconds)} evals':>12} | {100 * policy_seconds / wall:>16.1f} % |"
    )
    for steps in (300, 1000, 2500, 10000, 32768):
        evaluations = len(run.args.policy_schedule(steps)[2])
        windows = run.validation_windows_per_entry(data["validation"], max_steps=steps)
        cost = evaluations * (per_decision + per_health + windows * per_window_sweep)
        share = cost / (cost + steps * per_step)
        print(
            f"| {f'projected, {steps} steps ({windows} windows/entry)':<44} | {f'{evaluations} evals':>12} | "
            f"{100 * share:>16.1f} % |"
        )
    # The held-out set's floor decides the share of short runs: what a smaller floor would cost (and its noise,
    # benchmarks/reward_noise.py: the paired relative-change error at the 95th percentile).
    noise = {1: 0.065, 2: 0.051, 4: 0.030, 8: 0.022}
    print()
    print("| policy_validation_min_windows | paired error (p95) | 300 steps | 2,500 steps | 10,000 steps |")
    print("|---|---|---|---|---|")
    for floor in (1, 2, 4, 8):
        run.args.policy_validation_min_windows = floor
        cells = []
        for steps in (300, 2500, 10000):
            evaluations = len(run.args.policy_schedule(steps)[2])
            windows = run.validation_windows_per_entry(data["validation"], max_steps=steps)
            cost = evaluations * (per_decision + per_health + windows * per_window_sweep)
            cells.append(f"{100 * cost / (cost + steps * per_step):.1f} % ({windows})")
        print(f"| {floor} | {noise[floor]:.3f} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
