"""The live objective mixture shared by the training loop, the reward policy and DataLoader workers."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch


def normalize_weights(weights: Sequence[float], names: Sequence[str] | None = None) -> np.ndarray:
    """Check and normalise mixture weights to sum to one.

    Raises:
        `ValueError`: naming the entry with a negative or non-finite weight, or saying all weights are zero.
    """
    array = np.asarray(weights, dtype=np.float64)
    if array.ndim != 1 or array.size == 0:
        raise ValueError(f"Mixture weights must be a non-empty 1-D sequence, got shape {array.shape}.")
    if names is not None and len(names) != array.size:
        raise ValueError(f"Got {array.size} mixture weights for {len(names)} objectives.")
    for i, value in enumerate(array.tolist()):
        if not np.isfinite(value) or value < 0:
            label = names[i] if names is not None else f"#{i}"
            raise ValueError(f"Mixture weight of objective {label!r} is {value}; weights must be finite and >= 0.")
    total = array.sum()
    if total <= 0:
        raise ValueError("All mixture weights are zero; at least one must be positive.")
    if abs(total - 1.0) <= 1e-12:  # already normalised: kept bit for bit (a restored mixture replays exactly)
        return array
    return array / total


def with_fixed_shares(weights, fixed: dict[int, float]) -> np.ndarray:
    """`weights` (one mixture `(E,)` or candidates `(N, E)`, each normalised) with the entries of `fixed` (index ->
    share) set to their shares and the others scaled to share the rest in their own proportions (evenly when they
    are all zero).

    >>> with_fixed_shares([0.1, 0.3, 0.6], {0: 0.5}).round(3).tolist()
    [0.5, 0.167, 0.333]
    """
    array = np.asarray(weights, dtype=np.float64)
    array = normalize_weights(array) if array.ndim == 1 else array / array.sum(axis=-1, keepdims=True)
    if not fixed:
        return array
    free = np.ones(array.shape[-1], dtype=bool)
    free[list(fixed)] = False
    out = np.zeros_like(array)
    out[..., list(fixed)] = list(fixed.values())
    if free.any():
        rest = array[..., free]
        sums = rest.sum(axis=-1, keepdims=True)
        even = np.full_like(rest, 1.0 / rest.shape[-1])
        rest = np.where(sums > 0, rest / np.where(sums > 0, sums, 1.0), even)
        out[..., free] = (1.0 - sum(fixed.values())) * rest
    return out


def resolve_fixed_shares(items: Sequence[str], entries: Sequence[str], objectives: Sequence[str]) -> dict[int, float]:
    """`["next_token_prediction=0.5", ...]` -> `{entry index: share}`. A name is an entry, or an objective whose
    entries split its share evenly.

    Raises:
        `ValueError`: naming an item that is not `name=share`, a name that is neither an entry nor an objective, an
            entry fixed twice, a share outside [0, 1), or shares that leave nothing (or less than nothing) to the
            entries that are not fixed.
    """
    fixed: dict[int, float] = {}
    for item in items:
        name, sep, value = str(item).partition("=")
        try:
            share = float(value)
        except ValueError:
            share = float("nan")
        if not sep or not name or not 0.0 <= share < 1.0:
            raise ValueError(
                f"fixed share {item!r}: write name=share with a share in [0, 1), e.g. next_token_prediction=0.5."
            )
        chosen = [i for i, entry in enumerate(entries) if entry == name] or [
            i for i, objective in enumerate(objectives) if objective == name
        ]
        if not chosen:
            raise ValueError(
                f"fixed share {item!r}: {name!r} is neither an entry ({', '.join(entries)}) nor an objective of the "
                "mixture."
            )
        for index in chosen:
            if index in fixed:
                raise ValueError(f"fixed share {item!r}: entry {entries[index]!r} already has a fixed share.")
            fixed[index] = share / len(chosen)
    total = sum(fixed.values())
    if len(fixed) == len(entries) and fixed and abs(total - 1.0) > 1e-9:
        raise ValueError(f"every entry has a fixed share, so the shares must add up to 1, not {total:g}.")
    if fixed and (total > 1.0 + 1e-9 or (total >= 1.0 - 1e-9 and len(fixed) < len(entries))):
        raise ValueError(
            f"fixed shares add up to {total:g}: they must leave a share above 0 to the {len(entries) - len(fixed)} "
            "entries the policy allocates."
        )
    return fixed


def per_objective_weights(weights: Sequence[float], objectives: Sequence[str]) -> list[float]:
    """Each entry's weight divided by the number of entries of its objective, so every objective type gets a share
    proportional to its entries' mean weight (equal shares for equal weights), split among its configurations.

    >>> per_objective_weights([1, 1, 1], ["next_token_prediction", "infilling", "infilling"])
    [1.0, 0.5, 0.5]
    """
    if len(weights) != len(objectives):
        raise ValueError(f"Got {len(weights)} weights for {len(objectives)} objectives.")
    return [float(w) / list(objectives).count(o) for w, o in zip(weights, objectives)]


class LiveMixture:
    """Objective sampling probabilities in shared memory.

    The weights live in a `torch` tensor moved to shared memory when the mixture is created, so DataLoader worker
    processes (fork, spawn or forkserver) see every in-place [`update`] made by the main process. A batch already
    prefetched keeps the mixture it was drawn with: with `num_workers=0` an update reaches the batch after next
    (accelerate prefetches one batch); with workers it arrives within `num_workers * prefetch_factor + 1` batches.

    Args:
        names (`Sequence[str]`): entry names, in collator order.
        weights (`Sequence[float]`): initial weights (normalised here).
    """

    def __init__(self, names: Sequence[str], weights: Sequence[float]):
        self.names = list(names)
        self._weights = torch.from_numpy(normalize_weights(weights, self.names).copy()).share_memory_()
        self._epoch = torch.zeros(1, dtype=torch.int64).share_memory_()

    @property
    def weights(self) -> np.ndarray:
        """A copy of the current probabilities, shape `(num_objectives,)`, summing to one."""
        return self._weights.numpy().copy()

    def update(self, weights: Sequence[float]) -> None:
        """Replace the probabilities in place (normalised), visible to every process sharing this mixture."""
        self._weights.copy_(torch.from_numpy(normalize_weights(weights, self.names)))

    @property
    def epoch(self) -> int:
        """Epoch counter mixed into the collator's random seed so repeated windows get fresh corruption."""
        return int(self._epoch.item())

    def set_epoch(self, epoch: int) -> None:
        self._epoch.fill_(int(epoch))

    def as_dict(self) -> dict[str, float]:
        return dict(zip(self.names, self.weights.tolist()))

    def __len__(self) -> int:
        return len(self.names)

    def __repr__(self) -> str:
        body = ", ".join(f"{name}={weight:.3f}" for name, weight in self.as_dict().items())
        return f"LiveMixture({body})"
