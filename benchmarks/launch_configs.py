"""The shipped multi-GPU accelerate configs, run for real: each trains, saves and resumes a small model through
`accelerate launch --config_file <config> recipes/pretrain.py`, on as many GPUs as the machine has.

    python benchmarks/launch_configs.py --output_dir outputs/launch_configs            # on a GPU machine
    python benchmarks/launch_configs.py --dry_run                                      # the commands, run nothing

Per config (`multi_gpu_ddp`, `fsdp_full_shard`): a 4-step run of a 2-layer model on the shipped genome that saves at
steps 2 and 4, then the same run resumed from its step-2 checkpoint (same settings, so the resume is accepted) to step
4 again; the table gives each command's exit status, seconds
and last error line. On a one-GPU machine (`--num_processes 1`) this shows that the config's plugin (DDP or FSDP2
sharding of the decoder layers, its sharded state dict, bf16) wraps our model, trains, writes a checkpoint the
trainer's integrity check accepts, and resumes from it; it does not show cross-GPU communication, gradient
reduction across ranks or sharding across devices (those need two GPUs; the two-process gloo run in
`tests/test_distributed.py` covers the rank logic on a CPU). Writes `launch_configs.{md,json}`.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path


REPO = Path(__file__).resolve().parents[1]
CONFIGS = ("multi_gpu_ddp", "fsdp_full_shard")
#: A small run of the recipe: 2 layers of 64, windows of 256, 4 windows per step.
RUN_FLAGS = [
    "--hidden_size", "64", "--num_hidden_layers", "2", "--num_attention_heads", "2", "--window_length", "256",
    "--max_length", "560", "--example_length", "280", "--per_device_train_batch_size", "4", "--logging_steps", "1",
    "--save_steps", "2", "--policy_warmup_steps", "2", "--policy_eval_interval", "2", "--report_to", "none",
]  # fmt: skip


def commands(config: str, num_processes: int, output_dir: Path) -> list[list[str]]:
    """The two commands for `config`: a fresh 4-step run that saves at steps 2 and 4, then the same run resumed from its
    step-2 checkpoint (a resume must keep the run's settings, `max_steps` included)."""
    launch = [
        sys.executable, "-m", "accelerate.commands.launch", "--config_file",
        str(REPO / "recipes" / "accelerate_configs" / f"{config}.yaml"), "--num_processes", str(num_processes),
        str(REPO / "recipes" / "pretrain.py"), *RUN_FLAGS, "--output_dir", str(output_dir / config),
    ]  # fmt: skip
    return [
        [*launch, "--max_steps", "4", "--overwrite_output_dir", "true"],
        [*launch, "--max_steps", "4", "--resume_from_checkpoint", str(output_dir / config / "checkpoint-2")],
    ]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    parser.add_argument("--num_processes", type=int, default=None, help="default: the GPUs visible (at least 1)")
    parser.add_argument("--timeout_s", type=float, default=240, help="per command")
    parser.add_argument("--output_dir", default="outputs/launch_configs")
    parser.add_argument("--dry_run", action="store_true", help="print the commands and run nothing")
    args = parser.parse_args(argv)
    out = Path(args.output_dir).resolve()  # the commands run in the repository
    processes = args.num_processes
    if processes is None:
        import torch

        processes = max(1, torch.cuda.device_count())
    records = []
    for config in args.configs:
        for step, command in zip(
            ("train 4 steps, save at 2 and 4", "resume from step 2"), commands(config, processes, out / "runs")
        ):
            if args.dry_run:
                print(shlex.join(command))
                continue
            start = time.time()
            try:
                done = subprocess.run(
                    command, capture_output=True, text=True, timeout=args.timeout_s, cwd=REPO, env=dict(os.environ)
                )
                status, stderr = done.returncode, done.stderr
            except subprocess.TimeoutExpired as error:
                status, stderr = "timeout", str(error.stderr or "")
            lines = [line for line in stderr.splitlines() if line.strip()]
            error = next((line for line in reversed(lines) if "Error" in line), lines[-1] if lines else "")
            records.append(
                {
                    "config": config,
                    "step": step,
                    "processes": processes,
                    "status": status,
                    "seconds": round(time.time() - start, 1),
                    "error": "" if status == 0 else error[:300],
                }
            )
            print(json.dumps(records[-1]), flush=True)
            write_table(out, records)
            if status != 0:
                break  # no checkpoint to resume from
    if args.dry_run:
        return 0
    print(write_table(out, records))
    return 0 if records and all(r["status"] == 0 for r in records) else 1


def write_table(out: Path, records: list[dict]) -> str:
    """Write `launch_configs.{md,json}` for the commands run so far (after each, so a cut call returns them)."""
    out.mkdir(parents=True, exist_ok=True)
    lines = ["| config | step | processes | exit status | s | last error line |", "|---|---|---|---|---|---|"]
    lines += [
        f"| {r['config']} | {r['step']} | {r['processes']} | {r['status']} | {r['seconds']} | {r['error']} |"
        for r in records
    ]
    table = "\n".join(lines)
    (out / "launch_configs.md").write_text(table + "\n", encoding="utf-8")
    (out / "launch_configs.json").write_text(json.dumps(records, indent=1) + "\n", encoding="utf-8")
    return table


if __name__ == "__main__":
    raise SystemExit(main())
