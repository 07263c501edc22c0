"""The pre-registered experiment: does Birdie help a DNA language model? (protocol: benchmarks/README.md)

    # 1. pre-train every arm at every seed (4 arms x 3 seeds; --jobs runs several at once, e.g. on one GPU)
    python benchmarks/birdie_dna_experiment.py train --jobs 12
    # 2. read every checkpoint with the evaluation instrument (probes, zero-shot NLL, fine-tuning) and controls
    python benchmarks/birdie_dna_experiment.py evaluate
    # the training table (held-out next-base NLL, compute shares, policy decisions per run)
    python benchmarks/birdie_dna_experiment.py summarise
    # 3. the pre-registered decision rule applied to the probe results, with the secondary contrasts
    python benchmarks/birdie_dna_experiment.py decide
    # training health of every arm at every seed (in this process, on the CPU): does any run stay at the composition?
    python benchmarks/birdie_dna_experiment.py health --seeds 42 43 44 45 46 47 48 49 --protocols v2 v1 \\
        --output_root outputs/health
    # the protocol's first version (the committed results): its tied head, 15 warm-up steps and lr 2e-3
    python benchmarks/birdie_dna_experiment.py train --protocol v1 --jobs 12
    # BirdieDNA's scale on a GPU (about 34M parameters, windows of 1024): a short measured run, and what 1B tokens need
    python benchmarks/birdie_dna_experiment.py scale --max_steps 40
    # the same protocol at that scale, on your human genome (12 runs of 1B tokens; see benchmarks/README.md)
    python benchmarks/birdie_dna_experiment.py train --scale birdiedna --genomes chm13v2.0.fa.gz --jobs 4 \\
        --output_root outputs/experiment-birdiedna
    python benchmarks/birdie_dna_experiment.py evaluate --genomes chm13v2.0.fa.gz --output_root outputs/experiment-birdiedna
    # protocol v2 (benchmarks/README.md): its data in one folder to carry, then one GPU call trains and reads it all
    python benchmarks/birdie_dna_experiment.py prepare_lease --output_dir .lease_data
    python benchmarks/birdie_dna_experiment.py lease --budget_s 540 --output_dir $OUT/lease \\
        --tasks_dir .lease_data/tasks --genomes .lease_data/genomes/*
    python benchmarks/birdie_dna_experiment.py lease --smoke --tasks_dir TASKS --genomes G.fa   # same path, tiny, CPU
    # anything after -- goes to every recipe call
    python benchmarks/birdie_dna_experiment.py evaluate -- --n_resamples 1000

Protocols (`PROTOCOLS`): `v2` (the default) trains with the library's defaults; `v1`, the protocol the committed
results were trained under, pins what those defaults were then: a tied output head, a warm-up of 15 steps and lr 2e-3,
which left 4 of its 6 `dna`-arm runs at the base-composition loss (the `health` command measures it; see
benchmarks/README.md, "Training health").

Arms (`ARMS`): next-token prediction, Birdie `paper`, Birdie `dna` and the `dna` preset's static mixture, plus the
instrument's random-init control. Every arm gets the same model, data, geometry (`COMMON`: windows of 272 bases,
examples of at most 272 tokens, two per packed row, 8 windows per step), learning rate and token budget, so the same
number of optimizer steps. The seeds are the unit of replication. A run that already finished is skipped, so the
command can be rerun after an interruption.

Baseline: the `ntp` arm (and the random-init control), differenced by the instrument with paired intervals.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Optional


REPO = Path(__file__).resolve().parents[1]
SEEDS = (42, 43, 44)
#: Geometry and optimisation shared by every arm (the recipe's defaults for everything else).
COMMON = [
    "--window_length", "272",
    "--max_length", "544",
    "--example_length", "272",
    "--per_device_train_batch_size", "8",
    "--save_steps", "500",
    "--logging_steps", "50",
]  # fmt: skip
#: BirdieDNA's scale (the authors' DNA defaults: hidden 512, sequence 1024, batch 32, lr 3e-4; 8 layers of a 4x MLP
#: make about 34M parameters), for a GPU: `--scale birdiedna` uses it in place of `COMMON`, on `--genomes` you give
#: (e.g. the human T2T-CHM13 assembly), with a budget of 1B example tokens unless `--max_tokens` says otherwise.
BIRDIEDNA_SCALE = [
    "--hidden_size", "512",
    "--num_hidden_layers", "8",
    "--num_attention_heads", "8",
    "--window_length", "1024",
    "--max_length", "2064",
    "--example_length", "1032",
    "--per_device_train_batch_size", "32",
    "--learning_rate", "3e-4",
    "--bf16", "true",
    "--save_steps", "2000",
    "--logging_steps", "100",
]  # fmt: skip
SCALES = {"tiny": (COMMON, 5_000_000), "birdiedna": (BIRDIEDNA_SCALE, 1_000_000_000)}
#: Settings each protocol version adds to the recipe's, per scale: v1 pins the defaults of its time (commit 53b2871).
PROTOCOLS = {
    "v2": {"tiny": [], "birdiedna": []},
    "v1": {
        "tiny": ["--learning_rate", "2e-3", "--warmup_steps", "15", "--tie_word_embeddings", "true"],
        "birdiedna": ["--warmup_steps", "500", "--tie_word_embeddings", "true"],
    },
}
ARMS = {
    "ntp": ["--policy", "ntp"],
    "birdie_paper": ["--preset", "paper"],
    "birdie_dna": ["--preset", "dna"],
    "dna_static": ["--preset", "dna", "--policy", "static"],
}
#: Contrasts the instrument reports, first the primary one (Birdie `dna` against next-token prediction).
BASELINES = ["ntp", "dna_static", "birdie_paper"]
SHARED_GENOMES = REPO.parent / "shared" / "data" / "genomes"
#: Pre-training corpus: two species (E. coli, K. pneumoniae; two strains each, about 20 Mbp), none of the
#: instrument's held-out species (S. aureus, H. pylori, V. cholerae) nor human.
CORPUS = [
    SHARED_GENOMES / "bacteria" / "e_coli_mg1655-k12.fa.gz",
    SHARED_GENOMES / "bacteria" / "e_coli_dh1.fa.gz",
    SHARED_GENOMES / "klebsiella_pneumoniae_MGH78578.fna.gz",
    SHARED_GENOMES / "klebsiella_pneumoniae_NTUH-K2044.fna.gz",
]


def run_dir(root: Path, arm: str, seed: int) -> Path:
    return root / f"{arm}-seed{seed}"


def finished(folder: Path) -> bool:
    return (folder / "train_results.json").is_file() and (folder / "model.safetensors").is_file()


def train(args) -> int:
    root = Path(args.output_root)
    (root / "logs").mkdir(parents=True, exist_ok=True)
    queue = []
    for seed in args.seeds:
        for arm in args.arms:
            folder = run_dir(root, arm, seed)
            if finished(folder):
                print(f"{folder.name}: already finished, skipped")
                continue
            geometry, budget = SCALES[args.scale]
            command = [sys.executable, str(REPO / "recipes" / "pretrain.py"), *geometry]
            command += PROTOCOLS[args.protocol][args.scale]
            command += ARMS[arm]
            command += [
                "--max_tokens",
                str(args.max_tokens or budget),
                "--seed",
                str(seed),
                "--output_dir",
                str(folder),
            ]
            command += [
                "--genomes",
                *args.genomes,
                "--overwrite_output_dir",
                "true",
                "--report_to",
                "none",
                *args.extra,
            ]
            queue.append((folder, command))
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1"), "PYTHONUNBUFFERED": "1"}
    running, failed, start = [], [], time.time()
    while queue or running:
        while queue and len(running) < args.jobs:
            folder, command = queue.pop(0)
            log = open(root / "logs" / f"{folder.name}.log", "w")
            log.write(" ".join(command) + "\n")
            log.flush()
            running.append((folder, subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env), log))
            print(f"[{time.time() - start:6.0f} s] started {folder.name}", flush=True)
        time.sleep(2)
        for item in list(running):
            folder, process, log = item
            if process.poll() is None:
                continue
            running.remove(item)
            log.close()
            status = "done" if process.returncode == 0 else f"FAILED (exit {process.returncode})"
            if process.returncode != 0:
                failed.append(folder.name)
            print(f"[{time.time() - start:6.0f} s] {folder.name}: {status}", flush=True)
    print(f"all runs ended in {time.time() - start:.0f} s; failed: {failed or 'none'}")
    return 1 if failed else 0


def evaluate(args) -> int:
    root = Path(args.output_root)
    checkpoints = []
    for arm in args.arms:
        for seed in args.seeds:
            folder = run_dir(root, arm, seed)
            if not finished(folder):
                raise SystemExit(f"error: {folder} has no finished run; train it first (the `train` command).")
            checkpoints.append(f"{arm}@{seed}={folder}")
    command = [sys.executable, str(REPO / "recipes" / "evaluate.py"), "--checkpoints", *checkpoints]
    command += ["--baseline", *[b for b in BASELINES if b in args.arms]]
    command += ["--random_init_seeds", *map(str, args.seeds), "--pretraining_corpus", *args.genomes]
    command += ["--drop_leaked_sequences"]
    command += ["--readouts", *args.readouts, "--output_dir", str(root / "evaluation"), *args.extra]
    if args.finetune_tasks:
        command += ["--finetune_tasks", *args.finetune_tasks]
    print(" ".join(command), flush=True)
    return subprocess.call(command)


def _held_out_next_base(folder: Path) -> tuple[float, float]:
    """(model, base composition) held-out next-base NLL from a run's `held_out_next_base.md`."""
    values = {}
    for line in (folder / "held_out_next_base.md").read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 2:
            values[cells[0]] = cells[1]
    return float(values["this model (read left to right)"]), float(values["base composition (order 0)"])


