"""A run owns its output folder: foreign checkpoints are refused by name, finished runs are not extended, one live
run per folder."""

import json
import os
import subprocess
import sys

import pytest
import torch
from testing_utils import load_recipe, make_trainer

from birdie_hf.run_folder import LOCK_NAME, OutputDirInUseError, OutputDirLock, data_fingerprint


SAVING = dict(save_strategy="steps", save_steps=4, policy="static")


def tiny_pretrain_argv(output_dir, max_steps: int) -> list[str]:
    """recipes/pretrain.py on a 1-layer, 32-wide model with the static mixture, saving every 2 steps."""
    return ["--output_dir", str(output_dir), "--policy", "static", "--max_steps", str(max_steps), "--save_steps", "2",
            "--window_length", "128", "--max_length", "384", "--hidden_size", "32", "--num_hidden_layers", "1",
            "--num_attention_heads", "2", "--per_device_train_batch_size", "2", "--disable_tqdm", "true",
            "--report_to", "none", "--cpu_threads", "1"]  # fmt: skip


def checkpoints(folder):
    return sorted(n for n in os.listdir(folder) if n.startswith("checkpoint-"))


def test_a_fresh_run_refuses_a_folder_holding_another_runs_checkpoints(tokenizer, genome, tmp_path):
    make_trainer(tokenizer, genome, tmp_path, **SAVING).train()
    before = checkpoints(tmp_path / "run")
    assert before == ["checkpoint-4", "checkpoint-8"]
    other = make_trainer(tokenizer, genome, tmp_path, **SAVING, seed=1, learning_rate=1e-3)
    with pytest.raises(
        FileExistsError, match=r"already holds another run .*checkpoint-4.*seed: 0 in the checkpoint, 1"
    ):
        other.train()
    assert checkpoints(tmp_path / "run") == before  # nothing touched
    OutputDirLock(str(tmp_path / "run")).acquire().release()  # the lock was released on error
    # Told to overwrite, the old checkpoints go first: `last` can only find the new run's.
    replaced = make_trainer(tokenizer, genome, tmp_path, **SAVING, seed=1, max_steps=4, overwrite_output_dir=True)
    replaced.train()
    assert checkpoints(tmp_path / "run") == ["checkpoint-4"]
    state = torch.load(tmp_path / "run" / "checkpoint-4" / "birdie_state.pt", weights_only=True)
    assert state["run_spec"]["training"]["seed"] == 1


def test_the_same_command_run_again_is_refused_and_told_to_resume(tokenizer, genome, tmp_path):
    make_trainer(tokenizer, genome, tmp_path, **SAVING, max_steps=4).train()
    again = make_trainer(tokenizer, genome, tmp_path, **SAVING, max_steps=4)
    with pytest.raises(
        FileExistsError, match=r"holds a run with the same settings \(checkpoint-4\).*--resume_from_checkpoint last"
    ):
        again.train()
    assert checkpoints(tmp_path / "run") == ["checkpoint-4"]  # a crashed run restarted by mistake keeps its progress


def test_a_plain_trainer_checkpoint_is_another_run_and_is_never_deleted(tokenizer, genome, tmp_path):
    foreign = tmp_path / "run" / "checkpoint-500"
    foreign.mkdir(parents=True)
    (foreign / "trainer_state.json").write_text(
        '{"global_step": 500}'
    )  # saved by transformers.Trainer: no Birdie state
    trainer = make_trainer(tokenizer, genome, tmp_path, **SAVING, save_total_limit=1)
    with pytest.raises(
        FileExistsError, match="checkpoint-500; it differs from this one in: checkpoint-500 has no readable"
    ):
        trainer.train()
    assert foreign.exists()


@pytest.mark.parametrize(
    "change, named",
    [
        ({"learning_rate": 1e-3}, "learning_rate: 0.003 in the checkpoint, 0.001 in this run"),
        ({"max_steps": 12}, "max_steps: 8 in the checkpoint, 12 in this run"),
        ({"per_device_train_batch_size": 2}, "per_device_train_batch_size: 4 in the checkpoint, 2 in this run"),
    ],
)
def test_resuming_another_runs_checkpoint_is_refused_by_name(tokenizer, genome, tmp_path, change, named):
    make_trainer(tokenizer, genome, tmp_path, **SAVING, max_steps=8).train()
    other = make_trainer(tokenizer, genome, tmp_path, **{**SAVING, "max_steps": 8, **change})
    with pytest.raises(ValueError, match=named):
        other.train(resume_from_checkpoint=True)


