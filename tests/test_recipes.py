import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from birdie_hf.data import iter_fasta
from birdie_hf.runs.checkpoints import TRAJECTORY_NAME


REPO = Path(__file__).resolve().parents[1]
PRETRAIN = REPO / "recipes" / "pretrain.py"
TINY = [
    "--max_steps",
    "4",
    "--window_length",
    "128",
    "--max_length",
    "384",
    "--hidden_size",
    "32",
    "--num_hidden_layers",
    "1",
    "--num_attention_heads",
    "2",
    "--per_device_train_batch_size",
    "2",
    "--policy_eval_interval",
    "2",
    "--policy_warmup_steps",
    "2",
    "--policy_update_iterations",
    "5",
    "--policy_num_candidates",
    "32",
    "--policy_hidden_size",
    "16",
    "--save_steps",
    "2",
    "--disable_tqdm",
    "true",
]


def run(*args, cwd):
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "HF_HUB_OFFLINE": "1"}
    return subprocess.run(
        [sys.executable, str(PRETRAIN), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600
    )


@pytest.mark.slow
def test_pretrain_recipe_end_to_end(tmp_path):
    out = tmp_path / "out"
    result = run("--output_dir", str(out), *TINY, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "final val loss" in result.stdout and "tokens seen" in result.stdout
    trajectory = json.loads((out / TRAJECTORY_NAME).read_text())
    assert trajectory["policy"] == "birdie"
    # warm-up and interval 2 in 4 steps; no evaluation before step 2 (FIRST_EVALUATION_STEP drops w/25 and w/5)
    assert [evaluation["step"] for evaluation in trajectory["evaluations"]] == [2, 4]
    card = (out / "README.md").read_text()  # the held-out loss beside Markov chains, as summary.md reports it
    assert (
        "### Held-out next-base loss" in card
        and "order-2 Markov" in card
        and "this model (read left to right)" in card
    )
    tokenizer = AutoTokenizer.from_pretrained(out)
    model = AutoModelForCausalLM.from_pretrained(out)
    assert type(model).__name__ == "LlamaForCausalLM"
    with torch.no_grad():
        logits = model(**tokenizer("ACGTACGTNN", return_tensors="pt")).logits
    assert logits.shape == (1, 10, len(tokenizer))


def test_pretrain_recipe_yaml_config_and_bad_arguments(tmp_path):
    config = tmp_path / "run.yaml"
    config.write_text("objectives: [next_token_prediction, copy]\n")
    result = run("--config", str(config), "--output_dir", str(tmp_path / "a"), *TINY, cwd=tmp_path)
    assert result.returncode != 0 and "Unknown objective 'copy'" in result.stderr
    config.write_text("not_a_field: 3\n")
    result = run("--config", str(config), "--output_dir", str(tmp_path / "b"), cwd=tmp_path)
    assert result.returncode != 0 and "unknown keys" in result.stderr and "not_a_field" in result.stderr
    result = run("--genomes", str(tmp_path / "missing.fa"), "--output_dir", str(tmp_path / "c"), *TINY, cwd=tmp_path)
    assert result.returncode != 0 and "missing.fa" in result.stderr
    result = run(
        "--objective_weights",
        "-1",
        "--objectives",
        "copying",
        "--output_dir",
        str(tmp_path / "d"),
        *TINY,
        cwd=tmp_path,
    )
    assert result.returncode != 0 and "weights must be >= 0" in result.stderr
    assert not (tmp_path / "a").exists() and not (tmp_path / "d").exists()


@pytest.mark.slow
def test_continual_pretraining_adds_missing_tokens(tmp_path):
    from birdie_hf import build_causal_lm, build_dna_tokenizer, default_model_config
    from birdie_hf.vocabulary import sentinel_ids

    small = build_dna_tokenizer(num_sentinels=4)  # an older checkpoint with too few sentinels
    model = build_causal_lm(
        default_model_config(small, hidden_size=32, num_hidden_layers=1, num_attention_heads=2), seed=0
    )
    model.save_pretrained(tmp_path / "base")
    small.save_pretrained(tmp_path / "base")
    out = tmp_path / "continued"
    result = run(
        "--model_name_or_path",
        str(tmp_path / "base"),
        "--output_dir",
        str(out),
        *TINY,
        "--warmup_steps",
        "2",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    tokenizer = AutoTokenizer.from_pretrained(out)
    continued = AutoModelForCausalLM.from_pretrained(out)
    assert len(sentinel_ids(tokenizer)) == 128
    assert continued.get_input_embeddings().weight.shape[0] >= len(tokenizer)
    original = AutoModelForCausalLM.from_pretrained(tmp_path / "base").get_input_embeddings().weight
    assert not torch.equal(continued.get_input_embeddings().weight[: original.shape[0]], original)  # it trained


def load_pretrain_recipe():
    import importlib.util

    spec = importlib.util.spec_from_file_location("recipe_pretrain_inprocess", PRETRAIN)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve the recipe's annotations through sys.modules
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    "policy, extra",
    [
        # A real genome without held-out windows: 5% of a 16.6 kbp mitochondrion is shorter than a 1024-base window.
        ("ntp", ["--genomes", "{shared}/data/genomes/MT-human.fa", "--window_length", "1024", "--max_length", "1024"]),
        ("static", ["--validation_fraction", "0", "--objectives", "next_token_prediction", "copying"]),
    ],
)
def test_baselines_pretrain_without_held_out_windows(tmp_path, shared_dir, capsys, policy, extra):
    pretrain = load_pretrain_recipe()
    out = tmp_path / "out"
    argv = [
        *TINY,
        "--max_steps",
        "2",
        "--policy",
        policy,
        "--output_dir",
        str(out),
        "--cpu_threads",
        "1",
        "--report_to",
        "none",
        *[arg.format(shared=shared_dir) for arg in extra],
    ]
    pretrain.main(*pretrain.parse_args(argv))
    summary = (out / "summary.md").read_text()
    assert "nan" not in summary.lower() and "final val loss" not in summary
    assert "no held-out evaluation was run (no validation windows)" in summary
    assert "(no held-out windows: next-base comparison skipped)" in summary
    results = json.loads((out / "train_results.json").read_text())
    window_length = 1024 if policy == "ntp" else 128
    assert results["global_step"] == 2 and results["tokens_seen"] == 2 * 2 * window_length
    assert json.loads((out / TRAJECTORY_NAME).read_text())["evaluations"] == []


@pytest.mark.slow
def test_pretrain_streaming_trains_on_a_genome_read_from_disk(tmp_path, shared_dir):
    """--streaming: windows (and their reverse complements) streamed from a gzipped genome with soft-masked bases
    dropped, held-out windows from a separate file; the run trains, evaluates and writes its card and summary."""
    out = tmp_path / "out"
    genome, bases = tmp_path / "human_chr22_segments.fa", 0  # the first 400 kb: soft-masked, 46% lower case
    with open(genome, "w") as handle:
        for record in iter_fasta(shared_dir / "data" / "genomes" / "human_chr22_segments.fa.gz"):
            handle.write(f">{record.name}\n{record.sequence.decode()}\n")
            bases += len(record.sequence)
            if bases > 400_000:
                break
    validation = shared_dir / "data" / "genomes" / "lambda_phage.fa.gz"
    result = run(
        "--streaming", "--genomes", str(genome), "--validation_genomes", str(validation), "--reverse_complement",
        "--soft_mask", "drop", "--output_dir", str(out), *TINY, cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert "held-out next-base loss over" in result.stdout
    record = json.loads((out / TRAJECTORY_NAME).read_text())
    assert record["evaluations"] and (out / "config.json").is_file()
    assert "human_chr22_segments.fa" in (out / "README.md").read_text()
