"""Reading a classification task stored as a folder of `{train,dev,test}.csv` files (`sequence,label[,group]`).

The one reader of task CSVs: the k-mer baselines, the probe instrument and the leakage check all read tasks through
it, so a malformed file gets the same error (naming the file, the line and the value) wherever it is read. Fine-tuning
loads the same files as a `datasets.DatasetDict` through [`~birdie_hf.data.load_sequence_dataset`].
"""

from __future__ import annotations

import csv
import os
from typing import Optional, Union


PathLike = Union[str, os.PathLike]

#: The split files of a task folder, in order.
SPLITS = ("train", "dev", "test")


def read_task_csvs(task_dir: PathLike) -> dict[str, tuple[list[str], list[int]]]:
    """Read a classification task stored as `task_dir/{train,dev,test}.csv` with header `sequence,label`.

    Args:
        task_dir (`str` or `os.PathLike`): the task folder.

    Returns:
        `dict[str, tuple[list[str], list[int]]]`: `{"train": (sequences, labels), "dev": ..., "test": ...}`.

    Raises:
        `FileNotFoundError`: `task_dir` or one of the three files is missing (the message names it).
        `ValueError`: a file lacks the `sequence`/`label` columns, has no rows, or a label is not an integer.
    """
    task_dir = os.fspath(task_dir)
    if not os.path.isdir(task_dir):
        raise FileNotFoundError(f"`task_dir` {task_dir!r} is not a directory.")
    return {split: read_task_split(os.path.join(task_dir, f"{split}.csv"))[:2] for split in SPLITS}


def read_task_split(path: PathLike) -> tuple[list[str], list[int], Optional[list[str]]]:
    """Read one split CSV (header `sequence,label`, optionally `group`): `(sequences, labels, groups)`, groups
    `None` when the file has no `group` column. Raises as [`read_task_csvs`] does."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"Task split file not found: {path!r} (expected train.csv, dev.csv and test.csv).")
    sequences, labels, groups = [], [], []
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        missing = {"sequence", "label"} - set(reader.fieldnames or [])
        if missing:
            raise ValueError(
                f"{path!r} must have a header with columns `sequence,label`; missing {sorted(missing)} "
                f"(header: {reader.fieldnames})."
            )
        grouped = "group" in reader.fieldnames
        for row in reader:
            try:
                labels.append(int(row["label"]))
            except (TypeError, ValueError):
                raise ValueError(
                    f"{path!r} line {reader.line_num}: label {row['label']!r} is not an integer."
                ) from None
            sequences.append(row["sequence"].strip())
            if grouped:
                groups.append(row["group"])
    if not sequences:
        raise ValueError(f"{path!r} has a header but no rows.")
    return sequences, labels, groups if grouped else None
