import math

import numpy as np
import pytest
import torch

from birdie_hf.policy import (
    BirdiePolicy,
    ExplorationSchedule,
    PolicyConfig,
    RewardModel,
    class_index,
    exploratory_mixture,
    objective_rewards,
    sample_candidate_mixtures,
    select_mixture,
    total_reward,
)


def test_reward_sign_and_hand_checked_value():
    rewards = objective_rewards([2.0, 2.0, 2.0, 2.0], [1.98, 2.02, 2.0, 1.0])
    expected_small = 100 * math.e * math.tanh(math.e * math.sqrt(2.0 * 1.98) * 0.01**3)
    assert rewards[0] == pytest.approx(expected_small, rel=1e-9)
    assert rewards[1] < 0 and rewards[2] == 0.0
    assert rewards[3] == 1.0  # large improvement is clipped
    assert objective_rewards([1.0], [5.0])[0] == -1.0


def test_total_reward_averages_within_a_class():
    names, classes = class_index(["ntp", "infilling", "infilling"])
    assert names == ["ntp", "infilling"] and classes.tolist() == [0, 1, 1]
    assert total_reward(np.array([1.0, 0.0, 0.5]), classes) == pytest.approx(1.25)
    batch = total_reward(np.array([[1.0, 0.0, 0.5], [0.0, 1.0, 1.0]]), classes)
    np.testing.assert_allclose(batch, [1.25, 1.0])


def test_candidates_lie_on_the_simplex():
    candidates = sample_candidate_mixtures(np.random.default_rng(0), 5, 100)
    assert candidates.shape == (100, 5)
    np.testing.assert_allclose(candidates.sum(axis=1), 1.0)
    assert (candidates >= 0).all()


def test_select_mixture_follows_the_reward_model():
    torch.manual_seed(0)
    model = RewardModel(3, hidden_size=16, num_layers=1)
    with torch.no_grad():  # predicted reward of entry 0 = its weight; others 0
        for p in model.parameters():
            p.zero_()
        model.net[0].weight[0, 3] = 1.0
        model.net[2].weight[0, 0] = 5.0
    candidates = sample_candidate_mixtures(np.random.default_rng(0), 3, 512)
    mixture, best = select_mixture(model, np.ones(3), candidates, np.arange(3), top_n=4)
    assert mixture.argmax() == 0 and mixture[0] > 0.9
    assert mixture.sum() == pytest.approx(1.0) and best > 0


def test_exploration_schedule():
    schedule = ExplorationSchedule(initial_rate=0.5, final_rate=0.2, decay_fraction=0.5, warmup_decisions=1)
    assert schedule.rate(0.3, decisions_made=0) == 1.0
    assert schedule.rate(0.0, 1) == pytest.approx(0.5)
    assert schedule.rate(0.25, 1) == pytest.approx(0.35)
    assert schedule.rate(0.9, 1) == pytest.approx(0.2)
    with pytest.raises(ValueError, match="final_rate"):
        ExplorationSchedule(final_rate=2.0)


def test_exploratory_mixture_focuses_on_one_or_two_classes():
    classes = np.array([0, 1, 1, 2, 3])
    for seed in range(10):
        mixture = exploratory_mixture(np.random.default_rng(seed), classes)
        assert mixture.sum() == pytest.approx(1.0)
        used = {int(c) for c, w in zip(classes, mixture) if w > 0}
        assert 1 <= len(used) <= 2
        assert mixture[1] == mixture[2]  # a class's weight is split evenly


def greedy_config(**kwargs):
    return PolicyConfig(hidden_size=32, num_layers=2, update_iterations=100, num_candidates=512,
                        exploration=ExplorationSchedule(initial_rate=0.0, final_rate=0.0, warmup_decisions=0),
                        **kwargs)


def test_policy_moves_weight_to_the_objective_that_improves():
    policy = BirdiePolicy(["a", "b", "c"], ["a", "b", "c"], [1, 1, 1], greedy_config())
    losses = np.array([3.0, 3.0, 3.0])
    rng = np.random.default_rng(0)
    for step in range(12):
        mixture = policy.mixture
        losses = losses * (1 - 0.3 * mixture * np.array([1.0, 0.0, 0.0])) + rng.normal(0, 1e-4, 3)
        policy.observe(step, losses, progress=step / 12)
    assert policy.mixture.argmax() == 0
    assert len(policy.trajectory) == 12 and policy.trajectory[0]["rewards"] is None


def test_policy_keeps_the_mixture_during_warmup_and_floors_weights():
    policy = BirdiePolicy(["a", "b"], ["a", "b"], [3, 1], greedy_config(warmup_steps=100, min_weight=0.05))
    for step in (10, 50):
        decision = policy.observe(step, [2.0, 2.0 - step / 100], progress=0.1)
        np.testing.assert_allclose(decision.mixture, [0.75, 0.25])
    decision = policy.observe(100, [2.0, 1.0], progress=0.5)
    assert decision.mixture.min() >= 0.05 - 1e-12


def test_policy_state_round_trip_continues_identically():
    a = BirdiePolicy(["x", "y", "z"], ["x", "y", "y"], [1, 1, 1], PolicyConfig(hidden_size=16, num_layers=1,
                                                                              update_iterations=20, seed=3))
    for step, losses in enumerate([[3, 3, 3], [2.9, 2.8, 3.0], [2.7, 2.8, 2.9]]):
        a.observe(step, losses, progress=step / 10)
    b = BirdiePolicy(["x", "y", "z"], ["x", "y", "y"], [1, 1, 1], PolicyConfig(hidden_size=16, num_layers=1,
                                                                              update_iterations=20, seed=99))
    b.load_state_dict(a.state_dict())
    for step, losses in enumerate([[2.5, 2.7, 2.8], [2.4, 2.6, 2.8], [2.3, 2.6, 2.7]], start=3):
        np.testing.assert_array_equal(a.observe(step, losses, step / 10).mixture,
                                      b.observe(step, losses, step / 10).mixture)


def test_policy_input_errors():
    policy = BirdiePolicy(["a", "b"], ["a", "b"], [1, 1])
    with pytest.raises(ValueError, match="finite losses"):
        policy.observe(0, [1.0, float("nan")], 0.0)
    with pytest.raises(ValueError, match="reward classes"):
        BirdiePolicy(["a"], ["a", "b"], [1])
    with pytest.raises(ValueError, match="top_n"):
        PolicyConfig(num_candidates=4, top_n=8)
    other = BirdiePolicy(["a", "c"], ["a", "c"], [1, 1])
    with pytest.raises(ValueError, match="entries"):
        other.load_state_dict(policy.state_dict())
