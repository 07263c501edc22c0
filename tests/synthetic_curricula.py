"""A synthetic curriculum environment for checking the policy without training a model.

Each entry's loss falls toward its floor at a speed proportional to its own weight and its `rate` (0: the loss does
not respond to training on that entry), and observed losses carry multiplicative noise. The best mixture is known:
all weight on the fastest-responding entries. Used by `tests/test_policy.py`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from birdie_hf.policy import BirdiePolicy
from birdie_hf.policy.reward import objective_rewards, total_reward


@dataclass
class SyntheticCurriculum:
    """Losses of `len(rates)` entries that respond to the mixture.

    One interval with mixture `w` moves every loss `L_i <- floor_i + (L_i - floor_i) * (1 - rates[i] * w_i)`; the
    observed loss is `L_i * (1 + noise * N(0, 1))`.

    Parameters:
        rates (`np.ndarray` of shape `(num_entries,)`): how fast each loss falls per unit of weight, in `[0, 1]`.
        initial_losses (`np.ndarray`, *optional*): defaults to 1.4 (a uniform guess over four bases) everywhere.
        floors (`np.ndarray`, *optional*): losses the entries tend to; defaults to 0.1.
        noise (`float`, *optional*, defaults to `0.0`): relative noise of an observed loss.
        seed (`int`, *optional*, defaults to `0`).
    """

    rates: np.ndarray
    initial_losses: Optional[np.ndarray] = None
    floors: Optional[np.ndarray] = None
    noise: float = 0.0
    seed: int = 0
    losses: np.ndarray = field(init=False)

    def __post_init__(self):
        self.rates = np.asarray(self.rates, dtype=np.float64)
        n = len(self.rates)
        self.initial_losses = (
            np.full(n, 1.4) if self.initial_losses is None else np.asarray(self.initial_losses, float)
        )
        self.floors = np.full(n, 0.1) if self.floors is None else np.asarray(self.floors, dtype=np.float64)
        self.losses = self.initial_losses.copy()
        self.rng = np.random.default_rng(self.seed)

    def observe(self) -> np.ndarray:
        """The losses as a (noisy) held-out evaluation would measure them, shape `(num_entries,)`."""
        return self.losses * (1.0 + self.noise * self.rng.standard_normal(self.losses.shape))

    def train(self, mixture: np.ndarray) -> None:
        """One interval of training on `mixture`."""
        self.losses = self.floors + (self.losses - self.floors) * (1.0 - self.rates * np.asarray(mixture))


def run_synthetic(
    env: SyntheticCurriculum,
    policy: Optional[BirdiePolicy],
    intervals: int,
    classes: np.ndarray,
    initial_mixture: np.ndarray,
) -> dict:
    """Run `intervals` intervals of `env` under `policy` (`None`: keep `initial_mixture`, the static baseline).

    Returns `{"mixtures": (intervals, n), "total_reward": float (sum over intervals, true losses), "final_losses"}`.
    """
    mixture = np.asarray(initial_mixture, dtype=np.float64)
    mixtures, reward = [], 0.0
    observed = env.observe()
    for i in range(intervals):
        if policy is not None:
            mixture = policy.observe(step=i, losses=observed, progress=i / intervals).mixture
        before = env.losses.copy()
        env.train(mixture)
        reward += float(total_reward(objective_rewards(before, env.losses), classes))
        mixtures.append(mixture.copy())
        observed = env.observe()
    return {"mixtures": np.stack(mixtures), "total_reward": reward, "final_losses": env.losses.copy()}
