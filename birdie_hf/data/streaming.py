"""Streaming: FASTA genomes indexed once, then cut into windows while iterating (memory does not grow with the
genome), as a resumable [`~datasets.IterableDataset`] made of [`WindowShard`]s."""

from __future__ import annotations

import gzip
import logging
import os
import threading
import zlib
from dataclasses import dataclass
from typing import BinaryIO, Iterable, Iterator, Optional, Sequence, Union

import numpy as np
from datasets import IterableDataset

from .fasta import (
    WHITESPACE,
    FileIndex,
    GenomeDataError,
    Lookup,
    PathLike,
    corrupt_gzip_error,
    index_fasta,
    invalid_character_error,
    open_binary,
    path_list,
    scan_fasta,
    warn_duplicate_names,
)
from .windows import WindowCutter, bases_share, check_positive_int, reverse_complement_table, window_features


logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class WindowShard:
    """A contiguous range of windows of one record: windows `first` (inclusive) to `last` (exclusive).

    Records are identified by `record_index`, their 0-based position in the file, so records sharing a name are
    distinct shards; `record` is the name, for provenance.
    """

    path: str
    record_index: int
    record: str
    first: int
    last: int


def _plan(
    records: Iterable[tuple[str, int, str, int]], cutter: WindowCutter, windows_per_shard: int
) -> list[WindowShard]:
    shards = []
    for path, record_index, name, length in records:
        count = cutter.count(length)
        for first in range(0, count, windows_per_shard):
            shards.append(WindowShard(path, record_index, name, first, min(count, first + windows_per_shard)))
    return shards


def plan_window_shards(
    paths: Sequence[PathLike], window_length: int, stride: int, windows_per_shard: int = 256
) -> list[WindowShard]:
    """Split every record's windows into shards of at most `windows_per_shard` windows (without reading
    sequences into memory), so many ranks x workers can share even a single-record genome.

    Raises:
        `ValueError`: `window_length`, `stride` or `windows_per_shard` is not a positive integer.
    """
    cutter = WindowCutter(window_length, stride)
    check_positive_int("windows_per_shard", windows_per_shard)
    records = (
        (os.fspath(path), index, name, length)
        for path in paths
        for index, (name, length) in enumerate(index_fasta(path))
    )
    return _plan(records, cutter, windows_per_shard)


