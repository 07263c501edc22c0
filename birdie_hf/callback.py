"""`BirdieRewardCallback`: the only glue between the reward policy and the `Trainer` loop."""

from __future__ import annotations

import logging
from collections import OrderedDict
from typing import TYPE_CHECKING, Any, Optional, Sequence

import numpy as np
import torch
from transformers import (
    PrinterCallback,
    ProgressCallback,
    TrainerCallback,
    TrainerControl,
    TrainerState,
    TrainingArguments,
)

from .mixture import LiveMixture
from .policy import BirdiePolicy, evaluation_schedule, total_reward


if TYPE_CHECKING:
    from .collator import DataCollatorForBirdie
    from .config import BirdieTrainingArguments


logger = logging.getLogger(__name__)


class BirdieRewardCallback(TrainerCallback):
    """Runs Birdie's policy inside a `Trainer`.

    - `on_step_end` asks for an evaluation (`control.should_evaluate`) at the policy's evaluation steps, and applies
      a pending mixture one step after it was decided.
    - [`observe`] is handed the per-entry losses of the fixed held-out set by [`BirdieTrainer.evaluate`] at those
      scheduled steps only, lets the policy choose the next mixture on the main process, broadcasts it to every rank
      and returns the decision as log entries (`next_mixture/<entry>`, `reward/<entry>`, `reward/total`,
      `policy/*`), which the trainer logs. Any other evaluation (a user's `eval_strategy`, `eval_on_start` or
      `trainer.evaluate(other_data)`) reports losses and changes nothing in the policy or mixture.

    Why one step of delay: a batch is prefetched before the step that consumes it (accelerate's `DataLoaderShard`),
    so a mixture applied at the end of step `s` first shapes the batch of step `s + 2`. Applying it at the end of
    step `s + 1` instead keeps this lag identical in a resumed run (whose loader prefetches two batches when it
    starts), so interrupted and uninterrupted runs see the same batches. With `dataloader_num_workers > 0` the lag
    also depends on worker timing: the mixture still arrives within `num_workers * prefetch_factor + 1` batches, but
    runs are only bit-for-bit reproducible with `dataloader_num_workers=0`.

    Args:
        mixture ([`LiveMixture`]): the collator's shared mixture.
        policy ([`BirdiePolicy`], *optional*): `None` keeps the mixture fixed (`static` and `ntp` modes); the
            scheduled evaluations still run and are recorded in [`trajectory`].
        schedule_evaluations (`bool`, *optional*, defaults to `True`): request evaluations at the policy's steps
            (off when there is no held-out data, e.g. a `static` run without `eval_dataset`).
        run_spec (`dict`, *optional*): what defines the run whose state this is (plain values; [`BirdieTrainer`]
            records the policy mode, each entry's objective and settings, the initial mixture and the reward-policy
            settings, see [`birdie_run_spec`]). Saved in [`state_dict`]; [`load_state_dict`] refuses a state saved
            with another spec, so a resumed run cannot silently continue under other settings.

    The callback owns its policy: [`from_training_args`] builds it (what [`BirdieTrainer`] does), and
    `on_train_begin` sets the evaluation schedule from the run's `max_steps`: `args.policy_schedule` of
    [`BirdieTrainingArguments`], or Birdie's schedule with its defaults ([`~birdie_hf.policy.evaluation_schedule`])
    for plain `TrainingArguments`.
    """

    def __init__(
        self,
        mixture: LiveMixture,
        policy: Optional[BirdiePolicy] = None,
        schedule_evaluations: bool = True,
        run_spec: Optional[dict[str, Any]] = None,
    ):
        self.mixture = mixture
        self.policy = policy
        self.schedule_evaluations = schedule_evaluations
        self.run_spec = None if run_spec is None else _plain(run_spec, "run_spec")
        self.evaluation_steps: set[int] = set()
        self.pending: Optional[list[float]] = None
        self.pending_step: Optional[int] = None
        self.trajectory: list[dict] = []

    @classmethod
    def from_training_args(
        cls,
        args: BirdieTrainingArguments,
        collator: DataCollatorForBirdie,
        schedule_evaluations: bool = True,
        run_spec: Optional[dict[str, Any]] = None,
    ) -> BirdieRewardCallback:
        """The callback of a run of `args` on `collator`'s mixture: with `args.policy == "birdie"` it owns a
        [`BirdiePolicy`] over the collator's entries (reward classes, initial weights) configured by
        `args.policy_config()`; otherwise it keeps the mixture fixed and records the scheduled evaluations."""
        policy = None
        if args.policy == "birdie":
            policy = BirdiePolicy(
                collator.objective_names, collator.reward_classes, collator.mixture.weights, args.policy_config()
            )
        return cls(collator.mixture, policy, schedule_evaluations=schedule_evaluations, run_spec=run_spec)

    # -- schedule --------------------------------------------------------------------------------------------------
    def on_train_begin(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs):
        if hasattr(args, "policy_schedule"):  # BirdieTrainingArguments (or a subclass's own schedule)
            warmup, interval, steps = args.policy_schedule(state.max_steps)
        else:  # plain TrainingArguments: Birdie's schedule with its defaults
            warmup, interval, steps = evaluation_schedule(state.max_steps).as_tuple()
        self.evaluation_steps = set(steps) if self.schedule_evaluations else set()
        if self.policy is not None:
            self.policy.config.warmup_steps = warmup
        logger.info("Birdie policy evaluations at steps %s (warm-up %d, then every %d).", steps, warmup, interval)

    def on_epoch_begin(self, args, state: TrainerState, control: TrainerControl, **kwargs):
        self.mixture.set_epoch(int(state.epoch + 1e-6) if state.epoch else 0)

    def on_step_end(self, args, state: TrainerState, control: TrainerControl, **kwargs):
        if self.pending is not None and state.global_step > self.pending_step:
            self.mixture.update(self.pending)
            self.pending = self.pending_step = None
        if state.global_step in self.evaluation_steps:
            control.should_evaluate = True
        return control

    def is_due(self, step: int) -> bool:
        """Whether `step` is a scheduled policy evaluation not yet observed."""
        return step in self.evaluation_steps and not (self.trajectory and self.trajectory[-1]["step"] == step)

    # -- decisions -------------------------------------------------------------------------------------------------
    def observe(
        self,
        args,
        state: TrainerState,
        losses: np.ndarray,
        example_losses=None,
        health: Optional[dict[str, Any]] = None,
    ) -> dict[str, float]:
        """Record a scheduled evaluation (`losses`: shape `(num_entries,)`, the fixed held-out set; `example_losses`:
        per entry, its held-out examples' losses, for the standardised reward; `health`: the model's health reading,
        see [`birdie_hf.health.HealthReading.to_dict`]) and let the policy decide the next mixture. Returns the
        decision as log entries for the trainer to log."""
        losses = np.asarray(losses, dtype=np.float64)
        record = {
            "step": int(state.global_step),
            "losses": dict(zip(self.mixture.names, losses.tolist())),
            "mixture": self.mixture.as_dict(),
        }
        if health is not None:
            record["health"] = dict(health)
        logs: dict[str, float] = {}
        if self.policy is not None:
            decision = None
            if state.is_world_process_zero:
                progress = state.global_step / max(1, state.max_steps)
                decision = self.policy.observe(state.global_step, losses, progress, example_losses)
                top = sorted(zip(self.mixture.names, decision.mixture.tolist()), key=lambda x: -x[1])[:3]
                logger.info(
                    "Birdie step %d: %s mixture for the next interval, led by %s (%s).",
                    state.global_step,
                    decision.kind,
                    ", ".join(f"{name} {weight:.2f}" for name, weight in top),
                    decision.reason,
                )
            payload = _broadcast_from_main(
                None
                if decision is None
                else {
                    "mixture": decision.mixture.tolist(),
                    "rewards": None if decision.rewards is None else decision.rewards.tolist(),
                    "kind": decision.kind,
                    "reason": decision.reason,
                    "reward_model_loss": decision.reward_model_loss,
                    "predicted_reward": decision.predicted_reward,
                    "predicted_gain": decision.predicted_gain,
                    "reward_z": None if decision.reward_z is None else decision.reward_z.tolist(),
                }
            )
            self.pending, self.pending_step = payload["mixture"], state.global_step
            record["next_mixture"] = dict(zip(self.mixture.names, payload["mixture"]))
            record["decision"] = payload["kind"]
            record["reason"] = payload["reason"]
            for name, weight in zip(self.mixture.names, payload["mixture"]):
                logs[f"next_mixture/{name}"] = weight
            if payload["rewards"] is not None:
                record["rewards"] = dict(zip(self.mixture.names, payload["rewards"]))
                for name, reward in zip(self.mixture.names, payload["rewards"]):
                    logs[f"reward/{name}"] = reward
                logs["reward/total"] = record["total_reward"] = float(
                    total_reward(np.asarray(payload["rewards"]), self.policy.classes)
                )
            if payload["reward_z"] is not None:  # standardised reward: progress in units of its noise
                record["reward_z"] = dict(zip(self.mixture.names, payload["reward_z"]))
            logs["policy/explored"] = float(payload["kind"] == "explore")
            for key in ("reward_model_loss", "predicted_reward", "predicted_gain"):
                if payload[key] is not None:
                    logs[f"policy/{key}"] = record[key] = float(payload[key])
        self.trajectory.append(record)
        return logs

    # -- checkpointing ---------------------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Everything a resumed run needs: mixture, pending decision, trajectory, policy state and run spec.

        Only plain Python values (dicts, lists, tuples, strings, numbers, `None`) and tensors, so that
        `torch.load(..., weights_only=True)` reads it back; numpy arrays and scalars are converted to lists and
        Python numbers.

        Raises:
            `TypeError`: a value of another type, named by its place in the state.
        """
        return _plain(
            {
                "mixture": self.mixture.weights.tolist(),
                "entry_names": list(self.mixture.names),
                "pending": self.pending,
                "pending_step": self.pending_step,
                "trajectory": self.trajectory,
                "policy": None if self.policy is None else self.policy.state_dict(),
                "run_spec": self.run_spec,
            },
            "state",
        )

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a [`state_dict`] after [`check_compatible`] accepted it."""
        self.check_compatible(state)
        self.mixture.update(state["mixture"])
        self.pending, self.pending_step = state["pending"], state["pending_step"]
        self.trajectory = list(state["trajectory"])
        if self.policy is not None and state["policy"] is not None:
            self.policy.load_state_dict(state["policy"])

    def check_compatible(self, state: dict[str, Any]) -> None:
        """Raise a `ValueError` listing every difference when `state` belongs to a run defined otherwise than this one
        (policy mode, mixture entries, their objectives and settings, initial mixture, reward-policy settings).

        States saved before run specs were recorded are checked on their entry names and on whether they have a
        policy state, with a warning that the settings could not be compared.
        """
        differences = []
        saved_spec = state.get("run_spec")
        if saved_spec is not None and self.run_spec is not None:
            differences = run_spec_differences(saved_spec, self.run_spec)
        else:
            if saved_spec is None and self.run_spec is not None:
                logger.warning(
                    "This Birdie state predates recorded run settings: only its entry names and policy "
                    "mode are checked against this run."
                )
            if state["entry_names"] != self.mixture.names:
                differences.append(
                    f"mixture entries: {state['entry_names']} in the checkpoint, {self.mixture.names} in this run"
                )
            if (state["policy"] is None) != (self.policy is None):
                saved = "a reward policy ('birdie')" if state["policy"] is not None else "no reward policy"
                current = "one" if self.policy is not None else "none"
                differences.append(f"policy: the checkpoint has {saved}, this run has {current}")
        if differences:
            raise ValueError(
                "The checkpoint was trained with other settings than this run: " + "; ".join(differences) + "."
            )


