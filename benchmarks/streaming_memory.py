"""Pre-training on a genome larger than the memory the process may use: `recipes/pretrain.py --streaming` under a
resource limit, beside the eager (in-memory) path under the same limit.

    python benchmarks/streaming_memory.py                       # a 1,200 MB genome, a 1,000 MB data limit
    python benchmarks/streaming_memory.py --genome_mb 300 --limit_mb 1000 --max_steps 5   # quick look

Writes a FASTA of `--genome_mb` megabases of random bases (seeded, 80 bases a line, one record) into `--work_dir`,
then runs the recipe twice with the same tiny model, each in a child process whose data segment (`RLIMIT_DATA`:
heap and private anonymous mappings, where a loaded genome would live) is capped at `--limit_mb`:

- `--streaming`: the genome is indexed once, then read shard by shard while training;
- eager loading (the default path), which holds the genome's windows in memory: expected to fail under the cap.

Prints a table (exit status, wall time, peak resident memory of each child, measured with `os.wait4`) and writes it to
`<work_dir>/streaming_memory.{md,json}`. The children run with one thread (`--cpu_threads 1`, `OPENBLAS_NUM_THREADS=1`,
`MALLOC_ARENA_MAX=2`), each logged to `<work_dir>/run_<path>.log`: per-thread allocator arenas and BLAS buffers are address space the cap also counts, and
OpenBLAS gives up on allocations under some caps (measured: 1,500 MB failed at start-up where 700 and 1,000 MB ran).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np


REPO = Path(__file__).resolve().parents[1]
TINY_MODEL = [
    "--window_length", "128", "--max_length", "384", "--hidden_size", "32", "--num_hidden_layers", "1",
    "--num_attention_heads", "2", "--per_device_train_batch_size", "2", "--policy", "ntp", "--disable_tqdm", "true",
    "--cpu_threads", "1", "--validation_fraction", "0.01",
]  # fmt: skip


def write_genome(path: Path, megabases: int, seed: int = 0) -> int:
    """One record of `megabases` million random bases, 80 per line, written 8 Mbp at a time; returns the file size."""
    rng = np.random.default_rng(seed)
    alphabet = np.frombuffer(b"ACGT", dtype=np.uint8)
    chunk = 8_000_000  # a multiple of 80
    with open(path, "wb") as handle:
        handle.write(b">random_genome\n")
        left = megabases * 1_000_000
        while left:
            n = min(chunk, left)
            lines = alphabet[rng.integers(0, 4, n, dtype=np.uint8)]
            full = (n // 80) * 80
            block = np.concatenate([lines[:full].reshape(-1, 80), np.full((full // 80, 1), ord("\n"), np.uint8)], 1)
            handle.write(block.tobytes())
            if n > full:
                handle.write(lines[full:].tobytes() + b"\n")
            left -= n
    return path.stat().st_size


def run_limited(arguments: list[str], limit_bytes: int, timeout: float, log: Path) -> dict:
    """Run the recipe with `arguments` under `RLIMIT_DATA = limit_bytes`, its output in `log`: exit status, seconds,
    the child's own peak resident memory (MiB, from `os.wait4`) and its last output line."""

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_DATA, (limit_bytes, limit_bytes))

    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MALLOC_ARENA_MAX": "2",
           "CUDA_VISIBLE_DEVICES": "", "HF_HUB_OFFLINE": "1"}  # fmt: skip
    start = time.perf_counter()
    with open(log, "w", encoding="utf-8") as handle:
        process = subprocess.Popen(
            [sys.executable, str(REPO / "recipes" / "pretrain.py"), *arguments],
            preexec_fn=limit,
            env=env,
            stdout=handle,
            stderr=subprocess.STDOUT,
        )
        timer = threading.Timer(timeout, process.kill)
        timer.start()
        _, wait_status, usage = os.wait4(process.pid, 0)
        timer.cancel()
    process.returncode = os.waitstatus_to_exitcode(wait_status)
    seconds = time.perf_counter() - start
    lines = [line for line in log.read_text(encoding="utf-8", errors="replace").splitlines() if line.strip()]
    return {
        "status": "timed out" if seconds >= timeout else process.returncode,
        "seconds": round(seconds, 1),
        "peak_rss_mb": round(usage.ru_maxrss / 1024),  # KiB on Linux
        "last_line": lines[-1][:200] if lines else "",
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--genome_mb", type=int, default=1200, help="genome size in megabases (= MB of FASTA)")
    parser.add_argument("--limit_mb", type=int, default=1000, help="RLIMIT_DATA of each training process, MB")
    parser.add_argument("--max_steps", type=int, default=20)
    parser.add_argument("--timeout", type=float, default=900, help="seconds before a child is stopped")
    parser.add_argument("--work_dir", default="outputs/streaming_memory")
    parser.add_argument("--keep_genome", action="store_true", help="keep the generated FASTA (deleted by default)")
    args = parser.parse_args(argv)
    work = Path(args.work_dir)
    work.mkdir(parents=True, exist_ok=True)
    genome = work / "random_genome.fa"
    validation = work / "validation.fa"
    start = time.perf_counter()
    size = write_genome(genome, args.genome_mb)
    write_genome(validation, 1, seed=1)
    print(f"wrote {genome} ({size / 2**20:,.0f} MiB) in {time.perf_counter() - start:.0f} s", flush=True)
    limit = args.limit_mb * 2**20
    common = [*TINY_MODEL, "--max_steps", str(args.max_steps), "--save_steps", str(args.max_steps)]
    rows = []
    for name, extra in (
        ("streaming", ["--streaming", "--genomes", str(genome), "--validation_genomes", str(validation)]),
        ("eager", ["--genomes", str(genome)]),
    ):
        output_dir = work / f"run_{name}"
        arguments = [*extra, *common, "--output_dir", str(output_dir), "--overwrite_output_dir", "true"]
        result = run_limited(arguments, limit, args.timeout, work / f"run_{name}.log")
        result["trained"] = (output_dir / "config.json").is_file() and result["status"] == 0
        rows.append({"path": name, **result})
        print(f"{name}: {result}", flush=True)
    if not args.keep_genome:
        genome.unlink()
    table = [
        f"Genome {args.genome_mb:,} Mbp ({size / 2**20:,.0f} MiB of FASTA); each run capped at RLIMIT_DATA = "
        f"{args.limit_mb:,} MiB; tiny model, {args.max_steps} steps, one thread.",
        "",
        "| path | exit status | trained | wall (s) | peak RSS (MiB) | last line |",
        "|---|---|---|---|---|---|",
    ]
    for row in rows:
        last = row["last_line"].replace("|", "/")
        table.append(
            f"| {row['path']} | {row['status']} | {row['trained']} | {row['seconds']} | {row['peak_rss_mb']} | {last} |"
        )
    table.append("")
    table.append(
        f"({platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()})"
    )
    text = "\n".join(table)
    print("\n" + text)
    (work / "streaming_memory.md").write_text(text + "\n", encoding="utf-8")
    (work / "streaming_memory.json").write_text(
        json.dumps(
            {"genome_mb": args.genome_mb, "genome_bytes": size, "limit_mb": args.limit_mb, "rows": rows}, indent=2
        )
        + "\n",
        encoding="utf-8",
    )
    return 0 if rows[0]["trained"] else 1


if __name__ == "__main__":
    sys.exit(main())
