"""Nucleotide-Transformer-style human tasks built from curated annotation on a chromosome pre-training never sees.

The sources are one human chromosome (by default hg19/GRCh37 chr20: `genomes/human_chr20_grch37.fa.gz` of the
shared data folder, record `20`) and GENCODE-derived hg19 annotation tables (`annotations/hg19/<table>.tsv.gz`,
columns `chrom start end ...`, **1-based and inclusive**). The tasks are of the kind the NT benchmark holds, built
here from curated annotation rather than taken from NT, so they are "NT-style", not NT. Label 1 is the feature:

- `human_promoter`: 300 bases, -249..+50 around the TSS of a protein-coding transcript (NT's layout), read on the
  transcript's strand; vs windows at least `promoter_exclusion` bases from every annotated TSS, on a random strand.
- `human_splice_donor`: centred on an internal exon end (the first intron base, the `G` of `GT`, at index
  `length // 2`), on the transcript's strand; vs a `GT` inside a gene body, on the gene's strand, at least
  `decoy_min_distance` bases from every annotated exon boundary (same dinucleotide at the same index).
- `human_splice_acceptor`: the first base of an internal exon at index `length // 2` (its `AG` just before); vs an
  `AG` decoy chosen the same way.
- `human_cpg_island`: windows tiled inside CpG islands (one centred window for an island shorter than the window);
  vs windows at least `length` bases from every island. Reference strand (islands have none).
- `human_ctcf`: centred on a CTCF-bound site; vs windows at least `length` bases from every site. Reference strand.
- `human_coding_vs_utr`: windows tiled inside CDS (1) or inside UTRs (0) on the transcript's strand, none
  overlapping an interval of the other class on either strand.

An exon boundary is *internal* when it is not the start or end of any annotated transcript on its strand (the tables
carry no transcript ids); only canonical sites (`GT` donors, `AG` acceptors) are kept, so the dinucleotide carries no
signal. Positives of one task on one strand closer than `min_positive_spacing` to a kept one are dropped
(alternative TSSs a few bases apart would be near-copies).

**Composition matching.** In every split the negatives are drawn to match the positives' GC histogram (`gc_bins`
bins over 0-1): a bin without enough negatives loses positives, so the classes stay balanced. A classifier that sees
only GC content should then score near 0; [`build_human_annotation_tasks`] fits one (logistic regression on the GC
fraction, train split) and records its test MCC as `metadata["tasks"][task]["gc_only_test_mcc"]`.

**Splits.** The chromosome is cut into blocks of `block_size` bases, shuffled (seeded) into train/dev/test by
`split_fractions`; a window must lie inside one block, and its block is its `group` (intervals resample blocks).
Windows holding a non-ACGT base or overlapping a `blacklist_v2` region are dropped; a sequence whose canonical form
(itself or its reverse complement) was already taken, in an earlier split or earlier in the same one, is dropped.
The whole chromosome is held out of pre-training: [`corpus_holds_chromosome`] refuses a corpus that contains it.
"""

from __future__ import annotations

import csv
import gzip
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Optional, Sequence, Union

import numpy as np

from ..data.fasta import GenomeDataError, iter_fasta
from ..vocabulary import reverse_complement
from .genbank_tasks import SPLITS, EmptyTaskError
from .genome_tasks import GenomeTasks, check_split_settings
from .leakage import leakage_report
from .statistics import matthews_corrcoef


PathLike = Union[str, os.PathLike]

HUMAN_ANNOTATION_TASK_NAMES = (
    "human_promoter",
    "human_splice_donor",
    "human_splice_acceptor",
    "human_cpg_island",
    "human_ctcf",
    "human_coding_vs_utr",
)
#: The tables of `annotations/hg19/` the tasks read.
ANNOTATION_TABLES = ("transcripts", "tss", "exons", "cdss", "utrs", "genes", "cpg_islands", "ctcf", "blacklist_v2")
DEFAULT_WINDOW_LENGTHS = {
    "human_promoter": 300,
    "human_splice_donor": 200,
    "human_splice_acceptor": 200,
    "human_cpg_island": 200,
    "human_ctcf": 200,
    "human_coding_vs_utr": 100,
}
#: Offset of the TSS inside a promoter window (bases -249..+50, NT's layout).
PROMOTER_UPSTREAM = 249