# -- console ----------------------------------------------------------------------------------------------------------
#: Keys left out of console lines (integrations and `state.log_history` still get them).
CONSOLE_HIDDEN_KEYS = ("total_flos", "num_input_tokens_seen")
#: Speed metrics transformers adds to every training log when it counts tokens (`include_num_input_tokens_seen`);
#: left out of the console's step lines, kept in the end-of-training summary.
STEP_SPEED_KEYS = ("train_runtime", "train_tokens_per_second")


def console_logs(logs: dict[str, Any], entry_names: Sequence[str], max_str_len: int = 100) -> dict[str, Any]:
    """The part of a `Trainer` log worth a console line, formatted as `PrinterCallback` does (floats to 4 digits).

    Left out: the per-entry keys (`loss/<entry>`, `eval_loss/<entry>`, `mixture/<entry>`, `next_mixture/<entry>`,
    `reward/<entry>`), the policy's diagnostics (`policy/*`, `reward/total`), the health readings (`health/*`, which the
    evaluation line sums up), [`CONSOLE_HIDDEN_KEYS`] and, in a
    step's training log, the speed so far ([`STEP_SPEED_KEYS`]). A training log keeps `loss`, `grad_norm`,
    `learning_rate` and `epoch`; keys a user logs are kept.

    Args:
        logs (`dict[str, Any]`): what `Trainer.log` hands to `on_log`; not modified.
        entry_names (`Sequence[str]`): the mixture's entry names.
        max_str_len (`int`, *optional*, defaults to `100`): longer strings are replaced by a note, as in
            `ProgressCallback`.

    Returns:
        `dict[str, Any]`: the kept keys, in their order; empty when nothing but `epoch` is left.
    """
    entries = set(entry_names)
    hidden = CONSOLE_HIDDEN_KEYS + (STEP_SPEED_KEYS if "loss" in logs else ())
    kept = {}
    for key, value in logs.items():
        prefix, _, suffix = key.partition("/")
        if key in hidden or suffix in entries or prefix in ("policy", "health") or key == "reward/total":
            continue
        if isinstance(value, str) and len(value) > max_str_len:
            value = f"[String too long to display, length: {len(value)} > {max_str_len}.]"
        kept[key] = f"{value:.4g}" if isinstance(value, float) else value
    return {} if set(kept) <= {"epoch"} else kept


