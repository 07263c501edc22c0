"""What a checkpoint was trained to infill, and refusing gaps outside it.

[`BirdieTrainer`] records the objectives a checkpoint was trained with in `config.birdie_objectives` (e.g.
`["next_token_prediction"]` for an NTP-only run). Infilling and bidirectional scoring need `"infilling"` among them.

The infilling objective's settings (corruption rate and mean span length of each infilling entry) decide which gap
layouts the model has seen. They are read from, in order: the `mixture` argument, `config.birdie_mixture` (mixture
entries with their settings, when the checkpoint records them) and otherwise [`DEFAULT_MIXTURE`]. From them,
[`InfillingLimits`] derives, for a sequence of `n` bases, the most gaps, the most masked bases and the longest gap
that the objective produces on a window of `n` bases (by drawing layouts with the objective's own sampler).
"""

from __future__ import annotations

import logging
import math
import sys
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Callable, Optional, Sequence

import numpy as np

from ..objectives import DEFAULT_MIXTURE, InfillingConfig, ObjectiveSpec
from ..objectives.spans import num_noise_spans, sample_noise_layout, span_count_range
from ..vocabulary import sentinel_ids
from .inputs import Gap, InfillingNotTrainedError, UntrainedGapsError


logger = logging.getLogger(__name__)

#: Objectives whose examples only ever read left to right.
CAUSAL_ONLY_OBJECTIVES = ("next_token_prediction",)
#: Layouts drawn per infilling entry to find the longest gap the objective produces on a window.
_LAYOUT_DRAWS = 1000


def trained_objectives(model_or_config) -> Optional[list[str]]:
    """The objectives `config.birdie_objectives` records (written by [`BirdieTrainer`]), or `None` without a record."""
    config = getattr(model_or_config, "config", model_or_config)
    recorded = getattr(config, "birdie_objectives", None)
    return list(recorded) if recorded is not None else None


def trained_with_infilling(model_or_config) -> Optional[bool]:
    """Whether the checkpoint was trained with the infilling objective; `None` when it records no objectives."""
    objectives = trained_objectives(model_or_config)
    return None if objectives is None else "infilling" in objectives


def require_infilling(model_or_config, what: str, strict: bool = True) -> None:
    """Raise [`InfillingNotTrainedError`] unless the checkpoint was trained with infilling.

    Args:
        what (`str`): what the caller wanted to do, for the message (e.g. `"fill gaps"`).
        strict (`bool`): with `False`, a checkpoint that records no objectives is let through with a warning (one that
            records objectives without infilling is always refused: its infills would be noise).
    """
    objectives = trained_objectives(model_or_config)
    if objectives is None:
        message = (
            "The checkpoint records no training objectives (config.birdie_objectives is missing; BirdieTrainer "
            f"writes it), so it is unknown whether it can {what}: that needs a checkpoint trained with the "
            "infilling objective."
        )
        if strict:
            raise InfillingNotTrainedError(message + " Pass strict=False to try anyway.")
        logger.warning(message + " Going on because strict=False.")
        return
    if "infilling" not in objectives:
        only = " only" if all(o in CAUSAL_ONLY_OBJECTIVES for o in objectives) else ""
        raise InfillingNotTrainedError(
            f"This checkpoint was trained with {objectives}{only}, without the infilling objective, so it cannot "
            f"{what}: it never learnt the <|infilling|> prompt and sentinels. Use its causal (left-to-right) scores "
            "(score() and variant_effect() with bidirectional=False), or a checkpoint trained with infilling (e.g. "
            "Birdie's default mixture)."
        )


def _infilling_entries(mixture: Optional[Sequence]) -> list[tuple[float, float, str]]:
    settings = []
    for entry in mixture:
        if isinstance(entry, dict) and "settings" in entry and isinstance(entry["settings"], dict):
            entry = {**{k: v for k, v in entry.items() if k != "settings"}, **entry["settings"]}
        spec = ObjectiveSpec.from_dict(entry)
        if spec.objective != "infilling":
            continue
        config = InfillingConfig(**spec.settings)
        settings.append((float(config.corruption_rate), float(config.mean_span_length), config.span_layout))
    return settings


