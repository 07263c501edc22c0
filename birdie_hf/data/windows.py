"""Window cutting: the one place where window positions and `N`-rich windows are computed, and the compact Arrow
storage of windows.

[`WindowCutter`] is shared by every loader: [`load_genome_windows`] cuts records held in memory,
[`stream_genome_windows`] counts windows while it indexes a file block by block ([`NRichWindowCounter`]) and cuts
them again while streaming, and [`windows_from_sequences`] cuts CSV or Hub rows. So all of them agree, window for
window.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Iterator, Optional

import numpy as np
import pyarrow as pa
from datasets import Dataset, DatasetInfo, Features, Value
from datasets import Sequence as SequenceFeature
from datasets.fingerprint import generate_random_fingerprint
from datasets.table import InMemoryTable
from numpy.lib.stride_tricks import sliding_window_view


#: Token ids per Arrow chunk when building window datasets (keeps list offsets far below 2**31).
_ARROW_CHUNK_VALUES = 1 << 24
_COMPLEMENT = {"A": "T", "C": "G", "G": "C", "T": "A", "N": "N"}


def bases_share(part: int, whole: int) -> str:
    """`"1,743,976 of 19,466,249 bases (9.0%)"`, for warnings about unused bases."""
    return f"{part:,} of {whole:,} bases ({100 * part / max(whole, 1):.1f}%)"


def check_positive_int(name: str, value) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"`{name}` must be a positive integer, got {value!r}.")


def check_fraction(name: str, value, *, upper_inclusive: bool = True) -> None:
    ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
    ok = ok and 0.0 <= value and (value <= 1.0 if upper_inclusive else value < 1.0)
    if not ok:
        raise ValueError(f"`{name}` must be in [0, 1{']' if upper_inclusive else ')'}, got {value!r}.")


@dataclass(frozen=True)
class WindowCutter:
    """Cuts a sequence into windows of `window_length` tokens starting every `stride` tokens (`0, stride,
    2 * stride, ...`; a window that would run past the end is not cut), and drops windows holding more than
    `max_n_fraction * window_length` `N`.

    Args:
        window_length (`int`):
            Tokens per window.
        stride (`int`, *optional*):
            Step between window starts; defaults to `window_length` (no overlap).
        max_n_fraction (`float`, *optional*, defaults to `1.0`):
            Windows with a larger share of `N` are dropped by [`cut`] when it is given the `N` positions.

    Raises:
        `ValueError`: `window_length` or `stride` is not a positive integer, or `max_n_fraction` is not in [0, 1].

    Example:

    ```python
    >>> import numpy as np
    >>> from birdie_hf.data import WindowCutter
    >>> cutter = WindowCutter(window_length=4, stride=3, max_n_fraction=0.25)
    >>> cutter.count(10), cutter.starts(10).tolist()
    (3, [0, 3, 6])
    >>> ids = np.arange(10)
    >>> starts, windows, dropped = cutter.cut(ids, is_n=np.isin(ids, [4, 5]))  # window 3..6 holds two N
    >>> starts.tolist(), windows.tolist(), dropped
    ([0, 6], [[0, 1, 2, 3], [6, 7, 8, 9]], 1)

    ```
    """

    window_length: int
    stride: Optional[int] = None
    max_n_fraction: float = 1.0

    def __post_init__(self):
        check_positive_int("window_length", self.window_length)
        stride = self.window_length if self.stride is None else self.stride
        check_positive_int("stride", stride)
        check_fraction("max_n_fraction", self.max_n_fraction)
        object.__setattr__(self, "window_length", int(self.window_length))
        object.__setattr__(self, "stride", int(stride))

    @property
    def max_n(self) -> float:
        """Most `N` a kept window may hold."""
        return self.max_n_fraction * self.window_length

    @property
    def drops_n_rich(self) -> bool:
        """Whether any window can hold too many `N` (`False` when `max_n_fraction` is `1`)."""
        return self.max_n < self.window_length

    def count(self, length: int) -> int:
        """Number of windows in a sequence of `length` tokens (`N`-rich ones included)."""
        return 0 if length < self.window_length else (length - self.window_length) // self.stride + 1

    def starts(self, length: int) -> np.ndarray:
        """Start of every window in a sequence of `length` tokens: `int64` array of shape `(count(length),)`."""
        return np.arange(self.count(length), dtype=np.int64) * self.stride

    def n_counts(self, is_n: np.ndarray) -> np.ndarray:
        """`N` per window: `is_n` (bool, shape `(length,)`) flags the `N` of a sequence; returns an `int64` array of
        shape `(count(length),)`."""
        cumulative = np.zeros(is_n.size + 1, dtype=np.int64)
        np.cumsum(is_n, out=cumulative[1:])
        starts = self.starts(is_n.size)
        return cumulative[starts + self.window_length] - cumulative[starts]

    def take(self, values: np.ndarray, starts: np.ndarray) -> np.ndarray:
        """The windows of `values` (shape `(length,)`) that start at `starts` (shape `(k,)`), as a new array of
        shape `(k, window_length)` and the dtype of `values`."""
        if not starts.size:
            return np.empty((0, self.window_length), dtype=values.dtype)
        return sliding_window_view(values, self.window_length)[starts]

    def cut(self, ids: np.ndarray, is_n: Optional[np.ndarray] = None) -> tuple[np.ndarray, np.ndarray, int]:
        """Cut `ids` (shape `(length,)`) into windows.

        Args:
            ids (`np.ndarray`): the token ids of one sequence (any dtype; the windows keep it).
            is_n (`np.ndarray`, *optional*): bool, shape `(length,)`, `True` where `ids` is `N`. Without it no window
                is dropped.

        Returns:
            `tuple[np.ndarray, np.ndarray, int]`: the starts of the kept windows (`int64`, shape `(k,)`), the windows
            (shape `(k, window_length)`) and the number of windows dropped for holding too many `N`.
        """
        starts = self.starts(ids.size)
        dropped = 0
        if is_n is not None and self.drops_n_rich and starts.size:
            keep = self.n_counts(is_n) <= self.max_n
            dropped = int(starts.size - np.count_nonzero(keep))
            starts = starts[keep]
        return starts, self.take(ids, starts), dropped

    def n_rich_counter(self) -> "NRichWindowCounter":
        """A [`NRichWindowCounter`] that counts this cutter's `N`-rich windows in a sequence fed block by block."""
        return NRichWindowCounter(self)