def evaluation_table(record: dict[str, Any]) -> str:
    """One scheduled evaluation of [`BirdieRewardCallback.trajectory`] as a small text table.

    One row per mixture entry: held-out loss, reward (when the policy computed one), and the entry's weight, with
    `-> next weight` when the policy chose the next mixture. The title gives the step, the decision kind (`keep`,
    `explore`, `reward_model` or `prior`) and the total reward; runs without a policy get "fixed mixture".

    Example (one entry shown):

    ```text
    Birdie policy at step 10 (explore, total reward +0.1486)
      entry          loss   reward  weight -> next
      copying      4.5300  +0.0342   0.250 -> 0.010
    ```
    """
    names = list(record["losses"])
    rewards = record.get("rewards")
    following = record.get("next_mixture")
    if "decision" in record:
        title = f"Birdie policy at step {record['step']} ({record['decision']}"
        if record.get("total_reward") is not None:
            title += f", total reward {record['total_reward']:+.4f}"
    else:
        title = f"Birdie evaluation at step {record['step']} (fixed mixture"
    header = ["entry", "loss"] + (["reward"] if rewards else []) + ["weight -> next" if following else "weight"]
    rows = []
    for name in names:
        row = [name, f"{record['losses'][name]:.4f}"]
        if rewards:
            row.append(f"{rewards[name]:+.4f}")
        weight = f"{record['mixture'][name]:.3f}"
        row.append(f"{weight} -> {following[name]:.3f}" if following else weight)
        rows.append(row)
    widths = [max(len(row[i]) for row in [header] + rows) for i in range(len(header))]
    lines = [title + ")"]
    for row in [header] + rows:
        cells = [row[0].ljust(widths[0])] + [cell.rjust(width) for cell, width in zip(row[1:], widths[1:])]
        lines.append("  " + "  ".join(cells))
    return "\n".join(lines)


