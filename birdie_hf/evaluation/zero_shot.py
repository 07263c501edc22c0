"""Zero-shot read-outs: what a frozen checkpoint's likelihoods say about held-out DNA, beside the readers that only
know base composition, with intervals and decisions.

Two read-outs on genomes held out of pre-training (by default [`~.genome_tasks.HELD_OUT_GENOMES`], from their gene
calls):

- **Variant-effect proxy**: single-base substitutions inside complete called CDSs (not in the start or stop codon),
  classed with the genetic code as synonymous, missense or stop-gain. A reader scores each substitution by its
  log-likelihood ratio `LLR = log p(alt) - log p(ref)`; `-LLR` should rank damaging changes above synonymous ones.
  Reported as AUROC of stop-gain vs synonymous and missense vs synonymous, **stratified by substitution type** (the
  six strand-collapsed types `C>A, C>G, C>T, T>A, T>C, T>G`: only pairs of one type are compared), so a reader that
  only knows which bases are rare scores 0.5; beside it, stratified by trinucleotide context (the type with its two
  neighbours, 96 classes: a reader of local context alone scores 0.5, as stop-gains need particular neighbours) and
  unstratified (86% of stop-gain alternate alleles are A/T, so composition alone separates the classes).
- **Masked-base NLL**: random held-out sites, `-log p(ref)` in nats.

Every site is read on **both strands** (the reverse complement of its context with complemented alleles) and the two
scores are averaged. Readings of each checkpoint (and of its random-init control):

- `bidirectional, single gap`: the site is a one-base gap of the infilling prompt in a window centred on it;
- `bidirectional, training layout`: the window is placed so that the site falls inside a gap of a layout the
  checkpoint's own infilling entries draw (several gaps, the site anywhere in one of them); the LLR is the ratio of
  the likelihoods of everything masked, with the alternate and with the reference base (teacher-forced, as the
  objective's loss reads it);
- `causal, site`: `log p(base | left flank)`, the window ending at the site read left to right;
- `causal, window` (variants only): the ratio of the whole centred window's left-to-right likelihoods.

Readers that need no model: `composition (window)` (the base frequencies of the site's own window, the site left
out), `composition (corpus)` (the pre-training corpus's base frequencies) and `markov-k` (an order-k chain fit on
the corpus, read with both flanks: the exact posterior of one base given k bases on each side).

Intervals are a cluster bootstrap over genes (variants) or 10 kbp blocks (sites), with the same resamples for every
reader, so differences are paired; across pre-training seeds (`arm@seed`) the spread over seeds is added as the probe
instrument does ([`~.instrument.paired_differences`]). Each pre-trained reading is differenced against the
random-init control read the same way and against `composition (window)`.
"""

from __future__ import annotations

import itertools
import time
from collections import defaultdict
from dataclasses import asdict, dataclass
from typing import Optional, Sequence, Union

import numpy as np

from ..data.fasta import iter_fasta
from ..inference import gap_log_probs, infilling_limits, score, trained_with_infilling, variant_effect
from ..objectives.spans import sample_noise_layout
from ..vocabulary import reverse_complement
from .baselines import MarkovModel
from .genome_tasks import GenomeSource
from .gff import iter_gene_calls
from .instrument import (
    DECISION_RULE,
    Arm,
    check_arm_names,
    check_baselines,
    control_arms,
    differences_markdown,
    paired_differences,
    reference_rows,
    summary_markdown,
    write_results,
)
from .statistics import GroupBootstrap, percentile_interval


BASES = "ACGT"
_INDEX = {base: i for i, base in enumerate(BASES)}
CONSEQUENCES = ("synonymous", "missense", "stop_gain")
#: The standard genetic code (bacterial table 11 translates the same codons), codons in TCAG order; stops are `*`.
GENETIC_CODE = dict(
    zip(
        map("".join, itertools.product("TCAG", repeat=3)),
        "FFLLSSSSYY**CC*WLLLLPPPPHHQQRRRRIIIMTTTTNNKKSSRRVVVVAAAADDEEGGGG",
    )
)


