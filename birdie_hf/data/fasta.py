"""FASTA reading and indexing: plain or gzipped files, records, token ids, and the byte offsets that let
[`stream_genome_windows`] read any window with one seek.

FASTA files may use `\\n`, `\\r\\n` or old-Mac `\\r` line endings, start with a UTF-8 byte-order mark, hold blank lines
and be gzipped. Bad input fails early with an error naming the file, the record (or line) and the 1-based position of
the problem.
"""

from __future__ import annotations

import gzip
import logging
import os
import zlib
from collections import Counter
from dataclasses import dataclass
from importlib import resources
from typing import TYPE_CHECKING, BinaryIO, Iterator, Optional, Sequence, Union

import numpy as np

from ..vocabulary import dna_lookup_table


if TYPE_CHECKING:
    from .windows import NRichWindowCounter, WindowCutter


logger = logging.getLogger(__name__)

PathLike = Union[str, os.PathLike]
#: Letters that occur in protein sequences but are neither bases nor IUPAC codes; used to give a better error.
_PROTEIN_ONLY_LETTERS = set("EFILPQZJO*")
_FASTA_SUFFIXES = (".fa", ".fna", ".fasta", ".fas", ".ffn", ".frn", ".fa.gz", ".fna.gz", ".fasta.gz", ".fas.gz")
_UTF8_BOM = b"\xef\xbb\xbf"
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")
WHITESPACE = b" \t\r\n\v\f"
#: Bytes read from a file at a time.
_READ_BLOCK = 1 << 20
#: Bases validated at a time while indexing a file for streaming.
_SCAN_BLOCK = 1 << 20
#: The streaming index remembers the byte offset of every `_CHECKPOINT_BASES`-th base of a record, so any window is
#: read with one seek and at most this many extra bases.
_CHECKPOINT_BASES = 1 << 13


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


def open_binary(path: str) -> BinaryIO:
    """Open a plain or gzipped file for binary reading (gzip detected from its magic bytes, not its name)."""
    _check_file(path)
    return gzip.open(path, "rb") if _is_gzipped(path) else open(path, "rb")


def corrupt_gzip_error(path: str, error: Exception) -> GenomeDataError:
    return GenomeDataError(f"{path!r} is a corrupt or truncated gzip file ({error}).")


def _read_blocks(path: str) -> Iterator[bytes]:
    handle = open_binary(path)
    try:
        with handle:
            while True:
                block = handle.read(_READ_BLOCK)
                if not block:
                    return
                yield block
    except (EOFError, gzip.BadGzipFile, zlib.error) as error:
        raise corrupt_gzip_error(path, error) from error


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


def warn_duplicate_names(path: str, names: Sequence[str]) -> None:
    repeated = {name: count for name, count in Counter(names).items() if count > 1}
    if repeated:
        shown = ", ".join(f"{name!r} x{count}" for name, count in list(repeated.items())[:5])
        logger.warning(
            "%r has %d record names used more than once (%s%s). All those records are used, but the `record` column "
            "cannot tell their windows apart: give the records unique names to trace windows back.",
            path,
            len(repeated),
            shown,
            ", ..." if len(repeated) > 5 else "",
        )


def invalid_character_error(
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
        raise invalid_character_error(raw, bad, source=source, record=record)
    return (table if dtype is None else table.astype(dtype))[raw]


def _token_dtype(max_id: int) -> np.dtype:
    """The smallest unsigned dtype that holds every base id (uint8 for the birdie_hf tokenizer)."""
    for dtype in (np.uint8, np.uint16):
        if max_id <= np.iinfo(dtype).max:
            return np.dtype(dtype)
    return np.dtype(np.int32)


@dataclass(frozen=True)
class Lookup:
    """The tokenizer's byte -> id table in the forms the window cutters need (all 256 entries long)."""

    table: np.ndarray  # int64 ids, -1 for bytes that are not DNA
    ids: np.ndarray  # the same ids in `dtype` (0 for bytes that are not DNA)
    invalid: np.ndarray  # True for bytes that are not DNA
    is_n: np.ndarray  # True for bytes that map to the `N` id
    n_id: int
    dtype: np.dtype

    @classmethod
    def from_tokenizer(cls, tokenizer) -> "Lookup":
        table = dna_lookup_table(tokenizer)
        n_id = tokenizer.convert_tokens_to_ids("N")
        dtype = _token_dtype(int(table.max()))
        invalid = table < 0
        return cls(table, np.where(invalid, 0, table).astype(dtype), invalid, table == n_id, n_id, dtype)


def path_list(paths: Union[PathLike, Sequence[PathLike], None]) -> list[str]:
    if paths is None:
        return [default_genome_path()]
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    paths = [os.fspath(p) for p in paths]
    if not paths:
        raise ValueError("`paths` is empty: give at least one FASTA file.")
    for path in paths:
        if os.path.exists(path) and not os.path.isfile(path) and not os.path.isdir(path):
            raise GenomeDataError(
                f"{path!r} is a pipe or device, not a file (e.g. `<(zcat genome.fa.gz)`): a genome is read more than "
                "once (indexed, then cut), so give a file; gzipped FASTA is read directly."
            )
    return paths


@dataclass
class _RecordIndex:
    """Where one record lives in its file.

    `checkpoints` holds `(base position, byte offset)` rows: one at the first base and one every `_CHECKPOINT_BASES`
    bases, so any base range is read with one seek. `n_rich_windows` counts the record's windows that hold too many
    `N` (when the index was built with a [`WindowCutter`], else `0`).
    """

    name: str
    line_number: int
    length: int
    checkpoints: np.ndarray
    n_rich_windows: int = 0


@dataclass
class FileIndex:
    """The records of one FASTA file, in file order, and the file's size and modification time when indexed."""

    path: str
    size: int
    mtime_ns: int
    records: list[_RecordIndex]


class _RecordScanner:
    """Indexes one record line by line; with a lookup it also validates the bases (and finds N-rich windows) in blocks
    of `_SCAN_BLOCK` bases, so a whole chromosome is never held in memory."""

    def __init__(
        self,
        path: str,
        name: str,
        line_number: int,
        lookup: Optional[Lookup],
        n_rich: Optional[NRichWindowCounter],
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
                raise invalid_character_error(
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
        n_rich = self.n_rich.n_rich if self.n_rich is not None else 0
        checkpoints = np.asarray(self.checkpoints, dtype=np.int64).reshape(-1, 2)
        return _RecordIndex(self.name, self.line_number, self.length, checkpoints, n_rich)


def scan_fasta(path: str, lookup: Optional[Lookup] = None, cutter: Optional[WindowCutter] = None) -> FileIndex:
    """Index a FASTA file in one streaming pass (memory: one line and one block of bases).

    With `lookup`, every base is validated (the error names the file, record, character and 1-based position); with
    a `cutter` too, the windows it would drop for holding too many `N` are counted per record.
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
        n_rich = cutter.n_rich_counter() if lookup is not None and cutter is not None else None
        scanner = _RecordScanner(path, name, line_number, lookup, n_rich)
    records.append(scanner.finish())  # `_fasta_lines` raises for a file without any header
    return FileIndex(path, stat.st_size, stat.st_mtime_ns, records)


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
        fai,
        problem,
        path,
        path,
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
    return [(record.name, record.length) for record in scan_fasta(path).records]


def is_fasta_path(path: str) -> bool:
    """Whether `path` has a FASTA-like suffix (`.fa`, `.fna`, `.fasta`, optionally `.gz`)."""
    return path.lower().endswith(_FASTA_SUFFIXES)
