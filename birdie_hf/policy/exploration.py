"""Exploration: when the policy tries a random mixture instead of the reward model's choice."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .settings import POLICY_RANGES, check_setting


@dataclass
class ExplorationSchedule:
    """Explore always for the first `warmup_decisions` decisions, then with a probability that decays (cosine) from
    `initial_rate` to `final_rate` over the first `decay_fraction` of training and stays there.

    Parameters:
        initial_rate (`float`, *optional*, defaults to `0.5`).
        final_rate (`float`, *optional*, defaults to `0.2`).
        decay_fraction (`float`, *optional*, defaults to `0.5`): share of training over which the rate decays.
        warmup_decisions (`int`, *optional*, defaults to `1`): first decisions that always explore.
    """

    initial_rate: float = 0.5
    final_rate: float = 0.2
    decay_fraction: float = 0.5
    warmup_decisions: int = 1

    def __post_init__(self):
        for name in ("initial_rate", "final_rate", "decay_fraction"):
            check_setting(f"ExplorationSchedule.{name}", getattr(self, name), POLICY_RANGES[f"exploration.{name}"])

    def rate(self, progress: float, decisions_made: int) -> float:
        """Exploration probability at `progress` (0 = start, 1 = end of training)."""
        if decisions_made < self.warmup_decisions:
            return 1.0
        if self.decay_fraction <= 0 or progress >= self.decay_fraction:
            return self.final_rate
        cosine = 0.5 * (1.0 + math.cos(math.pi * progress / self.decay_fraction))
        return self.final_rate + (self.initial_rate - self.final_rate) * cosine


def exploratory_mixture(rng: np.random.Generator, classes: np.ndarray) -> np.ndarray:
    """A mixture with all its weight on one or two random reward classes (split evenly over each class's entries).

    [`BirdiePolicy`] then adds its `min_weight` floor to every entry. Returns shape `(num_entries,)`, summing to one.
    """
    num_classes = int(classes.max()) + 1
    chosen = rng.choice(num_classes, size=min(num_classes, int(rng.integers(1, 3))), replace=False)
    class_weight = np.zeros(num_classes)
    class_weight[chosen] = rng.random(len(chosen)) + 0.5
    per_entry = class_weight[classes] / np.bincount(classes, minlength=num_classes)[classes]
    return per_entry / per_entry.sum()