def evaluation_line(record: dict[str, Any], max_entries: int = 3) -> str:
    """One scheduled evaluation of [`BirdieRewardCallback.trajectory`] as one console line.

    Gives the step, the mean held-out loss over entries, the decision kind (`keep`, `explore`, `reward_model` or
    `prior`) with the total reward when the policy computed one, and the `max_entries` heaviest entries of the next
    mixture (of the mixture in force for runs without a policy). The full per-entry view is [`evaluation_table`].

    Example:

    ```text
    Birdie step 40: held-out loss 1.6170, reward_model (total reward +0.1486); next mixture: copying 0.310,
    next_token_prediction 0.220, prefix_lm 0.120 (+10 more)
    ```
    (one line; wrapped here.)
    """
    losses = record["losses"]
    text = f"Birdie step {record['step']}: held-out loss {float(np.mean(list(losses.values()))):.4f}"
    health = record.get("health")
    if health:
        text += f" (next base {health['next_base_loss']:.4f}, composition {health['composition_loss']:.4f})"
    if "decision" in record:
        text += f", {record['decision']}"
        if record.get("total_reward") is not None:
            text += f" (total reward {record['total_reward']:+.4f})"
        mixture, label = record["next_mixture"], "next mixture"
    else:
        mixture, label = record["mixture"], "fixed mixture"
    top = sorted(mixture.items(), key=lambda item: -item[1])[:max_entries]
    text += f"; {label}: " + ", ".join(f"{name} {weight:.3f}" for name, weight in top)
    if len(mixture) > max_entries:
        text += f" (+{len(mixture) - max_entries} more)"
    return text


