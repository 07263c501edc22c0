"""Large labelled classification tasks built from bacterial genomes and their gene calls (GFF3, e.g. Prodigal).

Four binary tasks, each window `window_length` bases of real genome:

- `gene_strand`: a window inside one CDS (and overlapping no CDS of the other strand), read on the genome's + strand;
  label 1 if the gene is on the + strand, 0 if on the - strand.
- `coding_vs_intergenic`: label 1 for a window inside a CDS, 0 for a window overlapping no CDS on either strand.
- `start_codon`: read on a gene's strand and centred on a triplet (at index `window_length // 2 - 1`); label 1 if it
  is the called start codon of a complete gene, 0 if it is an in-frame `ATG`/`GTG`/`TTG` inside a gene at least
  `window_length` bases from every called start (the hard decoy: same codon, same frame, same strand).
- `stop_codon`: centred on a triplet, read on a gene's strand; label 1 if it is the called stop codon, 0 if it is a
  `TAA`/`TAG`/`TGA` inside a gene out of its frame, at least `window_length` bases from every called stop.

Splits are by position: every record is cut into blocks of `block_size` bases, each block goes to train, dev or test
(`split_fractions`, seeded per genome), and only windows lying entirely inside one block are kept, so no base is in
two splits. Each example carries its block as its `group`, so intervals can resample whole blocks (neighbouring
windows and genes of one operon are not independent). A sequence whose canonical form (itself or its reverse
complement, whichever sorts first) occurs in an earlier split (train < dev < test), or earlier in the same split, is
dropped, so genomic repeats do not cross splits. Classes are balanced per split, capped by `examples_per_class`.

Held out of pre-training *by organism*: [`HELD_OUT_GENOMES`] are one strain of each of three species that the
default pre-training corpora leave out; check it for any corpus with [`~birdie_hf.evaluation.leakage.leakage_report`].
Gene calls are Prodigal predictions, not curated annotations: the labels inherit its errors (most of all for start
codons, which Prodigal places less reliably than stops).
"""

from __future__ import annotations

import csv
import json
import os
from bisect import bisect_left
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Optional, Sequence, Union

import numpy as np

from ..data.fasta import iter_fasta
from ..vocabulary import reverse_complement
from .genbank_tasks import SPLITS, EmptyTaskError, centred_window_start
from .gff import GeneCall, iter_gene_calls


PathLike = Union[str, os.PathLike]

GENOME_TASK_NAMES = ("gene_strand", "coding_vs_intergenic", "start_codon", "stop_codon")
#: One strain each of *S. aureus* (GC 33%), *H. pylori* (39%) and *V. cholerae* (47%): three species the default and
#: the experimental pre-training corpora leave out, spanning the bacteria's base compositions.
HELD_OUT_GENOMES = ("s_aureus_n315", "h_pylori_els37", "v_cholerae_h1")
START_CODONS = frozenset({"ATG", "GTG", "TTG"})
STOP_CODONS = frozenset({"TAA", "TAG", "TGA"})
_ACGT = frozenset(b"ACGT")


@dataclass(frozen=True)
class GenomeSource:
    """A genome FASTA and the GFF3 gene calls made on it (`name` labels its examples' groups)."""

    name: str
    fasta: str
    gff: str


def shared_genome_sources(shared_dir: PathLike, names: Sequence[str] = HELD_OUT_GENOMES) -> list[GenomeSource]:
    """[`GenomeSource`]s for genomes of the project's shared data folder (`genomes/bacteria/<name>.fa.gz` with
    `annotations/<name>.prodigal.gff.gz`). Raises `FileNotFoundError` naming the first missing file."""
    data = Path(shared_dir) / "data"
    sources = []
    for name in names:
        fasta = data / "genomes" / "bacteria" / f"{name}.fa.gz"
        gff = data / "annotations" / f"{name}.prodigal.gff.gz"
        for path in (fasta, gff):
            if not path.is_file():
                raise FileNotFoundError(
                    f"genome {name!r}: {path} not found. The default task suite is built from the shared data folder "
                    "beside the checkout (../shared, or set BIRDIE_SHARED_DIR); or pass --tasks_dir with your own tasks."
                )
        sources.append(GenomeSource(name, str(fasta), str(gff)))
    return sources


