"""Genome data: FASTA / FASTA.gz, CSV and Hub datasets turned into fixed-length windows of token ids.

Everything here produces 🤗 `datasets` objects with an `input_ids` column (token ids of the DNA tokenizer, stored as
`uint8` when the tokenizer's base ids fit, so a window costs one byte per base) and provenance columns (`record`,
`start`, `end`, `strand`) so every window can be traced back to its source.

FASTA files may use `\\n`, `\\r\\n` or old-Mac `\\r` line endings, start with a UTF-8 byte-order mark, hold blank lines
and be gzipped. Bad input fails early with an error naming the file, the record (or line) and the 1-based position of
the problem.
"""

from __future__ import annotations

import csv
import gzip
import logging
import os
import zlib
from collections import Counter, deque
from dataclasses import dataclass, field
from importlib import resources
from typing import BinaryIO, Iterable, Iterator, Literal, Optional, Sequence, Union

import numpy as np
import pyarrow as pa
from datasets import Dataset, DatasetDict, DatasetInfo, Features, IterableDataset, Sequence as SequenceFeature, Value
from datasets.fingerprint import generate_random_fingerprint
from datasets.table import InMemoryTable
from numpy.lib.stride_tricks import sliding_window_view

from .tokenizer import dna_lookup_table


logger = logging.getLogger(__name__)

PathLike = Union[str, os.PathLike]
#: Letters that occur in protein sequences but are neither bases nor IUPAC codes; used to give a better error.
_PROTEIN_ONLY_LETTERS = set("EFILPQZJO*")
_FASTA_SUFFIXES = (".fa", ".fna", ".fasta", ".fas", ".ffn", ".frn", ".fa.gz", ".fna.gz", ".fasta.gz", ".fas.gz")
_UTF8_BOM = b"\xef\xbb\xbf"
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")
_WHITESPACE = b" \t\r\n\v\f"
#: Bytes read from a file at a time.
_READ_BLOCK = 1 << 20
#: Bases validated at a time while indexing a file for streaming.
_SCAN_BLOCK = 1 << 20
#: The streaming index remembers the byte offset of every `_CHECKPOINT_BASES`-th base of a record, so any window is
#: read with one seek and at most this many extra bases.
_CHECKPOINT_BASES = 1 << 13
#: Token ids per Arrow chunk when building window datasets (keeps list offsets far below 2**31).
_ARROW_CHUNK_VALUES = 1 << 24


class GenomeDataError(ValueError):
    """Raised for unusable genome or sequence input; the message names the file, record and position."""


def default_genome_path() -> str:
    """Path of the small real genome shipped with the package (3 bacterial contigs, 317 kbp, gzipped FASTA)."""
    return str(resources.files("birdie_hf") / "genomes" / "bacterial_contigs.fna.gz")


@dataclass
class FastaRecord:
    """One FASTA record.

    Attributes:
        name (`str`): the record id (first word of the header line).
        sequence (`bytes`): the raw sequence with line breaks removed, case preserved.
        source (`str`): the file it came from.
    """

    name: str
    sequence: bytes
    source: str


def _check_file(path: str) -> None:
    if not os.path.exists(path):
        raise FileNotFoundError(f"FASTA file not found: {path!r}.")
    if os.path.isdir(path):
        raise GenomeDataError(f"{path!r} is a directory, expected a FASTA or FASTA.gz file.")


def _is_gzipped(path: str) -> bool:
    with open(path, "rb") as handle:
        return handle.read(2) == b"\x1f\x8b"


def _open_binary(path: str) -> BinaryIO:
    """Open a plain or gzipped file for binary reading (gzip detected from its magic bytes, not its name)."""
    _check_file(path)
    return gzip.open(path, "rb") if _is_gzipped(path) else open(path, "rb")


def _corrupt_gzip_error(path: str, error: Exception) -> GenomeDataError:
    return GenomeDataError(f"{path!r} is a corrupt or truncated gzip file ({error}).")


def _read_blocks(path: str) -> Iterator[bytes]:
    handle = _open_binary(path)
    try:
        with handle:
            while True:
                block = handle.read(_READ_BLOCK)
                if not block:
                    return
                yield block
    except (EOFError, gzip.BadGzipFile, zlib.error) as error:
        raise _corrupt_gzip_error(path, error) from error


def _iter_raw_lines(path: str) -> Iterator[bytes]:
    """The lines of a (gzipped) file with their terminators; `\\n`, `\\r\\n` and a lone `\\r` all end a line.

    The file is read in blocks; a line is joined once however many blocks it spans (single-line genomes stay linear).
    """
    pending: list[bytes] = []
    pending_cr = False  # `pending` ends with "\r": a "\n" opening the next block still belongs to it
    for block in _read_blocks(path):
        if pending_cr:
            if block.startswith(b"\n"):
                pending.append(b"\n")
                block = block[1:]
            yield b"".join(pending)
            pending, pending_cr = [], False
        lines = block.splitlines(keepends=True)
        for i, piece in enumerate(lines):
            if piece.endswith(b"\n") or (piece.endswith(b"\r") and i < len(lines) - 1):
                if pending:
                    pending.append(piece)
                    yield b"".join(pending)
                    pending = []
                else:
                    yield piece
            else:  # the block's last piece: no terminator yet, or a "\r" whose "\n" may open the next block
                pending.append(piece)
                pending_cr = piece.endswith(b"\r")
    if pending:
        yield b"".join(pending)


