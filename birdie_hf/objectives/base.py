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
from typing import ClassVar, Iterable, Optional

import numpy as np

from ..vocabulary import objective_token_id, sentinel_ids


IGNORE_INDEX = -100


#: Registered objective classes by name ([`register_objective`] adds to it; `birdie_hf.objectives` re-exports it).
OBJECTIVE_REGISTRY: dict[str, type["Objective"]] = {}


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
        prompts (`dict[str, int]`): id of the prompt token (the first of its `prompt_tokens`) per objective name.
        tokens (`dict[str, int]`): id of every token the objectives declare in `prompt_tokens`.
        sentinels (`tuple[int, ...]`): sentinel ids in order.
        eos (`int`): end-of-sequence id closing every non-NTP target.
        pad (`int`): padding id.
    """

    prompts: dict = field(default_factory=dict)
    tokens: dict = field(default_factory=dict)
    sentinels: tuple = ()
    eos: int = 2
    pad: int = 0

    @classmethod
    def from_tokenizer(cls, tokenizer, objectives: Optional[Iterable[str]] = None) -> "SpecialTokenIds":
        """Read the ids of the tokens that `objectives` declare, and the sentinel, eos and pad ids.

        Args:
            tokenizer ([`~transformers.PreTrainedTokenizerBase`]): the DNA tokenizer.
            objectives (`Iterable[str]`, *optional*): registered objective names; defaults to every registered
                objective.

        Raises:
            [`MissingObjectiveTokenError`]: the tokenizer lacks a token one of `objectives` declares (the message
            names both). [`ObjectiveConfigError`]: an objective is not registered.
        """
        names = list(OBJECTIVE_REGISTRY) if objectives is None else list(dict.fromkeys(objectives))
        unknown = [name for name in names if name not in OBJECTIVE_REGISTRY]
        if unknown:
            raise ObjectiveConfigError(
                f"Unknown objectives {unknown}; registered objectives: {sorted(OBJECTIVE_REGISTRY)}."
            )
        prompts, tokens = {}, {}
        for name in names:
            declared = OBJECTIVE_REGISTRY[name].prompt_tokens
            for token in declared:
                tokens[token] = objective_token_id(tokenizer, token, name)
            if declared:
                prompts[name] = tokens[declared[0]]
        return cls(
            prompts=prompts,
            tokens=tokens,
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

    Subclasses set three class attributes and implement [`output_length`] (tokens produced from `n` source tokens,
    an upper bound when random) and [`__call__`]:

    - `name`: the registry key, also the reward class.
    - `config_class`: an [`ObjectiveConfig`] dataclass holding the objective's settings.
    - `prompt_tokens`: the special tokens the objective writes into its examples besides sentinels and eos, its
      prompt first, e.g. `("<|infilling|>",)`; `()` for none. The tokenizer must have each of them:
      [`build_dna_tokenizer`] and [`add_birdie_tokens`] add the tokens of every registered objective, and building
      the objective for a tokenizer that lacks one raises [`MissingObjectiveTokenError`] naming it.

    Example:

    ```python
    >>> from dataclasses import dataclass
    >>> from birdie_hf.objectives import Objective, ObjectiveConfig, register_objective
    >>> @dataclass
    ... class ReversalConfig(ObjectiveConfig):
    ...     pass
    >>> class Reversal(Objective):  # read a window, write it backwards
    ...     name = "reversal"
    ...     config_class = ReversalConfig
    ...     prompt_tokens = ("<|reversal|>",)
    ...     def output_length(self, num_source_tokens):
    ...         return 2 * num_source_tokens + 2
    ...     def __call__(self, tokens, rng):
    ...         return self._prompted([tokens], [tokens[::-1]])
    >>> register_objective(Reversal)  # doctest: +SKIP
    ```

    Then build the tokenizer (or call [`add_birdie_tokens`] on an existing one) and use `"reversal"` in a mixture.
    """

    name: ClassVar[str]
    config_class: ClassVar[type[ObjectiveConfig]]
    prompt_tokens: ClassVar[tuple[str, ...]]
    #: Smallest number of source tokens the objective can work with.
    min_source_tokens: ClassVar[int] = 2
    #: Whether the objective's examples open with a prefix the model reads bidirectionally (every Birdie objective but
    #: next-token prediction). Fine-tuning with `attention="auto"` reads a checkpoint bidirectionally when any
    #: objective it was trained with sets this.
    reads_prefix: ClassVar[bool] = True
    #: Share of the example's base targets (A, C, G, T labels; not sentinels or end tokens) that the model cannot read
    #: in its input: `1.0` for next-token prediction, prefix LM and infilling, `0.0` for objectives that copy their
    #: input (copying, deshuffling, selective copying); `None` when unknown. Read by the compute accounting
    #: ([`birdie_hf.accounting`]).
    unseen_target_fraction: ClassVar[Optional[float]] = None

    def __init__(self, config: ObjectiveConfig, special: SpecialTokenIds):
        self.config = config
        self.special = special
        missing = [token for token in self.prompt_tokens if token not in special.tokens]
        if missing:
            raise ObjectiveConfigError(
                f"Objective {self.name!r} needs the ids of {missing}, which `special` lacks: build it with "
                f"`SpecialTokenIds.from_tokenizer(tokenizer, [{self.name!r}])`."
            )
        #: Id of the prompt token (the first of `prompt_tokens`), or `None` when the objective declares none.
        self.prompt: Optional[int] = special.tokens[self.prompt_tokens[0]] if self.prompt_tokens else None
        self._source_length_cache: dict[int, int] = {}

    def token_id(self, token: str) -> int:
        """Id of `token`, one of this objective's `prompt_tokens`."""
        if token not in self.prompt_tokens:
            raise KeyError(f"{token!r} is not one of the prompt_tokens {self.prompt_tokens} of {self.name!r}.")
        return self.special.tokens[token]

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

    def validate(self, max_length: int, window_length: int | None = None, budget: str = "max_length") -> None:
        """Raise [`ObjectiveConfigError`] if an example of this objective cannot fit `max_length` tokens, or the data
        windows (`window_length` tokens) are too short for its settings. `budget` names the setting that gave
        `max_length` in the message (e.g. `"example_length"`)."""
        needed = self.min_source_length()
        fits = self.source_length(max_length)
        if fits < needed:
            raise ObjectiveConfigError(
                f"Objective {self.name!r} with {self.config} needs at least {needed} source tokens, but an example "
                f"built from them does not fit in {budget}={max_length} (only {fits} source tokens fit). "
                f"Raise {budget} or change the objective's settings."
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
        if self.prompt is None:
            raise TypeError(
                f"Objective {self.name!r} opens its examples with a prompt token but declares none: set "
                f"`prompt_tokens = ('<|{self.name}|>',)` on {type(self).__name__}."
            )
        prompt = np.array([self.prompt], dtype=np.int64)
        eos = np.array([self.special.eos], dtype=np.int64)
        source = np.concatenate([prompt, *inputs]).astype(np.int64)
        target = np.concatenate([*targets, eos]).astype(np.int64)
        input_ids = np.concatenate([source, target])
        labels = np.concatenate([np.full(source.shape[0], IGNORE_INDEX, dtype=np.int64), target])
        return ObjectiveExample(input_ids=input_ids, labels=labels, prefix_length=int(source.shape[0]))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.config})"


