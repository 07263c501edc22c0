"""Checkpoints of `BirdieTrainer`: what is written when, what counts as complete, and what resuming accepts."""

import json
import logging
import os
import shutil
import time

import numpy as np
import pytest
import torch
import transformers.trainer
from testing_utils import MIXTURE, make_trainer
from transformers import TrainingArguments

from birdie_hf import (
    BirdieRewardCallback,
    BirdieTrainer,
    BirdieTrainingArguments,
    LiveMixture,
    build_causal_lm,
    default_model_config,
    last_complete_checkpoint,
)
from birdie_hf.presets import PRESETS
from birdie_hf.runs.checkpoints import BIRDIE_STATE_NAME, checkpoint_problems


SAVING = dict(max_steps=4, save_strategy="steps", save_steps=2)


@pytest.fixture(scope="module")
def trained_run(tokenizer, genome, tmp_path_factory):
    """A 4-step Birdie run with checkpoints at steps 2 and 4; tests copy it before changing anything."""
    root = tmp_path_factory.mktemp("trained")
    make_trainer(tokenizer, genome, root, **SAVING).train()
    return root / "run"


def copy_run(trained_run, tmp_path):
    shutil.copytree(trained_run, tmp_path / "run")
    return tmp_path / "run"


def truncate(path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def zero_bytes_inside(path, count=100):
    """Same-size damage: `count` zeroed bytes in the middle of the file (a bad disk block, a torn write)."""
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle : middle + count] = bytes(count)
    path.write_bytes(bytes(data))


def assert_same_state(a, b, where="state"):
    """Recursive equality of two Birdie states (tensors compared exactly)."""
    if isinstance(a, torch.Tensor):
        torch.testing.assert_close(a, b, rtol=0, atol=0, msg=where)
    elif isinstance(a, dict):
        assert set(a) == set(b), where
        for key in a:
            assert_same_state(a[key], b[key], f"{where}[{key!r}]")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same_state(x, y, f"{where}[{i}]")
    else:
        assert a == b, where


# -- item 1: the Birdie state is written first, atomically ----------------------------------------------------------
def test_birdie_state_is_in_the_checkpoint_before_push_and_rotation(tokenizer, genome, tmp_path, monkeypatch):
    seen = []

    def record(folder, when):
        seen.append((when, os.path.basename(folder), os.path.exists(os.path.join(folder, BIRDIE_STATE_NAME))))

    rotate = transformers.trainer.rotate_checkpoints

    def recording_rotate(output_dir, **kwargs):
        newest = max(
            (name for name in os.listdir(output_dir) if name.startswith("checkpoint-")),
            key=lambda name: int(name.split("-")[1]),
        )
        record(os.path.join(output_dir, newest), "rotate")
        rotate(output_dir, **kwargs)

    monkeypatch.setattr(transformers.trainer, "rotate_checkpoints", recording_rotate)
    trainer = make_trainer(tokenizer, genome, tmp_path, save_total_limit=1, **SAVING)
    # Stand-in for the Hub upload, which the parent runs between saving the trainer state and rotating.
    trainer.args.push_to_hub = True
    monkeypatch.setattr(trainer, "_push_from_checkpoint", lambda folder: record(folder, "push"))
    trainer.train()

    assert seen == [
        ("push", "checkpoint-2", True),
        ("rotate", "checkpoint-2", True),
        ("push", "checkpoint-4", True),
        ("rotate", "checkpoint-4", True),
    ]
    run = tmp_path / "run"
    assert sorted(p.name for p in run.glob("checkpoint-*")) == ["checkpoint-4"]
    assert last_complete_checkpoint(str(run)) == str(run / "checkpoint-4")
    assert not list(run.rglob("*.tmp-*")), "a temporary file of an atomic write was left behind"