_GC = np.zeros(256, dtype=np.int32)
_GC[list(b"GCgc")] = 1
_ACGT = np.zeros(256, dtype=bool)
_ACGT[list(b"ACGTacgt")] = True


@dataclass
class HumanAnnotationTaskConfig:
    """Parameters:
    chrom (`str`, defaults to `"chr20"`): the chromosome, as the annotation tables name it; the FASTA record may be
        named with or without the `chr` prefix.
    window_lengths (`dict`, *optional*): bases per example, per task (defaults: [`DEFAULT_WINDOW_LENGTHS`]; a dict
        given here updates them).
    block_size (`int`, defaults to `250000`): size of the chromosome blocks assigned to splits.
    split_fractions (`tuple`, defaults to `(0.6, 0.2, 0.2)`): train/dev/test shares of blocks.
    examples_per_class (`tuple`, defaults to `(2000, 500, 1500)`): most examples per class in train, dev and test.
    gc_bins (`int`, defaults to `50`): GC-content bins used to match negatives to positives (0 = no matching).
    promoter_exclusion (`int`, defaults to `2000`): promoter negatives lie at least this far from every TSS.
    decoy_min_distance (`int`, defaults to `50`): splice decoys lie at least this far from every exon boundary.
    min_positive_spacing (`int`, defaults to `50`): positives of one task and strand at least this far apart.
    seed (`int`, defaults to `0`).
    """

    chrom: str = "chr20"
    window_lengths: dict = field(default_factory=dict)
    block_size: int = 250_000
    split_fractions: tuple = (0.6, 0.2, 0.2)
    examples_per_class: tuple = (2000, 500, 1500)
    gc_bins: int = 50
    promoter_exclusion: int = 2000
    decoy_min_distance: int = 50
    min_positive_spacing: int = 50
    seed: int = 0

    def __post_init__(self):
        unknown = sorted(set(self.window_lengths) - set(HUMAN_ANNOTATION_TASK_NAMES))
        if unknown:
            raise ValueError(f"`window_lengths` names unknown tasks {unknown}; known: {HUMAN_ANNOTATION_TASK_NAMES}.")
        self.window_lengths = {**DEFAULT_WINDOW_LENGTHS, **{k: int(v) for k, v in self.window_lengths.items()}}
        short = {task: n for task, n in self.window_lengths.items() if n < 8}
        if short:
            raise ValueError(f"`window_lengths` must be at least 8 bases, got {short}.")
        if self.window_lengths["human_promoter"] <= PROMOTER_UPSTREAM:
            raise ValueError(
                f"`window_lengths['human_promoter']` must exceed {PROMOTER_UPSTREAM} (the TSS sits at that index), "
                f"got {self.window_lengths['human_promoter']}."
            )
        longest = max(self.window_lengths.values())
        if self.block_size < longest:
            raise ValueError(f"`block_size` ({self.block_size}) must be at least the longest window ({longest}).")
        self.split_fractions, self.examples_per_class = check_split_settings(
            self.split_fractions, self.examples_per_class
        )
        for name in ("gc_bins", "promoter_exclusion", "decoy_min_distance", "min_positive_spacing"):
            if getattr(self, name) < 0:
                raise ValueError(f"`{name}` must be >= 0, got {getattr(self, name)}.")


@dataclass
class AnnotationTable:
    """Rows of one annotation table on one chromosome, as 0-based half-open intervals.

    Attributes:
        start (`np.ndarray` of int64, shape `(n,)`): 0-based first base (the file's 1-based start minus 1).
        end (`np.ndarray` of int64, shape `(n,)`): 0-based end, exclusive (the file's inclusive end).
        strand (`np.ndarray` of int8, shape `(n,)`): +1, -1, or 0 where the table has no strand.
        gene_type (`list[str]`): the `gene_type` column, or empty strings where the table has none.
    """

    start: np.ndarray
    end: np.ndarray
    strand: np.ndarray
    gene_type: list


