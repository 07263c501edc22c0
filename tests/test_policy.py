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
    evaluation_schedule,
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


class _WeightOfEntryZero(torch.nn.Module):
    """A stand-in reward model: predicted reward of entry 0 is its (normalised) weight, others 0."""

    def score_candidates(self, history_losses, history_mixtures, losses, candidates):
        predicted = torch.zeros_like(candidates)
        predicted[:, 0] = candidates[:, 0]
        return predicted


def test_select_mixture_follows_the_reward_model():
    candidates = sample_candidate_mixtures(np.random.default_rng(0), 3, 512)
    prior = np.full(3, 1 / 3)
    choice = select_mixture(
        _WeightOfEntryZero(), np.zeros((0, 3)), np.zeros((0, 3)), np.zeros(3), candidates, np.arange(3), prior, top_n=4
    )
    assert choice.mixture.argmax() == 0 and choice.mixture[0] > 0.9
    assert choice.mixture.sum() == pytest.approx(1.0)
    # normalised weight 3 * w - 1: the prior scores 0, the choice about 3 * 0.95 - 1
    assert choice.prior_predicted_reward == pytest.approx(0.0, abs=1e-6)
    assert choice.predicted_gain == pytest.approx(3 * choice.mixture[0] - 1, rel=1e-5)


def test_reward_model_reads_the_history():
    """The same current losses and candidate get different predictions after different histories."""
    torch.manual_seed(0)
    model = RewardModel(2, hidden_size=8, num_layers=1)
    torch.nn.init.normal_(model.head[-1].weight)
    now, candidate = torch.zeros(2), torch.tensor([[0.5, -0.5]])
    empty = model.score_candidates(torch.zeros(0, 2), torch.zeros(0, 2), now, candidate)
    one = model.score_candidates(torch.tensor([[0.3, -0.2]]), torch.tensor([[1.0, -1.0]]), now, candidate)
    assert empty.shape == (1, 2) and not torch.allclose(empty, one)
    # a fresh model predicts "no reward" for anything (zero-initialised last layer)
    fresh = RewardModel(2, hidden_size=8, num_layers=1)
    assert fresh.score_candidates(torch.zeros(0, 2), torch.zeros(0, 2), now, candidate).abs().max() == 0


def test_exploration_schedule():
    schedule = ExplorationSchedule(initial_rate=0.5, final_rate=0.2, decay_fraction=0.5, warmup_decisions=1)
    assert schedule.rate(0.3, decisions_made=0) == 1.0
    assert schedule.rate(0.0, 1) == pytest.approx(0.5)
    assert schedule.rate(0.25, 1) == pytest.approx(0.35)
    assert schedule.rate(0.9, 1) == pytest.approx(0.2)
    with pytest.raises(ValueError, match="final_rate"):
        ExplorationSchedule(final_rate=2.0)


def test_evaluation_schedule_is_birdies_in_units_of_the_warmup():
    birdie = evaluation_schedule(32768)  # the paper's run length: w = 250
    assert (birdie.warmup_steps, birdie.interval) == (250, 1000)
    assert birdie.steps[:9] == (10, 50, 250, 500, 1000, 1500, 2000, 3000, 4000) and birdie.steps[-1] == 32000
    short = evaluation_schedule(300)  # w = max(10, 300 // 32)
    assert short.as_tuple() == (10, 40, [10, 20, 40, 60, 80, 120, 160, 200, 240, 280])
    assert evaluation_schedule(12, warmup_steps=4, eval_interval=3).steps == (4, 7, 10)
    assert (
        evaluation_schedule(5).steps == ()
    )  # nothing past the run's last step, nothing before step 10 (w / 25, w / 5)
    assert evaluation_schedule(10_000, warmup_steps=500).steps[:3] == (20, 100, 500)
    with pytest.raises(ValueError, match="`eval_interval` must be a positive integer"):
        evaluation_schedule(100, eval_interval=0)


def test_exploratory_mixture_focuses_on_one_or_two_classes():
    classes = np.array([0, 1, 1, 2, 3])
    for seed in range(10):
        mixture = exploratory_mixture(np.random.default_rng(seed), classes)
        assert mixture.sum() == pytest.approx(1.0)
        used = {int(c) for c, w in zip(classes, mixture) if w > 0}
        assert 1 <= len(used) <= 2
        assert mixture[1] == mixture[2]  # a class's weight is split evenly