class NRichWindowCounter:
    """Counts the windows of a [`WindowCutter`] that hold too many `N` in a sequence fed block by block, keeping only
    the `N` flags of the window not yet complete (fewer than `window_length`), so a chromosome is never held whole.

    The counts are those of `cutter.cut(ids, is_n)` on the whole sequence: complete windows are counted with
    [`WindowCutter.n_counts`] on a buffer that always starts at a window start.
    """

    def __init__(self, cutter: WindowCutter):
        self.cutter = cutter
        self.n_rich = 0
        self._flags = np.zeros(0, dtype=bool)  # starts at the next window start
        self._skip = 0  # bases before the next window start still to come (stride > window_length)

    def feed(self, is_n: np.ndarray) -> None:
        """Add the next bases of the sequence: `is_n` is bool, shape `(block,)`."""
        if self._skip:
            skipped = min(self._skip, is_n.size)
            is_n, self._skip = is_n[skipped:], self._skip - skipped
        flags = np.concatenate([self._flags, is_n]) if self._flags.size else is_n
        complete = self.cutter.count(flags.size)
        if complete:
            self.n_rich += int(np.count_nonzero(self.cutter.n_counts(flags) > self.cutter.max_n))
            consumed = complete * self.cutter.stride
            self._skip = max(0, consumed - flags.size)
            flags = flags[consumed:]
        self._flags = flags.copy()


def reverse_complement_table(tokenizer) -> np.ndarray:
    """An id -> id table that complements base ids and leaves every other id unchanged."""
    vocab = tokenizer.get_vocab()
    table = np.arange(len(tokenizer), dtype=np.int64)
    for base, partner in _COMPLEMENT.items():
        table[vocab[base]] = vocab[partner]
    return table