def read_annotation_table(path: PathLike, chrom: str) -> AnnotationTable:
    """Read the rows of `chrom` from an annotation table (`.tsv` or `.tsv.gz`, header `chrom start end ...`,
    1-based inclusive coordinates, optional `Strand` and `gene_type` columns).

    Raises:
        `FileNotFoundError`: no such file. [`GenomeDataError`]: a missing column or a bad coordinate, naming the file
        and line.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"annotation table {path!r} not found.")
    opener = gzip.open if path.endswith(".gz") else open
    starts, ends, strands, types = [], [], [], []
    with opener(path, "rt", encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle, delimiter="\t")
        columns = {name.lower(): name for name in reader.fieldnames or []}
        missing = [name for name in ("chrom", "start", "end") if name not in columns]
        if missing:
            raise GenomeDataError(f"{path!r}: the header has no {missing} column (header: {reader.fieldnames}).")
        strand_column, type_column = columns.get("strand"), columns.get("gene_type")
        for row in reader:
            if row[columns["chrom"]] != chrom:
                continue
            try:
                start, end = int(row[columns["start"]]), int(row[columns["end"]])
            except (TypeError, ValueError):
                raise GenomeDataError(
                    f"{path!r} line {reader.line_num}: start/end {row[columns['start']]!r}/{row[columns['end']]!r} "
                    "are not integers."
                ) from None
            if start < 1 or end < start:
                raise GenomeDataError(f"{path!r} line {reader.line_num}: bad interval {start}-{end} (1-based).")
            starts.append(start - 1)
            ends.append(end)
            strand = row.get(strand_column, "") if strand_column else ""
            strands.append(1 if strand == "+" else -1 if strand == "-" else 0)
            types.append(row.get(type_column, "") if type_column else "")
    return AnnotationTable(
        np.asarray(starts, dtype=np.int64), np.asarray(ends, dtype=np.int64), np.asarray(strands, dtype=np.int8), types
    )


def shared_annotation_paths(shared_dir: PathLike) -> tuple[Path, dict[str, Path]]:
    """The chr20 FASTA and the hg19 annotation tables of the project's shared data folder. Raises
    `FileNotFoundError` naming the first missing file."""
    data = Path(shared_dir) / "data"
    fasta = data / "genomes" / "human_chr20_grch37.fa.gz"
    tables = {name: data / "annotations" / "hg19" / f"{name}.tsv.gz" for name in ANNOTATION_TABLES}
    for path in (fasta, *tables.values()):
        if not path.is_file():
            raise FileNotFoundError(
                f"{path} not found: the human annotation tasks are built from the shared data folder beside the "
                "checkout (../shared, or set BIRDIE_SHARED_DIR); or pass --tasks_dir with your own tasks."
            )
    return fasta, tables


def read_chromosome(fasta: PathLike, chrom: str) -> bytes:
    """The upper-cased sequence of the record named `chrom` (or `chrom` without its `chr` prefix) in `fasta`."""
    names = {chrom, chrom[3:] if chrom.startswith("chr") else "chr" + chrom}
    seen = []
    for record in iter_fasta(fasta):
        if record.name in names:
            return record.sequence.upper()
        seen.append(record.name)
    raise GenomeDataError(
        f"{os.fspath(fasta)!r} has no record named {chrom!r} (records: {', '.join(seen[:5])}"
        f"{' ...' if len(seen) > 5 else ''})."
    )


def _mask(length: int, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Prefix sums (shape `(length + 1,)`) of a 0/1 mask covering `[starts, ends)` clipped to the chromosome."""
    delta = np.zeros(length + 1, dtype=np.int32)
    np.add.at(delta, np.clip(starts, 0, length), 1)
    np.add.at(delta, np.clip(ends, 0, length), -1)
    covered = (np.cumsum(delta[:-1], dtype=np.int32) > 0).astype(np.int32)
    return np.concatenate([[0], np.cumsum(covered, dtype=np.int32)]).astype(np.int32)


def _any_in(prefix: np.ndarray, starts: np.ndarray, length: int) -> np.ndarray:
    """Whether any base of `[starts, starts + length)` is in the mask whose prefix sums are `prefix`."""
    n = len(prefix) - 1
    lo, hi = np.clip(starts, 0, n), np.clip(starts + length, 0, n)
    return prefix[hi] > prefix[lo]


def _oriented_start(anchor: np.ndarray, strand: np.ndarray, index: int, length: int) -> np.ndarray:
    """Genomic start of the window whose base at `index`, read on `strand`, is the genomic base `anchor`."""
    return np.where(strand > 0, anchor - index, anchor - (length - 1 - index))