def check_split_settings(split_fractions: Sequence[float], examples_per_class: Sequence[int]) -> tuple[tuple, tuple]:
    """`(split_fractions, examples_per_class)` as tuples of floats and ints, or a `ValueError` naming the one that is
    not 3 shares (train, dev, test) summing to 1, or not 3 positive counts."""
    fractions = tuple(float(f) for f in split_fractions)
    if len(fractions) != 3 or min(fractions) < 0 or abs(sum(fractions) - 1) > 1e-6:
        raise ValueError(f"`split_fractions` must be 3 shares (train, dev, test) summing to 1, got {fractions}.")
    caps = tuple(int(c) for c in examples_per_class)
    if len(caps) != 3 or min(caps) < 1:
        raise ValueError(f"`examples_per_class` must be 3 positive counts (train, dev, test), got {caps}.")
    return fractions, caps


@dataclass
class GenomeTaskConfig:
    """Parameters:
    window_length (`int`, defaults to `100`): bases per example, at least 8.
    block_size (`int`, defaults to `50000`): size of the genome blocks assigned to splits, at least `window_length`.
    split_fractions (`tuple`, defaults to `(0.6, 0.2, 0.2)`): train/dev/test shares of blocks.
    examples_per_class (`tuple`, defaults to `(2000, 500, 1500)`): most examples per class in train, dev and test
        (a test split of up to 3,000 windows resolves MCC differences of about 0.05).
    windows_per_gene (`int`, defaults to `2`): candidate windows drawn inside each gene (strand, coding) and decoy
        codons drawn per gene (start, stop).
    seed (`int`, defaults to `0`).
    """

    window_length: int = 100
    block_size: int = 50_000
    split_fractions: tuple = (0.6, 0.2, 0.2)
    examples_per_class: tuple = (2000, 500, 1500)
    windows_per_gene: int = 2
    seed: int = 0

    def __post_init__(self):
        if self.window_length < 8:
            raise ValueError(f"`window_length` must be at least 8 bases, got {self.window_length}.")
        if self.block_size < self.window_length:
            raise ValueError(
                f"`block_size` ({self.block_size}) must be at least `window_length` ({self.window_length})."
            )
        self.split_fractions, self.examples_per_class = check_split_settings(
            self.split_fractions, self.examples_per_class
        )
        if self.windows_per_gene < 1:
            raise ValueError(f"`windows_per_gene` must be at least 1, got {self.windows_per_gene}.")


@dataclass
class GenomeTasks:
    """`tasks[task][split]` is a list of `(sequence, label, group)`; `metadata` holds the settings, genomes,
    candidate and example counts (see [`build_genome_tasks`])."""

    tasks: dict[str, dict[str, list[tuple[str, int, str]]]]
    metadata: dict = field(default_factory=dict)


class _Genome:
    """One record's sequence with strand coverage and codon positions, for O(log n) window checks."""

    def __init__(self, sequence: bytes, genes: list[GeneCall]):
        self.sequence = sequence.upper()
        length = len(sequence)
        cover = {1: np.zeros(length + 1, dtype=np.int32), -1: np.zeros(length + 1, dtype=np.int32)}
        for gene in genes:
            cover[gene.strand][gene.start] += 1
            cover[gene.strand][gene.end] -= 1
        # prefix[k] = bases covered among the first k positions: a window [a, b) overlaps a gene iff prefix[b] > prefix[a]
        self.prefix = {s: np.concatenate([[0], np.cumsum(np.cumsum(c)[:-1] > 0)]) for s, c in cover.items()}
        self.starts = sorted(g.start_codon for g in genes if not g.partial)
        self.stops = sorted(g.stop_codon for g in genes if not g.partial)

    def covered(self, strand: int, start: int, end: int) -> bool:
        return bool(self.prefix[strand][end] > self.prefix[strand][start])

    @staticmethod
    def distance(positions: list[int], position: int) -> int:
        i = bisect_left(positions, position)
        near = [abs(positions[j] - position) for j in (i - 1, i) if 0 <= j < len(positions)]
        return min(near) if near else 1 << 62

    def text(self, start: int, end: int, strand: int = 1) -> Optional[str]:
        """`[start, end)` read on `strand`, or None when it leaves the record or holds a base other than ACGT."""
        if start < 0 or end > len(self.sequence):
            return None
        chunk = self.sequence[start:end]
        if not _ACGT.issuperset(chunk):
            return None
        text = chunk.decode("ascii")
        return text if strand == 1 else reverse_complement(text)


