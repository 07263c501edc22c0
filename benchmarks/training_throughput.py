"""Training throughput of the default model against the machine's matmul peak, and what helps it.

Baseline: fp32 eager training with torch's default thread setting, on the *same collated batches* the README's run
trains on (DataCollatorForBirdie with the full default mixture; rows of `--max_length`, `--batch_size` windows of
`--window_length` per step; the compact mask turned into the dense 4-D mask as BirdieTrainer does). One step is
forward + backward + AdamW, as `Trainer.training_step` + `optimizer.step()`. Each variant starts from the same
weights and trains on the same batches:

- `threads=1`: `torch.set_num_threads(1)` (is the second core used?),
- `bf16 autocast`: `torch.autocast(device, dtype=torch.bfloat16)`, what `TrainingArguments(bf16=True)` does,
- `torch.compile`: `torch.compile(model, dynamic=True)` (inductor; rows per batch vary), what `TrainingArguments(torch_compile=True)` does; compile
  time is reported on its own and left out of the step time,
- `torch.compile + bf16`.

The peak is measured in the same run: a square `torch.mm` of `--peak_size` in fp32 (and bf16), best of several.
Model FLOPs per token use the usual count for training: 6 x (non-embedding parameters) + 12 x layers x hidden x
row length (attention scores and their backward), so `MFU` is model FLOP/s over the fp32 matmul peak.

    python benchmarks/training_throughput.py                       # hidden 128 and 512, the README's batch
    python benchmarks/training_throughput.py --hidden_sizes 128 --steps 20
"""

from __future__ import annotations

import argparse
import contextlib
import time

import torch

from birdie_hf import (
    DataCollatorForBirdie,
    build_causal_lm,
    build_dna_tokenizer,
    default_model_config,
    load_genome_windows,
)
from birdie_hf.accounting import matmul_peak_flops as matmul_peak
from birdie_hf.accounting import training_flops_per_token as flops_per_token
from birdie_hf.packing import to_model_inputs


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def time_training(
    config, batches: list[dict], device: str, *, use_compile: bool, bf16: bool, threads: int | None, warmup: int
) -> tuple[float, float]:
    """Seconds per step (mean over the batches after `warmup`) and seconds spent in the first (compiling) steps."""
    previous_threads = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        model = build_causal_lm(config, seed=0).to(device).train()
        step_model = torch.compile(model, dynamic=True) if use_compile else model
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
        autocast = torch.autocast(device, dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()
        times = []
        for batch in batches:
            inputs = to_model_inputs({k: v.to(device) for k, v in batch.items()})
            _sync(device)
            start = time.perf_counter()
            with autocast:
                loss = step_model(**inputs).loss
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            _sync(device)
            times.append(time.perf_counter() - start)
        timed = times[warmup:]
        return sum(timed) / len(timed), sum(times[:warmup])
    finally:
        torch.set_num_threads(previous_threads)


VARIANTS = (
    # name, torch.compile, bf16 autocast, threads
    ("fp32 eager (baseline)", False, False, None),
    ("fp32 eager, threads=1", False, False, 1),
    ("bf16 autocast", False, True, None),
    ("torch.compile fp32", True, False, None),
    ("torch.compile + bf16 autocast", True, True, None),
)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hidden_sizes", type=int, nargs="+", default=[128, 512])
    parser.add_argument("--steps", type=int, default=24, help="timed steps per variant (after the warm-up)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed first steps (compilation happens here)")
    parser.add_argument("--window_length", type=int, default=256)
    parser.add_argument("--max_length", type=int, default=520)
    parser.add_argument("--batch_size", type=int, default=8)
    parser.add_argument("--peak_size", type=int, default=2048)
    parser.add_argument("--skip", nargs="*", default=[], help="variant names to leave out (substring match)")
    args = parser.parse_args()
    device = "cuda" if torch.cuda.is_available() else "cpu"

    tokenizer = build_dna_tokenizer()
    data = load_genome_windows(None, tokenizer, window_length=args.window_length)
    collator = DataCollatorForBirdie(tokenizer, max_length=args.max_length, seed=0)
    n = (args.steps + args.warmup) * args.batch_size
    windows = [data["train"][i] for i in range(n)]
    batches = [collator(windows[i : i + args.batch_size]) for i in range(0, n, args.batch_size)]
    tokens_per_step = sum(int(b["input_ids"].numel()) for b in batches) / len(batches)

    peak32 = matmul_peak(args.peak_size, torch.float32, device)
    peak16 = matmul_peak(args.peak_size, torch.bfloat16, device)
    name = torch.cuda.get_device_name() if device == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(
        f"device: {name}; torch {torch.__version__}; rows of {args.max_length}, {args.batch_size} windows of "
        f"{args.window_length} per step ({tokens_per_step:.0f} row tokens); {args.steps} timed steps per variant"
    )
    print(
        f"matmul peak ({args.peak_size}^2): fp32 {peak32 / 1e9:,.1f} GFLOP/s, bf16 {peak16 / 1e9:,.1f} GFLOP/s "
        f"({peak16 / peak32:.2f}x fp32)\n"
    )
    print(
        f"| {'hidden':>6} | {'variant':<30} | {'s / step':>8} | {'tokens/s':>9} | {'vs baseline':>11} | "
        f"{'MFU (fp32 peak)':>15} | {'compile s':>9} |"
    )
    print(f"|{'-' * 8}|{'-' * 32}|{'-' * 10}|{'-' * 11}|{'-' * 13}|{'-' * 17}|{'-' * 11}|")
    for hidden in args.hidden_sizes:
        heads = max(4, hidden // 64)
        config = default_model_config(tokenizer, hidden_size=hidden, num_attention_heads=heads)
        per_token = flops_per_token(build_causal_lm(config, seed=0), args.max_length)
        baseline = None
        for variant, use_compile, bf16, threads in VARIANTS:
            if any(s in variant for s in args.skip):
                continue
            try:
                step, first = time_training(
                    config, batches, device, use_compile=use_compile, bf16=bf16, threads=threads, warmup=args.warmup
                )
            except Exception as error:  # a variant this machine cannot run (no compiler, no bf16 kernels)
                print(f"| {hidden:>6} | {variant:<30} | failed: {type(error).__name__}: {str(error)[:60]} |")
                continue
            baseline = baseline or step
            tokens_s = tokens_per_step / step
            mfu = tokens_s * per_token / peak32
            print(
                f"| {hidden:>6} | {variant:<30} | {step:>8.4f} | {tokens_s:>9,.0f} | {baseline / step:>10.2f}x | "
                f"{100 * mfu:>14.1f}% | {first if use_compile else 0.0:>9.1f} |"
            )


if __name__ == "__main__":
    main()
