"""Infilling (span corruption): replace random spans with sentinels and predict them."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .base import Objective, ObjectiveConfig, ObjectiveExample
from .spans import num_noise_spans, sample_noise_layout


@dataclass
class InfillingConfig(ObjectiveConfig):
    """Settings of [`Infilling`].

    Parameters:
        corruption_rate (`float`, *optional*, defaults to `0.15`):
            Share of the bases replaced by sentinels.
        mean_span_length (`float`, *optional*, defaults to `3`):
            Mean length of a corrupted span, in bases. The number of spans is capped by the tokenizer's sentinels;
            when the cap binds, spans get longer than asked.
    """

    corruption_rate: float = 0.15
    mean_span_length: float = 3.0

    def __post_init__(self):
        self._check_fraction("corruption_rate", self.corruption_rate)
        self._check_positive("mean_span_length", self.mean_span_length)


class Infilling(Objective):
    """T5-style span corruption for a decoder-only model.

    `[<|infilling|>] + x with span i replaced by <sentinel_i>` is the bidirectional prefix; the target is
    `<sentinel_0> span_0 <sentinel_1> span_1 ... <eos>`.
    """

    name = "infilling"
    config_class = InfillingConfig

    def _num_spans(self, n: int) -> int:
        return num_noise_spans(n, self.config.corruption_rate, self.config.mean_span_length,
                               len(self.special.sentinels))[1]

    def output_length(self, num_source_tokens: int) -> int:
        return num_source_tokens + 2 * self._num_spans(num_source_tokens) + 2

    def __call__(self, tokens: np.ndarray, rng: np.random.Generator) -> ObjectiveExample:
        layout = sample_noise_layout(rng, len(tokens), self.config.corruption_rate, self.config.mean_span_length,
                                     len(self.special.sentinels))
        inputs, targets = [], []
        span_index = 0
        for segment, noisy in zip(layout.segments(tokens), layout.is_noise.tolist()):
            if noisy:
                sentinel = np.array([self.special.sentinels[span_index]])
                inputs.append(sentinel)
                targets += [sentinel, segment]
                span_index += 1
            else:
                inputs.append(segment)
        return self._prompted(inputs, targets)
