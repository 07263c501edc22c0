"""Sequence datasets: CSV / TSV files, folders of split CSVs and Hub datasets of DNA strings (the `sequence,label`
layout of the Nucleotide Transformer and DNABERT-2 benchmarks), and pre-training windows cut from them."""

from __future__ import annotations

import csv
import logging
import os
from typing import Iterable, Optional, Union

import numpy as np
from datasets import Dataset, DatasetDict, Value

from ..tokenizer import dna_lookup_table
from .fasta import GenomeDataError, PathLike, _Lookup, tokenize_record
from .windows import WindowCutter, _window_features, _WindowPart, _windows_dataset


logger = logging.getLogger(__name__)


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
            from ..tokenizer import build_dna_tokenizer

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
    cutter = WindowCutter(window_length, stride)
    lookup = _Lookup.from_tokenizer(tokenizer)
    parts: list[_WindowPart] = []
    short = total = short_bases = total_bases = 0
    for name, sequence in sequences:
        total += 1
        ids = tokenize_record(sequence.encode(), lookup.table, source=source, record=name, dtype=lookup.dtype)
        total_bases += len(ids)
        starts, windows, _ = cutter.cut(ids)
        if not starts.size:
            short += 1
            short_bases += len(ids)
            continue
        parts.append(_WindowPart(name, starts, windows))
    if short:
        logger.warning(
            "Skipped %d of %d sequences shorter than window_length=%d: %s bases of %s (%.1f%%) are never used.",
            short, total, window_length, f"{short_bases:,}", f"{total_bases:,}", 100 * short_bases / max(total_bases, 1),
        )
    if not parts:
        raise GenomeDataError(f"No window of {window_length} bases could be cut from {source!r} ({total} sequences).")
    return _windows_dataset(parts, _window_features(lookup.dtype))
