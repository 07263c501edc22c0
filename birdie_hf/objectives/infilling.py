"""Infilling (span corruption): replace random spans with sentinels and predict them."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .base import Objective, ObjectiveExample
from .spans import SpanCorruptionConfig, SpanLayout


@dataclass
class InfillingConfig(SpanCorruptionConfig):
    """Settings of [`Infilling`]: `corruption_rate` and `mean_span_length` (see [`SpanCorruptionConfig`])."""


class Infilling(Objective):
    """T5-style span corruption for a decoder-only model.

    `[<|infilling|>] + x with span i replaced by <sentinel_i>` is the bidirectional prefix; the target is
    `<sentinel_0> span_0 <sentinel_1> span_1 ... <eos>`.
    """

    name = "infilling"
    prompt_tokens = ("<|infilling|>",)
    config_class = InfillingConfig
    unseen_target_fraction = 1.0

    def _num_spans(self, n: int) -> int:
        """Most spans a layout makes on `n` tokens (an upper bound of the example length)."""
        return self.config.span_counts(n, len(self.special.sentinels))[2]

    def output_length(self, num_source_tokens: int) -> int:
        return num_source_tokens + 2 * self._num_spans(num_source_tokens) + 2

    def __call__(self, tokens: np.ndarray, rng: np.random.Generator) -> ObjectiveExample:
        return self.example_from_layout(tokens, self.config.draw_layout(rng, len(tokens), len(self.special.sentinels)))

    def example_from_layout(self, tokens: np.ndarray, layout: SpanLayout) -> ObjectiveExample:
        """The example of `tokens` with `layout`'s noise segments as the spans (deterministic; `__call__` draws the
        layout, `birdie_hf.inference` builds it from the gaps a user marks).

        Args:
            tokens (`np.ndarray` of shape `(n,)`): source token ids.
            layout ([`SpanLayout`]): segments covering the `n` tokens; at most one noise segment per sentinel.

        Returns:
            [`ObjectiveExample`]: of length `n + 2 * (noise segments) + 2`.
        """
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
