"""Steady-state training throughput and MFU: a minimal PyTorch loop (the limit), a plain `transformers.Trainer`, and
`BirdieTrainer` with next-token prediction and with the full Birdie mixture, on the same model and the same windows.

    python benchmarks/gpu_throughput.py                                # on a GPU: BirdieDNA's 34M and about 100M
    python benchmarks/gpu_throughput.py --sizes tiny --steps 4 --warmup 2    # the same code on a CPU, in seconds

Rows, per size (same architecture, same seed, same windows of the shipped genome, `--batch_size` windows per step):

- (a) `minimal loop`: the model called directly on `(batch, window)` next-token rows, no mask beyond causal,
  AdamW (fused on CUDA), bf16 autocast on CUDA, `torch.compile` on CUDA (`--no_compile` turns it off): the limit;
- (b) `transformers.Trainer`: next-token prediction with `DataCollatorForLanguageModeling(mlm=False)`, what a user
  would pick instead; bf16 on CUDA;
- (c) `BirdieTrainer, ntp`: `--policy ntp`, Birdie's collator (examples packed two per row of `max_length`);
- (d) `BirdieTrainer, birdie`: the `dna` preset, the full mixture and the reward policy (its evaluations run at their
  scheduled steps and are reported on their own);
- (d0) the same without the fast path (`fast_path="off"`, `sdpa` with the dense packed mask): the step before it.

(c) and (d) run as a user's run does: `fast_path="auto"` and `attn_implementation="auto"`, which on CUDA compile the
model, give every batch one shape, copy batches without waiting and attend with `flex_attention` block masks.

Each step is timed after `--warmup` untimed steps (compilation and CUDA start-up happen there), with CUDA events on a
GPU (no host synchronisation added inside a step) and `perf_counter` on a CPU. The step time is the median of the
timed steps; the mean minus the median, over the mean, is the share taken by what does not happen every step (the
policy's evaluations in row d). Tokens are the tokens through the model that are not padding. MFU is model FLOP/s
(`birdie_hf.accounting.training_flops_per_token`: 6 x parameters + attention over the row) over the bf16 matmul peak
measured in the same run (fp32 on a CPU). Writes `<output_dir>/gpu_throughput.{md,json}`.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import statistics
import time
from pathlib import Path

import torch
import transformers
from transformers import DataCollatorForLanguageModeling, Trainer, TrainerCallback, TrainingArguments

from birdie_hf import (
    BirdieTrainer,
    BirdieTrainingArguments,
    build_causal_lm,
    build_dna_tokenizer,
    default_model_config,
    load_genome_windows,
)
from birdie_hf.accounting import matmul_peak_flops, training_flops_per_token


#: hidden, layers, heads, window length, windows per step, Birdie's example length (two examples per row). At 1,024
#: bases an example of 1,032 tokens is BirdieDNA's (copying objectives read a cropped window); the tiny size's 280
#: tokens is the least its mixture fits in.
SIZES = {
    "tiny": (64, 2, 2, 256, 4, 280),
    "34m": (512, 8, 8, 1024, 32, 1032),  # BirdieDNA's geometry
    "100m": (768, 12, 12, 1024, 32, 1032),
}
ROWS = ("minimal", "trainer", "birdie_ntp", "birdie_full", "birdie_full_plain")
ROW_NAMES = {
    "minimal": "(a) minimal loop (compile, fused AdamW, bf16)",
    "trainer": "(b) transformers.Trainer, next-token",
    "birdie_ntp": "(c) BirdieTrainer, ntp",
    "birdie_full": "(d) BirdieTrainer, full Birdie mixture",
    "birdie_full_plain": "(d0) (d) without the fast path",
}


class StepTimer:
    """Step times without a host synchronisation inside a step: CUDA events recorded at step boundaries on a GPU
    (read once at the end), `perf_counter` on a CPU."""

    def __init__(self, cuda: bool):
        self.cuda, self.marks = cuda, []

    def mark(self) -> None:
        if self.cuda:
            event = torch.cuda.Event(enable_timing=True)
            event.record()
            self.marks.append(event)
        else:
            self.marks.append(time.perf_counter())

    def seconds(self) -> list[float]:
        """Seconds between consecutive marks."""
        if self.cuda:
            torch.cuda.synchronize()
            return [a.elapsed_time(b) / 1000 for a, b in zip(self.marks, self.marks[1:])]
        return [b - a for a, b in zip(self.marks, self.marks[1:])]


class TimerCallback(TrainerCallback):
    """Marks the end of every step after the warm-up (and the start of the first timed one). Tokens per step are read
    after the run from the Trainer's own count (`BirdieTrainer` adds it up at logging steps only, so as not to wait
    for the device every step)."""

    def __init__(self, timer: StepTimer, warmup: int):
        self.timer, self.warmup = timer, warmup

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step >= self.warmup:
            self.timer.mark()
        return control


def minimal_loop(config, windows: torch.Tensor, device: str, steps: int, warmup: int, compile_model: bool):
    """(a): seconds per timed step and tokens per step."""
    model = build_causal_lm(config, seed=0).to(device).train()
    cuda = device == "cuda"
    step_model = torch.compile(model) if compile_model else model
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=cuda)
    autocast = torch.autocast(device, dtype=torch.bfloat16) if cuda else contextlib.nullcontext()
    timer = StepTimer(cuda)
    batch = windows.shape[0] // (steps + warmup)
    for step in range(steps + warmup):
        if step == warmup:
            timer.mark()
        rows = windows[step * batch : (step + 1) * batch].to(device, non_blocking=True)
        with autocast:
            loss = step_model(input_ids=rows, labels=rows).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if step >= warmup:
            timer.mark()
    return timer.seconds(), batch * windows.shape[1]  # marks: the start of the first timed step, then each end


def trainer_rows(kind: str, config, tokenizer, data, args, device: str, output_dir: Path):
    """(b)-(d): seconds per timed step, tokens per timed step, and the row length the model saw."""
    cuda = device == "cuda"
    window = len(data["train"][0]["input_ids"])
    common = dict(
        output_dir=str(output_dir / kind),
        max_steps=args.steps + args.warmup,
        per_device_train_batch_size=args.batch_size,  # windows per step: Birdie's collator packs them into rows
        learning_rate=1e-4,
        bf16=cuda,
        report_to="none",
        save_strategy="no",
        logging_steps=10_000,
        disable_tqdm=True,
        dataloader_num_workers=0,
        include_num_input_tokens_seen="non_padding",
        seed=0,
    )
    timer = StepTimer(cuda)
    callback = TimerCallback(timer, args.warmup)
    model = build_causal_lm(config, "sdpa" if kind in ("trainer", "birdie_full_plain") else "auto", seed=0)
    if kind == "trainer":
        training_args = TrainingArguments(**common)
        collator = DataCollatorForLanguageModeling(tokenizer, mlm=False)
        dataset = data["train"].select_columns(["input_ids"])
        trainer = Trainer(
            model=model, args=training_args, train_dataset=dataset, data_collator=collator, callbacks=[callback]
        )
        row_length = window
    else:
        example_length = SIZES[args.current_size][5]
        birdie = dict(max_length=2 * example_length, example_length=example_length, preset="dna")
        if kind == "birdie_ntp":
            birdie["policy"] = "ntp"
        if kind == "birdie_full_plain":
            birdie["fast_path"] = "off"
        training_args = BirdieTrainingArguments(**common, **birdie)
        trainer = BirdieTrainer(
            model=model,
            args=training_args,
            train_dataset=data["train"],
            eval_dataset=data["validation"],
            processing_class=tokenizer,
            callbacks=[callback],
        )
        row_length = 2 * example_length
    with contextlib.redirect_stdout(io.StringIO()):
        trainer.train()
    seconds = timer.seconds()
    return seconds, trainer.state.num_input_tokens_seen / trainer.state.global_step, row_length, trainer.model


def write_outputs(out: Path, header: str, records: list[dict]) -> str:
    """Write `gpu_throughput.{md,json}` for the rows measured so far (after every row, so a call cut by its time
    limit still returns what it measured); returns the table."""
    lines = [
        header,
        "",
        "| size | row | median s/step | tokens/s | MFU | step vs (a) | occasional share | h per 1B tokens |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in records:
        if "error" in r:
            lines.append(f"| {r['size']} | {ROW_NAMES[r['row']]} | failed: {r['error'][:80]} | | | | | |")
            continue
        ratio = f"{r['step_vs_minimal']:.2f}x" if r["step_vs_minimal"] else "-"
        lines.append(
            f"| {r['size']} | {ROW_NAMES[r['row']]} | {r['median_step_s']:.4f} | {r['tokens_per_s']:,.0f} | "
            f"{100 * r['mfu']:.1f}% | {ratio} | {100 * r['occasional_share']:.1f}% | {r['hours_per_1b_tokens']:.2f} |"
        )
    table = "\n".join(lines)
    (out / "gpu_throughput.md").write_text(table + "\n", encoding="utf-8")
    (out / "gpu_throughput.json").write_text(
        json.dumps({"header": header, "records": records}, indent=1) + "\n", encoding="utf-8"
    )
    return table


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", nargs="+", default=["34m", "100m"], choices=list(SIZES))
    parser.add_argument("--rows", nargs="+", default=list(ROWS), choices=list(ROWS))
    parser.add_argument("--steps", type=int, default=30, help="timed steps per row")
    parser.add_argument("--warmup", type=int, default=10, help="untimed first steps (compilation, CUDA start-up)")
    parser.add_argument("--batch_size", type=int, default=None, help="windows per step (default: the size's)")
    parser.add_argument("--no_compile", action="store_true", help="(a) without torch.compile")
    parser.add_argument("--peak_size", type=int, default=8192)
    parser.add_argument("--output_dir", default="outputs/gpu_throughput")
    args = parser.parse_args(argv)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    requested_batch = args.batch_size
    out = Path(args.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    peak_dtype = torch.bfloat16 if device == "cuda" else torch.float32
    peak_size = args.peak_size if device == "cuda" else min(args.peak_size, 1024)
    peak = matmul_peak_flops(peak_size, peak_dtype, device)
    name = torch.cuda.get_device_name() if device == "cuda" else f"CPU ({torch.get_num_threads()} threads)"
    header = (
        f"{name}; torch {torch.__version__}, transformers {transformers.__version__}; matmul peak "
        f"({str(peak_dtype).split('.')[-1]}, {peak_size}^2) {peak / 1e12:,.2f} TFLOP/s; {args.steps} timed steps "
        f"after {args.warmup}"
    )
    print(header, flush=True)
    tokenizer = build_dna_tokenizer()
    records = []
    for size in args.sizes:
        hidden, layers, heads, window, batch, _ = SIZES[size]
        args.current_size = size
        args.batch_size = requested_batch or batch
        config = default_model_config(
            tokenizer,
            hidden_size=hidden,
            num_hidden_layers=layers,
            num_attention_heads=heads,
            max_position_embeddings=max(2048, 2 * window + 16),
        )
        data = load_genome_windows(None, tokenizer, window_length=window, stride=window // 4)
        n = (args.steps + args.warmup) * args.batch_size
        ids = torch.tensor([data["train"][i % len(data["train"])]["input_ids"] for i in range(n)], dtype=torch.long)
        reference = None
        for kind in args.rows:
            try:
                if kind == "minimal":
                    seconds, tokens = minimal_loop(
                        config, ids, device, args.steps, args.warmup, device == "cuda" and not args.no_compile
                    )
                    row_length, model = window, build_causal_lm(config, seed=0)
                else:
                    seconds, tokens, row_length, model = trainer_rows(kind, config, tokenizer, data, args, device, out)
            except Exception as error:  # a row this machine cannot run: reported, the others still measured
                records.append({"size": size, "row": kind, "error": f"{type(error).__name__}: {str(error)[:200]}"})
                print(f"{size} {kind}: failed ({records[-1]['error']})", flush=True)
                write_outputs(out, header, records)
                continue
            step = statistics.median(seconds)
            mean = statistics.fmean(seconds)
            per_token = training_flops_per_token(model, row_length)
            tokens_per_s = tokens / step
            record = {
                "size": size,
                "row": kind,
                "parameters": sum(p.numel() for p in model.parameters()),
                "median_step_s": step,
                "mean_step_s": mean,
                "occasional_share": (mean - step) / mean if mean else 0.0,
                "tokens_per_step": tokens,
                "tokens_per_s": tokens_per_s,
                "mfu": tokens_per_s * per_token / peak,
                "hours_per_1b_tokens": 1e9 / tokens_per_s / 3600 if tokens_per_s else None,
            }
            reference = reference or (step if kind == "minimal" else None)
            record["step_vs_minimal"] = step / reference if reference else None
            records.append(record)
            print(json.dumps(record), flush=True)
            write_outputs(out, header, records)
    print("\n" + write_outputs(out, header, records))
    return 0 if all("error" not in r for r in records) else 1


if __name__ == "__main__":
    raise SystemExit(main())