def test_every_rank_has_saved_its_rng_state_before_the_trainer_state_marks_a_checkpoint_complete(
    tokenizer, genome, tmp_path, monkeypatch
):
    """Rank 0 writes `trainer_state.json` right after its own RNG file; a barrier must separate the per-rank RNG files
    from it, or a run killed in between leaves a 'complete' checkpoint without another rank's RNG state."""
    trainer = make_trainer(tokenizer, genome, tmp_path, **SAVING)
    events = []
    wait = trainer.accelerator.wait_for_everyone

    def recording_wait():
        events.append(("barrier", trainer.state.global_step))
        wait()

    save_to_json = transformers.trainer.TrainerState.save_to_json

    def recording_save(state, path):
        if os.path.basename(os.path.dirname(path)).startswith("checkpoint-"):
            assert os.path.exists(os.path.join(os.path.dirname(path), "rng_state.pth"))
            events.append(("trainer_state", state.global_step))
        save_to_json(state, path)

    monkeypatch.setattr(trainer.accelerator, "wait_for_everyone", recording_wait)
    monkeypatch.setattr(transformers.trainer.TrainerState, "save_to_json", recording_save)
    save_rng_state = transformers.trainer.Trainer._save_rng_state

    def recording_rng(self, output_dir):
        save_rng_state(self, output_dir)
        events.append(("rng", self.state.global_step))

    monkeypatch.setattr(transformers.trainer.Trainer, "_save_rng_state", recording_rng)
    trainer.train()
    for step in (2, 4):
        rng, state = events.index(("rng", step)), events.index(("trainer_state", step))
        assert ("barrier", step) in events[rng:state], events


def test_crash_while_saving_keeps_the_previous_checkpoint(tokenizer, genome, tmp_path, monkeypatch):
    trainer = make_trainer(tokenizer, genome, tmp_path, save_total_limit=1, **SAVING)
    save_rng_state = trainer._save_rng_state

    def crash_at_step_4(output_dir):
        if trainer.state.global_step == 4:
            raise RuntimeError("killed while saving")
        save_rng_state(output_dir)

    monkeypatch.setattr(trainer, "_save_rng_state", crash_at_step_4)
    with pytest.raises(RuntimeError, match="killed while saving"):
        trainer.train()
    run = tmp_path / "run"
    assert (run / "checkpoint-4" / BIRDIE_STATE_NAME).exists()  # written first ...
    assert any("rng_state.pth" in p for p in checkpoint_problems(str(run / "checkpoint-4")))  # ... but incomplete
    assert last_complete_checkpoint(str(run)) == str(run / "checkpoint-2")  # rotation never ran


def test_rotation_keeps_the_complete_checkpoint_over_a_stale_one(tokenizer, genome, tmp_path, monkeypatch):
    """A folder left by a run killed while saving step 100, and a file system whose modification times are all
    equal (rotation then orders by step): `save_total_limit=1` must keep the new complete checkpoint."""
    stale = tmp_path / "run" / "checkpoint-100"
    stale.mkdir(parents=True)
    (stale / BIRDIE_STATE_NAME).write_bytes(b"PK partial")
    getmtime = os.path.getmtime
    monkeypatch.setattr(os.path, "getmtime", lambda path: 0.0 if "checkpoint-" in os.fspath(path) else getmtime(path))
    trainer = make_trainer(tokenizer, genome, tmp_path, save_total_limit=1, policy="static", **SAVING)
    trainer.train()
    run = tmp_path / "run"
    assert sorted(p.name for p in run.glob("checkpoint-*")) == ["checkpoint-4"]
    assert last_complete_checkpoint(str(run)) == str(run / "checkpoint-4")


@pytest.mark.parametrize("limit", [1, None])
def test_a_checkpoint_half_deleted_by_rotation_is_removed_not_kept(tokenizer, genome, tmp_path, limit, caplog):
    """A run killed while rotation deleted checkpoint-1 leaves part of it, just modified: rotation orders by
    modification time and kept it over complete checkpoints; without a limit nothing ever removed it."""
    half = tmp_path / "run" / "checkpoint-1"
    half.mkdir(parents=True)
    (half / "config.json").write_text("{}")
    (half / BIRDIE_STATE_NAME).write_bytes(b"PK partial")
    future = time.time() + 3600
    os.utime(half, (future, future))
    trainer = make_trainer(tokenizer, genome, tmp_path, save_total_limit=limit, policy="static", **SAVING)
    with caplog.at_level("WARNING"):
        trainer.train()
    run = tmp_path / "run"
    kept = ["checkpoint-4"] if limit == 1 else ["checkpoint-2", "checkpoint-4"]
    assert sorted(p.name for p in run.glob("checkpoint-*")) == kept
    assert "Deleting incomplete checkpoint" in caplog.text and "checkpoint-1" in caplog.text


