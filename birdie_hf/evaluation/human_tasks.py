"""A human repeat-classification task from a soft-masked chromosome, split by genomic position.

The source is a FASTA of human chromosome segments whose headers carry their coordinates (`chr22:START-END`,
e.g. `shared/data/genomes/human_chr22_segments.fa.gz`) and whose lowercase bases are repeats (soft mask).

- `human_repeat`: an upper-cased window of `window_length` bases; label 1 if at least `min_repeat_fraction` of its
  bases were lowercase (repeat), 0 if at most `max_nonrepeat_fraction` were (default: none). Windows in between and
  windows holding any non-ACGT base are dropped. Sequences are upper-cased, so the label cannot be read from case.

Position split and leakage control:

- The covered coordinate range `[min start, max end]` is cut at `heldout_start_fraction`: records starting before
  the cut form the *pre-training region*, records starting at or after it (and after the end of every pre-training
  record) the *held-out region*. A pre-training run must only see the pre-training region: use
  [`split_human_records`] or [`write_pretraining_fasta`].
- `train` windows come from the pre-training region (fine-tuning on pre-training data is fine); `dev` and `test`
  windows come from the held-out region, whose genomic blocks of `block_size` bases are shuffled (seeded) and
  assigned to dev (a `dev_fraction` share) or test; only windows lying inside one block are kept, so no base is in
  two splits.
- Identical sequences are kept once, in the earliest split (train, dev, test).
- With `drop_leaked=True` (default), every dev/test candidate that occurs verbatim (either strand) anywhere in the
  pre-training region is dropped ([`~leakage.find_occurrences`]): identical repeat copies would otherwise let a
  model memorise test windows during pre-training. The count is in `suite.metadata["leaked_dropped"]`.
- Classes are balanced per split by downsampling the majority class, then capped at `max_examples_per_class`.
"""

from __future__ import annotations

import gzip
import os
import re
from dataclasses import asdict, dataclass
from typing import Optional

import numpy as np

from ..data import FastaRecord, GenomeDataError, PathLike, iter_fasta
from .genbank_tasks import SPLITS, balanced_examples, write_task_suite
from .leakage import KMER, find_occurrences


TASK_NAME = "human_repeat"
_HEADER = re.compile(r"^(?P<chrom>[^:\s]+):(?P<start>\d[\d,]*)-(?P<end>\d[\d,]*)$")
_ACGT = np.zeros(256, dtype=bool)
_ACGT[list(b"ACGTacgt")] = True
_LOWER = np.zeros(256, dtype=bool)
_LOWER[list(b"abcdefghijklmnopqrstuvwxyz")] = True


@dataclass
class HumanRepeatTaskConfig:
    """Parameters:
    window_length (`int`, defaults to `100`): bases per example.
    stride (`int`, *optional*): distance between candidate window starts in a record; defaults to `window_length`
        (non-overlapping windows).
    heldout_start_fraction (`float`, defaults to `0.8`): where, as a share of the covered coordinate range, the
        held-out region starts; records starting before it are the pre-training region.
    dev_fraction (`float`, defaults to `0.5`): share of held-out blocks used for dev (the rest is test).
    block_size (`int`, defaults to `20000`): size in bases of the held-out genomic blocks assigned to dev or test.
    max_examples_per_class (`int`, *optional*, defaults to `2000`): cap per class and split, after balancing
        (`None`: no cap).
    min_repeat_fraction (`float`, defaults to `0.9`): label 1 needs at least this share of lowercase bases.
    max_nonrepeat_fraction (`float`, defaults to `0.0`): label 0 needs at most this share of lowercase bases.
    drop_leaked (`bool`, defaults to `True`): drop dev/test windows that occur verbatim (either strand) in the
        pre-training region.
    seed (`int`, defaults to `0`).
    """

    window_length: int = 100
    stride: Optional[int] = None
    heldout_start_fraction: float = 0.8
    dev_fraction: float = 0.5
    block_size: int = 20000
    max_examples_per_class: Optional[int] = 2000
    min_repeat_fraction: float = 0.9
    max_nonrepeat_fraction: float = 0.0
    drop_leaked: bool = True
    seed: int = 0

    def __post_init__(self):
        if self.window_length <= 0:
            raise ValueError(f"`window_length` must be positive, got {self.window_length}.")
        if self.stride is not None and self.stride <= 0:
            raise ValueError(f"`stride` must be positive, got {self.stride}.")
        if not 0.0 < self.heldout_start_fraction < 1.0:
            raise ValueError(f"`heldout_start_fraction` must be in (0, 1), got {self.heldout_start_fraction}.")
        if not 0.0 <= self.dev_fraction <= 1.0:
            raise ValueError(f"`dev_fraction` must be in [0, 1], got {self.dev_fraction}.")
        if self.block_size < self.window_length:
            raise ValueError(
                f"`block_size` ({self.block_size}) must be at least `window_length` ({self.window_length})."
            )
        if not 0.0 <= self.max_nonrepeat_fraction < self.min_repeat_fraction <= 1.0:
            raise ValueError(
                "Need 0 <= `max_nonrepeat_fraction` < `min_repeat_fraction` <= 1, got "
                f"{self.max_nonrepeat_fraction} and {self.min_repeat_fraction}."
            )
        if self.drop_leaked and self.window_length < KMER:
            raise ValueError(
                f"`drop_leaked` needs `window_length` >= {KMER}, got {self.window_length}; "
                "set drop_leaked=False for shorter windows."
            )


