"""Named presets of [`BirdieTrainingArguments`]: `paper` (the Birdie paper as published) and `dna` (calibrated on DNA,
the default).

A preset is a dictionary of argument values: the objective mixture and every setting of the reward policy. Every
such argument left unset (`None`) takes the value of the arguments' `preset`, which is [`DEFAULT_PRESET`] (`dna`)
unless you name another: `BirdieTrainingArguments(output_dir=..., preset="paper")`, `from_preset("paper", ...)` or
`--preset paper` in the recipes; values you give (keyword arguments, command-line flags, YAML keys) win. So the
library's defaults *are* a named preset, and the preset's name is recorded with the arguments (`training_args.bin`);
its values are what the run spec and the model card record.

Each value of `dna` that differs from `paper` is justified by a measurement in `benchmarks/` (see [`PRESET_NOTES`]
and `benchmarks/README.md`, "Presets"). Geometry (`max_length`, `example_length`, `max_tokens`) is not part of a
preset: it belongs to the experiment, and a comparison gives every arm the same geometry.
"""

from __future__ import annotations

import copy
from typing import Any

from .objectives import DEFAULT_MIXTURE


#: Span-corrupting objectives of the default mixture, whose layout the `dna` preset changes.
_SPAN_OBJECTIVES = ("infilling", "autoencoding")


def _dna_mixture() -> list[dict[str, Any]]:
    """[`DEFAULT_MIXTURE`] with every span-corrupting entry drawing `span_layout="interior"`."""
    mixture = copy.deepcopy(DEFAULT_MIXTURE)
    for entry in mixture:
        if entry["objective"] in _SPAN_OBJECTIVES:
            entry["span_layout"] = "interior"
    return mixture


#: Blouir et al., EMNLP 2024 (arXiv 2411.01030), as published (../shared/BIRDIE_NOTES.md summarises it).
_PAPER: dict[str, Any] = {
    # Objectives (appendix A.2): the full set; the mixture starts uniform over objective types.
    "objectives": copy.deepcopy(DEFAULT_MIXTURE),
    "initial_mixture": "per_objective",
    # Reward: clip(-100 e tanh(e S ratio^3)) of each entry's mean held-out loss (the standardised reward's scale and
    # floor are unused with it).
    "policy_reward": "paper",
    "policy_reward_scale": 2.0,
    "policy_reward_min_change": 1e-3,
    # Action search: the reward model's top candidates become the mixture; the paper has no prior gate.
    "policy_min_predicted_gain": 0.0,
    # Exploration: an exploring action replaces the mixture; the rate decays from 0.5 to 0.2 (cosine, first half of
    # training).
    "policy_exploration_blend": 1.0,
    "policy_exploration_initial": 0.5,
    "policy_exploration_final": 0.2,
    "policy_exploration_decay_fraction": 0.5,
    # Reward model: 256 x 4 over the history, AdamW 5e-4 / 0.1, 200 MSE iterations after each evaluation; 2,048
    # candidate mixtures scored, the top 8 averaged.
    "policy_hidden_size": 256,
    "policy_num_layers": 4,
    "policy_learning_rate": 5e-4,
    "policy_weight_decay": 0.1,
    "policy_update_iterations": 200,
    "policy_num_candidates": 2048,
    "policy_top_n": 8,
    "policy_fixed_shares": None,
}

#: What `dna` changes in `paper` (PRESET_NOTES says why each one).
_DNA_CHANGES: dict[str, Any] = {
    "objectives": _dna_mixture(),
    "policy_reward": "standardised",
    "policy_reward_min_change": 0.03,
    "policy_exploration_blend": 0.5,
    "policy_hidden_size": 128,
    "policy_num_layers": 2,
    "policy_update_iterations": 50,
    "policy_fixed_shares": ["next_token_prediction=0.5"],
}

PRESETS: dict[str, dict[str, Any]] = {"paper": _PAPER, "dna": {**copy.deepcopy(_PAPER), **_DNA_CHANGES}}
#: The preset whose values the arguments take when no other is named.
DEFAULT_PRESET = "dna"

#: Why each value of the `dna` preset differs from `paper`, with the measurement behind it.
PRESET_NOTES: dict[str, str] = {
    "policy_reward": (
        "standardised: on DNA the paper's reward is about 0 for next-token prediction after the first intervals "
        "(median 0.0001 over late intervals of every committed run), while the standardised change is beyond noise "
        "(|z| > 2) in every late next-token interval (benchmarks/results/reward_calibration.md)."
    ),
    "policy_reward_min_change": (
        "0.03 nats: the median late change of the base-predicting entries over three seeds (0.027 next-token, "
        "0.032 prefix-LM, 0.071 infilling); with the library's 1e-3 the reward saturates (median |r| 0.90-1.00), "
        "with 0.03 a typical change earns about tanh(1) (median |r| 0.71 next-token, 0.79 prefix-LM) "
        "(benchmarks/reward_calibration.py, 'min_change sweep')."
    ),
    "policy_exploration_blend": (
        "0.5: a whole-interval exploration draw put next-token prediction at 1% for steps 80-120 of the default run "
        "and held-out next-base loss rose from 1.377 to 1.465; blended with the initial mixture no entry falls "
        "below half its initial share."
    ),
    "policy_fixed_shares": (
        "next_token_prediction=0.5: with the type-uniform start next-token prediction got 6.6% of model tokens and "
        "copying 32.5% (solved, < 0.1 nats, by step ~160), and Birdie's held-out next-base loss was 1.380-1.387 "
        "nats against 1.334 for next-token prediction alone at the same steps (benchmarks/README.md, accounting)."
    ),
    "policy_update_iterations": (
        "50 warm-started iterations instead of 200, a quarter of the fit's cost; with the paper's 256 x 4 model, 50 "
        "iterations underfit a real run's history (benchmarks/reward_model_fit.py), hence the smaller model below."
    ),
    "policy_hidden_size": (
        "a GRU 128 x 2 instead of the paper's 256 x 4: fitted for 50 warm-started iterations on the reward histories of "
        "three real runs, its error is 0.17-0.23 of the rewards' variance (256 x 4: 0.11-0.43; better on 2 of 3) at "
        "a third of the cost per refit, 0.17 s instead of 0.53 s (benchmarks/reward_model_fit.py)."
    ),
    "policy_num_layers": "2 instead of 4: see policy_hidden_size.",
    "objectives": (
        "span_layout='interior' on infilling and autoencoding: the alternating (T5) layout always masks one window "
        "end and never draws a single interior gap, the case inference and variant scoring read "
        "(tests/test_objectives.py, layout statistics)."
    ),
}


def preset_arguments(name: str) -> dict[str, Any]:
    """A fresh copy of preset `name`'s argument values.

    Raises:
        `ValueError`: `name` is not a preset (the message lists them).
    """
    if name not in PRESETS:
        raise ValueError(f"Unknown preset {name!r}; choose one of {sorted(PRESETS)}.")
    return copy.deepcopy(PRESETS[name])


__all__ = ["DEFAULT_PRESET", "PRESETS", "PRESET_NOTES", "preset_arguments"]