def greedy_config(**kwargs):
    return PolicyConfig(
        hidden_size=32,
        num_layers=2,
        update_iterations=100,
        num_candidates=512,
        exploration=ExplorationSchedule(initial_rate=0.0, final_rate=0.0, warmup_decisions=0),
        **kwargs,
    )


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
    a = BirdiePolicy(
        ["x", "y", "z"],
        ["x", "y", "y"],
        [1, 1, 1],
        PolicyConfig(hidden_size=16, num_layers=1, update_iterations=20, seed=3),
    )
    for step, losses in enumerate([[3, 3, 3], [2.9, 2.8, 3.0], [2.7, 2.8, 2.9]]):
        a.observe(step, losses, progress=step / 10)
    b = BirdiePolicy(
        ["x", "y", "z"],
        ["x", "y", "y"],
        [1, 1, 1],
        PolicyConfig(hidden_size=16, num_layers=1, update_iterations=20, seed=99),
    )
    b.load_state_dict(a.state_dict())
    for step, losses in enumerate([[2.5, 2.7, 2.8], [2.4, 2.6, 2.8], [2.3, 2.6, 2.7]], start=3):
        np.testing.assert_array_equal(
            a.observe(step, losses, step / 10).mixture, b.observe(step, losses, step / 10).mixture
        )


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


def _synthetic_runs(rates, noise, seed, intervals=24):
    from synthetic_curricula import SyntheticCurriculum, run_synthetic

    names = [f"e{i}" for i in range(len(rates))]
    classes, initial = np.arange(len(rates)), np.full(len(rates), 1 / len(rates))
    policy = BirdiePolicy(
        names,
        names,
        initial,
        PolicyConfig(
            hidden_size=32, num_layers=2, update_iterations=60, num_candidates=256, min_predicted_gain=0.05, seed=seed
        ),
    )
    learned = run_synthetic(SyntheticCurriculum(rates, noise=noise, seed=seed), policy, intervals, classes, initial)
    static = run_synthetic(SyntheticCurriculum(rates, noise=noise, seed=seed), None, intervals, classes, initial)
    return policy, learned, static


@pytest.mark.parametrize("seed", [0, 1])
def test_policy_beats_the_static_mixture_on_a_synthetic_curriculum(seed):
    """Only entry 0 (fast) and entry 1 (slow) respond to training; the best mixture favours entry 0."""
    policy, learned, static = _synthetic_runs([0.6, 0.05, 0, 0, 0, 0], noise=0.002, seed=seed)
    assert learned["total_reward"] > static["total_reward"] + 0.5
    assert learned["final_losses"][0] < static["final_losses"][0]
    chosen = [r for r in policy.trajectory if r["decision"] == "reward_model"]
    assert chosen and np.mean([r["next_mixture"][0] for r in chosen]) > 0.3  # initial weight: 1/6


@pytest.mark.parametrize("seed", [0, 1])
def test_policy_stays_at_the_initial_mixture_on_pure_noise(seed):
    """No loss responds to training; observed losses carry 1% noise. Outside explorations the policy keeps the
    initial mixture, because no candidate is predicted to beat it by more than the noise floor."""
    policy, learned, _ = _synthetic_runs([0.0] * 6, noise=0.01, seed=seed)
    decisions = [r for r in policy.trajectory if r["decision"] in ("reward_model", "prior")]
    assert decisions and all(r["decision"] == "prior" for r in decisions)
    for record in decisions:
        np.testing.assert_allclose(record["next_mixture"], np.full(6, 1 / 6))
        assert abs(record["predicted_gain"]) < 0.05


# -- fixed shares ----------------------------------------------------------------------------------------------------
def test_fixed_shares_by_hand():
    from birdie_hf.mixture import with_fixed_shares

    np.testing.assert_allclose(with_fixed_shares([0.1, 0.3, 0.6], {0: 0.5}), [0.5, 0.5 / 3, 1.0 / 3])
    np.testing.assert_allclose(with_fixed_shares([1.0, 0.0, 0.0], {0: 0.4}), [0.4, 0.3, 0.3])  # the rest: evenly
    candidates = with_fixed_shares(np.array([[1.0, 1.0, 2.0], [0.0, 3.0, 1.0]]), {2: 0.2})
    np.testing.assert_allclose(candidates, [[0.4, 0.4, 0.2], [0.0, 0.8, 0.2]])