def _record_name(header: bytes, path: str, line_number: int) -> str:
    text = header[1:].decode("utf-8", errors="replace").strip()
    if not text:
        raise GenomeDataError(
            f"Empty FASTA header on line {line_number} of {path!r}: every record needs a name after '>'."
        )
    return text.split()[0]


def _fasta_lines(path: str) -> Iterator[tuple[int, int, bytes, Optional[str]]]:
    """The non-blank lines of a FASTA file as `(line number, byte offset of the content, content, record name)`.

    `content` is the line without surrounding whitespace; `record name` is set on header lines and `None` on sequence
    lines. For gzipped files the offset counts decompressed bytes. Everything that every reader must check is checked
    here, so all readers agree: a UTF-8 byte-order mark is dropped, and a UTF-16 or binary file, text before the first
    header, an empty header or a file without records raise [`GenomeDataError`] naming the file and line.
    """
    offset = 0
    seen_header = False
    for line_number, line in enumerate(_iter_raw_lines(path), start=1):
        line_offset = offset
        offset += len(line)
        if line_number == 1:
            if line.startswith(_UTF16_BOMS):
                raise GenomeDataError(f"{path!r} is UTF-16 encoded; save it as plain ASCII (or UTF-8) FASTA.")
            if line.startswith(_UTF8_BOM):
                line, line_offset = line[len(_UTF8_BOM) :], line_offset + len(_UTF8_BOM)
        if b"\x00" in line:
            raise GenomeDataError(f"{path!r} looks like a binary file (NUL byte on line {line_number}), not FASTA.")
        content = line.strip()
        if not content:
            continue
        if content.startswith(b">"):
            seen_header = True
            yield line_number, line_offset, content, _record_name(content, path, line_number)
        elif not seen_header:
            preview = content[:20].decode("utf-8", errors="replace")
            raise GenomeDataError(
                f"{path!r} is not a FASTA file: line {line_number} ({preview!r}) comes before any '>' header line."
            )
        else:
            yield line_number, line_offset + len(line) - len(line.lstrip()), content, None
    if not seen_header:
        raise GenomeDataError(f"{path!r} is empty: it holds no FASTA records.")


def _empty_record_error(path: str, name: str, line_number: int) -> GenomeDataError:
    return GenomeDataError(f"Record {name!r} (header on line {line_number}) in {path!r} has an empty sequence.")


def iter_fasta(path: PathLike) -> Iterator[FastaRecord]:
    """Yield the records of a FASTA or gzipped FASTA file, one at a time (memory: one record).

    `\\n`, `\\r\\n` and `\\r` line endings, a UTF-8 byte-order mark and blank lines are accepted. Sequence characters
    are validated later, per record, by [`tokenize_record`]. Records with the same name are all yielded, in file
    order.

    Raises:
        `FileNotFoundError`: the file does not exist.
        [`GenomeDataError`]: the file is not FASTA (no header line first), is binary or UTF-16, corrupt gzip, has no
            records, has a header without a name, or has a record with an empty sequence (naming the file and line).
    """
    path = os.fspath(path)
    name: Optional[str] = None
    header_line = 0
    sequence = bytearray()
    for line_number, _, content, header in _fasta_lines(path):
        if header is None:
            sequence += content
            continue
        record = _finish_record(path, name, header_line, sequence) if name is not None else None
        name, header_line, sequence = header, line_number, bytearray()  # free the buffer before handing out the record
        if record is not None:
            yield record
    if name is not None:
        record = _finish_record(path, name, header_line, sequence)
        del sequence
        yield record


def _finish_record(path: str, name: str, line_number: int, sequence: bytearray) -> FastaRecord:
    if not sequence:
        raise _empty_record_error(path, name, line_number)
    return FastaRecord(name=name, sequence=bytes(sequence), source=path)


def _warn_duplicate_names(path: str, names: Sequence[str]) -> None:
    repeated = {name: count for name, count in Counter(names).items() if count > 1}
    if repeated:
        shown = ", ".join(f"{name!r} x{count}" for name, count in list(repeated.items())[:5])
        logger.warning(
            "%r has %d record names used more than once (%s%s). All those records are used, but the `record` column "
            "cannot tell their windows apart: give the records unique names to trace windows back.",
            path, len(repeated), shown, ", ..." if len(repeated) > 5 else "",
        )


def _invalid_character_error(
    raw: np.ndarray, bad: np.ndarray, *, source: str, record: str, offset: int = 0, scope: str = "in this record"
) -> GenomeDataError:
    position = int(bad[0])
    byte = int(raw[position])
    shown = repr(chr(byte)) if byte < 128 else f"byte 0x{byte:02x} (non-ASCII)"
    letters = {chr(c).upper() for c in np.unique(raw[bad])}
    hint = ""
    if letters & _PROTEIN_ONLY_LETTERS:
        hint = " This looks like a protein sequence; birdie_hf needs nucleotide (DNA) FASTA."
    elif byte == ord("-"):
        hint = " Alignment gaps are not allowed: remove '-' characters first."
    return GenomeDataError(
        f"Invalid character {shown} at position {offset + position + 1} of record {record!r} in {source!r} "
        f"({bad.size} invalid characters {scope}; allowed: A, C, G, T, N, IUPAC codes, any case).{hint}"
    )


