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


def standardised_rewards(
    old_examples: Sequence[np.ndarray],
    new_examples: Sequence[np.ndarray],
    scale: float = 2.0,
    min_change: float = 1e-3,
) -> tuple[np.ndarray, np.ndarray]:
    """Reward per entry from the paired change of its held-out examples' losses, in units of its own noise.

    For entry `i` with per-example losses `old[w]` and `new[w]` on the *same* held-out examples, `d = old - new`
    (positive when the loss fell), `se = std(d) / sqrt(n)` its paired standard error and `z = mean(d) / se`. The
    reward is `tanh(mean(d) / max(scale * se, min_change))`: an improvement of `scale` standard errors earns
    `tanh(1) = 0.76` whatever the loss's scale, so next-token prediction's steady hundredths of a nat on DNA (whose
    relative changes the paper's cubed ratio reads as ~0) register, and noise reads as about 0. However consistent a
    change is, it earns at most `tanh(change / min_change)`: `tanh(1) = 0.76` for a change of `min_change` nats and
    proportionally less below it (e.g. a copying task already solved).

    Args:
        old_examples, new_examples: per entry, the losses (nats per target) of its held-out examples at the start
            and at the end of the interval, each shape `(n_i,)` with `n_i >= 2`.
        scale (`float`, *optional*, defaults to `2.0`): standard errors that earn `tanh(1)`.
        min_change (`float`, *optional*, defaults to `1e-3`): nats below which a change earns little.

    Returns:
        `(rewards, z)`: two arrays of shape `(num_entries,)`, rewards in `(-1, 1)` and the paired t statistics (capped
        at +-1e6, the value of a change without spread, so that they stay valid JSON).
    """
    if len(old_examples) != len(new_examples):
        raise ValueError(f"Got {len(old_examples)} entries before and {len(new_examples)} after the interval.")
    rewards, zs = [], []
    for i, (old, new) in enumerate(zip(old_examples, new_examples)):
        old, new = np.asarray(old, dtype=np.float64), np.asarray(new, dtype=np.float64)
        if old.shape != new.shape or old.ndim != 1 or old.size < 2:
            raise ValueError(
                f"Entry {i}: the paired reward needs the same >= 2 held-out examples at both ends, got shapes "
                f"{old.shape} and {new.shape}."
            )
        change = old - new
        mean, se = float(change.mean()), float(change.std(ddof=1) / np.sqrt(change.size))
        rewards.append(np.tanh(mean / max(scale * se, min_change)))
        zs.append(float(np.clip(mean / se, -Z_CAP, Z_CAP)) if se > 0 else float(np.sign(mean) * Z_CAP))
    return np.array(rewards), np.array(zs)


#: Largest |z| reported by [`standardised_rewards`].
Z_CAP = 1e6