def _thin(anchor: np.ndarray, strand: np.ndarray, spacing: int) -> tuple[np.ndarray, np.ndarray]:
    """Unique `(anchor, strand)` pairs, keeping per strand only anchors at least `spacing` after the last kept."""
    pairs = np.unique(np.stack([strand.astype(np.int64), anchor.astype(np.int64)], axis=1), axis=0)
    keep, last = [], {}
    for s, a in pairs.tolist():
        if s not in last or a - last[s] >= spacing:
            keep.append((a, s))
            last[s] = a
    if not keep:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int8)
    kept = np.asarray(keep, dtype=np.int64)
    return kept[:, 0], kept[:, 1].astype(np.int8)


def _tile(mask: np.ndarray, length: int) -> np.ndarray:
    """Starts of non-overlapping windows of `length` tiled, centred, inside each run of `True` in `mask`."""
    edges = np.flatnonzero(np.diff(np.concatenate([[0], mask.astype(np.int8), [0]])))
    run_starts, run_ends = edges[0::2], edges[1::2]
    starts = []
    for lo, hi in zip(run_starts.tolist(), run_ends.tolist()):
        count = (hi - lo) // length
        offset = lo + ((hi - lo) - count * length) // 2
        starts.extend(range(offset, offset + count * length, length))
    return np.asarray(starts, dtype=np.int64)


def _coverage(length: int, table: AnnotationTable, strand: Optional[int] = None) -> np.ndarray:
    """Boolean mask of the bases covered by `table` (on `strand` only, when given)."""
    keep = np.ones(len(table.start), dtype=bool) if strand is None else table.strand == strand
    return np.diff(_mask(length, table.start[keep], table.end[keep])) > 0


class _Chromosome:
    """The chromosome's sequence with prefix sums for fast window checks, and its block split."""

    def __init__(self, sequence: bytes, blacklist: AnnotationTable, config: HumanAnnotationTaskConfig):
        self.sequence = sequence
        self.raw = np.frombuffer(sequence, dtype=np.uint8)
        self.length = len(sequence)
        self.gc_prefix = np.concatenate([[0], np.cumsum(_GC[self.raw], dtype=np.int32)]).astype(np.int32)
        self.bad_prefix = np.concatenate([[0], np.cumsum(~_ACGT[self.raw], dtype=np.int32)]).astype(np.int32)
        self.blacklist_prefix = _mask(self.length, blacklist.start, blacklist.end)
        self.block_size = config.block_size
        n_blocks = self.length // config.block_size + 1
        order = np.random.default_rng(config.seed).permutation(n_blocks)
        cuts = np.round(np.cumsum(config.split_fractions) * n_blocks).astype(int)
        self.block_split = np.zeros(n_blocks, dtype=np.int64)
        self.block_split[order[cuts[0] : cuts[1]]] = 1
        self.block_split[order[cuts[1] :]] = 2
        self.n_blocks = n_blocks

    def usable(self, starts: np.ndarray, length: int) -> dict[str, np.ndarray]:
        """Per window: inside the chromosome, ACGT only, off the blacklist, inside one block."""
        inside = (starts >= 0) & (starts + length <= self.length)
        safe = np.where(inside, starts, 0)
        clean = self.bad_prefix[safe + length] == self.bad_prefix[safe]
        listed = _any_in(self.blacklist_prefix, safe, length)
        one_block = safe // self.block_size == (safe + length - 1) // self.block_size
        return {"inside": inside, "clean": inside & clean, "listed": listed, "one_block": one_block}

    def gc(self, starts: np.ndarray, length: int) -> np.ndarray:
        return (self.gc_prefix[starts + length] - self.gc_prefix[starts]) / length

    def text(self, start: int, strand: int, length: int) -> str:
        window = self.sequence[start : start + length].decode("ascii")
        return reverse_complement(window) if strand < 0 else window


@dataclass
class _Candidates:
    """Candidate windows of one class: genomic starts and the strand each is read on."""

    start: np.ndarray
    strand: np.ndarray

    @classmethod
    def reference(cls, start: np.ndarray) -> "_Candidates":
        return cls(np.asarray(start, dtype=np.int64), np.ones(len(start), dtype=np.int8))


