"""A run owns its output folder: one live run per folder, and no silent mixing of two runs' checkpoints.

- [`OutputDirLock`]: an advisory lock on `_birdie_run.lock` (which names the holder's host and process id) taken by
  the main process for the whole of `BirdieTrainer.train`; a second live run into the same folder is refused by name,
  and the kernel drops the lock when its process dies, however it dies.
- [`check_output_dir`]: a fresh (not resumed) run refuses a folder that already holds a run's checkpoints (naming
  how that run differs, or suggesting to resume it when it does not) unless `overwrite_output_dir=True`, which removes
  them first, so `--resume_from_checkpoint last` can never pick up a stale one.
- [`claim_output_dir`]: which job a folder belongs to (its record, `_birdie_job.json`, or for older folders their
  files): a job never writes into another job's folder, with or without `overwrite` (a fine-tuning run would delete a
  pre-training run's checkpoints and replace its model and card; [`refuse_other_jobs`] is checked before anything is
  removed), and replaces its own earlier outputs only with `overwrite`, removing every file that could make the old
  run pass for the new one.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import socket
from typing import Any, Callable, Optional

from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR


logger = logging.getLogger(__name__)

LOCK_NAME = "_birdie_run.lock"
_CHECKPOINT = re.compile(rf"^{PREFIX_CHECKPOINT_DIR}-(\d+)$")


class OutputDirInUseError(BlockingIOError):
    """Another live run holds the output folder's lock (an `OSError`, so recipes end in one `error:` line)."""


class OutputDirLock:
    """Exclusive claim of `output_dir` by this process for the duration of a run: an advisory `flock` on
    `output_dir/_birdie_run.lock`, which the kernel releases when the process ends however it ends (SIGKILL,
    out-of-memory, preemption), so a stale lock never blocks a requeued job. The file records the holder's host and
    process id for the refusal message and is left in place. `flock` covers processes on one machine (and most local
    and NFSv4 file systems); where `fcntl` does not exist (Windows) no lock is taken. Use as a context manager or call
    [`acquire`]/[`release`]."""

    def __init__(self, output_dir: str):
        self.path = os.path.join(output_dir, LOCK_NAME)
        self._handle = None

    @property
    def held(self) -> bool:
        return self._handle is not None

    def acquire(self) -> "OutputDirLock":
        try:
            import fcntl
        except ImportError:  # Windows: no advisory locks
            logger.warning("No fcntl on this platform: %s is not locked against a second run.", self.path)
            return self
        if self._handle is not None:
            return self
        os.makedirs(os.path.dirname(self.path) or ".", exist_ok=True)
        handle = open(self.path, "a+", encoding="utf-8")
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.seek(0)
            try:
                owner = json.loads(handle.read() or "{}")
            except ValueError:
                owner = {}
            handle.close()
            raise OutputDirInUseError(
                f"{os.path.dirname(self.path)!r} is in use by another run (process {owner.get('pid')} on "
                f"{owner.get('host')!r}, lock {self.path}); give this run another --output_dir, or wait for it."
            ) from None
        handle.seek(0)
        handle.truncate()
        json.dump({"host": socket.gethostname(), "pid": os.getpid()}, handle)
        handle.flush()
        self._handle = handle
        return self

    def release(self) -> None:
        if self._handle is not None:
            self._handle.close()  # closing the descriptor releases the flock
            self._handle = None

    def __enter__(self) -> "OutputDirLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def remove_path(path: str) -> None:
    """Remove a file or folder of a run; a symbolic link is removed itself, never what it points to (`shutil.rmtree`
    refuses links, which left an overwrite half done)."""
    if os.path.islink(path) or not os.path.isdir(path):
        os.remove(path)
    else:
        shutil.rmtree(path)


def numbered_checkpoints(output_dir: str) -> list[tuple[int, str]]:
    """`(step, path)` of the `checkpoint-N` folders of `output_dir`, highest step first."""
    if not os.path.isdir(output_dir):
        return []
    found = [
        (int(m.group(1)), os.path.join(output_dir, name))
        for name in os.listdir(output_dir)
        if (m := _CHECKPOINT.match(name)) and os.path.isdir(os.path.join(output_dir, name))
    ]
    return sorted(found, reverse=True)