def _coding_sequence(genome: _Genome, gene: GeneCall) -> Optional[str]:
    return genome.text(gene.start, gene.end, gene.strand)


def _codon_position(gene: GeneCall, offset: int) -> int:
    """+ strand position of the triplet starting `offset` bases into the coding sequence."""
    return gene.start + offset if gene.strand == 1 else gene.end - offset - 3


def _candidates(genome: _Genome, genes: list[GeneCall], config: GenomeTaskConfig, rng: np.random.Generator):
    """Yield `(task, label, start, strand)` candidate windows (start on the + strand) of one record."""
    w = config.window_length
    half = w // 2
    for gene in genes:
        if gene.partial:
            continue
        if gene.length >= w:
            for start in rng.integers(gene.start, gene.end - w + 1, size=config.windows_per_gene):
                start = int(start)
                if not genome.covered(-gene.strand, start, start + w):
                    yield "gene_strand", int(gene.strand == 1), start, 1
                    yield "coding_vs_intergenic", 1, start, 1
        cds = _coding_sequence(genome, gene)
        if cds is None:
            continue
        for task, codons, own, called in (
            ("start_codon", START_CODONS, 0, genome.starts),
            ("stop_codon", STOP_CODONS, gene.length - 3, genome.stops),
        ):
            if cds[own : own + 3] in codons:
                yield task, 1, centred_window_start(_codon_position(gene, own), gene.strand, w), gene.strand
            # Decoys: starts in frame, stops out of frame, far from every called start/stop.
            frames = (0,) if task == "start_codon" else (1, 2)
            decoys = [
                offset
                for frame in frames
                for offset in range(3 + frame, gene.length - 5, 3)
                if cds[offset : offset + 3] in codons and genome.distance(called, _codon_position(gene, offset)) >= w
            ]
            for offset in rng.permutation(decoys)[: config.windows_per_gene]:
                position = _codon_position(gene, int(offset))
                yield task, 0, centred_window_start(position, gene.strand, w), gene.strand
    # Intergenic windows: non-overlapping tiles of the stretches no gene covers on either strand.
    length = len(genome.sequence)
    start = 0
    while start + w <= length:
        if genome.covered(1, start, start + w) or genome.covered(-1, start, start + w):
            start += half if half else 1
            continue
        yield "coding_vs_intergenic", 0, start, 1
        start += w


def _canonical(sequence: str) -> str:
    return min(sequence, reverse_complement(sequence))