@lru_cache(maxsize=256)
def _longest_gaps(entries: tuple, num_sentinels: int, length: int, quantile: float) -> tuple[int, int]:
    """`(edge, interior)`: quantiles of the longest noise span per example that the infilling entries draw on `length`
    tokens, among spans touching an end of the window and among spans inside it (0 when none is ever inside)."""
    rng = np.random.default_rng(0)
    edge, interior = [], []
    for rate, mean_span, span_layout in entries:
        for _ in range(_LAYOUT_DRAWS):
            layout = sample_noise_layout(rng, length, rate, mean_span, num_sentinels, span_layout)
            spans = layout.lengths[layout.is_noise]
            starts = layout.starts[layout.is_noise]
            inside = (starts > 0) & (starts + spans < length)
            edge.append(int(spans[~inside].max(initial=0)))
            if inside.any():
                interior.append(int(spans[inside].max()))
    quantiles = [
        int(np.quantile(np.array(values), quantile, method="lower")) if values else 0 for values in (edge, interior)
    ]
    return quantiles[0], quantiles[1]


@dataclass(frozen=True)
class InfillingLimits:
    """The gap layouts a checkpoint's infilling objective trained it on.

    For a sequence of `n` bases the infilling objective (entries with corruption rate `r` and mean span length `m`)
    masks `round(r * n)` bases in `round(r * n / m)` spans (see [`num_noise_spans`]). Inference accepts gaps that
    stay within what some infilling entry produces on `n` bases: at most [`max_gaps`] gaps, at most [`max_masked`]
    masked bases, no gap longer than [`max_gap_length`] (the longest span the entries draw in at least
    `1 - quantile` of their examples), and, when the checkpoint records its window length, `n` at most that.

    Parameters:
        entries (`tuple[tuple[float, float, str], ...]`): `(corruption_rate, mean_span_length, span_layout)` of each
            infilling entry.
        num_sentinels (`int`): sentinel tokens of the tokenizer (a hard cap on gaps).
        max_positions (`int`): the model's `max_position_embeddings` (a hard cap on example length).
        window_length (`int`, *optional*): the longest training window, from `config.birdie_window_length`.
        source (`str`): where the entries came from, for messages.
        quantile (`float`, defaults to `0.999`): see above.
    """

    entries: tuple
    num_sentinels: int
    max_positions: int
    window_length: Optional[int] = None
    source: str = "the default mixture"
    quantile: float = 0.999

    def _length(self, length: int) -> int:
        return int(length) if self.window_length is None else min(int(length), int(self.window_length))

    def max_gaps(self, length: int) -> int:
        """Most gaps an infilling entry makes in `length` bases."""
        return max(
            span_count_range(self._length(length), rate, span, self.num_sentinels, layout)[2]
            for rate, span, layout in self.entries
        )

    def max_masked(self, length: int) -> int:
        """Most masked bases an infilling entry makes in `length` bases."""
        return max(
            num_noise_spans(self._length(length), rate, span, self.num_sentinels)[0] for rate, span, _ in self.entries
        )

    def max_gap_length(self, length: int, interior: bool = True) -> int:
        """Longest gap the infilling entries make in `length` bases in at least `1 - quantile` of their examples,
        among gaps inside the sequence (`interior=True`) or touching one of its ends (`False`).

        The two differ for the `"alternating"` layout: it alternates known and masked segments and starts with
        either, so one of the window's ends is always masked, and a window with a single span (e.g. 15 % in spans of
        mean 32 on 256 bases) always has it at an end: such an entry never trains a gap inside the window. The
        `"interior"` layout keeps both ends known."""
        length = self._length(length)
        if length < 2:
            return 0
        edge, inside = _longest_gaps(tuple(self.entries), self.num_sentinels, length, self.quantile)
        return inside if interior else edge

    @property
    def min_corruption_rate(self) -> float:
        return min(rate for rate, _, _ in self.entries)

    def check(self, length: int, gaps: Sequence[Gap], name: str = "sequence", strict: bool = True) -> None:
        """Raise [`UntrainedGapsError`] if `gaps` in a sequence of `length` bases are not a layout the objective
        trained the model on. With `strict=False` only the hard limits (sentinels, positions) are enforced."""
        num_gaps = len(gaps)
        masked = sum(end - start for start, end in gaps)
        if length < 2:
            raise UntrainedGapsError(f"{name} has {length} base; infilling needs at least 2 (a gap and a known base).")
        if num_gaps > self.num_sentinels:
            raise UntrainedGapsError(
                f"{name} has {num_gaps} gaps but the tokenizer has only {self.num_sentinels} "
                "sentinels (one per gap). Split the sequence into shorter pieces."
            )
        if masked >= length:
            raise UntrainedGapsError(f"{name} is masked entirely; infilling needs at least one known base.")
        example = length + 2 * num_gaps + 2
        if example > self.max_positions:
            raise UntrainedGapsError(
                f"{name} with {num_gaps} gaps makes an example of {example} tokens ({length} bases + 2 per gap + "
                f"prompt and eos), more than the model's max_position_embeddings={self.max_positions}. Use a shorter "
                "window around the gaps."
            )
        if not strict:
            return
        hint = (
            f" The checkpoint's infilling entries ({self.describe()}, from {self.source}) never train on this, "
            "so its fills would be unreliable; pass strict=False to fill anyway."
        )
        if self.window_length is not None and length > self.window_length:
            raise UntrainedGapsError(
                f"{name} has {length} bases, more than the {self.window_length}-base windows the "
                f"checkpoint was trained on. Use a window of at most {self.window_length} bases "
                f"around the gaps.{hint}"
            )
        if num_gaps > self.max_gaps(length):
            raise UntrainedGapsError(
                f"{name} has {num_gaps} gaps in {length} bases; the infilling objective makes at "
                f"most {self.max_gaps(length)} in {length} bases.{hint}"
            )
        if masked > self.max_masked(length):
            raise UntrainedGapsError(
                f"{name} has {masked} of {length} bases masked; the infilling objective masks at "
                f"most {self.max_masked(length)} of {length}.{hint}"
            )
        for start, end in gaps:
            interior = 0 < start and end < length
            allowed = self.max_gap_length(length, interior=interior)
            if end - start > allowed:
                where = "inside" if interior else "at an end of"
                raise UntrainedGapsError(
                    f"{name} has a gap of {end - start} bases ({start}, {end}) {where} its {length} bases; the "
                    f"infilling objective makes gaps {where} {length}-base windows of at most {allowed} bases (in "
                    f"{1 - self.quantile:.1%} of its examples or more).{hint}"
                )

    def describe(self) -> str:
        """The infilling entries in words, e.g. `0.15 of bases in spans of mean 3, both ends known`."""
        return ", ".join(
            f"{rate:g} of bases in spans of mean {span:g}" + (", both ends known" if layout == "interior" else "")
            for rate, span, layout in self.entries
        )