def training_rows(root: Path, arms, seeds) -> list[dict]:
    """Per run: steps, tokens, runtime, held-out next-base NLL on the corpus's held-out part, final copying loss,
    compute shares, and how the policy decided (reward model / initial mixture / exploration)."""
    from birdie_hf.health import health_failed

    rows = []
    for arm in arms:
        for seed in seeds:
            folder = run_dir(root, arm, seed)
            if not finished(folder):
                continue
            results = json.loads((folder / "train_results.json").read_text())
            trajectory = json.loads((folder / "mixture_trajectory.json").read_text())
            evaluations = trajectory["evaluations"]
            decisions = [e.get("decision") for e in evaluations]
            shares = trajectory.get("compute", {}).get("entries", {})
            model, composition = _held_out_next_base(folder)
            rows.append(
                {
                    "arm": arm,
                    "seed": seed,
                    "steps": results.get("global_step"),
                    "train_runtime_s": results.get("train_runtime"),
                    "held_out_next_base_nats": model,
                    "composition_nats": composition,
                    # the run's own health record (birdie_hf.health); runs trained before it was recorded (protocol
                    # v1): no better than the corpus's base composition on the held-out table
                    "at_composition_plateau": (
                        health_failed(trajectory["health"])
                        if trajectory.get("health", {}).get("status", "not_measured") != "not_measured"
                        else model >= composition - PLATEAU_NATS
                    ),
                    "copying_loss": evaluations[-1]["losses"].get("copying") if evaluations else None,
                    "ntp_token_share": shares.get("next_token_prediction", {}).get("model_token_share"),
                    "reward_model_decisions": decisions.count("reward_model"),
                    "prior_decisions": decisions.count("prior"),
                    "explore_decisions": decisions.count("explore"),
                }
            )
    return rows


def summarise(args) -> int:
    """Print (and with --output write) the training table of every finished run."""
    rows = training_rows(Path(args.output_root), args.arms, args.seeds)
    fmt = lambda v, f: "-" if v is None else format(v, f)  # noqa: E731
    lines = [
        "| arm | seed | held-out next-base NLL (nats) | composition (nats) | final copying loss | NTP share of tokens "
        "| policy decisions: reward model / initial mixture / explore | steps | train s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['arm']} | {r['seed']} | {r['held_out_next_base_nats']:.4f}"
            + (" (composition plateau)" if r["at_composition_plateau"] else "")
            + f" | {r['composition_nats']:.4f} | "
            f"{fmt(r['copying_loss'], '.3f')} | {fmt(r['ntp_token_share'], '.1%')} | "
            f"{r['reward_model_decisions']} / {r['prior_decisions']} / {r['explore_decisions']} | "
            f"{fmt(r['steps'], 'd')} | {fmt(r['train_runtime_s'], '.0f')} |"
        )
    report = "\n".join(lines)
    print(report)
    if args.output:
        Path(args.output).write_text(json.dumps(rows, indent=1) + "\n")
    return 0


PRIMARY = ("birdie_dna", "ntp", "causal")
#: The five tasks of the instrument's default suite the decision rule counts.
PRIMARY_TASKS = ("coding_vs_intergenic", "gene_strand", "human_repeat", "start_codon", "stop_codon")
#: Runs without a health record (trained before birdie_hf recorded one): a held-out next-base NLL within this of the
#: base composition's means the run learned nothing beyond composition.
PLATEAU_NATS = 0.001


def primary_decision(
    results: dict,
    arm: str = PRIMARY[0],
    reference: str = PRIMARY[1],
    reading: str = PRIMARY[2],
    tasks: tuple = PRIMARY_TASKS,
):
    """The protocol's decision rule on the instrument's probe results: `(verdict, rows)`.

    Birdie helps if `arm - reference` is better on at least 3 tasks and worse on none; hurts if worse on at least 3
    and better on none; otherwise no detectable difference; uninterpretable if `reference` beats the random-init
    control on no task (the protocol's other uninterpretable case, a failed run, stops `evaluate` before this). Each row says whether either arm beats the random-init
    control on that task (a task where neither does is one the instrument cannot see at this scale; it still counts).
    """
    if sorted(results["tasks"]) != sorted(tasks):
        raise SystemExit(
            f"error: the rule counts the tasks {sorted(tasks)}; these results hold {sorted(results['tasks'])}."
        )
    rows = []
    for task, result in results["tasks"].items():
        found = {(d["readout"], d["reference"], d["reading"]): d for d in result["differences"]}
        primary = found.get((arm, reference, reading))
        if primary is None:
            raise SystemExit(f"error: no {arm} - {reference} ({reading}) difference for task {task}.")
        seen = [
            name
            for name in (arm, reference)
            if found.get((name, "random-init", reading), {}).get("decision") == "better"
        ]
        rows.append({"task": task, **primary["difference"], "decision": primary["decision"], "beat_random_init": seen})
    better = sum(r["decision"] == "better" for r in rows)
    worse = sum(r["decision"] == "worse" for r in rows)
    if not any(reference in r["beat_random_init"] for r in rows):
        verdict = (
            f"uninterpretable: {reference} beats the random-init control on no task (the instrument is blind here)"
        )
    elif better >= 3 and worse == 0:
        verdict = "Birdie helps at this scale"
    elif worse >= 3 and better == 0:
        verdict = "Birdie hurts at this scale"
    else:
        verdict = "no detectable difference at this scale"
    return verdict, rows


def contrasts(results: dict, pairs: list[tuple[str, str]], readings=("causal", "bidirectional")) -> list[str]:
    """Markdown rows `task | contrast | reading | difference [95% interval] | decision` for `pairs`."""
    lines = ["| task | contrast | reading | test MCC difference [95% interval] | decision |", "|---|---|---|---|---|"]
    for task, result in results["tasks"].items():
        found = {(d["readout"], d["reference"], d["reading"]): d for d in result["differences"]}
        for arm, reference in pairs:
            for reading in readings:
                d = found.get((arm, reference, reading))
                if d is not None:
                    i = d["difference"]
                    lines.append(
                        f"| {task} | {arm} - {reference} | {reading} | {i['estimate']:+.3f} [{i['low']:+.3f}, "
                        f"{i['high']:+.3f}] | {d['decision']} |"
                    )
    return lines


def decide(args) -> int:
    """Apply the protocol's decision rule to `<output_root>/evaluation/probe_results.json` and print the tables."""
    path = Path(args.output_root) / "evaluation" / "probe_results.json"
    results = json.loads(path.read_text())
    verdict, rows = primary_decision(results)
    lines = [
        f"## Primary: {PRIMARY[0]} - {PRIMARY[1]}, frozen-probe test MCC, {PRIMARY[2]} reading",
        "",
        "| task | difference [95% interval] | decision | beats the random-init control (same reading) |",
        "|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['task']} | {r['estimate']:+.3f} [{r['low']:+.3f}, {r['high']:+.3f}] | {r['decision']} | "
            f"{', '.join(r['beat_random_init']) or 'neither (the instrument cannot see this task at this scale)'} |"
        )
    lines += ["", f"**Verdict (pre-registered rule): {verdict}.**", "", "## Secondary contrasts", ""]
    arms = [a for a in ARMS if a != "ntp"]
    pairs = [("birdie_dna", "dna_static"), ("birdie_dna", "birdie_paper")] + [(a, "random-init") for a in ARMS]
    lines += contrasts(results, pairs)
    lines += [
        "",
        "Every arm against `ntp`, both readings (the primary contrast's bidirectional reading among them):",
        "",
    ]
    lines += contrasts(results, [(a, "ntp") for a in arms])
    report = "\n".join(lines)
    print(report)
    if args.output:
        Path(args.output).write_text(report + "\n")
    return 0


