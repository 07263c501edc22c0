"""BirdieTrainingArguments: each policy setting is declared once, on its field, and everything else derives from it."""

import dataclasses

import pytest
from transformers import HfArgumentParser

from birdie_hf import BirdieTrainingArguments, PolicyConfig
from birdie_hf.policy.settings import POLICY_RANGES


POLICY_FIELDS = [f for f in dataclasses.fields(BirdieTrainingArguments) if f.name.startswith("policy_")]


def test_every_policy_field_declares_what_it_sets_or_its_own_range():
    undeclared = [
        f.name
        for f in POLICY_FIELDS
        if "policy_config" not in f.metadata and "range" not in f.metadata and f.name != "policy_fixed_shares"
    ]
    assert undeclared == []
    # Every numeric PolicyConfig setting is reachable from exactly one argument.
    targets = [f.metadata["policy_config"] for f in POLICY_FIELDS if "policy_config" in f.metadata]
    assert len(targets) == len(set(targets)) and set(POLICY_RANGES) <= set(targets)


def test_the_policy_config_the_run_spec_and_the_parser_derive_from_the_fields(tmp_path):
    args = BirdieTrainingArguments(
        output_dir=str(tmp_path), use_cpu=True, policy_top_n=4, policy_exploration_final=0.1, policy_reward="paper"
    )
    config = args.policy_config()
    assert (config.top_n, config.exploration.final_rate, config.reward) == (4, 0.1, "paper")
    settings = args.policy_settings()
    assert set(settings) == {f.name for f in POLICY_FIELDS} | {"per_device_eval_batch_size"}
    assert settings["policy_top_n"] == 4
    # HfArgumentParser hands each field's metadata to argparse: the Birdie keys stay out of it.
    (parsed,) = HfArgumentParser(BirdieTrainingArguments).parse_args_into_dataclasses(
        ["--output_dir", str(tmp_path), "--use_cpu", "true", "--policy_top_n", "3", "--policy_reward", "paper"]
    )
    assert parsed.policy_config().top_n == 3
    metadata = next(f.metadata for f in POLICY_FIELDS if f.name == "policy_top_n")
    assert metadata.copy() == dict(metadata) == {"help": metadata["help"]} and metadata["policy_config"] == "top_n"


@pytest.mark.parametrize(
    "setting, value, message",
    [
        ("policy_exploration_blend", 0.0, r"`policy_exploration_blend` must be in \(0, 1\], got 0.0"),
        ("policy_exploration_initial", 1.5, r"`policy_exploration_initial` must be in \[0, 1\], got 1.5"),
        ("policy_validation_fraction", 2.0, r"`policy_validation_fraction` must be in \[0, 1\], got 2.0"),
        ("policy_eval_interval", 0, "`policy_eval_interval` must be at least 1, got 0"),
    ],
)
def test_a_bad_setting_is_refused_by_the_argument_name_with_the_policys_own_rule(tmp_path, setting, value, message):
    with pytest.raises(ValueError, match=message):
        BirdieTrainingArguments(output_dir=str(tmp_path), use_cpu=True, **{setting: value})
    target = next(f.metadata.get("policy_config") for f in POLICY_FIELDS if f.name == setting)
    if target and "." not in target:  # the same rule refuses the same value in PolicyConfig itself
        with pytest.raises(ValueError, match=f"PolicyConfig.{target} must be"):
            PolicyConfig(**{target: value})


@pytest.mark.parametrize(
    "settings, message",
    [
        ({"max_steps": 0}, "`max_steps` must be a positive number of optimizer steps, or -1 to train for"),
        ({"max_steps": -5}, "`max_steps` must be .* got -5"),
        ({"max_steps": -1, "num_train_epochs": 0}, "`num_train_epochs` must be positive when `max_steps` is -1"),
        ({"policy_min_weight": -0.1}, r"`policy_min_weight` must be in \[0, 1\], got -0.1"),
        ({"policy_min_weight": 1.5}, r"`policy_min_weight` must be in \[0, 1\]"),
        ({"policy_exploration_initial": -0.5}, r"`policy_exploration_initial` must be in \[0, 1\]"),
        ({"policy_exploration_decay_fraction": 2.0}, r"`policy_exploration_decay_fraction` must be in \[0, 1\]"),
        ({"policy_learning_rate": 0.0}, "`policy_learning_rate` must be greater than 0"),
        ({"policy_weight_decay": -0.1}, "`policy_weight_decay` must be at least 0"),
        ({"policy_min_predicted_gain": float("nan")}, "`policy_min_predicted_gain` must be a finite number"),
        ({"policy_num_candidates": 0}, "`policy_num_candidates` must be at least 1"),
        ({"policy_hidden_size": 2.5}, "`policy_hidden_size` must be an integer, got 2.5"),
        ({"policy_top_n": "8"}, "`policy_top_n` must be an integer, got '8'"),
        ({"policy_num_layers": True}, "`policy_num_layers` must be an integer, got True"),
        ({"policy_top_n": 64, "policy_num_candidates": 32}, "`policy_top_n` \\(64\\) must not exceed"),
        ({"objective_weights": ["a"], "objectives": ["copying"]}, "`objective_weights` must be numbers"),
        ({"learning_rate": float("inf")}, "`learning_rate` must be a finite number above 0, got inf"),
        ({"learning_rate": 0.0}, "`learning_rate` must be a finite number above 0, got 0.0"),
        ({"weight_decay": float("nan")}, "`weight_decay` must be a finite number of at least 0, got nan"),
        ({"max_grad_norm": float("nan")}, r"`max_grad_norm` must be a number of at least 0 \(0 turns clipping off\)"),
        ({"adam_beta2": 1.0}, r"`adam_beta2` must be in \[0, 1\), got 1.0"),
        ({"gradient_accumulation_steps": 0}, "`gradient_accumulation_steps` must be a positive integer, got 0"),
        ({"label_smoothing_factor": 0.1}, "`label_smoothing_factor` \\(0.1\\) is not supported"),
        ({"policy": "ntp", "policy_fixed_shares": ["copying=0.5"]}, "has nothing to fix with policy='ntp'"),
    ],
)
def test_training_arguments_refuse_bad_values_by_name(tmp_path, settings, message):
    with pytest.raises(ValueError, match=message):
        BirdieTrainingArguments(output_dir=str(tmp_path), report_to="none", **settings)


def test_training_arguments_accept_epochs_and_single_entries(tmp_path):
    args = BirdieTrainingArguments(
        output_dir=str(tmp_path), report_to="none", max_steps=-1, objectives="infilling", objective_weights=2.0
    )
    assert args.objectives == ["infilling"] and args.objective_weights == [2.0]
    assert [spec.name for spec in args.objective_specs()] == ["infilling"]


# -- fine-tuning ------------------------------------------------------------------------------------------------------
