"""The paper's comparison: Birdie vs a static mixture vs next-token prediction, at an equal token budget.

For the larger, compute-matched experiment on ~30 Mbp with leakage-checked tasks see benchmarks/birdie_vs_ntp.py.

Pre-trains one model per policy with recipes/pretrain.py (same data, steps, batch and seed, so the same number of
genome tokens), builds the offline task suite from the annotated genome (recipes/make_genome_tasks.py), fine-tunes
every checkpoint on every task with several seeds (recipes/evaluate_suite.py), and writes the table to
benchmarks/results/policy_comparison.{md,json}. Baseline: the `ntp` policy.

    python benchmarks/policy_comparison.py                      # 400 steps per policy, seeds 0 1 2 (~30 min CPU)
    python benchmarks/policy_comparison.py --max_steps 2000 --genomes a.fna.gz
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path


REPO = Path(__file__).resolve().parents[1]
POLICIES = ("birdie", "static", "ntp")


def run(cmd: list[str]) -> None:
    print("+", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True, cwd=REPO)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--max_steps", type=int, default=400)
    parser.add_argument("--seeds", nargs="+", default=["0", "1", "2"])
    parser.add_argument("--work_dir", default="outputs/policy_comparison")
    parser.add_argument(
        "--genbank", default=str(REPO.parent / "shared" / "data" / "genomes" / "bacterial_contigs.gbk")
    )
    parser.add_argument("--genomes", nargs="*", default=None, help="pre-training FASTA (default: shipped genome)")
    parser.add_argument("--results_dir", default=str(REPO / "benchmarks" / "results"))
    args = parser.parse_args()

    work = Path(args.work_dir)
    for policy in POLICIES:
        out = work / policy
        if (out / "train_results.json").exists():
            continue
        cmd = [
            sys.executable,
            "recipes/pretrain.py",
            "--policy",
            policy,
            "--output_dir",
            str(out),
            "--max_steps",
            str(args.max_steps),
            "--disable_tqdm",
            "true",
            "--save_strategy",
            "no",
        ]
        if args.genomes:
            cmd += ["--genomes", *args.genomes]
        run(cmd)
    run(
        [
            sys.executable,
            "recipes/make_genome_tasks.py",
            "--genbank",
            args.genbank,
            "--output_dir",
            str(work / "tasks"),
        ]
    )
    run(
        [
            sys.executable,
            "recipes/evaluate_suite.py",
            "--checkpoints",
            *[f"{p}={work / p}" for p in POLICIES],
            "--suite_dir",
            str(work / "tasks"),
            "--seeds",
            *args.seeds,
            "--output_dir",
            str(work / "suite"),
        ]
    )

    summary = json.loads((work / "suite" / "results.json").read_text())
    pretraining = {p: json.loads((work / p / "train_results.json").read_text()) for p in POLICIES}
    os.makedirs(args.results_dir, exist_ok=True)
    payload = {"max_steps": args.max_steps, "seeds": args.seeds, "pretraining": pretraining, **summary}
    Path(args.results_dir, "policy_comparison.json").write_text(json.dumps(payload, indent=2))
    table = (work / "suite" / "results.md").read_text()
    # Every checkpoint is fine-tuned causally and bidirectionally (evaluate_suite's default modes); baseline: NTP read
    # causally, its only mode.
    rows = summary["summary"]
    base = rows["ntp (causal)"]["mean_over_tasks"]["mcc"]
    ratios = "\n".join(
        f"- {key}: mean MCC {per['mean_over_tasks']['mcc']:.3f} "
        f"({per['mean_over_tasks']['mcc'] - base:+.3f} vs ntp (causal)), "
        f"tokens seen {pretraining[key.split(' ')[0]]['tokens_seen']:,}"
        for key, per in rows.items()
    )
    Path(args.results_dir, "policy_comparison.md").write_text(
        f"# Birdie vs static mixture vs NTP ({args.max_steps} pre-training steps each, seeds {args.seeds})\n\n"
        f"{table}\n{ratios}\n"
    )
    print(table)
    print(ratios)


if __name__ == "__main__":
    main()