class _SpanReader:
    """Reads base ranges of the records of one indexed FASTA file in one pass.

    The file stays open between calls and the bytes of the last read are kept, so a range that starts inside them
    (the overlapping windows of the next shard, or the next record when the last read ran past the end of its record)
    is served from memory instead of seeking back: a gzipped file can only seek back by decompressing again from its
    start, which made a pass quadratic. Ranges in file order therefore decompress a gzipped file once; a range before
    the kept bytes (shards read out of order) still rewinds it. The handle is not pickled and is reopened in a forked
    DataLoader worker, so processes never share a file position.
    """

    def __init__(self, index: FileIndex):
        self.index = index
        self._handle: Optional[BinaryIO] = None
        self._pid: Optional[int] = None
        # The file's bytes [_kept_start, _kept_start + len(_kept)); the handle is positioned at their end.
        self._kept_start: Optional[int] = None
        self._kept = b""

    def __getstate__(self) -> dict:
        return {"index": self.index, "_handle": None, "_pid": None, "_kept_start": None, "_kept": b""}

    def _file(self) -> BinaryIO:
        path = self.index.path
        try:
            stat = os.stat(path)
        except FileNotFoundError:
            raise FileNotFoundError(f"FASTA file {path!r} was removed while streaming from it.") from None
        if (stat.st_size, stat.st_mtime_ns) != (self.index.size, self.index.mtime_ns):
            raise GenomeDataError(
                f"{path!r} changed after `stream_genome_windows` indexed it (size or modification time differ): "
                "build the stream again."
            )
        if self._handle is None or self._pid != os.getpid():
            self._handle, self._pid = open_binary(path), os.getpid()
            self._kept_start, self._kept = None, b""
        return self._handle

    def close(self) -> None:
        """Close the file and drop the kept bytes (the next read reopens it)."""
        if self._handle is not None:
            self._handle.close()
        self._handle, self._pid, self._kept_start, self._kept = None, None, None, b""

    def _bytes_from(self, byte: int) -> bytes:
        """The kept bytes from file offset `byte` on (the handle stays at their end), or, when `byte` is not among
        them, an empty string after seeking the handle to `byte`."""
        handle = self._file()
        start = self._kept_start
        if start is not None and start <= byte <= start + len(self._kept):
            return self._kept[byte - start :]
        handle.seek(byte)
        return b""

    def read(self, record_index: int, start: int, end: int) -> bytes:
        """Bases `[start, end)` of record `record_index` (0-based, `end <= length`), line breaks removed."""
        record = self.index.records[record_index]
        row = int(np.searchsorted(record.checkpoints[:, 0], start, side="right")) - 1
        base, byte = (int(v) for v in record.checkpoints[row])
        needed = end - base
        try:
            raw = self._bytes_from(byte)
            bases = raw.translate(None, WHITESPACE)
            handle = self._handle
            while len(bases) < needed:
                missing = needed - len(bases)
                chunk = handle.read(missing + missing // 16 + 2)  # room for the line breaks
                if not chunk:
                    raise GenomeDataError(
                        f"{self.index.path!r} ended inside record {record.name!r}: it changed after it was indexed."
                    )
                raw += chunk
                bases += chunk.translate(None, WHITESPACE)
        except (EOFError, gzip.BadGzipFile, zlib.error) as error:
            raise corrupt_gzip_error(self.index.path, error) from error
        self._kept_start, self._kept = byte, raw
        return bases[start - base : end - base]


class _WindowGenerator:
    """The generator behind [`stream_genome_windows`]: yields the windows of a list of shards.

    A shard's bases are read with one seek and cut by the same [`WindowCutter`] that counted the record's `N`-rich
    windows while indexing, so exactly the windows [`load_genome_windows`] keeps come out.
    """

    def __init__(
        self,
        files: dict[str, FileIndex],
        lookup: Lookup,
        cutter: WindowCutter,
        rc_table: Optional[np.ndarray] = None,
        soft_mask: str = "ignore",
    ):
        self.files = files
        self.lookup, self.cutter = lookup, cutter
        self.rc_table, self.soft_mask = rc_table, soft_mask
        self._local = threading.local()

    def __getstate__(self) -> dict:
        return {
            "files": self.files,
            "lookup": self.lookup,
            "cutter": self.cutter,
            "rc_table": self.rc_table,
            "soft_mask": self.soft_mask,
        }

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._local = threading.local()

    def readers(self) -> dict[str, _SpanReader]:
        """This thread's readers, one per file. `datasets` reads the shards of a shuffled stream from a thread pool:
        readers shared between threads interleaved their seeks and reads (windows whose bases did not match their
        coordinates). Within a thread they persist across calls, so shards in file order still read a file once."""
        readers = getattr(self._local, "readers", None)
        if readers is None:
            readers = self._local.readers = {path: _SpanReader(index) for path, index in self.files.items()}
        return readers

    def __call__(self, shards: list[WindowShard]) -> Iterator[dict]:
        readers = self.readers()
        length, stride = self.cutter.window_length, self.cutter.stride
        previous = None
        for shard in shards:
            reader = readers[shard.path]
            if previous is not None and previous is not reader:
                previous.close()  # shards come file by file: one open file (and one kept read) at a time
            previous = reader
            yield from self._windows(reader, shard, length, stride)

    def _windows(self, reader: _SpanReader, shard: WindowShard, length: int, stride: int) -> Iterator[dict]:
        """The windows of one shard: one read, cut by the cutter that counted them when indexing."""
        record = reader.index.records[shard.record_index]
        lo = shard.first * stride
        raw = np.frombuffer(reader.read(shard.record_index, lo, (shard.last - 1) * stride + length), np.uint8)
        bad = np.flatnonzero(self.lookup.invalid[raw])
        if bad.size:  # validated when indexed: the file was rewritten in place since
            raise invalid_character_error(
                raw,
                bad,
                source=shard.path,
                record=record.name,
                offset=lo,
                scope="in this shard; the file changed after it was indexed",
            )
        starts, windows, _ = self.cutter.cut(self.lookup.ids[raw], self.lookup.is_n[raw])
        masks = None
        if self.soft_mask != "ignore":
            lowercase = (raw >= ord("a")).view(np.uint8)
            masks = [lowercase[start : start + length] for start in starts.tolist()]
        for index, (start, window) in enumerate(zip((starts + lo).tolist(), windows)):
            mask = None if masks is None else masks[index]
            if self.soft_mask == "drop" and mask.any():
                continue  # a window touching a soft-masked base is not trained on
            row = {"input_ids": window, "record": record.name, "start": start, "end": start + length, "strand": "+"}
            if self.soft_mask == "feature":
                row["soft_mask"] = mask
            yield row
            if self.rc_table is not None:
                row = {**row, "input_ids": self.rc_table[window[::-1]], "strand": "-"}
                if self.soft_mask == "feature":
                    row["soft_mask"] = mask[::-1]
                yield row


def stream_genome_windows(
    paths: Union[PathLike, Sequence[PathLike]],
    tokenizer,
    *,
    window_length: int = 512,
    stride: Optional[int] = None,
    max_n_fraction: float = 0.1,
    windows_per_shard: int = 256,
    reverse_complement: bool = False,
    soft_mask: str = "ignore",
) -> IterableDataset:
    """Like [`load_genome_windows`] but lazy: windows are cut while iterating; memory does not grow with the genome.

    Every file is indexed once, up front: all its bases are validated (an error names the file, record, character and
    1-based position, before any training step), windows with more than `max_n_fraction` `N` are counted (a warning
    gives the number dropped per file) and the byte offsets of the records are recorded. While streaming, each shard is
    then read with one seek, so a pass reads each file once however many records it has.

    The stream is made of [`WindowShard`]s (ranges of windows of one record, see [`plan_window_shards`]). The
    Trainer splits shards over ranks (`datasets.distributed.split_dataset_by_node`) and each rank's DataLoader
    workers split its shards again, so every window is produced exactly once per epoch; use a shard count divisible
    by `world_size * num_workers` (lower `windows_per_shard`) to keep every worker busy. There is no validation
    split: hold out a separate file.

    Resuming: the returned dataset supports `state_dict()` / `load_state_dict()`. A restored stream skips the
    finished shards without reading them and seeks straight to the current one (a gzipped file is decompressed up to
    it; use plain FASTA for instant resumes on large genomes). Shuffled shard orders (`.shuffle()`) are fast on plain
    FASTA but rewind a gzipped file for every shard that lies before the previous one.

    Args:
        paths (`str` or list of `str`): FASTA / FASTA.gz files. Records sharing a name are all streamed.
        tokenizer ([`~transformers.PreTrainedTokenizerFast`]): the DNA tokenizer.
        window_length (`int`, *optional*, defaults to `512`): bases per window.
        stride (`int`, *optional*): step between window starts; defaults to `window_length`.
        max_n_fraction (`float`, *optional*, defaults to `0.1`): windows with a larger share of `N` are dropped.
        windows_per_shard (`int`, *optional*, defaults to `256`): windows per [`WindowShard`].
        reverse_complement (`bool`, *optional*, defaults to `False`): follow every window with its reverse
            complement (`strand == "-"`, same coordinates), as [`load_genome_windows`] does for its train split.
        soft_mask (`str`, *optional*, defaults to `"ignore"`): lower-case (soft-masked) bases: `"ignore"` reads them
            as upper-case ones, `"feature"` adds a `soft_mask` column (1 = soft-masked base), `"drop"` skips every
            window holding one. Unlike [`load_genome_windows`]' `"drop"`, which cuts windows inside each upper-case
            run, streaming keeps the window grid of the index and skips the windows that touch a masked base, so it
            keeps fewer windows of a heavily masked genome.

    Returns:
        [`~datasets.IterableDataset`] with the columns of [`load_genome_windows`] (`input_ids` as compact `uint8`).

    Raises:
        `ValueError`: an argument out of range (naming it). [`GenomeDataError`]: a bad file or character (see
        [`iter_fasta`]), no window left, or a file changed on disk after it was indexed.
    """
    cutter = WindowCutter(window_length, stride, max_n_fraction)
    check_positive_int("windows_per_shard", windows_per_shard)
    if soft_mask not in ("ignore", "feature", "drop"):
        raise ValueError(f"`soft_mask` must be 'ignore', 'feature' or 'drop', got {soft_mask!r}.")
    paths = path_list(paths)
    lookup = Lookup.from_tokenizer(tokenizer)
    rc_table = None
    if reverse_complement:
        rc_table = reverse_complement_table(tokenizer)[: int(lookup.table.max()) + 1].astype(lookup.dtype)
    files: dict[str, FileIndex] = {}
    records: list[tuple[str, int, str, int]] = []
    kept = short = short_bases = total_bases = 0
    for path in paths:
        if path not in files:
            index = scan_fasta(path, lookup, cutter)
            files[path] = index
            warn_duplicate_names(path, [record.name for record in index.records])
            dropped = sum(record.n_rich_windows for record in index.records)
            windows = sum(cutter.count(record.length) for record in index.records)
            if dropped:
                logger.warning(
                    "Dropped %d windows with more than %.0f%% N from %r (%d windows kept).",
                    dropped,
                    100 * max_n_fraction,
                    path,
                    windows - dropped,
                )
        index = files[path]
        for record_index, record in enumerate(index.records):
            records.append((path, record_index, record.name, record.length))
            total_bases += record.length
            if record.length < window_length:
                short += 1
                short_bases += record.length
            kept += cutter.count(record.length) - record.n_rich_windows
    if short:
        logger.warning(
            "Skipped %d of %d records shorter than window_length=%d: %s are never used. Use a smaller window_length "
            "to train on them.",
            short,
            len(records),
            window_length,
            bases_share(short_bases, total_bases),
        )
    if not kept:
        raise GenomeDataError(
            f"No window of {window_length} bases could be cut from {paths}: {short} of {len(records)} records too "
            f"short, every other window over max_n_fraction={max_n_fraction}."
        )
    shards = _plan(records, cutter, windows_per_shard)
    logger.info("Streaming %d windows in %d shards from %d files.", kept, len(shards), len(files))
    return IterableDataset.from_generator(
        _WindowGenerator(files, lookup, cutter, rc_table, soft_mask),
        features=window_features(lookup.dtype, soft_mask=soft_mask == "feature"),
        gen_kwargs={"shards": shards},
    )
