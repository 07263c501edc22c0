"""`BirdiePolicy`: the reward-driven mixture controller, usable without a Trainer.

Feed it the per-entry validation losses at each evaluation; it answers with the mixture to train on next.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Optional, Sequence

import numpy as np
import torch

from ..mixture import normalize_weights, with_fixed_shares
from .action_search import sample_candidate_mixtures, select_mixture
from .exploration import ExplorationSchedule, exploratory_mixture
from .reward import class_index, objective_rewards, standardised_rewards, total_reward
from .reward_model import RewardModel, fit_reward_model, normalize_losses, normalize_mixtures
from .settings import POLICY_RANGES, check_setting


@contextmanager
def _single_thread():
    """Run the tiny reward model on one intra-op thread: faster than several for an MLP this size, and it never
    fights the training step (or other processes) for cores, which made fits 100x slower under contention."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


#: AdamW's epsilon for the reward model. Adam's steps do not depend on the gradients' scale, so with the default 1e-8
#: a history of pure-noise rewards (|r| ~ 1e-3) would be fitted as fast as real signal and extrapolated into
#: confident-looking predictions; with 1e-4, gradients far below that scale (rewards at the noise floor) move the
#: weights proportionally less.
ADAM_EPS = 1e-4


def reward_model_optimizer(parameters, lr: float, weight_decay: float) -> torch.optim.AdamW:
    """The reward model's AdamW (fused where torch has it)."""
    params = list(parameters)
    try:  # the fused kernel is ~1.5x faster for this small MLP on CPU
        return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay, eps=ADAM_EPS, fused=True)
    except (RuntimeError, TypeError):
        return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay, eps=ADAM_EPS)


#: The rewards a policy can use (see [`PolicyConfig.reward`]).
REWARDS = ("paper", "standardised")


