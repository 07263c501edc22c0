"""Birdie vs a static mixture vs next-token prediction, at equal compute, on ~30 Mbp of real genomes, with
downstream tasks disjoint from pre-training and fine-tuning in causal and bidirectional modes.

    python benchmarks/birdie_vs_ntp.py --model_tokens 5e6 --finetune_seeds 0 1   # the committed run (~2 h, 2 cores)
    python benchmarks/birdie_vs_ntp.py --model_tokens 2e6 --finetune_seeds 0 --work_dir outputs/quick
    python benchmarks/birdie_vs_ntp.py --summarise_only         # rebuild the table from what has finished

What it does, in order (every stage is skipped when its output exists, so an interrupted run continues):

1. Tasks (`recipes/make_genome_tasks.py`): gene_strand and coding_vs_intergenic from the annotated bacterial
   assembly (an organism absent from the pre-training corpus), and human_repeat from the chr22 soft mask (train from
   the pre-training region, dev/test from the last 20 % of the covered chr22 coordinates, which pre-training never
   sees). Every dev/test sequence is checked against the whole pre-training corpus (exact occurrence, both strands).
2. Pre-training (`recipes/pretrain.py`), one model per policy, same architecture, data, seed and learning-rate
   schedule, at an equal budget of tokens through the model (context + targets): each policy's `max_steps` is the
   budget divided by its tokens per step under its initial mixture (measured with the collator). NTP therefore sees
   more genome bases than Birdie; both counts are reported.
3. Held-out next-base loss of every checkpoint on the same validation windows next to order-k Markov models fit on
   the training windows.
4. Fine-tuning (`recipes/evaluate_suite.py`) of every checkpoint in every attention mode, seeds `--finetune_seeds`,
   plus a 6-mer logistic regression on the same splits. Baseline: the `ntp` checkpoint read causally.

Writes benchmarks/results/birdie_vs_ntp.{md,json}.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np


REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("BIRDIE_SHARED_DIR", REPO.parent / "shared")) / "data" / "genomes"
POLICIES = ("birdie", "static", "ntp")
#: Bacteria in the pre-training corpus: one strain per species (strains of a species share most of their sequence).
BACTERIA = ("bacteria/e_coli_mg1655-k12.fa.gz", "bacteria/v_cholerae_o395.fa.gz", "bacteria/s_aureus_col.fa.gz",
            "bacteria/h_pylori_g27.fa.gz", "klebsiella_pneumoniae_NTUH-K2044.fna.gz")
TASKS = ("gene_strand", "coding_vs_intergenic", "human_repeat")


def run(cmd: list[str], log: Path | None = None) -> None:
    print("+", " ".join(cmd), flush=True)
    start = time.time()
    if log is None:
        subprocess.run(cmd, check=True, cwd=REPO)
    else:
        with open(log, "w", encoding="utf-8") as handle:
            subprocess.run(cmd, check=True, cwd=REPO, stdout=handle, stderr=subprocess.STDOUT)
    print(f"  done in {time.time() - start:.0f} s", flush=True)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work_dir", default="outputs/birdie_vs_ntp")
    parser.add_argument("--model_tokens", type=float, default=6e6, help="tokens through the model per policy")
    parser.add_argument("--seed", type=int, default=42, help="pre-training seed")
    parser.add_argument("--hidden_size", type=int, default=128)
    parser.add_argument("--num_hidden_layers", type=int, default=4)
    parser.add_argument("--window_length", type=int, default=256)
    parser.add_argument("--max_length", type=int, default=512)
    parser.add_argument("--batch_size", type=int, default=16)
    parser.add_argument("--learning_rate", type=float, default=1e-3)
    parser.add_argument("--finetune_seeds", nargs="+", default=["0", "1", "2"])
    parser.add_argument("--finetune_epochs", type=float, default=3)
    parser.add_argument("--max_train_examples", type=int, default=1500)
    parser.add_argument("--max_eval_examples", type=int, default=1000, help="dev examples for early stopping")
    parser.add_argument("--modes", nargs="+", default=["causal", "bidirectional", "bidirectional_prompt"])
    parser.add_argument("--results_dir", default=str(REPO / "benchmarks" / "results"))
    parser.add_argument("--summarise_only", action="store_true")
    return parser.parse_args(argv)


def corpus(work: Path) -> list[str]:
    return [str(work / "tasks" / "human_pretraining.fa.gz")] + [str(SHARED / name) for name in BACTERIA]


def tokens_per_step(policy: str, args) -> float:
    """Mean tokens through the model per optimizer step under the policy's initial mixture (collator only)."""
    from birdie_hf import BirdieTrainingArguments, DataCollatorForBirdie, build_dna_tokenizer
    from birdie_hf.data import default_genome_path, load_genome_windows

    tokenizer = build_dna_tokenizer()
    # Collator seed 0: the draw the committed run's step counts were computed with.
    training = BirdieTrainingArguments(output_dir="unused", policy=policy, max_length=args.max_length, use_cpu=True,
                                       seed=0)
    collator = DataCollatorForBirdie.from_training_args(tokenizer, training)
    windows = load_genome_windows(default_genome_path(), tokenizer, window_length=args.window_length)["train"]
    counts = []
    for start in range(0, min(len(windows) - args.batch_size, 100 * args.batch_size), args.batch_size):
        batch = collator([windows[i] for i in range(start, start + args.batch_size)])
        counts.append(int((batch["objective_ids"] >= 0).sum()))
    return float(np.mean(counts))


