"""Next-token prediction: plain causal language modelling, the Birdie paper's baseline."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .base import IGNORE_INDEX, Objective, ObjectiveConfig, ObjectiveExample


@dataclass
class NextTokenPredictionConfig(ObjectiveConfig):
    """Next-token prediction has no settings."""


class NextTokenPrediction(Objective):
    """Predict every token from the ones before it. No prompt token, no bidirectional prefix.

    `labels` equal `input_ids` except the first, which nothing inside the example predicts (it is `-100`, so a packed
    example never learns its first token from the previous example's last one).
    """

    name = "next_token_prediction"
    reads_prefix = False
    #: Reserved: next-token examples carry no prompt, but the token keeps its id (9) in every Birdie vocabulary.
    prompt_tokens = ("<|next_token_prediction|>",)
    config_class = NextTokenPredictionConfig
    unseen_target_fraction = 1.0

    def output_length(self, num_source_tokens: int) -> int:
        return num_source_tokens

    def __call__(self, tokens: np.ndarray, rng: np.random.Generator) -> ObjectiveExample:
        input_ids = np.asarray(tokens, dtype=np.int64)
        labels = input_ids.copy()
        labels[0] = IGNORE_INDEX
        return ObjectiveExample(input_ids=input_ids, labels=labels, prefix_length=0)