def check_output_dir(
    output_dir: str,
    overwrite: bool,
    differences: Optional[Callable[[str], list[str]]] = None,
    saved: Optional[Callable[[str], bool]] = None,
) -> None:
    """Before a fresh run: refuse `output_dir` when it holds the checkpoints of an earlier run, or remove them with
    `overwrite=True`. Nothing is ever removed without `overwrite` (a crashed run restarted without
    `--resume_from_checkpoint` must not lose its progress).

    Args:
        differences (`Callable[[str], list[str]]`, *optional*): how the run that saved a checkpoint differs from this
            one; named in the refusal (empty: the same settings, so the message suggests resuming).
        saved (`Callable[[str], bool]`, *optional*): whether a `checkpoint-*` folder holds a saved run (by default:
            it has `trainer_state.json`, which transformers writes last). A folder without it, left by a run killed
            while saving, holds no run to lose; checkpoint rotation deals with it.

    Raises:
        `FileExistsError`: naming the folder, its checkpoints, how the runs differ and the ways on.
    """
    saved = saved or (lambda path: os.path.exists(os.path.join(path, "trainer_state.json")))
    paths = [path for _, path in reversed(numbered_checkpoints(output_dir)) if saved(path)]  # lowest step first
    if not paths:
        return
    checkpoints = [os.path.basename(path) for path in paths]
    if overwrite:
        for path in paths:
            remove_path(path)
        logger.warning(
            "overwrite_output_dir: removed %d checkpoints of an earlier run in %s.", len(checkpoints), output_dir
        )
        return
    shown = ", ".join(checkpoints[:3]) + (f" and {len(checkpoints) - 3} more" if len(checkpoints) > 3 else "")
    found = differences(paths[-1]) if differences is not None else ["not compared"]
    if found:
        what = (
            f"another run ({shown}; it differs from this one in: {'; '.join(found[:3])}"
            f"{'; ...' if len(found) > 3 else ''})"
        )
        resume = "continue that run with --resume_from_checkpoint last and its settings"
    else:
        what = f"a run with the same settings ({shown})"
        resume = "continue it with --resume_from_checkpoint last"
    raise FileExistsError(
        f"output_dir {output_dir!r} already holds {what}. To go on: {resume}, replace it with "
        "--overwrite_output_dir true, or choose another --output_dir."
    )


def read_json(path: str) -> Any:
    """The JSON document in `path`; a file cut short or damaged is refused naming it (`json`'s own message names no
    file).

    Raises:
        `ValueError`: naming the file, the line and what is wrong.
    """
    with open(path, encoding="utf-8") as handle:
        text = handle.read()
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(
            f"{path!r} is not valid JSON (line {error.lineno}: {error.msg}); it may have been cut short by an "
            "interrupted write."
        ) from None


JOB_RECORD_NAME = "_birdie_job.json"
PRETRAINING, FINETUNING = "pre-training", "fine-tuning"
#: The files and folders each job writes at its end (the recipes' final outputs, with `checkpoint-*` folders):
#: `overwrite` removes these, so nothing of the old run can pass for the new one's.
JOB_OUTPUTS = {
    PRETRAINING: (
        "train_results.json",  # what marks a finished run: removed first
        "README.md",
        "summary.md",
        "mixture_trajectory.json",
        "birdie_state.pt",
        "held_out_next_base.md",
        "plots",
        "config.json",
        "generation_config.json",
        "model.safetensors",
        "model.safetensors.index.json",
        "tokenizer.json",
        "tokenizer_config.json",
        "special_tokens_map.json",
        "training_args.bin",
    ),
    FINETUNING: (
        "results.json",
        "README.md",
        "config.json",
        "model.safetensors",
        "tokenizer.json",
        "tokenizer_config.json",
        "special_tokens_map.json",
        "training_args.bin",
    ),
}


_HOLDS = {
    PRETRAINING: "a pre-training run's outputs",
    FINETUNING: "a fine-tuning run's outputs",
    "evaluation": "an evaluation's results",
    "model": "a model",
    "other trainer": "another trainer's checkpoints",
}