@dataclass
class PolicyConfig:
    """Settings of [`BirdiePolicy`] (mirrored by the `policy_*` fields of [`BirdieTrainingArguments`]).

    Parameters:
        hidden_size (`int`, *optional*, defaults to `256`): reward-model width.
        num_layers (`int`, *optional*, defaults to `4`): reward-model recurrent layers.
        learning_rate (`float`, *optional*, defaults to `5e-4`): reward-model AdamW learning rate.
        weight_decay (`float`, *optional*, defaults to `0.1`): reward-model AdamW weight decay.
        update_iterations (`int`, *optional*, defaults to `50`): MSE steps on the history after each evaluation
            (warm-started from the previous fit).
        num_candidates (`int`, *optional*, defaults to `2048`): mixtures scored per decision.
        top_n (`int`, *optional*, defaults to `8`): best candidates averaged into the next mixture.
        exploration (`ExplorationSchedule`): when to explore instead of exploit.
        min_weight (`float`, *optional*, defaults to `0.01`): weight every entry keeps in every chosen mixture, so no
            objective is forgotten entirely (capped at `0.5 / num_entries`).
        exploration_blend (`float`, *optional*, defaults to `1.0`): how much of an exploration draw enters the
            mixture: `1.0` replaces the mixture with the draw (Birdie: all weight on one or two objectives, which can
            starve next-token prediction for a whole interval); `0.5` averages it with the initial mixture, so no
            entry falls below half its initial share while exploring.
        reward (`str`, *optional*, defaults to `"paper"`): `"paper"`, the Birdie paper's
            `clip(-100 e tanh(e S ratio^3))` of each entry's mean loss ([`objective_rewards`]); or `"standardised"`,
            the paired change of each entry's held-out examples in units of its own standard error
            ([`standardised_rewards`]), which needs `example_losses` at every observation.
        reward_scale (`float`, *optional*, defaults to `2.0`): standardised reward: standard errors that earn
            `tanh(1)`.
        reward_min_change (`float`, *optional*, defaults to `1e-3`): standardised reward: nats below which a change
            earns little.
        fixed_shares (`dict[int, float]`, *optional*): entry index -> share that every mixture gives the entry
            (e.g. next-token prediction at 0.5); candidates, exploration draws and the initial mixture are rescaled
            so that the other entries share the rest ([`with_fixed_shares`]).
        min_predicted_gain (`float`, *optional*, defaults to `0.0`): a gate: the reward model's choice replaces the
            initial mixture only when its predicted total reward beats the initial mixture's by this much; otherwise
            the initial mixture is kept. `0.0` (both presets, as in the paper): no gate. With `0.05`, a policy whose
            rewards are noise stays at the initial mixture between explorations while a real improvement passes
            (`tests/test_policy.py`, synthetic curricula).
        warmup_steps (`int`, *optional*, defaults to `0`): steps during which the initial mixture is kept (history
            is still gathered), as Birdie's uniform warm-up.
        seed (`int`, *optional*, defaults to `0`).
    """

    hidden_size: int = 256
    num_layers: int = 4
    learning_rate: float = 5e-4
    weight_decay: float = 0.1
    update_iterations: int = 50
    num_candidates: int = 2048
    top_n: int = 8
    exploration: ExplorationSchedule = field(default_factory=ExplorationSchedule)
    min_weight: float = 0.01
    exploration_blend: float = 1.0
    reward: str = "paper"
    reward_scale: float = 2.0
    reward_min_change: float = 1e-3
    fixed_shares: dict = field(default_factory=dict)
    min_predicted_gain: float = 0.0
    warmup_steps: int = 0
    seed: int = 0

    def __post_init__(self):
        if isinstance(self.exploration, dict):
            self.exploration = ExplorationSchedule(**self.exploration)
        for name, rule in POLICY_RANGES.items():
            if "." not in name:
                check_setting(f"PolicyConfig.{name}", getattr(self, name), rule)
        if self.reward not in REWARDS:
            raise ValueError(f"PolicyConfig.reward must be one of {REWARDS}, got {self.reward!r}.")
        self.fixed_shares = {int(k): float(v) for k, v in self.fixed_shares.items()}
        if any(not 0.0 <= v < 1.0 for v in self.fixed_shares.values()) or sum(self.fixed_shares.values()) > 1.0:
            raise ValueError(f"PolicyConfig.fixed_shares must be shares in [0, 1) adding up to at most 1, got "
                             f"{self.fixed_shares}.")  # fmt: skip
        if self.top_n > self.num_candidates:
            raise ValueError(f"PolicyConfig.top_n ({self.top_n}) exceeds num_candidates ({self.num_candidates}).")