class _CompactConsole:
    """What [`BirdiePrinterCallback`] and [`BirdieProgressCallback`] print for one `on_log` call: the short log line
    (see [`console_logs`]) or, for the log of a scheduled evaluation, one line per evaluation the reward callback
    recorded since the last call (see [`evaluation_line`]); and the last evaluation's table (see
    [`evaluation_table`]) when training ends."""

    #: Keys of an evaluation log that the evaluation line already says (or that are timing only).
    EVALUATION_KEYS = ("eval_loss", "eval_runtime", "epoch")

    def __init__(self, reward_callback: "BirdieRewardCallback", max_str_len: int = 100):
        self.reward_callback = reward_callback
        self.max_str_len = max_str_len
        self.shown = len(reward_callback.trajectory)
        self.started = self.shown

    def start(self) -> None:
        """Skip the evaluations recorded before training starts (restored from a checkpoint)."""
        self.shown = self.started = len(self.reward_callback.trajectory)

    def lines(self, logs: Optional[dict[str, Any]]) -> list[str]:
        lines = []
        kept = console_logs(logs or {}, self.reward_callback.mixture.names, self.max_str_len)
        trajectory = self.reward_callback.trajectory
        new = trajectory[self.shown :]
        if kept and not (new and set(kept) <= set(self.EVALUATION_KEYS)):
            lines.append(str(kept))
        lines += [evaluation_line(record) for record in new]
        self.shown = len(trajectory)
        return lines

    def final_lines(self) -> list[str]:
        """The table of the last evaluation of this training run (nothing when it made none)."""
        trajectory = self.reward_callback.trajectory
        return [evaluation_table(trajectory[-1])] if len(trajectory) > self.started else []


class BirdiePrinterCallback(PrinterCallback):
    """[`~transformers.PrinterCallback`] (used with `disable_tqdm=True`) for Birdie runs: short log lines and one line
    per policy evaluation instead of every per-entry metric.

    Training lines show `loss`, `grad_norm`, `learning_rate` and `epoch`; the per-entry losses, mixtures, rewards and
    policy diagnostics are left out of the console (see [`console_logs`]). Each scheduled evaluation prints one line
    (step, held-out loss, decision, heaviest entries of the next mixture: see [`evaluation_line`]), and the end of
    training prints the last evaluation as a table, one row per entry (see [`evaluation_table`]). Other callbacks,
    the `report_to` integrations (TensorBoard, W&B, trackio, …) and `state.log_history` still receive every key:
    `on_log` reads `logs` without changing it.

    [`BirdieTrainer`] puts it in place of `PrinterCallback`. To print every key instead:
    `trainer.remove_callback(BirdiePrinterCallback); trainer.add_callback(PrinterCallback)`.

    Args:
        reward_callback ([`BirdieRewardCallback`]): the run's reward callback, whose trajectory is shown.
    """

    def __init__(self, reward_callback: "BirdieRewardCallback"):
        self.console = _CompactConsole(reward_callback)

    def on_train_begin(self, args, state: TrainerState, control: TrainerControl, **kwargs):
        self.console.start()

    def on_log(self, args, state: TrainerState, control: TrainerControl, logs=None, **kwargs):
        if state.is_local_process_zero:
            for line in self.console.lines(logs):
                print(line)

    def on_train_end(self, args, state: TrainerState, control: TrainerControl, **kwargs):
        if state.is_local_process_zero:
            for line in self.console.final_lines():
                print(line)


