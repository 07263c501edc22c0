"""Checkpoint integrity: which files a resumable `BirdieTrainer` checkpoint holds, whether each is whole, and the
SHA-256 sums that catch damage of the same size.

[`checkpoint_problems`] says why a `checkpoint-N` folder cannot be resumed from (an empty list when it can);
[`last_complete_checkpoint`] finds the newest one that can; [`write_checkpoint_checksums`] and
[`checksum_problems`] write and verify `checksums.json`. Everything here reads headers and files, never a model.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import struct
import zipfile
from typing import Any, Callable, Optional, Union

import torch
from transformers.trainer import (
    OPTIMIZER_NAME,
    OPTIMIZER_NAME_BIN,
    SCALER_NAME,
    SCHEDULER_NAME,
    TRAINER_STATE_NAME,
)
from transformers.utils import (
    ADAPTER_SAFE_WEIGHTS_NAME,
    ADAPTER_WEIGHTS_NAME,
    SAFE_WEIGHTS_INDEX_NAME,
    SAFE_WEIGHTS_NAME,
    WEIGHTS_INDEX_NAME,
    WEIGHTS_NAME,
)

from .folder import numbered_checkpoints, remove_path


logger = logging.getLogger(__name__)
#: File holding the policy, mixture, trajectory and run spec in each checkpoint. It is written first (before the model,
#: optimizer and trainer state), so its presence alone does not mean the checkpoint is complete: see
#: [`checkpoint_problems`].
BIRDIE_STATE_NAME = "birdie_state.pt"
#: The run's trajectory, in its output folder and every checkpoint (read by `birdie_hf.trajectory`).
TRAJECTORY_NAME = "mixture_trajectory.json"

_RNG_STATE_PATTERN = re.compile(r"^rng_state(_\d+)?\.pth$")


def checkpoint_problems(
    checkpoint: str, require_training_state: bool = True, verify_checksums: bool = True
) -> list[str]:
    """Why `checkpoint` cannot be resumed from: an empty list when it is complete.

    A complete checkpoint holds every file a resumed `BirdieTrainer` reads, each readable: the model weights (a
    `model.safetensors` whose size matches its header, the shards of a sharded one, or another format transformers
    resumes from), `optimizer.pt`, `scheduler.pt`, the RNG state (`rng_state.pth` or `rng_state_<rank>.pth`),
    `trainer_state.json` and `birdie_state.pt`. Torch files are checked to be whole archives (a file cut short loses
    the index at its end); DeepSpeed and FSDP engine folders are checked for presence only. The check reads headers,
    never the tensors, so it is cheap for large checkpoints.

    Args:
        checkpoint (`str`): a `checkpoint-N` folder.
        require_training_state (`bool`, *optional*, defaults to `True`): require the optimizer, scheduler and RNG
            files (`False` for runs with `save_only_model=True`).
        verify_checksums (`bool`, *optional*, defaults to `True`): also check every file against the SHA-256 sums
            BirdieTrainer writes into `checksums.json` when the checkpoint is complete, which catches damage that
            keeps a file's size (reads every byte; checkpoints saved without the file are not checked).

    Returns:
        `list[str]`: one message per missing or damaged file, naming it.
    """
    if not os.path.isdir(checkpoint):
        return [f"{checkpoint!r} is not a folder"]
    names = set(os.listdir(checkpoint))
    deepspeed_tag = _deepspeed_tag(checkpoint, names)
    problems = _weights_problems(checkpoint, names, deepspeed_tag)
    if require_training_state:
        if deepspeed_tag is not None:
            if not os.path.isdir(os.path.join(checkpoint, deepspeed_tag)):
                problems.append(f"'latest' names the DeepSpeed folder {deepspeed_tag!r}, which is missing")
        elif OPTIMIZER_NAME in names:
            problems += _torch_file_problems(checkpoint, OPTIMIZER_NAME)
        elif OPTIMIZER_NAME_BIN in names:
            problems += _torch_file_problems(checkpoint, OPTIMIZER_NAME_BIN)
        elif not any(name.startswith("optimizer") and os.path.isdir(os.path.join(checkpoint, name)) for name in names):
            problems.append(f"no {OPTIMIZER_NAME}")
        if SCHEDULER_NAME in names:
            problems += _torch_file_problems(checkpoint, SCHEDULER_NAME)
        elif deepspeed_tag is None:  # DeepSpeed keeps its own scheduler in its engine folder
            problems.append(f"no {SCHEDULER_NAME}")
        if SCALER_NAME in names:
            problems += _torch_file_problems(checkpoint, SCALER_NAME)
        rng_files = sorted(name for name in names if _RNG_STATE_PATTERN.match(name))
        if not rng_files:
            problems.append("no rng_state.pth")
        for name in rng_files:
            problems += _torch_file_problems(checkpoint, name)
    problems += _trainer_state_problems(checkpoint, names)
    if BIRDIE_STATE_NAME in names:
        problems += _torch_file_problems(checkpoint, BIRDIE_STATE_NAME)
    else:
        problems.append(f"no {BIRDIE_STATE_NAME} (not a BirdieTrainer checkpoint, or saving was interrupted)")
    if verify_checksums and not problems:
        problems += checksum_problems(checkpoint)
    return problems


#: Written into every checkpoint once it is complete: `{file: sha256}` over every file of the folder.
CHECKSUMS_NAME = "checksums.json"


def _sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _checkpoint_files(checkpoint: str) -> list[str]:
    files = []
    for root, _, names in os.walk(checkpoint):
        for name in names:
            relative = os.path.relpath(os.path.join(root, name), checkpoint)
            if relative != CHECKSUMS_NAME and not relative.endswith(".partial"):
                files.append(relative)
    return sorted(files)


def write_checkpoint_checksums(checkpoint: str) -> None:
    """Write `checksums.json` (SHA-256 of every file) into a complete checkpoint, atomically."""
    sums = {name: _sha256(os.path.join(checkpoint, name)) for name in _checkpoint_files(checkpoint)}
    partial = os.path.join(checkpoint, CHECKSUMS_NAME + ".partial")
    with open(partial, "w", encoding="utf-8") as handle:
        json.dump({"sha256": sums}, handle, indent=1)
    os.replace(partial, os.path.join(checkpoint, CHECKSUMS_NAME))


def checksum_problems(checkpoint: str) -> list[str]:
    """Files of `checkpoint` that are missing or differ from `checksums.json` (empty when it has none)."""
    path = os.path.join(checkpoint, CHECKSUMS_NAME)
    if not os.path.exists(path):
        return []
    try:
        with open(path, encoding="utf-8") as handle:
            sums = json.load(handle)["sha256"]
    except (OSError, ValueError, KeyError, TypeError) as error:
        return [f"{CHECKSUMS_NAME} is unreadable ({error})"]
    problems = []
    for name, expected in sums.items():
        file = os.path.join(checkpoint, name)
        if not os.path.exists(file):
            problems.append(f"{name} is missing (listed in {CHECKSUMS_NAME})")
        elif _sha256(file) != expected:
            problems.append(f"{name} does not match its checksum: it changed after it was saved (damaged)")
    return problems


def last_complete_checkpoint(output_dir: str, require_training_state: bool = True) -> Optional[str]:
    """The highest-step `checkpoint-N` folder of `output_dir` that is complete (see [`checkpoint_problems`]), or
    `None`. Incomplete or damaged ones (a run killed while saving, a truncated file) are skipped with a warning
    naming them and what is wrong."""
    for _, path in numbered_checkpoints(output_dir):
        problems = checkpoint_problems(path, require_training_state=require_training_state)
        if not problems:
            return path
        logger.warning("Skipping incomplete checkpoint %s: %s.", path, "; ".join(problems))
    return None


def _deepspeed_tag(checkpoint: str, names: set[str]) -> Optional[str]:
    """The engine folder named by a DeepSpeed checkpoint's `latest` file, or `None` for other checkpoints."""
    if "latest" not in names:
        return None
    try:
        with open(os.path.join(checkpoint, "latest"), encoding="utf-8") as handle:
            return handle.read().strip() or "latest"
    except (OSError, UnicodeDecodeError):
        return "latest"


