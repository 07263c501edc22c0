"""Deshuffling: restore the original order of shuffled spans."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .base import Objective, ObjectiveConfig, ObjectiveExample
from .spans import random_segmentation


@dataclass
class DeshufflingConfig(ObjectiveConfig):
    """Settings of [`Deshuffling`].

    Parameters:
        mean_span_length (`float`, *optional*, defaults to `16`):
            Mean span length in bases; the window is cut into `round(n / mean_span_length)` spans (at least 2).
        shuffle_fraction (`float`, *optional*, defaults to `0.75`):
            Share of the spans that are permuted among their own positions (at least 2 are).
    """

    mean_span_length: float = 16.0
    shuffle_fraction: float = 0.75

    def __post_init__(self):
        self._check_positive("mean_span_length", self.mean_span_length)
        self._check_fraction("shuffle_fraction", self.shuffle_fraction, closed=True)
        if self.shuffle_fraction == 0:
            raise ValueError("DeshufflingConfig.shuffle_fraction must be above 0, got 0.")


class Deshuffling(Objective):
    """`[<|deshuffling|>] + shuffled(x)` as prefix, `x + [eos]` as target."""

    name = "deshuffling"
    prompt_tokens = ("<|deshuffling|>",)
    config_class = DeshufflingConfig
    unseen_target_fraction = 0.0

    def output_length(self, num_source_tokens: int) -> int:
        return 2 * num_source_tokens + 2

    def __call__(self, tokens: np.ndarray, rng: np.random.Generator) -> ObjectiveExample:
        n = len(tokens)
        num_spans = int(np.clip(round(n / self.config.mean_span_length), 2, n))
        lengths = random_segmentation(rng, n, num_spans)
        spans = np.split(tokens, np.cumsum(lengths)[:-1])
        num_moved = max(2, int(round(self.config.shuffle_fraction * num_spans)))
        chosen = np.sort(rng.choice(num_spans, size=num_moved, replace=False))
        order = np.arange(num_spans)
        order[chosen] = chosen[rng.permutation(num_moved)]
        shuffled = np.concatenate([spans[i] for i in order])
        return self._prompted([shuffled], [tokens])