@dataclass
class WindowPart:
    """Consecutive windows of one record: `input_ids` has shape `(num_windows, window_length)`. With
    `reverse_complement`, rows alternate between a window (`+`) and its reverse complement (`-`)."""

    record: str
    starts: np.ndarray
    input_ids: np.ndarray
    soft_mask: Optional[np.ndarray] = None
    reverse_complement: bool = False

    def with_reverse_complement(self, rc_table: np.ndarray) -> "WindowPart":
        width = self.input_ids.shape[1]
        ids = np.stack([self.input_ids, rc_table[self.input_ids[:, ::-1]]], axis=1).reshape(-1, width)
        mask = None
        if self.soft_mask is not None:
            mask = np.stack([self.soft_mask, self.soft_mask[:, ::-1]], axis=1).reshape(-1, width)
        return WindowPart(self.record, np.repeat(self.starts, 2), ids, mask, reverse_complement=True)


def window_features(dtype: np.dtype, soft_mask: bool = False) -> Features:
    spec = {
        "input_ids": SequenceFeature(Value(np.dtype(dtype).name)),
        "record": Value("string"),
        "start": Value("int64"),
        "end": Value("int64"),
        "strand": Value("string"),
    }
    if soft_mask:
        spec["soft_mask"] = SequenceFeature(Value("uint8"))
    return Features(spec)


def _list_array(rows: np.ndarray) -> pa.ListArray:
    """A `(n, width)` array as an Arrow list array sharing its memory (no per-element Python objects)."""
    rows = np.ascontiguousarray(rows)
    offsets = np.arange(rows.shape[0] + 1, dtype=np.int32) * np.int32(rows.shape[1])
    return pa.ListArray.from_arrays(pa.array(offsets), pa.array(rows.reshape(-1)))


def _window_chunks(parts: list[WindowPart], width: int) -> Iterator[list[tuple[WindowPart, int, int]]]:
    """Group `(part, first row, last row)` slices into chunks of about `_ARROW_CHUNK_VALUES` token ids.

    Empties `parts` and lets go of each part once its chunk is out, so the windows are not held twice.
    """
    max_rows = max(2, _ARROW_CHUNK_VALUES // width // 2 * 2)  # even: a window and its reverse complement stay together
    queue = deque(parts)
    parts.clear()
    group: list[tuple[WindowPart, int, int]] = []
    rows = 0
    while queue:
        part = queue.popleft()
        for lo in range(0, len(part.starts), max_rows):
            hi = min(len(part.starts), lo + max_rows)
            group.append((part, lo, hi))
            rows += hi - lo
            if rows >= max_rows:
                yield group
                group, rows = [], 0
    if group:
        yield group


def windows_dataset(parts: list[WindowPart], features: Features) -> Dataset:
    """Build an in-memory Arrow dataset from window parts (emptying `parts`); token ids keep their compact dtype.

    The dataset gets a random fingerprint: hashing the table, as `Dataset.from_dict` does, would serialise every window
    once more (three times the dataset's size at peak).
    """
    schema = features.arrow_schema
    columns: dict[str, list[pa.Array]] = {name: [] for name in features}
    width = parts[0].input_ids.shape[1] if parts else 1
    for group in _window_chunks(parts, width):

        def stacked(attribute: str) -> np.ndarray:
            pieces = [getattr(part, attribute)[lo:hi] for part, lo, hi in group]
            return pieces[0] if len(pieces) == 1 else np.concatenate(pieces)

        starts = stacked("starts").astype(np.int64)
        columns["input_ids"].append(_list_array(stacked("input_ids")))
        columns["record"].append(
            pa.concat_arrays([pa.repeat(pa.scalar(part.record, pa.string()), hi - lo) for part, lo, hi in group])
        )
        columns["start"].append(pa.array(starts))
        columns["end"].append(pa.array(starts + width))
        strands = [
            np.where(np.arange(lo, hi) % 2 == 0, "+", "-") if part.reverse_complement else np.full(hi - lo, "+")
            for part, lo, hi in group
        ]
        columns["strand"].append(pa.array(np.concatenate(strands), type=pa.string()))
        if "soft_mask" in columns:
            columns["soft_mask"].append(_list_array(stacked("soft_mask")))
    table = pa.Table.from_arrays(
        [pa.chunked_array(columns[name], type=schema.field(name).type) for name in features], schema=schema
    )
    info = DatasetInfo(features=features)
    return Dataset(InMemoryTable(table), info=info, fingerprint=generate_random_fingerprint())
