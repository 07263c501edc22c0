import json
import os

import numpy as np
import pytest
import torch
from testing_utils import MIXTURE, make_trainer
from transformers import TrainerCallback, TrainerControl, TrainerState, TrainingArguments

from birdie_hf import (
    BirdieRewardCallback,
    BirdieTrainer,
    BirdieTrainingArguments,
    DataCollatorForBirdie,
    build_causal_lm,
    default_model_config,
    last_complete_checkpoint,
)
from birdie_hf.runs.checkpoints import BIRDIE_STATE_NAME, TRAJECTORY_NAME
from birdie_hf.trainer import example_mean_loss


def test_birdie_run_logs_per_objective_and_steers_the_mixture(tokenizer, genome, tmp_path):
    trainer = make_trainer(tokenizer, genome, tmp_path)
    before = [p.detach().clone() for p in trainer.model.parameters()]
    trainer.train()
    history = trainer.state.log_history
    train_logs = [h for h in history if "loss" in h and "eval_loss" not in h]
    assert any("loss/infilling_short" in h for h in train_logs)
    assert all(f"mixture/{name}" in train_logs[0] for name in trainer.data_collator.entry_names)
    logged = [
        [h[f"mixture/{n}"] for n in trainer.data_collator.entry_names] for h in train_logs if "mixture/copying" in h
    ]
    assert all(a != b for a, b in zip(logged, logged[1:]))  # logged only when the mixture changed
    eval_logs = [h for h in history if "eval_loss/copying" in h]
    assert [h["step"] for h in eval_logs] == [2, 4, 6, 8]
    decisions = [h for h in history if "next_mixture/copying" in h]
    assert [h["step"] for h in decisions] == [2, 4, 6, 8]
    assert [h["step"] for h in decisions if "reward/total" in h] == [4, 6, 8]
    assert all("policy/reward_model_loss" in h for h in decisions if "reward/total" in h)
    assert train_logs[-1]["loss"] < train_logs[0]["loss"]
    assert any(not torch.equal(a, b) for a, b in zip(before, trainer.model.parameters()))
    # The policy decided at steps 4 and 6 and applied each decision one step later.
    trajectory = trainer.mixture_trajectory()["evaluations"]
    assert len(trajectory) == 4 and all("next_mixture" in record for record in trajectory)
    np.testing.assert_allclose(list(trajectory[2]["mixture"].values()), list(trajectory[1]["next_mixture"].values()))
    # The default preset (dna) fixes next-token prediction at half of the examples; the rest starts uniform over
    # objective types, infilling's share split between its two entries.
    assert trajectory[0]["mixture"] == pytest.approx(
        {
            "next_token_prediction": 0.5,
            "prefix_lm": 1 / 6,
            "infilling_short": 1 / 12,
            "infilling_long": 1 / 12,
            "copying": 1 / 6,
        }
    )
    assert any(record["mixture"] != trajectory[0]["mixture"] for record in trajectory)
    assert trainer.mixture_trajectory()["reward_classes"].count("infilling") == 2


def test_only_scheduled_evaluations_feed_the_policy(tokenizer, genome, tmp_path):
    """A user's eval_strategy and evaluate() calls measure losses but never move the policy or the mixture."""
    trainer = make_trainer(tokenizer, genome, tmp_path, max_steps=4, eval_strategy="steps", eval_steps=1)
    trainer.train()
    history = trainer.state.log_history
    assert [h["step"] for h in history if "eval_loss/copying" in h] == [1, 2, 3, 4]
    assert [h["step"] for h in history if "next_mixture/copying" in h] == [2, 4]
    policy = trainer.birdie_callback.policy
    assert [record["step"] for record in policy.trajectory] == [2, 4]
    weights, pending = trainer.data_collator.mixture.weights, trainer.birdie_callback.pending
    observed = len(trainer.birdie_callback.trajectory)
    for metrics in (trainer.evaluate(), trainer.evaluate(genome["train"].select(range(8)), metric_key_prefix="other")):
        assert not any(key.startswith(("reward/", "next_mixture/", "policy/")) for key in metrics)
    assert "other_loss/copying" in metrics
    np.testing.assert_array_equal(trainer.data_collator.mixture.weights, weights)
    assert trainer.birdie_callback.pending == pending and len(trainer.birdie_callback.trajectory) == observed
    assert len(policy.trajectory) == 2


def _windows_per_entry(batches, names):
    """{entry: number of distinct windows in the held-out batches of that entry}."""
    counts = dict.fromkeys(names, 0)
    for batch in batches:
        entry = names[int(batch["objective_ids"][0, 0])]
        assert (batch["objective_ids"][batch["objective_ids"] >= 0] == names.index(entry)).all()
        for row in batch["segment_ids"]:
            counts[entry] += len(set(row[row >= 0].tolist()))
    return counts


