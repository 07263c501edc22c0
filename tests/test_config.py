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
