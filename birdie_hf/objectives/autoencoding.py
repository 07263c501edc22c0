"""Autoencoding: reconstruct the whole original window from a corrupted (optionally shuffled) copy."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .base import Objective, ObjectiveExample
from .spans import SpanCorruptionConfig


@dataclass
class AutoencodingConfig(SpanCorruptionConfig):
    """Settings of [`Autoencoding`]: `corruption_rate` and `mean_span_length` (see [`SpanCorruptionConfig`]), and

    Parameters:
        shuffle (`bool`, *optional*, defaults to `False`):
            Also shuffle the order of the uncorrupted segments ("autoencoding with deshuffling").
    """

    shuffle: bool = False


class Autoencoding(Objective):
    """`[<|autoencoding|>] + corrupted(x)` as the bidirectional prefix, `x + [eos]` as the target.

    Corruption replaces each noise span with one sentinel (numbered in order); with `shuffle=True` the clean segments
    are then permuted among the clean slots, so the model must also restore their order.
    """

    name = "autoencoding"
    prompt_tokens = ("<|autoencoding|>",)
    config_class = AutoencodingConfig

    @property
    def unseen_target_fraction(self) -> float:
        """Only the masked spans are absent from the input; the rest is copied (perhaps unshuffled)."""
        return float(self.config.corruption_rate)

    def output_length(self, num_source_tokens: int) -> int:
        num_noise, _, num_spans = self.config.span_counts(num_source_tokens, len(self.special.sentinels))
        return 1 + (num_source_tokens - num_noise + num_spans) + num_source_tokens + 1

    def __call__(self, tokens: np.ndarray, rng: np.random.Generator) -> ObjectiveExample:
        layout = self.config.draw_layout(rng, len(tokens), len(self.special.sentinels))
        segments = layout.segments(tokens)
        noisy = layout.is_noise.tolist()
        clean_slots = [i for i, is_noise in enumerate(noisy) if not is_noise]
        if self.config.shuffle and len(clean_slots) > 1:
            permuted = [segments[clean_slots[j]] for j in rng.permutation(len(clean_slots))]
            for slot, segment in zip(clean_slots, permuted):
                segments[slot] = segment
        inputs = []
        span_index = 0
        for segment, is_noise in zip(segments, noisy):
            if is_noise:
                inputs.append(np.array([self.special.sentinels[span_index]]))
                span_index += 1
            else:
                inputs.append(segment)
        return self._prompted(inputs, [tokens])
