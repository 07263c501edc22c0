"""Per-base likelihoods with context from both sides from one Birdie checkpoint (variant effects, built on the same
readings, are in [`~birdie_hf.inference.variants`]).

Two readings of the same checkpoint:

- **bidirectional**: a base is masked as a one-base gap of the infilling objective and predicted from both flanks
  (the infilling prompt, read as the objective trains it). Many bases are masked per forward pass: a strided set of
  positions (every `stride`-th base) forms one infilling example, so a window costs `stride` passes, not one per base.
  Each masked base is predicted from every unmasked base and, as in training (teacher forcing), from the true bases
  of the gaps before it.
- **causal**: the sequence read left to right as next-token prediction trains it (no prompt), one pass per window.

Every log-probability is over the four bases `A, C, G, T` (the model's softmax restricted to them and renormalised,
so the two readings and a Markov chain are on the same footing), in nats. Positions holding `N` get NaN.

Sequences longer than `window_length` are tiled: bidirectional windows overlap by half and each base is scored in
the window whose centre is nearest; causal windows overlap by half and each base after the first window is scored
with at least half a window of left context.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import Optional, Sequence, Union

import numpy as np

from .forward import teacher_forced_base_log_probs
from .inputs import (
    BASE_INDEX,
    DNAInputError,
    as_batch,
    base_ids,
    causal_objective,
    check_gaps,
    infilling_example,
    infilling_objective,
    masked_rows,
    parse_sequence,
)
from .limits import (
    InfillingLimits,
    check_window_length,
    default_window,
    infilling_limits,
    require_infilling,
    resolve_bidirectional,
)


logger = logging.getLogger(__name__)


@dataclass
class SequenceScore:
    """Per-base log-likelihoods of one sequence (nats, over `A, C, G, T`; NaN at `N`).

    Attributes:
        sequence (`str`): the sequence, upper-case, IUPAC codes as `N`.
        bidirectional (`np.ndarray` of shape `(n,)`, *optional*): `log p(x_i | both flanks)`; `None` when not computed;
            NaN at the sequence's first and last base when the checkpoint's infilling never masks a window's end (the
            `dna` preset's `span_layout="interior"`) and `strict` is on.
        bidirectional_log_probs (`np.ndarray` of shape `(n, 4)`, *optional*): the full distribution at each masked
            position (columns `A, C, G, T`): `bidirectional_log_probs[i, b] - bidirectional[i]` is the
            log-likelihood ratio of substituting base `b` at `i`.
        causal (`np.ndarray` of shape `(n,)`, *optional*): `log p(x_i | x_<i)`, left to right; NaN at position 0
            (next-token prediction never predicts a first token).
        causal_log_probs (`np.ndarray` of shape `(n, 4)`, *optional*): the causal distribution at each position.
        stride (`int`, *optional*): bases between two positions masked in the same bidirectional pass.
    """

    sequence: str
    bidirectional: Optional[np.ndarray] = field(default=None, repr=False)
    bidirectional_log_probs: Optional[np.ndarray] = field(default=None, repr=False)
    causal: Optional[np.ndarray] = field(default=None, repr=False)
    causal_log_probs: Optional[np.ndarray] = field(default=None, repr=False)
    stride: Optional[int] = None

    @property
    def bidirectional_mean(self) -> Optional[float]:
        """Mean bidirectional log-likelihood per scored base."""
        return None if self.bidirectional is None else float(np.nanmean(self.bidirectional))

    @property
    def causal_mean(self) -> Optional[float]:
        """Mean causal log-likelihood per scored base."""
        return None if self.causal is None else float(np.nanmean(self.causal))


# -- helpers -------------------------------------------------------------------------------------------------------
def _tiles(length: int, window: int, centred: bool) -> list[tuple[int, int, int, int]]:
    """`(start, end, score_start, score_end)` windows covering `length` bases; each base is scored in one window."""
    if length <= window:
        return [(0, length, 0, length)]
    step = max(1, window // 2)
    starts = list(range(0, length - window, step)) + [length - window]
    tiles = []
    for i, start in enumerate(starts):
        end = start + window
        if centred:
            centre = start + window / 2
            low = 0 if i == 0 else math.ceil((centre + starts[i - 1] + window / 2) / 2)
            high = length if i == len(starts) - 1 else math.ceil((centre + starts[i + 1] + window / 2) / 2)
        else:
            low = 0 if i == 0 else starts[i - 1] + window
            high = end
        if high > low:
            tiles.append((start, end, low, high))
    return tiles


def _default_stride(limits: InfillingLimits, length: int, positions: int) -> int:
    """Mask about as large a share of bases as the lightest trained corruption rate, within the gap limits."""
    stride = max(2, math.ceil(1 / limits.min_corruption_rate))
    return max(stride, math.ceil(positions / max(limits.max_gaps(length), 1)))


# -- public API ----------------------------------------------------------------------------------------------------
def gap_log_probs(
    model,
    tokenizer,
    sequences: Union[str, Sequence[str]],
    gaps: Sequence,
    *,
    batch_size: int = 16,
    strict: bool = True,
    mixture: Optional[Sequence] = None,
    disable_tqdm: bool = False,
) -> Union[np.ndarray, list[np.ndarray]]:
    """Log-probabilities of the true bases under given gaps, as the infilling objective's loss reads them.

    Each sequence with its gaps is one infilling example ([`infilling_example`]), scored in one teacher-forced pass:
    each masked base is predicted from every known base and from the true bases of the gaps before it.

    Args:
        sequences (`str` or `list[str]`): DNA (the bases under the gaps are the truth being scored).
        gaps: `(start, end)` intervals: a list of pairs for one sequence, a list of such lists for a batch.
        batch_size, strict, mixture, disable_tqdm: see [`infill`].

    Returns:
        `np.ndarray` of shape `(num_masked, 4)` (one sequence) or a list of them: the distribution over
        `A, C, G, T` (log, nats) at each masked base, gaps in order. Index it with the true bases for their
        log-likelihood.
    """
    require_infilling(model, "score gaps", strict=strict)
    limits = infilling_limits(model, tokenizer, mixture)
    objective = infilling_objective(tokenizer)
    sentinels = np.asarray(objective.special.sentinels)
    batch, single = as_batch(sequences, "sequences")
    if single:
        gaps = [gaps]
    if len(gaps) != len(batch):
        raise DNAInputError(f"Got {len(gaps)} gap lists for {len(batch)} sequences.")
    examples = []
    for index, (sequence, sequence_gaps) in enumerate(zip(batch, gaps)):
        name = "sequence" if single else f"sequences[{index}]"
        parsed = parse_sequence(sequence, tokenizer, mask_char=None, name=name)
        sequence_gaps = check_gaps(sequence_gaps, len(parsed), name=f"gaps of {name}")
        limits.check(len(parsed), sequence_gaps, name=name, strict=strict)
        examples.append(infilling_example(parsed.token_ids, sequence_gaps, objective))
    log_probs = teacher_forced_base_log_probs(
        model, examples, base_ids(tokenizer), batch_size=batch_size, disable_tqdm=disable_tqdm, desc="Scoring gaps"
    )
    out = [lp[masked_rows(example, sentinels)] for lp, example in zip(log_probs, examples)]
    return out[0] if single else out


def score(
    model,
    tokenizer,
    sequences: Union[str, Sequence[str]],
    *,
    bidirectional: Optional[bool] = None,
    causal: bool = True,
    stride: Optional[int] = None,
    window_length: Optional[int] = None,
    batch_size: int = 16,
    strict: bool = True,
    mixture: Optional[Sequence] = None,
    disable_tqdm: bool = False,
) -> Union[SequenceScore, list[SequenceScore]]:
    """Per-base log-likelihood of DNA sequences, with context from both sides and left to right.

    Args:
        model: a Birdie checkpoint (`AutoModelForCausalLM`); it runs on its own device.
        tokenizer: its tokenizer.
        sequences (`str` or `list[str]`): DNA (`ACGTN`, any case, IUPAC codes read as `N`).
        bidirectional (`bool`, *optional*): compute the bidirectional score. Defaults to doing so when the checkpoint
            was trained with infilling (a warning says when it was not); `True` raises
            [`InfillingNotTrainedError`] for a checkpoint trained without it.
        causal (`bool`, *optional*, defaults to `True`): compute the left-to-right score.
        stride (`int`, *optional*): bases between two positions masked in the same pass (at least 2, so gaps never
            touch); a window costs `stride` passes. Defaults to masking about the lightest trained corruption rate
            (every 7th base with the default mixture), more sparsely when the window would otherwise hold more gaps
            than the objective makes.
        window_length (`int`, *optional*): longest window read at once; longer sequences are tiled (see the module
            docstring). Defaults to `config.birdie_window_length` when recorded, else what the model's positions allow.
        batch_size (`int`, *optional*, defaults to `16`): examples per forward pass.
        strict (`bool`, *optional*, defaults to `True`): see [`infill`].
        mixture (`list`, *optional*): the mixture the checkpoint was trained on, when it does not record it.
        disable_tqdm (`bool`, *optional*, defaults to `False`): hide the progress bars.

    Returns:
        [`SequenceScore`] for one sequence, a list of them for a list.

    Example:

    ```python
    >>> from birdie_hf import score
    >>> result = score(model, tokenizer, "ACGTAGCTAGCTAGGATCGATCGA")  # doctest: +SKIP
    >>> result.bidirectional.shape, result.causal.shape  # doctest: +SKIP
    ((24,), (24,))
    ```
    """
    use_bidirectional = resolve_bidirectional(model, bidirectional, strict)
    if not (use_bidirectional or causal):
        raise ValueError("Nothing to compute: bidirectional and causal are both off.")
    if stride is not None and (isinstance(stride, bool) or not isinstance(stride, (int, np.integer)) or stride < 2):
        raise ValueError(
            f"stride must be an integer of at least 2 (two masked neighbours would make one gap), got {stride!r}."
        )
    if causal:
        check_window_length(window_length, model, lambda w: 0, "causal")
    batch, single = as_batch(sequences, "sequences")
    parsed = [
        parse_sequence(s, tokenizer, mask_char=None, name="sequence" if single else f"sequences[{i}]")
        for i, s in enumerate(batch)
    ]
    bases = base_ids(tokenizer)
    results = [SequenceScore(sequence=p.text) for p in parsed]

    if use_bidirectional:
        _score_bidirectionally(
            model, tokenizer, parsed, results, mixture, stride, window_length, strict, bases, batch_size, disable_tqdm
        )
    if causal:
        _score_causally(model, tokenizer, parsed, results, window_length, bases, batch_size, disable_tqdm)
    for result in results:
        _true_base_scores(result)
    return results[0] if single else results


def _score_bidirectionally(
    model, tokenizer, parsed, results, mixture, stride, window_length, strict, bases, batch_size, disable_tqdm
) -> None:
    """Fill each result's `bidirectional_log_probs` (`(length, 4)`): every base masked as a one-base gap, `stride`
    bases apart per example (the checkpoint's own corruption rate when not given), read from both flanks, tile by
    tile. A checkpoint that never masks a window's first or last base leaves a sequence's ends NaN (`strict`)."""
    limits = infilling_limits(model, tokenizer, mixture)
    objective = infilling_objective(tokenizer)
    sentinels = np.asarray(objective.special.sentinels)
    probe_stride = stride or max(2, math.ceil(1 / limits.min_corruption_rate))
    # An infilling example: prompt, the window with a sentinel per gap, then each gap's sentinel and base, end.
    check_window_length(window_length, model, lambda w: 2 * math.ceil(w / probe_stride) + 2, "infilling")
    window = window_length or default_window(model, probe_stride)
    examples, owners, unscored_ends = [], [], 0
    for index, sequence in enumerate(parsed):
        n = len(sequence)
        if n < 2:
            raise DNAInputError(f"sequences[{index}] has {n} base; bidirectional scoring needs at least 2.")
        for start, end, low, high in _tiles(n, window, centred=True):
            tile_stride = stride or _default_stride(limits, end - start, high - low)
            results[index].stride = max(results[index].stride or 0, tile_stride)
            # A checkpoint whose infilling keeps both window ends known (span_layout="interior") never learned to
            # fill a window's first or last base: those stay NaN (only a sequence's own ends are a window's).
            inside_only = strict and limits.max_gap_length(end - start, interior=False) < 1
            for offset in range(tile_stride):
                positions = np.arange(low + offset, high, tile_stride)
                if inside_only:
                    kept = positions[(positions > start) & (positions < end - 1)]
                    unscored_ends += positions.size - kept.size
                    positions = kept
                if positions.size == 0:
                    continue
                gaps = [(int(p) - start, int(p) - start + 1) for p in positions]
                limits.check(
                    end - start, gaps, name=f"a window of sequences[{index}] with stride {tile_stride}", strict=strict
                )
                examples.append(infilling_example(sequence.token_ids[start:end], gaps, objective))
                owners.append((index, positions))
    if unscored_ends:
        logger.warning(
            f"{unscored_ends} bases at a sequence's end have no bidirectional score (NaN): the checkpoint's "
            f"infilling entries ({limits.describe()}) never mask a window's first or last base. Their causal "
            "scores are computed; strict=False scores them bidirectionally anyway."
        )
    log_probs = teacher_forced_base_log_probs(
        model, examples, bases, batch_size=batch_size, disable_tqdm=disable_tqdm, desc="Bidirectional scoring"
    )
    for index, sequence in enumerate(parsed):
        results[index].bidirectional_log_probs = np.full((len(sequence), 4), np.nan)
    for example, (index, positions), lp in zip(examples, owners, log_probs):
        results[index].bidirectional_log_probs[positions] = lp[masked_rows(example, sentinels)]


def _score_causally(model, tokenizer, parsed, results, window_length, bases, batch_size, disable_tqdm) -> None:
    """Fill each result's `causal_log_probs` (`(length, 4)`): every base given its left flank, in tiles that overlap
    so each base is read with the longest left context a window allows."""
    objective = causal_objective(tokenizer)
    window = window_length or default_window(model)
    examples, owners = [], []
    for index, sequence in enumerate(parsed):
        for start, end, low, high in _tiles(len(sequence), window, centred=False):
            examples.append(objective(sequence.token_ids[start:end], np.random.default_rng(0)))
            owners.append((index, start, low, high))
    log_probs = teacher_forced_base_log_probs(
        model, examples, bases, batch_size=batch_size, disable_tqdm=disable_tqdm, desc="Causal scoring"
    )
    for index, sequence in enumerate(parsed):
        results[index].causal_log_probs = np.full((len(sequence), 4), np.nan)
    for (index, start, low, high), lp in zip(owners, log_probs):
        results[index].causal_log_probs[low:high] = lp[low - start : high - start]


def _true_base_scores(result) -> None:
    """Each reading's log-probability of the base the sequence holds (NaN where it holds no A, C, G or T)."""
    truth = np.array([BASE_INDEX.get(c, -1) for c in result.sequence])
    known = truth >= 0
    for table, column in (("bidirectional_log_probs", "bidirectional"), ("causal_log_probs", "causal")):
        log_probs = getattr(result, table)
        if log_probs is not None:
            values = np.full(len(truth), np.nan)
            values[known] = log_probs[np.flatnonzero(known), truth[known]]
            setattr(result, column, values)
