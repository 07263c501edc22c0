"""What defines a run, recorded with every checkpoint and compared when a run resumes or replaces another.

[`training_spec`] holds the settings that change a run's result (seed, optimisation, batch geometry, model shape,
a fingerprint of the training windows); [`birdie_run_spec`] adds the objective entries with every setting, the initial
mixture and the reward-policy settings (`BirdieTrainingArguments.policy_settings`); [`run_spec_differences`] says, one phrase per
setting, how two specs differ.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
from typing import TYPE_CHECKING, Any, Optional

import numpy as np

from .checkpoints import BIRDIE_STATE_NAME, read_birdie_state


if TYPE_CHECKING:
    from ..collator import DataCollatorForBirdie
    from ..config import BirdieTrainingArguments


#: `TrainingArguments` fields whose change changes what a run computes.
TRAINING_SPEC_FIELDS = (
    "seed",
    "data_seed",
    "learning_rate",
    "lr_scheduler_type",
    "warmup_steps",
    "weight_decay",
    "adam_beta1",
    "adam_beta2",
    "adam_epsilon",
    "max_grad_norm",
    "optim",
    "per_device_train_batch_size",
    "gradient_accumulation_steps",
    "max_steps",
    "num_train_epochs",
    "max_length",
    "example_length",
    "loss_averaging",
    "bf16",
    "fp16",
    "lr_scheduler_kwargs",
    "neftune_noise_alpha",
    "dataloader_num_workers",  # with workers, a policy update reaches later batches (prefetch)
)
_MODEL_FIELDS = (
    "model_type",
    "hidden_size",
    "num_hidden_layers",
    "num_attention_heads",
    "intermediate_size",
    "tie_word_embeddings",
)


def data_fingerprint(dataset) -> Optional[dict]:
    """`{"windows": n, "sha256": ...}` over the number of windows and the tokens of up to 64 evenly spaced windows of
    a map-style dataset (None for iterable datasets, whose stream position is checked on resume instead)."""
    try:
        count = len(dataset)
    except TypeError:
        return None
    if count == 0:
        return {"windows": 0, "sha256": None}
    digest = hashlib.sha256(str(count).encode())
    step = max(1, count // 64)
    for index in range(0, count, step):
        row = dataset[index]
        digest.update(repr(list(row.get("input_ids", row) if isinstance(row, dict) else row)).encode())
    return {"windows": count, "sha256": digest.hexdigest()[:16]}


def training_spec(args, model=None, train_dataset=None) -> dict[str, Any]:
    """The [`TRAINING_SPEC_FIELDS`] of `args` plus the world size, the model's shape and the data fingerprint."""
    spec: dict[str, Any] = {name: getattr(args, name, None) for name in TRAINING_SPEC_FIELDS}
    spec = {k: (v.value if hasattr(v, "value") else v) for k, v in spec.items()}  # enums as plain strings
    spec["world_size"] = getattr(args, "world_size", 1)
    config = getattr(model, "config", None)
    spec["model"] = {name: getattr(config, name, None) for name in _MODEL_FIELDS} if config is not None else None
    spec["data"] = data_fingerprint(train_dataset) if train_dataset is not None else None
    return spec


def birdie_run_spec(
    args: BirdieTrainingArguments, data_collator: DataCollatorForBirdie, model=None, train_dataset=None
) -> dict[str, Any]:
    """What defines a Birdie run, recorded in every checkpoint and compared when resuming.

    Returns a dict of plain values: `policy` (the mode), `entries` (each entry's `name`, `objective` and every setting
    of its objective, defaults included), `initial_mixture` (one weight per entry), with `policy="birdie"`
    `policy_settings` (`args.policy_settings()`), and `training`: the settings that change the result
    (seed, optimisation, batch geometry, `max_steps`, world size, the model's shape and a fingerprint of the training
    windows; see [`training_spec`]).
    """
    entries = []
    for spec, objective in zip(data_collator.specs, data_collator.transforms):
        config = objective.config
        settings = dataclasses.asdict(config) if dataclasses.is_dataclass(config) else dict(spec.settings)
        entries.append({"name": spec.name, "objective": spec.objective, "settings": settings})
    return {
        "policy": args.policy,
        "entries": entries,
        "initial_mixture": data_collator.mixture.weights.tolist(),
        "policy_settings": (args.policy_settings() if args.policy == "birdie" else None),
        "training": training_spec(args, model, train_dataset),
    }


def run_spec_differences(saved: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """Human-readable differences between two run specs (see [`BirdieRewardCallback`]), empty when they match.

    >>> run_spec_differences({"policy": "birdie"}, {"policy": "static"})
    ["policy: 'birdie' in the checkpoint, 'static' in this run"]
    """
    differences = []
    if saved.get("policy") != current.get("policy"):
        differences.append(f"policy: {saved.get('policy')!r} in the checkpoint, {current.get('policy')!r} in this run")
    saved_entries, current_entries = saved.get("entries") or [], current.get("entries") or []
    saved_names = [entry["name"] for entry in saved_entries]
    current_names = [entry["name"] for entry in current_entries]
    if saved_names != current_names:
        differences.append(f"objective entries: {saved_names} in the checkpoint, {current_names} in this run")
    else:
        for old, new in zip(saved_entries, current_entries):
            if old["objective"] != new["objective"]:
                differences.append(
                    f"entry {old['name']!r}: objective {old['objective']!r} in the checkpoint, "
                    f"{new['objective']!r} in this run"
                )
                continue
            for key, (was, now) in _changed(old.get("settings") or {}, new.get("settings") or {}).items():
                differences.append(
                    f"entry {old['name']!r} setting {key}: {was!r} in the checkpoint, {now!r} in this run"
                )
        was, now = saved.get("initial_mixture"), current.get("initial_mixture")
        if was is not None and now is not None and not np.allclose(was, now, rtol=0, atol=1e-9):
            differences.append(
                "initial mixture: "
                + ", ".join(f"{name} {a:.4g} -> {b:.4g}" for name, a, b in zip(saved_names, was, now) if a != b)
                + " (checkpoint -> this run)"
            )
    if saved.get("policy") == current.get("policy"):  # another policy already says it all
        for key, (was, now) in _changed(
            saved.get("policy_settings") or {}, current.get("policy_settings") or {}
        ).items():
            differences.append(f"{key}: {was!r} in the checkpoint, {now!r} in this run")
    if saved.get("training") is not None and current.get("training") is not None:
        for key, (was, now) in _changed(saved["training"], current["training"]).items():
            differences.append(f"{key}: {was!r} in the checkpoint, {now!r} in this run")
    return differences


def _changed(saved: dict[str, Any], current: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    """`{key: (saved value, current value)}` for the keys whose values differ (a key one side lacks reads as `None`)."""
    keys = list(saved) + [key for key in current if key not in saved]
    changed = {}
    for key in keys:
        was = saved.get(key)
        if was != current.get(key):
            changed[key] = (was, current.get(key))
    return changed


def saved_run_differences(checkpoint: str, current: dict[str, Any]) -> list[str]:
    """How the run that saved `checkpoint` differs from the run spec `current` (empty: the same settings)."""
    try:
        state = read_birdie_state(checkpoint)
    except ValueError:  # missing, truncated or foreign: cannot be this run's
        return [f"{os.path.basename(checkpoint)} has no readable {BIRDIE_STATE_NAME}"]
    saved = state.get("run_spec") if isinstance(state, dict) else None
    if not saved or saved.get("training") is None:
        return ["its settings were not recorded"]
    return run_spec_differences(saved, current)