def pretrain(policy: str, args, work: Path) -> dict:
    out = work / policy
    if not (out / "train_results.json").exists():
        steps = int(round(args.model_tokens / tokens_per_step(policy, args)))
        cmd = [sys.executable, "recipes/pretrain.py", "--policy", policy, "--output_dir", str(out),
               "--genomes", *corpus(work), "--max_steps", str(steps), "--seed", str(args.seed),
               "--hidden_size", str(args.hidden_size), "--num_hidden_layers", str(args.num_hidden_layers),
               "--window_length", str(args.window_length), "--max_length", str(args.max_length),
               "--per_device_train_batch_size", str(args.batch_size), "--learning_rate", str(args.learning_rate),
               "--warmup_steps", str(max(10, steps // 50)), "--save_strategy", "no", "--disable_tqdm", "true",
               "--logging_steps", "50", "--validation_fraction", "0.01"]
        run(cmd, log=work / f"pretrain_{policy}.log")
    return json.loads((out / "train_results.json").read_text())


def heldout_next_base(work: Path, args) -> dict:
    """Next-base NLL (nats) of every checkpoint and of order-k Markov models on the same validation windows."""
    path = work / "heldout_next_base.json"
    if path.exists():
        return json.loads(path.read_text())
    from transformers import AutoModelForCausalLM

    from birdie_hf import build_dna_tokenizer, load_genome_windows
    from birdie_hf.baselines import markov_baseline_table, next_base_nll, windows_to_text

    tokenizer = build_dna_tokenizer()
    data = load_genome_windows(corpus(work), tokenizer, window_length=args.window_length, validation_fraction=0.01,
                               seed=args.seed)
    order = np.random.default_rng(0).permutation(len(data["validation"]))[:400]
    heldout_ids = [data["validation"][int(i)]["input_ids"] for i in order]
    result = {"windows": len(heldout_ids),
              "markov": markov_baseline_table(windows_to_text(data["train"]["input_ids"], tokenizer),
                                              list(windows_to_text(heldout_ids, tokenizer)), orders=(2, 3, 4, 5, 6, 8))}
    result["composition_entropy"] = result["markov"][0]["nll"]
    for policy in POLICIES:
        result[policy] = next_base_nll(AutoModelForCausalLM.from_pretrained(work / policy), heldout_ids, tokenizer)
    path.write_text(json.dumps(result, indent=2))
    return result


def kmer_baseline(work: Path) -> dict:
    from birdie_hf.baselines import kmer_logistic_regression, read_task_csvs

    results = {}
    for task in TASKS:
        splits = read_task_csvs(work / "tasks" / task)
        results[task] = kmer_logistic_regression(splits["train"], splits["dev"], splits["test"], k=6)
    return results


def main(args):
    work = Path(args.work_dir)
    work.mkdir(parents=True, exist_ok=True)
    tasks_dir = work / "tasks"
    if not args.summarise_only:
        if not (tasks_dir / "suite.json").exists():
            run([sys.executable, "recipes/make_genome_tasks.py", "--genbank", str(SHARED / "bacterial_contigs.gbk"),
                 "--human_fasta", str(SHARED / "human_chr22_segments.fa.gz"), "--output_dir", str(tasks_dir),
                 "--windows_per_gene", "12", "--check_leakage", *corpus(work)])
        for policy in POLICIES:
            pretrain(policy, args, work)
        run([sys.executable, "recipes/evaluate_suite.py", "--checkpoints", *[f"{p}={work / p}" for p in POLICIES],
             "--tasks", *[str(tasks_dir / t) for t in TASKS], "--seeds", *args.finetune_seeds,
             "--attention_modes", *args.modes, "--num_train_epochs", str(args.finetune_epochs),
             "--max_train_examples", str(args.max_train_examples), "--max_eval_examples", str(args.max_eval_examples),
             "--output_dir", str(work / "suite")],
            log=work / "finetune.log")
    write_results(args, work)


def _final_losses(work: Path, policy: str) -> dict[str, float]:
    trajectory = json.loads((work / policy / "mixture_trajectory.json").read_text())["evaluations"]
    return trajectory[-1]["losses"] if trajectory else {}


def write_results(args, work: Path) -> None:
    sys.path.insert(0, str(REPO / "recipes"))
    from evaluate_suite import markdown, summarise

    pretraining = {p: json.loads((work / p / "train_results.json").read_text()) for p in POLICIES}
    heldout = heldout_next_base(work, args)
    kmer = kmer_baseline(work)
    runs = [json.loads(line) for line in open(work / "suite" / "runs.jsonl", encoding="utf-8")]
    summary = summarise(runs, by_mode=True)
    suite = json.loads((work / "tasks" / "suite.json").read_text())
    leaked = sum(split["occurring"] for task in suite["leakage"]["tasks"].values() for split in task.values())
    checked = sum(split["checked"] for task in suite["leakage"]["tasks"].values() for split in task.values())

    lines = [f"# Birdie vs static mixture vs NTP at equal compute ({args.model_tokens:,.0f} model tokens per policy)",
             "", "Reproduce: `python benchmarks/birdie_vs_ntp.py " + " ".join(sys.argv[1:]).replace(
                 "--summarise_only", "").strip() + "` (then `--summarise_only` rebuilds this file).", "",
             "## Pre-training", "",
             "| policy | steps | tokens through the model | genome bases | held-out next-base NLL (nats) |",
             "|---|---|---|---|---|"]
    for p in POLICIES:
        r = pretraining[p]
        steps = r.get("global_step", r["tokens_seen"] // (args.batch_size * args.window_length))
        lines.append(f"| {p} | {steps:,} | {r['model_tokens']:,} | {r['tokens_seen']:,} | "
                     f"{heldout[p]:.4f} |")
    lines += ["", "Order-k Markov models fit on the same training windows, scored on the same "
              f"{heldout['windows']} held-out windows:", "", "| model | NLL (nats) |", "|---|---|"]
    lines += [f"| order {row['order']} Markov | {row['nll']:.4f} |" for row in heldout["markov"]]
    entries = list(_final_losses(work, "birdie"))
    lines += ["", "Final per-objective held-out losses (fixed held-out set, nats per target token):", "",
              "| objective | " + " | ".join(POLICIES) + " |", "|---|" + "---|" * len(POLICIES)]
    finals = {p: _final_losses(work, p) for p in POLICIES}
    for entry in entries:
        lines.append(f"| {entry} | " + " | ".join(
            f"{finals[p][entry]:.3f}" if entry in finals[p] else "–" for p in POLICIES) + " |")
    lines += ["", "## Downstream (test MCC, mean ± std over fine-tuning seeds)", "",
              f"Tasks: {', '.join(TASKS)}. Leakage check: {leaked} of {checked} dev/test sequences occur verbatim "
              "(either strand) in the pre-training corpus.", "", markdown(summary), "",
              "| 6-mer logistic regression | " + " | ".join(f"{kmer[t]['test']['mcc']:.3f}" for t in sorted(kmer))
              + f" | {np.mean([kmer[t]['test']['mcc'] for t in kmer]):.3f} |", ""]
    base_key = "ntp (causal)"
    if base_key in summary:
        base = summary[base_key]["mean_over_tasks"]["mcc"]
        lines += [f"Mean test MCC relative to the baseline `{base_key}` ({base:.3f}):", ""]
        for key, per in summary.items():
            lines.append(f"- {key}: {per['mean_over_tasks']['mcc']:.3f} ({per['mean_over_tasks']['mcc'] - base:+.3f})")
    text = "\n".join(lines) + "\n"
    os.makedirs(args.results_dir, exist_ok=True)
    Path(args.results_dir, "birdie_vs_ntp.md").write_text(text)
    Path(args.results_dir, "birdie_vs_ntp.json").write_text(json.dumps(
        {"settings": vars(args), "pretraining": pretraining, "heldout_next_base": heldout, "final_losses": finals,
         "summary": summary, "kmer_logistic_regression": kmer, "leakage": suite["leakage"],
         "task_counts": suite["counts"]}, indent=2))
    trajectory = work / "birdie" / "mixture_trajectory.json"
    Path(args.results_dir, "birdie_vs_ntp_birdie_trajectory.json").write_text(trajectory.read_text())
    print(text)


if __name__ == "__main__":
    main(parse_args())