def test_a_normalised_mixture_is_restored_bit_for_bit():
    """A mixture with a fixed share sums to 1 only within rounding; normalising it again must not move it, or a run
    resumed from a checkpoint would train on a mixture a few ulps off the one it saved."""
    from birdie_hf.mixture import LiveMixture, normalize_weights

    saved = [0.5, 0.16666666666666669, 0.16666666666666669, 0.16666666666666669]  # a two-process run's, step 4
    assert (np.array(saved) / sum(saved)).tolist() != saved  # dividing by its sum would move it
    assert normalize_weights(saved).tolist() == saved
    mixture = LiveMixture(["a", "b", "c", "d"], [1, 1, 1, 1])
    mixture.update(saved)
    assert mixture.weights.tolist() == saved
    assert normalize_weights([2.0, 1.0, 1.0]).tolist() == [0.5, 0.25, 0.25]  # not normalised: divided by the sum


def test_fixed_shares_resolve_entries_and_objectives_and_refuse_what_cannot_work():
    from birdie_hf.mixture import resolve_fixed_shares

    entries = ["ntp", "inf_a", "inf_b", "copy"]
    objectives = ["next_token_prediction", "infilling", "infilling", "copying"]
    assert resolve_fixed_shares(["ntp=0.5"], entries, objectives) == {0: 0.5}
    assert resolve_fixed_shares(["infilling=0.4"], entries, objectives) == {1: 0.2, 2: 0.2}
    for items, message in (
        (["ntp"], "write name=share"),
        (["ntp=1.5"], "write name=share"),
        (["gpt=0.5"], "'gpt' is neither an entry"),
        (["ntp=0.5", "next_token_prediction=0.1"], "already has a fixed share"),
        (["ntp=0.6", "infilling=0.4"], "must leave a share above 0"),
        (["ntp=0.3", "infilling=0.3", "copy=0.3"], "every entry has a fixed share, so the shares must add up to 1"),
    ):
        with pytest.raises(ValueError, match=message):
            resolve_fixed_shares(items, entries, objectives)


def test_every_mixture_the_policy_chooses_keeps_the_fixed_shares():
    config = PolicyConfig(
        hidden_size=8, num_layers=1, update_iterations=5, num_candidates=64, fixed_shares={0: 0.5},
        min_predicted_gain=0.0, exploration_blend=0.5,
    )  # fmt: skip
    policy = BirdiePolicy(["ntp", "a", "b"], ["ntp", "a", "b"], [1, 1, 1], config)
    np.testing.assert_allclose(policy.mixture, [0.5, 0.25, 0.25])
    kinds = set()
    for step in range(30):
        # Entry "a" improves whenever it is trained: the reward model learns to prefer it.
        losses = np.array([2.0, 2.0 - 0.5 * policy.mixture[1] * step / 30, 2.0])
        decision = policy.observe(step, losses, progress=step / 30)
        kinds.add(decision.kind)
        assert decision.mixture[0] == pytest.approx(0.5)
        if decision.kind == "explore":  # blended with the initial mixture after fixing: half of each free share
            assert decision.mixture[1:].min() >= 0.125 - 1e-12
    assert {"explore", "reward_model"} <= kinds  # exploration draws and reward-model choices alike


def test_training_arguments_apply_fixed_shares_to_the_initial_mixture(tmp_path):
    from birdie_hf import BirdieTrainingArguments

    args = BirdieTrainingArguments(
        output_dir=str(tmp_path),
        objectives=["next_token_prediction", "prefix_lm", "copying"],
        policy_fixed_shares="next_token_prediction=0.5",  # one string, as YAML may give it
    )
    np.testing.assert_allclose(args.initial_weights(), [0.5, 0.25, 0.25])
    assert args.policy_config().fixed_shares == {0: 0.5}
    with pytest.raises(ValueError, match="'infilling' is neither an entry"):
        BirdieTrainingArguments(
            output_dir=str(tmp_path), objectives=["copying"], policy_fixed_shares=["infilling=0.5"]
        )


# -- the standardised reward ------------------------------------------------------------------------------------------
def test_standardised_reward_by_hand():
    from birdie_hf.policy import standardised_rewards

    old = [np.array([1.5, 1.25, 1.375, 1.0])]
    new = [np.array([1.375, 1.125, 1.25, 0.875])]  # every example 1/8 nat lower: no spread, infinitely significant
    rewards, z = standardised_rewards(old, new)
    assert rewards[0] == pytest.approx(math.tanh(0.125 / 1e-3)) and z[0] == 1e6  # capped: valid JSON
    old = [np.array([1.40, 1.38, 1.39, 1.41])]
    new = [np.array([1.39, 1.38, 1.38, 1.41])]  # changes 0.01, 0, 0.01, 0: mean 0.005, se 0.0028868
    rewards, z = standardised_rewards(old, new, scale=2.0, min_change=1e-3)
    se = np.std([0.01, 0, 0.01, 0], ddof=1) / 2
    assert z[0] == pytest.approx(0.005 / se) and rewards[0] == pytest.approx(math.tanh(0.005 / (2 * se)))
    with pytest.raises(ValueError, match="same >= 2 held-out examples"):
        standardised_rewards([np.ones(3)], [np.ones(4)])