def _weights_problems(checkpoint: str, names: set[str], deepspeed_tag: Optional[str]) -> list[str]:
    """Problems with the model weights, in the order `Trainer._load_from_checkpoint` looks for them."""
    if SAFE_WEIGHTS_NAME in names:
        return _safetensors_problems(checkpoint, SAFE_WEIGHTS_NAME)
    if WEIGHTS_NAME in names:
        return _torch_file_problems(checkpoint, WEIGHTS_NAME)
    for index_name, check in (
        (SAFE_WEIGHTS_INDEX_NAME, _safetensors_problems),
        (WEIGHTS_INDEX_NAME, _torch_file_problems),
    ):
        if index_name in names:
            try:
                with open(os.path.join(checkpoint, index_name), encoding="utf-8") as handle:
                    shards = sorted(set(json.load(handle)["weight_map"].values()))
            except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
                return [f"{index_name} is unreadable ({error})"]
            problems = []
            for shard in shards:
                problems += check(checkpoint, shard) if shard in names else [f"no {shard} (listed in {index_name})"]
            return problems
    if ADAPTER_SAFE_WEIGHTS_NAME in names:
        return _safetensors_problems(checkpoint, ADAPTER_SAFE_WEIGHTS_NAME)
    if ADAPTER_WEIGHTS_NAME in names:
        return _torch_file_problems(checkpoint, ADAPTER_WEIGHTS_NAME)
    if deepspeed_tag is not None or any(name.startswith("pytorch_model_fsdp") for name in names):
        return []  # engine-managed weights (DeepSpeed ZeRO, FSDP): checked for presence only
    return [f"no model weights ({SAFE_WEIGHTS_NAME} or another format transformers resumes from)"]


