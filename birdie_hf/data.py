"""Genome data: FASTA / FASTA.gz, CSV and Hub datasets turned into fixed-length windows of token ids.

Everything here produces 🤗 `datasets` objects with an `input_ids` column (token ids of the DNA tokenizer) and
provenance columns (`record`, `start`, `end`, `strand`) so every window can be traced back to its source.

Bad input fails early with an error naming the file, the record and the 1-based position of the problem.
"""

from __future__ import annotations

import csv
import gzip
import logging
import os
import zlib
from dataclasses import dataclass
from importlib import resources
from typing import Iterable, Iterator, Literal, Optional, Sequence, Union

import numpy as np
from datasets import Dataset, DatasetDict, Features, IterableDataset, Sequence as SequenceFeature, Value

from .tokenizer import dna_lookup_table


logger = logging.getLogger(__name__)

PathLike = Union[str, os.PathLike]
#: Letters that occur in protein sequences but are neither bases nor IUPAC codes; used to give a better error.
_PROTEIN_ONLY_LETTERS = set("EFILPQZJO*")
_FASTA_SUFFIXES = (".fa", ".fna", ".fasta", ".fas", ".ffn", ".frn", ".fa.gz", ".fna.gz", ".fasta.gz", ".fas.gz")


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


def _open_text_lines(path: str) -> Iterator[bytes]:
    if not os.path.exists(path):
        raise FileNotFoundError(f"FASTA file not found: {path!r}.")
    if os.path.isdir(path):
        raise GenomeDataError(f"{path!r} is a directory, expected a FASTA or FASTA.gz file.")
    with open(path, "rb") as handle:
        gzipped = handle.read(2) == b"\x1f\x8b"
    opener = gzip.open if gzipped else open
    try:
        with opener(path, "rb") as handle:
            yield from handle
    except (EOFError, gzip.BadGzipFile, zlib.error) as error:
        raise GenomeDataError(f"{path!r} is a corrupt or truncated gzip file ({error}).") from error


def iter_fasta(path: PathLike) -> Iterator[FastaRecord]:
    """Yield the records of a FASTA or gzipped FASTA file, one at a time (memory: one record).

    CRLF line endings and blank lines are accepted. Sequence characters are validated later, per record, by
    [`tokenize_record`].

    Raises:
        `FileNotFoundError`: the file does not exist.
        [`GenomeDataError`]: the file is not FASTA (no header line first), is binary, corrupt gzip, has no records,
            or has a record with an empty sequence.
    """
    path = os.fspath(path)
    name: Optional[str] = None
    chunks: list[bytes] = []
    seen_any = False
    for line_number, line in enumerate(_open_text_lines(path), start=1):
        if b"\x00" in line:
            raise GenomeDataError(f"{path!r} looks like a binary file (NUL byte on line {line_number}), not FASTA.")
        line = line.strip()
        if not line:
            continue
        if line.startswith(b">"):
            if name is not None:
                yield _finish_record(path, name, chunks)
            header = line[1:].decode("utf-8", errors="replace").strip()
            name = header.split()[0] if header else f"record_{line_number}"
            chunks = []
            seen_any = True
        elif name is None:
            preview = line[:20].decode("utf-8", errors="replace")
            raise GenomeDataError(
                f"{path!r} is not a FASTA file: line {line_number} ({preview!r}) comes before any '>' header line."
            )
        else:
            chunks.append(line)
    if name is not None:
        yield _finish_record(path, name, chunks)
    if not seen_any:
        raise GenomeDataError(f"{path!r} is empty: it holds no FASTA records.")


def _finish_record(path: str, name: str, chunks: list[bytes]) -> FastaRecord:
    sequence = b"".join(chunks)
    if not sequence:
        raise GenomeDataError(f"Record {name!r} in {path!r} has an empty sequence.")
    return FastaRecord(name=name, sequence=sequence, source=path)


