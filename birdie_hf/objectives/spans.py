"""Span sampling shared by infilling, autoencoding and deshuffling (T5-style random segmentation)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .base import ObjectiveConfig, ObjectiveConfigError


def random_segmentation(rng: np.random.Generator, total: int, num_segments: int) -> np.ndarray:
    """Split `total` items into `num_segments` contiguous segments of at least one item each, uniformly at random.

    Returns:
        `np.ndarray` of shape `(num_segments,)` with positive lengths summing to `total`.
    """
    if not 1 <= num_segments <= total:
        raise ValueError(f"Cannot split {total} items into {num_segments} non-empty segments.")
    cuts = np.sort(rng.choice(np.arange(1, total), size=num_segments - 1, replace=False))
    return np.diff(np.concatenate([[0], cuts, [total]]))


def num_noise_spans(length: int, corruption_rate: float, mean_span_length: float, max_spans: int) -> tuple[int, int]:
    """How many tokens and spans to corrupt in a sequence of `length` tokens (deterministic in its arguments).

    The number of spans is `round(num_noise / mean_span_length)`, at least one, and capped by `max_spans` (the
    sentinels available) and by the number of uncorrupted tokens, which must separate the spans.

    Returns:
        `(num_noise_tokens, num_spans)`.
    """
    num_noise = int(np.clip(round(length * corruption_rate), 1, max(length - 1, 1)))
    num_spans = int(round(num_noise / mean_span_length))
    num_spans = max(1, min(num_spans, max_spans, num_noise, length - num_noise))
    return num_noise, num_spans


@dataclass
class SpanLayout:
    """Alternating clean / corrupted segments covering a sequence.

    Attributes:
        starts (`np.ndarray`): start offset of every segment, in sequence order.
        lengths (`np.ndarray`): length of every segment.
        is_noise (`np.ndarray` of bool): whether each segment is corrupted.
    """

    starts: np.ndarray
    lengths: np.ndarray
    is_noise: np.ndarray

    def segments(self, tokens: np.ndarray) -> list[np.ndarray]:
        return [tokens[s : s + n] for s, n in zip(self.starts.tolist(), self.lengths.tolist())]


#: How corrupted spans are laid out over a window (see [`sample_noise_layout`]).
SPAN_LAYOUTS = ("alternating", "interior")


def _interior_cap(length: int, num_noise: int, max_spans: int) -> int:
    """Most spans an interior layout can hold: one clean token at least before, between and after the spans."""
    return min(max_spans, num_noise, length - num_noise - 1)


def span_count_range(
    length: int, corruption_rate: float, mean_span_length: float, max_spans: int, layout: str = "alternating"
) -> tuple[int, int, int]:
    """`(num_noise_tokens, fewest spans, most spans)` of a layout on `length` tokens.

    `"alternating"` always makes [`num_noise_spans`]'s `m` spans. `"interior"` draws `k = 1 + Binomial(2 (m - 1),
    1/2)` spans (mean `m`, from 1 to `2 m - 1`), capped so that a clean token separates the spans and both ends.
    """
    num_noise, spans = num_noise_spans(length, corruption_rate, mean_span_length, max_spans)
    if layout == "alternating" or _interior_cap(length, num_noise, max_spans) < 1:
        return num_noise, spans, spans
    return num_noise, 1, max(1, min(2 * spans - 1, _interior_cap(length, num_noise, max_spans)))


def sample_noise_layout(
    rng: np.random.Generator,
    length: int,
    corruption_rate: float,
    mean_span_length: float,
    max_spans: int,
    layout: str = "alternating",
) -> SpanLayout:
    """Draw corrupted spans over `length` tokens.

    - `"alternating"` (T5's span corruption): [`num_noise_spans`]'s `m` noise segments interleaved with as many
      clean ones, starting with a clean or a noise segment at random, so exactly one end of the window is masked and
      a single span always touches an end.
    - `"interior"`: a random number of spans (see [`span_count_range`]) with clean segments before, between and
      after them, so both ends of the window are known and a single gap lies inside it, as in the gaps inference
      fills and the variants it scores. Windows too short for that (fewer than two clean tokens) fall back to
      `"alternating"`.

    The number of corrupted tokens is `round(corruption_rate * length)` in both.
    """
    if layout not in SPAN_LAYOUTS:
        raise ValueError(f"span layout must be one of {SPAN_LAYOUTS}, got {layout!r}.")
    num_noise, fewest, most = span_count_range(length, corruption_rate, mean_span_length, max_spans, layout)
    if layout == "interior" and _interior_cap(length, num_noise, max_spans) >= 1:
        middle = num_noise_spans(length, corruption_rate, mean_span_length, max_spans)[1]
        count = min(most, 1 + int(rng.binomial(2 * (middle - 1), 0.5))) if middle > 1 else 1
        noise = random_segmentation(rng, num_noise, count)
        clean = random_segmentation(rng, length - num_noise, count + 1)
        lengths = np.empty(2 * count + 1, dtype=np.int64)
        lengths[0::2], lengths[1::2] = clean, noise
        is_noise = np.zeros(2 * count + 1, dtype=bool)
        is_noise[1::2] = True
        starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
        return SpanLayout(starts=starts, lengths=lengths, is_noise=is_noise)
    num_spans = fewest
    noise = random_segmentation(rng, num_noise, num_spans)
    clean = random_segmentation(rng, length - num_noise, num_spans)
    if rng.random() < 0.5:
        lengths = np.stack([clean, noise], axis=1).reshape(-1)
        is_noise = np.tile([False, True], num_spans)
    else:
        lengths = np.stack([noise, clean], axis=1).reshape(-1)
        is_noise = np.tile([True, False], num_spans)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    return SpanLayout(starts=starts, lengths=lengths, is_noise=is_noise)


@dataclass
class SpanCorruptionConfig(ObjectiveConfig):
    """Settings shared by the objectives that corrupt random spans (infilling, autoencoding).

    Parameters:
        corruption_rate (`float`, *optional*, defaults to `0.15`):
            Share of the bases replaced by sentinels.
        mean_span_length (`float`, *optional*, defaults to `3`):
            Mean length of a corrupted span, in bases. The number of spans is capped by the tokenizer's sentinels;
            when the cap binds, spans get longer than asked.
        span_layout (`str`, *optional*, defaults to `"alternating"`):
            `"alternating"` (T5: a fixed number of spans, one window end always masked) or `"interior"` (a random
            number of spans, both ends known, so single interior gaps occur); see [`sample_noise_layout`].
    """

    corruption_rate: float = 0.15
    mean_span_length: float = 3.0
    span_layout: str = "alternating"

    def __post_init__(self):
        self._check_fraction("corruption_rate", self.corruption_rate)
        self._check_positive("mean_span_length", self.mean_span_length)
        if self.span_layout not in SPAN_LAYOUTS:
            raise ObjectiveConfigError(f"`span_layout` must be one of {SPAN_LAYOUTS}, got {self.span_layout!r}.")

    def span_counts(self, length: int, max_spans: int) -> tuple[int, int, int]:
        """[`span_count_range`] of these settings on `length` tokens with `max_spans` sentinels."""
        return span_count_range(length, self.corruption_rate, self.mean_span_length, max_spans, self.span_layout)

    def draw_layout(self, rng: np.random.Generator, length: int, max_spans: int) -> SpanLayout:
        """[`sample_noise_layout`] with these settings on `length` tokens with `max_spans` sentinels."""
        return sample_noise_layout(
            rng, length, self.corruption_rate, self.mean_span_length, max_spans, self.span_layout
        )