class ReadoutDeadlineError(TimeoutError):
    """A zero-shot read-out reached its deadline before every model was read."""


SUBSTITUTION_TYPES = ("C>A", "C>G", "C>T", "T>A", "T>C", "T>G")
COMPOSITION_WINDOW = "composition (window)"
COMPOSITION_CORPUS = "composition (corpus)"
SINGLE_GAP, LAYOUT = "bidirectional, single gap", "bidirectional, training layout"
CAUSAL_SITE, CAUSAL_WINDOW = "causal, site", "causal, window"


@dataclass(frozen=True)
class Site:
    """A held-out base with `flank` bases of context on each side, read on the genome's + strand.

    `context[flank]` is the site; `alt` is the substitute base (`None` for a masked-base NLL site); `group` is what
    the bootstrap resamples (a gene, a genome block)."""

    genome: str
    record: str
    position: int
    context: str
    group: str
    alt: Optional[str] = None
    consequence: Optional[str] = None

    @property
    def flank(self) -> int:
        return len(self.context) // 2

    @property
    def ref(self) -> str:
        return self.context[self.flank]

    @property
    def substitution(self) -> str:
        """The strand-collapsed substitution type, e.g. `G>A` on the + strand is `C>T`."""
        ref, alt = self.ref, self.alt
        if ref in "AG":
            ref, alt = reverse_complement(ref), reverse_complement(alt)
        return f"{ref}>{alt}"

    @property
    def trinucleotide(self) -> str:
        """The strand-collapsed substitution with its neighbouring bases, e.g. `A[C>T]G` (96 classes)."""
        left, ref, right = self.context[self.flank - 1 : self.flank + 2]
        alt = self.alt
        if ref in "AG":
            left, ref, right, alt = (reverse_complement(b) for b in (right, ref, left, alt))
        return f"{left}[{ref}>{alt}]{right}"


def substitution_consequence(codon: str, offset: int, alt: str) -> str:
    """`synonymous`, `missense` or `stop_gain` for replacing base `offset` of a sense `codon` by `alt`."""
    before = GENETIC_CODE[codon]
    after = GENETIC_CODE[codon[:offset] + alt + codon[offset + 1 :]]
    return "synonymous" if after == before else "stop_gain" if after == "*" else "missense"


def _records(source: GenomeSource) -> dict[str, str]:
    return {record.name: record.sequence.decode("ascii").upper() for record in iter_fasta(source.fasta)}


def _context(sequence: str, position: int, flank: int) -> Optional[str]:
    if position < flank or position + flank + 1 > len(sequence):
        return None
    context = sequence[position - flank : position + flank + 1]
    return context if set(context) <= set(BASES) else None