def test_standardised_reward_registers_dna_scale_progress_that_the_papers_reads_as_zero():
    """Next-token prediction on DNA: 1.380 -> 1.376 nats over an interval (0.3%), measured on 64 held-out examples
    whose losses differ by 0.05 between examples but change together; a noise-only entry beside it."""
    from birdie_hf.policy import standardised_rewards

    rng = np.random.default_rng(0)
    base = 1.38 + rng.normal(0, 0.05, 64)
    progressing = (base, base - 0.004 + rng.normal(0, 0.002, 64))
    noise = (base, base + rng.normal(0, 0.002, 64))
    paper = objective_rewards([progressing[0].mean(), noise[0].mean()], [progressing[1].mean(), noise[1].mean()])
    assert abs(paper[0]) < 0.02  # the cubed relative change: 3e-3 ** 3 ~ 3e-8, times 100 e^2 S
    rewards, z = standardised_rewards([progressing[0], noise[0]], [progressing[1], noise[1]])
    assert z[0] > 10 and rewards[0] > 0.9
    assert abs(z[1]) < 3 and abs(rewards[1]) < 0.5


def test_policy_with_the_standardised_reward_needs_example_losses_and_resumes_with_them():
    config = PolicyConfig(hidden_size=8, num_layers=1, update_iterations=5, num_candidates=64, reward="standardised")
    policy = BirdiePolicy(["a", "b"], ["a", "b"], [1, 1], config)
    with pytest.raises(ValueError, match="needs `example_losses`"):
        policy.observe(1, [1.4, 1.4], progress=0.1)
    rng = np.random.default_rng(0)
    examples = [1.4 + rng.normal(0, 0.05, 16), 1.4 + rng.normal(0, 0.05, 16)]
    policy.observe(1, [e.mean() for e in examples], 0.1, examples)
    examples = [examples[0] - 0.01, examples[1] + rng.normal(0, 0.001, 16)]
    decision = policy.observe(2, [e.mean() for e in examples], 0.2, examples)
    assert decision.rewards[0] > 0.9 and decision.reward_z[0] == 1e6  # the same 0.01 nat off every example
    assert policy.trajectory[-1]["reward_z"][0] == decision.reward_z[0]
    resumed = BirdiePolicy(["a", "b"], ["a", "b"], [1, 1], config)
    resumed.load_state_dict(policy.state_dict())
    np.testing.assert_array_equal(resumed.last_example_losses[0], examples[0])
    with pytest.raises(ValueError, match="reward must be one of"):
        PolicyConfig(reward="relative")


def test_every_decision_says_why_and_blended_exploration_keeps_half_of_each_share():
    config = PolicyConfig(
        hidden_size=8, num_layers=1, update_iterations=5, num_candidates=64, exploration_blend=0.5, min_weight=0.0,
        exploration=ExplorationSchedule(initial_rate=1.0, final_rate=1.0), warmup_steps=3,
    )  # fmt: skip
    policy = BirdiePolicy(["ntp", "a", "b", "c"], ["ntp", "a", "b", "c"], [1, 1, 1, 1], config)
    reasons = [policy.observe(step, [2.0 - 0.01 * step] * 4, progress=step / 10).reason for step in range(1, 8)]
    assert reasons[0].startswith("first evaluation") and reasons[1].startswith("warm-up until step 3")
    for reason, record in zip(reasons[2:], policy.trajectory[2:]):
        assert reason.startswith("explore: draw") and "blended 50%" in reason and record["reason"] == reason
        assert min(record["next_mixture"]) >= 0.125 - 1e-12  # half of each initial quarter share, whatever the draws
    config = PolicyConfig(hidden_size=8, num_layers=1, update_iterations=5, num_candidates=64, min_predicted_gain=9.0,
                          exploration=ExplorationSchedule(initial_rate=0.0, final_rate=0.0, warmup_decisions=0))  # fmt: skip
    policy = BirdiePolicy(["a", "b"], ["a", "b"], [1, 1], config)
    policy.observe(1, [2.0, 2.0], 0.1)
    decision = policy.observe(2, [1.9, 2.0], 0.2)
    assert decision.kind == "prior" and "below the gate 9" in decision.reason
    with pytest.raises(ValueError, match="exploration_blend"):
        PolicyConfig(exploration_blend=0.0)