def test_validation_set_is_sized_by_compute_fraction(tokenizer, genome, tmp_path):
    trainer = make_trainer(
        tokenizer,
        genome,
        tmp_path,
        max_steps=100,
        policy_eval_interval=None,  # Birdie's schedule: 5 evaluations in 100 steps (10, 20, 40, 60, 80)
        policy_warmup_steps=None,
        policy_validation_windows=None,
        policy_validation_fraction=0.03,
        policy_validation_min_windows=1,
        policy_validation_max_windows=1000,
        per_device_eval_batch_size=2,
        policy_fixed_shares=[],  # no fixed share: the initial mixture is uniform over objective types
    )
    names = trainer.data_collator.entry_names
    # Tokens through the model of one 64-base window under each entry (prompts, sentinels and EOS included).
    first = [genome["validation"][0]]
    tokens = [
        int((trainer.data_collator.collate_with_objectives(first, [i])["objective_ids"] >= 0).sum())
        for i in range(len(names))
    ]
    assert tokens == [64, 65, 72, 68, 130]  # copying writes the window twice
    # Initial mixture per objective: 1/4 each for NTP, prefix LM and copying, 1/8 each infilling entry, so a training
    # window costs 0.25 * (64 + 65 + 130) + 0.125 * (72 + 68) = 82.25 tokens. 100 steps of 4 windows, forward and
    # backward (3 forward passes): 3 * 100 * 4 * 82.25 = 98,700 tokens. 3% of it over 5 evaluations of
    # 399 tokens per set of one window under every entry: 2,961 / 1,995 -> 1 window.
    assert trainer.data_collator.mixture.weights.tolist() == [0.25, 0.25, 0.125, 0.125, 0.25]
    assert len(trainer.args.policy_schedule(100)[2]) == 5
    assert trainer.validation_windows_per_entry(genome["validation"]) == int(0.03 * 98700 / (5 * 399)) == 1
    evaluations = len(trainer.args.policy_schedule(1000)[2])
    assert trainer.validation_windows_per_entry(genome["validation"], max_steps=1000) == int(
        0.03 * 987000 / (evaluations * 399)
    )
    # every entry gets the same windows, and as many as the fraction affords (here 10x the share: 10x the windows)
    trainer.args.policy_validation_fraction = 0.3
    batches = trainer._build_validation_batches(genome["validation"])
    assert (
        _windows_per_entry(batches, names)
        == dict.fromkeys(names, int(0.3 * 98700 / (5 * 399)))
        == dict.fromkeys(names, 14)
    )
    # clamped to [min, max] windows and to the held-out split; an exact count overrides the fraction
    trainer.args.policy_validation_min_windows = 5
    trainer.args.policy_validation_fraction = 0.0
    assert trainer.validation_windows_per_entry(genome["validation"]) == 5
    trainer.args.policy_validation_max_windows = 3
    trainer.args.policy_validation_min_windows = 1
    trainer.args.policy_validation_fraction = 1.0
    assert trainer.validation_windows_per_entry(genome["validation"]) == 3
    trainer.args.policy_validation_min_windows = trainer.args.policy_validation_max_windows = 10_000
    assert trainer.validation_windows_per_entry(genome["validation"]) == len(genome["validation"]) == 246
    trainer.args.policy_validation_windows = 4
    assert _windows_per_entry(trainer._build_validation_batches(genome["validation"]), names) == dict.fromkeys(
        names, 4
    )


def test_validation_window_bounds_are_checked(tmp_path):
    with pytest.raises(ValueError, match="policy_validation_min_windows.*must not exceed"):
        BirdieTrainingArguments(
            output_dir=str(tmp_path), policy_validation_min_windows=10, policy_validation_max_windows=5
        )
    with pytest.raises(ValueError, match="policy_validation_fraction"):
        BirdieTrainingArguments(output_dir=str(tmp_path), policy_validation_fraction=1.5)