@dataclass
class PolicyDecision:
    """What one [`BirdiePolicy.observe`] call decided.

    Attributes:
        mixture (`np.ndarray`): the mixture to train on next.
        rewards (`np.ndarray` or `None`): reward per entry for the interval just finished (`None` at the first
            observation).
        kind (`str`): how the mixture was chosen: `"keep"` (warm-up or first observation), `"explore"` (random
            draw), `"reward_model"` (the reward model's choice) or `"prior"` (the initial mixture, because the
            reward model's choice was not predicted to beat it by `min_predicted_gain`).
        reward_model_loss (`float` or `None`): final MSE of the reward-model update.
        predicted_reward (`float` or `None`): predicted total reward of the reward model's choice.
        predicted_gain (`float` or `None`): how much more total reward than the initial mixture it is predicted to
            earn.
        reason (`str`): why this mixture, in words (exploration draw and rate, predicted gain and gate, warm-up).
        reward_z (`np.ndarray` or `None`): with the standardised reward, each entry's paired t statistic of the
            interval's loss change (above about 2: progress beyond the measurement's noise).
        step (`int`): the step of the evaluation it answers.
        losses (`np.ndarray` or `None`): the held-out loss per entry it was given.
        total_reward (`float` or `None`): the rewards summed as Birdie does ([`total_reward`]).
    """

    mixture: np.ndarray
    rewards: Optional[np.ndarray] = None
    kind: str = "keep"
    reward_model_loss: Optional[float] = None
    predicted_reward: Optional[float] = None
    predicted_gain: Optional[float] = None
    reward_z: Optional[np.ndarray] = None
    reason: str = ""
    step: int = 0
    losses: Optional[np.ndarray] = None
    total_reward: Optional[float] = None

    @property
    def explored(self) -> bool:
        """Whether the mixture is an exploration draw."""
        return self.kind == "explore"

    def to_record(self, entry_names: Optional[Sequence[str]] = None) -> dict:
        """The decision as plain values, the one form every record of it takes (the policy's own trajectory, the
        run's `mixture_trajectory.json`, what the main process sends the others): `step`, `losses`, `rewards`,
        `total_reward`, `next_mixture`, `decision` (the kind), `reason`, `reward_model_loss`, `predicted_reward`,
        `predicted_gain`, `reward_z`. Per-entry values are lists, or `{entry: value}` with `entry_names`."""

        def per_entry(values):
            if values is None:
                return None
            values = np.asarray(values, dtype=np.float64).tolist()
            return values if entry_names is None else dict(zip(entry_names, values))

        return {
            "step": int(self.step),
            "losses": per_entry(self.losses),
            "rewards": per_entry(self.rewards),
            "total_reward": None if self.total_reward is None else float(self.total_reward),
            "next_mixture": per_entry(self.mixture),
            "decision": self.kind,
            "reason": self.reason,
            "reward_model_loss": self.reward_model_loss,
            "predicted_reward": self.predicted_reward,
            "predicted_gain": self.predicted_gain,
            "reward_z": per_entry(self.reward_z),
        }