def _run_model(shape, training_args, tokenizer):
    """A new model of `shape` (the run's `PretrainingArguments`) for one in-process run (`health`, `lease`, `lr_check`),
    seeded with the run's seed, built as the recipe builds it."""
    from birdie_hf.pretraining import build_model

    return build_model(shape, training_args, tokenizer)[0]


#: Shares of the run at which the `health` table reports each run's health.
HEALTH_FRACTIONS = (0.05, 0.1, 0.15, 0.2)


@contextlib.contextmanager
def _quiet_in_threads(threads: int):
    """The library's logger at ERROR (the runs' own warnings, e.g. the health warning, would drown the progress
    lines) and torch on `threads` threads, both put back on exit."""
    import logging

    import torch

    library = logging.getLogger("birdie_hf")
    level, previous = library.level, torch.get_num_threads()
    library.setLevel(logging.ERROR)
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        library.setLevel(level)
        torch.set_num_threads(previous)


def health(args) -> int:
    """Train every arm at every seed under each protocol to `--stop_fraction` of its schedule, in this process, and
    read its health (held-out next-base loss against the composition of the same bases, the layer-1 constant
    fraction, and the mean cosine between the four base embeddings) every `--every` steps. Appends one JSON line per
    reading to `<output_root>/health.jsonl` (runs already there are skipped, so the command resumes) and prints the
    table of `health_table`."""
    import torch
    from transformers import HfArgumentParser, TrainerCallback

    from birdie_hf import (
        BirdieTrainer,
        BirdieTrainingArguments,
        build_dna_tokenizer,
        load_genome_windows,
    )
    from birdie_hf.cli import parse_args_with_config
    from birdie_hf.health import measure_health
    from birdie_hf.heldout import health_windows
    from birdie_hf.presets import PRESETS
    from birdie_hf.pretraining import PretrainingArguments

    root = Path(args.output_root)
    root.mkdir(parents=True, exist_ok=True)
    path = root / "health.jsonl"
    done = set()
    if path.exists():  # resume: keep finished runs, drop the readings of a run that was cut off (it reruns whole)
        records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        done = {(r["protocol"], r["arm"], r["seed"]) for r in records if r.get("last")}
        kept = [r for r in records if (r["protocol"], r["arm"], r["seed"]) in done]
        if len(kept) < len(records):
            path.write_text("".join(json.dumps(r) + "\n" for r in kept), encoding="utf-8")
    with _quiet_in_threads(args.threads or os.cpu_count() or 1):  # both restored after, for callers in-process
        geometry, budget = SCALES[args.scale]
        for protocol in args.protocols:
            for seed in args.seeds:
                for arm in args.arms:
                    if (protocol, arm, seed) in done:
                        print(f"{protocol} {arm} seed {seed}: already measured, skipped")
                        continue
                    argv = [
                        *geometry,
                        *PROTOCOLS[protocol][args.scale],
                        *ARMS[arm],
                        "--max_tokens",
                        str(args.max_tokens or budget),
                    ]
                    argv += ["--seed", str(seed), "--output_dir", str(root / "health-run"), "--save_strategy", "no"]
                    argv += [
                        "--report_to",
                        "none",
                        "--disable_tqdm",
                        "true",
                        "--overwrite_output_dir",
                        "true",
                        *args.extra,
                    ]
                    parser = HfArgumentParser((PretrainingArguments, BirdieTrainingArguments))
                    shape, training_args = parse_args_with_config(parser, argv, presets=PRESETS)
                    tokenizer = build_dna_tokenizer(model_max_length=training_args.max_length)
                    data = load_genome_windows(args.genomes, tokenizer, window_length=shape.window_length, seed=seed)
                    model = _run_model(shape, training_args, tokenizer)
                    windows = health_windows(data["validation"], seed)
                    base_ids = tokenizer.convert_tokens_to_ids(list("ACGT"))
                    stop = max(1, math.ceil(args.stop_fraction * training_args.max_steps))
                    start = time.time()

                    class Reader(TrainerCallback):
                        def on_step_end(self, _args, state, control, model=None, **kwargs):
                            step = state.global_step
                            if step % args.every and step != stop:
                                return control
                            reading = measure_health(model, windows.to(model.device), base_ids, step).to_dict()
                            embeddings = model.get_input_embeddings().weight[base_ids].detach().float()
                            unit = embeddings / embeddings.norm(dim=1, keepdim=True)
                            cosine = (unit @ unit.T)[~torch.eye(len(base_ids), dtype=torch.bool)].mean()
                            record = {"protocol": protocol, "arm": arm, "seed": seed, **reading}
                            record.update(base_embedding_cosine=float(cosine), max_steps=state.max_steps)
                            record.update(seconds=round(time.time() - start, 1), last=step >= stop)
                            with open(path, "a", encoding="utf-8") as handle:
                                handle.write(json.dumps(record) + "\n")
                            if step >= stop:
                                control.should_training_stop = True
                            return control

                    trainer = BirdieTrainer(
                        model=model,
                        args=training_args,
                        train_dataset=data["train"],
                        eval_dataset=data["validation"],
                        processing_class=tokenizer,
                        callbacks=[Reader()],
                    )
                    with contextlib.redirect_stdout(io.StringIO()):  # the runs' own console lines
                        trainer.train()
                    last = [
                        r
                        for r in map(json.loads, path.read_text().splitlines())
                        if r["protocol"] == protocol and r["arm"] == arm and r["seed"] == seed
                    ][-1]
                    print(
                        f"{protocol} {arm} seed {seed}: step {last['step']}, next-base {last['next_base_loss']:.4f}, "
                        f"composition {last['composition_loss']:.4f}, {time.time() - start:.0f} s",
                        flush=True,
                    )
    print(health_table(path))
    return 0


def health_table(path: Path) -> str:
    """Markdown: per protocol, arm and seed, the gain over the composition (nats, composition minus next-base loss)
    at each of `HEALTH_FRACTIONS` of the schedule, the first step below the composition (gain >= the library's
    margin), and at the last reading the layer-1 constant fraction, the base-embedding cosine and the trainer's verdict
    (`birdie_hf.health.health_summary`: collapsed, at the composition while reading the input, or learning; the last
    two readings decide); then per protocol and arm, how many runs got each verdict."""
    from birdie_hf.health import AT_COMPOSITION_MARGIN, health_summary

    records = [json.loads(line) for line in path.read_text().splitlines()]
    runs: dict[tuple, list] = {}
    for record in records:
        runs.setdefault((record["protocol"], record["arm"], record["seed"]), []).append(record)
    heads = " | ".join(f"gain at {f:.0%}" for f in HEALTH_FRACTIONS)
    lines = [
        f"| protocol | arm | seed | {heads} | first step below | last reading: step, gain | constant fraction | "
        "base-embedding cosine | verdict |",
        "|---|---|---|" + "---|" * len(HEALTH_FRACTIONS) + "---|---|---|---|---|",
    ]
    verdicts: dict[tuple, list] = {}
    for (protocol, arm, seed), readings in sorted(runs.items(), key=lambda item: (item[0][0] != "v2", item[0])):
        readings.sort(key=lambda r: r["step"])
        total = readings[-1]["max_steps"]
        cells = []
        for fraction in HEALTH_FRACTIONS:
            at = [r for r in readings if r["step"] <= math.ceil(fraction * total)]
            reached = readings[-1]["step"] >= math.floor(fraction * total)
            cells.append(f"{at[-1]['gain']:+.4f}" if at and reached else "-")
        below = [r["step"] for r in readings if r["gain"] >= AT_COMPOSITION_MARGIN]
        last = readings[-1]
        status = health_summary([{"health": reading} for reading in readings])["status"]  # the trainer's verdict
        verdict = {"collapsed": "**collapsed**", "at_composition": "at composition"}.get(status, "learning")
        verdicts.setdefault((protocol, arm), []).append(verdict)
        lines.append(
            f"| {protocol} | {arm} | {seed} | {' | '.join(cells)} | {below[0] if below else 'never'} | "
            f"{last['step']}, {last['gain']:+.4f} | {last['constant_fraction']:.4f} | "
            f"{last['base_embedding_cosine']:.2f} | {verdict} |"
        )
    lines += [
        "",
        "| protocol | arm | runs | collapsed | at the composition, not collapsed | learning |",
        "|---|---|---|---|---|---|",
    ]
    for (protocol, arm), found in sorted(verdicts.items(), key=lambda item: (item[0][0] != "v2", item[0])):
        lines.append(
            f"| {protocol} | {arm} | {len(found)} | {found.count('**collapsed**')} | {found.count('at composition')} "
            f"| {found.count('learning')} |"
        )
    return "\n".join(lines)