def tokenize_record(
    sequence: bytes, table: np.ndarray, *, source: str, record: str, dtype: Optional[np.dtype] = None
) -> np.ndarray:
    """Map a DNA byte string to token ids with `table` (see [`dna_lookup_table`]), rejecting bad characters.

    Args:
        dtype (`np.dtype`, *optional*):
            The dtype of the returned ids; defaults to the table's (`int64`). A compact dtype such as `uint8` saves
            memory on whole chromosomes.

    Raises:
        [`GenomeDataError`]: naming `source`, `record`, the first bad character and its 1-based position.
    """
    raw = np.frombuffer(sequence, dtype=np.uint8)
    bad = np.flatnonzero((table < 0)[raw])
    if bad.size:
        raise _invalid_character_error(raw, bad, source=source, record=record)
    return (table if dtype is None else table.astype(dtype))[raw]


def _token_dtype(max_id: int) -> np.dtype:
    """The smallest unsigned dtype that holds every base id (uint8 for the birdie_hf tokenizer)."""
    for dtype in (np.uint8, np.uint16):
        if max_id <= np.iinfo(dtype).max:
            return np.dtype(dtype)
    return np.dtype(np.int32)


@dataclass(frozen=True)
class _Lookup:
    """The tokenizer's byte -> id table in the forms the window cutters need (all 256 entries long)."""

    table: np.ndarray  # int64 ids, -1 for bytes that are not DNA
    ids: np.ndarray  # the same ids in `dtype` (0 for bytes that are not DNA)
    invalid: np.ndarray  # True for bytes that are not DNA
    is_n: np.ndarray  # True for bytes that map to the `N` id
    n_id: int
    dtype: np.dtype

    @classmethod
    def from_tokenizer(cls, tokenizer) -> "_Lookup":
        table = dna_lookup_table(tokenizer)
        n_id = tokenizer.convert_tokens_to_ids("N")
        dtype = _token_dtype(int(table.max()))
        invalid = table < 0
        return cls(table, np.where(invalid, 0, table).astype(dtype), invalid, table == n_id, n_id, dtype)


_COMPLEMENT = {"A": "T", "C": "G", "G": "C", "T": "A", "N": "N"}


def reverse_complement_table(tokenizer) -> np.ndarray:
    """An id -> id table that complements base ids and leaves every other id unchanged."""
    vocab = tokenizer.get_vocab()
    table = np.arange(len(tokenizer), dtype=np.int64)
    for base, partner in _COMPLEMENT.items():
        table[vocab[base]] = vocab[partner]
    return table


def _soft_mask_segments(sequence: bytes) -> list[tuple[int, int]]:
    """Half-open [start, end) runs of upper-case (not soft-masked) bases."""
    upper = np.frombuffer(sequence, dtype=np.uint8) < ord("a")
    edges = np.flatnonzero(np.diff(np.concatenate([[False], upper, [False]]).astype(np.int8)))
    return list(zip(edges[0::2].tolist(), edges[1::2].tolist()))


def _check_positive_int(name: str, value) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"`{name}` must be a positive integer, got {value!r}.")


def _check_window_arguments(window_length, stride) -> int:
    """Validate `window_length` and `stride`; returns the stride (`window_length` when `None`)."""
    _check_positive_int("window_length", window_length)
    stride = window_length if stride is None else stride
    _check_positive_int("stride", stride)
    return int(stride)


def _check_fraction(name: str, value, *, upper_inclusive: bool = True) -> None:
    ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
    ok = ok and 0.0 <= value and (value <= 1.0 if upper_inclusive else value < 1.0)
    if not ok:
        raise ValueError(f"`{name}` must be in [0, 1{']' if upper_inclusive else ')'}, got {value!r}.")


def _path_list(paths: Union[PathLike, Sequence[PathLike], None]) -> list[str]:
    if paths is None:
        return [default_genome_path()]
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    paths = [os.fspath(p) for p in paths]
    if not paths:
        raise ValueError("`paths` is empty: give at least one FASTA file.")
    return paths


def _windows(length: int, window_length: int, stride: int, lo: int = 0, hi: Optional[int] = None) -> range:
    hi = length if hi is None else hi
    return range(lo, hi - window_length + 1, stride)


@dataclass
class _WindowPart:
    """Consecutive windows of one record: `input_ids` has shape `(num_windows, window_length)`. With
    `reverse_complement`, rows alternate between a window (`+`) and its reverse complement (`-`)."""

    record: str
    starts: np.ndarray
    input_ids: np.ndarray
    soft_mask: Optional[np.ndarray] = None
    reverse_complement: bool = False

    def with_reverse_complement(self, rc_table: np.ndarray) -> "_WindowPart":
        width = self.input_ids.shape[1]
        ids = np.stack([self.input_ids, rc_table[self.input_ids[:, ::-1]]], axis=1).reshape(-1, width)
        mask = None
        if self.soft_mask is not None:
            mask = np.stack([self.soft_mask, self.soft_mask[:, ::-1]], axis=1).reshape(-1, width)
        return _WindowPart(self.record, np.repeat(self.starts, 2), ids, mask, reverse_complement=True)


def _window_features(dtype: np.dtype, soft_mask: bool = False) -> Features:
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


