"""Birdie's reward: how much an objective's held-out loss improved over an evaluation interval."""

from __future__ import annotations

from typing import Sequence

import numpy as np


def objective_rewards(old_losses: Sequence[float], new_losses: Sequence[float]) -> np.ndarray:
    """Reward per mixture entry from its validation loss before and after an interval.

    With `ratio = (new - old) / old` and `scale = sqrt(old * new)`, the reward is
    `clip(-100 * e * tanh(e * scale * ratio**3), -1, 1)`: the relative change is sharpened (cubed), squashed
    (`tanh`) and clipped. A falling loss gives a positive reward, a rising loss a negative one.

    Args:
        old_losses, new_losses (`Sequence[float]` of shape `(num_entries,)`): positive losses.

    Returns:
        `np.ndarray` of shape `(num_entries,)` in `[-1, 1]`.
    """
    old = np.asarray(old_losses, dtype=np.float64)
    new = np.asarray(new_losses, dtype=np.float64)
    if old.shape != new.shape:
        raise ValueError(f"Loss vectors differ in shape: {old.shape} vs {new.shape}.")
    old = np.maximum(old, 1e-8)
    new = np.maximum(new, 1e-8)
    ratio = (new - old) / old
    scale = np.sqrt(old * new)
    return np.clip(-100.0 * np.e * np.tanh(np.e * scale * ratio**3), -1.0, 1.0)


def class_index(reward_classes: Sequence[str]) -> tuple[list[str], np.ndarray]:
    """Unique reward classes (first-seen order) and, per entry, the index of its class."""
    names: list[str] = []
    for name in reward_classes:
        if name not in names:
            names.append(name)
    return names, np.array([names.index(name) for name in reward_classes], dtype=np.int64)


def total_reward(rewards: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """Sum over reward classes of the mean reward of the class's entries.

    Args:
        rewards (`np.ndarray` of shape `(..., num_entries)`).
        classes (`np.ndarray` of shape `(num_entries,)`): class index per entry (see [`class_index`]).

    Returns:
        `np.ndarray` of shape `(...)`. Configurations of one objective (e.g. short and long infilling) count once.
    """
    num_classes = int(classes.max()) + 1
    onehot = np.zeros((classes.shape[0], num_classes))
    onehot[np.arange(classes.shape[0]), classes] = 1.0
    return (rewards @ (onehot / onehot.sum(axis=0, keepdims=True))).sum(axis=-1)