# -- item 2: complete means every file the resume reads is there and readable -------------------------------------
DAMAGES = {
    "model.safetensors": ("model.safetensors", truncate),
    "no model weights": ("model.safetensors", os.remove),
    "optimizer.pt": ("optimizer.pt", truncate),
    "no optimizer.pt": ("optimizer.pt", os.remove),
    "no scheduler.pt": ("scheduler.pt", os.remove),
    "rng_state.pth": ("rng_state.pth", truncate),
    "no rng_state.pth": ("rng_state.pth", os.remove),
    "trainer_state.json": ("trainer_state.json", lambda path: path.write_text('{"global_st')),
    "no trainer_state.json": ("trainer_state.json", os.remove),
    "birdie_state.pt": (BIRDIE_STATE_NAME, truncate),
    "optimizer.pt does not match its checksum": ("optimizer.pt", zero_bytes_inside),
    "model.safetensors does not match its checksum": ("model.safetensors", zero_bytes_inside),
}


def test_complete_checkpoint_has_no_problems(trained_run):
    assert checkpoint_problems(str(trained_run / "checkpoint-4")) == []
    assert last_complete_checkpoint(str(trained_run)) == str(trained_run / "checkpoint-4")


@pytest.mark.parametrize("problem", list(DAMAGES))
def test_damaged_checkpoint_is_skipped(trained_run, tmp_path, caplog, problem):
    run = copy_run(trained_run, tmp_path)
    name, damage = DAMAGES[problem]
    damage(run / "checkpoint-4" / name)
    problems = checkpoint_problems(str(run / "checkpoint-4"))
    assert any(problem in message for message in problems), problems
    with caplog.at_level(logging.WARNING, logger="birdie_hf.trainer"):
        assert last_complete_checkpoint(str(run)) == str(run / "checkpoint-2")
    assert "checkpoint-4" in caplog.text and problem in caplog.text


def test_same_size_damage_is_caught_by_the_checksums_and_resume_falls_back(
    tokenizer, genome, trained_run, tmp_path, caplog
):
    run = copy_run(trained_run, tmp_path)
    assert json.loads((run / "checkpoint-4" / "checksums.json").read_text())["sha256"].keys() >= {
        "model.safetensors", "optimizer.pt", "trainer_state.json", BIRDIE_STATE_NAME
    }  # fmt: skip
    zero_bytes_inside(run / "checkpoint-4" / "optimizer.pt")
    trainer = make_trainer(tokenizer, genome, tmp_path, **SAVING)
    with caplog.at_level(logging.WARNING, logger="birdie_hf.trainer"):
        trainer.train(resume_from_checkpoint=True)
    assert "checkpoint-4" in caplog.text and "optimizer.pt does not match its checksum" in caplog.text
    assert trainer.state.global_step == 4 and [r["step"] for r in trainer.birdie_callback.trajectory] == [2, 4]
    assert checkpoint_problems(str(run / "checkpoint-4")) == []  # rewritten whole


# -- item 3: a truncated model file in the last checkpoint ---------------------------------------------------------
def test_resume_true_falls_back_past_a_truncated_model_file(tokenizer, genome, trained_run, tmp_path, caplog):
    run = copy_run(trained_run, tmp_path)
    truncate(run / "checkpoint-4" / "model.safetensors")
    trainer = make_trainer(tokenizer, genome, tmp_path, **SAVING)
    with caplog.at_level(logging.WARNING, logger="birdie_hf.trainer"):
        trainer.train(resume_from_checkpoint=True)
    assert "Skipping incomplete checkpoint" in caplog.text and "checkpoint-4" in caplog.text
    assert "model.safetensors is truncated" in caplog.text
    # Resumed from step 2, trained steps 3-4 and wrote a sound checkpoint-4 over the damaged one.
    assert trainer.state.global_step == 4
    assert [r["step"] for r in trainer.birdie_callback.trajectory] == [2, 4]
    assert checkpoint_problems(str(run / "checkpoint-4")) == []


def test_resume_from_a_truncated_checkpoint_path_names_the_file(tokenizer, genome, trained_run, tmp_path):
    run = copy_run(trained_run, tmp_path)
    truncate(run / "checkpoint-4" / "model.safetensors")
    trainer = make_trainer(tokenizer, genome, tmp_path, **SAVING)
    with pytest.raises(ValueError, match=r"checkpoint-4.*model\.safetensors is truncated.*checkpoint-2"):
        trainer.train(resume_from_checkpoint=str(run / "checkpoint-4"))
    assert trainer.state.global_step == 0


# -- item 4: resuming with other settings is refused ---------------------------------------------------------------
OTHER_MIXTURE = [
    dict(entry, mean_span_length=5) if isinstance(entry, dict) and entry["name"] == "infilling_short" else entry
    for entry in MIXTURE
]


