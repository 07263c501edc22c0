"""`BirdieRewardCallback`: the only glue between the reward policy and the `Trainer` loop."""

from __future__ import annotations

import logging
from typing import Optional

import numpy as np
from transformers import TrainerCallback, TrainerControl, TrainerState, TrainingArguments

from .mixture import LiveMixture
from .policy import BirdiePolicy, total_reward


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
    """

    def __init__(self, mixture: LiveMixture, policy: Optional[BirdiePolicy] = None,
                 schedule_evaluations: bool = True):
        self.mixture = mixture
        self.policy = policy
        self.schedule_evaluations = schedule_evaluations
        self.evaluation_steps: set[int] = set()
        self.pending: Optional[list[float]] = None
        self.pending_step: Optional[int] = None
        self.trajectory: list[dict] = []

    # -- schedule --------------------------------------------------------------------------------------------------
    def on_train_begin(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs):
        if hasattr(args, "policy_schedule"):
            warmup, interval, steps = args.policy_schedule(state.max_steps)
        else:
            warmup, interval = 0, max(1, state.max_steps // 10)
            steps = list(range(interval, state.max_steps + 1, interval))
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
    def observe(self, args, state: TrainerState, losses: np.ndarray) -> dict[str, float]:
        """Record a scheduled evaluation (`losses`: shape `(num_entries,)`, the fixed held-out set) and let the
        policy decide the next mixture. Returns the decision as log entries for the trainer to log."""
        losses = np.asarray(losses, dtype=np.float64)
        record = {"step": int(state.global_step), "losses": dict(zip(self.mixture.names, losses.tolist())),
                  "mixture": self.mixture.as_dict()}
        logs: dict[str, float] = {}
        if self.policy is not None:
            decision = None
            if state.is_world_process_zero:
                progress = state.global_step / max(1, state.max_steps)
                decision = self.policy.observe(state.global_step, losses, progress,
                                               show_progress=not getattr(args, "disable_tqdm", True))
                top = sorted(zip(self.mixture.names, decision.mixture.tolist()), key=lambda x: -x[1])[:3]
                logger.info("Birdie step %d: %s mixture for the next interval, led by %s.", state.global_step,
                            decision.kind, ", ".join(f"{name} {weight:.2f}" for name, weight in top))
            payload = _broadcast_from_main(None if decision is None else {
                "mixture": decision.mixture.tolist(),
                "rewards": None if decision.rewards is None else decision.rewards.tolist(),
                "kind": decision.kind,
                "reward_model_loss": decision.reward_model_loss,
                "predicted_reward": decision.predicted_reward,
                "predicted_gain": decision.predicted_gain,
            })
            self.pending, self.pending_step = payload["mixture"], state.global_step
            record["next_mixture"] = dict(zip(self.mixture.names, payload["mixture"]))
            record["decision"] = payload["kind"]
            for name, weight in zip(self.mixture.names, payload["mixture"]):
                logs[f"next_mixture/{name}"] = weight
            if payload["rewards"] is not None:
                record["rewards"] = dict(zip(self.mixture.names, payload["rewards"]))
                for name, reward in zip(self.mixture.names, payload["rewards"]):
                    logs[f"reward/{name}"] = reward
                logs["reward/total"] = record["total_reward"] = float(
                    total_reward(np.asarray(payload["rewards"]), self.policy.classes))
            logs["policy/explored"] = float(payload["kind"] == "explore")
            for key in ("reward_model_loss", "predicted_reward", "predicted_gain"):
                if payload[key] is not None:
                    logs[f"policy/{key}"] = record[key] = float(payload[key])
        self.trajectory.append(record)
        return logs

    # -- checkpointing ---------------------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        return {
            "mixture": self.mixture.weights.tolist(),
            "entry_names": list(self.mixture.names),
            "pending": self.pending,
            "pending_step": self.pending_step,
            "trajectory": self.trajectory,
            "policy": None if self.policy is None else self.policy.state_dict(),
        }

    def load_state_dict(self, state: dict) -> None:
        if state["entry_names"] != self.mixture.names:
            raise ValueError(
                f"Checkpoint mixture entries {state['entry_names']} differ from this run's {self.mixture.names}: "
                "resume with the same `objectives`."
            )
        self.mixture.update(state["mixture"])
        self.pending, self.pending_step = state["pending"], state["pending_step"]
        self.trajectory = list(state["trajectory"])
        if self.policy is not None and state["policy"] is not None:
            self.policy.load_state_dict(state["policy"])


def _broadcast_from_main(payload):
    """Send a picklable object from the main process to every rank (no-op when not distributed)."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return payload
    holder = [payload]
    dist.broadcast_object_list(holder, src=0)
    return holder[0]
