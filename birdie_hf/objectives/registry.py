"""The objective registry and mixture entries: Birdie's built-in objectives, [`register_objective`] for new ones,
[`ObjectiveSpec`] (one entry of a mixture: an objective, its settings, a name and a weight), [`parse_mixture`] and
[`build_objectives`]."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Optional, Union

from ..vocabulary import CORE_TOKENS, SENTINEL_PATTERN
from .autoencoding import Autoencoding
from .base import (
    OBJECTIVE_REGISTRY,
    Objective,
    ObjectiveConfig,
    ObjectiveConfigError,
    SpecialTokenIds,
)
from .copying import Copying
from .deshuffling import Deshuffling
from .infilling import Infilling
from .next_token_prediction import NextTokenPrediction
from .prefix_lm import PrefixLM
from .selective_copying import SelectiveCopying


#: Registered objectives by name, in registration order (the built-in ones first).
#: Birdie's own objectives, in the order of their prompt tokens in the vocabulary (ids 9-15).
BUILTIN_OBJECTIVES: tuple[type[Objective], ...] = (
    NextTokenPrediction,
    PrefixLM,
    Infilling,
    Deshuffling,
    Copying,
    SelectiveCopying,
    Autoencoding,
)


def register_objective(cls: type[Objective]) -> type[Objective]:
    """Class decorator adding an [`Objective`] subclass to [`OBJECTIVE_REGISTRY`] under `cls.name`.

    Register before building the tokenizer: [`build_dna_tokenizer`] and [`add_birdie_tokens`] add the
    `prompt_tokens` of every registered objective.

    Raises:
        `TypeError`: `cls` is not an [`Objective`] subclass, or lacks `name`, `config_class` or `prompt_tokens`.
        `ValueError`: another class is registered under `cls.name`, or a declared token is a core token (`<pad>`,
        `A`, …), a sentinel, made of letters only (it would match inside DNA text), or declared by another
        registered objective.
    """
    if not (isinstance(cls, type) and issubclass(cls, Objective)):
        raise TypeError(f"register_objective takes an Objective subclass, got {cls!r}.")
    name = getattr(cls, "name", None)
    if not isinstance(name, str) or not name:
        raise TypeError(f"{cls.__name__} must set the class attribute `name` (a non-empty string).")
    config_class = getattr(cls, "config_class", None)
    if not (
        isinstance(config_class, type)
        and issubclass(config_class, ObjectiveConfig)
        and dataclasses.is_dataclass(config_class)
    ):
        raise TypeError(
            f"{cls.__name__} must set `config_class` to an ObjectiveConfig dataclass, got {config_class!r}."
        )
    tokens = getattr(cls, "prompt_tokens", None)
    if not isinstance(tokens, tuple) or not all(isinstance(token, str) and token for token in tokens):
        raise TypeError(
            f"{cls.__name__} must declare the special tokens it writes into its examples as a tuple of strings, e.g. "
            f"`prompt_tokens = ('<|{name}|>',)` (or `()` for none); got {tokens!r}."
        )
    if name in OBJECTIVE_REGISTRY and OBJECTIVE_REGISTRY[name] is not cls:
        raise ValueError(f"An objective named {name!r} is already registered ({OBJECTIVE_REGISTRY[name]}).")
    for token in tokens:
        if token in CORE_TOKENS or SENTINEL_PATTERN.match(token) or token.isalpha() or token.strip() != token:
            raise ValueError(
                f"{cls.__name__} declares {token!r} in prompt_tokens: core tokens, sentinels, letters-only tokens "
                f"(which would match inside DNA text) and tokens with surrounding whitespace cannot be objective "
                f"tokens. Use a token of its own such as '<|{name}|>'."
            )
        owner = next(
            (
                other
                for other, other_cls in OBJECTIVE_REGISTRY.items()
                if other != name and token in other_cls.prompt_tokens
            ),
            None,
        )
        if owner is not None:
            raise ValueError(
                f"{cls.__name__} declares {token!r}, which objective {owner!r} already declares; "
                "every objective needs prompt tokens of its own so the model can tell them apart."
            )
    OBJECTIVE_REGISTRY[name] = cls
    return cls


for _cls in BUILTIN_OBJECTIVES:
    register_objective(_cls)


@dataclass
class ObjectiveSpec:
    """One entry of a mixture.

    Parameters:
        objective (`str`): registered objective name, e.g. `"infilling"`.
        settings (`dict`, *optional*): fields of the objective's config class.
        name (`str`, *optional*): unique entry name used in logs; defaults to `objective`.
        weight (`float`, *optional*, defaults to `1.0`): initial (unnormalised) mixture weight, `>= 0`.
    """

    objective: str
    settings: dict = field(default_factory=dict)
    name: Optional[str] = None
    weight: float = 1.0

    def __post_init__(self):
        if self.objective not in OBJECTIVE_REGISTRY:
            raise ObjectiveConfigError(
                f"Unknown objective {self.objective!r}; registered objectives: {sorted(OBJECTIVE_REGISTRY)}. A new "
                "objective must be registered with `birdie_hf.register_objective` before it is used in a mixture."
            )
        if self.name is None:
            self.name = self.objective
        if not (self.weight >= 0):  # also rejects NaN
            raise ObjectiveConfigError(
                f"Objective entry {self.name!r} has weight {self.weight}; weights must be >= 0."
            )
        config_class = OBJECTIVE_REGISTRY[self.objective].config_class
        known = {f.name for f in dataclasses.fields(config_class)}
        unknown = sorted(set(self.settings) - known)
        if unknown:
            raise ObjectiveConfigError(
                f"Objective entry {self.name!r} ({self.objective}) got unknown settings {unknown}; "
                f"valid settings: {sorted(known)}."
            )

    @classmethod
    def from_dict(cls, entry: Union[str, dict[str, Any], "ObjectiveSpec"]) -> "ObjectiveSpec":
        """Parse `"infilling"`, `{"objective": "infilling", "name": ..., "weight": ..., <settings>}` or the same
        dict as a JSON string (for command lines)."""
        if isinstance(entry, ObjectiveSpec):
            return entry
        if isinstance(entry, str) and entry.strip().startswith("{"):
            import json

            try:
                entry = json.loads(entry)
            except json.JSONDecodeError as error:
                raise ObjectiveConfigError(f"Objective entry {entry!r} is not valid JSON: {error}") from error
        if isinstance(entry, str):
            return cls(objective=entry)
        if not isinstance(entry, dict) or "objective" not in entry:
            raise ObjectiveConfigError(f"Objective entry {entry!r} must be a name or a dict with an 'objective' key.")
        entry = dict(entry)
        objective = entry.pop("objective")
        name = entry.pop("name", None)
        weight = float(entry.pop("weight", 1.0))
        settings = dict(entry.pop("settings", {}))
        settings.update(entry)
        return cls(objective=objective, settings=settings, name=name, weight=weight)

    def to_dict(self) -> dict[str, Any]:
        return {"objective": self.objective, "name": self.name, "weight": self.weight, **self.settings}

    def build(self, special: SpecialTokenIds) -> Objective:
        cls = OBJECTIVE_REGISTRY[self.objective]
        try:
            config = cls.config_class(**self.settings)
        except ObjectiveConfigError:
            raise
        except (TypeError, ValueError) as error:
            raise ObjectiveConfigError(f"Objective entry {self.name!r}: {error}") from error
        return cls(config, special)


#: The default DNA mixture: Birdie's full objective set with span lengths in bases (3 / 8 / 32) and the
#: reference code's corruption rates. Entries of the same objective share one reward class.
DEFAULT_MIXTURE: list[dict[str, Any]] = [
    {"objective": "next_token_prediction"},
    {"objective": "prefix_lm"},
    {"objective": "infilling", "name": "infilling_15pct_span3", "corruption_rate": 0.15, "mean_span_length": 3},
    {"objective": "infilling", "name": "infilling_15pct_span8", "corruption_rate": 0.15, "mean_span_length": 8},
    {"objective": "infilling", "name": "infilling_50pct_span3", "corruption_rate": 0.5, "mean_span_length": 3},
    {"objective": "infilling", "name": "infilling_15pct_span32", "corruption_rate": 0.15, "mean_span_length": 32},
    {"objective": "deshuffling", "name": "deshuffling_25pct", "shuffle_fraction": 0.25},
    {"objective": "deshuffling", "name": "deshuffling_75pct", "shuffle_fraction": 0.75},
    {"objective": "copying"},
    {"objective": "selective_copying", "name": "selective_copying_span8", "span_length": 8},
    {"objective": "selective_copying", "name": "selective_copying_span16", "span_length": 16},
    {"objective": "autoencoding", "name": "autoencoding_15pct_span3", "corruption_rate": 0.15, "mean_span_length": 3},
    {
        "objective": "autoencoding",
        "name": "autoencoding_50pct_span8_shuffled",
        "corruption_rate": 0.5,
        "mean_span_length": 8,
        "shuffle": True,
    },
]


def parse_mixture(entries: Optional[list]) -> list[ObjectiveSpec]:
    """Parse and check a mixture (names, dicts or [`ObjectiveSpec`]s); `None` gives [`DEFAULT_MIXTURE`].

    Raises:
        [`ObjectiveConfigError`]: unknown objective or setting, duplicate entry names, negative weights or weights
        that are all zero.
    """
    specs = [ObjectiveSpec.from_dict(entry) for entry in (DEFAULT_MIXTURE if entries is None else entries)]
    if not specs:
        raise ObjectiveConfigError("The objective mixture is empty: give at least one objective.")
    names = [spec.name for spec in specs]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise ObjectiveConfigError(f"Objective entry names must be unique; repeated: {duplicates}. Set 'name'.")
    if sum(spec.weight for spec in specs) <= 0:
        raise ObjectiveConfigError("All objective weights are zero; at least one must be positive.")
    return specs


def build_objectives(specs: list[ObjectiveSpec], tokenizer_or_ids) -> list[Objective]:
    """Instantiate the objectives of a parsed mixture for a tokenizer (or a [`SpecialTokenIds`]).

    Raises:
        [`MissingObjectiveTokenError`]: the tokenizer lacks a token that an objective of the mixture declares.
    """
    special = (
        tokenizer_or_ids
        if isinstance(tokenizer_or_ids, SpecialTokenIds)
        else SpecialTokenIds.from_tokenizer(tokenizer_or_ids, [spec.objective for spec in specs])
    )
    return [spec.build(special) for spec in specs]
