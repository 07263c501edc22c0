"""Variant effects from one Birdie checkpoint: log-likelihood ratios of a substitution, read from both flanks (one
single-base gap of the infilling objective) and left to right (next-token prediction), optionally averaged over both
strands. The per-base readings themselves are in [`~birdie_hf.inference.scoring`]; this module shares their window
checks and restricts the model's softmax to `A, C, G, T` the same way, so ratios are in nats.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np

from ..vocabulary import dna_lookup_table, reverse_complement
from .forward import teacher_forced_base_log_probs
from .inputs import (
    BASE_INDEX,
    DNAInputError,
    base_ids,
    causal_objective,
    infilling_example,
    infilling_objective,
    masked_rows,
    parse_sequence,
)
from .limits import check_window_length, default_window, infilling_limits, max_positions, resolve_bidirectional


@dataclass
class VariantScore:
    """The effect of one substitution: log-likelihood ratios `alt` vs `ref` (nats; negative = `alt` less likely).

    Attributes:
        position (`int`), ref (`str`), alt (`str`): the substitution (0-based position in its sequence).
        bidirectional_llr (`float`, *optional*): `log p(alt | both flanks) - log p(ref | both flanks)` at the masked
            position (the infilling reading).
        causal_llr (`float`, *optional*): `log p(alt sequence) - log p(ref sequence)` read left to right over the
            scored window (the change at the site and its effect on every base after it).
        causal_site_llr (`float`, *optional*): `log p(alt | left flank) - log p(ref | left flank)` at the site only
            (NaN for a variant on the window's first base).
    """

    position: int
    ref: str
    alt: str
    bidirectional_llr: Optional[float] = None
    causal_llr: Optional[float] = None
    causal_site_llr: Optional[float] = None

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def _parse_variant(item, index: int, tokenizer, one_based: bool = False) -> tuple[str, int, str, str]:
    """`(window text, 0-based position, ref, alt)` of one variant: a `(sequence, position, alt)` or
    `(sequence, position, ref, alt)` tuple, or a dict with `sequence`, `position`, `alt` and optionally `ref`."""
    ref_given = None
    if isinstance(item, dict):
        missing = sorted({"sequence", "position", "alt"} - set(item))
        if missing:
            raise DNAInputError(f"variants[{index}] needs the keys sequence, position and alt; missing {missing}.")
        sequence, position, alt, ref_given = item["sequence"], item["position"], item["alt"], item.get("ref")
    elif isinstance(item, (tuple, list)) and len(item) == 3:
        sequence, position, alt = item
    elif isinstance(item, (tuple, list)) and len(item) == 4:
        sequence, position, ref_given, alt = item
    else:
        raise DNAInputError(
            f"variants[{index}] must be (sequence, position, alt), (sequence, position, ref, alt) or a dict with "
            f"those keys, got {item!r}."
        )
    text = parse_sequence(sequence, tokenizer, mask_char=None, name=f"variants[{index}] sequence").text
    convention = "1-based" if one_based else "0-based"
    low, high = (1, len(text)) if one_based else (0, len(text) - 1)
    if isinstance(position, bool) or not isinstance(position, (int, np.integer)) or not low <= position <= high:
        raise DNAInputError(
            f"variants[{index}]: position must be an integer in [{low}, {high}] ({convention}), got {position!r}."
        )
    site = int(position) - (1 if one_based else 0)
    if not isinstance(alt, str) or alt.upper() not in BASE_INDEX:
        raise DNAInputError(f"variants[{index}]: alt must be one of A, C, G, T, got {alt!r}.")
    ref = text[site]
    if ref not in BASE_INDEX:
        raise DNAInputError(
            f"variants[{index}]: the reference base at position {position} is {ref!r}; only A, C, G "
            "and T can be substituted."
        )
    if ref_given is not None:
        if not isinstance(ref_given, str) or ref_given.upper() != ref:
            hint = ""
            for neighbour, label in ((site - 1, "one before"), (site + 1, "one after")):
                if isinstance(ref_given, str) and 0 <= neighbour < len(text) and text[neighbour] == ref_given.upper():
                    other = "one_based=False" if one_based else "one_based=True (VCF positions)"
                    hint = f" The base {label} is {ref_given.upper()!r}: is the position off by one? Try {other}."
                    break
            raise DNAInputError(
                f"variants[{index}]: ref {ref_given!r} does not match the sequence's base {ref!r} at position "
                f"{position} ({convention}).{hint}"
            )
    if alt.upper() == ref:
        raise DNAInputError(
            f"variants[{index}]: alt {alt!r} is the reference base at position {position}; nothing changes."
        )
    return text, site, ref, alt.upper()


def variant_effect(
    model,
    tokenizer,
    variants: Sequence,
    *,
    bidirectional: Optional[bool] = None,
    causal: bool = True,
    reverse_complement_average: bool = False,
    window_length: Optional[int] = None,
    batch_size: int = 16,
    strict: bool = True,
    mixture: Optional[Sequence] = None,
    disable_tqdm: bool = False,
    one_based: bool = False,
) -> list[VariantScore]:
    """Log-likelihood ratios of substitutions, with context from both sides and left to right.

    Args:
        model: a Birdie checkpoint (`AutoModelForCausalLM`); it runs on its own device.
        tokenizer: its tokenizer.
        variants (`Sequence`): `(sequence, position, alt)` triples, `(sequence, position, ref, alt)` quadruples, or
            dicts with those keys (`ref` optional): `position` is 0-based in `sequence` (1-based with `one_based`),
            whose base there is the reference; a given `ref` must match it (a mismatch, e.g. a position off by one,
            is an error naming the variant); `alt` is `A`, `C`, `G` or `T` and differs from the reference.
        bidirectional (`bool`, *optional*): compute `bidirectional_llr` (one pass per distinct site: the site is a
            one-base gap of the infilling prompt). Defaults to doing so when the checkpoint was trained with infilling.
        causal (`bool`, *optional*, defaults to `True`): compute `causal_llr` and `causal_site_llr` (one left-to-right
            pass per distinct reference window and per variant).
        reverse_complement_average (`bool`, *optional*, defaults to `False`): average every ratio over both strands
            (the reverse complement of the window, with the complemented alleles).
        window_length (`int`, *optional*): bases read around the site (the site is centred when the sequence is
            longer); defaults to the checkpoint's training window (`config.birdie_window_length`), capped so the
            one-gap infilling example (window + 4 tokens) fits the model's positions.
        batch_size, strict, mixture, disable_tqdm: see [`score`].
        one_based (`bool`, *optional*, defaults to `False`): read `position` as 1-based, as VCF `POS` is (the returned
            `VariantScore.position` stays 0-based).

    Returns:
        `list[VariantScore]`, one per variant, in order.

    Example:

    ```python
    >>> from birdie_hf import variant_effect
    >>> [v.bidirectional_llr for v in variant_effect(model, tokenizer, [("ACGTAGCTAG", 4, "C")])]  # doctest: +SKIP
    [-1.37]
    ```
    """
    use_bidirectional = resolve_bidirectional(model, bidirectional, strict)
    if not (use_bidirectional or causal):
        raise ValueError("Nothing to compute: bidirectional and causal are both off.")
    if isinstance(variants, (str, dict)) or (
        isinstance(variants, tuple) and len(variants) in (3, 4) and isinstance(variants[0], str)
    ):
        raise DNAInputError(
            "variants must be a list of (sequence, position, alt) triples; wrap a single one in a list."
        )
    check_window_length(window_length, model, lambda w: 4 if use_bidirectional else 0, "one-gap infilling")
    parsed = [_parse_variant(item, i, tokenizer, one_based) for i, item in enumerate(variants)]
    limits = infilling_limits(model, tokenizer, mixture) if use_bidirectional else None
    # One one-base gap adds 4 tokens (prompt, sentinel in the prefix and in the target, end token) to the window.
    window = window_length or min(default_window(model), max_positions(model) - 4)
    strands = (False, True) if reverse_complement_average else (False,)

    views = _variant_views(parsed, window, len(strands))
    bases = base_ids(tokenizer)
    bidirectional_llr = [None] * len(views)
    if use_bidirectional:
        bidirectional_llr = _bidirectional_llrs(
            model, tokenizer, views, limits, strict, len(strands), bases, batch_size, disable_tqdm
        )
    causal_llr, site_llr = [None] * len(views), [None] * len(views)
    if causal:
        causal_llr, site_llr = _causal_llrs(model, tokenizer, views, bases, batch_size, disable_tqdm)
    return [
        VariantScore(
            position=position,
            ref=ref,
            alt=alt,
            bidirectional_llr=_strand_mean(bidirectional_llr, i, len(strands)),
            causal_llr=_strand_mean(causal_llr, i, len(strands)),
            causal_site_llr=_strand_mean(site_llr, i, len(strands)),
        )
        for i, (_, position, ref, alt) in enumerate(parsed)
    ]


def _variant_views(parsed: list, window: int, strands: int) -> list[tuple[str, int, str, str]]:
    """Every variant as `(window text, site in the window, ref, alt)`, once per strand (`strands` 2: the reverse
    complement too), the window centred on the site where the sequence allows."""
    views = []
    for text, position, ref, alt in parsed:
        start = min(max(0, position - window // 2), max(0, len(text) - window))
        piece, site = text[start : start + window], position - start
        views.append((piece, site, ref, alt))
        if strands == 2:
            rc = (reverse_complement(piece), len(piece) - 1 - site, reverse_complement(ref), reverse_complement(alt))
            views.append(rc)
    return views


def _ids_of(table: np.ndarray, piece: str) -> np.ndarray:
    return table[np.frombuffer(piece.encode("ascii"), dtype=np.uint8)].astype(np.int64)


def _bidirectional_llrs(model, tokenizer, views, limits, strict, strands, bases, batch_size, disable_tqdm) -> list:
    """log P(alt) - log P(ref) at each view's site read as a one-base gap between both flanks (each distinct window
    and site scored once)."""
    table = dna_lookup_table(tokenizer)
    objective = infilling_objective(tokenizer)
    sentinels = np.asarray(objective.special.sentinels)
    sites = {}
    for view, (piece, site, _, _) in enumerate(views):
        if (piece, site) not in sites:
            gaps = [(site, site + 1)]
            limits.check(len(piece), gaps, name=f"the window of variants[{view // strands}]", strict=strict)
            sites[(piece, site)] = infilling_example(_ids_of(table, piece), gaps, objective)
    keys = list(sites)
    log_probs = teacher_forced_base_log_probs(
        model,
        [sites[k] for k in keys],
        bases,
        batch_size=batch_size,
        disable_tqdm=disable_tqdm,
        desc="Bidirectional variant scoring",
    )
    by_site = {k: lp[masked_rows(sites[k], sentinels)][0] for k, lp in zip(keys, log_probs)}
    return [float(by_site[(p, s)][BASE_INDEX[a]] - by_site[(p, s)][BASE_INDEX[r]]) for p, s, r, a in views]


def _causal_llrs(model, tokenizer, views, bases, batch_size, disable_tqdm) -> tuple[list, list]:
    """Read left to right: the log-likelihood of the whole mutated window minus the reference's, and at the site
    alone log P(alt) - log P(ref) given the left flank (NaN at a window's first base, which nothing predicts)."""
    table = dna_lookup_table(tokenizer)
    objective = causal_objective(tokenizer)
    pieces = {}
    for piece, site, _, alt in views:
        pieces.setdefault(piece, None)
        pieces.setdefault(piece[:site] + alt + piece[site + 1 :], None)
    keys = list(pieces)
    rng = np.random.default_rng(0)
    log_probs = teacher_forced_base_log_probs(
        model,
        [objective(_ids_of(table, k), rng) for k in keys],
        bases,
        batch_size=batch_size,
        disable_tqdm=disable_tqdm,
        desc="Causal variant scoring",
    )
    totals = {}
    for key, lp in zip(keys, log_probs):
        truth = np.array([BASE_INDEX.get(c, -1) for c in key])
        known = truth >= 0
        known[0] = False  # nothing predicts the first base
        totals[key] = (float(lp[np.flatnonzero(known), truth[known]].sum()), lp)
    causal_llr, site_llr = [], []
    for piece, site, ref, alt in views:
        mutated = piece[:site] + alt + piece[site + 1 :]
        causal_llr.append(totals[mutated][0] - totals[piece][0])
        row = totals[piece][1][site]
        site_llr.append(float(row[BASE_INDEX[alt]] - row[BASE_INDEX[ref]]) if site > 0 else float("nan"))
    return causal_llr, site_llr


def _strand_mean(values: list, index: int, strands: int) -> Optional[float]:
    """Mean over the strands of variant `index`, ignoring NaN (a site on one strand's first base); `None` when the
    reading was not computed."""
    picked = values[index * strands : (index + 1) * strands]
    if picked[0] is None:
        return None
    finite = [float(v) for v in picked if not math.isnan(v)]
    return float(np.mean(finite)) if finite else float("nan")
