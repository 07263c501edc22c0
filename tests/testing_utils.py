"""Helpers shared by test modules (import them from here, never from another test module)."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from birdie_hf import BirdieTrainer, BirdieTrainingArguments, build_causal_lm, default_model_config
from birdie_hf.cli import run_recipe
from birdie_hf.evaluation import GenomeSource
from birdie_hf.vocabulary import reverse_complement


REPO = Path(__file__).resolve().parents[1]


def load_recipe(name: str):
    """Import `recipes/<name>.py` as a module (recipes are scripts, not a package)."""
    spec = importlib.util.spec_from_file_location(f"recipe_{name}", REPO / "recipes" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve the recipe's annotations through sys.modules
    spec.loader.exec_module(module)
    return module


def one_line_error(capsys, entry, argv) -> str:
    """Run `entry` as a recipe; return its single stderr line (and check it is one line, with exit status 2)."""
    with pytest.raises(SystemExit) as info:
        run_recipe(entry, argv)
    assert info.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), lines
    return lines[0]


#: A small mixture with every kind of objective layout (causal, prefix, two infilling settings, copying).
MIXTURE = [
    "next_token_prediction",
    "prefix_lm",
    {"objective": "infilling", "name": "infilling_short", "mean_span_length": 3},
    {"objective": "infilling", "name": "infilling_long", "mean_span_length": 16, "corruption_rate": 0.3},
    "copying",
]


def make_trainer(tokenizer, genome, tmp_path, **overrides) -> BirdieTrainer:
    """A BirdieTrainer on a 2-layer, 32-wide model: 8 steps of the Birdie policy on `genome` (the conftest fixture),
    evaluations every 2 steps, nothing saved; `overrides` replace any `BirdieTrainingArguments` setting."""
    settings = dict(
        output_dir=str(tmp_path / "run"),
        max_steps=8,
        per_device_train_batch_size=4,
        per_device_eval_batch_size=8,
        learning_rate=3e-3,
        max_length=160,
        objectives=MIXTURE,
        policy_eval_interval=2,
        policy_warmup_steps=2,
        policy_validation_windows=2,
        policy_hidden_size=16,
        policy_num_layers=1,
        policy_update_iterations=10,
        policy_num_candidates=64,
        logging_steps=2,
        save_strategy="no",
        use_cpu=True,
        disable_tqdm=True,
        seed=0,
    )
    settings.update(overrides)
    args = BirdieTrainingArguments(**settings)
    model = build_causal_lm(
        default_model_config(tokenizer, hidden_size=32, num_hidden_layers=2, num_attention_heads=2), seed=0
    )
    return BirdieTrainer(
        model=model,
        args=args,
        train_dataset=genome["train"],
        eval_dataset=genome["validation"],
        processing_class=tokenizer,
    )


STOPS = {"TAA", "TAG", "TGA"}


def gff_line(seqid, start, end, strand, partial="00"):
    return f"{seqid}\tProdigal_v2.6.3\tCDS\t{start}\t{end}\t1.0\t{strand}\t0\tID=1_1;partial={partial};\n"


def synthetic_genome(tmp_path, seed=0, genes=60, gene_length=600, gap=300):
    """A record of alternating-strand genes (ATG ... TAA on their strand) separated by intergenic gaps."""
    rng = np.random.default_rng(seed)
    parts, calls, position = [], [], 0
    for i in range(genes):
        gap_seq = "".join(rng.choice(list("ACGT"), size=gap))
        sense = [c for c in ("".join(t) for t in rng.choice(list("ACGT"), size=(gene_length, 3))) if c not in STOPS]
        cds = "ATG" + "".join(sense[: gene_length // 3 - 2]) + "TAA"  # no stop in frame inside the gene
        strand = "+" if i % 2 == 0 else "-"
        parts += [gap_seq, cds if strand == "+" else reverse_complement(cds)]
        position += gap
        calls.append(gff_line("rec", position + 1, position + gene_length, strand))
        position += gene_length
    parts.append("".join(rng.choice(list("ACGT"), size=gap)))
    fasta, gff = tmp_path / f"g{seed}.fa", tmp_path / f"g{seed}.gff"
    fasta.write_text(">rec synthetic\n" + "".join(parts) + "\n")
    gff.write_text("".join(calls))
    return GenomeSource(f"g{seed}", str(fasta), str(gff))


# -- two-process `accelerate launch` runs (test_distributed, test_reliability) ---------------------------------------
SCRIPT = Path(__file__).parent / "scripts" / "ddp_probe.py"
LAUNCH = [
    sys.executable,
    "-m",
    "accelerate.commands.launch",
    "--multi_gpu",
    "--num_processes",
    "2",
    "--num_machines",
    "1",
    "--mixed_precision",
    "no",
    "--dynamo_backend",
    "no",
    "--main_process_port",
    "0",
]


def launch(*args, cwd, extra_env=None):
    """Run `tests/scripts/ddp_probe.py` under a two-process CPU `accelerate launch` and return the completed process."""
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": "1", **(extra_env or {})}
    result = subprocess.run(
        LAUNCH + [str(SCRIPT), *map(str, args)], cwd=cwd, env=env, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


#: A pre-training run's record and an evaluation, shared by the card and recipe tests.
TRAJECTORY = {
    "policy": "birdie",
    "entries": ["next_token_prediction", "infilling"],
    "reward_classes": ["next_token_prediction", "infilling"],
    "evaluations": [
        {
            "step": 2,
            "losses": {"next_token_prediction": 1.5, "infilling": 2.0},
            "mixture": {"next_token_prediction": 0.5, "infilling": 0.5},
            "next_mixture": {"next_token_prediction": 0.6, "infilling": 0.4},
        },
        {
            "step": 4,
            "losses": {"next_token_prediction": 1.4, "infilling": 1.9},
            "mixture": {"next_token_prediction": 0.6, "infilling": 0.4},
            "next_mixture": {"next_token_prediction": 0.9, "infilling": 0.1},
            "decision": "explore",
        },
    ],
}
TRAINING = {
    "steps": 4,
    "tokens_seen": "2,048",
    "window_length": 128,
    "max_length": 384,
    "model_size": "LlamaForCausalLM, hidden 32, 1 layers, 0.05M parameters",
    "training_data": "`toy.fa`",
}
EVALUATION = [
    {"task": "gene_strand", "mcc": 0.4, "f1": 0.7, "accuracy": 0.7},
    {"task": "promoter_all", "mcc": 0.2, "f1": 0.6, "accuracy": 0.6},
]