def folder_job(output_dir: str) -> Optional[str]:
    """Whose outputs `output_dir` holds: the job its record names; for a folder without one (older versions), a
    pre-training run's (`birdie_state.pt`, `mixture_trajectory.json` or `train_results.json`), a fine-tuned
    classifier's (`results.json` beside a `config.json`), an evaluation's (`runs.jsonl` or `results.json`), another
    model (`config.json`) or another trainer's saved checkpoints (`"other trainer"`); None when it holds none of
    these (a `checkpoint-*` folder left incomplete does not count: the trainer removes it)."""
    if not os.path.isdir(output_dir):
        return None
    names = set(os.listdir(output_dir))
    if JOB_RECORD_NAME in names:
        try:
            with open(os.path.join(output_dir, JOB_RECORD_NAME), encoding="utf-8") as handle:
                job = json.load(handle).get("job")
        except (OSError, ValueError, AttributeError):
            job = None
        if isinstance(job, str):
            return job
    checkpoints = [path for _, path in numbered_checkpoints(output_dir)]
    if names & {"birdie_state.pt", "mixture_trajectory.json", "train_results.json"} or any(
        os.path.exists(os.path.join(path, "birdie_state.pt")) for path in checkpoints
    ):
        return PRETRAINING
    if {"results.json", "config.json"} <= names:
        return FINETUNING
    if names & {"runs.jsonl", "results.json"}:
        return "evaluation"
    if "config.json" in names:
        return "model"
    if any(os.path.exists(os.path.join(path, "trainer_state.json")) for path in checkpoints):
        return "other trainer"  # saved checkpoints of another Trainer (incomplete debris does not count)
    return None


def refuse_other_jobs(output_dir: str, job: str) -> None:
    """Refuse `output_dir` when it holds another job's outputs ([`folder_job`]), whatever `overwrite` says: checked
    before anything in the folder is removed.

    Raises:
        `FileExistsError`: naming the folder, what it holds and the way on (in one line).
    """
    found = folder_job(output_dir)
    if found is not None and found != job:
        raise FileExistsError(
            f"output_dir {output_dir!r} holds {_HOLDS.get(found, f'a {found} run')}; a {job} run would replace its "
            "model and delete its checkpoints. Choose another --output_dir (or remove that folder yourself)."
        )


def claim_output_dir(output_dir: str, job: str, overwrite: bool) -> None:
    """Before `job` (`PRETRAINING` or `FINETUNING`) starts writing a fresh run into `output_dir`: refuse a folder
    holding another job's outputs, whatever `overwrite` says ([`refuse_other_jobs`]); refuse one holding this job's
    finished outputs unless `overwrite`, which removes this job's outputs (`checkpoint-*` too, and
    `train_results.json`/`results.json` first, so a run killed half way is never taken for a finished one); then
    record `job` in `_birdie_job.json`. A folder that holds no job's outputs loses nothing, and files no job writes
    are always left alone.

    Raises:
        `FileExistsError`: naming the folder, what it holds and the ways on (in one line).
    """
    refuse_other_jobs(output_dir, job)
    if folder_job(output_dir) == job:
        outputs = [name for name in JOB_OUTPUTS[job] if os.path.lexists(os.path.join(output_dir, name))]
        finished = [name for name in outputs if name in ("train_results.json", "results.json", "config.json")]
        if finished and not overwrite:
            raise FileExistsError(
                f"output_dir {output_dir!r} already holds a finished {job} run ({', '.join(finished)}). Replace it "
                "with --overwrite_output_dir true, or choose another --output_dir."
            )
        if overwrite and (outputs or numbered_checkpoints(output_dir)):
            for name in outputs:  # the finished-run markers come first in JOB_OUTPUTS
                remove_path(os.path.join(output_dir, name))
            for _, path in numbered_checkpoints(output_dir):
                remove_path(path)
            logger.warning("overwrite_output_dir: removed the earlier %s run's outputs in %s.", job, output_dir)
    os.makedirs(output_dir, exist_ok=True)
    record = os.path.join(output_dir, JOB_RECORD_NAME)
    with open(record + ".tmp", "w", encoding="utf-8") as handle:
        json.dump({"job": job}, handle)
    os.replace(record + ".tmp", record)