def _window_chunks(parts: list[_WindowPart], width: int) -> Iterator[list[tuple[_WindowPart, int, int]]]:
    """Group `(part, first row, last row)` slices into chunks of about `_ARROW_CHUNK_VALUES` token ids.

    Empties `parts` and lets go of each part once its chunk is out, so the windows are not held twice.
    """
    max_rows = max(2, _ARROW_CHUNK_VALUES // width // 2 * 2)  # even: a window and its reverse complement stay together
    queue = deque(parts)
    parts.clear()
    group: list[tuple[_WindowPart, int, int]] = []
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


def _windows_dataset(parts: list[_WindowPart], features: Features) -> Dataset:
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
    return Dataset(InMemoryTable(table), info=DatasetInfo(features=features), fingerprint=generate_random_fingerprint())


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

    Raises:
        [`GenomeDataError`]: bad files or records (see [`iter_fasta`] and [`tokenize_record`]), bad arguments, or no
        window left at all. Records shorter than a window are skipped with a warning that counts them; records sharing
        a name are all used, with a warning.
    """
    stride = _check_window_arguments(window_length, stride)
    _check_fraction("validation_fraction", validation_fraction, upper_inclusive=False)
    if split_by not in ("position", "record"):
        raise ValueError(f"`split_by` must be 'position' or 'record', got {split_by!r}.")
    if soft_mask not in ("ignore", "feature", "drop"):
        raise ValueError(f"`soft_mask` must be 'ignore', 'feature' or 'drop', got {soft_mask!r}.")
    _check_fraction("max_n_fraction", max_n_fraction)
    paths = _path_list(paths)

    lookup = _Lookup.from_tokenizer(tokenizer)
    max_n = max_n_fraction * window_length
    # (split, record index, windows); split is None with split_by="record", decided once all lengths are known.
    parts: list[tuple[Optional[str], int, _WindowPart]] = []
    names: list[str] = []
    lengths: list[int] = []
    short_records = n_rich_windows = 0

    for path in paths:
        file_names: list[str] = []
        file_dropped = file_kept = 0
        for record in iter_fasta(path):
            record_index = len(names)
            names.append(record.name)
            file_names.append(record.name)
            lengths.append(len(record.sequence))
            ids = tokenize_record(record.sequence, lookup.table, source=path, record=record.name, dtype=lookup.dtype)
            lowercase = None
            if soft_mask == "feature":
                lowercase = (np.frombuffer(record.sequence, dtype=np.uint8) >= ord("a")).view(np.uint8)
            segments = _soft_mask_segments(record.sequence) if soft_mask == "drop" else [(0, len(ids))]
            usable = [(lo, hi) for lo, hi in segments if hi - lo >= window_length]
            if not usable:
                short_records += 1
                continue
            for lo, hi in usable:
                length = hi - lo
                if split_by == "record":
                    spans = [(None, 0, length)]
                else:
                    boundary = length - int(round(validation_fraction * length))
                    spans = [("train", 0, boundary), ("validation", boundary, length)]
                for split, span_lo, span_hi in spans:
                    starts = np.arange(span_lo, span_hi - window_length + 1, stride, dtype=np.int64)
                    if not starts.size:
                        continue
                    windows = sliding_window_view(ids[lo:hi], window_length)[starts]
                    keep = np.count_nonzero(windows == lookup.n_id, axis=1) <= max_n
                    file_dropped += int(starts.size - np.count_nonzero(keep))
                    if not keep.all():
                        windows, starts = windows[keep], starts[keep]
                    if not starts.size:
                        continue
                    file_kept += int(starts.size)
                    mask = None if lowercase is None else sliding_window_view(lowercase[lo:hi], window_length)[starts]
                    parts.append((split, record_index, _WindowPart(record.name, starts + lo, windows, mask)))
            del record, ids, lowercase
        _warn_duplicate_names(path, file_names)
        if file_dropped:
            logger.warning(
                "Dropped %d windows with more than %.0f%% N from %r (%d windows kept).",
                file_dropped, 100 * max_n_fraction, path, file_kept,
            )
        n_rich_windows += file_dropped

    validation_records: set[int] = set()
    if split_by == "record" and validation_fraction > 0:
        if len(names) < 2:
            raise GenomeDataError(
                "`split_by='record'` needs at least two records to hold one out; use `split_by='position'`."
            )
        budget = validation_fraction * sum(lengths)
        held = 0
        # Greedy in a seeded random order: a record goes to validation while it fits in the budget.
        for index in np.random.default_rng(seed).permutation(len(names)).tolist():
            if held + lengths[index] <= budget and len(validation_records) < len(names) - 1:
                validation_records.add(index)
                held += lengths[index]
        if not validation_records:
            smallest = int(np.argmin(lengths))
            validation_records.add(smallest)
            logger.warning(
                "No record fits in validation_fraction=%.3f; holding out the smallest record %r (%.1f%% of bases).",
                validation_fraction, names[smallest], 100 * lengths[smallest] / sum(lengths),
            )

    if short_records:
        logger.warning(
            "Skipped %d of %d records (or soft-mask-free segments) shorter than window_length=%d.",
            short_records, len(names), window_length,
        )
    rc_table = None
    if reverse_complement:
        rc_table = reverse_complement_table(tokenizer)[: int(lookup.table.max()) + 1].astype(lookup.dtype)
    by_split: dict[str, list[_WindowPart]] = {"train": [], "validation": []}
    for split, record_index, part in parts:
        if split is None:
            split = "validation" if record_index in validation_records else "train"
        by_split[split].append(part.with_reverse_complement(rc_table) if rc_table is not None and split == "train"
                               else part)
    del parts
    if not by_split["train"]:
        what = "upper-case (non soft-masked) " if soft_mask == "drop" else ""
        raise GenomeDataError(
            f"No training window of {window_length} {what}bases could be cut from {paths}: "
            f"{short_records} records too short, {n_rich_windows} windows over max_n_fraction. "
            "Lower `window_length`, `validation_fraction` or raise `max_n_fraction`."
        )

    features = _window_features(lookup.dtype, soft_mask=soft_mask == "feature")
    splits = {}
    for split in ("train", "validation"):
        splits[split] = _windows_dataset(by_split[split], features)
        by_split[split] = []
    logger.info("Genome windows: %d train, %d validation.", len(splits["train"]), len(splits["validation"]))
    return DatasetDict(splits)


@dataclass
class _RecordIndex:
    """Where one record lives in its file.

    `checkpoints` holds `(base position, byte offset)` rows: one at the first base and one every `_CHECKPOINT_BASES`
    bases, so any base range is read with one seek. `dropped` holds the sorted indices of the record's windows that
    have too many `N` (filled when the index was built for streaming).
    """

    name: str
    line_number: int
    length: int
    checkpoints: np.ndarray
    dropped: np.ndarray


@dataclass
class _FileIndex:
    """The records of one FASTA file, in file order, and the file's size and modification time when indexed."""

    path: str
    size: int
    mtime_ns: int
    records: list[_RecordIndex]


@dataclass
class _NRichWindows:
    """Finds, block by block, the windows of a record (starts `0, stride, 2 * stride, ...`) that hold more than
    `max_n` `N`, keeping only the `N` flags of the windows not yet complete (at most `window_length` of them)."""

    window_length: int
    stride: int
    max_n: float
    flags: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))
    flags_start: int = 0
    seen: int = 0
    dropped: list[np.ndarray] = field(default_factory=list)

    def feed(self, is_n: np.ndarray) -> None:
        length, stride = self.window_length, self.stride
        flags = np.concatenate([self.flags, is_n]) if self.flags.size else is_n
        origin, begin, end = self.flags_start, self.seen, self.seen + is_n.size
        first = max(0, -(-(begin - length + 1) // stride))  # the windows that end in (begin, end]
        last = (end - length) // stride
        if last >= first:
            k = np.arange(first, last + 1, dtype=np.int64)
            cumulative = np.zeros(flags.size + 1, dtype=np.int64)
            np.cumsum(flags, out=cumulative[1:])
            counts = cumulative[k * stride + length - origin] - cumulative[k * stride - origin]
            self.dropped.append(k[counts > self.max_n])
        keep_from = min(max(0, (end - length) // stride + 1) * stride, end)
        self.flags = flags[keep_from - origin :].copy()
        self.flags_start, self.seen = keep_from, end

    def result(self) -> np.ndarray:
        return np.concatenate(self.dropped) if self.dropped else np.zeros(0, dtype=np.int64)


class _RecordScanner:
    """Indexes one record line by line; with a lookup it also validates the bases (and finds N-rich windows) in blocks
    of `_SCAN_BLOCK` bases, so a whole chromosome is never held in memory."""

    def __init__(
        self, path: str, name: str, line_number: int, lookup: Optional[_Lookup], n_rich: Optional[_NRichWindows]
    ):
        self.path, self.name, self.line_number = path, name, line_number
        self.lookup, self.n_rich = lookup, n_rich
        self.length = 0
        self.checkpoints: list[tuple[int, int]] = []
        self.next_checkpoint = 0
        self.pending: list[bytes] = []
        self.pending_bases = 0
        self.checked = 0

    def add_line(self, content: bytes, offset: int) -> None:
        end = self.length + len(content)
        while self.next_checkpoint < end:
            self.checkpoints.append((self.next_checkpoint, offset + self.next_checkpoint - self.length))
            self.next_checkpoint += _CHECKPOINT_BASES
        self.length = end
        if self.lookup is not None:
            self.pending.append(content)
            self.pending_bases += len(content)
            if self.pending_bases >= _SCAN_BLOCK:
                self._check_pending()

    def _check_pending(self) -> None:
        block = b"".join(self.pending)
        self.pending, self.pending_bases = [], 0
        for lo in range(0, len(block), _SCAN_BLOCK):
            raw = np.frombuffer(block, dtype=np.uint8, count=min(_SCAN_BLOCK, len(block) - lo), offset=lo)
            bad = np.flatnonzero(self.lookup.invalid[raw])
            if bad.size:
                scope = f"in bases {self.checked + 1}-{self.checked + raw.size} of this record"
                raise _invalid_character_error(
                    raw, bad, source=self.path, record=self.name, offset=self.checked, scope=scope
                )
            if self.n_rich is not None:
                self.n_rich.feed(self.lookup.is_n[raw])
            self.checked += raw.size

    def finish(self) -> _RecordIndex:
        if not self.length:
            raise _empty_record_error(self.path, self.name, self.line_number)
        if self.pending:
            self._check_pending()
        dropped = self.n_rich.result() if self.n_rich is not None else np.zeros(0, dtype=np.int64)
        checkpoints = np.asarray(self.checkpoints, dtype=np.int64).reshape(-1, 2)
        return _RecordIndex(self.name, self.line_number, self.length, checkpoints, dropped)


def _scan_fasta(
    path: str,
    lookup: Optional[_Lookup] = None,
    window_length: Optional[int] = None,
    stride: Optional[int] = None,
    max_n_fraction: float = 1.0,
) -> _FileIndex:
    """Index a FASTA file in one streaming pass (memory: one line and one block of bases).

    With `lookup`, every base is validated (the error names the file, record, character and 1-based position); with
    `window_length` and `stride` too, the windows with more than `max_n_fraction` `N` are found.
    """
    _check_file(path)
    stat = os.stat(path)
    records: list[_RecordIndex] = []
    scanner: Optional[_RecordScanner] = None
    for line_number, offset, content, name in _fasta_lines(path):
        if name is None:
            scanner.add_line(content, offset)
            continue
        if scanner is not None:
            records.append(scanner.finish())
        n_rich = None
        if lookup is not None and window_length is not None:
            n_rich = _NRichWindows(window_length, stride, max_n_fraction * window_length)
        scanner = _RecordScanner(path, name, line_number, lookup, n_rich)
    records.append(scanner.finish())  # `_fasta_lines` raises for a file without any header
    return _FileIndex(path, stat.st_size, stat.st_mtime_ns, records)


def _fai_problem(path: str, entries: list[tuple[str, int, int, int, int]]) -> Optional[str]:
    """Why a samtools `.fai` index does not describe `path`, or `None` when it does.

    Checks, for every record, that exactly one header line naming it lies between the end of the previous record
    (computed from the index) and the record's sequence offset, and that only whitespace follows the last record.
    """
    size = os.path.getsize(path)
    previous_end = 0
    with open(path, "rb") as handle:
        for number, (name, length, offset, line_bases, line_width) in enumerate(entries, start=1):
            if length < 1 or line_bases < 1 or line_width < line_bases or not previous_end <= offset <= size:
                return f"line {number} (record {name!r}) holds impossible values"
            if offset - previous_end > _READ_BLOCK:
                return f"more than {_READ_BLOCK} bytes lie before the sequence of record {name!r}"
            handle.seek(previous_end)
            gap = handle.read(offset - previous_end)
            if previous_end == 0 and gap.startswith(_UTF8_BOM):
                gap = gap[len(_UTF8_BOM) :]
            gap = gap.strip()
            if not gap.startswith(b">") or b"\n" in gap or b"\r" in gap or gap[1:].split()[:1] != [name.encode()]:
                return f"record {name!r} is not where the index says (the file changed since it was indexed)"
            previous_end = offset + (length // line_bases) * line_width + length % line_bases
            if previous_end > size:
                return f"record {name!r} would end past the end of the file"
        handle.seek(previous_end)
        if handle.read(_READ_BLOCK).strip():
            return "the file holds more sequence than the index describes"
    return None


def _read_fai(path: str) -> Optional[list[tuple[str, int]]]:
    """Names and lengths from a samtools `.fai` beside `path`, or `None` (after a warning saying why) when there is
    none, when `path` is gzipped, or when the index is older than the file or does not match it."""
    fai = path + ".fai"
    if not os.path.exists(fai) or _is_gzipped(path):
        return None
    if os.stat(fai).st_mtime_ns < os.stat(path).st_mtime_ns:
        problem = "it is older than the FASTA file"
    else:
        try:
            with open(fai, encoding="utf-8") as handle:
                rows = [line.rstrip("\r\n").split("\t") for line in handle if line.strip()]
            entries = [(row[0], int(row[1]), int(row[2]), int(row[3]), int(row[4])) for row in rows]
        except (ValueError, IndexError, UnicodeDecodeError):
            problem = "it is not a valid samtools index (5 tab-separated columns per line)"
        else:
            problem = _fai_problem(path, entries) if entries else "it is empty"
    if problem is None:
        return [(name, length) for name, length, *_ in entries]
    logger.warning(
        "Ignoring the stale index %r: %s. Reading %r instead; run `samtools faidx %s` to rebuild the index.",
        fai, problem, path, path,
    )
    return None


def index_fasta(path: PathLike) -> list[tuple[str, int]]:
    """`(record name, sequence length)` of every record, in file order.

    Uses a samtools `.fai` index beside the file when it is newer than the file and matches it (each record's header
    is checked at the offset the index gives); otherwise, with a warning for a stale index, the file is read in one
    streaming pass (one line in memory at a time). Raises like [`iter_fasta`] for a file that is not valid FASTA.
    """
    path = os.fspath(path)
    _check_file(path)
    from_fai = _read_fai(path)
    if from_fai is not None:
        return from_fai
    return [(record.name, record.length) for record in _scan_fasta(path).records]


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
    records: Iterable[tuple[str, int, str, int]], window_length: int, stride: int, windows_per_shard: int
) -> list[WindowShard]:
    shards = []
    for path, record_index, name, length in records:
        count = len(_windows(length, window_length, stride))
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
    stride = _check_window_arguments(window_length, stride)
    _check_positive_int("windows_per_shard", windows_per_shard)
    records = (
        (os.fspath(path), index, name, length)
        for path in paths
        for index, (name, length) in enumerate(index_fasta(path))
    )
    return _plan(records, window_length, stride, windows_per_shard)


class _SpanReader:
    """Reads base ranges of the records of one indexed FASTA file, one seek each.

    The file stays open between calls, so a pass over the windows reads the file once (a gzipped file is decompressed
    once while the ranges come in file order; a range before the current position rewinds it). The handle is not
    pickled and is reopened in a forked DataLoader worker, so processes never share a file position.
    """

    def __init__(self, index: _FileIndex):
        self.index = index
        self._handle: Optional[BinaryIO] = None
        self._pid: Optional[int] = None

    def __getstate__(self) -> dict:
        return {"index": self.index, "_handle": None, "_pid": None}

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
            self._handle, self._pid = _open_binary(path), os.getpid()
        return self._handle

    def read(self, record_index: int, start: int, end: int) -> bytes:
        """Bases `[start, end)` of record `record_index` (0-based, `end <= length`), line breaks removed."""
        record = self.index.records[record_index]
        row = int(np.searchsorted(record.checkpoints[:, 0], start, side="right")) - 1
        base, byte = (int(v) for v in record.checkpoints[row])
        handle = self._file()
        needed = end - base
        pieces: list[bytes] = []
        have = 0
        try:
            handle.seek(byte)
            while have < needed:
                missing = needed - have
                chunk = handle.read(missing + missing // 16 + 2)  # room for the line breaks
                if not chunk:
                    raise GenomeDataError(
                        f"{self.index.path!r} ended inside record {record.name!r}: it changed after it was indexed."
                    )
                chunk = chunk.translate(None, _WHITESPACE)
                pieces.append(chunk)
                have += len(chunk)
        except (EOFError, gzip.BadGzipFile, zlib.error) as error:
            raise _corrupt_gzip_error(self.index.path, error) from error
        return b"".join(pieces)[start - base : end - base]


class _WindowGenerator:
    """The generator behind [`stream_genome_windows`]: yields the windows of a list of shards."""

    def __init__(self, files: dict[str, _FileIndex], lookup: _Lookup, window_length: int, stride: int):
        self.readers = {path: _SpanReader(index) for path, index in files.items()}
        self.lookup, self.window_length, self.stride = lookup, window_length, stride

    def __call__(self, shards: list[WindowShard]) -> Iterator[dict]:
        length, stride = self.window_length, self.stride
        for shard in shards:
            reader = self.readers[shard.path]
            record = reader.index.records[shard.record_index]
            lo = shard.first * stride
            raw = np.frombuffer(reader.read(shard.record_index, lo, (shard.last - 1) * stride + length), np.uint8)
            bad = np.flatnonzero(self.lookup.invalid[raw])
            if bad.size:  # validated when indexed: the file was rewritten in place since
                raise _invalid_character_error(raw, bad, source=shard.path, record=record.name, offset=lo,
                                               scope="in this shard; the file changed after it was indexed")
            ids = self.lookup.ids[raw]
            lo_drop, hi_drop = np.searchsorted(record.dropped, [shard.first, shard.last])
            skip = set(record.dropped[lo_drop:hi_drop].tolist())
            for index in range(shard.first, shard.last):
                if index in skip:
                    continue
                start = index * stride
                yield {"input_ids": ids[start - lo : start - lo + length].copy(), "record": record.name,
                       "start": start, "end": start + length, "strand": "+"}


def stream_genome_windows(
    paths: Union[PathLike, Sequence[PathLike]],
    tokenizer,
    *,
    window_length: int = 512,
    stride: Optional[int] = None,
    max_n_fraction: float = 0.1,
    windows_per_shard: int = 256,
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

    Returns:
        [`~datasets.IterableDataset`] with the columns of [`load_genome_windows`] (`input_ids` as compact `uint8`).

    Raises:
        `ValueError`: an argument out of range (naming it). [`GenomeDataError`]: a bad file or character (see
        [`iter_fasta`]), no window left, or a file changed on disk after it was indexed.
    """
    stride = _check_window_arguments(window_length, stride)
    _check_fraction("max_n_fraction", max_n_fraction)
    _check_positive_int("windows_per_shard", windows_per_shard)
    paths = _path_list(paths)
    lookup = _Lookup.from_tokenizer(tokenizer)
    files: dict[str, _FileIndex] = {}
    records: list[tuple[str, int, str, int]] = []
    kept = short = 0
    for path in paths:
        if path not in files:
            index = _scan_fasta(path, lookup, window_length, stride, max_n_fraction)
            files[path] = index
            _warn_duplicate_names(path, [record.name for record in index.records])
            dropped = sum(record.dropped.size for record in index.records)
            windows = sum(len(_windows(record.length, window_length, stride)) for record in index.records)
            if dropped:
                logger.warning(
                    "Dropped %d windows with more than %.0f%% N from %r (%d windows kept).",
                    dropped, 100 * max_n_fraction, path, windows - dropped,
                )
        index = files[path]
        for record_index, record in enumerate(index.records):
            records.append((path, record_index, record.name, record.length))
            short += record.length < window_length
            kept += len(_windows(record.length, window_length, stride)) - record.dropped.size
    if short:
        logger.warning("Skipped %d of %d records shorter than window_length=%d.", short, len(records), window_length)
    if not kept:
        raise GenomeDataError(
            f"No window of {window_length} bases could be cut from {paths}: {short} of {len(records)} records too "
            f"short, every other window over max_n_fraction={max_n_fraction}."
        )
    shards = _plan(records, window_length, stride, windows_per_shard)
    logger.info("Streaming %d windows in %d shards from %d files.", kept, len(shards), len(files))
    return IterableDataset.from_generator(
        _WindowGenerator(files, lookup, window_length, stride),
        features=_window_features(lookup.dtype),
        gen_kwargs={"shards": shards},
    )


def load_sequence_dataset(
    source: Union[PathLike, str],
    *,
    sequence_column: str = "sequence",
    label_column: Optional[str] = None,
    split: Optional[str] = None,
    revision: Optional[str] = None,
    **load_kwargs,
) -> Union[Dataset, DatasetDict]:
    """Load sequences (and optionally integer labels) from a local CSV/TSV file, a folder of split CSVs, or the Hub.

    This is the `sequence,label` layout of the Nucleotide Transformer and DNABERT-2 benchmarks.

    Args:
        source (`str`):
            A `.csv`/`.tsv` file, a folder holding `train.csv`, `dev.csv` (read as `validation`) and/or `test.csv`,
            or a Hub dataset id such as `InstaDeepAI/nucleotide_transformer_downstream_tasks_revised` (downloaded
            through `datasets.load_dataset`; pass e.g. `name=` for a task through `load_kwargs`).
        sequence_column (`str`, *optional*, defaults to `"sequence"`): the column holding DNA.
        label_column (`str`, *optional*): a column that must hold integer class labels; checked when given.
        split (`str`, *optional*): return only this split.

    Raises:
        [`GenomeDataError`]: a missing column (the message lists the columns found), a bad character in a sequence
        (naming the split and row), or a non-integer label (naming the split, row and value).
    """
    source = os.fspath(source)
    if os.path.isdir(source):
        files = {}
        for split_name, stem in (("train", "train"), ("validation", "dev"), ("validation", "validation"),
                                 ("test", "test")):
            for ext in ("csv", "tsv"):
                candidate = os.path.join(source, f"{stem}.{ext}")
                if os.path.exists(candidate) and split_name not in files:
                    files[split_name] = candidate
        if not files:
            raise FileNotFoundError(f"No train/dev/validation/test .csv or .tsv files found in folder {source!r}.")
        dataset = DatasetDict({name: _read_delimited(path) for name, path in files.items()})
    elif source.endswith((".csv", ".tsv")):
        if not os.path.exists(source):
            raise FileNotFoundError(f"CSV file not found: {source!r}.")
        dataset = DatasetDict({"train": _read_delimited(source)})
    elif os.path.exists(source):
        raise GenomeDataError(f"{source!r} is neither a .csv/.tsv file nor a folder of them.")
    else:
        from datasets import load_dataset

        dataset = load_dataset(source, revision=revision, **load_kwargs)
        if "dev" in dataset and "validation" not in dataset:
            dataset["validation"] = dataset.pop("dev")

    table = None
    for split_name, part in dataset.items():
        _check_columns(part, source, split_name, sequence_column, label_column)
        if table is None:
            from .tokenizer import build_dna_tokenizer

            table = dna_lookup_table(build_dna_tokenizer(num_sentinels=1))
        for row, sequence in enumerate(part[sequence_column]):
            if not sequence:
                raise GenomeDataError(f"Empty sequence in row {row + 1} of split {split_name!r} of {source!r}.")
            tokenize_record(sequence.encode(), table, source=source, record=f"{split_name} row {row + 1}")
        if label_column is not None:
            for row, label in enumerate(part[label_column]):
                if not _is_integer(label):
                    raise GenomeDataError(
                        f"Label {label!r} in row {row + 1} of split {split_name!r} of {source!r} is not an integer "
                        "class id."
                    )
            if part.features[label_column].dtype not in ("int64", "int32", "int16", "int8"):
                dataset[split_name] = part.cast_column(label_column, Value("int64"))
    if split is not None:
        if split not in dataset:
            raise KeyError(f"Split {split!r} not found in {source!r}; available: {sorted(dataset)}.")
        return dataset[split]
    return dataset


def _is_integer(value) -> bool:
    if isinstance(value, (bool, np.bool_)):
        return False
    if isinstance(value, (int, np.integer)):
        return True
    if isinstance(value, float):
        return value.is_integer()
    if isinstance(value, str):
        return value.strip().lstrip("-").isdigit()
    return False


def _read_delimited(path: str) -> Dataset:
    """Read a CSV/TSV with every column as text first (so bad labels are reported, not silently parsed)."""
    delimiter = "\t" if path.endswith(".tsv") else ","
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle, delimiter=delimiter)
        if reader.fieldnames is None:
            raise GenomeDataError(f"{path!r} is empty: expected a header row such as 'sequence,label'.")
        rows = list(reader)
    columns = {name.strip(): [row[name].strip() if row[name] is not None else "" for row in rows]
               for name in reader.fieldnames}
    return Dataset.from_dict(columns)


def _check_columns(part: Dataset, source: str, split: str, sequence_column: str, label_column: Optional[str]):
    for column in (sequence_column, label_column):
        if column is not None and column not in part.column_names:
            raise GenomeDataError(
                f"Split {split!r} of {source!r} has no {column!r} column; columns found: {part.column_names}."
            )


def windows_from_sequences(
    sequences: Iterable[tuple[str, str]],
    tokenizer,
    *,
    window_length: int,
    stride: Optional[int] = None,
    source: str = "<sequences>",
) -> Dataset:
    """Cut windows from `(name, sequence)` pairs, e.g. the rows of a CSV or Hub dataset used for pre-training.

    Windows are stored like those of [`load_genome_windows`] (compact `uint8` token ids). Sequences shorter than a
    window are skipped with a counted warning; if none is left this raises.

    Raises:
        `ValueError`: `window_length` or `stride` is not a positive integer. [`GenomeDataError`]: a bad character
        (naming `source`, the sequence and the position) or no window at all.
    """
    stride = _check_window_arguments(window_length, stride)
    lookup = _Lookup.from_tokenizer(tokenizer)
    parts: list[_WindowPart] = []
    short = total = 0
    for name, sequence in sequences:
        total += 1
        ids = tokenize_record(sequence.encode(), lookup.table, source=source, record=name, dtype=lookup.dtype)
        if len(ids) < window_length:
            short += 1
            continue
        starts = np.arange(0, len(ids) - window_length + 1, stride, dtype=np.int64)
        parts.append(_WindowPart(name, starts, sliding_window_view(ids, window_length)[starts]))
    if short:
        logger.warning("Skipped %d of %d sequences shorter than window_length=%d.", short, total, window_length)
    if not parts:
        raise GenomeDataError(f"No window of {window_length} bases could be cut from {source!r} ({total} sequences).")
    return _windows_dataset(parts, _window_features(lookup.dtype))


def is_fasta_path(path: str) -> bool:
    """Whether `path` has a FASTA-like suffix (`.fa`, `.fna`, `.fasta`, optionally `.gz`)."""
    return path.lower().endswith(_FASTA_SUFFIXES)