def _safetensors_problems(checkpoint: str, name: str) -> list[str]:
    """Check that a safetensors file's header parses and its size is what the header describes."""
    path = os.path.join(checkpoint, name)
    try:
        size = os.path.getsize(path)
        with open(path, "rb") as handle:
            prefix = handle.read(8)
            if len(prefix) < 8:
                return [f"{name} is truncated ({size} bytes)"]
            (header_length,) = struct.unpack("<Q", prefix)
            if 8 + header_length > size:
                return [f"{name} is truncated ({size} bytes, shorter than its {header_length}-byte header)"]
            header = json.loads(handle.read(header_length))
        data_end = max((entry["data_offsets"][1] for key, entry in header.items() if key != "__metadata__"), default=0)
    except (OSError, ValueError, KeyError, IndexError, TypeError, AttributeError) as error:
        return [f"{name} is unreadable ({type(error).__name__}: {error})"]
    expected = 8 + header_length + int(data_end)
    if size < expected:
        return [f"{name} is truncated ({size} bytes where its header describes {expected})"]
    if size > expected:
        return [f"{name} is damaged ({size} bytes where its header describes {expected})"]
    return []


def _torch_file_problems(checkpoint: str, name: str) -> list[str]:
    """Check that a `torch.save` file is a whole zip archive (its index is at the end, so a cut file has none)."""
    path = os.path.join(checkpoint, name)
    try:
        size = os.path.getsize(path)
        with zipfile.ZipFile(path) as archive:
            entries = archive.infolist()
    except (OSError, zipfile.BadZipFile, ValueError) as error:
        return [f"{name} is truncated or not a torch file ({error})"]
    if any(entry.header_offset + entry.compress_size > size for entry in entries):
        return [f"{name} is truncated ({size} bytes)"]
    return []


def _trainer_state_problems(checkpoint: str, names: set[str]) -> list[str]:
    if TRAINER_STATE_NAME not in names:
        return [f"no {TRAINER_STATE_NAME} (written last: saving was interrupted)"]
    try:
        with open(os.path.join(checkpoint, TRAINER_STATE_NAME), encoding="utf-8") as handle:
            state = json.load(handle)
    except (OSError, ValueError) as error:
        return [f"{TRAINER_STATE_NAME} is unreadable ({error})"]
    if not isinstance(state, dict) or "global_step" not in state:
        return [f"{TRAINER_STATE_NAME} has no global_step"]
    return []


def write_json(path: str, payload: Any) -> None:
    """`payload` as indented JSON at `path`."""
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(payload, handle, indent=2)


