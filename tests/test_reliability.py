import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
import torch
from testing_utils import LAUNCH, SCRIPT, launch, make_trainer

from birdie_hf import checkpoint_problems, last_complete_checkpoint


@pytest.mark.slow
def test_sigkill_two_process_run_then_resume(tmp_path):
    env_extra = {"BIRDIE_PROBE_MAX_STEPS": "10", "BIRDIE_PROBE_SAVE_STEPS": "2"}
    reference = tmp_path / "reference"
    launch(reference, 0, "first", cwd=tmp_path, extra_env=env_extra)

    out = tmp_path / "killed"
    env = {
        **os.environ,
        "CUDA_VISIBLE_DEVICES": "",
        "OMP_NUM_THREADS": "1",
        "BIRDIE_PROBE_STEP_SLEEP": "0.4",
        **env_extra,
    }
    process = subprocess.Popen(
        LAUNCH + [str(SCRIPT), str(out), "0", "first"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.time() + 300
    while not (out / "checkpoint-4" / "trainer_state.json").exists():  # written last by the parent Trainer
        assert process.poll() is None and time.time() < deadline, "run ended before its 2nd checkpoint"
        time.sleep(0.1)
    # SIGKILL both ranks and the launcher, mid-run (the ranks run in their own process groups).
    family = psutil.Process(process.pid).children(recursive=True) + [psutil.Process(process.pid)]
    for member in family:
        member.send_signal(signal.SIGKILL)
    psutil.wait_procs(family, timeout=30)
    process.wait()
    assert not (out / "checkpoint-10").exists()

    complete = last_complete_checkpoint(str(out))
    assert complete is not None and checkpoint_problems(complete) == []
    torch.load(os.path.join(complete, "birdie_state.pt"), weights_only=True)

    launch(out, 0, "resume", cwd=tmp_path, extra_env=env_extra)
    resumed = json.loads((out / "trajectory_resumed.json").read_text())
    expected = json.loads((reference / "trajectory_first.json").read_text())
    assert resumed == expected, "the resumed run's policy did not continue exactly"
    records = json.loads((out / "mixture_resumed_rank0.json").read_text())["records"]
    reference_records = json.loads((reference / "mixture_first_rank0.json").read_text())["records"]
    assert records == [r for r in reference_records if r["step"] >= records[0]["step"]]
    assert (out / "checkpoint-10" / "birdie_state.pt").exists()


def test_same_seed_same_results(tokenizer, genome, tmp_path):
    runs = []
    for name in ("a", "b"):
        trainer = make_trainer(tokenizer, genome, tmp_path / name, max_steps=6)
        trainer.train()
        runs.append(trainer)
    losses = [[h.get("loss") for h in t.state.log_history if "loss" in h] for t in runs]
    assert losses[0] == losses[1]
    assert runs[0].mixture_trajectory() == runs[1].mixture_trajectory()


def test_token_never_saved_in_checkpoints(tokenizer, genome, tmp_path):
    secret = "hf_do_not_leak_4242"
    trainer = make_trainer(
        tokenizer, genome, tmp_path, max_steps=2, save_strategy="steps", save_steps=2, hub_token=secret
    )
    trainer.train()
    trainer.create_model_card()
    for path in (tmp_path / "run").rglob("*"):
        if path.is_file():
            assert secret.encode() not in path.read_bytes(), f"token written to {path}"
    assert trainer.args.hub_token == secret  # still usable for pushing
    import copy
    import pickle

    assert copy.deepcopy(trainer.args).hub_token == secret and copy.copy(trainer.args).hub_token == secret
    assert pickle.loads(pickle.dumps(trainer.args)).hub_token == "<redacted>"


def test_continual_pretraining_rejects_a_non_causal_checkpoint(tmp_path, tokenizer):
    from transformers import BertConfig, BertModel

    BertModel(
        BertConfig(
            vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64
        )
    ).save_pretrained(tmp_path / "bert")
    tokenizer.save_pretrained(tmp_path / "bert")
    result = subprocess.run(
        [
            sys.executable,
            str(Path(__file__).parents[1] / "recipes" / "pretrain.py"),
            "--model_name_or_path",
            str(tmp_path / "bert"),
            "--output_dir",
            str(tmp_path / "out"),
            "--max_steps",
            "2",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "CUDA_VISIBLE_DEVICES": ""},
    )
    assert result.returncode != 0 and "not a causal LM" in result.stderr and "BertModel" in result.stderr
    assert not (tmp_path / "out").exists()
