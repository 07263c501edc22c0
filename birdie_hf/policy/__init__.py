"""Birdie's reward policy: rewards, reward model, action search and exploration. Pure torch/numpy, no Trainer."""

from .action_search import CandidateChoice, sample_candidate_mixtures, select_mixture
from .exploration import ExplorationSchedule, exploratory_mixture
from .policy import BirdiePolicy, PolicyConfig, PolicyDecision
from .reward import class_index, objective_rewards, standardised_rewards, total_reward
from .reward_model import RewardModel, fit_reward_model


__all__ = [
    "BirdiePolicy",
    "CandidateChoice",
    "ExplorationSchedule",
    "PolicyConfig",
    "PolicyDecision",
    "RewardModel",
    "class_index",
    "exploratory_mixture",
    "fit_reward_model",
    "objective_rewards",
    "standardised_rewards",
    "sample_candidate_mixtures",
    "select_mixture",
    "total_reward",
]