def scale(args) -> int:
    """A short run at BirdieDNA's scale, in this process; prints step time, tokens/s, peak GPU memory and the time that
    1B tokens would take on this GPU."""
    import torch
    from transformers import HfArgumentParser

    from birdie_hf import BirdieTrainer, BirdieTrainingArguments, build_dna_tokenizer
    from birdie_hf.cli import parse_args_with_config
    from birdie_hf.presets import PRESETS
    from birdie_hf.pretraining import (
        PRETRAINING_DEFAULTS,
        PretrainingArguments,
        build_datasets,
        build_model,
        held_out_windows,
    )

    if not torch.cuda.is_available():
        raise SystemExit("error: the scale measurement needs a CUDA GPU (none is visible).")
    argv = ["--preset", "dna", *BIRDIEDNA_SCALE, "--max_steps", str(args.max_steps), "--save_strategy", "no"]
    argv += ["--report_to", "none", "--output_dir", str(Path(args.output_root) / "scale"), "--overwrite_output_dir"]
    argv += ["true", *args.extra]
    parser = HfArgumentParser((PretrainingArguments, BirdieTrainingArguments))
    script_args, training_args = parse_args_with_config(parser, argv, defaults=PRETRAINING_DEFAULTS, presets=PRESETS)
    batch, example_length = training_args.per_device_train_batch_size, training_args.example_length
    torch.cuda.reset_peak_memory_stats()
    start = time.time()
    tokenizer = build_dna_tokenizer(model_max_length=training_args.max_length)
    model, tokenizer = build_model(script_args, training_args, tokenizer)
    data = build_datasets(script_args, tokenizer, training_args.seed)
    trainer = BirdieTrainer(
        model=model,
        args=training_args,
        train_dataset=data["train"],
        eval_dataset=held_out_windows(script_args, training_args, data),
        processing_class=tokenizer,
    )
    results = trainer.train().metrics
    wall = time.time() - start
    tokens = args.max_steps * batch * example_length
    per_token = results["train_runtime"] / tokens
    report = {
        "gpu": torch.cuda.get_device_name(),
        "steps": args.max_steps,
        "example_tokens_per_step": batch * example_length,
        "train_runtime_s": results["train_runtime"],
        "wall_s_including_data_and_model_setup": wall,
        "example_tokens_per_s": tokens / results["train_runtime"],
        "peak_gpu_memory_gib": torch.cuda.max_memory_allocated() / 2**30,
        "projected_hours_for_1B_tokens": 1e9 * per_token / 3600,
        "projected_steps_for_1B_tokens": int(1e9 // (batch * example_length)),
    }
    print(json.dumps(report, indent=1))
    (Path(args.output_root) / "scale.json").write_text(json.dumps(report, indent=1) + "\n")
    return 0


#: Protocol v2, the pilot inside one GPU lease (benchmarks/README.md, "Protocol v2"): the model, geometry and rules,
#: fixed before any run. The learning rate follows the rule lr = 3e-4 * 512 / hidden_size (BirdieDNA's 3e-4 at
#: hidden 512, scaled inversely with width), the same for every arm; warm-up a tenth of the run, cosine decay.
PILOT_SHAPE = [
    "--hidden_size",
    "384",
    "--num_hidden_layers",
    "6",
    "--num_attention_heads",
    "6",
    "--window_length",
    "1024",
]
PILOT_ARGS = [
    "--max_length", "2064",
    "--example_length", "1032",
    "--per_device_train_batch_size", "32",
    "--learning_rate", f"{3e-4 * 512 / 384:.1e}",
    "--bf16", "true",
    "--logging_steps", "50",
]  # fmt: skip
#: Tokens per run: the most that fit the budget at the measured throughput, at most PILOT_MAX_TOKENS; fewer than
#: PILOT_MIN_TOKENS is refused (the pilot would not be the 10-30x scale-up it exists for).
PILOT_MIN_TOKENS, PILOT_MAX_TOKENS = 10_000_000, 30_000_000
#: The read-outs' share of a lease (the ten probe tasks, then the zero-shot read-outs), reserved before training is
#: planned.
PILOT_READOUT_RESERVE_S = 200
#: The read-out's reduced probe grid: the middle and the last layer, both poolings, two regularisation strengths.
PILOT_PROBE_LAYERS, PILOT_PROBE_CS = (0.5, 1.0), (0.1, 1.0)
#: Seconds kept at the end of a lease for writing its files: no read-out starts later than this before the deadline.
LEASE_WRITE_MARGIN_S = 20
#: The secondary, zero-shot read-outs (amendment 3): the instrument's variant-effect AUROC and masked-base NLL on the
#: held-out bacteria (`genome_tasks.HELD_OUT_GENOMES`), both flanks and the left flank, after the probe tasks; not
#: started with less than PILOT_ZERO_SHOT_MIN_S left before the write margin, and not part of the verdict.
PILOT_ZERO_SHOT = {"variants_per_class": 250, "sites": 1000, "markov_orders": (2, 5)}
PILOT_ZERO_SHOT_MIN_S = 40
SMOKE_ZERO_SHOT = {"variants_per_class": 6, "sites": 8, "markov_orders": (1, 2)}
#: Every run must have left the base composition by this share of its steps (the health gate).
PILOT_HEALTH_GATE = 0.2
PILOT_ARMS = ["ntp", "birdie_paper", "birdie_dna", "dna_static"]
#: The corpus: bacteria of species the suite holds out of nothing (E. coli, K. pneumoniae), the fungus and the human
#: chr22 segments; never human chr20 (the human tasks) nor the suite's three bacterial species.
PILOT_CORPUS = [
    *CORPUS,
    SHARED_GENOMES / "ustilago_maydis_521.fa.gz",
    SHARED_GENOMES / "human_chr22_segments.fa.gz",
]
#: The tasks the decision rule counts: the four bacterial tasks and the six human chr20 tasks.
PILOT_TASKS = (
    "gene_strand", "coding_vs_intergenic", "start_codon", "stop_codon",
    "human_promoter", "human_splice_donor", "human_splice_acceptor", "human_cpg_island", "human_ctcf",
    "human_coding_vs_utr",
)  # fmt: skip
#: `--smoke`: the same code path at a size a CPU test runs in a minute.
SMOKE_SHAPE = [
    "--hidden_size",
    "32",
    "--num_hidden_layers",
    "1",
    "--num_attention_heads",
    "2",
    "--window_length",
    "128",
]
SMOKE_ARGS = [
    "--max_length", "560", "--example_length", "280", "--per_device_train_batch_size", "4",
    "--learning_rate", "2e-3", "--logging_steps", "5", "--policy_eval_interval", "4", "--policy_warmup_steps", "2",
    "--policy_update_iterations", "5", "--policy_num_candidates", "32", "--policy_hidden_size", "16",
]  # fmt: skip


class _Tee(io.TextIOBase):
    """Writes to the console and to the lease's log file."""

    def __init__(self, *streams):
        self.streams = streams

    def write(self, text):
        for stream in self.streams:
            stream.write(text)
            stream.flush()
        return len(text)


def _run_args(shape: list, extra: list, arm: str, seed: int, max_steps: int, output_dir: Path):
    """`(PretrainingArguments, BirdieTrainingArguments)` of one run: the geometry, the arm's flags, the seed and steps."""
    from transformers import HfArgumentParser

    from birdie_hf import BirdieTrainingArguments
    from birdie_hf.cli import parse_args_with_config
    from birdie_hf.presets import PRESETS
    from birdie_hf.pretraining import PretrainingArguments

    argv = [*shape, *extra, *ARMS[arm], "--max_steps", str(max_steps), "--seed", str(seed)]
    argv += ["--output_dir", str(output_dir), "--save_strategy", "no", "--report_to", "none", "--disable_tqdm", "true"]
    argv += ["--overwrite_output_dir", "true"]
    return parse_args_with_config(
        HfArgumentParser((PretrainingArguments, BirdieTrainingArguments)), argv, presets=PRESETS
    )


def _train_one(shape, training_args, tokenizer, data, deadline: float, gate_fraction: float):
    """Train one run in this process, stopping at `deadline` (time.time()); returns `(model, record)` with the
    health reading at `gate_fraction` of the steps and at the end, the steps done and the throughput."""
    from transformers import TrainerCallback

    from birdie_hf import BirdieTrainer
    from birdie_hf.health import measure_health
    from birdie_hf.heldout import health_windows

    seed = training_args.seed
    model = _run_model(shape, training_args, tokenizer)
    windows = health_windows(data["validation"], seed)
    base_ids = tokenizer.convert_tokens_to_ids(list("ACGT"))
    gate_step = max(1, math.ceil(gate_fraction * training_args.max_steps))
    record = {"gate_step": gate_step, "cut_at_deadline": False, "step_times": [], "fast_path": training_args.fast_path}

    class Watch(TrainerCallback):
        def on_step_end(self, _args, state, control, model=None, **kwargs):
            record["step_times"].append(time.perf_counter())
            if state.global_step == gate_step:
                record["gate"] = measure_health(model, windows.to(model.device), base_ids, gate_step).to_dict()
            if time.time() > deadline:
                record["cut_at_deadline"] = control.should_training_stop = True
            return control

    trainer = BirdieTrainer(
        model=model,
        args=training_args,
        train_dataset=data["train"],
        eval_dataset=data["validation"],
        processing_class=tokenizer,
        callbacks=[Watch()],
    )
    start = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):  # the run's own console lines
        trainer.train()
    record["seconds"] = round(time.perf_counter() - start, 1)
    record["steps"] = trainer.state.global_step
    record["tokens"] = trainer.state.num_input_tokens_seen
    record["logged_losses"] = [[logs["step"], logs["loss"]] for logs in trainer.state.log_history if "loss" in logs]
    record["final"] = measure_health(
        trainer.model, windows.to(trainer.model.device), base_ids, record["steps"]
    ).to_dict()
    return trainer.model, record


