"""Birdie's reward policy: rewards, reward model, action search, exploration and the evaluation schedule. Pure
torch/numpy, no Trainer."""

from .action_search import CandidateChoice, sample_candidate_mixtures, select_mixture
from .exploration import ExplorationSchedule, exploratory_mixture
from .policy import BirdiePolicy, PolicyConfig, PolicyDecision
from .reward import class_index, objective_rewards, standardised_rewards, total_reward
from .reward_model import RewardModel, fit_reward_model
from .schedule import EvaluationSchedule, evaluation_schedule


__all__ = [
    "BirdiePolicy",
    "CandidateChoice",
    "EvaluationSchedule",
    "ExplorationSchedule",
    "PolicyConfig",
    "PolicyDecision",
    "RewardModel",
    "class_index",
    "evaluation_schedule",
    "exploratory_mixture",
    "fit_reward_model",
    "objective_rewards",
    "standardised_rewards",
    "sample_candidate_mixtures",
    "select_mixture",
    "total_reward",
]
