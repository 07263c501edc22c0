"""Choosing the next mixture: score many candidate mixtures with the reward model, average the best."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .reward import total_reward
from .reward_model import RewardModel, normalize_mixtures


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


@dataclass
class CandidateChoice:
    """What [`select_mixture`] found.

    Attributes:
        mixture (`np.ndarray` of shape `(num_entries,)`): mean of the `top_n` best candidates.
        predicted_reward (`float`): predicted total reward of that mean mixture.
        prior_predicted_reward (`float`): predicted total reward of the prior (fallback) mixture.
    """

    mixture: np.ndarray
    predicted_reward: float
    prior_predicted_reward: float

    @property
    def predicted_gain(self) -> float:
        return self.predicted_reward - self.prior_predicted_reward


@torch.no_grad()
def select_mixture(
    model: RewardModel,
    history_losses: np.ndarray,
    history_mixtures: np.ndarray,
    losses: np.ndarray,
    candidates: np.ndarray,
    classes: np.ndarray,
    prior: np.ndarray,
    top_n: int = 8,
) -> CandidateChoice:
    """Score `candidates` (and `prior`) with the reward model; return the mean of the `top_n` best.

    Args:
        model ([`RewardModel`]): the trained reward model.
        history_losses (`np.ndarray` of shape `(time, num_entries)`): normalised losses of past intervals.
        history_mixtures (`np.ndarray` of shape `(time, num_entries)`): normalised mixtures of past intervals.
        losses (`np.ndarray` of shape `(num_entries,)`): normalised current losses.
        candidates (`np.ndarray` of shape `(num_candidates, num_entries)`): raw candidate mixtures.
        classes (`np.ndarray` of shape `(num_entries,)`): reward class per entry.
        prior (`np.ndarray` of shape `(num_entries,)`): the mixture to compare against (the initial mixture).
        top_n (`int`): how many of the best candidates to average.
    """
    as_tensor = lambda array: torch.as_tensor(np.asarray(array), dtype=torch.float32)  # noqa: E731
    past_losses = as_tensor(history_losses).reshape(-1, len(losses))
    past_mixtures = as_tensor(history_mixtures).reshape(-1, len(losses))

    def predict(mixtures: np.ndarray) -> np.ndarray:
        predicted = model.score_candidates(
            past_losses, past_mixtures, as_tensor(losses), as_tensor(normalize_mixtures(mixtures))
        )
        return total_reward(predicted.double().numpy(), classes)

    scores = predict(candidates)
    best = candidates[np.argsort(-scores, kind="stable")[:top_n]].mean(axis=0)
    mixture = best / best.sum()
    averaged, prior_score = predict(np.stack([mixture, prior]))
    return CandidateChoice(
        mixture=mixture, predicted_reward=float(averaged), prior_predicted_reward=float(prior_score)
    )