def build_genome_tasks(sources: Sequence[GenomeSource], config: Optional[GenomeTaskConfig] = None) -> GenomeTasks:
    """Build [`GENOME_TASK_NAMES`] from `sources` (see the module docstring for labels, splits and deduplication).

    Raises:
        `ValueError`: no sources, or a GFF names a sequence its FASTA lacks (both named).
        [`~birdie_hf.evaluation.genbank_tasks.EmptyTaskError`]: a task ends up without both classes in some split (the counts that could
            be made are in the message).
    """
    config = config or GenomeTaskConfig()
    if not sources:
        raise ValueError("`sources` is empty: give at least one genome (FASTA + gene calls).")
    w, block = config.window_length, config.block_size
    pools = {task: {split: {0: [], 1: []} for split in SPLITS} for task in GENOME_TASK_NAMES}
    genomes_meta = []
    for index, source in enumerate(sources):
        rng = np.random.default_rng([config.seed, index])
        genes_by_record: dict[str, list[GeneCall]] = {}
        for gene in iter_gene_calls(source.gff):
            genes_by_record.setdefault(gene.seqid, []).append(gene)
        records = {}
        for record in iter_fasta(source.fasta):
            if record.name in records:
                raise ValueError(
                    f"{source.fasta} has two records named {record.name!r}; gene calls cannot tell them apart."
                )
            records[record.name] = record.sequence
        missing = sorted(set(genes_by_record) - set(records))
        if missing:
            raise ValueError(
                f"{source.gff} calls genes on {missing[:3]} but {source.fasta} has no such record "
                f"(records: {sorted(records)[:3]})."
            )
        for name, genes in genes_by_record.items():
            beyond = [g for g in genes if g.end > len(records[name])]
            if beyond:
                raise ValueError(
                    f"{source.gff}: a gene on {name!r} ends at {beyond[0].end}, past the record's {len(records[name])} "
                    f"bases in {source.fasta}: the gene calls were made on another assembly."
                )
        unannotated = sorted(set(records) - set(genes_by_record))
        bases = 0
        for name in sorted(genes_by_record):  # a record without gene calls is not known to be intergenic
            sequence = records[name]
            bases += len(sequence)
            genome = _Genome(sequence, genes_by_record.get(name, []))
            splits = rng.choice(3, size=len(sequence) // block + 1, p=config.split_fractions)
            for task, label, start, strand in _candidates(genome, genes_by_record.get(name, []), config, rng):
                first, last = start // block, (start + w - 1) // block
                if start < 0 or first != last:
                    continue
                text = genome.text(start, start + w, strand)
                if text is None:
                    continue
                split = SPLITS[int(splits[first])]
                pools[task][split][label].append((text, f"{source.name}/{name}/{first}"))
        genomes_meta.append(
            {"name": source.name, "fasta": os.path.basename(source.fasta), "gff": os.path.basename(source.gff),
             "bases": bases, "genes": sum(len(g) for g in genes_by_record.values()),
             "records_without_gene_calls": unannotated}
        )  # fmt: skip
    tasks, counts = {}, {}
    for task, by_split in pools.items():
        seen: set[str] = set()
        tasks[task], counts[task] = {}, {}
        for split_index, split in enumerate(SPLITS):
            kept, local = {0: [], 1: []}, set()
            for label in (0, 1):
                for text, group in by_split[split][label]:
                    key = _canonical(text)
                    if key not in seen and key not in local:
                        local.add(key)
                        kept[label].append((text, label, group))
            seen |= local
            rng = np.random.default_rng([config.seed, 1000 + split_index, GENOME_TASK_NAMES.index(task)])
            n = min(len(kept[0]), len(kept[1]), config.examples_per_class[split_index])
            if n == 0:
                raise EmptyTaskError(
                    f"task {task!r}, split {split!r}: {len(kept[0])} label-0 and {len(kept[1])} label-1 candidates; "
                    "both classes are needed. Add genomes, lower --window_length or change --split_fractions."
                )
            chosen = [
                kept[label][i] for label in (0, 1) for i in sorted(rng.choice(len(kept[label]), n, replace=False))
            ]
            tasks[task][split] = [chosen[i] for i in rng.permutation(len(chosen))]
            counts[task][split] = {
                "examples": 2 * n,
                "candidates": [len(kept[0]), len(kept[1])],
                "groups": len({group for _, _, group in tasks[task][split]}),
            }
    metadata = {"config": asdict(config), "genomes": genomes_meta, "counts": counts}
    return GenomeTasks(tasks=tasks, metadata=metadata)


def write_genome_tasks(suite: GenomeTasks, output_dir: PathLike, metadata_name: str = "suite.json") -> dict:
    """Write `<output_dir>/<task>/{train,dev,test}.csv` (columns `sequence,label,group`) and `metadata_name` (the
    metadata, JSON); returns the metadata. Each file is written to a temporary name and renamed, so a crash leaves no
    half-written task."""
    output_dir = Path(output_dir)
    for task, splits in suite.tasks.items():
        folder = output_dir / task
        folder.mkdir(parents=True, exist_ok=True)
        for split, rows in splits.items():
            path = folder / f"{split}.csv"
            partial = path.with_suffix(".csv.partial")
            with open(partial, "w", newline="", encoding="utf-8") as handle:
                writer = csv.writer(handle)
                writer.writerow(["sequence", "label", "group"])
                writer.writerows(rows)
            os.replace(partial, path)
    partial = output_dir / f"{metadata_name}.partial"
    partial.write_text(json.dumps(suite.metadata, indent=2) + "\n")
    os.replace(partial, output_dir / metadata_name)
    return suite.metadata