class BirdieProgressCallback(ProgressCallback):
    """[`~transformers.ProgressCallback`] (the progress bar) for Birdie runs: writes the short lines of
    [`BirdiePrinterCallback`] (and its final table) above the bar instead of every per-entry metric.

    [`BirdieTrainer`] puts it in place of `ProgressCallback`; integrations and other callbacks still receive every
    key.

    Args:
        reward_callback ([`BirdieRewardCallback`]): the run's reward callback, whose trajectory is shown.
        max_str_len (`int`, *optional*, defaults to `100`): longer string values are replaced by a note.
    """

    def __init__(self, reward_callback: "BirdieRewardCallback", max_str_len: int = 100):
        super().__init__(max_str_len=max_str_len)
        self.console = _CompactConsole(reward_callback, max_str_len)

    def on_train_begin(self, args, state: TrainerState, control: TrainerControl, **kwargs):
        super().on_train_begin(args, state, control, **kwargs)
        self.console.start()

    def on_log(self, args, state: TrainerState, control: TrainerControl, logs=None, **kwargs):
        if state.is_world_process_zero and self.training_bar is not None:
            for line in self.console.lines(logs):
                self.training_bar.write(line)

    def on_train_end(self, args, state: TrainerState, control: TrainerControl, **kwargs):
        if state.is_world_process_zero and self.training_bar is not None:
            for line in self.console.final_lines():
                self.training_bar.write(line)
        super().on_train_end(args, state, control, **kwargs)


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
    if saved.get("training") is not None and current.get("training") is not None:  # recorded since 2026-12-04
        for key, (was, now) in _changed(saved["training"], current["training"]).items():
            differences.append(f"{key}: {was!r} in the checkpoint, {now!r} in this run")
    return differences


#: Settings recorded in run specs since 2026-12-04 (second change), with the value that reproduces what older
#: checkpoints did: a checkpoint without the key compares as that value.
SETTINGS_ADDED_LATER = {
    "span_layout": "alternating",
    "example_length": None,
    "policy_fixed_shares": None,
    "policy_reward": "paper",
    "policy_reward_scale": 2.0,
    "policy_reward_min_change": 1e-3,
    "policy_exploration_blend": 1.0,
}
#: Settings recorded since then whose older value is unknown: not compared when a checkpoint lacks them.
UNRECORDED_BEFORE = (
    "per_device_eval_batch_size",
    "bf16",  # this group recorded since 2026-12-06
    "fp16",
    "lr_scheduler_kwargs",
    "neftune_noise_alpha",
    "dataloader_num_workers",
    "policy_eval_interval",
    "policy_warmup_steps",
)


def _changed(saved: dict[str, Any], current: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    """`{key: (saved value, current value)}` for the keys whose values differ. A key the saved spec lacks reads as
    its [`SETTINGS_ADDED_LATER`] value (else `None`), or is skipped when it is in [`UNRECORDED_BEFORE`]."""
    keys = list(saved) + [key for key in current if key not in saved and key not in UNRECORDED_BEFORE]
    changed = {}
    for key in keys:
        was = saved[key] if key in saved else SETTINGS_ADDED_LATER.get(key)
        if was != current.get(key):
            changed[key] = (was, current.get(key))
    return changed


def _plain(value: Any, where: str) -> Any:
    """`value` with numpy arrays and scalars turned into lists and Python numbers, so that
    `torch.load(..., weights_only=True)` can read it; raises a `TypeError` naming `where` for other objects."""
    if value is None or isinstance(value, (bool, int, float, str, torch.Tensor)):
        return value
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, dict):
        plain = {_plain(key, where): _plain(item, f"{where}[{key!r}]") for key, item in value.items()}
        if isinstance(value, OrderedDict):  # module state dicts: keep their version `_metadata`
            plain = OrderedDict(plain)
            if hasattr(value, "_metadata"):
                plain._metadata = _plain(value._metadata, f"{where}._metadata")
        return plain
    if isinstance(value, list):
        return [_plain(item, f"{where}[{i}]") for i, item in enumerate(value)]
    if isinstance(value, tuple):
        return tuple(_plain(item, f"{where}[{i}]") for i, item in enumerate(value))
    raise TypeError(
        f"Birdie state value {where} is a {type(value).__name__}, which torch.load(weights_only=True) cannot read; "
        "store plain Python values, numpy arrays or tensors."
    )


def _broadcast_from_main(payload):
    """Send a picklable object from the main process to every rank (no-op when not distributed)."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return payload
    holder = [payload]
    dist.broadcast_object_list(holder, src=0)
    return holder[0]