def tokenize_record(sequence: bytes, table: np.ndarray, *, source: str, record: str) -> np.ndarray:
    """Map a DNA byte string to token ids with `table` (see [`dna_lookup_table`]), rejecting bad characters.

    Raises:
        [`GenomeDataError`]: naming `source`, `record`, the first bad character and its 1-based position.
    """
    raw = np.frombuffer(sequence, dtype=np.uint8)
    ids = table[raw]
    bad = np.flatnonzero(ids < 0)
    if bad.size:
        position = int(bad[0])
        char = chr(raw[position])
        letters = {chr(c).upper() for c in np.unique(raw[bad])}
        hint = ""
        if letters & _PROTEIN_ONLY_LETTERS:
            hint = " This looks like a protein sequence; birdie_hf needs nucleotide (DNA) FASTA."
        elif char == "-":
            hint = " Alignment gaps are not allowed: remove '-' characters first."
        raise GenomeDataError(
            f"Invalid character {char!r} at position {position + 1} of record {record!r} in {source!r} "
            f"({bad.size} invalid characters in this record; allowed: A, C, G, T, N, IUPAC codes, any case).{hint}"
        )
    return ids


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


@dataclass
class _Counts:
    short_records: int = 0
    n_rich_windows: int = 0


def _windows(length: int, window_length: int, stride: int, lo: int = 0, hi: Optional[int] = None) -> range:
    hi = length if hi is None else hi
    return range(lo, hi - window_length + 1, stride)


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
            Windows with a larger share of `N` are dropped (counted in a log message).
        soft_mask (`str`, *optional*, defaults to `"ignore"`):
            What to do with lower-case (soft-masked) bases: `"ignore"` treats them like upper-case ones, `"feature"`
            also adds a `soft_mask` column (1 = soft-masked base), `"drop"` only cuts windows from upper-case runs.
        seed (`int`, *optional*, defaults to `0`):
            Seed for the record split.

    Returns:
        [`~datasets.DatasetDict`] with `train` and `validation` splits. Columns: `input_ids` (`window_length` ids),
        `record` (record name), `start`/`end` (0-based half-open coordinates in the record, on the + strand),
        `strand` (`"+"` or `"-"`), and `soft_mask` when asked for.

    Raises:
        [`GenomeDataError`]: bad files or records (see [`iter_fasta`] and [`tokenize_record`]), bad arguments, or no
        window left at all. Records shorter than a window are skipped with a warning that counts them.
    """
    if window_length < 1:
        raise ValueError(f"`window_length` must be positive, got {window_length}.")
    stride = window_length if stride is None else stride
    if stride < 1:
        raise ValueError(f"`stride` must be positive, got {stride}.")
    if not 0.0 <= validation_fraction < 1.0:
        raise ValueError(f"`validation_fraction` must be in [0, 1), got {validation_fraction}.")
    if split_by not in ("position", "record"):
        raise ValueError(f"`split_by` must be 'position' or 'record', got {split_by!r}.")
    if soft_mask not in ("ignore", "feature", "drop"):
        raise ValueError(f"`soft_mask` must be 'ignore', 'feature' or 'drop', got {soft_mask!r}.")
    if not 0.0 <= max_n_fraction <= 1.0:
        raise ValueError(f"`max_n_fraction` must be in [0, 1], got {max_n_fraction}.")
    if paths is None:
        paths = [default_genome_path()]
    elif isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    if not paths:
        raise ValueError("`paths` is empty: give at least one FASTA file.")

    records = [record for path in paths for record in iter_fasta(path)]
    table = dna_lookup_table(tokenizer)
    n_id = tokenizer.convert_tokens_to_ids("N")
    rc_table = reverse_complement_table(tokenizer) if reverse_complement else None

    validation_records: set[int] = set()
    if split_by == "record" and validation_fraction > 0:
        if len(records) < 2:
            raise GenomeDataError(
                "`split_by='record'` needs at least two records to hold one out; use `split_by='position'`."
            )
        lengths = [len(r.sequence) for r in records]
        budget = validation_fraction * sum(lengths)
        held = 0
        # Greedy in a seeded random order: a record goes to validation while it fits in the budget.
        for index in np.random.default_rng(seed).permutation(len(records)).tolist():
            if held + lengths[index] <= budget and len(validation_records) < len(records) - 1:
                validation_records.add(index)
                held += lengths[index]
        if not validation_records:
            smallest = int(np.argmin(lengths))
            validation_records.add(smallest)
            logger.warning(
                "No record fits in validation_fraction=%.3f; holding out the smallest record %r (%.1f%% of bases).",
                validation_fraction, records[smallest].name, 100 * lengths[smallest] / sum(lengths),
            )

    columns = {split: {"input_ids": [], "record": [], "start": [], "end": [], "strand": [], "soft_mask": []}
               for split in ("train", "validation")}
    counts = _Counts()

    def add(split: str, record: FastaRecord, ids: np.ndarray, lowercase: np.ndarray, start: int, offset: int):
        window = ids[start : start + window_length]
        if np.count_nonzero(window == n_id) > max_n_fraction * window_length:
            counts.n_rich_windows += 1
            return
        strands = [("+", window)]
        if rc_table is not None and split == "train":
            strands.append(("-", rc_table[window[::-1]]))
        for strand, tokens in strands:
            cols = columns[split]
            cols["input_ids"].append(tokens.astype(np.int32))
            cols["record"].append(record.name)
            cols["start"].append(offset + start)
            cols["end"].append(offset + start + window_length)
            cols["strand"].append(strand)
            if soft_mask == "feature":
                mask = lowercase[start : start + window_length]
                cols["soft_mask"].append((mask if strand == "+" else mask[::-1]).astype(np.uint8))

    for record_index, record in enumerate(records):
        ids = tokenize_record(record.sequence, table, source=record.source, record=record.name)
        lowercase = np.frombuffer(record.sequence, dtype=np.uint8) >= ord("a")
        segments = _soft_mask_segments(record.sequence) if soft_mask == "drop" else [(0, len(ids))]
        usable = [(lo, hi) for lo, hi in segments if hi - lo >= window_length]
        if not usable:
            counts.short_records += 1
            continue
        for lo, hi in usable:
            seg_ids, seg_lower, length = ids[lo:hi], lowercase[lo:hi], hi - lo
            if split_by == "record":
                split = "validation" if record_index in validation_records else "train"
                for start in _windows(length, window_length, stride):
                    add(split, record, seg_ids, seg_lower, start, lo)
            else:
                boundary = length - int(round(validation_fraction * length))
                for start in _windows(length, window_length, stride, hi=boundary):
                    add("train", record, seg_ids, seg_lower, start, lo)
                for start in _windows(length, window_length, stride, lo=boundary):
                    add("validation", record, seg_ids, seg_lower, start, lo)

    if counts.short_records:
        logger.warning(
            "Skipped %d of %d records (or soft-mask-free segments) shorter than window_length=%d.",
            counts.short_records, len(records), window_length,
        )
    if counts.n_rich_windows:
        logger.warning("Dropped %d windows with more than %.0f%% N.", counts.n_rich_windows, 100 * max_n_fraction)
    if not columns["train"]["input_ids"]:
        what = "upper-case (non soft-masked) " if soft_mask == "drop" else ""
        raise GenomeDataError(
            f"No training window of {window_length} {what}bases could be cut from {[os.fspath(p) for p in paths]}: "
            f"{counts.short_records} records too short, {counts.n_rich_windows} windows over max_n_fraction. "
            "Lower `window_length`, `validation_fraction` or raise `max_n_fraction`."
        )

    features = Features(
        {
            "input_ids": SequenceFeature(Value("int32")),
            "record": Value("string"),
            "start": Value("int64"),
            "end": Value("int64"),
            "strand": Value("string"),
            "soft_mask": SequenceFeature(Value("uint8")),
        }
    )
    if soft_mask != "feature":
        features.pop("soft_mask")
        for cols in columns.values():
            cols.pop("soft_mask")
    splits = {split: Dataset.from_dict(cols, features=features) for split, cols in columns.items()}
    logger.info("Genome windows: %d train, %d validation.", len(splits["train"]), len(splits["validation"]))
    return DatasetDict(splits)


def index_fasta(path: PathLike) -> list[tuple[str, int]]:
    """`(record name, sequence length)` of every record, from a samtools `.fai` index beside the file when present,
    else from one streaming pass (one line in memory at a time)."""
    path = os.fspath(path)
    fai = path + ".fai"
    if os.path.exists(fai) and not path.endswith(".gz"):
        with open(fai, encoding="utf-8") as handle:
            return [(fields[0], int(fields[1])) for fields in (line.split("\t") for line in handle) if fields[0]]
    index: list[tuple[str, int]] = []
    for line in _open_text_lines(path):
        line = line.strip()
        if line.startswith(b">"):
            header = line[1:].decode("utf-8", errors="replace").strip()
            index.append((header.split()[0] if header else f"record_{len(index)}", 0))
        elif line and index:
            index[-1] = (index[-1][0], index[-1][1] + len(line))
    if not index:
        raise GenomeDataError(f"{path!r} is empty or not FASTA: no '>' header found.")
    return index


@dataclass(frozen=True)
class WindowShard:
    """A contiguous range of windows of one record: windows `first` (inclusive) to `last` (exclusive)."""

    path: str
    record: str
    first: int
    last: int


def plan_window_shards(
    paths: Sequence[PathLike], window_length: int, stride: int, windows_per_shard: int = 256
) -> list[WindowShard]:
    """Split every record's windows into shards of at most `windows_per_shard` windows (without reading
    sequences into memory), so many ranks x workers can share even a single-record genome."""
    shards = []
    for path in paths:
        for record, length in index_fasta(path):
            count = len(_windows(length, window_length, stride))
            for first in range(0, count, windows_per_shard):
                shards.append(WindowShard(os.fspath(path), record, first, min(count, first + windows_per_shard)))
    return shards


def stream_genome_windows(
    paths: Union[PathLike, Sequence[PathLike]],
    tokenizer,
    *,
    window_length: int = 512,
    stride: Optional[int] = None,
    max_n_fraction: float = 0.1,
    windows_per_shard: int = 256,
) -> IterableDataset:
    """Like [`load_genome_windows`] but lazy: windows are cut while iterating, one record in memory at a time.

    The stream is made of [`WindowShard`]s (ranges of windows of one record, see [`plan_window_shards`]). The
    Trainer splits shards over ranks (`datasets.distributed.split_dataset_by_node`) and each rank's DataLoader
    workers split its shards again, so every window is produced exactly once per epoch; use a shard count divisible
    by `world_size * num_workers` (lower `windows_per_shard`) to keep every worker busy. There is no validation
    split: hold out a separate file.
    """
    paths = [os.fspath(p) for p in ([paths] if isinstance(paths, (str, os.PathLike)) else paths)]
    for path in paths:
        if not os.path.exists(path):
            raise FileNotFoundError(f"FASTA file not found: {path!r}.")
    stride = window_length if stride is None else stride
    shards = plan_window_shards(paths, window_length, stride, windows_per_shard)
    if not shards:
        raise GenomeDataError(f"No window of {window_length} bases fits in any record of {paths}.")
    table = dna_lookup_table(tokenizer)
    n_id = tokenizer.convert_tokens_to_ids("N")

    def generate(shards: list[WindowShard]) -> Iterator[dict]:
        cached: tuple[Optional[tuple[str, str]], Optional[np.ndarray]] = (None, None)
        for shard in shards:
            if cached[0] != (shard.path, shard.record):
                record = next((r for r in iter_fasta(shard.path) if r.name == shard.record), None)
                if record is None:
                    raise GenomeDataError(f"Record {shard.record!r} vanished from {shard.path!r} while streaming.")
                cached = ((shard.path, shard.record),
                          tokenize_record(record.sequence, table, source=record.source, record=record.name))
            ids = cached[1]
            for index in range(shard.first, shard.last):
                start = index * stride
                window = ids[start : start + window_length]
                if np.count_nonzero(window == n_id) > max_n_fraction * window_length:
                    continue
                yield {"input_ids": window.astype(np.int32), "record": shard.record, "start": start,
                       "end": start + window_length, "strand": "+"}

    return IterableDataset.from_generator(generate, gen_kwargs={"shards": shards})


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

    Sequences shorter than a window are skipped with a counted warning; if none is left this raises.
    """
    stride = window_length if stride is None else stride
    table = dna_lookup_table(tokenizer)
    columns = {"input_ids": [], "record": [], "start": [], "end": [], "strand": []}
    short = total = 0
    for name, sequence in sequences:
        total += 1
        ids = tokenize_record(sequence.encode(), table, source=source, record=name)
        if len(ids) < window_length:
            short += 1
            continue
        for start in _windows(len(ids), window_length, stride):
            columns["input_ids"].append(ids[start : start + window_length].astype(np.int32))
            columns["record"].append(name)
            columns["start"].append(start)
            columns["end"].append(start + window_length)
            columns["strand"].append("+")
    if short:
        logger.warning("Skipped %d of %d sequences shorter than window_length=%d.", short, total, window_length)
    if not columns["input_ids"]:
        raise GenomeDataError(f"No window of {window_length} bases could be cut from {source!r} ({total} sequences).")
    return Dataset.from_dict(columns)


def is_fasta_path(path: str) -> bool:
    """Whether `path` has a FASTA-like suffix (`.fa`, `.fna`, `.fasta`, optionally `.gz`)."""
    return path.lower().endswith(_FASTA_SUFFIXES)