@pytest.mark.parametrize(
    "overrides, message",
    [
        (dict(policy="static"), "policy: 'birdie' in the checkpoint, 'static' in this run"),
        (
            dict(objectives=OTHER_MIXTURE),
            "entry 'infilling_short' setting mean_span_length: 3 in the checkpoint, 5 in this run",
        ),
        (dict(objectives=MIXTURE[:4]), "objective entries"),
        (dict(objective_weights=[4, 1, 1, 1, 1]), "initial mixture: prefix_lm 0.1667 -> 0.125"),
        (dict(policy_num_candidates=32), "policy_num_candidates: 64 in the checkpoint, 32 in this run"),
        (dict(policy_eval_interval=4), "policy_eval_interval: 2 in the checkpoint, 4 in this run"),
    ],
)
def test_resume_with_other_settings_is_refused(tokenizer, genome, trained_run, tmp_path, overrides, message):
    copy_run(trained_run, tmp_path)
    trainer = make_trainer(tokenizer, genome, tmp_path, **SAVING, **overrides)
    before = trainer.data_collator.mixture.weights
    with pytest.raises(ValueError) as error:
        trainer.train(resume_from_checkpoint=True)
    text = str(error.value)
    assert message in text, text
    assert "checkpoint-4" in text and "output_dir" in text and "original settings" in text
    np.testing.assert_array_equal(trainer.data_collator.mixture.weights, before)  # nothing was loaded
    assert trainer.state.global_step == 0


def test_state_without_run_spec_is_checked_on_what_it_has(caplog):
    names = ["next_token_prediction", "copying"]
    saved = BirdieRewardCallback(LiveMixture(names, [0.7, 0.3])).state_dict()
    del saved["run_spec"]
    callback = BirdieRewardCallback(LiveMixture(names, [0.5, 0.5]), run_spec={"policy": "static"})
    with caplog.at_level(logging.WARNING, logger="birdie_hf.callback"):
        callback.load_state_dict(saved)
    assert "predates recorded run settings" in caplog.text
    np.testing.assert_allclose(callback.mixture.weights, [0.7, 0.3])
    saved["entry_names"] = ["next_token_prediction", "prefix_lm"]
    with pytest.raises(ValueError, match="mixture entries"):
        callback.load_state_dict(saved)


# -- item 5: the state loads with weights_only=True and round-trips -----------------------------------------------
def test_birdie_state_loads_with_weights_only(trained_run):
    state = torch.load(trained_run / "checkpoint-4" / BIRDIE_STATE_NAME, weights_only=True)
    spec = state["run_spec"]
    assert spec["policy"] == "birdie"
    assert [entry["name"] for entry in spec["entries"]] == [
        "next_token_prediction",
        "prefix_lm",
        "infilling_short",
        "infilling_long",
        "copying",
    ]
    assert spec["entries"][3]["settings"]["corruption_rate"] == 0.3
    assert spec["policy_settings"]["policy_hidden_size"] == 16
    assert state["policy"]["decisions"] > 0 and state["trajectory"][-1]["step"] == 4


def test_numpy_values_are_saved_as_plain_values(tmp_path):
    callback = BirdieRewardCallback(LiveMixture(["a", "b"], [0.5, 0.5]))
    callback.pending, callback.pending_step = np.array([0.25, 0.75]), np.int64(3)
    callback.trajectory.append({"step": np.int64(3), "losses": {"a": np.float32(1.5)}, "curve": np.arange(3)})
    torch.save(callback.state_dict(), tmp_path / "state.pt")
    state = torch.load(tmp_path / "state.pt", weights_only=True)
    assert state["pending"] == [0.25, 0.75] and state["pending_step"] == 3
    assert state["trajectory"] == [{"step": 3, "losses": {"a": 1.5}, "curve": [0, 1, 2]}]
    callback.trajectory.append({"when": object()})
    with pytest.raises(TypeError, match=r"state\['trajectory'\]\[1\]\['when'\] is a object"):
        callback.state_dict()