class HumanRepeatTask(dict):
    """`dict[split, list[tuple[str, int]]]` of `(sequence, label)` pairs with a `metadata` dict attribute (region
    boundaries, record/base counts, candidate counts, leaked sequences dropped)."""

    def __init__(self, splits: dict, metadata: dict, groups: Optional[dict] = None):
        super().__init__(splits)
        self.metadata = metadata
        #: `{split: [group per row]}`: the held-out genomic block of each dev/test row (`block<k>`), the record of each
        #: train row; intervals resample whole groups.
        self.groups = groups or {}


def parse_chr22_coordinates(name: str) -> tuple[str, int, int]:
    """Parse a record name or header like `chr22:16050000-16051000` (text after the first word is ignored).

    Returns:
        `(chrom, start, end)` as written in the header (for these files: 1-based, end inclusive).

    Raises:
        [`GenomeDataError`]: the header has no `CHROM:START-END` first word, or END < START.
    """
    text = name[1:] if name.startswith(">") else name
    words = text.split()
    match = _HEADER.match(words[0]) if words else None
    if match is None:
        raise GenomeDataError(
            f"Record {name!r}: header is not of the form 'chr22:START-END' (e.g. 'chr22:16050000-16051000'); "
            "the human repeat task needs genomic coordinates in every header to split by position."
        )
    start, end = int(match["start"].replace(",", "")), int(match["end"].replace(",", ""))
    if end < start:
        raise GenomeDataError(f"Record {name!r}: end coordinate {end} is before start coordinate {start}.")
    return match["chrom"], start, end


def _read_records(path: PathLike) -> list[tuple[FastaRecord, int, int]]:
    records, chrom = [], None
    for record in iter_fasta(path):
        this_chrom, start, end = parse_chr22_coordinates(record.name)
        if chrom is None:
            chrom = this_chrom
        elif this_chrom != chrom:
            raise GenomeDataError(
                f"Record {record.name!r} in {os.fspath(path)!r} is on {this_chrom!r} but earlier records are on "
                f"{chrom!r}: the position split needs the records of a single chromosome."
            )
        records.append((record, start, end))
    return records


def _region_split(records: list[tuple[FastaRecord, int, int]], config: HumanRepeatTaskConfig):
    """(pretraining, heldout, excluded, boundary, range_start, range_end)."""
    config = config or HumanRepeatTaskConfig()
    range_start = min(start for _, start, _ in records)
    range_end = max(end for _, _, end in records)
    boundary = range_start + int(config.heldout_start_fraction * (range_end - range_start))
    pretraining = [item for item in records if item[1] < boundary]
    last_pretraining_end = max((end for _, _, end in pretraining), default=range_start - 1)
    heldout, excluded = [], []
    for item in records:
        if item[1] >= boundary:
            # A held-out record overlapping a pre-training record (overlapping segments) would share bases: skip it.
            (heldout if item[1] > last_pretraining_end else excluded).append(item)
    if not pretraining or not heldout:
        raise GenomeDataError(
            f"The position split at {boundary} (fraction {config.heldout_start_fraction} of "
            f"{range_start}-{range_end}) leaves {len(pretraining)} pre-training and {len(heldout)} held-out records; "
            "both must be non-empty."
        )
    return pretraining, heldout, excluded, boundary, range_start, range_end


