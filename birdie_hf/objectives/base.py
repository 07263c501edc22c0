"""The contract every Birdie objective follows.

An objective is a small, pure transform: a 1-D array of token ids (a DNA window) and a numpy random generator in,
one [`ObjectiveExample`] out. Examples are laid out for a decoder-only model:

    input_ids = [prompt] + <input part> + <target part>
    labels    = -100 over the prompt and input part, the target ids over the target part
    prefix_length = 1 + len(<input part>)      # attended bidirectionally

`labels` are aligned with `input_ids` as in transformers (the model shifts them), so the first target token is
predicted from the last prefix token.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from ..tokenizer import prompt_id, sentinel_ids


IGNORE_INDEX = -100


class ObjectiveConfigError(ValueError):
    """Raised when an objective's settings cannot work (e.g. the sequence is too short for them)."""


@dataclass
class ObjectiveExample:
    """One training example produced by an objective.

    Attributes:
        input_ids (`np.ndarray` of shape `(n,)`): token ids.
        labels (`np.ndarray` of shape `(n,)`): target ids, `-100` where no loss is taken.
        prefix_length (`int`): number of leading tokens attended bidirectionally (`0` for plain causal LM).
    """

    input_ids: np.ndarray
    labels: np.ndarray
    prefix_length: int

    def __len__(self) -> int:
        return int(self.input_ids.shape[0])


@dataclass(frozen=True)
class SpecialTokenIds:
    """The token ids objectives need, read once from a tokenizer.

    Attributes:
        prompts (`dict[str, int]`): prompt token id per objective name.
        sentinels (`tuple[int, ...]`): sentinel ids in order.
        eos (`int`): end-of-sequence id closing every non-NTP target.
        pad (`int`): padding id.
    """

    prompts: dict = field(default_factory=dict)
    sentinels: tuple = ()
    eos: int = 2
    pad: int = 0

    @classmethod
    def from_tokenizer(cls, tokenizer) -> "SpecialTokenIds":
        from ..tokenizer import OBJECTIVE_PROMPT_NAMES

        return cls(
            prompts={name: prompt_id(tokenizer, name) for name in OBJECTIVE_PROMPT_NAMES},
            sentinels=tuple(sentinel_ids(tokenizer)),
            eos=tokenizer.eos_token_id,
            pad=tokenizer.pad_token_id,
        )


@dataclass
class ObjectiveConfig:
    """Base class of objective configurations. Subclasses add the objective's own fields and check them in
    `__post_init__`."""

    def _check_fraction(self, name: str, value: float, low: float = 0.0, high: float = 1.0, closed: bool = False):
        ok = low <= value <= high if closed else low < value < high
        if not ok:
            bounds = f"[{low}, {high}]" if closed else f"({low}, {high})"
            raise ObjectiveConfigError(f"{type(self).__name__}.{name} must be in {bounds}, got {value}.")

    def _check_positive(self, name: str, value: float):
        if value <= 0:
            raise ObjectiveConfigError(f"{type(self).__name__}.{name} must be positive, got {value}.")


class Objective:
    """Base class of Birdie objectives.

    Subclasses set `name` (the registry key, also the reward class and the prompt token) and `config_class`, and
    implement [`output_length`] (tokens produced from `n` source tokens, an upper bound when random) and
    [`__call__`].
    """

    name: ClassVar[str]
    config_class: ClassVar[type[ObjectiveConfig]]
    #: Smallest number of source tokens the objective can work with.
    min_source_tokens: ClassVar[int] = 2

    def __init__(self, config: ObjectiveConfig, special: SpecialTokenIds):
        self.config = config
        self.special = special
        self.prompt = special.prompts.get(self.name)
        self._source_length_cache: dict[int, int] = {}

    # -- sizes ---------------------------------------------------------------------------------------------------
    def output_length(self, num_source_tokens: int) -> int:
        """The (largest possible) example length made from `num_source_tokens` source tokens."""
        raise NotImplementedError

    def min_source_length(self) -> int:
        """Smallest window this objective's settings need."""
        return self.min_source_tokens

    def source_length(self, max_length: int) -> int:
        """Most source tokens whose example fits in `max_length` tokens (cached per `max_length`)."""
        if max_length not in self._source_length_cache:
            n = max_length
            while n > 0 and self.output_length(n) > max_length:
                n -= 1
            self._source_length_cache[max_length] = n
        return self._source_length_cache[max_length]

    def validate(self, max_length: int, window_length: int | None = None) -> None:
        """Raise [`ObjectiveConfigError`] if an example of this objective cannot fit `max_length` tokens, or the data
        windows (`window_length` tokens) are too short for its settings."""
        needed = self.min_source_length()
        fits = self.source_length(max_length)
        if fits < needed:
            raise ObjectiveConfigError(
                f"Objective {self.name!r} with {self.config} needs at least {needed} source tokens, but an example "
                f"built from them does not fit in max_length={max_length} (only {fits} source tokens fit). "
                "Raise max_length or change the objective's settings."
            )
        if window_length is not None and window_length < needed:
            raise ObjectiveConfigError(
                f"Objective {self.name!r} with {self.config} needs windows of at least {needed} tokens, "
                f"got window_length={window_length}."
            )

    # -- transform -----------------------------------------------------------------------------------------------
    def __call__(self, tokens: np.ndarray, rng: np.random.Generator) -> ObjectiveExample:
        """Turn `tokens` (shape `(n,)`, `n >= min_source_length()`) into one example, drawing randomness from
        `rng` only."""
        raise NotImplementedError

    def _prompted(self, inputs: list[np.ndarray], targets: list[np.ndarray]) -> ObjectiveExample:
        """Lay out `[prompt] + inputs + targets + [eos]` with labels on the targets and eos."""
        prompt = np.array([self.prompt], dtype=np.int64)
        eos = np.array([self.special.eos], dtype=np.int64)
        source = np.concatenate([prompt, *inputs]).astype(np.int64)
        target = np.concatenate([*targets, eos]).astype(np.int64)
        input_ids = np.concatenate([source, target])
        labels = np.concatenate([np.full(source.shape[0], IGNORE_INDEX, dtype=np.int64), target])
        return ObjectiveExample(input_ids=input_ids, labels=labels, prefix_length=int(source.shape[0]))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.config})"