def test_resuming_a_finished_run_trains_nothing(tokenizer, genome, tmp_path, caplog):
    finished = make_trainer(tokenizer, genome, tmp_path, **SAVING)
    finished.train()
    weights = {k: v.clone() for k, v in finished.model.state_dict().items()}
    resumed = make_trainer(tokenizer, genome, tmp_path, **SAVING)
    with caplog.at_level("WARNING"):
        result = resumed.train(resume_from_checkpoint=True)
    assert result.metrics == {"already_complete": True} and result.global_step == 8
    assert resumed.state.global_step == 8
    assert "already complete at step 8" in caplog.text
    for name, value in resumed.model.state_dict().items():
        assert torch.equal(value, weights[name]), name
    assert checkpoints(tmp_path / "run") == ["checkpoint-4", "checkpoint-8"]


def test_the_pretrain_recipe_leaves_a_finished_run_as_it_is(tmp_path, capsys):
    pretrain = load_recipe("pretrain")
    out = tmp_path / "out"
    argv = tiny_pretrain_argv(out, max_steps=2)
    pretrain.main(*pretrain.parse_args(argv))
    results = (out / "train_results.json").read_text()
    card = (out / "README.md").read_text()
    capsys.readouterr()
    pretrain.main(*pretrain.parse_args([*argv, "--resume_from_checkpoint", "last"]))
    assert "already complete at step 2: nothing trained, nothing rewritten" in capsys.readouterr().out
    assert (out / "train_results.json").read_text() == results and (out / "README.md").read_text() == card
    assert json.loads(results)["global_step"] == 2


def test_a_second_live_run_in_the_same_folder_is_refused(tmp_path):
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK.format(folder=str(tmp_path))], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(OutputDirInUseError, match=rf"in use by another run \(process {holder.pid} on"):
            OutputDirLock(str(tmp_path)).acquire()
    finally:
        holder.kill()  # SIGKILL: no cleanup runs, the kernel still drops the lock
        holder.wait()
    with OutputDirLock(str(tmp_path)) as lock:
        assert lock.held and json.loads((tmp_path / LOCK_NAME).read_text())["pid"] == os.getpid()
    assert not lock.held
    OutputDirLock(str(tmp_path)).acquire().release()  # released: free again


HOLD_LOCK = """
import time
from birdie_hf.run_folder import OutputDirLock
lock = OutputDirLock({folder!r}).acquire()  # kept: a collected lock closes its file
print("locked", flush=True)
time.sleep(60)
"""


def test_data_fingerprint_tells_datasets_apart(genome):
    train = genome["train"]
    assert data_fingerprint(train) == data_fingerprint(train.select(range(len(train))))
    assert data_fingerprint(train) != data_fingerprint(train.select(range(len(train) - 1)))
    assert data_fingerprint(train.to_iterable_dataset()) is None


def test_an_output_dir_without_room_or_write_access_is_refused_before_training(
    tokenizer, genome, tmp_path, monkeypatch
):
    import shutil

    import birdie_hf.run_folder as run_folder

    def read_only(path, *args, **kwargs):  # what a read-only mount answers
        raise PermissionError(13, "Permission denied", path)

    trainer = make_trainer(tokenizer, genome, tmp_path, **SAVING)
    with monkeypatch.context() as patch:
        patch.setattr(run_folder, "open", read_only, raising=False)
        with pytest.raises(PermissionError, match=r"output_dir '.*/run' is not writable \(Permission denied\)"):
            trainer.train()
    usage = shutil.disk_usage(tmp_path)
    monkeypatch.setattr(run_folder.shutil, "disk_usage", lambda path: usage._replace(free=1 << 20))
    trainer = make_trainer(tokenizer, genome, tmp_path, **SAVING)
    with pytest.raises(
        OSError, match=r"No space left for this run in .*: 1 MiB free, its checkpoints need about \d+ MiB"
    ):
        trainer.train()
    assert trainer.state.global_step == 0 and not checkpoints(tmp_path / "run")


def test_ctrl_c_says_which_checkpoint_resumes_the_run(tokenizer, genome, tmp_path, monkeypatch, capsys):
    from transformers import TrainerCallback

    from birdie_hf import BirdieTrainer
    from birdie_hf.cli import INTERRUPTED_EXIT_CODE, run_recipe

    class CtrlC(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step == 3:
                raise KeyboardInterrupt

    original = BirdieTrainer.__init__

    def with_ctrl_c(self, *args, **kwargs):
        original(self, *args, **kwargs)
        self.add_callback(CtrlC())

    monkeypatch.setattr(BirdieTrainer, "__init__", with_ctrl_c)
    pretrain = load_recipe("pretrain")
    out = tmp_path / "out"
    argv = tiny_pretrain_argv(out, max_steps=6)
    with pytest.raises(SystemExit) as stopped:
        run_recipe(lambda a: pretrain.main(*pretrain.parse_args(a)), argv)
    assert stopped.value.code == INTERRUPTED_EXIT_CODE
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines[-1] == (
        f"interrupted: stopped at step 3; resume from {out / 'checkpoint-2'} with --resume_from_checkpoint last "
        "(and the same settings)."
    )
