"""What a Birdie run prints: short log lines, one line per policy evaluation and a table of the last one, in place of
transformers' `PrinterCallback` / `ProgressCallback` (integrations and `state.log_history` still get every key)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Optional, Sequence

import numpy as np
from transformers import PrinterCallback, ProgressCallback, TrainerControl, TrainerState


if TYPE_CHECKING:
    from .callback import BirdieRewardCallback


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