def for_reading(model):
    """A model trained in this process as the read-outs take it: in eval mode, attending with sdpa, its parameters in
    bf16 on CUDA (its rotary frequencies still float32, as in training under autocast: `cast_parameters`). The
    read-outs pass the collator's dense prefix-LM mask, which a model trained on the GPU fast path (flex attention)
    would read through a mask function recompiled for every batch shape; sdpa reads it directly, as it reads every
    saved checkpoint (the attention implementation is not saved)."""
    import torch

    from birdie_hf.modeling import cast_parameters

    if model.config._attn_implementation != "sdpa":
        model.set_attn_implementation("sdpa")
    if torch.cuda.is_available():
        cast_parameters(model, torch.bfloat16)
    return model.eval()


#: The plain step: what a run falls back to when the GPU fast path fails on the lent machine.
PLAIN_STEP_FLAGS = ["--fast_path", "off", "--attn_implementation", "sdpa"]


def _train_or_fall_back(shape_flags, flags, arm, seed, steps, output_dir, tokenizer, data, deadline, gate_fraction):
    """`_train_one` for one run; if the GPU fast path fails on this machine (anything but a divergence), the run once
    more with PLAIN_STEP_FLAGS after `flags`, compiled graphs discarded. `deadline()` gives each try its deadline when
    it starts. Returns `(model, record, fell_back)`: every later run must then take PLAIN_STEP_FLAGS too."""
    from birdie_hf.trainer import TrainingDivergedError

    shape, run_args = _run_args(shape_flags, flags, arm, seed, steps, output_dir)
    try:
        return (*_train_one(shape, run_args, tokenizer, data, deadline(), gate_fraction), False)
    except Exception as error:
        if run_args.fast_path != "on" or isinstance(error, TrainingDivergedError):
            raise
        import torch._dynamo

        torch._dynamo.reset()  # nothing compiled for the failed path is reused
        print(f"the GPU fast path failed ({type(error).__name__}: {str(error)[:300]}); without it", flush=True)
    shape, run_args = _run_args(shape_flags, [*flags, *PLAIN_STEP_FLAGS], arm, seed, steps, output_dir)
    return (*_train_one(shape, run_args, tokenizer, data, deadline(), gate_fraction), True)