def check_example(example: ObjectiveExample, entry: str, max_length: int) -> None:
    """Check that `example`, made by mixture entry `entry`, can be packed into rows of `max_length` tokens.

    Catches the mistakes a new objective can make before they fail far away (in packing, or silently in the loss):
    a non-1-D or mismatched `input_ids` / `labels`, an example longer than `max_length` (its `output_length` is too
    small), a label on the first token (in a packed row it would be predicted from the previous example) and a
    `prefix_length` outside the example.

    Raises:
        `ValueError`: naming `entry` and what is wrong.
    """
    if not isinstance(example, ObjectiveExample):
        raise ValueError(f"Objective entry {entry!r} returned a {type(example).__name__}, not an ObjectiveExample.")
    input_ids, labels = np.asarray(example.input_ids), np.asarray(example.labels)
    if input_ids.ndim != 1 or input_ids.shape != labels.shape or input_ids.size == 0:
        raise ValueError(
            f"Objective entry {entry!r} returned input_ids of shape {input_ids.shape} and labels of "
            f"shape {labels.shape}; both must be 1-D, non-empty and of the same length."
        )
    if input_ids.size > max_length:
        raise ValueError(
            f"Objective entry {entry!r} returned an example of {input_ids.size} tokens, more than "
            f"max_length={max_length}: its output_length() under-estimates the example length."
        )
    if labels[0] != IGNORE_INDEX:
        raise ValueError(
            f"Objective entry {entry!r} put the label {int(labels[0])} on the first token of an example; "
            f"it must be {IGNORE_INDEX} (nothing inside the example predicts it)."
        )
    if not 0 <= example.prefix_length <= input_ids.size:
        raise ValueError(
            f"Objective entry {entry!r} returned prefix_length={example.prefix_length} for an example "
            f"of {input_ids.size} tokens."
        )