def split_human_records(
    path: PathLike, config: Optional[HumanRepeatTaskConfig] = None
) -> tuple[list[FastaRecord], list[FastaRecord]]:
    """Split the records of a coordinate-headed FASTA into the pre-training region and the held-out region.

    Records whose start coordinate is before `heldout_start_fraction` of the covered coordinate range are the
    pre-training region; the others are held out (dev/test of [`build_human_repeat_task`]). A record after the cut
    that overlaps a pre-training record is in neither list. Order follows the file.

    Returns:
        `(pretraining_records, heldout_records)`, lists of [`FastaRecord`] (case preserved). The names of
        `pretraining_records` are exactly the records a pre-training run may use.
    """
    pretraining, heldout, *_ = _region_split(_read_records(path), config or HumanRepeatTaskConfig())
    return [record for record, _, _ in pretraining], [record for record, _, _ in heldout]


def pretraining_record_names(path: PathLike, config: Optional[HumanRepeatTaskConfig] = None) -> list[str]:
    """Names of the records allowed for pre-training (the pre-training region), in file order."""
    return [record.name for record in split_human_records(path, config)[0]]


def write_pretraining_fasta(
    path: PathLike, out_path: PathLike, config: Optional[HumanRepeatTaskConfig] = None, line_width: int = 80
) -> dict[str, int]:
    """Write the pre-training-region records of `path` to `out_path` (gzipped when it ends with `.gz`), case
    (soft mask) preserved, so a pre-training run can use it as a plain genome file and never see held-out bases.

    Returns:
        `{"records", "bases", "heldout_records", "heldout_bases"}`.
    """
    pretraining, heldout = split_human_records(path, config)
    out_path = os.fspath(out_path)
    if os.path.dirname(out_path):
        os.makedirs(os.path.dirname(out_path), exist_ok=True)
    opener = gzip.open if out_path.endswith(".gz") else open
    with opener(out_path, "wb") as handle:
        for record in pretraining:
            handle.write(b">" + record.name.encode("utf-8") + b"\n")
            sequence = record.sequence
            handle.write(b"\n".join(sequence[i : i + line_width] for i in range(0, len(sequence), line_width)))
            handle.write(b"\n")
    return {
        "records": len(pretraining),
        "bases": sum(len(record.sequence) for record in pretraining),
        "heldout_records": len(heldout),
        "heldout_bases": sum(len(record.sequence) for record in heldout),
    }


def _labelled_windows(sequence: bytes, config: HumanRepeatTaskConfig) -> tuple[np.ndarray, np.ndarray]:
    """Starts and labels (0/1) of the candidate windows of one record (label -1 windows already removed)."""
    window = config.window_length
    stride = config.stride or window
    if len(sequence) < window:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    raw = np.frombuffer(sequence, dtype=np.uint8)
    lower = np.concatenate([[0], np.cumsum(_LOWER[raw], dtype=np.int64)])
    bad = np.concatenate([[0], np.cumsum(~_ACGT[raw], dtype=np.int64)])
    starts = np.arange(0, len(sequence) - window + 1, stride, dtype=np.int64)
    n_lower = lower[starts + window] - lower[starts]
    clean = bad[starts + window] == bad[starts]
    labels = np.full(len(starts), -1, dtype=np.int64)
    labels[n_lower <= config.max_nonrepeat_fraction * window + 1e-9] = 0
    labels[n_lower >= config.min_repeat_fraction * window - 1e-9] = 1
    keep = clean & (labels >= 0)
    return starts[keep], labels[keep]


