"""Choosing the next mixture: score many candidate mixtures with the reward model, average the best."""

from __future__ import annotations

import numpy as np
import torch

from .reward import total_reward
from .reward_model import RewardModel


def sample_candidate_mixtures(rng: np.random.Generator, num_entries: int, num_candidates: int) -> np.ndarray:
    """Random mixtures on the simplex, shape `(num_candidates, num_entries)`.

    Half are uniform draws, half heavy-tailed (Pareto) draws that concentrate weight on a few entries; each row is
    normalised to sum to one.
    """
    half = num_candidates // 2
    uniform = rng.random((half, num_entries))
    heavy = rng.pareto(1.5, size=(num_candidates - half, num_entries)) + 1e-6
    candidates = np.concatenate([uniform, heavy], axis=0)
    return candidates / candidates.sum(axis=1, keepdims=True)


@torch.no_grad()
def select_mixture(
    model: RewardModel,
    losses: np.ndarray,
    candidates: np.ndarray,
    classes: np.ndarray,
    top_n: int = 8,
) -> tuple[np.ndarray, float]:
    """The mean of the `top_n` candidates with the highest predicted total reward.

    Args:
        model ([`RewardModel`]): the trained reward model.
        losses (`np.ndarray` of shape `(num_entries,)`): current validation losses.
        candidates (`np.ndarray` of shape `(num_candidates, num_entries)`).
        classes (`np.ndarray` of shape `(num_entries,)`): reward class per entry.
        top_n (`int`): how many of the best candidates to average.

    Returns:
        `(mixture, predicted_total_reward_of_the_best)`.
    """
    state = torch.as_tensor(losses, dtype=torch.float32).expand(len(candidates), -1)
    predicted = model(state, torch.as_tensor(candidates, dtype=torch.float32)).double().numpy()
    scores = total_reward(predicted, classes)
    best = np.argsort(-scores, kind="stable")[:top_n]
    mixture = candidates[best].mean(axis=0)
    return mixture / mixture.sum(), float(scores[best[0]])