def checkpoint_bytes(model, with_optimizer: bool = True) -> int:
    """Rough size of one checkpoint: the weights, plus AdamW's two moments when the optimizer state is saved."""
    weights = sum(p.numel() * p.element_size() for p in model.parameters())
    moments = 2 * sum(p.numel() * 4 for p in model.parameters() if p.requires_grad) if with_optimizer else 0
    return weights + moments + (1 << 20)  # + state files, tokenizer, card


def planned_checkpoints(args) -> int:
    """How many checkpoints a run keeps on disk at once (rotation keeps `save_total_limit`, plus the one being
    written), from its save settings; 1 for the final model alone."""
    strategy = getattr(getattr(args, "save_strategy", "no"), "value", getattr(args, "save_strategy", "no"))
    if strategy == "no":
        return 1
    if strategy == "steps" and args.max_steps > 0 and args.save_steps:
        steps = args.save_steps if args.save_steps >= 1 else max(1, int(args.save_steps * args.max_steps))
        count = max(1, args.max_steps // steps)
    else:
        count = max(1, int(getattr(args, "num_train_epochs", 1) or 1))
    if args.save_total_limit:
        count = min(count, args.save_total_limit + 1)
    return count + 1  # and the final model


def preflight_output_dir(output_dir: str, bytes_needed: int) -> None:
    """Refuse, before any training, an `output_dir` that cannot be written or lacks the space the run will need.

    Raises:
        `PermissionError`: naming the folder and why it cannot be written.
        `OSError`: naming the folder, the space free and the space needed.
    """
    try:
        os.makedirs(output_dir, exist_ok=True)
        probe = os.path.join(output_dir, f".birdie_write_test_{os.getpid()}")
        with open(probe, "wb") as handle:
            handle.write(b"0")
        os.remove(probe)
    except OSError as error:
        raise PermissionError(
            f"output_dir {output_dir!r} is not writable ({error.strerror or error}); choose a folder this user can "
            "write to."
        ) from None
    free = shutil.disk_usage(output_dir).free
    if free < bytes_needed:
        raise OSError(
            f"No space left for this run in {output_dir!r}: {free / 2**20:,.0f} MiB free, its checkpoints need about "
            f"{bytes_needed / 2**20:,.0f} MiB. Free space, lower --save_total_limit, save less often, or choose "
            "another --output_dir."
        )


def open_run_folder(args, model, resume: bool, differences: Callable[[str], list[str]]) -> OutputDirLock:
    """Take the output folder for a pre-training run, on the main process, before any work: it must be writable with
    room for the checkpoints the run keeps ([`preflight_output_dir`]), no other live run may hold it
    ([`OutputDirLock`], returned held: release it when the run ends), and a fresh run (not `resume`) may only replace
    a run of its own job ([`refuse_other_jobs`], [`check_output_dir`] with `differences(checkpoint)` naming how the
    run found there differs, [`claim_output_dir`]).

    Raises:
        `OSError`, `ValueError`: the refusal, naming the folder (the lock is released first).
    """
    count = planned_checkpoints(args)
    if resume:  # the checkpoints already saved are part of those the run keeps
        count = max(1, count - len(numbered_checkpoints(args.output_dir)))
    preflight_output_dir(args.output_dir, count * checkpoint_bytes(model, not args.save_only_model))
    lock = OutputDirLock(args.output_dir).acquire()
    try:
        if not resume:
            refuse_other_jobs(args.output_dir, PRETRAINING)  # before anything is removed
            check_output_dir(args.output_dir, args.overwrite_output_dir, differences=differences)
            claim_output_dir(args.output_dir, PRETRAINING, args.overwrite_output_dir)
    except BaseException:
        lock.release()
        raise
    return lock


def share_refusal(num_processes: int, refusal: Optional[BaseException]) -> None:
    """Raise `refusal` (the main process's, from its checks of the output folder) on the main process, and on every
    other process a `ValueError` quoting it: they would otherwise wait for it in the first collective until the
    distributed timeout. A collective when `num_processes > 1`: every process calls it."""
    if num_processes > 1:
        from accelerate.utils import broadcast_object_list

        message = [None if refusal is None else str(refusal)]
        broadcast_object_list(message, from_process=0)
        if refusal is None and message[0] is not None:
            raise ValueError(f"the main process refused the run: {message[0]}")
    if refusal is not None:
        raise refusal
