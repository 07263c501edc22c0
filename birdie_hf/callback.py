"""`BirdieRewardCallback`: the reward policy in the `Trainer` loop: its evaluation schedule, its decisions and the
mixture they set, and its state in checkpoints."""

from __future__ import annotations

import logging
from collections import OrderedDict
from typing import TYPE_CHECKING, Any, Optional

import numpy as np
import torch
from transformers import (
    TrainerCallback,
    TrainerControl,
    TrainerState,
    TrainingArguments,
)

from .mixture import LiveMixture
from .policy import BirdiePolicy, evaluation_schedule
from .runs.spec import run_spec_differences


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
                collator.entry_names, collator.reward_classes, collator.mixture.weights, args.policy_config()
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
            names = self.mixture.names
            decided = _broadcast_from_main(None if decision is None else decision.to_record(names))
            self.pending, self.pending_step = list(decided["next_mixture"].values()), state.global_step
            record.update({key: value for key, value in decided.items() if key not in ("step", "losses")})
            record = {key: value for key, value in record.items() if value is not None}
            logs.update({f"next_mixture/{name}": weight for name, weight in decided["next_mixture"].items()})
            if decided["rewards"] is not None:
                logs.update({f"reward/{name}": reward for name, reward in decided["rewards"].items()})
                logs["reward/total"] = decided["total_reward"]
            logs["policy/explored"] = float(decided["decision"] == "explore")
            for key in ("reward_model_loss", "predicted_reward", "predicted_gain"):
                if decided[key] is not None:
                    logs[f"policy/{key}"] = float(decided[key])
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