def _transcript_ends(transcripts: AnnotationTable, strand: int) -> tuple[set, set]:
    """0-based first and last bases of every transcript on `strand`."""
    keep = transcripts.strand == strand
    return set(transcripts.start[keep].tolist()), set((transcripts.end[keep] - 1).tolist())


def _dinucleotide_at(raw: np.ndarray, first: np.ndarray, pair: bytes) -> np.ndarray:
    """Whether genomic bases `first, first + 1` read `pair` (positions out of range read False)."""
    ok = (first >= 0) & (first + 1 < len(raw))
    safe = np.where(ok, first, 0)
    return ok & (raw[safe] == pair[0]) & (raw[safe + 1] == pair[1])


def _splice_sites(chromosome: _Chromosome, exons: AnnotationTable, transcripts: AnnotationTable, kind: str):
    """Anchors (0-based) and strands of the internal, canonical donor (`kind="donor"`: the first intron base) or
    acceptor (`"acceptor"`: the first exon base) sites, and how many internal sites were not canonical."""
    raw = chromosome.raw
    anchors, strands, non_canonical = [], [], 0
    for strand in (1, -1):
        first, last = _transcript_ends(transcripts, strand)
        keep = exons.strand == strand
        starts, ends = exons.start[keep], exons.end[keep] - 1  # 0-based first and last exon base
        if kind == "donor":
            # + strand: the exon's last base is followed by GT; - strand: its first base is preceded by AC (GT read
            # on the minus strand). Boundaries that end a transcript are not splice sites.
            boundary = ends if strand > 0 else starts
            internal = np.asarray([b not in (last if strand > 0 else first) for b in boundary.tolist()], dtype=bool)
            anchor = boundary + 1 if strand > 0 else boundary - 1
            canonical = (
                _dinucleotide_at(raw, anchor, b"GT") if strand > 0 else _dinucleotide_at(raw, anchor - 1, b"AC")
            )
        else:
            boundary = starts if strand > 0 else ends
            internal = np.asarray([b not in (first if strand > 0 else last) for b in boundary.tolist()], dtype=bool)
            anchor = boundary
            canonical = (
                _dinucleotide_at(raw, anchor - 2, b"AG") if strand > 0 else _dinucleotide_at(raw, anchor + 1, b"CT")
            )
        if len(boundary):
            unique_internal = np.unique(anchor[internal])
            unique_canonical = np.unique(anchor[internal & canonical])
            non_canonical += len(unique_internal) - len(unique_canonical)
            anchors.append(unique_canonical)
            strands.append(np.full(len(unique_canonical), strand, dtype=np.int8))
    return np.concatenate(anchors), np.concatenate(strands), non_canonical


def _splice_decoys(chromosome: _Chromosome, genes: AnnotationTable, exons: AnnotationTable, kind: str, distance: int):
    """Anchors and strands of decoy sites: the same dinucleotide at the same place relative to the anchor, inside a
    gene body on the gene's strand, at least `distance` bases from every annotated exon boundary (either strand)."""
    raw, n = chromosome.raw, chromosome.length
    boundaries = np.concatenate([exons.start, exons.end - 1, exons.start - 1, exons.end])
    near = np.diff(_mask(n, boundaries - distance, boundaries + distance + 1)) > 0
    positions = np.arange(n - 1, dtype=np.int32)
    anchors, strands = [], []
    for strand in (1, -1):
        body = _coverage(n, genes, strand)
        if kind == "donor":  # anchor = the G of GT (read on the strand)
            hit = _dinucleotide_at(raw, positions, b"GT" if strand > 0 else b"AC")
            anchor = positions[hit] if strand > 0 else positions[hit] + 1
        else:  # anchor = the base after AG (read on the strand)
            hit = _dinucleotide_at(raw, positions, b"AG" if strand > 0 else b"CT")
            anchor = positions[hit] + 2 if strand > 0 else positions[hit] - 1
        anchor = anchor[(anchor >= 0) & (anchor < n)]
        anchor = anchor[body[anchor] & ~near[anchor]]
        anchors.append(anchor)
        strands.append(np.full(len(anchor), strand, dtype=np.int8))
    return np.concatenate(anchors), np.concatenate(strands)