def atomic_write(path: str, write: Callable[[str], None]) -> None:
    """Write through a temporary file in the same folder, then rename: readers never see a partial file."""
    tmp = f"{path}.tmp-{os.getpid()}"
    try:
        write(tmp)
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def remove_incomplete_checkpoints(run_dir: str, step: int, save_only_model: bool = False) -> None:
    """Delete the incomplete `checkpoint-N` folders other than this save's (`N != step`) before the parent
    rotates checkpoints (`save_only_model`: the run saves no optimizer or trainer state).

    They are left by a run killed while saving (later steps, when it was then resumed from an earlier checkpoint)
    or while rotation deleted an old checkpoint (earlier steps). None can be resumed from, and rotation would keep
    them over complete ones: it orders by modification time, which a half-deleted folder has just changed, or by
    step number where modification times are unreliable (some network file systems), and always keeps the most
    recent. Another trainer's saved checkpoint is never touched.
    """
    for checkpoint_step, path in numbered_checkpoints(run_dir):
        if checkpoint_step == step:
            continue
        # An earlier step may come from a model-only save (save_only_model then): only missing model,
        # trainer or Birdie state marks it incomplete.
        training_state = checkpoint_step > step and not save_only_model
        problems = checkpoint_problems(path, require_training_state=training_state, verify_checksums=False)
        ours_or_unsaved = os.path.exists(os.path.join(path, BIRDIE_STATE_NAME)) or not os.path.exists(
            os.path.join(path, TRAINER_STATE_NAME)
        )
        if problems and ours_or_unsaved:
            logger.warning("Deleting incomplete checkpoint %s (%s).", path, "; ".join(problems))
            try:
                remove_path(path)  # a symbolic link is removed itself, never what it points to
            except OSError as error:  # rotation may still find it; the next save tries again
                logger.warning("Could not delete %s: %s", path, error)


def checkpoint_to_resume(
    output_dir: str, resume_from_checkpoint: Union[str, bool], require_training_state: bool = True
) -> str:
    """The complete checkpoint that `resume_from_checkpoint` designates (`True`: the last complete one of `output_dir`),
    or a `ValueError` saying why none."""
    if resume_from_checkpoint is True:
        checkpoint = last_complete_checkpoint(output_dir, require_training_state=require_training_state)
        if checkpoint is None:
            raise ValueError(
                f"resume_from_checkpoint=True found no complete checkpoint in {output_dir!r} "
                "(incomplete ones are listed in the warnings above). Train without `resume_from_checkpoint`, or "
                "pass the path of a complete checkpoint."
            )
        return checkpoint
    checkpoint = os.fspath(resume_from_checkpoint)
    problems = checkpoint_problems(checkpoint, require_training_state=require_training_state)
    if problems:
        parent = os.path.dirname(os.path.normpath(checkpoint))
        fallback = next(
            (
                path
                for _, path in numbered_checkpoints(parent)
                if os.path.normpath(path) != os.path.normpath(checkpoint)
                and not checkpoint_problems(path, require_training_state=require_training_state)
            ),
            None,
        )
        advice = (
            f"The last complete checkpoint next to it is {fallback!r}: pass that path, or "
            f"resume_from_checkpoint=True to pick it."
            if fallback
            else "No complete checkpoint was found next to it."
        )
        raise ValueError(
            f"Cannot resume from {checkpoint!r}: it is not a complete checkpoint ({'; '.join(problems)}). {advice}"
        )
    return checkpoint


def save_birdie_state(
    directory: str, trajectory: dict[str, Any], policy_state: Optional[dict[str, Any]] = None
) -> None:
    """Write `trajectory` (`mixture_trajectory.json`) and, when given, the policy state (`birdie_state.pt`) into
    `directory`, each atomically. The state holds plain Python values and tensors only, so it loads with
    `torch.load(..., weights_only=True)`."""
    os.makedirs(directory, exist_ok=True)
    atomic_write(os.path.join(directory, TRAJECTORY_NAME), lambda path: write_json(path, trajectory))
    if policy_state is not None:
        atomic_write(os.path.join(directory, BIRDIE_STATE_NAME), lambda path: torch.save(policy_state, path))


def read_birdie_state(checkpoint: str) -> dict[str, Any]:
    """The Birdie state saved in `checkpoint`, or a `ValueError` saying it is missing or unreadable."""
    path = os.path.join(checkpoint, BIRDIE_STATE_NAME)
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError as error:
        raise ValueError(
            f"{checkpoint!r} has no {BIRDIE_STATE_NAME}: it is incomplete or not a BirdieTrainer checkpoint."
        ) from error
    except Exception as error:  # truncated zip, foreign pickle: torch raises several types
        raise ValueError(f"Cannot read the Birdie state {path!r}: {error}") from error