def test_resume_round_trips_the_policy_state(tokenizer, genome, trained_run, tmp_path):
    """Resuming from checkpoint-2 and training to step 4 ends in exactly the state the uninterrupted run saved."""
    run = copy_run(trained_run, tmp_path)
    shutil.rmtree(run / "checkpoint-4")
    trainer = make_trainer(tokenizer, genome, tmp_path, **SAVING)
    trainer.load_birdie_state(str(run / "checkpoint-2"))
    assert_same_state(
        trainer.birdie_callback.state_dict(), torch.load(run / "checkpoint-2" / BIRDIE_STATE_NAME, weights_only=True)
    )
    trainer.train(resume_from_checkpoint=str(run / "checkpoint-2"))
    uninterrupted = torch.load(trained_run / "checkpoint-4" / BIRDIE_STATE_NAME, weights_only=True)
    assert_same_state(torch.load(run / "checkpoint-4" / BIRDIE_STATE_NAME, weights_only=True), uninterrupted)


# -- plain TrainingArguments ---------------------------------------------------------------------------------------
def test_plain_training_arguments_become_birdie_arguments(tokenizer, genome, tmp_path):
    model = build_causal_lm(
        default_model_config(tokenizer, hidden_size=32, num_hidden_layers=1, num_attention_heads=2), seed=0
    )
    plain = TrainingArguments(
        output_dir=str(tmp_path),
        use_cpu=True,
        learning_rate=1e-3,
        max_steps=3,
        save_steps=7,
        report_to="none",
        hub_token="hf_secret",
    )
    trainer = BirdieTrainer(model=model, args=plain, eval_dataset=genome["validation"], processing_class=tokenizer)
    args = trainer.args
    assert isinstance(args, BirdieTrainingArguments)
    assert (args.output_dir, args.learning_rate, args.max_steps, args.save_steps, args.hub_token) == (
        str(tmp_path),
        1e-3,
        3,
        7,
        "hf_secret",
    )
    # Birdie's changed defaults replace the plain defaults; the Birdie fields take their own defaults.
    assert (args.label_names, args.logging_steps) == (["labels"], 10)
    assert args.remove_unused_columns  # the plain default: the trainer keeps the columns its collator reads
    assert args.policy == "birdie" and args.preset == "dna" and args.objectives == PRESETS["dna"]["objectives"]
    assert trainer.data_collator.entry_names == [spec.name for spec in args.objective_specs()]
    # An explicit value that differs from the plain default is kept.
    explicit = TrainingArguments(output_dir=str(tmp_path), use_cpu=True, logging_steps=3, report_to="none")
    trainer = BirdieTrainer(model=model, args=explicit, eval_dataset=genome["validation"], processing_class=tokenizer)
    assert trainer.args.logging_steps == 3
    with pytest.raises(TypeError, match="must be BirdieTrainingArguments"):
        BirdieTrainer(model=model, args={"output_dir": str(tmp_path)}, processing_class=tokenizer)


def test_a_changed_policy_is_one_difference_not_every_policy_setting():
    from birdie_hf.runs.spec import run_spec_differences

    entries = [{"name": "copying", "objective": "copying", "settings": {}}]
    saved = {"policy": "birdie", "entries": entries, "policy_settings": {"policy_top_n": 8, "policy_min_weight": 0.01}}
    assert run_spec_differences(saved, {"policy": "static", "entries": entries, "policy_settings": None}) == [
        "policy: 'birdie' in the checkpoint, 'static' in this run"
    ]
    changed = {**saved, "policy_settings": {"policy_top_n": 4, "policy_min_weight": 0.01}}
    assert run_spec_differences(saved, changed) == ["policy_top_n: 8 in the checkpoint, 4 in this run"]


def test_a_setting_the_checkpoint_lacks_is_a_difference():
    """Specs are compared key by key: a setting only one side records is named (no defaults are assumed for it)."""
    from birdie_hf.runs.spec import run_spec_differences

    saved_entries = [{"name": "inf", "objective": "infilling", "settings": {"corruption_rate": 0.15}}]
    entries = [{"name": "inf", "objective": "infilling",
                "settings": {"corruption_rate": 0.15, "span_layout": "interior"}}]  # fmt: skip
    saved = {"policy": "birdie", "entries": saved_entries, "policy_settings": {"policy_top_n": 8},
             "training": {"seed": 42}}  # fmt: skip
    current = {"policy": "birdie", "entries": entries, "training": {"seed": 42},
               "policy_settings": {"policy_top_n": 8, "policy_reward": "standardised"}}  # fmt: skip
    assert run_spec_differences(saved, current) == [
        "entry 'inf' setting span_layout: None in the checkpoint, 'interior' in this run",
        "policy_reward: None in the checkpoint, 'standardised' in this run",
    ]
    assert run_spec_differences(current, current) == []