def _grid(chromosome: _Chromosome, length: int, excluded: np.ndarray) -> np.ndarray:
    """Starts of non-overlapping windows of `length` covering no base of the `excluded` prefix-sum mask."""
    starts = np.arange(0, chromosome.length - length + 1, length, dtype=np.int64)
    return starts[~_any_in(excluded, starts, length)]


def _gc_only_mcc(rows: dict[str, list[tuple[str, int, str]]]) -> float:
    """Test MCC of a logistic regression on the GC fraction alone, fitted on train."""
    from sklearn.linear_model import LogisticRegression

    def features(split):
        sequences = [row[0] for row in rows[split]]
        return np.asarray([[(s.count("G") + s.count("C")) / len(s)] for s in sequences]), [r[1] for r in rows[split]]

    x_train, y_train = features("train")
    x_test, y_test = features("test")
    if len(set(y_train)) < 2 or len(set(y_test)) < 2:
        return float("nan")
    model = LogisticRegression(max_iter=1000).fit(x_train, y_train)
    return float(matthews_corrcoef(y_test, model.predict(x_test)))


class _Assembler:
    """Turns candidate windows of both classes into balanced, GC-matched, deduplicated splits of one task."""

    def __init__(
        self, chromosome: _Chromosome, config: HumanAnnotationTaskConfig, seen: set, rng: np.random.Generator
    ):
        self.chromosome, self.config, self.seen, self.rng = chromosome, config, seen, rng

    def _filter(self, candidates: _Candidates, length: int, counts: dict, label: int):
        checks = self.chromosome.usable(candidates.start, length)
        counts[f"candidates_{label}"] = len(candidates.start)
        counts[f"dropped_{label}"] = {
            "outside_or_not_acgt": int((~checks["clean"]).sum()),
            "blacklisted": int((checks["clean"] & checks["listed"]).sum()),
            "crossing_blocks": int((checks["clean"] & ~checks["listed"] & ~checks["one_block"]).sum()),
        }
        keep = checks["clean"] & ~checks["listed"] & checks["one_block"]
        start, strand = candidates.start[keep], candidates.strand[keep]
        split = self.chromosome.block_split[start // self.chromosome.block_size]
        return start, strand, split

    def _take(self, start: int, strand: int, length: int) -> Optional[str]:
        """The window's text, or None when it (or its reverse complement) was taken before."""
        text = self.chromosome.text(start, strand, length)
        key = min(text, reverse_complement(text))
        if key in self.seen:
            return None
        self.seen.add(key)
        return text

    def assemble(self, positives: _Candidates, negatives: _Candidates, length: int) -> tuple[dict, dict]:
        counts: dict = {"window_length": length}
        p_start, p_strand, p_split = self._filter(positives, length, counts, 1)
        n_start, n_strand, n_split = self._filter(negatives, length, counts, 0)
        bins = self.config.gc_bins
        gc_bin = lambda starts: (  # noqa: E731
            np.minimum((self.chromosome.gc(starts, length) * bins).astype(np.int64), bins - 1)
            if bins
            else np.zeros(len(starts), dtype=np.int64)
        )
        p_bin, n_bin = gc_bin(p_start), gc_bin(n_start)
        rows: dict[str, list] = {}
        counts.update(duplicates_dropped={}, positives_without_matched_negative={})
        block = lambda start: f"{self.config.chrom}:block{start // self.chromosome.block_size}"  # noqa: E731
        for index, split in enumerate(SPLITS):
            cap = self.config.examples_per_class[index]
            duplicates = 0
            positives_kept = []
            for i in self.rng.permutation(np.flatnonzero(p_split == index)).tolist():
                text = self._take(int(p_start[i]), int(p_strand[i]), length)
                if text is None:
                    duplicates += 1
                    continue
                positives_kept.append((text, int(p_bin[i]), block(int(p_start[i]))))
                if len(positives_kept) == cap:
                    break
            # Negatives matched bin by bin; a bin short of negatives keeps only as many positives as it has.
            pool = np.flatnonzero(n_split == index)
            pool = pool[self.rng.permutation(len(pool))]
            pool_by_bin = {b: pool[n_bin[pool] == b] for b in np.unique(n_bin[pool]).tolist()}
            wanted: dict[int, list] = {}
            for row in positives_kept:
                wanted.setdefault(row[1], []).append(row)
            kept, unmatched = [], 0
            for gc, group_rows in sorted(wanted.items()):
                negatives_found = []
                for i in pool_by_bin.get(gc, np.zeros(0, dtype=np.int64)).tolist():
                    text = self._take(int(n_start[i]), int(n_strand[i]), length)
                    if text is None:
                        duplicates += 1
                        continue
                    negatives_found.append((text, 0, block(int(n_start[i]))))
                    if len(negatives_found) == len(group_rows):
                        break
                unmatched += len(group_rows) - len(negatives_found)
                kept.extend((text, 1, group) for text, _, group in group_rows[: len(negatives_found)])
                kept.extend(negatives_found)
            rows[split] = [kept[i] for i in self.rng.permutation(len(kept))]
            counts["duplicates_dropped"][split] = duplicates
            counts["positives_without_matched_negative"][split] = unmatched
        counts["examples"] = {split: len(split_rows) for split, split_rows in rows.items()}
        return rows, counts


def build_human_annotation_tasks(
    fasta: PathLike,
    tables: dict[str, PathLike],
    config: Optional[HumanAnnotationTaskConfig] = None,
    tasks: Sequence[str] = HUMAN_ANNOTATION_TASK_NAMES,
) -> GenomeTasks:
    """Build the human annotation tasks (see the module docstring).

    Args:
        fasta: the chromosome's FASTA (gzip is fine). tables: `{table name: path}` for [`ANNOTATION_TABLES`]
            (e.g. from [`shared_annotation_paths`]). tasks: which of [`HUMAN_ANNOTATION_TASK_NAMES`] to build.

    Returns:
        [`GenomeTasks`]: `tasks[task][split]` = `[(SEQUENCE, label, group)]`, classes balanced and GC-matched per
        split; `metadata["tasks"][task]` holds the window length, candidates per class, what was dropped and why,
        examples per split and the GC-only classifier's test MCC.

    Raises:
        [`EmptyTaskError`]: a task has no example in some split (with the counts); `ValueError`: unknown task.
    """
    config = config or HumanAnnotationTaskConfig()
    unknown = [task for task in tasks if task not in HUMAN_ANNOTATION_TASK_NAMES]
    if unknown:
        raise ValueError(f"unknown human annotation tasks {unknown}; known: {HUMAN_ANNOTATION_TASK_NAMES}.")
    missing = [name for name in ANNOTATION_TABLES if name not in tables]
    if missing:
        raise ValueError(f"`tables` lacks {missing}.")
    read = {name: read_annotation_table(tables[name], config.chrom) for name in ANNOTATION_TABLES}
    chromosome = _Chromosome(read_chromosome(fasta, config.chrom), read["blacklist_v2"], config)
    n, lengths = chromosome.length, config.window_lengths
    rng = np.random.default_rng(config.seed + 1)
    seen: set = set()
    out: dict = {}
    info: dict = {}
    for task in tasks:
        length = lengths[task]
        extra: dict = {}
        if task == "human_promoter":
            coding = np.asarray([t == "protein_coding" for t in read["transcripts"].gene_type], dtype=bool)
            tx = read["transcripts"]
            anchor = np.where(tx.strand > 0, tx.start, tx.end - 1)[coding & (tx.strand != 0)]
            anchor, strand = _thin(anchor, tx.strand[coding & (tx.strand != 0)], config.min_positive_spacing)
            positives = _Candidates(_oriented_start(anchor, strand, PROMOTER_UPSTREAM, length), strand)
            # Far from every annotated TSS: the genes' and both ends of every transcript (either strand).
            every_tss = np.concatenate([read["tss"].start, tx.start, tx.end - 1])
            excluded = _mask(n, every_tss - config.promoter_exclusion, every_tss + config.promoter_exclusion + 1)
            starts = _grid(chromosome, length, excluded)
            negatives = _Candidates(starts, np.where(rng.random(len(starts)) < 0.5, 1, -1).astype(np.int8))
        elif task in ("human_splice_donor", "human_splice_acceptor"):
            kind = "donor" if task == "human_splice_donor" else "acceptor"
            anchor, strand, extra["non_canonical_internal_sites"] = _splice_sites(
                chromosome, read["exons"], read["transcripts"], kind
            )
            anchor, strand = _thin(anchor, strand, config.min_positive_spacing)
            positives = _Candidates(_oriented_start(anchor, strand, length // 2, length), strand)
            decoy, decoy_strand = _splice_decoys(
                chromosome, read["genes"], read["exons"], kind, config.decoy_min_distance
            )
            negatives = _Candidates(_oriented_start(decoy, decoy_strand, length // 2, length), decoy_strand)
        elif task == "human_cpg_island":
            islands = read["cpg_islands"]
            covered = _coverage(n, islands)
            tiled = _tile(covered, length)
            short = (islands.end - islands.start) < length
            centred = (islands.start + islands.end) // 2 - length // 2
            positives = _Candidates.reference(np.unique(np.concatenate([tiled, centred[short]])))
            negatives = _Candidates.reference(
                _grid(chromosome, length, _mask(n, islands.start - length, islands.end + length))
            )
        elif task == "human_ctcf":
            sites = read["ctcf"]
            centre = (sites.start + sites.end) // 2
            anchor, _ = _thin(centre, np.ones(len(centre), dtype=np.int8), config.min_positive_spacing)
            positives = _Candidates.reference(anchor - length // 2)
            negatives = _Candidates.reference(
                _grid(chromosome, length, _mask(n, sites.start - length, sites.end + length))
            )
        else:  # human_coding_vs_utr
            cds_any, utr_any = _coverage(n, read["cdss"]), _coverage(n, read["utrs"])
            starts = {1: [], 0: []}
            strands = {1: [], 0: []}
            for strand in (1, -1):
                for label, own, other in ((1, read["cdss"], utr_any), (0, read["utrs"], cds_any)):
                    tiled = _tile(_coverage(n, own, strand) & ~other, length)
                    starts[label].append(tiled)
                    strands[label].append(np.full(len(tiled), strand, dtype=np.int8))
            positives = _Candidates(np.concatenate(starts[1]), np.concatenate(strands[1]))
            negatives = _Candidates(np.concatenate(starts[0]), np.concatenate(strands[0]))
        rows, counts = _Assembler(chromosome, config, seen, rng).assemble(positives, negatives, length)
        counts.update(extra)
        empty = [split for split, split_rows in rows.items() if not split_rows]
        if empty:
            raise EmptyTaskError(
                f"{task}: no examples in {empty} (examples per split: {counts['examples']}; candidates: "
                f"{counts['candidates_1']} positive, {counts['candidates_0']} negative); use a larger chromosome or "
                "smaller blocks."
            )
        counts["gc_only_test_mcc"] = round(_gc_only_mcc(rows), 4)
        out[task] = rows
        info[task] = counts
    metadata = {
        "source": os.path.basename(os.fspath(fasta)),
        "annotation": {name: os.path.basename(os.fspath(path)) for name, path in tables.items()},
        "chrom": config.chrom,
        "chromosome_length": n,
        "blocks": {split: int((chromosome.block_split == i).sum()) for i, split in enumerate(SPLITS)},
        "config": asdict(config),
        "tasks": info,
    }
    return GenomeTasks(out, metadata)


def corpus_holds_chromosome(
    task_folders: dict[str, PathLike], corpus_paths: Sequence[PathLike], min_fraction: float = 0.5
) -> Optional[str]:
    """A one-line refusal when a pre-training FASTA holds the held-out chromosome, else `None`.

    Each corpus file is read once, against the test rows of one human annotation task of `task_folders` (the first
    of [`HUMAN_ANNOTATION_TASK_NAMES`] present): when at least `min_fraction` of them occur verbatim (either strand)
    in a file, that file holds the chromosome itself, not a few shared repeat copies, and the message names it.
    """
    present = [name for name in HUMAN_ANNOTATION_TASK_NAMES if name in task_folders]
    if not present:
        return None
    name = present[0]
    for path in corpus_paths:
        report = leakage_report(os.fspath(task_folders[name]), [os.fspath(path)], splits=("test",))
        counts = next(iter(report["tasks"].values()))["test"]
        if counts["checked"] and counts["occurring"] >= min_fraction * counts["checked"]:
            return (
                f"pre-training corpus {os.fspath(path)!r} contains the held-out human chromosome: "
                f"{counts['occurring']} of {counts['checked']} {name} test windows occur in it verbatim; "
                "pre-train without it (the chr22 segments, the fungus, the bacteria) and evaluate again."
            )
    return None
