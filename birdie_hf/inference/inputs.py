"""Reading DNA inputs for inference: characters, gaps, and the infilling example they make.

A gap is a half-open interval `(start, end)` of base positions (0-based). Gaps are given either as runs of the mask
character [`MASK_CHAR`] (`"_"`, which is not a base, an IUPAC code or whitespace) or as explicit intervals.

[`infilling_example`] lays a sequence and its gaps out exactly as the infilling objective lays out its training
examples ([`~birdie_hf.objectives.Infilling`]): the same prompt token, sentinels in order of the gaps, the same
prefix / target split. It reuses the objective's own `_prompted` layout, so the two cannot drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence, Union

import numpy as np

from ..objectives import Infilling, InfillingConfig, NextTokenPrediction, NextTokenPredictionConfig, SpecialTokenIds
from ..objectives.base import ObjectiveExample
from ..objectives.spans import SpanLayout
from ..vocabulary import IUPAC_AMBIGUITY_CODES, dna_lookup_table


#: Marks a base to fill in [`infill`]: each run of it is one gap. Not a base, an IUPAC code or whitespace.
MASK_CHAR = "_"
#: The bases whose probabilities inference reports, in this order (the columns of every `(..., 4)` array).
BASES = "ACGT"
#: Column of each base in the `(n, 4)` log-probabilities of the scoring functions.
BASE_INDEX = {base: i for i, base in enumerate(BASES)}

Gap = tuple[int, int]


class DNAInputError(ValueError):
    """An input sequence, gap or variant that inference cannot read (the message says which and why)."""


class InfillingNotTrainedError(ValueError):
    """The checkpoint was not trained with the infilling objective, so it cannot fill gaps or read both flanks."""


class UntrainedGapsError(ValueError):
    """The gaps are of a kind the checkpoint's infilling objective never produced (too many, too long, too much
    masked, or a sequence longer than its windows); see [`InfillingLimits`]."""


@dataclass
class ParsedSequence:
    """One input sequence, read.

    Attributes:
        text (`str`): the sequence upper-cased, IUPAC ambiguity codes as `N`, mask characters kept.
        token_ids (`np.ndarray` of shape `(n,)`): token ids; positions under a mask character hold the `N` id.
        gaps (`list[tuple[int, int]]`): the runs of the mask character, in order.
    """

    text: str
    token_ids: np.ndarray
    gaps: list

    def __len__(self) -> int:
        return int(self.token_ids.shape[0])


def _describe_bad_characters(text: str, positions: np.ndarray, limit: int = 5) -> str:
    shown = ", ".join(f"{int(p)} ({text[int(p)]!r})" for p in positions[:limit])
    more = f" and {len(positions) - limit} more" if len(positions) > limit else ""
    return f"{shown}{more}"


def parse_sequence(
    sequence: str, tokenizer, *, mask_char: Optional[str] = MASK_CHAR, name: str = "sequence"
) -> ParsedSequence:
    """Read one DNA sequence for inference.

    Args:
        sequence (`str`): bases `ACGTN` (any case), IUPAC ambiguity codes (read as `N`) and, when `mask_char` is set,
            runs of `mask_char` marking gaps.
        tokenizer: the Birdie DNA tokenizer.
        mask_char (`str`, *optional*, defaults to [`MASK_CHAR`]): the gap character; `None` allows no gaps.
        name (`str`): how error messages name the input (e.g. `"sequences[3]"`).

    Raises:
        [`DNAInputError`]: not a string, empty, or holding characters other than the above (whitespace included:
            positions must mean what they say). The message lists the first offending positions.
    """
    if not isinstance(sequence, str):
        raise DNAInputError(f"{name} must be a DNA string, got {type(sequence).__name__}.")
    if not sequence:
        raise DNAInputError(f"{name} is empty.")
    if mask_char is not None and (
        len(mask_char) != 1 or mask_char.upper() in "ACGTN" + IUPAC_AMBIGUITY_CODES or mask_char.isspace()
    ):
        raise DNAInputError(
            f"mask_char must be one character that is not a base, an IUPAC code or whitespace; got {mask_char!r}."
        )
    try:
        raw = np.frombuffer(sequence.encode("ascii"), dtype=np.uint8)
    except UnicodeEncodeError:
        bad = np.array([i for i, c in enumerate(sequence) if not c.isascii()])
        raise DNAInputError(
            f"{name} holds non-DNA characters at positions {_describe_bad_characters(sequence, bad)}."
        ) from None
    ids = dna_lookup_table(tokenizer)[raw]
    masked = raw == ord(mask_char) if mask_char is not None else np.zeros(raw.shape, dtype=bool)
    bad = np.flatnonzero((ids < 0) & ~masked)
    if bad.size:
        allowed = "A, C, G, T, N (any case) and IUPAC ambiguity codes" + (
            f", with gaps marked by {mask_char!r}" if mask_char is not None else ""
        )
        raise DNAInputError(
            f"{name} holds non-DNA characters at positions {_describe_bad_characters(sequence, bad)}; "
            f"allowed: {allowed}."
        )
    n_id = tokenizer.convert_tokens_to_ids("N")
    ids = np.where(masked, n_id, ids).astype(np.int64)
    letters = np.frombuffer(sequence.upper().encode("ascii"), dtype=np.uint8).copy()
    letters[(ids == n_id) & ~masked] = ord("N")
    return ParsedSequence(text=letters.tobytes().decode("ascii"), token_ids=ids, gaps=gaps_from_mask(masked))


def gaps_from_mask(mask: np.ndarray) -> list[Gap]:
    """The runs of `True` in a boolean `(n,)` array, as `(start, end)` intervals in order."""
    padded = np.concatenate([[False], np.asarray(mask, dtype=bool), [False]]).astype(np.int8)
    edges = np.flatnonzero(np.diff(padded))
    return [(int(s), int(e)) for s, e in zip(edges[::2], edges[1::2])]


def check_gaps(gaps: Sequence, length: int, name: str = "gaps") -> list[Gap]:
    """Validate explicit gap intervals for a sequence of `length` bases; returns them as sorted int tuples.

    Raises:
        [`DNAInputError`]: a gap that is not a `(start, end)` pair of integers with `0 <= start < end <= length`, or
            two gaps that overlap or touch (the infilling objective always keeps at least one known base between two
            spans; merge touching gaps into one).
    """
    checked = []
    for gap in gaps:
        try:
            start, end = (int(v) for v in gap)
            ok = all(float(v) == int(v) for v in gap)
        except (TypeError, ValueError):
            ok = False
        if not ok:
            raise DNAInputError(f"{name} must be (start, end) pairs of integers, got {gap!r}.")
        if not 0 <= start < end <= length:
            raise DNAInputError(
                f"{name}: ({start}, {end}) is not a non-empty interval inside the sequence of "
                f"{length} bases (0 <= start < end <= length, end exclusive)."
            )
        checked.append((start, end))
    checked.sort()
    for (s1, e1), (s2, e2) in zip(checked, checked[1:]):
        if s2 <= e1:
            what = "overlap" if s2 < e1 else "touch"
            raise DNAInputError(
                f"{name}: ({s1}, {e1}) and ({s2}, {e2}) {what}. The infilling objective always keeps at least one "
                f"known base between two gaps; merge them into ({s1}, {max(e1, e2)})."
            )
    return checked


# -- the objectives' own layouts -------------------------------------------------------------------------------------
def infilling_objective(tokenizer) -> Infilling:
    """The infilling objective for `tokenizer` (its settings do not matter for laying out given gaps).

    Raises:
        [`MissingObjectiveTokenError`]: the tokenizer has no `<|infilling|>` token.
    """
    return Infilling(InfillingConfig(), SpecialTokenIds.from_tokenizer(tokenizer, ["infilling"]))


def causal_objective(tokenizer) -> NextTokenPrediction:
    """The next-token-prediction objective for `tokenizer` (plain left-to-right reading, no prompt)."""
    return NextTokenPrediction(
        NextTokenPredictionConfig(), SpecialTokenIds.from_tokenizer(tokenizer, ["next_token_prediction"])
    )


def gap_layout(gaps: Sequence[Gap], length: int) -> SpanLayout:
    """The [`SpanLayout`] (alternating known / masked segments covering `length` bases) that `gaps` describe: the
    layout the infilling objective would have to draw for these gaps to be its noise spans."""
    starts, lengths, noise = [], [], []
    position = 0
    for start, end in gaps:
        if start > position:
            starts.append(position), lengths.append(start - position), noise.append(False)
        starts.append(start), lengths.append(end - start), noise.append(True)
        position = end
    if position < length:
        starts.append(position), lengths.append(length - position), noise.append(False)
    return SpanLayout(
        starts=np.array(starts, dtype=np.int64),
        lengths=np.array(lengths, dtype=np.int64),
        is_noise=np.array(noise, dtype=bool),
    )


def infilling_example(token_ids: np.ndarray, gaps: Sequence[Gap], objective: Infilling) -> ObjectiveExample:
    """The infilling example of `token_ids` with `gaps` as its noise spans, exactly as [`Infilling`] builds it:

        input_ids = [<|infilling|>] + x with gap i replaced by <sentinel_i> + <sentinel_0> gap_0 <sentinel_1> ... <eos>
        prefix_length = 1 + len(x) - masked bases + len(gaps)      # read bidirectionally

    Bases under the gaps are the targets (their ids do not matter when decoding, see [`infill`]).

    Args:
        token_ids (`np.ndarray` of shape `(n,)`): the sequence's token ids.
        gaps (`Sequence[tuple[int, int]]`): checked, sorted, non-touching gaps (see [`check_gaps`]).
        objective ([`Infilling`]): from [`infilling_objective`].

    Returns:
        [`ObjectiveExample`]: of length `n + 2 * len(gaps) + 2`.
    """
    if len(gaps) > len(objective.special.sentinels):
        raise UntrainedGapsError(
            f"{len(gaps)} gaps need {len(gaps)} sentinel tokens; the tokenizer has {len(objective.special.sentinels)}."
        )
    return objective.example_from_layout(np.asarray(token_ids, dtype=np.int64), gap_layout(gaps, len(token_ids)))


def base_ids(tokenizer) -> list[int]:
    """Token ids of `A`, `C`, `G`, `T` (the order of [`BASES`])."""
    return [tokenizer.convert_tokens_to_ids(base) for base in BASES]


def as_batch(inputs: Union[str, Sequence[str]], name: str) -> tuple[list, bool]:
    """`(list of inputs, whether a single input was given)`."""
    if isinstance(inputs, str):
        return [inputs], True
    if isinstance(inputs, (list, tuple)):
        if not inputs:
            raise DNAInputError(f"{name} is empty.")
        return list(inputs), False
    raise DNAInputError(f"{name} must be a DNA string or a list of them, got {type(inputs).__name__}.")


def infilling_prompt(sequence: str, tokenizer, *, mask_char: str = MASK_CHAR) -> str:
    """The text prompt that asks a causal text-generation front end (the Hub's text-generation widget,
    `pipeline("text-generation")`) to fill the gaps of `sequence`, in the infilling objective's own format:

        "<|infilling|>" + sequence with gap i replaced by "<sentinel_i>" + "<sentinel_0>"

    The model continues with the bases of gap 0, then `<sentinel_1>` and the bases of gap 1, ..., then `<eos>`.
    Such front ends read the prompt causally, whereas training read it bidirectionally, so fills are best with
    [`infill`], which reads it as trained.

    Example: `infilling_prompt("ACGTACGT______GGGTTTACGT", tokenizer)` is
    `"<|infilling|>ACGTACGT<sentinel_0>GGGTTTACGT<sentinel_0>"`.

    Raises:
        [`DNAInputError`]: `sequence` is not DNA or holds no gap.
    """
    parsed = parse_sequence(sequence, tokenizer, mask_char=mask_char)
    if not parsed.gaps:
        raise DNAInputError(f"The sequence holds no gap: mark the bases to fill with {mask_char!r}.")
    example = infilling_example(parsed.token_ids, check_gaps(parsed.gaps, len(parsed)), infilling_objective(tokenizer))
    return tokenizer.decode(example.input_ids[: example.prefix_length + 1].tolist(), skip_special_tokens=False)


def masked_rows(example, sentinels: np.ndarray) -> np.ndarray:
    """Rows of an infilling example's log-probabilities that predict its masked bases (targets without sentinels and
    the final eos), in order."""
    target = example.input_ids[example.prefix_length : -1]
    return example.prefix_length + np.flatnonzero(~np.isin(target, sentinels))
