"""Named presets: `paper` (the Birdie paper) and `dna` (calibrated), from Python and from the recipe."""

from __future__ import annotations

import logging

import pytest
from testing_utils import load_recipe

from birdie_hf import BirdieTrainingArguments
from birdie_hf.cli import RecipeError
from birdie_hf.collator import DataCollatorForBirdie
from birdie_hf.objectives import DEFAULT_MIXTURE, parse_mixture
from birdie_hf.presets import DEFAULT_PRESET, PRESET_NOTES, PRESETS, preset_arguments
from birdie_hf.tokenizer import build_dna_tokenizer


@pytest.fixture(scope="module")
def pretrain():
    return load_recipe("pretrain")


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_preset_builds_valid_arguments_and_a_collator(name, tmp_path):
    args = BirdieTrainingArguments.from_preset(name, output_dir=str(tmp_path), max_length=544, example_length=272)
    assert args.preset == name
    for key, value in PRESETS[name].items():
        assert getattr(args, key) == value, key
    collator = DataCollatorForBirdie.from_training_args(build_dna_tokenizer(), args)
    assert collator.entry_names == [spec.name for spec in parse_mixture(DEFAULT_MIXTURE)]


def test_paper_preset_is_the_published_method(tmp_path):
    args = BirdieTrainingArguments.from_preset("paper", output_dir=str(tmp_path))
    assert args.policy == "birdie" and args.policy_reward == "paper"
    assert args.policy_min_predicted_gain == 0.0  # the paper has no prior gate
    assert args.policy_exploration_blend == 1.0 and args.policy_fixed_shares is None
    assert args.policy_update_iterations == 200
    spans = [s for s in args.objective_specs() if s.objective in ("infilling", "autoencoding")]
    assert spans and all(spec.settings.get("span_layout", "alternating") == "alternating" for spec in spans)


def test_dna_preset_deviations_are_each_documented(tmp_path):
    paper, dna = PRESETS["paper"], PRESETS["dna"]
    deviations = {key for key in set(paper) | set(dna) if paper.get(key) != dna.get(key)}
    # every value that differs from the paper, and only those, has a note with the measurement behind it
    assert deviations - {"policy_reward_scale"} == set(PRESET_NOTES)
    args = BirdieTrainingArguments.from_preset("dna", output_dir=str(tmp_path), max_length=544, example_length=272)
    spans = [s for s in args.objective_specs() if s.objective in ("infilling", "autoencoding")]
    assert spans and {spec.settings["span_layout"] for spec in spans} == {"interior"}
    mixture = dict(zip([s.name for s in args.objective_specs()], args.initial_weights()))
    assert mixture["next_token_prediction"] == pytest.approx(0.5)


def test_explicit_values_win_over_the_preset(tmp_path, pretrain):
    args = BirdieTrainingArguments.from_preset("dna", output_dir=str(tmp_path), policy_exploration_blend=1.0)
    assert args.policy_exploration_blend == 1.0 and args.policy_reward == "standardised"
    out = ["--output_dir", str(tmp_path / "o")]
    # a flag equal to the library default still wins over the preset
    _, cli = pretrain.parse_args(out + ["--preset", "dna", "--policy_reward", "paper"])
    assert cli.preset == "dna" and cli.policy_reward == "paper" and cli.policy_exploration_blend == 0.5
    config = tmp_path / "run.yaml"
    config.write_text("preset: paper\npolicy_top_n: 4\n")
    _, from_yaml = pretrain.parse_args(["--config", str(config)] + out)
    assert from_yaml.preset == "paper" and from_yaml.policy_top_n == 4 and from_yaml.policy_update_iterations == 200
    _, flag_over_yaml = pretrain.parse_args(["--config", str(config), "--preset=dna"] + out)
    assert flag_over_yaml.preset == "dna" and flag_over_yaml.policy_reward == "standardised"


def test_unknown_preset_is_refused_by_name(tmp_path, pretrain):
    with pytest.raises(ValueError, match="Unknown preset 'dnaa'.*'dna', 'paper'"):
        BirdieTrainingArguments.from_preset("dnaa", output_dir=str(tmp_path))
    with pytest.raises(ValueError, match="Unknown preset 'dnaa'"):
        preset_arguments("dnaa")
    with pytest.raises(RecipeError, match="--preset: unknown preset 'dnaa'"):
        pretrain.parse_args(["--preset", "dnaa", "--output_dir", str(tmp_path)])


def test_the_library_defaults_are_the_dna_preset_and_naming_a_preset_applies_it(tmp_path, caplog):
    defaults = BirdieTrainingArguments(output_dir=str(tmp_path))
    assert defaults.preset == DEFAULT_PRESET == "dna"
    assert BirdieTrainingArguments(output_dir=str(tmp_path), preset=None).preset == "dna"
    for key, value in PRESETS["dna"].items():
        assert getattr(defaults, key) == value, key
    paper = BirdieTrainingArguments(output_dir=str(tmp_path), preset="paper", policy_top_n=4)
    for key, value in PRESETS["paper"].items():
        assert getattr(paper, key) == (4 if key == "policy_top_n" else value), key
    # The preset's fixed share names an entry of its own mixture: with objectives of yours that lack it, it is
    # dropped, saying so; one you give is checked as ever.
    with caplog.at_level(logging.WARNING, logger="birdie_hf.config"):
        own = BirdieTrainingArguments(output_dir=str(tmp_path), objectives=["infilling", "copying"])
    assert own.policy_fixed_shares == [] and "fixed shares (next_token_prediction=0.5) do not fit" in caplog.text
    alone = BirdieTrainingArguments(output_dir=str(tmp_path), objectives=["next_token_prediction"])
    assert alone.policy_fixed_shares == [] and alone.initial_weights() == [1.0]
    with pytest.raises(ValueError, match="next_token_prediction"):
        BirdieTrainingArguments(
            output_dir=str(tmp_path),
            objectives=["infilling", "copying"],
            policy_fixed_shares=["next_token_prediction=0.5"],
        )
    assert BirdieTrainingArguments(output_dir=str(tmp_path), policy_fixed_shares=["none"]).fixed_shares() == {}


def test_preset_copies_are_independent():
    values = preset_arguments("dna")
    values["objectives"][0]["weight"] = 9.0
    assert "weight" not in PRESETS["dna"]["objectives"][0]


def test_every_preset_sets_every_preset_setting(tmp_path):
    assert set(PRESETS["paper"]) == set(PRESETS["dna"])
    unset_ok = {"policy_eval_interval", "policy_warmup_steps", "policy_validation_windows", "objective_weights"}
    for name in PRESETS:
        args = BirdieTrainingArguments(output_dir=str(tmp_path), preset=name)
        unset = {
            key for key, value in vars(args).items() if key.startswith(("policy_", "objective")) and value is None
        }
        assert unset <= unset_ok | {"policy_fixed_shares"}, (name, unset - unset_ok)
