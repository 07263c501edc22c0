"""Sequence datasets: CSV / TSV files, folders of split CSVs and Hub datasets of DNA strings (the `sequence,label`
layout of the Nucleotide Transformer and DNABERT-2 benchmarks), and pre-training windows cut from them."""

from __future__ import annotations

import csv
import logging
import os
from typing import Iterable, Optional, Union

import numpy as np
from datasets import Dataset, DatasetDict, Value

from ..tokenizer import build_dna_tokenizer
from ..vocabulary import dna_lookup_table
from .fasta import GenomeDataError, Lookup, PathLike, tokenize_record
from .windows import WindowCutter, WindowPart, bases_share, check_fraction, window_features, windows_dataset


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
        for split_name, stem in (
            ("train", "train"),
            ("validation", "dev"),
            ("validation", "validation"),
            ("test", "test"),
        ):
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
    columns = {
        name.strip(): [row[name].strip() if row[name] is not None else "" for row in rows]
        for name in reader.fieldnames
    }
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
    allow_empty: bool = False,
) -> Dataset:
    """Cut windows from `(name, sequence)` pairs, e.g. the rows of a CSV or Hub dataset used for pre-training.

    Windows are stored like those of [`load_genome_windows`] (compact `uint8` token ids; columns `input_ids`,
    `record`, `start`, `end`, `strand`). Sequences shorter than a window are skipped with a warning that counts them
    and their bases.

    Args:
        sequences (`Iterable[tuple[str, str]]`): `(name, DNA string)` pairs.
        tokenizer ([`~transformers.PreTrainedTokenizerFast`]): the DNA tokenizer.
        window_length (`int`): bases per window.
        stride (`int`, *optional*): step between window starts; defaults to `window_length`.
        source (`str`, *optional*, defaults to `"<sequences>"`): named in warnings and errors.
        allow_empty (`bool`, *optional*, defaults to `False`): return an empty dataset instead of raising when no
            window can be cut (e.g. for a validation split).

    Raises:
        `ValueError`: `window_length` or `stride` is not a positive integer. [`GenomeDataError`]: a bad character
        (naming `source`, the sequence and the position) or, unless `allow_empty`, no window at all.
    """
    cutter = WindowCutter(window_length, stride)
    lookup = Lookup.from_tokenizer(tokenizer)
    parts: list[WindowPart] = []
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
        parts.append(WindowPart(name, starts, windows))
    if short:
        logger.warning(
            "Skipped %d of %d sequences of %r shorter than window_length=%d: %s are never used. Use a smaller "
            "window_length to train on them.",
            short,
            total,
            source,
            window_length,
            bases_share(short_bases, total_bases),
        )
    if not parts and not allow_empty:
        raise GenomeDataError(f"No window of {window_length} bases could be cut from {source!r} ({total} sequences).")
    return windows_dataset(parts, window_features(lookup.dtype))


def load_sequence_windows(
    source: Union[PathLike, str],
    tokenizer,
    *,
    window_length: int,
    stride: Optional[int] = None,
    validation_fraction: float = 0.05,
    sequence_column: str = "sequence",
    seed: int = 0,
    **load_kwargs,
) -> DatasetDict:
    """Pre-training windows cut from the DNA sequences of a CSV/TSV file, a folder of split CSVs or a Hub dataset.

    The `validation` (or `dev`) split of `source` is held out when it has one. Otherwise `validation_fraction` of the
    `train` sequences (whole sequences, chosen with `seed`, so no held-out window overlaps a training window) are held
    out. A `test` split is left alone: it stays unseen for downstream evaluation.

    Args:
        source (`str`): see [`load_sequence_dataset`] (pass e.g. `name=` for a Hub configuration through
            `load_kwargs`).
        tokenizer ([`~transformers.PreTrainedTokenizerFast`]): the DNA tokenizer.
        window_length (`int`): bases per window.
        stride (`int`, *optional*): step between window starts; defaults to `window_length`.
        validation_fraction (`float`, *optional*, defaults to `0.05`): share of the train sequences held out when
            `source` has no validation split; `0` holds out none (an empty validation split).
        sequence_column (`str`, *optional*, defaults to `"sequence"`): the column holding DNA.
        seed (`int`, *optional*, defaults to `0`): seed of the held-out sequences.

    Returns:
        [`~datasets.DatasetDict`] with `train` and `validation` splits of windows (the columns of
        [`windows_from_sequences`]); `validation` may be empty (a warning says why).

    Raises:
        [`GenomeDataError`]: see [`load_sequence_dataset`]; no `train` split; or no training window of
        `window_length` bases.
    """
    check_fraction("validation_fraction", validation_fraction, upper_inclusive=False)
    source = os.fspath(source)
    dataset = load_sequence_dataset(source, sequence_column=sequence_column, **load_kwargs)
    if "train" not in dataset:
        raise GenomeDataError(f"{source!r} has no 'train' split to pre-train on; splits found: {sorted(dataset)}.")
    train = list(dataset["train"][sequence_column])
    rows = {"train": [(f"train:{i}", sequence) for i, sequence in enumerate(train)]}
    if "validation" in dataset:
        rows["validation"] = [(f"validation:{i}", s) for i, s in enumerate(dataset["validation"][sequence_column])]
    else:
        held = int(round(validation_fraction * len(train)))
        if validation_fraction > 0 and held == 0 and len(train) > 1:
            held = 1
        order = np.random.default_rng(seed).permutation(len(train)).tolist()
        held_out = set(order[:held]) if held < len(train) else set()
        rows = {
            "train": [row for i, row in enumerate(rows["train"]) if i not in held_out],
            "validation": [row for i, row in enumerate(rows["train"]) if i in held_out],
        }
    splits = {
        split: windows_from_sequences(
            rows[split],
            tokenizer,
            window_length=window_length,
            stride=stride,
            source=f"{source} ({split})",
            allow_empty=split == "validation",
        )
        for split in ("train", "validation")
    }
    if validation_fraction > 0 and len(splits["validation"]) == 0:
        logger.warning(
            "No validation window: the %d held-out sequences of %r are all shorter than window_length=%d. Use a "
            "smaller window_length or a larger validation_fraction. policy='birdie' needs validation windows for its "
            "reward; 'static' and 'ntp' train without them.",
            len(rows["validation"]),
            source,
            window_length,
        )
    logger.info("Sequence windows: %d train, %d validation.", len(splits["train"]), len(splits["validation"]))
    return DatasetDict(splits)
