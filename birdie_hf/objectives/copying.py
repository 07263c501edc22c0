"""Copying: reproduce the input exactly."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .base import Objective, ObjectiveConfig, ObjectiveExample


@dataclass
class CopyingConfig(ObjectiveConfig):
    """Copying has no settings."""


class Copying(Objective):
    """`[<|copying|>] + x` as a bidirectional prefix, then `x + [eos]` as the target."""

    name = "copying"
    prompt_tokens = ("<|copying|>",)
    config_class = CopyingConfig
    unseen_target_fraction = 0.0
    min_source_tokens = 1

    def output_length(self, num_source_tokens: int) -> int:
        return 2 * num_source_tokens + 2

    def __call__(self, tokens: np.ndarray, rng: np.random.Generator) -> ObjectiveExample:
        return self._prompted([tokens], [tokens])