def infilling_limits(
    model_or_config, tokenizer, mixture: Optional[Sequence[Any]] = None, quantile: float = 0.999
) -> InfillingLimits:
    """The [`InfillingLimits`] of a checkpoint.

    Args:
        model_or_config: the model or its config.
        tokenizer: its tokenizer (for the number of sentinels).
        mixture (`list`, *optional*): the mixture it was trained on (entries as [`parse_mixture`] takes them, or as
            `BirdieTrainer` records them with a `settings` dict). Defaults to `config.birdie_mixture` when the
            checkpoint records it, else [`DEFAULT_MIXTURE`].
        quantile (`float`, *optional*, defaults to `0.999`): see [`InfillingLimits`].

    Raises:
        [`InfillingNotTrainedError`]: the mixture has no infilling entry.
    """
    config = getattr(model_or_config, "config", model_or_config)
    if mixture is not None:
        source = "the given mixture"
    elif getattr(config, "birdie_mixture", None):
        mixture, source = config.birdie_mixture, "config.birdie_mixture"
    else:
        mixture, source = DEFAULT_MIXTURE, "the default mixture (the checkpoint records no objective settings)"
    entries = _infilling_entries(mixture)
    if not entries:
        raise InfillingNotTrainedError(
            f"The mixture from {source} has no infilling entry, so the checkpoint was not trained to fill gaps."
        )
    positions = getattr(config, "max_position_embeddings", None) or getattr(config, "n_positions", None)
    window = getattr(config, "birdie_window_length", None)
    return InfillingLimits(
        entries=tuple(entries),
        num_sentinels=len(sentinel_ids(tokenizer)),
        max_positions=int(positions) if positions else sys.maxsize,
        window_length=int(window) if window else None,
        source=source,
        quantile=quantile,
    )