def coding_variants(
    sources: Sequence[GenomeSource], per_class: int = 500, flank: int = 256, seed: int = 0
) -> list[Site]:
    """`per_class` substitutions of each consequence, drawn uniformly from every possible substitution inside the
    complete gene calls of `sources` (codons between the start and the stop codon, sense codons only, three
    alternatives per base), each with `flank` bases of clean (A/C/G/T) context on both sides. The group of a variant
    is its gene. Draws are made until every class is full (stop-gains, the rarest, are about 4% of substitutions).

    Raises:
        `ValueError`: the genes hold too few substitutions of some class (e.g. a tiny genome).
    """
    rng = np.random.default_rng(seed)
    genes = []  # (genome, record sequence, gene call, coding sequence)
    for source in sources:
        records = _records(source)
        for gene in iter_gene_calls(source.gff):
            sequence = records.get(gene.seqid)
            if gene.partial or sequence is None or gene.length % 3 or gene.length < 9 or gene.end > len(sequence):
                continue
            coding = sequence[gene.start : gene.end]
            genes.append((source.name, sequence, gene, coding if gene.strand > 0 else reverse_complement(coding)))
    if not genes:
        raise ValueError("no complete gene call in the zero-shot genomes.")
    codons = np.array([gene.length // 3 - 2 for _, _, gene, _ in genes], dtype=np.float64)  # inner codons
    counts, variants, seen = dict.fromkeys(CONSEQUENCES, 0), [], set()
    for _ in range(200 * per_class * len(CONSEQUENCES)):
        if min(counts.values()) >= per_class:
            break
        genome, sequence, gene, coding = genes[int(rng.choice(len(genes), p=codons / codons.sum()))]
        codon_index = 1 + int(rng.integers(gene.length // 3 - 2))
        offset, codon = int(rng.integers(3)), coding[3 * codon_index : 3 * codon_index + 3]
        alt = BASES[(BASES.index(codon[offset]) + 1 + int(rng.integers(3))) % 4] if codon[offset] in BASES else None
        if alt is None or codon not in GENETIC_CODE or GENETIC_CODE[codon] == "*":
            continue
        kind = substitution_consequence(codon, offset, alt)
        index = 3 * codon_index + offset
        position = gene.start + index if gene.strand > 0 else gene.end - 1 - index
        genome_alt = alt if gene.strand > 0 else reverse_complement(alt)
        key = (genome, gene.seqid, position, genome_alt)  # one genomic change, even where genes overlap
        if counts[kind] >= per_class or key in seen:
            continue
        context = _context(sequence, position, flank)
        if context is None:
            continue
        seen.add(key)
        gene_id = f"{genome}:{gene.seqid}:{gene.start}-{gene.end}"
        variants.append(Site(genome, gene.seqid, position, context, gene_id, genome_alt, kind))
        counts[kind] += 1
    if min(counts.values()) < per_class:
        raise ValueError(f"found only {counts} of {per_class} substitutions per consequence in the zero-shot genes.")
    return variants


def random_sites(
    sources: Sequence[GenomeSource], count: int = 1500, flank: int = 256, block_size: int = 10_000, seed: int = 0
) -> list[Site]:
    """`count` sites drawn uniformly over the bases of `sources` (with clean context), grouped by `block_size` blocks."""
    rng = np.random.default_rng(seed)
    records = [(source.name, name, text) for source in sources for name, text in _records(source).items()]
    lengths = np.array([len(text) for _, _, text in records], dtype=np.float64)
    sites, tries = [], 0
    while len(sites) < count:
        tries += 1
        if tries > 100 * count + 1000:
            raise ValueError(f"found only {len(sites)} of {count} sites with {flank} clean bases on each side.")
        genome, record, text = records[int(rng.choice(len(records), p=lengths / lengths.sum()))]
        position = int(rng.integers(0, len(text)))
        context = _context(text, position, flank)
        if context is not None:
            sites.append(Site(genome, record, position, context, f"{genome}:{record}:{position // block_size}"))
    return sites


# -- statistics -------------------------------------------------------------------------------------------------------
def stratified_auroc(
    positive: np.ndarray,
    negative: np.ndarray,
    positive_strata: Optional[Sequence] = None,
    negative_strata: Optional[Sequence] = None,
    positive_weights: Optional[np.ndarray] = None,
    negative_weights: Optional[np.ndarray] = None,
) -> np.ndarray:
    """P(a positive scores above a negative of the same stratum) + ties / 2, over all such pairs.

    Args:
        positive, negative: scores, shapes `(P,)` and `(N,)`.
        positive_strata, negative_strata: a stratum per example (None: one stratum, the ordinary AUROC).
        positive_weights, negative_weights: `(R, P)` and `(R, N)` example weights (e.g. bootstrap replicates); each
            pair counts with the product of its weights. None: weight 1, one replicate.

    Returns:
        `np.ndarray` of shape `(R,)` (NaN where no pair is weighted).
    """
    positive, negative = np.asarray(positive, dtype=np.float64), np.asarray(negative, dtype=np.float64)
    pw = np.ones((1, positive.size)) if positive_weights is None else np.asarray(positive_weights, dtype=np.float64)
    nw = np.ones((1, negative.size)) if negative_weights is None else np.asarray(negative_weights, dtype=np.float64)
    ps = np.zeros(positive.size, dtype=int) if positive_strata is None else np.asarray(positive_strata)
    ns = np.zeros(negative.size, dtype=int) if negative_strata is None else np.asarray(negative_strata)
    numerator = np.zeros(max(len(pw), len(nw)))
    denominator = np.zeros_like(numerator)
    for stratum in np.intersect1d(ps, ns):
        p, n = ps == stratum, ns == stratum
        wins = (positive[p][:, None] > negative[n][None, :]) + 0.5 * (positive[p][:, None] == negative[n][None, :])
        numerator += np.einsum("rp,pn,rn->r", pw[:, p], wins, nw[:, n])
        denominator += pw[:, p].sum(1) * nw[:, n].sum(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return numerator / denominator


# -- readers that need no model ---------------------------------------------------------------------------------------
def _strands(site: Site) -> list[tuple[str, str, Optional[str]]]:
    """`(context, ref, alt)` on the + strand and on the - strand (site at the centre of both)."""
    alt = site.alt
    return [
        (site.context, site.ref, alt),
        (reverse_complement(site.context), reverse_complement(site.ref), alt and reverse_complement(alt)),
    ]


def composition_log_probs(window: str, site: int) -> np.ndarray:
    """log of the window's base frequencies, the site left out (add-one smoothing), shape `(4,)`."""
    counts = np.array([window.count(b) for b in BASES], dtype=np.float64) + 1.0
    counts[_INDEX[window[site]]] -= 1.0
    return np.log(counts / counts.sum())


def markov_site_log_probs(markov: MarkovModel, left: str, right: str) -> np.ndarray:
    """log p(site = b | left, right) for b in A, C, G, T under an order-k chain (k = `markov.order`): the exact
    posterior, proportional to p(b | last k of left) times the chain's probability of the next k bases of right."""
    k = markov.order
    scores = np.array([markov.log_likelihood(left[len(left) - k :] + b + right[:k]).sum() for b in BASES])
    return scores - np.logaddexp.reduce(scores)


def _window(context: str, flank: int, length: int, offset: int) -> str:
    """`length` bases of `context` with its centre (`flank`) at index `offset`."""
    return context[flank - offset : flank - offset + length]


def classical_scores(
    sites: Sequence[Site], window_length: int, corpus_log_probs: np.ndarray, markovs: Sequence[MarkovModel]
) -> dict[str, np.ndarray]:
    """Per reader, each site's score averaged over both strands: the LLR for variants, `-log p(ref)` otherwise."""
    out = defaultdict(list)
    centre = window_length // 2
    for site in sites:
        per_strand = defaultdict(list)
        for context, ref, alt in _strands(site):
            flank = len(context) // 2
            window = _window(context, flank, window_length, centre)
            readers = {
                COMPOSITION_WINDOW: composition_log_probs(window, centre),
                COMPOSITION_CORPUS: corpus_log_probs,
            }
            for markov in markovs:
                left, right = window[:centre], window[centre + 1 :]
                readers[f"markov-{markov.order}"] = markov_site_log_probs(markov, left, right)
            for name, log_probs in readers.items():
                per_strand[name].append(_site_score(log_probs, ref, alt))
        for name, values in per_strand.items():
            out[name].append(float(np.mean(values)))
    return {name: np.array(values) for name, values in out.items()}


def _site_score(log_probs: np.ndarray, ref: str, alt: Optional[str]) -> float:
    return float(log_probs[_INDEX[alt]] - log_probs[_INDEX[ref]]) if alt else float(-log_probs[_INDEX[ref]])


def corpus_composition(markov: MarkovModel) -> np.ndarray:
    """log base frequencies (add-one) of the corpus `markov` was fit on, from its order-0 counts, shape `(4,)`: the
    corpus is read once, for the Markov readers and the composition reader alike."""
    counts = markov.counts(0).reshape(-1).astype(np.float64) + 1.0
    return np.log(counts / counts.sum())


# -- readers of a checkpoint ------------------------------------------------------------------------------------------
def _layout_view(
    context: str, rng: np.random.Generator, window_length: int, entries: Sequence, num_sentinels: int
) -> tuple[str, list[tuple[int, int]], int]:
    """A window of `context` and the gaps of one layout drawn by the infilling entries, placed so that the centre of
    `context` is a masked base (drawn uniformly among the layout's masked bases); returns `(window, gaps, site)`."""
    rate, span, *kind = entries[int(rng.integers(len(entries)))]
    layout = sample_noise_layout(rng, window_length, rate, span, num_sentinels, *kind)
    gaps = [(int(s), int(s + n)) for s, n, noisy in zip(layout.starts, layout.lengths, layout.is_noise) if noisy]
    masked = np.concatenate([np.arange(start, end) for start, end in gaps])
    site = int(masked[rng.integers(masked.size)])
    return _window(context, len(context) // 2, window_length, site), gaps, site


def checkpoint_scores(
    model,
    tokenizer,
    sites: Sequence[Site],
    window_length: int,
    readings: Sequence[str],
    batch_size: int = 32,
    seed: int = 0,
) -> dict[str, np.ndarray]:
    """Per reading (of `SINGLE_GAP`, `LAYOUT`, `CAUSAL_SITE`, `CAUSAL_WINDOW`), each site's score averaged over both
    strands: the LLR `log p(alt) - log p(ref)` for variants, `-log p(ref)` for masked-base sites."""
    variants = sites[0].alt is not None
    centre = window_length // 2
    out = {}
    if variants and ({SINGLE_GAP, CAUSAL_SITE, CAUSAL_WINDOW} & set(readings)):
        effects = variant_effect(
            model,
            tokenizer,
            [(s.context, s.flank, s.ref, s.alt) for s in sites],
            bidirectional=SINGLE_GAP in readings,
            causal=bool({CAUSAL_SITE, CAUSAL_WINDOW} & set(readings)),
            reverse_complement_average=True,
            window_length=window_length,
            batch_size=batch_size,
            strict=False,  # a centred gap may be off the training layouts: that is what this reading measures
            disable_tqdm=True,
        )
        for reading, key in ((SINGLE_GAP, "bidirectional_llr"), (CAUSAL_SITE, "causal_site_llr")):
            if reading in readings:
                out[reading] = np.array([getattr(e, key) for e in effects], dtype=np.float64)
        if CAUSAL_WINDOW in readings:
            out[CAUSAL_WINDOW] = np.array([e.causal_llr for e in effects], dtype=np.float64)
    views = [(context, ref, alt) for site in sites for context, ref, alt in _strands(site)]
    if not variants and SINGLE_GAP in readings:
        windows = [_window(c, len(c) // 2, window_length, centre) for c, _, _ in views]
        log_probs = gap_log_probs(
            model, tokenizer, windows, [[(centre, centre + 1)]] * len(windows), batch_size=batch_size,
            strict=False, disable_tqdm=True,
        )  # fmt: skip
        out[SINGLE_GAP] = _strand_mean([-lp[0, _INDEX[ref]] for lp, (_, ref, _) in zip(log_probs, views)])
    if not variants and CAUSAL_SITE in readings:
        windows = [_window(c, len(c) // 2, centre + 1, centre) for c, _, _ in views]
        scored = score(model, tokenizer, windows, bidirectional=False, batch_size=batch_size, disable_tqdm=True)
        out[CAUSAL_SITE] = _strand_mean([-s.causal[centre] for s in scored])
    if LAYOUT in readings:
        limits = infilling_limits(model, tokenizer)
        rng = np.random.default_rng(seed)
        drawn = [_layout_view(c, rng, window_length, limits.entries, limits.num_sentinels) for c, _, _ in views]
        sequences, gap_lists = [w for w, _, _ in drawn], [g for _, g, _ in drawn]
        if variants:  # the same layout with the alternate base: the ratio of everything masked
            sequences += [w[:s] + alt + w[s + 1 :] for (w, _, s), (_, _, alt) in zip(drawn, views)]
            gap_lists += gap_lists
        log_probs = gap_log_probs(
            model, tokenizer, sequences, gap_lists, batch_size=batch_size, strict=False, disable_tqdm=True
        )
        totals = []
        for lp, window, gaps in zip(log_probs, sequences, gap_lists):
            masked = np.concatenate([np.arange(start, end) for start, end in gaps])
            truth = [_INDEX[window[i]] for i in masked]
            totals.append((lp, float(lp[np.arange(len(truth)), truth].sum()), masked))
        if variants:
            half = len(drawn)
            out[LAYOUT] = _strand_mean([totals[half + i][1] - totals[i][1] for i in range(half)])
        else:
            nll = []
            for (lp, _, masked), (window, _, site), (_, ref, _) in zip(totals, drawn, views):
                nll.append(-lp[int(np.flatnonzero(masked == site)[0]), _INDEX[ref]])
            out[LAYOUT] = _strand_mean(nll)
    return out


def _strand_mean(values: Sequence[float]) -> np.ndarray:
    """Views come in (+ strand, - strand) pairs: their mean per site."""
    return np.asarray(values, dtype=np.float64).reshape(-1, 2).mean(axis=1)


def model_readings(model, readings: Sequence[str], variants: bool) -> list[str]:
    """The readings of `readings` a checkpoint supports: bidirectional ones need infilling in its training mixture;
    `causal, window` is a variant reading."""
    bidirectional = bool(trained_with_infilling(model))
    return [
        r for r in readings if (bidirectional or r not in (SINGLE_GAP, LAYOUT)) and (variants or r != CAUSAL_WINDOW)
    ]


# -- the read-outs ----------------------------------------------------------------------------------------------------
@dataclass
class ZeroShotConfig:
    """Parameters:
    variants_per_class (`int`, defaults to `500`): substitutions of each consequence.
    sites (`int`, defaults to `1500`): masked-base NLL sites.
    window_length (`int`, *optional*): bases read around a site; defaults to the checkpoints' training window; an
        even length is read one base shorter, so that the site is centred on both strands.
    readings (`tuple`): model readings (see the module docstring).
    markov_orders (`tuple`, defaults to `(2, 5)`): orders of the bidirectional Markov readers.
    batch_size (`int`, defaults to `32`).
    n_resamples (`int`, defaults to `2000`): bootstrap replicates.
    seed (`int`, defaults to `0`): draws of sites, variants, layouts and resamples.
    random_init_seeds (`tuple`, defaults to `(0,)`): seeds of the random-init controls.
    """

    variants_per_class: int = 500
    sites: int = 1500
    window_length: Optional[int] = None
    readings: tuple = (SINGLE_GAP, LAYOUT, CAUSAL_SITE, CAUSAL_WINDOW)
    markov_orders: tuple = (2, 5)
    batch_size: int = 32
    n_resamples: int = 2000
    seed: int = 0
    random_init_seeds: tuple = (0,)

    def __post_init__(self):
        known = (SINGLE_GAP, LAYOUT, CAUSAL_SITE, CAUSAL_WINDOW)
        unknown = [r for r in self.readings if r not in known]
        if unknown or not self.readings:
            raise ValueError(f"`readings` must be a non-empty subset of {known}, got {self.readings}.")
        if self.variants_per_class < 2 or self.sites < 2:
            raise ValueError("`variants_per_class` and `sites` must be at least 2.")
        if self.window_length is not None and self.window_length < 8:
            raise ValueError(f"`window_length` must be at least 8 bases, got {self.window_length}.")


def _readout_metrics(variants: bool) -> dict[str, dict]:
    if not variants:
        return {"masked_base_nll": {"label": "NLL / base (nats)", "higher_is_better": False}}
    return {
        f"{kind}_vs_synonymous{suffix}": {"label": "AUROC", "higher_is_better": True, "kind": kind, "strata": strata}
        for kind in ("stop_gain", "missense")
        for suffix, strata in (("", "substitution"), (" (trinucleotide)", "trinucleotide"), (" (unstratified)", None))
    }


def _score_metric(spec: dict, scores: np.ndarray, sites: Sequence[Site], weights: np.ndarray) -> tuple:
    """(value on the full set, replicates) of one metric for one reader's scores; `weights`: `(R, n)`."""
    if "kind" not in spec:
        full = float(np.mean(scores))
        return full, (weights @ scores) / weights.sum(1)
    kinds = np.array([s.consequence for s in sites])
    strata = np.array([getattr(s, spec["strata"]) for s in sites]) if spec["strata"] else np.zeros(len(sites), int)
    pos, neg = kinds == spec["kind"], kinds == "synonymous"
    damage = -scores  # a lower likelihood ratio should mean a more damaging change
    full = stratified_auroc(damage[pos], damage[neg], strata[pos], strata[neg])[0]
    reps = stratified_auroc(damage[pos], damage[neg], strata[pos], strata[neg], weights[:, pos], weights[:, neg])
    return float(full), reps


def evaluate_zero_shot(
    sites: Sequence[Site],
    arms: Sequence[Arm],
    config: ZeroShotConfig,
    corpus_log_probs: np.ndarray,
    markovs: Sequence[MarkovModel],
    baseline: Union[None, str, Sequence[str]] = None,
    progress=None,
    deadline: Optional[float] = None,
) -> dict[str, dict]:
    """Score `sites` with every arm (pre-trained and controls) and the classical readers; returns one result per
    metric, shaped as the probe instrument's task results (`sizes`, `rows`, `differences`) plus `metric`. With a
    `deadline` (`time.time()`), no arm starts after it: [`ReadoutDeadlineError`]."""
    variants = sites[0].alt is not None
    window_length = _window_length(arms, config.window_length)
    bootstrap = GroupBootstrap([s.group for s in sites], n_resamples=config.n_resamples, seed=config.seed)
    weights = bootstrap.weights[:, bootstrap.group_index].astype(np.float64)
    scored = []  # (readout, reading, seed, kind, scores)
    for reader, scores in classical_scores(sites, window_length, corpus_log_probs, markovs).items():
        scored.append((reader, "-", "0", "baseline", scores))
    for done, arm in enumerate(arms):
        if deadline is not None and time.time() > deadline:
            raise ReadoutDeadlineError(
                f"the zero-shot read-out reached its deadline with {len(arms) - done} of {len(arms)} models of the "
                f"{'variants' if variants else 'sites'} still to read."
            )
        readings = model_readings(arm.model, config.readings, variants)
        by_reading = checkpoint_scores(
            arm.model, arm.tokenizer, sites, window_length, readings, config.batch_size, config.seed
        )
        for reading, scores in by_reading.items():
            scored.append((arm.name, reading, arm.seed, arm.kind, scores))
        if progress is not None:
            progress.update(1)
    results = {}
    for metric, spec in _readout_metrics(variants).items():
        rows, by_key, kinds = [], defaultdict(dict), {}
        for readout, reading, seed, kind, scores in scored:
            full, replicates = _score_metric(spec, scores, sites, weights)
            rows.append(
                {"readout": readout, "reading": reading, "seed": seed, "kind": kind,
                 "test": percentile_interval(full, replicates).to_dict()}
            )  # fmt: skip
            by_key[(readout, reading)][seed] = (full, replicates)
            kinds[(readout, reading)] = kind
        references = reference_rows(baseline)
        references.insert(1, (COMPOSITION_WINDOW, "composition", "-"))
        differences = paired_differences(by_key, kinds, references, higher_is_better=spec["higher_is_better"])
        counts = {k: sum(s.consequence == k for s in sites) for k in CONSEQUENCES} if variants else len(sites)
        results[metric] = {
            "task": metric,
            "metric": spec["label"],
            "higher_is_better": spec["higher_is_better"],
            "sizes": {"test": {"examples": len(sites), "groups": bootstrap.num_groups, "classes": counts}},
            "window_length": window_length,
            "rows": rows,
            "differences": differences,
        }
    return results


def _window_length(arms: Sequence[Arm], requested: Optional[int] = None) -> int:
    """The bases read around a site: `requested`, else the checkpoints' training window (256 if unrecorded), made
    odd (one base less) so that the site is centred on both strands."""
    recorded = getattr(arms[0].model.config, "birdie_window_length", None)
    length = int(requested or recorded or 256)
    return length if length % 2 else length - 1


def run_zero_shot(
    arms: Sequence[Arm],
    sources: Sequence[GenomeSource],
    corpus: Sequence[str],
    config: Optional[ZeroShotConfig] = None,
    baseline: Union[None, str, Sequence[str]] = None,
    show_progress: bool = True,
    deadline: Optional[float] = None,
) -> dict:
    """Both zero-shot read-outs for `arms` plus random-init controls and the classical readers.

    Args:
        arms: pre-trained checkpoints (`arm@seed` names as for [`~.instrument.run_probe_suite`]).
        sources: held-out genomes with gene calls (disjoint from pre-training).
        corpus: FASTA files of the pre-training corpus (for `composition (corpus)` and the Markov readers).
        deadline: `time.time()` after which no further model is read; reaching it raises [`ReadoutDeadlineError`]
            (a model being read finishes first), so a caller with a time budget loses the read-out, not its budget.

    Returns `{"config", "decision_rule", "arms", "tasks": {metric: result}}`, readable by
    [`zero_shot_markdown`] and [`~.instrument.plot_results`].
    """
    from tqdm.auto import tqdm

    config = config or ZeroShotConfig()
    if not arms:
        raise ValueError("no checkpoints to evaluate.")
    check_baselines(arms, baseline)
    check_arm_names(arms, config.random_init_seeds, baseline)
    everything = list(arms) + control_arms(arms, config.random_init_seeds)
    window_length = _window_length(arms, config.window_length)
    flank = window_length

    def sequences():
        for path in corpus:
            for record in iter_fasta(path):
                yield record.sequence

    top = MarkovModel(max(config.markov_orders)).fit(sequences())
    markovs = [top.with_order(order) for order in sorted(config.markov_orders)]
    corpus_log_probs = corpus_composition(top)
    variants = coding_variants(sources, config.variants_per_class, flank, config.seed)
    sites = random_sites(sources, config.sites, flank, seed=config.seed)
    tasks = {}
    with tqdm(total=2 * len(everything), desc="zero-shot", unit="read-out", disable=not show_progress) as progress:
        for name, chosen in (("variants", variants), ("sites", sites)):
            progress.set_postfix_str(name)
            tasks.update(
                evaluate_zero_shot(chosen, everything, config, corpus_log_probs, markovs, baseline, progress, deadline)
            )
    return {
        "config": asdict(config),
        "decision_rule": DECISION_RULE,
        "baseline": baseline,
        "sources": [asdict(s) for s in sources],
        "corpus": list(corpus),
        "arms": [{"name": a.name, "seed": a.seed, "kind": a.kind, "source": a.source} for a in everything],
        "tasks": tasks,
    }


def zero_shot_markdown(results: dict) -> str:
    """Markdown: per metric, the summary over seeds and the differences with decisions."""
    lines = []
    for task, result in results["tasks"].items():
        test = result["sizes"]["test"]
        direction = "higher is better" if result["higher_is_better"] else "lower is better"
        lines += [
            f"### {task}",
            "",
            f"{test['examples']} held-out sites in {test['groups']} groups ({test['classes']}); {result['metric']}, "
            f"{direction}; windows of {result['window_length']} bases, both strands averaged.",
            "",
        ]
        lines += summary_markdown(result, result["metric"])
        lines += differences_markdown(result, result["metric"])
        lines.append("")
    lines += [f"Decision rule: {results['decision_rule']}", ""]
    return "\n".join(lines)


ZERO_SHOT_TITLE = "Zero-shot: pre-trained (blue), random-init control (red), readers without a model (grey)"


def write_zero_shot_results(results: dict, output_dir) -> dict[str, str]:
    """Write `zero_shot.{json,md,png}` into `output_dir`; returns the paths."""
    return write_results(results, output_dir, stem="zero_shot", render=zero_shot_markdown, title=ZERO_SHOT_TITLE)