def test_a_token_budget_is_the_same_number_of_steps_for_every_mixture(tmp_path):
    """`max_tokens` with `example_length`: ceil(budget / (example_length x windows per step)) steps."""
    for policy in ("ntp", "static", "birdie"):
        args = BirdieTrainingArguments(
            output_dir=str(tmp_path), policy=policy, max_length=520, example_length=260, max_tokens=1_000_000,
            per_device_train_batch_size=8, gradient_accumulation_steps=2,
        )  # fmt: skip
        assert args.max_steps == -(-1_000_000 // (260 * 8 * 2)) == 241
    with pytest.raises(ValueError, match="`max_tokens` needs `example_length`"):
        BirdieTrainingArguments(output_dir=str(tmp_path), max_tokens=1000)
    with pytest.raises(ValueError, match=r"Give `max_steps` \(10\) or `max_tokens`"):
        BirdieTrainingArguments(output_dir=str(tmp_path), example_length=64, max_tokens=100_000, max_steps=10)
    with pytest.raises(ValueError, match="`example_length` must be between 16 and `max_length` \\(520\\)"):
        BirdieTrainingArguments(output_dir=str(tmp_path), max_length=520, example_length=521)


def test_a_budgeted_run_trains_its_steps_with_rows_independent_of_the_mixture(tokenizer, genome, tmp_path):
    for policy in ("ntp", "static"):  # next-token prediction alone, and a mixture with copying
        trainer = make_trainer(
            tokenizer, genome, tmp_path / policy, policy=policy, max_length=128, example_length=64,
            max_tokens=64 * 4 * 3, per_device_train_batch_size=4, max_steps=-1,
        )  # fmt: skip
        rows = {batch["input_ids"].shape[0] for batch, _ in zip(trainer.get_train_dataloader(), range(6))}
        assert rows == {2}  # 4 windows, two examples of at most 64 tokens per 128-token row
        trainer.train()
        assert trainer.state.global_step == 3


def test_example_index_numbers_packed_examples_across_the_batch():
    from birdie_hf.trainer import example_index

    batch = {
        "position_ids": torch.tensor([[0, 1, 2, 0, 1, 0], [0, 1, 2, 3, 0, 0]]),
        "objective_ids": torch.tensor([[2, 2, 2, 0, 0, -1], [1, 1, 1, 1, -1, -1]]),
    }
    index, entries = example_index(batch)
    assert index.tolist() == [[0, 0, 0, 1, 1, -1], [2, 2, 2, 2, -1, -1]]
    assert entries.tolist() == [2, 0, 1]


def test_example_averaging_weighs_every_packed_example_alike():
    batch = {
        "position_ids": torch.tensor([[0, 1, 2, 3, 0, 1, 2], [0, 1, 2, 3, 4, 5, 0]]),
        "objective_ids": torch.tensor([[0, 0, 0, 0, 1, 1, 1], [2, 2, 2, 2, 2, 2, -1]]),
    }
    # Per target t + 1 (shifted): example 0 scores targets 1-3, example 1 targets 5-6, example 2 targets 1-5.
    losses = torch.tensor([[1.0, 1.0, 1.0, 9.0, 4.0, 6.0], [2.0, 2.0, 2.0, 2.0, 2.0, 0.0]])
    valid = torch.tensor([[True, True, True, False, True, True], [True, True, True, True, True, False]])
    assert example_mean_loss(losses, valid, batch).item() == pytest.approx((1.0 + 5.0 + 2.0) / 3)
    # The token mean weighs the examples by their targets (3, 2 and 5): (3 + 10 + 10) / 10.
    assert losses[valid].mean().item() == pytest.approx(2.3)
    # A batch without a scored target contributes zero, keeping the graph.
    assert example_mean_loss(losses, torch.zeros_like(valid), batch).item() == 0.0


def test_a_run_with_example_averaging_trains(tokenizer, genome, tmp_path):
    trainer = make_trainer(tokenizer, genome, tmp_path, loss_averaging="example", gradient_accumulation_steps=2)
    before = [p.detach().clone() for p in trainer.model.parameters()]
    trainer.train()
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    assert losses and all(np.isfinite(losses)) and losses[-1] < losses[0]
    assert any(not torch.equal(a, b) for a, b in zip(before, trainer.model.parameters()))
    with pytest.raises(ValueError, match="loss_averaging"):
        BirdieTrainingArguments(output_dir=str(tmp_path), loss_averaging="sample")


def test_per_example_held_out_losses_average_to_the_entry_losses(tokenizer, genome, tmp_path):
    trainer = make_trainer(tokenizer, genome, tmp_path, policy_validation_windows=6)
    means, examples = trainer.objective_losses(per_example=True)
    np.testing.assert_allclose(trainer.objective_losses(), means)
    assert [len(e) for e in examples] == [6] * len(means)
    # Examples of one entry have nearly equal numbers of targets, so their mean is close to the token mean.
    np.testing.assert_allclose([e.mean() for e in examples], means, rtol=0.05)


def test_a_run_with_the_standardised_reward_records_each_entrys_t_statistic(tokenizer, genome, tmp_path):
    trainer = make_trainer(tokenizer, genome, tmp_path, policy_reward="standardised", policy_validation_windows=4)
    trainer.train()
    evaluations = trainer.mixture_trajectory()["evaluations"]
    assert evaluations[0].get("reward_z") is None
    later = [e for e in evaluations[1:]]
    assert later and all(set(e["reward_z"]) == set(trainer.data_collator.entry_names) for e in later)
    assert all(-1 <= r <= 1 for e in later for r in e["rewards"].values())
    assert all(z > 2 for z in later[0]["reward_z"].values())  # the first steps lower every loss well past noise


def test_static_and_ntp_modes(tokenizer, genome, tmp_path):
    static = make_trainer(
        tokenizer, genome, tmp_path / "s", policy="static", max_steps=4, objective_weights=[4, 1, 1, 1, 1]
    )
    static.train()
    for record in static.mixture_trajectory()["evaluations"]:
        assert record["mixture"]["next_token_prediction"] == pytest.approx(0.5)
    # Gradient accumulation and bf16 autocast (the dense mask follows the compute dtype).
    ntp = make_trainer(
        tokenizer, genome, tmp_path / "n", policy="ntp", max_steps=2, gradient_accumulation_steps=2, bf16=True
    )
    assert ntp.data_collator.entry_names == ["next_token_prediction"]
    assert ntp._mask_dtype(ntp.model) == torch.bfloat16
    ntp.train()
    logged = [h["loss/next_token_prediction"] for h in ntp.state.log_history if "loss/next_token_prediction" in h]
    assert logged and all(np.isfinite(logged))


class StopAt(TrainerCallback):
    def __init__(self, step):
        self.step = step

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == self.step:
            control.should_training_stop = True


@pytest.mark.slow
def test_interrupted_and_resumed_run_matches_an_uninterrupted_one(tokenizer, genome, tmp_path):
    kwargs = dict(max_steps=10, save_strategy="steps", save_steps=4, logging_steps=1)
    full = make_trainer(tokenizer, genome, tmp_path / "full", **kwargs)
    full.train()

    interrupted = make_trainer(tokenizer, genome, tmp_path / "cut", **kwargs)
    interrupted.add_callback(StopAt(6))
    interrupted.train()
    # A half-written checkpoint (killed while saving) must be skipped.
    os.makedirs(tmp_path / "cut" / "run" / "checkpoint-8")
    assert last_complete_checkpoint(str(tmp_path / "cut" / "run")).endswith("checkpoint-4")
    resumed = make_trainer(tokenizer, genome, tmp_path / "cut", **kwargs)
    resumed.train(resume_from_checkpoint=True)

    def losses(trainer):
        return [(h["step"], h["loss"]) for h in trainer.state.log_history if "loss" in h and h["step"] > 4]

    assert losses(resumed) == losses(full)
    assert resumed.mixture_trajectory() == full.mixture_trajectory()
    for a, b in zip(full.model.parameters(), resumed.model.parameters()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    checkpoint = tmp_path / "full" / "run" / "checkpoint-8"
    assert (checkpoint / BIRDIE_STATE_NAME).exists()
    saved = json.loads((checkpoint / TRAJECTORY_NAME).read_text())
    assert saved["entries"] == full.data_collator.entry_names


def test_bad_setups_fail_before_training(tokenizer, genome, tmp_path):
    with pytest.raises(ValueError, match="eval_dataset"):
        BirdieTrainer(
            args=BirdieTrainingArguments(output_dir=str(tmp_path), use_cpu=True),
            train_dataset=genome["train"],
            processing_class=tokenizer,
        )
    with pytest.raises(ValueError, match="window_length=64"):
        make_trainer(tokenizer, genome, tmp_path, objectives=["selective_copying"], max_length=512)
    with pytest.raises(ValueError, match="objective_weights"):
        BirdieTrainingArguments(output_dir=str(tmp_path), objectives=["copying"], objective_weights=[1, 2])
    with pytest.raises(ValueError, match="weights must be >= 0"):
        BirdieTrainingArguments(
            output_dir=str(tmp_path), objectives=["copying", "prefix_lm"], objective_weights=[1, -2]
        )
    with pytest.raises(ValueError, match="all zero"):
        BirdieTrainingArguments(output_dir=str(tmp_path), objectives=["copying"], objective_weights=[0])
    with pytest.raises(ValueError, match="Unknown objective 'copy'"):
        BirdieTrainingArguments(output_dir=str(tmp_path), objectives=["copy"])
    small = build_causal_lm(
        default_model_config(tokenizer, hidden_size=32, num_hidden_layers=1, num_attention_heads=2, vocab_size=20)
    )
    with pytest.raises(ValueError, match="resize_token_embeddings"):
        BirdieTrainer(
            model=small,
            args=BirdieTrainingArguments(output_dir=str(tmp_path), policy="ntp"),
            train_dataset=genome["train"],
            processing_class=tokenizer,
        )
    trainer = make_trainer(tokenizer, genome, tmp_path)
    with pytest.raises(ValueError, match="no birdie_state.pt"):
        trainer.train(resume_from_checkpoint=str(tmp_path))


def test_a_diverging_run_stops_with_one_clear_error(tokenizer, genome, tmp_path):
    """transformers' nan/inf filter would log a finite `loss` for NaN steps; the per-objective losses stop the run."""
    from birdie_hf.trainer import TrainingDivergedError

    trainer = make_trainer(tokenizer, genome, tmp_path, policy="static")
    with torch.no_grad():
        trainer.model.get_input_embeddings().weight.fill_(float("nan"))
    with pytest.raises(
        TrainingDivergedError, match=r"training diverged by step 2: the loss of .* is nan .*no checkpoint"
    ):
        trainer.train()
    assert trainer.state.global_step == 2


def test_a_run_that_diverges_between_logs_saves_no_checkpoint_of_it(tokenizer, genome, tmp_path):
    from birdie_hf.trainer import TrainingDivergedError

    trainer = make_trainer(
        tokenizer, genome, tmp_path, policy="static", logging_steps=8, save_strategy="steps", save_steps=2
    )
    with torch.no_grad():
        trainer.model.get_input_embeddings().weight.fill_(float("nan"))
    with pytest.raises(TrainingDivergedError, match="training diverged by step 2"):
        trainer.train()
    assert not list((tmp_path / "run").glob("checkpoint-*"))


def test_policy_schedule_follows_birdie_and_scales_with_run_length():
    args = BirdieTrainingArguments(output_dir="unused", use_cpu=True)
    warmup, interval, steps = args.policy_schedule(32768)  # Birdie's own schedule
    assert (warmup, interval) == (250, 1000)
    assert steps[:9] == [10, 50, 250, 500, 1000, 1500, 2000, 3000, 4000] and steps[-1] == 32000
    warmup, interval, steps = args.policy_schedule(300)  # the recipe default: same shape, warm-up of 10 steps
    assert (warmup, interval) == (10, 40)
    assert steps == [10, 20, 40, 60, 80, 120, 160, 200, 240, 280]  # none before Birdie's first, step 10
    fixed = BirdieTrainingArguments(output_dir="unused", use_cpu=True, policy_warmup_steps=4, policy_eval_interval=3)
    assert fixed.policy_schedule(12)[2] == [4, 7, 10]
    assert args.policy_schedule(2298)[2][:3] == [14, 71, 142]  # the experiment: w = 71, w/25 = 2 left out


def test_the_reward_callback_owns_its_policy_and_schedule(tokenizer):
    args = BirdieTrainingArguments(output_dir="unused", use_cpu=True, objectives=MIXTURE, policy_hidden_size=8)
    collator = DataCollatorForBirdie.from_training_args(tokenizer, args)
    callback = BirdieRewardCallback.from_training_args(args, collator)
    assert callback.mixture is collator.mixture and callback.policy.entry_names == collator.entry_names
    np.testing.assert_allclose(callback.policy.mixture, collator.mixture.weights)
    assert callback.policy.config.hidden_size == 8
    callback.on_train_begin(args, TrainerState(max_steps=300), TrainerControl())
    assert (
        sorted(callback.evaluation_steps) == args.policy_schedule(300)[2] and callback.policy.config.warmup_steps == 10
    )
    static = BirdieTrainingArguments(output_dir="unused", use_cpu=True, objectives=MIXTURE, policy="static")
    fixed = BirdieRewardCallback.from_training_args(static, collator, schedule_evaluations=False)
    fixed.on_train_begin(static, TrainerState(max_steps=300), TrainerControl())
    assert fixed.policy is None and fixed.evaluation_steps == set()


def test_a_dense_mask_collator_cannot_count_non_padding_tokens(tokenizer, tmp_path):
    dense = DataCollatorForBirdie(tokenizer, objectives=MIXTURE, max_length=1024, mask_format="dense")
    args = BirdieTrainingArguments(output_dir=str(tmp_path), use_cpu=True, policy="static", report_to="none")
    with pytest.raises(ValueError, match="mask_format='dense'.*include_num_input_tokens_seen to 'all' or 'no'"):
        BirdieTrainer(args=args, data_collator=dense)
    counting_all = BirdieTrainingArguments(
        output_dir=str(tmp_path), use_cpu=True, policy="static", report_to="none", include_num_input_tokens_seen="all"
    )
    trainer = BirdieTrainer(args=counting_all, data_collator=dense)
    assert trainer.processing_class is dense.tokenizer  # the collator's tokenizer when none is given


def test_plain_training_arguments_get_birdies_schedule_with_its_defaults(tokenizer):
    args = BirdieTrainingArguments(output_dir="unused", use_cpu=True, objectives=MIXTURE, policy="static")
    callback = BirdieRewardCallback.from_training_args(args, DataCollatorForBirdie.from_training_args(tokenizer, args))
    callback.on_train_begin(TrainingArguments(output_dir="unused"), TrainerState(max_steps=300), TrainerControl())
    assert sorted(callback.evaluation_steps) == [10, 20, 40, 60, 80, 120, 160, 200, 240, 280]


@pytest.mark.slow
def test_streaming_run_resumes_where_the_stream_stopped(tokenizer, genome, tmp_path, shared_dir):
    from birdie_hf import stream_genome_windows

    stream = stream_genome_windows(
        [str(shared_dir / "data/genomes/lambda_phage.fa.gz")], tokenizer, window_length=64, windows_per_shard=64
    )
    # The test reads the windows' provenance (`start`), which the collator does not declare: keep every column.
    kwargs = dict(
        max_steps=6, save_strategy="steps", save_steps=3, logging_steps=1, policy="static", remove_unused_columns=False
    )

    def run(name, stop=None, resume=False):
        trainer = make_trainer(tokenizer, genome, tmp_path / name, **kwargs)
        trainer.train_dataset = stream
        seen = []
        collate = trainer.data_collator.torch_call

        def recording(features):
            seen.append([int(f["start"]) for f in features])
            return collate(features)

        trainer.data_collator.torch_call = recording
        if stop:
            trainer.add_callback(StopAt(stop))
        trainer.train(resume_from_checkpoint=True if resume else None)
        return trainer, seen

    full, full_seen = run("full")
    run("cut", stop=3)
    resumed, resumed_seen = run("cut", resume=True)
    # The resumed run reads past the 3 consumed batches (accelerate skips them) and then trains on the same windows
    # as the uninterrupted run: the stream continues where it stopped instead of starting over.
    assert resumed_seen[: len(full_seen)] == full_seen[: len(resumed_seen)]
    losses = lambda t: [(h["step"], h["loss"]) for h in t.state.log_history if "loss" in h and h["step"] > 3]
    assert losses(resumed) == losses(full)


class KwargsOnlyModel(torch.nn.Module):
    """A causal LM behind `forward(**kwargs)`: its signature names no dataset column."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, **kwargs):
        return self.model(**kwargs)


def recording_collator(trainer, seen):
    collate = trainer.data_collator.torch_call

    def recording(features):
        seen.append(set(features[0]))
        return collate(features)

    trainer.data_collator.torch_call = recording


@pytest.mark.parametrize("remove_unused_columns", [True, False])
def test_remove_unused_columns_keeps_the_columns_the_collator_reads(
    tokenizer, genome, tmp_path, remove_unused_columns
):
    trainer = make_trainer(
        tokenizer,
        genome,
        tmp_path / "llama",
        policy="static",
        max_steps=2,
        remove_unused_columns=remove_unused_columns,
    )
    seen = []
    recording_collator(trainer, seen)
    trainer.train()
    kept = {"input_ids"} if remove_unused_columns else set(genome["train"].column_names)
    assert trainer.state.global_step == 2 and seen and all(keys == kept for keys in seen)

    # A collator reading one more column declares it, and a model whose forward signature names no column trains.
    class StrandAwareCollator(DataCollatorForBirdie):
        dataset_columns = ("input_ids", "strand")

        def torch_call(self, features):
            assert all(feature["strand"] == "+" for feature in features)
            return super().torch_call(features)

    args = BirdieTrainingArguments(
        output_dir=str(tmp_path / "wrapped"),
        objectives=MIXTURE,
        policy="static",
        max_steps=2,
        per_device_train_batch_size=4,
        max_length=160,
        save_strategy="no",
        use_cpu=True,
        disable_tqdm=True,
        report_to="none",
        remove_unused_columns=remove_unused_columns,
    )
    model = KwargsOnlyModel(
        build_causal_lm(
            default_model_config(tokenizer, hidden_size=32, num_hidden_layers=1, num_attention_heads=2), seed=0
        )
    )
    wrapped = BirdieTrainer(
        model=model,
        args=args,
        train_dataset=genome["train"],
        data_collator=StrandAwareCollator.from_training_args(tokenizer, args),
    )
    seen = []
    recording_collator(wrapped, seen)
    wrapped.train()
    kept = {"input_ids", "strand"} if remove_unused_columns else set(genome["train"].column_names)
    assert wrapped.state.global_step == 2 and seen and all(keys == kept for keys in seen)


@pytest.mark.parametrize("with_eval_dataset", [True, False])
def test_model_card_of_a_streaming_run(tokenizer, genome, tmp_path, with_eval_dataset):
    from birdie_hf import default_genome_path, stream_genome_windows

    stream = stream_genome_windows([default_genome_path()], tokenizer, window_length=64, windows_per_shard=64)
    args = BirdieTrainingArguments(
        output_dir=str(tmp_path),
        objectives=MIXTURE,
        policy="static",
        max_steps=2,
        per_device_train_batch_size=4,
        max_length=160,
        save_strategy="no",
        use_cpu=True,
        disable_tqdm=True,
        report_to="none",
        policy_validation_windows=2,
    )
    model = build_causal_lm(
        default_model_config(tokenizer, hidden_size=32, num_hidden_layers=1, num_attention_heads=2), seed=0
    )
    trainer = BirdieTrainer(
        model=model,
        args=args,
        train_dataset=stream,
        eval_dataset=genome["validation"] if with_eval_dataset else None,
        processing_class=tokenizer,
    )
    trainer.train()
    # Windows too short for the mixture are refused before training, streaming or not.
    with pytest.raises(ValueError, match="window_length=64"):
        BirdieTrainer(
            model=model,
            args=BirdieTrainingArguments(
                output_dir=str(tmp_path), policy="static", objectives=["selective_copying"], max_length=512
            ),
            train_dataset=stream,
            processing_class=tokenizer,
        )
    state = stream.state_dict()
    trainer.create_model_card(model_name="birdie-stream")
    assert stream.state_dict() == state  # reading windows for the card leaves the training stream where it was
    card = (tmp_path / "README.md").read_text()
    assert "| window / packed row length | 64 / 160 |" in card
    source = genome["validation"] if with_eval_dataset else next(iter(stream))
    first = source[0] if with_eval_dataset else source
    assert tokenizer.decode(first["input_ids"], skip_special_tokens=True) in card


class GradientRecorder(TrainerCallback):
    """Keeps a copy of every parameter's gradient just before the optimizer step."""

    def __init__(self):
        self.gradients = None

    def on_pre_optimizer_step(self, args, state, control, model=None, **kwargs):
        self.gradients = {name: p.grad.detach().clone() for name, p in model.named_parameters()}


@pytest.mark.parametrize("objective", ["copying", "next_token_prediction"])
def test_gradient_accumulation_matches_one_large_batch(tokenizer, genome, tmp_path, objective):
    """2 micro-batches of 4 windows give the gradient, loss and update of one batch of 8.

    The objectives are deterministic and every window fits `max_length` uncropped, so both runs train on the same
    examples; the first micro-batch holds short windows and the second long ones, so a loss normalised per
    micro-batch instead of over the tokens of the whole accumulated batch would differ.
    """
    from datasets import Dataset

    lengths = [6, 8, 9, 11, 50, 56, 60, 64]
    windows = Dataset.from_dict(
        {"input_ids": [list(genome["train"][i]["input_ids"][:n]) for i, n in enumerate(lengths)]}
    )
    runs = {}
    for batch_size, accumulation in ((4, 2), (8, 1)):
        args = BirdieTrainingArguments(
            output_dir=str(tmp_path / f"{batch_size}x{accumulation}"),
            objectives=[objective],
            policy="static",
            max_steps=1,
            per_device_train_batch_size=batch_size,
            gradient_accumulation_steps=accumulation,
            train_sampling_strategy="sequential",
            max_length=160,
            optim="sgd",
            learning_rate=0.5,
            weight_decay=0.0,
            lr_scheduler_type="constant",
            max_grad_norm=0.0,
            logging_steps=1,
            save_strategy="no",
            use_cpu=True,
            disable_tqdm=True,
            report_to="none",
            seed=0,
        )
        model = build_causal_lm(
            default_model_config(tokenizer, hidden_size=32, num_hidden_layers=2, num_attention_heads=2), seed=0
        )
        recorder = GradientRecorder()
        trainer = BirdieTrainer(
            model=model, args=args, train_dataset=windows, processing_class=tokenizer, callbacks=[recorder]
        )
        trainer.train()
        loss = next(h["loss"] for h in trainer.state.log_history if "loss" in h)
        runs[accumulation] = (recorder.gradients, dict(model.named_parameters()), loss)
    (accumulated, params_a, loss_a), (single, params_b, loss_b) = runs[2], runs[1]
    assert accumulated.keys() == single.keys()
    for name in single:
        torch.testing.assert_close(accumulated[name], single[name], rtol=1e-5, atol=1e-7, msg=name)
        torch.testing.assert_close(params_a[name], params_b[name], rtol=1e-5, atol=1e-7, msg=name)
    assert loss_a == pytest.approx(loss_b, rel=1e-5)


class LogRecorder(TrainerCallback):
    def __init__(self):
        self.logs = []

    def on_log(self, args, state, control, logs=None, **kwargs):
        self.logs.append(dict(logs))


@pytest.mark.parametrize("disable_tqdm", [True, False])
def test_console_prints_short_lines_one_line_per_policy_evaluation_and_a_final_table(
    tokenizer, genome, tmp_path, capsys, disable_tqdm
):
    from birdie_hf.console import evaluation_line, evaluation_table

    recorder = LogRecorder()
    trainer = make_trainer(
        tokenizer,
        genome,
        tmp_path,
        max_steps=20,
        logging_steps=10,
        policy_warmup_steps=10,
        policy_eval_interval=10,
        disable_tqdm=disable_tqdm,
    )
    trainer.add_callback(recorder)
    capsys.readouterr()
    trainer.train()
    out = capsys.readouterr().out
    names = trainer.data_collator.entry_names
    trajectory = trainer.mixture_trajectory()["evaluations"]
    assert [record["step"] for record in trajectory] == [10, 20]
    # 2 training lines, one line per policy evaluation (the first at the end of the warm-up), the last one as a table.
    assert len(out) < 2500, out
    assert max(len(line) for line in out.splitlines()) < 200
    hidden = ("loss/", "mixture/", "reward/", "policy/", "num_input_tokens_seen", "train_tokens_per_second")
    assert not any(key in out for key in hidden)
    assert out.count("'loss':") == 2 and "'eval_loss':" not in out
    assert out.count("'train_runtime':") == 1  # the end-of-training summary only
    for record in trajectory:
        line = evaluation_line(record)
        assert out.count(line) == 1
        assert line.startswith(f"Birdie step {record['step']}: held-out loss ") and record["decision"] in line
        top = max(record["next_mixture"], key=record["next_mixture"].get)
        assert f"next mixture: {top} {record['next_mixture'][top]:.3f}" in line
    assert out.rstrip().endswith(evaluation_table(trajectory[-1]))
    assert all(out.count(name) >= 1 for name in names)
    table = evaluation_table(trajectory[-1]).splitlines()
    assert table[0].startswith("Birdie policy at step 20 (")
    for name, row in zip(names, table[2:]):
        cells = row.split()
        assert cells[:3] == [name, f"{trajectory[-1]['losses'][name]:.4f}", f"{trajectory[-1]['rewards'][name]:+.4f}"]
        assert cells[-3:] == [
            f"{trajectory[-1]['mixture'][name]:.3f}",
            "->",
            f"{trajectory[-1]['next_mixture'][name]:.3f}",
        ]
    # Other callbacks (and so the report_to integrations) and the log history still get every key.
    train_logs = [logs for logs in recorder.logs if "loss" in logs]
    assert len(train_logs) == 2 and all(f"loss/{name}" in train_logs[0] for name in names)
    assert all(any(key.startswith("loss/") for key in logs) for logs in train_logs)
    assert "num_input_tokens_seen" in train_logs[0] and f"mixture/{names[0]}" in train_logs[0]
    assert "train_tokens_per_second" in train_logs[0]  # transformers' speed metrics reach the integrations
    decisions = [logs for logs in recorder.logs if f"next_mixture/{names[0]}" in logs]
    assert len(decisions) == 2 and all(f"reward/{name}" in decisions[-1] for name in names)
    assert "reward/total" in decisions[-1] and "policy/explored" in decisions[-1]
    assert sum(f"eval_loss/{names[0]}" in logs for logs in recorder.logs) == 2
    assert sum(f"next_mixture/{names[0]}" in h for h in trainer.state.log_history) == 2


def test_checkpoint_config_records_mixture_settings_and_window_length(tokenizer, genome, tmp_path):
    from transformers import AutoConfig

    from birdie_hf.inference.limits import infilling_limits

    trainer = make_trainer(tokenizer, genome, tmp_path)
    trainer.save_model(str(tmp_path / "saved"))
    config = AutoConfig.from_pretrained(tmp_path / "saved")
    assert config.birdie_window_length == 64
    # Generation with the KV cache: use_cache false in a saved config made model.generate 6x slower.
    assert config.use_cache is True and trainer.model.generation_config.use_cache is not False
    saved_tokenizer = json.loads((tmp_path / "saved" / "tokenizer_config.json").read_text())
    assert saved_tokenizer["tokenizer_class"] == "PreTrainedTokenizerFast"  # transformers 4.x loads it too
    entries = {entry["name"]: entry for entry in config.birdie_mixture}
    assert list(entries) == [spec.name for spec in trainer.args.objective_specs()]
    long = entries["infilling_long"]
    assert long["objective"] == "infilling"
    assert (long["settings"]["mean_span_length"], long["settings"]["corruption_rate"]) == (16, 0.3)
    # Inference reads the gaps the checkpoint was trained on from the record, not from the default mixture.
    limits = infilling_limits(config, tokenizer)
    assert sorted(limits.entries) == [
        (0.15, 3.0, "alternating"),
        (0.3, 16.0, "alternating"),
    ]  # infilling_short's corruption rate is the default