def _steps_per_second(step_times: list, skip: int) -> float:
    """Steady-state steps/s from the end times of steps, the first `skip` (compilation, warm-up) left out."""
    times = step_times[skip:]
    return (len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 else 0.0


def lease(args) -> int:
    """Protocol v2 in one call: measure the throughput, plan the tokens per run by the committed rule, train every arm
    at every seed in this process, read every model and its random-init control with the instrument, apply the
    decision rule, and write at most 8 files to `--output_dir` (see benchmarks/README.md, "Protocol v2")."""

    import shutil
    import tempfile

    import torch
    import transformers

    from birdie_hf import build_dna_tokenizer, load_genome_windows
    from birdie_hf.evaluation.instrument import (
        Arm,
        ProbeSuiteConfig,
        load_task,
        plot_results,
        results_markdown,
        run_probe_suite,
    )

    start = time.time()
    deadline = start + args.budget_s
    scratch = Path(tempfile.mkdtemp(prefix="birdie-lease-"))  # the trainers' folders: nothing in them comes back
    out = Path(args.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    log = open(out / "lease.log", "w", encoding="utf-8")
    console, sys.stdout = sys.stdout, _Tee(sys.stdout, log)
    try:
        shape_flags, extra = (SMOKE_SHAPE, SMOKE_ARGS) if args.smoke else (PILOT_SHAPE, PILOT_ARGS)
        extra = [*extra, *args.extra]
        min_tokens, max_tokens = (0, args.max_tokens or 20_000) if args.smoke else (
            PILOT_MIN_TOKENS, args.max_tokens or PILOT_MAX_TOKENS)  # fmt: skip
        reserve = args.readout_reserve_s if args.readout_reserve_s is not None else PILOT_READOUT_RESERVE_S
        device = torch.cuda.get_device_name() if torch.cuda.is_available() else "CPU"
        versions = {"torch": torch.__version__, "transformers": transformers.__version__, "device": device}
        print(f"lease: {versions}; budget {args.budget_s:.0f} s, read-out reserve {reserve} s", flush=True)
        task_names = list(args.tasks or (PILOT_TASKS if not args.smoke else []))
        tasks_dir = Path(args.tasks_dir)
        if not task_names:
            task_names = sorted(p.name for p in tasks_dir.iterdir() if (p / "test.csv").is_file())
        missing = [t for t in task_names if not (tasks_dir / t / "test.csv").is_file()]
        if missing:
            raise SystemExit(f"error: --tasks_dir {str(tasks_dir)!r} lacks the tasks {missing}.")
        tasks = {name: load_task(tasks_dir / name) for name in task_names}
        heldout = _heldout_sources(Path(args.heldout_dir) if args.heldout_dir else tasks_dir.parent / "heldout")
        shape, probe_args = _run_args(shape_flags, extra, "birdie_dna", args.seeds[0], 10**6, scratch)
        tokenizer = build_dna_tokenizer(model_max_length=probe_args.max_length)
        data = load_genome_windows(args.genomes, tokenizer, window_length=shape.window_length, seed=0)
        tokens_per_step = probe_args.per_device_train_batch_size * probe_args.example_length * probe_args.world_size

        # 1. Throughput: a short run of the costliest arm (policy evaluations included), warm-up steps left out.
        probe_steps = args.probe_steps
        _, probe, fell_back = _train_or_fall_back(
            shape_flags,
            extra,
            "birdie_dna",
            args.seeds[0],
            probe_steps,
            scratch,
            tokenizer,
            data,
            lambda: deadline,
            1.0,
        )
        extra = [*extra, *PLAIN_STEP_FLAGS] if fell_back else extra
        steps_per_s = _steps_per_second(probe["step_times"], max(1, probe_steps // 4))
        runs = [(arm, seed) for seed in args.seeds for arm in PILOT_ARMS]
        train_budget = deadline - time.time() - reserve
        fit_tokens = 0.9 * max(train_budget, 0) * steps_per_s * tokens_per_step / len(runs)
        steps = int(min(fit_tokens, max_tokens) // tokens_per_step)
        plan = {
            "tokens_per_step": tokens_per_step,
            "measured_steps_per_s": round(steps_per_s, 3),
            "measured_tokens_per_s": round(steps_per_s * tokens_per_step),
            "runs": len(runs),
            "training_budget_s": round(train_budget, 1),
            "steps_per_run": steps,
            "tokens_per_run": steps * tokens_per_step,
            "rule": "tokens per run = min(max_tokens, 0.9 x training budget x measured tokens/s / runs)",
            "fast_path": probe["fast_path"],
        }
        print(f"plan: {json.dumps(plan)}", flush=True)
        record = {"protocol": "v2 (pilot)" if not args.smoke else "v2 (smoke)", "versions": versions, "plan": plan}
        if steps < 1 or steps * tokens_per_step < min_tokens:
            record["verdict"] = (
                f"not run: {steps * tokens_per_step:,} tokens per run fit the budget at the measured "
                f"{plan['measured_tokens_per_s']:,} tokens/s, below the protocol's minimum of {min_tokens:,}"
            )
            print(record["verdict"], flush=True)
            _write_lease(out, record, None, None)
            return 3

        # 2. Every arm at every seed, one after another in this process.
        models, training = {}, []
        for arm, seed in runs:
            row = {"arm": arm, "seed": seed}
            if time.time() > deadline - reserve:
                training.append({**row, "status": "not run (budget spent)"})
                print(f"{arm} seed {seed}: not run, the budget is spent", flush=True)
                continue
            model, result, fell_back = _train_or_fall_back(
                shape_flags, extra, arm, seed, steps, scratch, tokenizer, data, lambda: deadline - reserve,
                PILOT_HEALTH_GATE,
            )  # fmt: skip
            if fell_back:
                extra = [*extra, *PLAIN_STEP_FLAGS]
                record["plan"]["fast_path"] = f"off from {arm} seed {seed} on (it failed there)"
            gate = result.get("gate") or {}
            row.update(
                status="cut at the deadline" if result["cut_at_deadline"] else "trained",
                steps=result["steps"],
                seconds=result["seconds"],
                tokens_per_s=round(result["steps"] * tokens_per_step / max(result["seconds"], 1e-9)),
                gate_step=result["gate_step"],
                gate_passed=bool(gate) and not gate.get("at_composition", True),
                gate_next_base_loss=gate.get("next_base_loss"),
                final_next_base_loss=result["final"]["next_base_loss"],
                composition_loss=result["final"]["composition_loss"],
            )
            training.append(row)
            print(
                f"{arm} seed {seed}: {row['status']}, {row['steps']} steps in {row['seconds']:.0f} s, next-base "
                f"{row['final_next_base_loss']:.4f} (composition {row['composition_loss']:.4f}), health gate "
                f"{'passed' if row['gate_passed'] else 'FAILED'}",
                flush=True,
            )
            if row["status"] == "trained":
                models[(arm, seed)] = for_reading(model)
        record["training"] = training

        # The training record is on disk before any read-out: a read-out cut by the call's limit loses only itself.
        record["verdict"] = "not decided: the read-outs had not finished"
        _write_lease(out, record, None, None)

        # 3. The read-outs, task by task in the protocol's order, each written as it ends; a task the budget does
        # not reach is reported as not read.
        arms = [
            Arm(arm, str(seed), model, tokenizer, "pretrained", f"{arm}@{seed} (in memory)")
            for (arm, seed), model in models.items()
        ]
        results, baseline = None, None
        if arms:
            trained = {arm for arm, _ in models}
            config = ProbeSuiteConfig(
                random_init_seeds=tuple(sorted({int(a.seed) for a in arms})),
                Cs=PILOT_PROBE_CS,
                probe_layer_fractions=PILOT_PROBE_LAYERS,
                keep_predictions=True,
                batch_size=256 if torch.cuda.is_available() else 64,
                n_resamples=args.n_resamples,
            )
            readout_start = time.time()
            baseline = [b for b in BASELINES if b in trained] or None
            record["tasks_not_read"] = []
            for name, task in tasks.items():
                if time.time() > deadline - LEASE_WRITE_MARGIN_S:
                    record["tasks_not_read"].append(name)
                    print(f"{name}: not read, the budget is spent", flush=True)
                    continue
                one = run_probe_suite(arms, {name: task}, config, baseline=baseline, show_progress=False)
                if results is None:
                    results = one
                else:
                    results["tasks"].update(one["tasks"])
                record["readout_seconds"] = round(time.time() - readout_start, 1)
                print(f"{name}: read ({record['readout_seconds']:.0f} s of read-outs so far)", flush=True)
                _write_lease(out, record, results, (results_markdown, plot_results), plot=False)
        # 4. The pre-registered rule: both primary arms at every seed, every task read, every run past the gate.
        failed_gate = sorted({r["arm"] for r in training if r.get("status") == "trained" and not r["gate_passed"]})
        failed_primary = [arm for arm in failed_gate if arm in PRIMARY[:2]]
        seeds_of = {arm: sum(1 for a, _ in models if a == arm) for arm in PRIMARY[:2]}
        if results is None or min(seeds_of.values()) < len(args.seeds):
            record["verdict"] = f"not decided: the primary arms trained at {seeds_of} of {len(args.seeds)} seeds"
        elif record.get("tasks_not_read"):
            record["verdict"] = f"not decided: the tasks {record['tasks_not_read']} were not read within the budget"
        else:
            verdict, rows = primary_decision(results, tasks=tuple(task_names))
            if failed_primary:
                verdict = (
                    f"uninterpretable: {', '.join(failed_primary)} failed the health gate (the rule alone would "
                    f"have said: {verdict})"
                )
            record.update(verdict=verdict, primary=rows)
        record["health_gate_failed"] = failed_gate
        print(f"verdict: {record['verdict']} ({time.time() - start:.0f} s so far)", flush=True)
        _write_lease(out, record, results, (results_markdown, plot_results))  # on disk before the zero-shot read-outs

        # 5. The secondary zero-shot read-outs, in the time left; not part of the verdict.
        def started(status: dict) -> None:  # on disk before it starts: a call its limit cuts says where it was
            record["zero_shot"] = status
            _write_lease(out, record, results, (results_markdown, None), probe_files=False)

        zero_shot, record["zero_shot"] = _zero_shot_readout(arms, heldout, args, baseline, deadline, started)
        record["seconds"] = round(time.time() - start, 1)
        print(f"zero-shot: {record['zero_shot']['status']}; {record['seconds']:.0f} s in all", flush=True)
        _write_lease(out, record, results, (results_markdown, None), probe_files=False, zero_shot=zero_shot)
        return 0
    finally:
        sys.stdout = console
        log.close()
        shutil.rmtree(scratch, ignore_errors=True)


def copy_heldout_genomes(shared: Path, folder: Path) -> list[str]:
    """Copy the zero-shot read-outs' held-out genomes and their gene calls (`genome_tasks.HELD_OUT_GENOMES`) from the
    shared data folder into `folder` as `<name>.fa.gz` and `<name>.prodigal.gff.gz`; returns their names."""
    import shutil

    from birdie_hf.evaluation.genome_tasks import HELD_OUT_GENOMES, shared_genome_sources

    folder.mkdir(parents=True, exist_ok=True)
    for source in shared_genome_sources(shared, HELD_OUT_GENOMES):
        shutil.copyfile(source.fasta, folder / f"{source.name}.fa.gz")
        shutil.copyfile(source.gff, folder / f"{source.name}.prodigal.gff.gz")
    return list(HELD_OUT_GENOMES)


def _heldout_sources(folder: Path) -> list:
    """The zero-shot read-outs' held-out genomes and gene calls in `folder` (as `copy_heldout_genomes` writes them),
    checked before anything trains; a missing file stops the lease with one line naming it."""
    from birdie_hf.evaluation.genome_tasks import HELD_OUT_GENOMES, GenomeSource

    sources = [
        GenomeSource(name, str(folder / f"{name}.fa.gz"), str(folder / f"{name}.prodigal.gff.gz"))
        for name in HELD_OUT_GENOMES
    ]
    for path in (p for s in sources for p in (s.fasta, s.gff)):
        if not Path(path).is_file():
            raise SystemExit(
                f"error: --heldout_dir {str(folder)!r} lacks {Path(path).name}, a held-out genome of the zero-shot "
                "read-outs (prepare_lease writes them to heldout/ beside tasks/)."
            )
    return sources


def _zero_shot_readout(
    arms: list, sources: list, args, baseline, deadline: float, started
) -> tuple[Optional[dict], dict]:
    """The instrument's zero-shot read-outs of every trained model and the random-init controls on the held-out
    genomes, if at least PILOT_ZERO_SHOT_MIN_S are left before the write margin, no model started after it; returns
    `(results or None, status)`, after calling `started(status)` as it begins. A failure is recorded as the status
    (with its traceback in the log), never raised: the verdict is already on disk."""
    import traceback

    import torch

    from birdie_hf.evaluation.zero_shot import ZeroShotConfig, run_zero_shot
    from birdie_hf.inference import trained_with_infilling

    stop = deadline - LEASE_WRITE_MARGIN_S
    left = stop - time.time()
    needed = 0 if args.smoke else PILOT_ZERO_SHOT_MIN_S
    if not arms:
        return None, {"status": "not read: no model was trained"}
    if left < needed:
        return None, {"status": f"not read: {max(left, 0):.0f} s were left, under the {needed} s it starts with"}
    config = ZeroShotConfig(
        **(SMOKE_ZERO_SHOT if args.smoke else PILOT_ZERO_SHOT),
        batch_size=128 if torch.cuda.is_available() else 32,
        n_resamples=args.n_resamples,
        random_init_seeds=tuple(sorted({int(a.seed) for a in arms})),
    )
    started({"status": f"started with {left:.0f} s left; the call ended before it did"})
    # An arm trained with infilling first: the random-init controls take its configuration, so they are read with
    # both flanks too, and every reading of every arm has its control.
    arms = sorted(arms, key=lambda arm: not trained_with_infilling(arm.model))
    began = time.time()
    try:
        results = run_zero_shot(arms, sources, args.genomes, config, baseline, show_progress=False, deadline=stop)
    except Exception as error:
        traceback.print_exc(file=sys.stdout)  # into lease.log
        return None, {"status": f"not read: {type(error).__name__}: {error}"}
    status = {"status": "read", "seconds": round(time.time() - began, 1), "sources": [s.name for s in sources]}
    return results, {**status, "variants_per_class": config.variants_per_class, "sites": config.sites}


def prepare_lease(args) -> int:
    """Everything a lease reads, in one folder to `carry` to the GPU machine (`../shared` does not travel): the
    protocol's corpus (`genomes/`), its ten tasks (`tasks/`), built from ../shared with the instrument's default
    settings, with the dev/test rows that occur verbatim in the corpus dropped (counts in `manifest.json`), and the
    zero-shot read-outs' held-out genomes with their gene calls (`heldout/`)."""
    import shutil

    from birdie_hf.evaluation.genome_tasks import build_genome_tasks, shared_genome_sources, write_genome_tasks
    from birdie_hf.evaluation.human_annotation_tasks import build_human_annotation_tasks, shared_annotation_paths
    from birdie_hf.evaluation.leakage import drop_leaked_sequences

    folder = Path(args.output_dir)
    shared = SHARED_GENOMES.parents[1]
    (folder / "genomes").mkdir(parents=True, exist_ok=True)
    corpus = []
    for path in PILOT_CORPUS:
        target = folder / "genomes" / path.name
        shutil.copyfile(path, target)
        corpus.append(str(target))
    raw = folder / "tasks_unchecked"
    write_genome_tasks(build_genome_tasks(shared_genome_sources(shared)), raw)
    write_genome_tasks(
        build_human_annotation_tasks(*shared_annotation_paths(shared)),
        raw,
        metadata_name="human_annotation_tasks.json",
    )
    dropped = {}
    for task in PILOT_TASKS:
        counts = drop_leaked_sequences(str(raw / task), corpus, str(folder / "tasks"))
        dropped[task] = {split: n for splits in counts.values() for split, n in splits.items()}
    shutil.rmtree(raw)
    heldout = copy_heldout_genomes(shared, folder / "heldout")
    size = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
    manifest = {
        "corpus": [Path(p).name for p in corpus],
        "tasks": list(PILOT_TASKS),
        "dropped": dropped,
        "heldout": heldout,
        "bytes": size,
    }
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
    print(json.dumps(manifest, indent=1))
    print(f"{folder}: {size / 2**20:.1f} MiB to carry")
    return 0


def _write_lease(
    out: Path,
    record: dict,
    results: Optional[dict],
    writers,
    plot: bool = True,
    probe_files: bool = True,
    zero_shot: Optional[dict] = None,
) -> None:
    """The lease's files: `lease.md` (plan, training, health gate, verdict, probe tables, zero-shot tables),
    `lease.json` (the same as data), `probe_results.json` (with per-example test predictions; with `probe_files`),
    `probe_results.png` (with `plot` too), `zero_shot.json` and `zero_shot.png`; `lease.log` is written as the run
    goes. Seven files, under the eight a lease may return. Each text file is replaced whole (written beside it, then
    renamed): a call its limit cuts mid-write leaves the previous version."""
    lines = [f"# Protocol {record['protocol']}", "", f"Versions: {json.dumps(record['versions'])}", ""]
    lines += ["## Plan (the committed rule applied to the measured throughput)", "", "```", json.dumps(record["plan"], indent=1), "```", ""]  # fmt: skip
    if record.get("training"):
        lines += [
            "## Training (health gate: below the composition at the gate step)",
            "",
            "| arm | seed | status | steps | s | tokens/s | gate step | gate | final next-base | composition |",
            "|---|---|---|---|---|---|---|---|---|---|",
        ]
        for r in record["training"]:
            if "steps" not in r:
                lines.append(f"| {r['arm']} | {r['seed']} | {r['status']} | | | | | | | |")
                continue
            lines.append(
                f"| {r['arm']} | {r['seed']} | {r['status']} | {r['steps']} | {r['seconds']:.0f} | {r['tokens_per_s']:,} "
                f"| {r['gate_step']} | {'passed' if r['gate_passed'] else 'FAILED'} | {r['final_next_base_loss']:.4f} "
                f"| {r['composition_loss']:.4f} |"
            )
        lines.append("")
    lines += [f"**Verdict (pre-registered rule): {record['verdict']}.**", ""]
    for row in record.get("primary", []):
        lines.append(
            f"- {row['task']}: {row['estimate']:+.3f} [{row['low']:+.3f}, {row['high']:+.3f}] {row['decision']}"
        )
    if results is not None:
        markdown, plotter = writers
        lines += ["", "## Frozen probes (test MCC, 95% intervals)", "", markdown(results)]
        if probe_files:
            _replace_text(out / "probe_results.json", json.dumps(results) + "\n")
            if plot:
                plotter(results, out / "probe_results.png", title=f"Protocol {record['protocol']}")
    if "zero_shot" in record:
        from birdie_hf.evaluation.instrument import plot_results
        from birdie_hf.evaluation.zero_shot import ZERO_SHOT_TITLE, zero_shot_markdown

        status = record["zero_shot"]
        lines += ["", "## Zero-shot read-outs (secondary: not part of the verdict)", ""]
        if zero_shot is None:
            lines.append(status["status"])
        else:
            lines.append(
                f"Read in {status['seconds']:.0f} s: {status['variants_per_class']} coding substitutions of each "
                f"consequence and {status['sites']} masked-base sites on the held-out genomes "
                f"{', '.join(status['sources'])}, with both flanks and with the left flank."
            )
            lines += ["", zero_shot_markdown(zero_shot)]
            _replace_text(out / "zero_shot.json", json.dumps(zero_shot) + "\n")
            plot_results(zero_shot, out / "zero_shot.png", title=ZERO_SHOT_TITLE)
    _replace_text(out / "lease.md", "\n".join(lines) + "\n")
    _replace_text(out / "lease.json", json.dumps(record, indent=1) + "\n")


def _replace_text(path: Path, text: str) -> None:
    """Write `text` to `path` whole (`runs.checkpoints.atomic_write`: beside it first, then renamed over it)."""
    from birdie_hf.runs.checkpoints import atomic_write

    atomic_write(str(path), lambda partial: Path(partial).write_text(text, encoding="utf-8"))


#: The learning-rate check at protocol v2's size: the rule's rate and a factor of two either side, next-token
#: prediction and the `dna` mixture, one seed, training and held-out loss only (`lr_check`).
LR_CHECK_RATES = (2e-4, 4e-4, 8e-4)
LR_CHECK_ARMS = ("ntp", "birdie_dna")
LR_CHECK_STEPS = 300


def lr_check(args) -> int:
    """Train LR_CHECK_ARMS x LR_CHECK_RATES at protocol v2's size for the same steps each (one seed; runs share the
    budget evenly, each stops at its share), and write `lr_check.{md,json}` to `--output_dir`: per run the steps and
    tokens trained, the last logged training loss and the held-out next-base loss against the composition's
    (`birdie_hf.health`). The protocol reads it by its committed rule (benchmarks/README.md, "Protocol v2")."""
    import tempfile

    import torch

    from birdie_hf import build_dna_tokenizer, load_genome_windows

    start = time.time()
    deadline = start + args.budget_s
    scratch = Path(tempfile.mkdtemp(prefix="birdie-lr-check-"))
    out = Path(args.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    shape_flags, extra = (SMOKE_SHAPE, SMOKE_ARGS) if args.smoke else (PILOT_SHAPE, PILOT_ARGS)
    rates = args.learning_rates or (LR_CHECK_RATES if not args.smoke else (1e-3, 2e-3))
    steps = args.lr_check_steps or (LR_CHECK_STEPS if not args.smoke else 6)
    shape, first = _run_args(shape_flags, [*args.extra, *extra], LR_CHECK_ARMS[0], args.seeds[0], steps, scratch)
    tokenizer = build_dna_tokenizer(model_max_length=first.max_length)
    data = load_genome_windows(args.genomes, tokenizer, window_length=shape.window_length, seed=0)
    device = torch.cuda.get_device_name() if torch.cuda.is_available() else "CPU"
    runs = [(arm, rate) for arm in LR_CHECK_ARMS for rate in rates]
    results = []
    extra = [*extra, *args.extra]
    for done, (arm, rate) in enumerate(runs):
        share = (deadline - time.time()) / (len(runs) - done)
        _, record, fell_back = _train_or_fall_back(
            shape_flags, [*extra, "--learning_rate", repr(rate)], arm, args.seeds[0], steps,
            scratch / f"{arm}-{rate:g}", tokenizer, data, lambda: time.time() + share, PILOT_HEALTH_GATE,
        )  # fmt: skip
        extra = [*extra, *PLAIN_STEP_FLAGS] if fell_back else extra
        losses = record["logged_losses"]
        final = record["final"]
        results.append(
            {
                "arm": arm,
                "learning_rate": rate,
                "steps": record["steps"],
                "planned_steps": steps,
                "tokens": record["tokens"],
                "seconds": record["seconds"],
                "last_training_loss": losses[-1][1] if losses else None,
                "heldout_next_base_loss": final.get("next_base_loss"),
                "composition_loss": final.get("composition_loss"),
                "fast_path": record["fast_path"],
            }
        )
        print(json.dumps(results[-1]), flush=True)
    lines = [
        f"Learning-rate check at {'the smoke size' if args.smoke else 'protocol v2' + chr(39) + 's size'} on {device}: "
        f"{steps} steps per run, seed {args.seeds[0]}",
        "",
        "| arm | learning rate | steps | tokens | s | last training loss | held-out next-base loss | composition |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {r['arm']} | {r['learning_rate']:g} | {r['steps']} | {r['tokens']:,} | {r['seconds']} | "
            f"{_fmt(r['last_training_loss'])} | {_fmt(r['heldout_next_base_loss'])} | {_fmt(r['composition_loss'])} |"
        )
    chosen = _chosen_rate(results, rates)
    lines += [
        "",
        f"By the protocol's rule (the rate whose worse arm has the lowest held-out next-base loss): {chosen}",
    ]
    (out / "lr_check.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (out / "lr_check.json").write_text(
        json.dumps({"device": device, "runs": results, "chosen": chosen}, indent=1) + "\n", encoding="utf-8"
    )
    print("\n".join(lines))
    return 0


def _fmt(value) -> str:
    return "-" if value is None else f"{value:.4f}"


def _chosen_rate(results: list[dict], rates) -> Optional[float]:
    """The rate whose worse arm has the lowest held-out next-base loss, among rates every arm finished (all planned
    steps); `None` when none did."""
    worst = {}
    for rate in rates:
        runs = [r for r in results if r["learning_rate"] == rate]
        if len(runs) < len(LR_CHECK_ARMS) or any(
            r["steps"] < r["planned_steps"] or r["heldout_next_base_loss"] is None for r in runs
        ):
            continue
        worst[rate] = max(r["heldout_next_base_loss"] for r in runs)
    return min(worst, key=worst.get) if worst else None


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "command",
        choices=[
            "train",
            "evaluate",
            "summarise",
            "decide",
            "scale",
            "health",
            "health_table",
            "lease",
            "prepare_lease",
            "lr_check",
        ],
    )
    parser.add_argument("--output_root", default="outputs/experiment")
    parser.add_argument("--arms", nargs="+", default=list(ARMS), choices=list(ARMS))
    parser.add_argument("--seeds", nargs="+", type=int, default=list(SEEDS))
    parser.add_argument("--scale", choices=list(SCALES), default="tiny", help="tiny (the protocol's) or birdiedna")
    parser.add_argument(
        "--max_tokens", type=int, default=None, help="example tokens per run (default: 5M tiny, 1B birdiedna)"
    )
    parser.add_argument("--jobs", type=int, default=1, help="runs at once (train)")
    parser.add_argument(
        "--genomes", nargs="+", default=None, help="pre-training FASTA files (default: CORPUS; lease: PILOT_CORPUS)"
    )
    parser.add_argument("--readouts", nargs="+", default=["probes", "zero_shot"])
    parser.add_argument("--finetune_tasks", nargs="*", default=["gene_strand"])
    parser.add_argument("--max_steps", type=int, default=60, help="steps of the scale measurement")
    parser.add_argument("--output", default=None, help="summarise / decide: also write the result here")
    parser.add_argument("--protocol", choices=list(PROTOCOLS), default="v2", help="train: the protocol version")
    parser.add_argument("--protocols", nargs="+", choices=list(PROTOCOLS), default=["v2"], help="health")
    parser.add_argument(
        "--stop_fraction", type=float, default=0.2, help="health: share of the schedule trained (the health check's)"
    )
    parser.add_argument("--every", type=int, default=25, help="health: steps between readings")
    parser.add_argument("--threads", type=int, default=None, help="health: torch threads (default: all cores)")
    lease_group = parser.add_argument_group("lease (protocol v2 in one GPU call)")
    lease_group.add_argument("--budget_s", type=float, default=540, help="lease: seconds for everything")
    lease_group.add_argument("--output_dir", default="outputs/lease", help="lease: where its files go")
    lease_group.add_argument("--tasks_dir", default="outputs/evaluation_tasks", help="lease: prebuilt task folders")
    lease_group.add_argument("--tasks", nargs="+", default=None, help="lease: tasks (default: the protocol's ten)")
    lease_group.add_argument(
        "--heldout_dir",
        default=None,
        help="lease: the zero-shot read-outs' held-out genomes and gene calls (default: heldout/ beside "
        "--tasks_dir, as prepare_lease writes it)",
    )
    lease_group.add_argument("--smoke", action="store_true", help="lease: the same code path at a tiny size (CPU)")
    lease_group.add_argument("--probe_steps", type=int, default=40, help="lease: steps of the throughput measurement")
    lease_group.add_argument("--readout_reserve_s", type=float, default=None, help="lease: seconds kept for read-outs")
    lease_group.add_argument("--n_resamples", type=int, default=2000, help="lease: bootstrap replicates")
    lease_group.add_argument(
        "--learning_rates", nargs="+", type=float, default=None, help="lr_check: rates (default: LR_CHECK_RATES)"
    )
    lease_group.add_argument("--lr_check_steps", type=int, default=None, help="lr_check: steps per run (300)")
    argv = list(sys.argv[1:] if argv is None else argv)
    extra = argv[argv.index("--") + 1 :] if "--" in argv else []  # after --: passed on to the recipe
    args = parser.parse_args(argv[: len(argv) - len(extra) - (1 if extra or "--" in argv else 0)])
    args.extra = extra
    if args.genomes is None:
        args.genomes = [str(p) for p in (PILOT_CORPUS if args.command in ("lease", "lr_check") else CORPUS)]
    commands = {
        "train": train,
        "evaluate": evaluate,
        "summarise": summarise,
        "decide": decide,
        "scale": scale,
        "health": health,
        "health_table": lambda args: print(health_table(Path(args.output_root) / "health.jsonl")) or 0,
        "lease": lease,
        "prepare_lease": prepare_lease,
        "lr_check": lr_check,
    }
    return commands[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
