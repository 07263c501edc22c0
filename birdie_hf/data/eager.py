"""Eager loading: FASTA genomes cut into windows held in memory as a train / validation [`~datasets.DatasetDict`]."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Literal, Optional, Sequence, Union

import numpy as np
from datasets import DatasetDict

from .fasta import GenomeDataError, Lookup, PathLike, iter_fasta, path_list, tokenize_record, warn_duplicate_names
from .windows import (
    WindowCutter,
    WindowPart,
    bases_share,
    check_fraction,
    reverse_complement_table,
    window_features,
    windows_dataset,
)


logger = logging.getLogger(__name__)


def _soft_mask_segments(sequence: bytes) -> list[tuple[int, int]]:
    """Half-open [start, end) runs of upper-case (not soft-masked) bases."""
    upper = np.frombuffer(sequence, dtype=np.uint8) < ord("a")
    edges = np.flatnonzero(np.diff(np.concatenate([[False], upper, [False]]).astype(np.int8)))
    return list(zip(edges[0::2].tolist(), edges[1::2].tolist()))


@dataclass
class _BaseUsage:
    """Where the bases of a genome went, for the warnings of [`load_genome_windows`]."""

    total: int = 0
    #: Bases of records (or soft-mask-free segments) shorter than a window: never used.
    short: int = 0
    #: Records without any segment as long as a window.
    short_records: int = 0
    #: Bases held out for validation (`split_by="position"`), those in held-out parts shorter than a window (used
    #: for neither split), and the longest held-out part with its record.
    held_out: int = 0
    held_out_unused: int = 0
    longest_held_out: int = 0
    longest_held_out_record: str = ""
    #: The longest record (or segment) as long as a window, and its name.
    longest: int = 0
    longest_record: str = ""


def _warn_short_records(usage: _BaseUsage, num_records: int, window_length: int) -> None:
    if usage.short:
        logger.warning(
            "Skipped %d of %d records (or soft-mask-free segments) shorter than window_length=%d: %s are never used. "
            "Use a smaller window_length to train on them.",
            usage.short_records,
            num_records,
            window_length,
            bases_share(usage.short, usage.total),
        )


def _warn_validation(
    usage: _BaseUsage,
    num_validation: int,
    *,
    window_length: int,
    validation_fraction: float,
    split_by: str,
    held_out_records: Sequence[str],
    held_out_bases: int,
) -> None:
    """Warn, with the numbers and what to change, when held-out bases yield no (or too few) validation windows."""
    if validation_fraction == 0:
        return
    if split_by == "record":
        if not num_validation:
            logger.warning(
                "No validation window: the %d records held out for validation (%s, %s bases) are all shorter than "
                "window_length=%d. Use a smaller window_length, a larger validation_fraction, or more records. "
                "policy='birdie' needs validation windows for its reward; 'static' and 'ntp' train without them.",
                len(held_out_records),
                ", ".join(repr(name) for name in held_out_records[:3]),
                f"{held_out_bases:,}",
                window_length,
            )
        return
    if not num_validation:
        longest = (
            f"at most {usage.longest_held_out:,} bases (of record {usage.longest_held_out_record!r})"
            if usage.longest_held_out
            else "no base"
        )
        advice = [
            f"a window_length of at most {usage.longest_held_out}"
            if usage.longest_held_out
            else "a smaller window_length"
        ]
        if usage.longest >= 2 * window_length:
            needed = np.ceil(1000 * window_length / usage.longest) / 1000
            advice.append(f"a validation_fraction of at least {needed:g}")
        advice.append("more data (longer records)")
        logger.warning(
            "No validation window: validation_fraction=%g holds out the last %g%% of every record, %s, fewer than "
            "window_length=%d. Use %s. policy='birdie' needs validation windows for its reward; 'static' and 'ntp' "
            "train without them.",
            validation_fraction,
            100 * validation_fraction,
            longest,
            window_length,
            ", or ".join(advice),
        )
    elif usage.held_out_unused:
        logger.warning(
            "%s held out for validation lie in held-out parts shorter than window_length=%d (records shorter than "
            "%d bases) and are used for neither training nor validation; %d validation windows were cut. Use "
            "split_by='record' or a smaller window_length to use them.",
            bases_share(usage.held_out_unused, usage.held_out),
            window_length,
            int(np.ceil(window_length / validation_fraction)),
            num_validation,
        )


def load_genome_windows(
    paths: Union[PathLike, Sequence[PathLike], None],
    tokenizer,
    *,
    window_length: int = 512,
    stride: Optional[int] = None,
    validation_fraction: float = 0.05,
    split_by: Literal["position", "record"] = "position",
    reverse_complement: bool = False,
    max_n_fraction: float = 0.1,
    soft_mask: Literal["ignore", "feature", "drop"] = "ignore",
    seed: int = 0,
) -> DatasetDict:
    """Cut FASTA genomes into fixed-length windows of token ids, split into train and validation.

    Records are read one at a time and each file once. Windows are stored compactly: `input_ids` is an Arrow list of
    `uint8` (one byte per base; `uint16` only for a tokenizer whose base ids exceed 255), with no Python object per
    token. Memory is about 1.1 bytes per base held by the dataset (per window and stride, so more with overlapping
    windows or `reverse_complement`) plus a few bytes per base of the largest record while it is cut. Measured with the
    default arguments (growth of the process's peak RSS over the load): E. coli K-12 MG1655 (4.6 Mbp, one record)
    77 bytes per base before this layout (Python lists of `int32` windows; 4.1 bytes per base held by the dataset)
    and 4.0 after; 16 bacterial genomes (48 Mbp) 64 before (3.1 GB) and 2.3 after (111 MB). A 100 Mbp genome thus
    needs a few hundred MB.

    Args:
        paths (`str` or list of `str`, *optional*):
            FASTA / FASTA.gz files (any number of records each). `None` uses the genome shipped with the package.
        tokenizer ([`~transformers.PreTrainedTokenizerFast`]):
            The DNA tokenizer (see [`build_dna_tokenizer`]).
        window_length (`int`, *optional*, defaults to `512`):
            Bases per window.
        stride (`int`, *optional*):
            Step between window starts; defaults to `window_length` (no overlap).
        validation_fraction (`float`, *optional*, defaults to `0.05`):
            Share of the bases held out for validation. `0` gives an empty validation split.
        split_by (`str`, *optional*, defaults to `"position"`):
            `"position"` holds out the last `validation_fraction` of every record; `"record"` holds out whole records
            (chosen with `seed`). No validation window overlaps a training window either way.
        reverse_complement (`bool`, *optional*, defaults to `False`):
            Add the reverse complement of every training window (`strand == "-"`).
        max_n_fraction (`float`, *optional*, defaults to `0.1`):
            Windows with a larger share of `N` are dropped; a warning gives the number dropped in each file.
        soft_mask (`str`, *optional*, defaults to `"ignore"`):
            What to do with lower-case (soft-masked) bases: `"ignore"` treats them like upper-case ones, `"feature"`
            also adds a `soft_mask` column (1 = soft-masked base), `"drop"` only cuts windows from upper-case runs.
        seed (`int`, *optional*, defaults to `0`):
            Seed for the record split.

    Returns:
        [`~datasets.DatasetDict`] with `train` and `validation` splits. Columns: `input_ids` (`window_length` ids),
        `record` (record name), `start`/`end` (0-based half-open coordinates in the record, on the + strand),
        `strand` (`"+"` or `"-"`), and `soft_mask` when asked for. `dataset[i]["input_ids"]` is a list of `int`;
        the `numpy` and `torch` formats give `int64`.

    Warnings (logged, with the numbers):
        Records (or soft-mask-free segments) shorter than a window are skipped: the warning counts them and their
        bases. A `validation_fraction` above 0 that yields no validation window (every held-out part is shorter than
        a window, e.g. a 16.6 kbp mitochondrion with `window_length=1024`) is named with the longest held-out part
        and the `window_length` or `validation_fraction` that would give one; held-out bases lost in parts shorter
        than a window are counted too. Records sharing a name are all used, with a warning.

    Raises:
        [`GenomeDataError`]: bad files or records (see [`iter_fasta`] and [`tokenize_record`]), bad arguments, or no
        training window left at all.
    """
    cutter = WindowCutter(window_length, stride, max_n_fraction)
    check_fraction("validation_fraction", validation_fraction, upper_inclusive=False)
    if split_by not in ("position", "record"):
        raise ValueError(f"`split_by` must be 'position' or 'record', got {split_by!r}.")
    if soft_mask not in ("ignore", "feature", "drop"):
        raise ValueError(f"`soft_mask` must be 'ignore', 'feature' or 'drop', got {soft_mask!r}.")
    paths = path_list(paths)

    lookup = Lookup.from_tokenizer(tokenizer)
    # (split, record index, windows); split is None with split_by="record", decided once all lengths are known.
    parts: list[tuple[Optional[str], int, WindowPart]] = []
    names: list[str] = []
    lengths: list[int] = []
    usage = _BaseUsage()
    n_rich_windows = 0

    for path in paths:
        file_names: list[str] = []
        file_dropped = file_kept = 0
        for record in iter_fasta(path):
            record_index = len(names)
            names.append(record.name)
            file_names.append(record.name)
            lengths.append(len(record.sequence))
            usage.total += len(record.sequence)
            ids = tokenize_record(record.sequence, lookup.table, source=path, record=record.name, dtype=lookup.dtype)
            lowercase = None
            if soft_mask == "feature":
                lowercase = (np.frombuffer(record.sequence, dtype=np.uint8) >= ord("a")).view(np.uint8)
            segments = _soft_mask_segments(record.sequence) if soft_mask == "drop" else [(0, len(ids))]
            record_parts, dropped = _cut_record(
                record.name, ids, lowercase, segments, cutter, lookup.n_id, split_by, validation_fraction, usage
            )
            file_dropped += dropped
            file_kept += sum(int(part.starts.size) for _, part in record_parts)
            parts += [(split, record_index, part) for split, part in record_parts]
            del record, ids, lowercase
        warn_duplicate_names(path, file_names)
        if file_dropped:
            logger.warning(
                "Dropped %d windows with more than %.0f%% N from %r (%d windows kept).",
                file_dropped,
                100 * max_n_fraction,
                path,
                file_kept,
            )
        n_rich_windows += file_dropped

    validation_records = (
        _records_held_out(names, lengths, validation_fraction, seed) if split_by == "record" else set()
    )

    _warn_short_records(usage, len(names), window_length)
    rc_table = None
    if reverse_complement:
        rc_table = reverse_complement_table(tokenizer)[: int(lookup.table.max()) + 1].astype(lookup.dtype)
    by_split = _split_parts(parts, validation_records, rc_table)
    del parts
    if not by_split["train"]:
        what = "upper-case (non soft-masked) " if soft_mask == "drop" else ""
        raise GenomeDataError(
            f"No training window of {window_length} {what}bases could be cut from {paths}: "
            f"{usage.short_records} records too short, {n_rich_windows} windows over max_n_fraction. "
            "Lower `window_length`, `validation_fraction` or raise `max_n_fraction`."
        )
    num_validation = sum(len(part.starts) for part in by_split["validation"])
    held_out = sorted(validation_records)
    _warn_validation(
        usage,
        num_validation,
        window_length=window_length,
        validation_fraction=validation_fraction,
        split_by=split_by,
        held_out_records=[names[i] for i in held_out],
        held_out_bases=sum(lengths[i] for i in held_out),
    )

    features = window_features(lookup.dtype, soft_mask=soft_mask == "feature")
    splits = {}
    for split in ("train", "validation"):
        splits[split] = windows_dataset(by_split[split], features)
        by_split[split] = []
    logger.info("Genome windows: %d train, %d validation.", len(splits["train"]), len(splits["validation"]))
    return DatasetDict(splits)


def _cut_record(
    name: str,
    ids: np.ndarray,
    lowercase: Optional[np.ndarray],
    segments: list[tuple[int, int]],
    cutter: WindowCutter,
    n_id: int,
    split_by: str,
    validation_fraction: float,
    usage: _BaseUsage,
) -> tuple[list[tuple[Optional[str], WindowPart]], int]:
    """The windows of one record: each segment (the whole record, or with `soft_mask="drop"` its upper-case runs) at
    least a window long is cut whole (`split_by="record"`: the split is decided later, so `None`) or into a train
    head and a held-out tail of `validation_fraction` of its bases (`"position"`). Counts what is short or held out
    in `usage`. Returns `([(split, windows)], windows dropped for N)`."""
    window_length = cutter.window_length
    usable = [(lo, hi) for lo, hi in segments if hi - lo >= window_length]
    usage.short += sum(hi - lo for lo, hi in segments if hi - lo < window_length)
    if not usable:
        usage.short_records += 1
        return [], 0
    parts, dropped_total = [], 0
    for lo, hi in usable:
        length = hi - lo
        if length > usage.longest:
            usage.longest, usage.longest_record = length, name
        if split_by == "record":
            spans = [(None, 0, length)]
        else:
            boundary = length - int(round(validation_fraction * length))
            spans = [("train", 0, boundary), ("validation", boundary, length)]
            held = length - boundary
            usage.held_out += held
            usage.held_out_unused += held if held < window_length else 0
            if held > usage.longest_held_out:
                usage.longest_held_out, usage.longest_held_out_record = held, name
        for split, span_lo, span_hi in spans:
            span = ids[lo + span_lo : lo + span_hi]
            is_n = span == n_id if cutter.drops_n_rich else None
            starts, windows, dropped = cutter.cut(span, is_n)
            dropped_total += dropped
            if not starts.size:
                continue
            mask = None if lowercase is None else cutter.take(lowercase[lo + span_lo : lo + span_hi], starts)
            parts.append((split, WindowPart(name, starts + lo + span_lo, windows, mask)))
    return parts, dropped_total


def _records_held_out(names: list[str], lengths: list[int], validation_fraction: float, seed: int) -> set[int]:
    """`split_by="record"`: the records (by index) held out for validation, greedily in a seeded random order while
    they fit in `validation_fraction` of the bases, never all of them; the smallest when none fits."""
    if validation_fraction <= 0:
        return set()
    if len(names) < 2:
        raise GenomeDataError(
            "`split_by='record'` needs at least two records to hold one out; use `split_by='position'`."
        )
    budget = validation_fraction * sum(lengths)
    held, chosen = 0, set()
    for index in np.random.default_rng(seed).permutation(len(names)).tolist():
        if held + lengths[index] <= budget and len(chosen) < len(names) - 1:
            chosen.add(index)
            held += lengths[index]
    if not chosen:
        smallest = int(np.argmin(lengths))
        chosen.add(smallest)
        logger.warning(
            "No record fits in validation_fraction=%.3f; holding out the smallest record %r (%.1f%% of bases).",
            validation_fraction,
            names[smallest],
            100 * lengths[smallest] / sum(lengths),
        )
    return chosen


def _split_parts(
    parts: list[tuple[Optional[str], int, WindowPart]], validation_records: set[int], rc_table: Optional[np.ndarray]
) -> dict[str, list[WindowPart]]:
    """The windows by split (a record-split part goes where its record was assigned), the training ones with their
    reverse complements when `rc_table` is given."""
    by_split: dict[str, list[WindowPart]] = {"train": [], "validation": []}
    for split, record_index, part in parts:
        if split is None:
            split = "validation" if record_index in validation_records else "train"
        by_split[split].append(
            part.with_reverse_complement(rc_table) if rc_table is not None and split == "train" else part
        )
    return by_split
