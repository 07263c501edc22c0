"""Zero-shot DNA benchmark: what checkpoints know without fine-tuning, read with both flanks and left to right.

    # the committed Birdie / static / NTP checkpoints (equal budget), full size: ~10-20 min on 2 CPU cores
    python benchmarks/zero_shot.py --checkpoints birdie=outputs/birdie_vs_ntp/seed42/birdie \\
        static=outputs/birdie_vs_ntp/seed42/static ntp=outputs/birdie_vs_ntp/seed42/ntp \\
        --output benchmarks/results/zero_shot
    # smoke test (a minute)
    python benchmarks/zero_shot.py --checkpoints birdie=outputs/birdie_vs_ntp/seed42/birdie --max_examples 4 \\
        --markov_orders 2

Held-out data, never seen in pre-training (the corpus of `benchmarks/birdie_vs_ntp.py`):

- `bacterial`: the annotated bacterial assembly `bacterial_contigs.gbk` (an organism absent from the corpus; the
  other strains in `shared/data/genomes/bacteria` share most of their sequence with the corpus strains, so they are
  not used).
- `human`: the held-out region of chr22 (the last 20 % of the covered coordinates, `split_human_records`), checked
  to share no record with the pre-training FASTA when that file exists.

Tasks, each for every checkpoint read bidirectionally (the infilling prompt, [`birdie_hf.infill`] /
[`birdie_hf.gap_log_probs`]) and causally (left to right, as next-token prediction reads), next to order-k Markov
chains fit on the pre-training corpus:

1. **Infilling**: random held-out windows of `--window_length` bases with one centred gap of each length in
   `--span_lengths`. Accuracy of greedy filling (per masked base) and NLL per masked base (nats, over A/C/G/T) of the
   true span: `-log p(span | both flanks) / L` through the infilling prompt; the causal reading only has the left
   flank (`-log p(span | left) / L`, greedy left-to-right generation). Markov baselines: *bidirectional* (the exact
   posterior of the span given both flanks under the chain, by forward-backward; accuracy of the per-base posterior
   argmax) and *left-only* (greedy continuation). Gap lengths the checkpoints' infilling objective never trained on
   (see `InfillingLimits`) are marked `*` and filled with `strict=False`.
2. **Reference-allele preference**: random held-out positions (centred in a window), a random substitute base;
   paired AUROC = P(the reference scores above the substitute) + ties / 2, from the log-likelihood ratio of each
   reader: bidirectional (masked site), causal window (the whole window's left-to-right likelihood, which also sees
   the bases after the site) and causal site (left flank only).
3. **Variant-effect proxy**: substitutions inside annotated CDSs of the held-out assembly, classed with the genetic
   code as synonymous, missense or stop-gain; AUROC of separating missense (and stop-gain) from synonymous by
   `-LLR` (a lower likelihood ratio should mean a more damaging change). The window is read on the genome's forward
   strand (`--reverse_complement` averages both strands).

Ratios are against the bidirectional Markov chain of the highest order (`x` columns): NLL ratio < 1 and accuracy /
AUROC ratio > 1 mean the checkpoint beats it. Without `--output` nothing is written.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import time
from pathlib import Path

import numpy as np
import torch


REPO = Path(__file__).resolve().parents[1]
GENOMES = Path(os.environ.get("BIRDIE_SHARED_DIR", REPO.parent / "shared")) / "data" / "genomes"
BASES = "ACGT"
_INDEX = {base: i for i, base in enumerate(BASES)}
_COMPLEMENT = str.maketrans("ACGTN", "TGCAN")
#: The standard genetic code (bacterial table 11 translates the same), codons in TCAG order; stops are `*`.
GENETIC_CODE = dict(
    zip(
        map("".join, itertools.product("TCAG", repeat=3)),
        "FFLLSSSSYY**CC*WLLLLPPPPHHQQRRRRIIIMTTTTNNKKSSRRVVVVAAAADDEEGGGG",
    )
)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoints", nargs="+", required=True, help="name=path of each checkpoint")
    parser.add_argument("--heldout", nargs="+", default=["bacterial", "human"], choices=["bacterial", "human"])
    parser.add_argument("--window_length", type=int, default=256, help="bases per window (the checkpoints' own)")
    parser.add_argument("--span_lengths", type=int, nargs="+", default=[1, 3, 8, 16, 32])
    parser.add_argument(
        "--max_examples",
        type=int,
        default=100,
        help="infilling windows per held-out source (each gets one gap of every span length); "
        "reference positions per source and variants per class are twice this",
    )
    parser.add_argument("--markov_orders", type=int, nargs="+", default=[3, 6])
    parser.add_argument(
        "--markov_train",
        nargs="*",
        default=None,
        help="FASTA files the Markov chains are fit on (default: the birdie_vs_ntp pre-training corpus)",
    )
    parser.add_argument(
        "--corpus_dir",
        default="outputs/birdie_vs_ntp",
        help="birdie_vs_ntp work dir (its tasks/human_pretraining.fa.gz is part of the corpus)",
    )
    parser.add_argument("--genbank", default=str(GENOMES / "bacterial_contigs.gbk"))
    parser.add_argument("--human_fasta", default=str(GENOMES / "human_chr22_segments.fa.gz"))
    parser.add_argument("--reverse_complement", action="store_true", help="average variant scores over both strands")
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", default=None, help="write <output>.md and <output>.json")
    args = parser.parse_args(argv)
    checkpoints = {}
    for item in args.checkpoints:
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            parser.error(f"--checkpoints takes name=path, got {item!r}")
        if not Path(path).is_dir():
            parser.error(f"--checkpoints {name}: {path!r} is not a folder")
        checkpoints[name] = path
    args.checkpoints = checkpoints
    if min(args.markov_orders) < 1:
        parser.error("--markov_orders must be at least 1")
    if min(args.span_lengths) < 1 or max(args.span_lengths) > args.window_length - 2 * max(args.markov_orders) - 2:
        parser.error("--span_lengths must leave at least the highest Markov order of known bases on each side")
    return args


# -- data ---------------------------------------------------------------------------------------------------------
#: The bacteria `benchmarks/birdie_vs_ntp.py` pre-trains on (its `BACTERIA`): the Markov chains read the same corpus.
BIRDIE_VS_NTP_BACTERIA = (
    "bacteria/e_coli_mg1655-k12.fa.gz",
    "bacteria/v_cholerae_o395.fa.gz",
    "bacteria/s_aureus_col.fa.gz",
    "bacteria/h_pylori_g27.fa.gz",
    "klebsiella_pneumoniae_NTUH-K2044.fna.gz",
)


def pretraining_corpus(args) -> list[str]:
    if args.markov_train is not None:
        return list(args.markov_train)
    files = [str(GENOMES / name) for name in BIRDIE_VS_NTP_BACTERIA]
    human = Path(args.corpus_dir) / "tasks" / "human_pretraining.fa.gz"
    if human.exists():
        files.insert(0, str(human))
    else:
        print(f"note: {human} not found; the Markov chains are fit on the bacterial corpus only", flush=True)
    return files


def heldout_sequences(source: str, args) -> list[str]:
    """Upper-case held-out sequences of `source`."""
    if source == "bacterial":
        from birdie_hf.evaluation.genbank import iter_genbank

        return [record.sequence.upper() for record in iter_genbank(args.genbank)]
    from birdie_hf.data import iter_fasta
    from birdie_hf.evaluation.human_tasks import split_human_records

    _, heldout = split_human_records(args.human_fasta)
    pretraining = Path(args.corpus_dir) / "tasks" / "human_pretraining.fa.gz"
    if pretraining.exists():
        seen = {record.name for record in iter_fasta(pretraining)}
        leaked = sorted(seen & {record.name for record in heldout})
        if leaked:
            raise SystemExit(f"error: held-out chr22 records {leaked[:3]} are in the pre-training FASTA {pretraining}")
    return [record.sequence.decode("ascii").upper() for record in heldout]


def sample_windows(sequences: list[str], count: int, length: int, rng: np.random.Generator) -> list[str]:
    """`count` random windows of `length` bases holding only A, C, G, T (records weighted by length)."""
    usable = [s for s in sequences if len(s) >= length]
    weights = np.array([len(s) - length + 1 for s in usable], dtype=float)
    windows, tries = [], 0
    while len(windows) < count:
        tries += 1
        if tries > 100 * count + 1000:
            raise SystemExit(f"error: found only {len(windows)} of {count} N-free windows of {length} bases")
        sequence = usable[rng.choice(len(usable), p=weights / weights.sum())]
        start = int(rng.integers(0, len(sequence) - length + 1))
        window = sequence[start : start + length]
        if set(window) <= set(BASES):
            windows.append(window)
    return windows


def cds_variants(args, per_class: int, rng: np.random.Generator) -> list[dict]:
    """Single-base substitutions inside annotated CDSs, `per_class` of each of synonymous / missense / stop-gain,
    each with a genome-forward window of `--window_length` bases and the site in it."""
    from birdie_hf.evaluation.genbank import iter_genbank

    candidates = {"synonymous": [], "missense": [], "stop_gain": []}
    for record in iter_genbank(args.genbank):
        sequence = record.sequence.upper()
        for feature in record.features:
            length = feature.end - feature.start
            if feature.type != "CDS" or feature.partial or length % 3 or length < 12 or feature.end > len(sequence):
                continue
            coding = sequence[feature.start : feature.end]
            if feature.strand < 0:
                coding = coding.translate(_COMPLEMENT)[::-1]
            for codon_index in range(1, length // 3 - 1):  # not the start or stop codon
                codon = coding[3 * codon_index : 3 * codon_index + 3]
                if not set(codon) <= set(BASES) or GENETIC_CODE[codon] == "*":
                    continue
                for offset in range(3):
                    for alt in BASES:
                        if alt == codon[offset]:
                            continue
                        mutated = codon[:offset] + alt + codon[offset + 1 :]
                        amino, new = GENETIC_CODE[codon], GENETIC_CODE[mutated]
                        kind = "synonymous" if new == amino else "stop_gain" if new == "*" else "missense"
                        index = 3 * codon_index + offset
                        if feature.strand > 0:
                            position, genome_alt = feature.start + index, alt
                        else:
                            position, genome_alt = feature.end - 1 - index, alt.translate(_COMPLEMENT)
                        candidates[kind].append((record.name, position, genome_alt))
    sequences = {record.name: record.sequence.upper() for record in iter_genbank(args.genbank)}
    variants = []
    for kind, items in candidates.items():
        for i in rng.permutation(len(items))[:per_class]:
            name, position, alt = items[int(i)]
            sequence = sequences[name]
            start = min(max(0, position - args.window_length // 2), max(0, len(sequence) - args.window_length))
            window = sequence[start : start + args.window_length]
            site = position - start
            if not set(window) <= set(BASES):  # the Markov chains read A, C, G, T only
                continue
            variants.append({"kind": kind, "window": window, "site": site, "alt": alt})
    return variants


# -- Markov chains --------------------------------------------------------------------------------------------------
class MarkovReader:
    """An order-k chain read left to right and, exactly, with both flanks (forward-backward over the 4^k states).

    `P[s, b]` is `p(next = b | last k bases = s)`, `s` coded base-4 with the first base most significant.
    """

    def __init__(self, markov, order: int):
        counts = markov.counts(order).astype(np.float64) + markov.pseudocount
        self.order = order
        self.P = counts / counts.sum(axis=1, keepdims=True)
        self.log_P = np.log(self.P)
        #: `shift[s, b]`: the state after reading base `b` in state `s` (drop the oldest base, append `b`).
        self.shift = (np.arange(4**order)[:, None] % 4 ** (order - 1)) * 4 + np.arange(4)[None, :]

    def _state(self, context: str) -> int:
        code = 0
        for base in context[len(context) - self.order :]:
            code = code * 4 + _INDEX[base]
        return code

    def _end_factor(self, right: str) -> np.ndarray:
        """`f[s] = p(right[:k] | state s)` for every state."""
        factor = np.ones(4**self.order)
        states = np.arange(4**self.order)
        for base in right[: self.order]:
            factor *= self.P[states, _INDEX[base]]
            states = self.shift[states, _INDEX[base]]
        return factor

    def bidirectional(self, left: str, span: str, right: str) -> tuple[float, np.ndarray]:
        """`(log p(span | left, right), posterior (L, 4) of each span base given both flanks)`."""
        size, length = 4**self.order, len(span)
        alphas = [np.zeros(size)]
        alphas[0][self._state(left)] = 1.0
        for _ in range(length):
            joint = alphas[-1][:, None] * self.P  # (state, base) -> state shift[state, base]
            alphas.append(joint.reshape(4, -1, 4).sum(axis=0).reshape(-1))
        beta = self._end_factor(right)
        betas = [beta]
        for _ in range(length):
            beta = (self.P * beta[self.shift]).sum(axis=1)
            betas.append(beta)
        betas = betas[::-1]  # betas[i]: p(rest of span from i, right flank | state before i)
        posterior = np.empty((length, 4))
        for i in range(length):
            weights = (alphas[i][:, None] * self.P * betas[i + 1][self.shift]).sum(axis=0)
            posterior[i] = weights / weights.sum()
        total = float(alphas[length] @ betas[length])
        state, path = self._state(left), 0.0
        for base in span:
            path += self.log_P[state, _INDEX[base]]
            state = self.shift[state, _INDEX[base]]
        joint = path + math.log(self._end_factor(right)[state])
        return joint - math.log(total), posterior

    def left_only(self, left: str, span: str) -> tuple[float, str]:
        """`(log p(span | left), greedy continuation of len(span) bases)`."""
        state, log_p = self._state(left), 0.0
        for base in span:
            log_p += self.log_P[state, _INDEX[base]]
            state = self.shift[state, _INDEX[base]]
        state, guess = self._state(left), []
        for _ in span:
            best = int(self.P[state].argmax())
            guess.append(BASES[best])
            state = self.shift[state, best]
        return log_p, "".join(guess)


def fit_markov(files: list[str], order: int):
    from birdie_hf.data import iter_fasta
    from birdie_hf.evaluation.baselines import MarkovModel

    def sequences():
        for path in files:
            for record in iter_fasta(path):
                yield record.sequence

    return MarkovModel(order).fit(sequences())


# -- checkpoints ----------------------------------------------------------------------------------------------------
def load_checkpoint(path: str):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    device = "cuda" if torch.cuda.is_available() else "cpu"
    model = AutoModelForCausalLM.from_pretrained(path, attn_implementation="sdpa").to(device).eval()
    return model, AutoTokenizer.from_pretrained(path)


@torch.no_grad()
def causal_greedy(model, tokenizer, lefts: list[str], length: int, batch_size: int) -> list[str]:
    """Greedy left-to-right continuation (A/C/G/T only) of equally long left flanks, read as next-token prediction
    reads (no prompt, positions from 0)."""
    bases = [tokenizer.convert_tokens_to_ids(b) for b in BASES]
    suppress = [i for i in range(len(tokenizer)) if i not in bases]
    out = []
    for start in range(0, len(lefts), batch_size):
        chunk = lefts[start : start + batch_size]
        ids = torch.tensor(
            [tokenizer(left, add_special_tokens=False)["input_ids"] for left in chunk], device=model.device
        )
        generated = model.generate(
            input_ids=ids,
            attention_mask=torch.ones_like(ids),
            max_new_tokens=length,
            min_new_tokens=length,
            do_sample=False,
            suppress_tokens=suppress,
            pad_token_id=tokenizer.pad_token_id,
            eos_token_id=None,
        )
        out += [tokenizer.decode(row[ids.shape[1] :]) for row in generated.tolist()]
    return out


def checkpoint_readers(model) -> dict[str, bool]:
    """Which readings a checkpoint supports: `{"bidirectional": ..., "causal": True}`."""
    from birdie_hf.inference import trained_with_infilling

    return {"bidirectional": bool(trained_with_infilling(model)), "causal": True}


# -- tasks ----------------------------------------------------------------------------------------------------------
def infilling_task(windows: list[str], args, markovs: dict, models: dict) -> dict:
    from birdie_hf.inference import gap_log_probs, infill, infilling_limits, score

    rows = {}  # (reader, span) -> {"correct", "bases", "nll"}

    def add(reader, span, correct, bases, nll):
        entry = rows.setdefault((reader, span), {"correct": 0, "bases": 0, "nll": 0.0})
        entry["correct"] += correct
        entry["bases"] += bases
        entry["nll"] += nll

    trained = {}
    for span in args.span_lengths:
        start = (args.window_length - span) // 2
        for order, markov in markovs.items():
            for window in windows:
                left, truth, right = window[:start], window[start : start + span], window[start + span :]
                log_p, posterior = markov.bidirectional(left, truth, right)
                guess = "".join(BASES[i] for i in posterior.argmax(axis=1))
                add(f"Markov-{order} bidirectional", span, sum(a == b for a, b in zip(guess, truth)), span, -log_p)
                log_p, guess = markov.left_only(left, truth)
                add(f"Markov-{order} left-only", span, sum(a == b for a, b in zip(guess, truth)), span, -log_p)
    for name, (model, tokenizer, readers) in models.items():
        causal = score(
            model,
            tokenizer,
            windows,
            bidirectional=False,
            batch_size=args.batch_size,
            window_length=args.window_length,
            disable_tqdm=True,
        )
        for span in args.span_lengths:
            start = (args.window_length - span) // 2
            gaps = [[(start, start + span)]] * len(windows)
            truths = [w[start : start + span] for w in windows]
            if readers["bidirectional"]:
                limits = infilling_limits(model, tokenizer)
                inside = span <= limits.max_gap_length(args.window_length, interior=True)
                trained[str(span)] = inside
                log_probs = gap_log_probs(
                    model, tokenizer, windows, gaps, batch_size=args.batch_size, strict=inside, disable_tqdm=True
                )
                fills = infill(
                    model, tokenizer, windows, gaps=gaps, batch_size=args.batch_size, strict=inside, disable_tqdm=True
                )
                for truth, lp, fill in zip(truths, log_probs, fills):
                    nll = -float(lp[np.arange(span), [_INDEX[b] for b in truth]].sum())
                    add(f"{name} bidirectional", span, sum(a == b for a, b in zip(fill.fills[0], truth)), span, nll)
            guesses = causal_greedy(model, tokenizer, [w[:start] for w in windows], span, args.batch_size)
            for truth, guess, result in zip(truths, guesses, causal):
                nll = -float(np.sum(result.causal[start : start + span]))
                add(f"{name} causal (left only)", span, sum(a == b for a, b in zip(guess, truth)), span, nll)
    return {"rows": {f"{reader}|{span}": value for (reader, span), value in rows.items()}, "trained": trained}


def substitution_scores(variants: list[dict], args, markovs: dict, models: dict) -> dict[str, np.ndarray]:
    """LLR (alt vs ref, nats) of every variant for every reader."""
    from birdie_hf.inference import variant_effect

    scores = {}
    for order, markov in markovs.items():
        bidirectional, left_only = [], []
        for v in variants:
            window, site, alt = v["window"], v["site"], v["alt"]
            ref = window[site]
            _, posterior = markov.bidirectional(window[:site], ref, window[site + 1 :])
            bidirectional.append(math.log(posterior[0, _INDEX[alt]]) - math.log(posterior[0, _INDEX[ref]]))
            state = markov._state(window[:site])
            left_only.append(markov.log_P[state, _INDEX[alt]] - markov.log_P[state, _INDEX[ref]])
        scores[f"Markov-{order} bidirectional"] = np.array(bidirectional)
        scores[f"Markov-{order} left-only"] = np.array(left_only)
    for name, (model, tokenizer, readers) in models.items():
        effects = variant_effect(
            model,
            tokenizer,
            [(v["window"], v["site"], v["alt"]) for v in variants],
            bidirectional=readers["bidirectional"],
            window_length=args.window_length,
            reverse_complement_average=args.reverse_complement,
            batch_size=args.batch_size,
            disable_tqdm=True,
        )
        if readers["bidirectional"]:
            scores[f"{name} bidirectional"] = np.array([e.bidirectional_llr for e in effects])
        scores[f"{name} causal (window)"] = np.array([e.causal_llr for e in effects])
        scores[f"{name} causal (site)"] = np.array([e.causal_site_llr for e in effects])
    return scores


def paired_auroc(llr: np.ndarray) -> float:
    """P(reference scores above the substitute) + ties / 2, over the pairs with a finite ratio."""
    llr = llr[np.isfinite(llr)]
    return float(np.mean(llr < 0) + 0.5 * np.mean(llr == 0)) if llr.size else float("nan")


def auroc(positive: np.ndarray, negative: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    positive, negative = positive[np.isfinite(positive)], negative[np.isfinite(negative)]
    if not positive.size or not negative.size:
        return float("nan")
    labels = np.concatenate([np.ones(positive.size), np.zeros(negative.size)])
    return float(roc_auc_score(labels, np.concatenate([positive, negative])))


# -- report ---------------------------------------------------------------------------------------------------------
def _ratio(value: float, baseline: float) -> str:
    return f"{value / baseline:.3f}x" if baseline and math.isfinite(value) and math.isfinite(baseline) else "n/a"


def render(results: dict, args) -> str:
    best = f"Markov-{max(args.markov_orders)} bidirectional"
    sources = ", ".join(f"{source} ({count} windows)" for source, count in results["windows"].items())
    lines = [
        f"## Zero-shot: infilling ({sources}; one centred gap per window of {args.window_length} bases)",
        "",
        f"Ratios against {best}. `*`: a gap inside a {args.window_length}-base window longer than the checkpoints' "
        "infilling objective makes (filled with strict=False).",
        "",
        "| span | reader | accuracy | NLL / masked base | accuracy ratio | NLL ratio |",
        "|---|---|---|---|---|---|",
    ]
    rows = results["infilling"]["rows"]
    trained = results["infilling"]["trained"]
    readers = list(dict.fromkeys(key.split("|")[0] for key in rows))
    for span in args.span_lengths:
        base = rows.get(f"{best}|{span}")
        for reader in readers:
            entry = rows.get(f"{reader}|{span}")
            if entry is None:
                continue
            accuracy, nll = entry["correct"] / entry["bases"], entry["nll"] / entry["bases"]
            base_accuracy, base_nll = base["correct"] / base["bases"], base["nll"] / base["bases"]
            untrained = not trained.get(str(span), True)
            mark = "*" if untrained and reader.endswith("bidirectional") and not reader.startswith("Markov") else ""
            lines.append(
                f"| {span}{mark} | {reader} | {accuracy:.4f} | {nll:.4f} | {_ratio(accuracy, base_accuracy)} "
                f"| {_ratio(nll, base_nll)} |"
            )
    reference = results["reference"]
    lines += [
        "",
        f"## Reference-allele preference ({reference['count']} held-out sites, one random substitute each)",
        "",
        "Paired AUROC: P(reference scores above the substitute) + ties / 2.",
        "",
        "| reader | paired AUROC | ratio |",
        "|---|---|---|",
    ]
    for reader, value in reference["auroc"].items():
        lines.append(f"| {reader} | {value:.4f} | {_ratio(value, reference['auroc'][best])} |")
    variants = results["variants"]
    counts = ", ".join(f"{kind}: {n}" for kind, n in variants["counts"].items())
    lines += [
        "",
        f"## Variant-effect proxy: substitutions in annotated CDSs ({counts})",
        "",
        "AUROC of telling missense / stop-gain from synonymous by -LLR; mean LLR per class (nats).",
        "",
        "| reader | missense vs syn. | ratio | stop-gain vs syn. | ratio | mean LLR syn. / mis. / stop |",
        "|---|---|---|---|---|---|",
    ]
    for reader, entry in variants["readers"].items():
        base = variants["readers"][best]
        means = " / ".join(f"{entry['mean_llr'][kind]:.3f}" for kind in ("synonymous", "missense", "stop_gain"))
        lines.append(
            f"| {reader} | {entry['missense_auroc']:.4f} | {_ratio(entry['missense_auroc'], base['missense_auroc'])} "
            f"| {entry['stop_gain_auroc']:.4f} | {_ratio(entry['stop_gain_auroc'], base['stop_gain_auroc'])} "
            f"| {means} |"
        )
    lines += [
        "",
        f"Checkpoints: {', '.join(f'{k}={v}' for k, v in args.checkpoints.items())}. Markov chains fit on: "
        f"{', '.join(Path(p).name for p in results['markov_train'])}. Seed {args.seed}, "
        f"{results['seconds']:.0f} s.",
    ]
    return "\n".join(lines)


def main(args) -> dict:
    started = time.time()
    rng = np.random.default_rng(args.seed)
    print("reading held-out data ...", flush=True)
    heldout = {source: heldout_sequences(source, args) for source in args.heldout}
    windows = {
        source: sample_windows(sequences, args.max_examples, args.window_length, rng)
        for source, sequences in heldout.items()
    }
    reference = []
    for source, sequences in heldout.items():
        for window in sample_windows(sequences, 2 * args.max_examples, args.window_length, rng):
            site = args.window_length // 2
            reference.append(
                {
                    "window": window,
                    "site": site,
                    "alt": BASES[(BASES.index(window[site]) + int(rng.integers(1, 4))) % 4],
                }
            )
    variants = cds_variants(args, 2 * args.max_examples, rng)

    files = pretraining_corpus(args)
    print(f"fitting order-{max(args.markov_orders)} Markov counts on {len(files)} corpus files ...", flush=True)
    markov = fit_markov(files, max(args.markov_orders))
    markovs = {order: MarkovReader(markov.with_order(order), order) for order in sorted(args.markov_orders)}

    models = {}
    for name, path in args.checkpoints.items():
        model, tokenizer = load_checkpoint(path)
        models[name] = (model, tokenizer, checkpoint_readers(model))
        if not models[name][2]["bidirectional"]:
            print(f"note: {name} was trained without infilling; it is read causally only", flush=True)

    print("infilling ...", flush=True)
    all_windows = [w for source in args.heldout for w in windows[source]]
    infilling = infilling_task(all_windows, args, markovs, models)
    print("reference-allele preference ...", flush=True)
    reference_scores = substitution_scores(reference, args, markovs, models)
    print("variant-effect proxy ...", flush=True)
    variant_scores = substitution_scores(variants, args, markovs, models)
    kinds = np.array([v["kind"] for v in variants])
    readers = {}
    for reader, llr in variant_scores.items():
        readers[reader] = {
            "missense_auroc": auroc(-llr[kinds == "missense"], -llr[kinds == "synonymous"]),
            "stop_gain_auroc": auroc(-llr[kinds == "stop_gain"], -llr[kinds == "synonymous"]),
            "mean_llr": {
                kind: float(np.nanmean(llr[kinds == kind])) if (kinds == kind).any() else float("nan")
                for kind in ("synonymous", "missense", "stop_gain")
            },
        }
    results = {
        "windows": {source: len(w) for source, w in windows.items()},
        "infilling": infilling,
        "reference": {"count": len(reference), "auroc": {r: paired_auroc(s) for r, s in reference_scores.items()}},
        "variants": {
            "counts": {kind: int((kinds == kind).sum()) for kind in ("synonymous", "missense", "stop_gain")},
            "readers": readers,
        },
        "markov_train": files,
        "settings": {k: v for k, v in vars(args).items()},
        "seconds": time.time() - started,
    }
    report = render(results, args)
    print(report)
    if args.output:
        Path(args.output).parent.mkdir(parents=True, exist_ok=True)
        Path(f"{args.output}.md").write_text(report + "\n")
        Path(f"{args.output}.json").write_text(json.dumps(results, indent=2, default=str) + "\n")
        print(f"wrote {args.output}.md and {args.output}.json")
    return results


if __name__ == "__main__":
    main(parse_args())
