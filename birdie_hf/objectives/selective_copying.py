"""Selective copying: find spans in a context by their flanking bases and copy them out."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .base import Objective, ObjectiveConfig, ObjectiveExample


@dataclass
class SelectiveCopyingConfig(ObjectiveConfig):
    """Settings of [`SelectiveCopying`].

    Parameters:
        min_spans (`int`, *optional*, defaults to `1`): fewest spans asked for per example.
        max_spans (`int`, *optional*, defaults to `4`): most spans asked for per example.
        span_length (`int`, *optional*, defaults to `16`): bases per span to copy.
        flank_length (`int`, *optional*, defaults to `8`):
            Bases on each side of a span that the query shows to name it.
        query_first_probability (`float`, *optional*, defaults to `0.5`):
            Chance that the queries come before the context (otherwise after it).
    """

    min_spans: int = 1
    max_spans: int = 4
    span_length: int = 16
    flank_length: int = 8
    query_first_probability: float = 0.5

    def __post_init__(self):
        for name in ("min_spans", "span_length", "flank_length"):
            self._check_positive(name, getattr(self, name))
        if self.max_spans < self.min_spans:
            raise ValueError(
                f"SelectiveCopyingConfig.max_spans ({self.max_spans}) is below min_spans ({self.min_spans})."
            )
        self._check_fraction("query_first_probability", self.query_first_probability, closed=True)


class SelectiveCopying(Objective):
    """Context-and-queries retrieval.

    Each query is `<sentinel_j> + left_flank + right_flank` (`flank_length` bases each), naming the span of
    `span_length` bases that lies between those flanks in the context. The prefix is
    `[<|selective_copying|>] + queries + context` (or context first), the target
    `<sentinel_0> span_0 ... <sentinel_k-1> span_k-1 <eos>` in query order.
    """

    name = "selective_copying"
    prompt_tokens = ("<|selective_copying|>",)
    config_class = SelectiveCopyingConfig
    unseen_target_fraction = 0.0

    @property
    def _region(self) -> int:
        return 2 * self.config.flank_length + self.config.span_length

    def _max_spans(self) -> int:
        return min(self.config.max_spans, len(self.special.sentinels))

    def min_source_length(self) -> int:
        return self._max_spans() * self._region

    def output_length(self, num_source_tokens: int) -> int:
        k = self._max_spans()
        query = 1 + 2 * self.config.flank_length
        answer = 1 + self.config.span_length
        return 1 + num_source_tokens + k * (query + answer) + 1

    def __call__(self, tokens: np.ndarray, rng: np.random.Generator) -> ObjectiveExample:
        n, region, flank = len(tokens), self._region, self.config.flank_length
        k = int(rng.integers(self.config.min_spans, self._max_spans() + 1))
        # Place k non-overlapping regions (flank + span + flank): spread the free bases over k + 1 gaps.
        free = n - k * region
        gaps = np.diff(np.concatenate([[0], np.sort(rng.integers(0, free + 1, size=k)), [free]]))
        starts = np.cumsum(gaps[:k]) + region * np.arange(k)
        order = rng.permutation(k)
        queries, answers = [], []
        for j, region_index in enumerate(order.tolist()):
            start = int(starts[region_index])
            sentinel = np.array([self.special.sentinels[j]])
            left = tokens[start : start + flank]
            span = tokens[start + flank : start + flank + self.config.span_length]
            right = tokens[start + flank + self.config.span_length : start + region]
            queries += [sentinel, left, right]
            answers += [sentinel, span]
        query_first = rng.random() < self.config.query_first_probability
        inputs = queries + [tokens] if query_first else [tokens] + queries
        return self._prompted(inputs, answers)