class BirdiePolicy:
    """Birdie's reward-driven controller of the objective mixture.

    Args:
        entry_names (`Sequence[str]`): mixture entry names.
        reward_classes (`Sequence[str]`): the objective of each entry; entries of one objective share a class.
        initial_weights (`Sequence[float]`): the starting mixture.
        config ([`PolicyConfig`], *optional*).

    Example:

    ```python
    >>> policy = BirdiePolicy(["ntp", "inf_a", "inf_b"], ["ntp", "infilling", "infilling"], [1, 1, 1])
    >>> decision = policy.observe(step=10, losses=[2.0, 3.0, 3.1], progress=0.1)
    >>> decision = policy.observe(step=20, losses=[1.9, 2.5, 3.0], progress=0.2)
    >>> decision.mixture.shape
    (3,)
    ```
    """

    def __init__(
        self,
        entry_names: Sequence[str],
        reward_classes: Sequence[str],
        initial_weights: Sequence[float],
        config: Optional[PolicyConfig] = None,
    ):
        if len(entry_names) != len(reward_classes):
            raise ValueError(f"{len(entry_names)} entry names but {len(reward_classes)} reward classes.")
        self.entry_names = list(entry_names)
        self.class_names, self.classes = class_index(reward_classes)
        self.config = config or PolicyConfig()
        self.mixture = with_fixed_shares(
            normalize_weights(initial_weights, self.entry_names), self.config.fixed_shares
        )
        self.prior = self.mixture.copy()
        self.rng = np.random.default_rng(self.config.seed)
        generator_state = torch.random.get_rng_state()
        torch.manual_seed(self.config.seed)
        self.reward_model = RewardModel(len(self.entry_names), self.config.hidden_size, self.config.num_layers)
        torch.random.set_rng_state(generator_state)
        self.optimizer = reward_model_optimizer(
            self.reward_model.parameters(), self.config.learning_rate, self.config.weight_decay
        )
        self.states: list[np.ndarray] = []
        self.actions: list[np.ndarray] = []
        self.rewards: list[np.ndarray] = []
        self.last_losses: Optional[np.ndarray] = None
        self.last_example_losses: Optional[list[np.ndarray]] = None
        self.decisions = 0
        self.trajectory: list[dict] = []

    @property
    def num_entries(self) -> int:
        return len(self.entry_names)

    def observe(
        self,
        step: int,
        losses: Sequence[float],
        progress: float,
        example_losses: Optional[Sequence[Sequence[float]]] = None,
    ) -> PolicyDecision:
        """Record the validation `losses` (shape `(num_entries,)`) measured at `step` and choose the next mixture.

        The reward of the interval since the previous observation is computed for the mixture that was in force,
        added to the history, and the reward model is refit. Before `warmup_steps` the mixture is kept. `progress`
        (0 to 1) drives the exploration schedule. `example_losses` (per entry, the losses of its held-out examples,
        the same examples at every observation) is required by the standardised reward.
        """
        with _single_thread():
            return self._observe(step, losses, progress, example_losses)

    def _rewards(self, losses: np.ndarray, examples: Optional[list[np.ndarray]]) -> tuple:
        if self.config.reward == "paper":
            return objective_rewards(self.last_losses, losses), None
        return standardised_rewards(
            self.last_example_losses, examples, self.config.reward_scale, self.config.reward_min_change
        )

    def _normalized_history(self) -> tuple[np.ndarray, np.ndarray]:
        reference = self.states[0]
        return (normalize_losses(np.stack(self.states), reference), normalize_mixtures(np.stack(self.actions)))

    def _observe(self, step: int, losses: Sequence[float], progress: float, example_losses=None) -> PolicyDecision:
        losses = np.asarray(losses, dtype=np.float64)
        if losses.shape != (self.num_entries,) or not np.isfinite(losses).all():
            raise ValueError(f"Expected {self.num_entries} finite losses, got {losses}.")
        examples = None
        if self.config.reward == "standardised":
            if example_losses is None or len(example_losses) != self.num_entries:
                raise ValueError(
                    f"The standardised reward needs `example_losses`: the held-out examples' losses of each of the "
                    f"{self.num_entries} entries."
                )
            examples = [np.asarray(e, dtype=np.float64) for e in example_losses]
        decision = PolicyDecision(mixture=self.mixture.copy(), step=int(step), losses=losses.copy())
        if self.last_losses is not None:
            rewards, decision.reward_z = self._rewards(losses, examples)
            self.states.append(self.last_losses)
            self.actions.append(self.mixture.copy())
            self.rewards.append(rewards)
            decision.rewards = rewards
            decision.total_reward = float(total_reward(rewards, self.classes))
            states, actions = self._normalized_history()  # reused by the candidate search below
            decision.reward_model_loss = fit_reward_model(
                self.reward_model,
                self.optimizer,
                states,
                actions,
                self.rewards,
                self.config.update_iterations,
            )
        self.last_losses, self.last_example_losses = losses, examples
        if decision.rewards is None:
            decision.reason = "first evaluation: no interval to reward yet, the mixture is kept"
        elif step < self.config.warmup_steps:
            decision.reason = f"warm-up until step {self.config.warmup_steps}: the initial mixture is kept"
        else:
            floor = min(self.config.min_weight, 0.5 / self.num_entries)
            rate = self.config.exploration.rate(progress, self.decisions)
            draw = self.rng.random()
            if draw < rate:
                decision.kind = "explore"
                mixture = exploratory_mixture(self.rng, self.classes)
                mixture = with_fixed_shares(
                    mixture * (1.0 - floor * self.num_entries) + floor, self.config.fixed_shares
                )
                blend = self.config.exploration_blend  # the prior keeps the fixed shares: so does the blend
                decision.mixture = blend * mixture + (1.0 - blend) * self.prior
                decision.reason = (
                    f"explore: draw {draw:.2f} < exploration rate {rate:.2f}, a random mixture"
                    + (f" blended {blend:.0%} into the initial one" if blend < 1 else "")
                    + f"; {self._shift_words(decision.mixture)}"
                )
            else:
                candidates = sample_candidate_mixtures(self.rng, self.num_entries, self.config.num_candidates)
                candidates = with_fixed_shares(
                    candidates * (1.0 - floor * self.num_entries) + floor, self.config.fixed_shares
                )
                choice = select_mixture(
                    self.reward_model,
                    states,
                    actions,
                    normalize_losses(losses, self.states[0]),
                    candidates,
                    self.classes,
                    self.prior,
                    self.config.top_n,
                )
                decision.predicted_reward, decision.predicted_gain = choice.predicted_reward, choice.predicted_gain
                gain, gate = choice.predicted_gain, self.config.min_predicted_gain
                if gain >= gate:
                    decision.kind, decision.mixture = "reward_model", choice.mixture
                    decision.reason = (
                        f"reward model: the mean of the {self.config.top_n} of {len(candidates)} candidate mixtures "
                        f"predicted to earn the most reward, {gain:+.3f} total reward over the initial mixture"
                        + (f" (gate {gate:g})" if gate > 0 else "")
                        + f"; {self._shift_words(choice.mixture)}"
                    )
                else:
                    decision.kind, decision.mixture = "prior", self.prior.copy()
                    decision.reason = (
                        f"initial mixture: the reward model's choice is predicted only {gain:+.3f} total reward over "
                        f"it, below the gate {gate:g}"
                    )
            self.decisions += 1
        self.mixture = normalize_weights(decision.mixture, self.entry_names)
        decision.mixture = self.mixture.copy()
        self.trajectory.append(decision.to_record())
        return decision

    def _shift_words(self, mixture: np.ndarray, shown: int = 2) -> str:
        """Where `mixture` moves weight relative to the mixture in force, in words: the `shown` entries that gain most
        and the one that loses most (changes under half a percentage point are left out)."""
        change = np.asarray(mixture, dtype=np.float64) - self.mixture
        order = np.argsort(-change, kind="stable")
        up = [f"{self.entry_names[i]} {change[i]:+.3f}" for i in order[:shown] if change[i] >= 0.005]
        down = [f"{self.entry_names[i]} {change[i]:+.3f}" for i in order[::-1][:1] if change[i] <= -0.005]
        if not up and not down:
            return "about the mixture in force"
        return "weight to " + (", ".join(up) or "no entry") + (f", from {down[0]}" if down else "")

    # -- checkpointing ---------------------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        """Everything needed to continue exactly: reward model and optimiser, history, mixture, RNG state."""
        return {
            "entry_names": self.entry_names,
            "config": asdict(self.config),
            "mixture": self.mixture.tolist(),
            "prior": self.prior.tolist(),
            "rng": self.rng.bit_generator.state,
            "reward_model": self.reward_model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "states": [s.tolist() for s in self.states],
            "actions": [a.tolist() for a in self.actions],
            "rewards": [r.tolist() for r in self.rewards],
            "last_losses": None if self.last_losses is None else self.last_losses.tolist(),
            "last_example_losses": None
            if self.last_example_losses is None
            else [e.tolist() for e in self.last_example_losses],
            "decisions": self.decisions,
            "trajectory": self.trajectory,
        }

    def load_state_dict(self, state: dict) -> None:
        if state["entry_names"] != self.entry_names:
            raise ValueError(
                f"Policy state is for entries {state['entry_names']}, but this run's mixture has {self.entry_names}."
            )
        self.mixture = np.asarray(state["mixture"], dtype=np.float64)
        if "prior" in state:  # older states: keep the initial mixture this policy was built with
            self.prior = np.asarray(state["prior"], dtype=np.float64)
        self.rng.bit_generator.state = state["rng"]
        self.reward_model.load_state_dict(state["reward_model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.states = [np.asarray(s) for s in state["states"]]
        self.actions = [np.asarray(a) for a in state["actions"]]
        self.rewards = [np.asarray(r) for r in state["rewards"]]
        self.last_losses = None if state["last_losses"] is None else np.asarray(state["last_losses"])
        saved_examples = state.get("last_example_losses")
        self.last_example_losses = None if saved_examples is None else [np.asarray(e) for e in saved_examples]
        self.decisions = int(state["decisions"])
        self.trajectory = list(state["trajectory"])
