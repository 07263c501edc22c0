"""Prefix language modelling: read a prefix bidirectionally, predict the rest."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .base import IGNORE_INDEX, Objective, ObjectiveConfig, ObjectiveExample


@dataclass
class PrefixLMConfig(ObjectiveConfig):
    """Settings of [`PrefixLM`].

    Parameters:
        min_prefix_fraction (`float`, *optional*, defaults to `0.6`):
            Smallest share of the window used as prefix.
        max_prefix_fraction (`float`, *optional*, defaults to `0.9`):
            Largest share of the window used as prefix. The split is uniform between the two (mean 0.75, as in Birdie).
    """

    min_prefix_fraction: float = 0.6
    max_prefix_fraction: float = 0.9

    def __post_init__(self):
        self._check_fraction("min_prefix_fraction", self.min_prefix_fraction)
        self._check_fraction("max_prefix_fraction", self.max_prefix_fraction)
        if self.min_prefix_fraction > self.max_prefix_fraction:
            raise ValueError(
                f"PrefixLMConfig.min_prefix_fraction ({self.min_prefix_fraction}) exceeds max_prefix_fraction "
                f"({self.max_prefix_fraction})."
            )


class PrefixLM(Objective):
    """`[<|prefix_lm|>] + x[:s] + x[s:]`, prefix `1 + s` tokens, loss on `x[s:]` (no eos: the window is a cut)."""

    name = "prefix_lm"
    prompt_tokens = ("<|prefix_lm|>",)
    config_class = PrefixLMConfig
    unseen_target_fraction = 1.0

    def output_length(self, num_source_tokens: int) -> int:
        return num_source_tokens + 1

    def __call__(self, tokens: np.ndarray, rng: np.random.Generator) -> ObjectiveExample:
        n = len(tokens)
        low = max(1, int(np.floor(self.config.min_prefix_fraction * n)))
        high = min(n - 1, int(np.ceil(self.config.max_prefix_fraction * n)))
        split = int(rng.integers(low, max(low, high) + 1))
        input_ids = np.concatenate([[self.prompt], tokens]).astype(np.int64)
        labels = input_ids.copy()
        labels[: 1 + split] = IGNORE_INDEX
        return ObjectiveExample(input_ids=input_ids, labels=labels, prefix_length=1 + split)