def build_human_repeat_task(path: PathLike, config: Optional[HumanRepeatTaskConfig] = None) -> HumanRepeatTask:
    """Build the `human_repeat` task from a soft-masked, coordinate-headed FASTA (see the module docstring).

    Returns:
        [`HumanRepeatTask`]: `{split: [(SEQUENCE, label), ...]}` for train/dev/test, upper-case sequences, classes
        balanced per split, shuffled; `.metadata` holds the region boundaries and counts, including
        `leaked_dropped` (dev/test candidates removed because they occur in the pre-training region).
    """
    config = config or HumanRepeatTaskConfig()
    records = _read_records(path)
    pretraining, heldout, excluded, boundary, range_start, range_end = _region_split(records, config)
    window = config.window_length

    # Held-out genomic blocks: a seeded shuffle puts a dev_fraction share of them in dev, the rest in test.
    n_blocks = (range_end - boundary) // config.block_size + 1
    block_rng = np.random.default_rng(config.seed)
    is_dev = np.zeros(n_blocks, dtype=bool)
    is_dev[block_rng.permutation(n_blocks)[: int(round(config.dev_fraction * n_blocks))]] = True

    raw: dict[str, dict[int, list[str]]] = {split: {0: [], 1: []} for split in SPLITS}
    group_of: dict[str, str] = {}  # sequences are unique after deduplication, so a sequence names its group
    crossing = 0
    for region, items in (("pretraining", pretraining), ("heldout", heldout)):
        for record, start, _ in items:
            starts, labels = _labelled_windows(record.sequence, config)
            if region == "pretraining":
                splits = np.zeros(len(starts), dtype=np.int64)
                groups = [f"record:{record.name}"] * len(starts)
            else:
                first = (start + starts - boundary) // config.block_size
                last = (start + starts + window - 1 - boundary) // config.block_size
                inside = first == last
                crossing += int((~inside).sum())
                starts, labels, first = starts[inside], labels[inside], first[inside]
                splits = np.where(is_dev[first], 1, 2)
                groups = [f"block{b}" for b in first.tolist()]
            sequence = record.sequence
            for offset, label, split, group in zip(starts.tolist(), labels.tolist(), splits.tolist(), groups):
                text = sequence[offset : offset + window].upper().decode("ascii")
                raw[SPLITS[split]][label].append(text)
                group_of.setdefault(text, group)

    candidates = {split: {label: len(raw[split][label]) for label in (0, 1)} for split in SPLITS}
    # Identical sequences (repeat copies): keep the first, in the earliest split.
    duplicates = {split: 0 for split in SPLITS}
    seen: set[str] = set()
    for split in SPLITS:
        for label in (0, 1):
            unique = []
            for sequence in raw[split][label]:
                if sequence in seen:
                    duplicates[split] += 1
                else:
                    seen.add(sequence)
                    unique.append(sequence)
            raw[split][label] = unique
    del seen

    leaked = {split: 0 for split in SPLITS}
    if config.drop_leaked:
        queries = [
            (split, label, sequence) for split in SPLITS[1:] for label in (0, 1) for sequence in raw[split][label]
        ]
        hits = find_occurrences(
            [sequence for _, _, sequence in queries],
            (record.sequence for record, _, _ in pretraining),
            both_strands=True,
        )
        leaked_set = {(split, sequence) for (split, _, sequence), hit in zip(queries, hits.tolist()) if hit}
        for split in SPLITS[1:]:
            for label in (0, 1):
                kept = [sequence for sequence in raw[split][label] if (split, sequence) not in leaked_set]
                leaked[split] += len(raw[split][label]) - len(kept)
                raw[split][label] = kept

    rng = np.random.default_rng(config.seed + 1)
    splits_out = {}
    for split in SPLITS:
        splits_out[split] = balanced_examples(raw[split][0], raw[split][1], config.max_examples_per_class, rng)

    metadata = {
        "task": TASK_NAME,
        "source": os.path.basename(os.fspath(path)),
        "config": asdict(config),
        "chrom": parse_chr22_coordinates(records[0][0].name)[0],
        "coordinate_range": [range_start, range_end],
        "heldout_start": boundary,
        "records": {"pretraining": len(pretraining), "heldout": len(heldout), "excluded_overlapping": len(excluded)},
        "bases": {
            "pretraining": sum(len(r.sequence) for r, _, _ in pretraining),
            "heldout": sum(len(r.sequence) for r, _, _ in heldout),
        },
        "heldout_blocks": {"dev": int(is_dev.sum()), "test": int((~is_dev).sum())},
        "windows_crossing_blocks": crossing,
        "candidates": candidates,
        "duplicates_dropped": duplicates,
        "leaked_dropped": leaked,
        "counts": {split: len(rows) for split, rows in splits_out.items()},
    }
    groups = {split: [group_of[sequence] for sequence, _ in rows] for split, rows in splits_out.items()}
    return HumanRepeatTask(splits_out, metadata, groups)


def write_human_repeat_task(suite: dict, output_dir: str) -> dict[str, int]:
    """Write `output_dir/human_repeat/{train,dev,test}.csv` (`sequence,label`, plus `group` when the task carries
    groups, as [`~tasks.write_task_suite`]); returns the row counts per split."""
    groups = getattr(suite, "groups", None) or {}
    splits = {
        split: [(*row, group) for row, group in zip(rows, groups[split])] if split in groups else rows
        for split, rows in suite.items()
    }
    return write_task_suite({TASK_NAME: splits}, output_dir)[TASK_NAME]
