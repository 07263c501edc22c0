"""Labelled sequence-classification tasks derived from a GenBank annotation, for offline benchmarking.

The Nucleotide Transformer tasks cannot be downloaded in CI, so this builds a small suite of *real* tasks from the
annotated bacterial contigs shipped in `shared/`:

- `gene_strand`: a window inside a CDS; label 1 if the CDS is on the + strand, 0 if on the - strand.
- `coding_vs_intergenic`: label 1 for a window inside a CDS, 0 for a window overlapping no annotated gene.
- `start_codon`: a window read on a gene's strand, centred on a triplet; label 1 if it is the annotated start codon
  of a CDS, 0 if it is another `ATG`/`GTG`/`TTG` at least `window_length` bases from any annotated start.

Leakage control: each record is cut into blocks of `block_size` bases, every block goes to one split (80/10/10,
seeded), and only windows lying entirely inside one block are kept, so no base appears in two splits. Windows with
identical sequences (genomic repeats) are kept once, in the earliest split.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from typing import Optional

import numpy as np

from ..vocabulary import reverse_complement
from .genbank import GenBankRecord, iter_genbank
from .task_files import SPLITS


TASK_NAMES = ("gene_strand", "coding_vs_intergenic", "start_codon")
#: Shortest window: a start-codon window holds the triplet at `window_length // 2 - 1`.
MIN_WINDOW_LENGTH = 4


@dataclass
class TaskSuiteConfig:
    """Parameters:
    window_length (`int`, defaults to `100`): bases per example (the DNABERT-2 sample uses 101), at least 4.
    block_size (`int`, defaults to `5000`): size of the genome blocks assigned to splits, at least `window_length`.
    split_fractions (`tuple`, defaults to `(0.8, 0.1, 0.1)`): train/dev/test shares of blocks.
    windows_per_gene (`int`, defaults to `4`): windows sampled inside each CDS.
    max_examples_per_class (`int`, *optional*): cap per class and split, after balancing.
    seed (`int`, defaults to `0`).
    """

    window_length: int = 100
    block_size: int = 5000
    split_fractions: tuple = (0.8, 0.1, 0.1)
    windows_per_gene: int = 4
    max_examples_per_class: Optional[int] = None
    seed: int = 0

    def __post_init__(self):
        if self.window_length < MIN_WINDOW_LENGTH:
            raise ValueError(
                f"`window_length` must be at least {MIN_WINDOW_LENGTH} bases (a start codon must fit, "
                f"centred), got {self.window_length}."
            )
        if self.block_size < self.window_length:
            raise ValueError(
                f"`block_size` ({self.block_size}) must be at least `window_length` "
                f"({self.window_length}): every example lies inside one genome block, so no example can "
                "be made. Lower --window_length or raise --block_size."
            )
        if self.windows_per_gene < 1:
            raise ValueError(f"`windows_per_gene` must be at least 1, got {self.windows_per_gene}.")
        if self.max_examples_per_class is not None and self.max_examples_per_class < 1:
            raise ValueError(
                f"`max_examples_per_class` must be at least 1 (or None for no cap), got {self.max_examples_per_class}."
            )
        fractions = tuple(float(f) for f in self.split_fractions)
        if len(fractions) != len(SPLITS) or min(fractions) < 0 or abs(sum(fractions) - 1) > 1e-6:
            raise ValueError(
                f"`split_fractions` must be {len(SPLITS)} non-negative shares (train, dev, test) summing "
                f"to 1, got {self.split_fractions}."
            )


def centred_window_start(codon: int, strand: int, window: int) -> int:
    """+ strand start of the window that, read on `strand`, has the triplet at forward position `codon` starting at
    index `window // 2 - 1` (positives and decoys share this, so position carries no label signal)."""
    if strand == 1:
        return codon - (window // 2 - 1)
    return codon + 3 + (window // 2 - 1) - window


class _SplitAssigner:
    def __init__(self, records: list[GenBankRecord], config: TaskSuiteConfig):
        rng = np.random.default_rng(config.seed)
        self.block = config.block_size
        self.window = config.window_length
        self.blocks = {
            record.name: rng.choice(3, size=len(record.sequence) // config.block_size + 1, p=config.split_fractions)
            for record in records
        }

    def split_of(self, record: str, start: int) -> Optional[str]:
        """The split of window [start, start + window) or None when it crosses a block edge."""
        first, last = start // self.block, (start + self.window - 1) // self.block
        if start < 0 or first != last:
            return None
        return SPLITS[int(self.blocks[record][first])]


def balanced_examples(
    negatives: list[str], positives: list[str], max_per_class: Optional[int], rng: np.random.Generator
) -> list[tuple[str, int]]:
    """As many label-0 as label-1 sequences (at most `max_per_class` each, drawn without replacement and kept in
    order), as `(sequence, label)` pairs in a random order."""
    n = min(len(negatives), len(positives))
    if max_per_class:
        n = min(n, max_per_class)
    pick = lambda items: [items[i] for i in sorted(rng.choice(len(items), size=n, replace=False))]  # noqa: E731
    examples = [(s, 0) for s in pick(negatives)] + [(s, 1) for s in pick(positives)]
    return [examples[i] for i in rng.permutation(len(examples))]


def build_task_suite(genbank_path: str, config: Optional[TaskSuiteConfig] = None) -> dict:
    """Build every task of [`TASK_NAMES`] from `genbank_path`.

    Returns:
        `dict[task, dict[split, list[tuple[str, int]]]]` of `(sequence, label)` pairs, classes balanced per split. A
        split can be empty when the settings do not fit the genome; [`check_task_suite`] refuses such a suite.
    """
    config = config or TaskSuiteConfig()
    records = list(iter_genbank(genbank_path))
    assigner = _SplitAssigner(records, config)
    rng = np.random.default_rng(config.seed + 1)
    window = config.window_length
    raw = {task: {split: {0: [], 1: []} for split in SPLITS} for task in TASK_NAMES}

    def add(task, record, start, label, sequence):
        split = assigner.split_of(record.name, start)
        if split is not None and len(sequence) == window and set(sequence) <= set("ACGT"):
            raw[task][split][label].append(sequence)

    for record in records:
        seq = record.sequence
        cds = [f for f in record.features if f.type == "CDS" and not f.partial and f.end - f.start >= window]
        genic = np.zeros(len(seq) + 1, dtype=bool)
        for feature in record.features:
            if feature.type not in ("source",) and feature.end - feature.start < len(seq):
                genic[feature.start : feature.end] = True
        starts = set()
        for feature in cds:
            starts.add(feature.start if feature.strand == 1 else feature.end - 3)
            for _ in range(config.windows_per_gene):
                start = int(rng.integers(feature.start, feature.end - window + 1))
                window_seq = seq[start : start + window]
                add("gene_strand", record, start, int(feature.strand == 1), window_seq)
                add("coding_vs_intergenic", record, start, 1, window_seq)
            # True start codon, read on the gene's strand, centred.
            codon = feature.start if feature.strand == 1 else feature.end - 3
            left = centred_window_start(codon, feature.strand, window)
            window_seq = seq[left : left + window]
            add("start_codon", record, left, 1, window_seq if feature.strand == 1 else reverse_complement(window_seq))
        # Intergenic windows: no overlap with any annotated feature.
        cumulative = np.concatenate([[0], np.cumsum(genic[: len(seq)])])
        for start in range(0, len(seq) - window + 1, window // 2):
            if cumulative[start + window] - cumulative[start] == 0:
                add("coding_vs_intergenic", record, start, 0, seq[start : start + window])
        # Decoy start codons on either strand, far from every annotated start.
        true_starts = np.array(sorted(starts)) if starts else np.array([-(10**9)])
        for strand, text in ((1, seq), (-1, reverse_complement(seq))):
            for match in rng.permutation(len(text) - 3)[: len(seq) // 50].tolist():
                if text[match : match + 3] not in ("ATG", "GTG", "TTG"):
                    continue
                forward = match if strand == 1 else len(seq) - match - 3
                if np.min(np.abs(true_starts - forward)) < window:
                    continue
                left_forward = centred_window_start(forward, strand, window)
                window_seq = seq[left_forward : left_forward + window]
                add(
                    "start_codon",
                    record,
                    left_forward,
                    0,
                    window_seq if strand == 1 else reverse_complement(window_seq),
                )

    suite = {}
    for task in TASK_NAMES:
        suite[task] = {}
        seen: set[str] = set()
        for split in SPLITS:
            # Repeats (e.g. copies of an insertion sequence) give identical windows at different places: keep the
            # first copy only, in the earliest split, so no sequence is in two splits or twice in one.
            for label in (0, 1):
                unique = []
                for sequence in raw[task][split][label]:
                    if sequence not in seen:
                        seen.add(sequence)
                        unique.append(sequence)
                raw[task][split][label] = unique
            suite[task][split] = balanced_examples(
                raw[task][split][0], raw[task][split][1], config.max_examples_per_class, rng
            )
    return suite


class EmptyTaskError(ValueError):
    """A task of a suite ended up with no example in some split (the settings do not fit the genome)."""


def check_task_suite(suite: dict, config, genome_length: Optional[int] = None) -> dict[str, dict[str, int]]:
    """Refuse a suite in which any task or split holds no example, before anything is written.

    Args:
        suite (`dict`): `{task: {split: [(sequence, label), ...]}}`, e.g. from [`build_task_suite`].
        config: the settings the suite was built with; its `window_length` and `block_size` go into the advice.
        genome_length (`int`, *optional*): bases of the source genome, also for the advice.

    Returns:
        `dict[str, dict[str, int]]`: the example count per task and split.

    Raises:
        [`EmptyTaskError`]: the message lists, per task, how many examples each split could get, and what to change.
    """
    counts = {task: {split: len(rows) for split, rows in splits.items()} for task, splits in suite.items()}
    empty = {task: [split for split, n in per.items() if n == 0] for task, per in counts.items()}
    empty = {task: splits for task, splits in empty.items() if splits}
    if not empty:
        return counts
    made = "; ".join(
        f"{task}: " + ", ".join(f"{split} {n}" for split, n in per.items()) for task, per in counts.items()
    )
    window, block = config.window_length, config.block_size
    genome = f"the genome ({genome_length:,} bases)" if genome_length else "the genome"
    if all(n == 0 for per in counts.values() for n in per.values()):
        advice = (
            f"lower --window_length (now {window}, the default is {TaskSuiteConfig.window_length}): no window "
            f"that long yields an example in {genome}"
        )
    else:
        advice = (
            f"lower --window_length (now {window}; fewer genes and gaps are that long) or --block_size (now "
            f"{block}; smaller blocks spread every split over more of {genome}), or use a larger genome"
        )
    listing = ", ".join(f"{task} ({'/'.join(splits)})" for task, splits in empty.items())
    raise EmptyTaskError(f"No examples for {listing}. Examples that could be made: {made}. To fix, {advice}.")


def write_task_suite(suite: dict, output_dir: str) -> dict[str, dict[str, int]]:
    """Write `output_dir/<task>/{train,dev,test}.csv` (`sequence,label`, or `sequence,label,group` for rows of three);
    returns the row counts."""
    counts = {}
    for task, splits in suite.items():
        os.makedirs(os.path.join(output_dir, task), exist_ok=True)
        counts[task] = {}
        for split, rows in splits.items():
            path = os.path.join(output_dir, task, f"{split}.csv")
            with open(path, "w", newline="", encoding="utf-8") as handle:
                writer = csv.writer(handle)
                writer.writerow(
                    ["sequence", "label", "group"] if rows and len(rows[0]) == 3 else ["sequence", "label"]
                )
                writer.writerows(rows)
            counts[task][split] = len(rows)
    return counts
