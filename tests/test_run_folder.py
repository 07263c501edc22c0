"""A run owns its output folder: foreign checkpoints are refused by name, finished runs are not extended, one live
run per folder."""

import json
import os
import subprocess
import sys

import pytest
import torch
from testing_utils import load_recipe, make_trainer

from birdie_hf.runs.folder import LOCK_NAME, OutputDirInUseError, OutputDirLock
from birdie_hf.runs.spec import data_fingerprint


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
    for overwrite in (False, True):  # overwrite replaces a pre-training run, never another trainer's checkpoints
        trainer = make_trainer(
            tokenizer, genome, tmp_path, **SAVING, save_total_limit=1, overwrite_output_dir=overwrite
        )
        with pytest.raises(FileExistsError, match="holds another trainer's checkpoints; a pre-training run would"):
            trainer.train()
        assert foreign.exists()


@pytest.mark.parametrize(
    "change, named",
    [
        ({"learning_rate": 1e-3}, "learning_rate: 0.003 in the checkpoint, 0.001 in this run"),
        ({"max_steps": 12}, "max_steps: 8 in the checkpoint, 12 in this run"),
        ({"per_device_train_batch_size": 2}, "per_device_train_batch_size: 4 in the checkpoint, 2 in this run"),
        (
            {"lr_scheduler_kwargs": {"num_cycles": 2}},
            r"lr_scheduler_kwargs: None in the checkpoint, \{'num_cycles': 2\}",
        ),
        ({"neftune_noise_alpha": 5.0}, "neftune_noise_alpha: None in the checkpoint, 5.0 in this run"),
        ({"dataloader_num_workers": 1}, "dataloader_num_workers: 0 in the checkpoint, 1 in this run"),
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
from birdie_hf.runs.folder import OutputDirLock
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

    import birdie_hf.runs.folder as run_folder

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


# -- which job a folder belongs to ------------------------------------------------------------------------------------
def fill(folder, *names):
    for name in names:
        path = folder / name
        if name.startswith("checkpoint-") or name == "plots":
            path.mkdir(parents=True)
            (path / "trainer_state.json").write_text("{}")
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("{}")


def test_folder_job_reads_the_record_or_an_older_folders_files(tmp_path):
    from birdie_hf.runs.folder import FINETUNING, PRETRAINING, claim_output_dir, folder_job

    assert folder_job(str(tmp_path / "missing")) is None
    fill(tmp_path / "pre", "birdie_state.pt", "config.json")
    fill(tmp_path / "ft", "results.json", "config.json")
    fill(tmp_path / "suite", "runs.jsonl")
    fill(tmp_path / "model", "config.json")
    fill(tmp_path / "other", "checkpoint-3")
    fill(tmp_path / "notes", "notes.txt")
    found = {name: folder_job(str(tmp_path / name)) for name in ("pre", "ft", "suite", "model", "other", "notes")}
    assert found == {
        "pre": PRETRAINING,
        "ft": FINETUNING,
        "suite": "evaluation",
        "model": "model",
        "other": "other trainer",
        "notes": None,
    }
    claim_output_dir(str(tmp_path / "notes"), FINETUNING, overwrite=False)  # a folder of other files is free
    assert folder_job(str(tmp_path / "notes")) == FINETUNING and (tmp_path / "notes" / "notes.txt").exists()


def test_no_job_writes_into_another_jobs_folder_even_with_overwrite(tmp_path):
    from birdie_hf.runs.folder import FINETUNING, PRETRAINING, claim_output_dir

    run = tmp_path / "run"
    fill(run, "checkpoint-2", "checkpoint-4", "train_results.json", "config.json", "model.safetensors", "README.md")
    before = sorted(os.listdir(run))
    for overwrite in (False, True):
        with pytest.raises(FileExistsError, match=r"holds a pre-training run's outputs; a fine-tuning run would"):
            claim_output_dir(str(run), FINETUNING, overwrite=overwrite)
    assert sorted(os.listdir(run)) == before  # nothing touched
    claim_output_dir(str(tmp_path / "ft"), FINETUNING, overwrite=False)
    fill(tmp_path / "ft", "results.json", "config.json")
    with pytest.raises(FileExistsError, match=r"holds a fine-tuning run's outputs; a pre-training run would"):
        claim_output_dir(str(tmp_path / "ft"), PRETRAINING, overwrite=True)


def test_a_finished_run_is_replaced_only_with_overwrite_and_then_entirely(tmp_path):
    """A finished run without checkpoints (save_strategy no) is not silently overwritten; with overwrite, every file
    that could make the old run pass for the new one goes (other files stay)."""
    from birdie_hf.runs.folder import JOB_RECORD_NAME, PRETRAINING, claim_output_dir

    run = tmp_path / "run"
    claim_output_dir(str(run), PRETRAINING, overwrite=False)
    outputs = ["train_results.json", "README.md", "summary.md", "mixture_trajectory.json", "birdie_state.pt"]
    fill(run, *outputs, "config.json", "model.safetensors", "plots", "checkpoint-8", "my_notes.txt")
    with pytest.raises(FileExistsError, match=r"already holds a finished pre-training run \(train_results.json"):
        claim_output_dir(str(run), PRETRAINING, overwrite=False)
    assert (run / "train_results.json").exists()
    claim_output_dir(str(run), PRETRAINING, overwrite=True)
    assert sorted(os.listdir(run)) == [JOB_RECORD_NAME, "my_notes.txt"]


def test_the_job_outputs_name_the_files_the_library_writes():
    from birdie_hf.hub import HELD_OUT_NAME
    from birdie_hf.runs.checkpoints import BIRDIE_STATE_NAME, TRAJECTORY_NAME
    from birdie_hf.runs.folder import JOB_OUTPUTS, PRETRAINING

    assert {BIRDIE_STATE_NAME, HELD_OUT_NAME, TRAJECTORY_NAME} <= set(JOB_OUTPUTS[PRETRAINING])


def test_finetune_refuses_a_pretraining_runs_folder_and_keeps_it_whole(tmp_path, capsys):
    pretrain, finetune = load_recipe("pretrain"), load_recipe("finetune")
    run = tmp_path / "run"
    pretrain.main(*pretrain.parse_args(tiny_pretrain_argv(run, max_steps=2)))
    before = {path: path.stat().st_mtime_ns for path in run.rglob("*") if path.name != LOCK_NAME}
    task = tmp_path / "task"
    task.mkdir()
    for split in ("train", "dev", "test"):
        (task / f"{split}.csv").write_text("sequence,label\n" + "ACGTACGTAC,0\nTTGGCCAATT,1\n" * 4)
    argv = ["--model_name_or_path", str(run), "--task", str(task), "--output_dir", str(run), "--num_train_epochs", "1"]
    with pytest.raises(FileExistsError, match=r"holds a pre-training run's outputs; a fine-tuning run would replace"):
        finetune.main(finetune.parse_args(argv))
    assert {path: path.stat().st_mtime_ns for path in run.rglob("*") if path.name != LOCK_NAME} == before


def test_a_finished_run_without_checkpoints_is_not_overwritten_by_a_new_one(tmp_path):
    pretrain = load_recipe("pretrain")
    argv = tiny_pretrain_argv(tmp_path / "run", max_steps=2) + ["--save_strategy", "no"]
    pretrain.main(*pretrain.parse_args(argv))
    results = (tmp_path / "run" / "train_results.json").read_text()
    # The final folder keeps the run's record, not the policy state a resume reads from checkpoints (a push of the
    # folder uploaded it: 19 MB beside a 4 MB model).
    assert (tmp_path / "run" / "mixture_trajectory.json").exists() and not (
        tmp_path / "run" / "birdie_state.pt"
    ).exists()
    with pytest.raises(FileExistsError, match=r"already holds a finished pre-training run \(train_results.json"):
        pretrain.main(*pretrain.parse_args([*argv, "--seed", "1"]))
    assert (tmp_path / "run" / "train_results.json").read_text() == results


def test_a_push_leaves_out_the_folder_lock_and_job_record(tmp_path):
    """Trainer.push_to_hub uploads the output folder minus `_*` and `checkpoint-*` (its ignore_patterns): the lock
    (host and process id) and the job record are local files and must match them."""
    from huggingface_hub.utils import filter_repo_objects

    from birdie_hf.runs.folder import JOB_RECORD_NAME, PRETRAINING, claim_output_dir

    with OutputDirLock(str(tmp_path)):
        claim_output_dir(str(tmp_path), PRETRAINING, overwrite=False)
        fill(tmp_path, "config.json", "model.safetensors", "README.md", "checkpoint-2")
        local = sorted(os.listdir(tmp_path))
        pushed = sorted(filter_repo_objects(local, ignore_patterns=["_*", "checkpoint-*"]))
    assert LOCK_NAME in local and JOB_RECORD_NAME in local
    assert pushed == ["README.md", "config.json", "model.safetensors"]


def test_a_full_disk_names_the_checkpoint_to_resume_from(tmp_path, capsys, monkeypatch):
    import errno

    from birdie_hf.cli import run_recipe
    from birdie_hf.trainer import BirdieTrainer

    pretrain = load_recipe("pretrain")
    save = BirdieTrainer._save_checkpoint

    def full_at_step_4(self, model, trial):
        if self.state.global_step == 4:
            raise OSError(errno.ENOSPC, "No space left on device")
        return save(self, model, trial)

    monkeypatch.setattr(BirdieTrainer, "_save_checkpoint", full_at_step_4)
    argv = tiny_pretrain_argv(tmp_path / "run", max_steps=6)
    with pytest.raises(SystemExit) as info:
        run_recipe(lambda a: pretrain.main(*pretrain.parse_args(a)), argv)
    assert info.value.code == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1
    line = errors[0]
    assert "could not write to" in line and "at step 4" in line and "No space left on device" in line
    assert f"resume from {tmp_path / 'run' / 'checkpoint-2'} with --resume_from_checkpoint last" in line


def test_overwrite_removes_a_symlinked_checkpoint_link_and_keeps_its_target(tmp_path):
    from birdie_hf.runs.folder import check_output_dir

    run, elsewhere = tmp_path / "run", tmp_path / "archive" / "checkpoint-4"
    fill(run, "checkpoint-2")
    fill(tmp_path / "archive", "checkpoint-4")
    (run / "checkpoint-4").symlink_to(elsewhere, target_is_directory=True)
    check_output_dir(str(run), overwrite=True)
    assert not os.path.lexists(run / "checkpoint-4") and not (run / "checkpoint-2").exists()
    assert (elsewhere / "trainer_state.json").exists()  # the link went, not what it pointed to


def test_overwrite_never_removes_another_jobs_checkpoints_or_a_users_files(tokenizer, genome, tmp_path):
    """Ownership is checked before anything is removed: overwrite deleted a fine-tuning run's checkpoints (then
    refused the folder), and removed a user's README.md and plots/ from a folder that held no run."""
    from birdie_hf.runs.folder import PRETRAINING, claim_output_dir

    ft = tmp_path / "run"
    fill(ft, "checkpoint-10", "results.json", "config.json")
    before = sorted(os.listdir(ft))
    trainer = make_trainer(tokenizer, genome, tmp_path, **SAVING, overwrite_output_dir=True)
    with pytest.raises(FileExistsError, match="holds a fine-tuning run's outputs"):
        trainer.train()
    assert sorted(set(os.listdir(ft)) - {LOCK_NAME}) == before
    mine = tmp_path / "project"
    fill(mine, "README.md", "plots", "notes.txt")
    claim_output_dir(str(mine), PRETRAINING, overwrite=True)
    assert {"README.md", "plots", "notes.txt"} <= set(os.listdir(mine))
