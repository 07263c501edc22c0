"""The reward policy's numeric settings and their valid ranges, declared once: [`PolicyConfig`] and
[`ExplorationSchedule`] check their fields with them, and `BirdieTrainingArguments` checks its `policy_*` fields (which
name the setting they set in their metadata) with the same rules, so a bad value is refused by the name the user gave
it, before training."""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterator, Mapping
from typing import Any, NamedTuple, Optional

import numpy as np


class Range(NamedTuple):
    """A valid range: an integer or any number, at least `low` (above it when `low_excluded`), at most `high`."""

    integer: bool
    low: float
    high: Optional[float] = None
    low_excluded: bool = False


#: Every numeric policy setting, by its [`PolicyConfig`] name (`exploration.*`: [`ExplorationSchedule`]).
POLICY_RANGES: dict[str, Range] = {
    "hidden_size": Range(True, 1),
    "num_layers": Range(True, 1),
    "learning_rate": Range(False, 0.0, low_excluded=True),
    "weight_decay": Range(False, 0.0),
    "update_iterations": Range(True, 1),
    "num_candidates": Range(True, 1),
    "top_n": Range(True, 1),
    "min_weight": Range(False, 0.0, 1.0),
    "exploration_blend": Range(False, 0.0, 1.0, low_excluded=True),
    "reward_scale": Range(False, 0.0, low_excluded=True),
    "reward_min_change": Range(False, 0.0, low_excluded=True),
    "min_predicted_gain": Range(False, 0.0),
    "exploration.initial_rate": Range(False, 0.0, 1.0),
    "exploration.final_rate": Range(False, 0.0, 1.0),
    "exploration.decay_fraction": Range(False, 0.0, 1.0),
}


def check_setting(label: str, value: Any, rule: Range) -> None:
    """Raise a `ValueError` naming `label` when `value` is of the wrong type or outside `rule`.

    >>> check_setting("`policy_top_n`", 0, POLICY_RANGES["top_n"])
    Traceback (most recent call last):
    ValueError: `policy_top_n` must be at least 1, got 0.
    """
    kind = "an integer" if rule.integer else "a number"
    if isinstance(value, (bool, np.bool_)) or not isinstance(
        value, numbers.Integral if rule.integer else numbers.Real
    ):
        raise ValueError(f"{label} must be {kind}, got {value!r}.")
    if not math.isfinite(value):
        raise ValueError(f"{label} must be a finite number, got {value!r}.")
    if rule.high is not None:
        inside = rule.low < value <= rule.high if rule.low_excluded else rule.low <= value <= rule.high
        if not inside:
            opening = "(" if rule.low_excluded else "["
            raise ValueError(f"{label} must be in {opening}{rule.low:g}, {rule.high:g}], got {value!r}.")
    elif rule.low_excluded and not value > rule.low:
        raise ValueError(f"{label} must be greater than {rule.low:g}, got {value!r}.")
    elif not value >= rule.low:
        raise ValueError(f"{label} must be at least {rule.low:g}, got {value!r}.")


class SettingMetadata(Mapping):
    """A dataclass field's metadata with Birdie's keys (`policy_config`: the [`PolicyConfig`] setting a field sets;
    `range`: the [`Range`] of a field that is not one) readable by key but left out of iteration: `HfArgumentParser`
    passes a field's metadata (`dict(field.metadata)`) to `argparse.add_argument`, which knows only its own
    keywords. So each `policy_*` field of `BirdieTrainingArguments` declares its setting once, where it is defined.
    Every way of reading it whole (`dict(...)`, `.copy()`, `.items()`, iteration) gives the argparse keywords alone."""

    def __init__(self, public: dict[str, Any], private: dict[str, Any]):
        self._public, self._private = dict(public), dict(private)

    def __getitem__(self, key: str) -> Any:
        return self._public[key] if key in self._public else self._private[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._public)

    def __len__(self) -> int:
        return len(self._public)

    def copy(self) -> dict[str, Any]:
        """The argparse keywords alone (older `HfArgumentParser` releases call `field.metadata.copy()`)."""
        return dict(self._public)


def setting_metadata(
    *, policy_config: Optional[str] = None, range: Optional[Range] = None, **argparse_keywords: Any
) -> SettingMetadata:
    """Field metadata for a policy setting: the `argparse_keywords` (`help`, `choices`) and, for Birdie, the
    [`PolicyConfig`] setting it sets or its own [`Range`]."""
    private = {key: value for key, value in (("policy_config", policy_config), ("range", range)) if value is not None}
    return SettingMetadata(argparse_keywords, private)