# -- what one read of a checkpoint may hold -------------------------------------------------------------------
def resolve_bidirectional(model, bidirectional: Optional[bool], strict: bool) -> bool:
    """Whether to read `model` from both flanks: `bidirectional` when given (refused, as [`require_infilling`] does,
    for a checkpoint not trained to fill gaps), else whether it was trained with infilling (with a warning when it was
    not, or when it records no objectives and `strict`)."""
    if bidirectional is None:
        trained = trained_with_infilling(model)
        if trained is False:
            logger.warning(
                "The checkpoint was trained without infilling (config.birdie_objectives = %s): only causal "
                "scores are computed.",
                getattr(model.config, "birdie_objectives", None),
            )
            return False
        if trained is None and strict:
            logger.warning(
                "The checkpoint records no training objectives: only causal scores are computed (pass "
                "bidirectional=True, strict=False to try the infilling reading)."
            )
            return False
        return True
    if bidirectional:
        require_infilling(model, "score bases with context from both sides", strict=strict)
    return bool(bidirectional)


def max_positions(model) -> int:
    """The model's position budget (`config.max_position_embeddings`; unbounded when it has none)."""
    return int(getattr(model.config, "max_position_embeddings", None) or 1 << 30)


def default_window(model, stride: Optional[int] = None) -> int:
    """The training window length when the checkpoint records it (`config.birdie_window_length`), capped by what fits
    the model's positions: a plain read (`stride=None`) or an infilling example masking every `stride`-th base."""
    positions = max_positions(model)
    if stride is None:
        window = positions
    else:
        window = min(positions - 4, (positions - 2) * stride // (stride + 2) + stride)  # step down to a fit
        while window > 2 and window + 2 * math.ceil(window / stride) + 2 > positions:
            window -= 1
    recorded = getattr(model.config, "birdie_window_length", None)
    return min(window, int(recorded)) if recorded else window


def check_window_length(window_length, model, extra_tokens: Callable[[int], int], reading: str) -> None:
    """Refuse a `window_length` that is not an integer >= 2, or whose examples (`window + extra_tokens(window)`
    tokens) exceed the model's positions."""
    if window_length is None:
        return
    if isinstance(window_length, bool) or not isinstance(window_length, (int, np.integer)) or window_length < 2:
        raise ValueError(
            f"window_length must be an integer of at least 2 bases (or None for the checkpoint's training window), "
            f"got {window_length!r}."
        )
    needed = int(window_length) + extra_tokens(int(window_length))
    positions = max_positions(model)
    if needed > positions:
        fits = min(int(window_length), positions)
        while fits > 2 and fits + extra_tokens(fits) > positions:
            fits -= 1
        raise ValueError(
            f"window_length={window_length} makes {reading} examples of {needed} tokens, more than the model's "
            f"{positions} positions (max_position_embeddings); use at most {fits}."
        )
