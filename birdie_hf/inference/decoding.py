"""Filling gaps in DNA with a Birdie checkpoint, through the infilling objective's own prompt.

The sequence with its gaps is laid out as the infilling objective lays out a training example
([`infilling_example`]): `[<|infilling|>] + sequence with gap i replaced by <sentinel_i>` is the prefix, read
bidirectionally in one forward pass with the collator's prefix-LM mask; then the targets
`<sentinel_0> gap_0 <sentinel_1> gap_1 ...` are decoded causally with a key/value cache. Gap lengths are known, so
the sentinels are forced and exactly `end - start` bases are decoded per gap, each from the model's distribution
restricted to `A, C, G, T` (greedy, sampled, or by beam search).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional, Sequence, Union

import numpy as np
import torch

from .._compat import cache_argument
from ..packing import packed_attention_mask
from .forward import inference_mode, model_device, model_dtype, progress_bar
from .inputs import (
    BASES,
    DNAInputError,
    as_batch,
    base_ids,
    check_gaps,
    infilling_example,
    infilling_objective,
    parse_sequence,
)
from .limits import infilling_limits, require_infilling


DECODING_MODES = ("greedy", "sample", "beam")


@dataclass
class InfillResult:
    """The filled sequence and how sure the model was.

    Attributes:
        sequence (`str`): the input (upper-case, IUPAC codes as `N`) with every gap filled.
        gaps (`list[tuple[int, int]]`): the filled intervals, in order.
        fills (`list[str]`): the bases written into each gap.
        probabilities (`np.ndarray` of shape `(num_masked,)`): probability of each written base (gaps in order),
            given the sequence and the bases written before it.
        base_probabilities (`np.ndarray` of shape `(num_masked, 4)`): the model's distribution over `A, C, G, T` at
            each written base (its softmax restricted to the four bases).
        log_likelihood (`float`): sum of the log of `probabilities` (nats).
    """

    sequence: str
    gaps: list
    fills: list
    probabilities: np.ndarray = field(repr=False)
    base_probabilities: np.ndarray = field(repr=False)
    log_likelihood: float = 0.0

    def to_dict(self) -> dict:
        """Plain Python values (lists and floats), e.g. for JSON."""
        return {
            "sequence": self.sequence,
            "gaps": [list(gap) for gap in self.gaps],
            "fills": list(self.fills),
            "probabilities": self.probabilities.tolist(),
            "log_likelihood": float(self.log_likelihood),
        }


def _new_cache(model):
    from transformers import DynamicCache

    try:
        return DynamicCache(config=model.config)
    except TypeError:  # transformers releases whose DynamicCache takes no config
        return DynamicCache()


def _choose(
    logits: torch.Tensor, mode: str, temperature: float, top_k: Optional[int], generator: Optional[torch.Generator]
) -> torch.Tensor:
    """Base index (0-3) per row from `(rows, 4)` base logits, greedy or sampled."""
    if mode != "sample":  # greedy, and beam search with a single beam
        return logits.argmax(-1)
    scaled = logits.float() / temperature
    if top_k is not None and top_k < 4:
        threshold = scaled.topk(top_k, dim=-1).values[:, -1:]
        scaled = scaled.masked_fill(scaled < threshold, float("-inf"))
    return torch.multinomial(torch.softmax(scaled, dim=-1), 1, generator=generator).squeeze(-1)


def decode_gaps(
    model,
    prefixes: Sequence[np.ndarray],
    templates: Sequence[np.ndarray],
    free: Sequence[np.ndarray],
    bases: Sequence[int],
    *,
    decoding: str = "greedy",
    num_beams: int = 4,
    temperature: float = 1.0,
    top_k: Optional[int] = None,
    generator: Optional[torch.Generator] = None,
    pad_token_id: int = 0,
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Decode the bases of a batch of infilling examples.

    The prefixes (left-padded to a common length) are read in one forward pass with a bidirectional mask over each
    prefix; then one token per step is fed with the key/value cache: the template's token where it is forced (the
    sentinels), otherwise a base chosen from the model's distribution over `A, C, G, T`.

    Args:
        model: the causal LM.
        prefixes (`Sequence[np.ndarray]`): per example, the prefix token ids, shape `(prefix_length,)`.
        templates (`Sequence[np.ndarray]`): per example, the target token ids without the final eos, shape `(t,)`.
        free (`Sequence[np.ndarray]`): per example, a boolean `(t,)` array, `True` where a base is to be decoded.
        bases (`Sequence[int]`): token ids of `A, C, G, T`.
        decoding (`str`): `"greedy"`, `"sample"` or `"beam"` (beam search on the sum of the bases' log-probabilities).
        num_beams (`int`): beams per example with `decoding="beam"`.
        temperature (`float`), top_k (`int`, *optional*), generator (`torch.Generator`, *optional*): for sampling.
        pad_token_id (`int`): id fed for padding.

    Returns:
        `list[tuple[np.ndarray, np.ndarray]]`: per example, the chosen base indices (0-3) at the free positions, shape
        `(num_free,)`, and the model's distribution over the four bases there, shape `(num_free, 4)`.
    """
    device, dtype = model_device(model), model_dtype(model)
    beams = num_beams if decoding == "beam" else 1
    rows0, steps = len(prefixes), max(len(t) for t in templates)
    minimum = torch.finfo(dtype).min
    cache_arg = cache_argument(model)
    bases_t = torch.as_tensor(list(bases), device=device)

    input_ids, valid, template, is_free, active = _decoding_batch(prefixes, templates, free, pad_token_id)
    prefix_lengths = valid.sum(1)
    positions = (valid.long().cumsum(1) - 1).clamp(min=0)
    # The collator's mask for one example per row: bidirectional over the prefix (left padding is a segment of its
    # own, so no row is fully masked).
    on_device = valid.to(device)
    mask = packed_attention_mask(torch.where(on_device, 0, -1), on_device, dtype)  # built where the model runs
    cache = _new_cache(model)
    logits = model(
        input_ids=input_ids.to(device),
        attention_mask=mask,
        position_ids=positions.to(device),
        use_cache=True,
        **{cache_arg: cache},
    ).logits[:, -1]

    if beams > 1:
        cache.batch_repeat_interleave(beams)
        logits = logits.repeat_interleave(beams, 0)
        valid, prefix_lengths = valid.repeat_interleave(beams, 0), prefix_lengths.repeat_interleave(beams, 0)
        template, is_free, active = (x.repeat_interleave(beams, 0) for x in (template, is_free, active))
    rows = rows0 * beams
    template, is_free, active = template.to(device), is_free.to(device), active.to(device)
    key_valid, prefix_lengths = valid.to(device), prefix_lengths.to(device)
    beam_scores = torch.zeros(rows0, beams, dtype=torch.float64, device=device)
    beam_scores[:, 1:] = float("-inf")  # every beam starts as the same hypothesis: expand the first one only
    beam_scores = beam_scores.view(-1)
    chosen = torch.full((rows, steps), -1, dtype=torch.long, device=device)
    distributions = torch.zeros(rows, steps, 4, dtype=torch.float64, device=device)

    for t in range(steps):
        base_logits = logits[:, bases_t].double()
        log_probs = torch.log_softmax(base_logits, dim=-1)
        free_t = is_free[:, t] & active[:, t]
        if beams > 1:
            beam_scores, choice, reorder = _beam_step(beam_scores, log_probs, free_t, beams)
            if not torch.equal(reorder, torch.arange(rows, device=device)):
                cache.reorder_cache(reorder)
                chosen, distributions, log_probs = chosen[reorder], distributions[reorder], log_probs[reorder]
        else:
            choice = _choose(base_logits, decoding, temperature, top_k, generator)
        chosen[:, t] = torch.where(free_t, choice, chosen[:, t])
        distributions[:, t] = torch.where(free_t[:, None], log_probs.exp(), distributions[:, t])
        token = torch.where(free_t, bases_t[choice], template[:, t])
        if t == steps - 1:
            break
        key_valid = torch.cat([key_valid, torch.ones(rows, 1, dtype=torch.bool, device=device)], dim=1)
        step_mask = torch.zeros(rows, 1, 1, key_valid.shape[1], dtype=dtype, device=device)
        step_mask.masked_fill_(~key_valid[:, None, None, :], minimum)
        logits = model(
            input_ids=token[:, None],
            attention_mask=step_mask,
            position_ids=(prefix_lengths + t)[:, None],
            use_cache=True,
            **{cache_arg: cache},
        ).logits[:, -1]

    results = []
    for row0 in range(rows0):
        row = row0 * beams  # beams stay sorted by score: the first is the best
        free_row = is_free[row].cpu().numpy()
        results.append((chosen[row].cpu().numpy()[free_row], distributions[row].cpu().numpy()[free_row]))
    return results


def _decoding_batch(prefixes, templates, free, pad_token_id: int) -> tuple[torch.Tensor, ...]:
    """The examples of [`decode_gaps`] as tensors: `input_ids` and `valid` `(rows, width)`, the prefixes left-padded
    to the longest; `template`, `is_free` and `active` `(rows, steps)`, the targets right-padded (`active`: inside
    the example's target)."""
    rows, width, steps = len(prefixes), max(len(p) for p in prefixes), max(len(t) for t in templates)
    input_ids = torch.full((rows, width), pad_token_id, dtype=torch.long)
    valid = torch.zeros(rows, width, dtype=torch.bool)
    template = torch.full((rows, steps), pad_token_id, dtype=torch.long)
    is_free = torch.zeros(rows, steps, dtype=torch.bool)
    active = torch.zeros(rows, steps, dtype=torch.bool)
    for row, (prefix, target, free_row) in enumerate(zip(prefixes, templates, free)):
        input_ids[row, width - len(prefix) :] = torch.from_numpy(np.asarray(prefix, dtype=np.int64))
        valid[row, width - len(prefix) :] = True
        template[row, : len(target)] = torch.from_numpy(np.asarray(target, dtype=np.int64))
        is_free[row, : len(target)] = torch.from_numpy(np.asarray(free_row, dtype=bool))
        active[row, : len(target)] = True
    return input_ids, valid, template, is_free, active


def _beam_step(
    beam_scores: torch.Tensor, log_probs: torch.Tensor, free: torch.Tensor, beams: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One step of beam search over `examples x beams` rows (`beam_scores` `(rows,)`, `log_probs` `(rows, 4)`,
    `free` `(rows,)`: a base is chosen at this step). At a free step every example keeps its `beams` best extensions;
    at a forced one (a sentinel) its beams stay as they are. Returns the new scores, the base each row takes, and the
    row each new beam continues (`reorder`, for the cache and the history)."""
    examples = beam_scores.numel() // beams
    device = beam_scores.device
    free_groups = free.view(examples, beams)[:, 0]
    candidates = (beam_scores.view(examples, beams, 1) + log_probs.view(examples, beams, 4)).view(examples, -1)
    top_scores, top_index = candidates.topk(beams, dim=-1)
    keep = torch.arange(beams, device=device).expand(examples, beams)
    origin = torch.where(free_groups[:, None], top_index // 4, keep)
    scores = torch.where(free_groups[:, None], top_scores, beam_scores.view(examples, beams)).view(-1)
    reorder = (torch.arange(examples, device=device)[:, None] * beams + origin).view(-1)
    return scores, (top_index % 4).view(-1), reorder


def _gaps_for(gaps, count: int, single: bool) -> list:
    if gaps is None:
        return [None] * count
    if single:
        return [gaps]
    if not isinstance(gaps, (list, tuple)) or len(gaps) != count:
        raise DNAInputError(
            f"With {count} sequences, gaps must be a list of {count} gap lists (or None each), got {gaps!r}."
        )
    return list(gaps)


def infill(
    model,
    tokenizer,
    sequences: Union[str, Sequence[str]],
    gaps: Optional[Sequence] = None,
    *,
    mask_char: str = "_",
    decoding: str = "greedy",
    num_beams: int = 4,
    temperature: float = 1.0,
    top_k: Optional[int] = None,
    seed: Optional[int] = None,
    batch_size: int = 8,
    strict: bool = True,
    mixture: Optional[Sequence] = None,
    disable_tqdm: bool = False,
) -> Union[InfillResult, list[InfillResult]]:
    """Fill the gaps of DNA sequences with a checkpoint trained with the infilling objective.

    Args:
        model: a Birdie checkpoint (`AutoModelForCausalLM`); it runs on its own device.
        tokenizer: its tokenizer.
        sequences (`str` or `list[str]`): DNA with gaps marked by runs of `mask_char`, e.g. `"ACGT___ACGT"`.
        gaps (*optional*): instead of mask characters, `(start, end)` intervals (0-based, end exclusive) to fill: a
            list of pairs for one sequence, a list of such lists for a batch. Bases under them are ignored.
        mask_char (`str`, *optional*, defaults to `"_"`): the gap character (not a base, IUPAC code or whitespace).
        decoding (`str`, *optional*, defaults to `"greedy"`): `"greedy"`, `"sample"` or `"beam"`.
        num_beams (`int`, *optional*, defaults to `4`): beams for `"beam"`.
        temperature (`float`, *optional*, defaults to `1.0`), top_k (`int`, *optional*): for `"sample"`.
        seed (`int`, *optional*): seeds sampling.
        batch_size (`int`, *optional*, defaults to `8`): sequences decoded together.
        strict (`bool`, *optional*, defaults to `True`): refuse gaps the checkpoint's infilling objective never trained
            on and checkpoints that record no objectives (see [`InfillingLimits`]); `False` keeps only the hard limits.
        mixture (`list`, *optional*): the mixture the checkpoint was trained on, when it does not record it.
        disable_tqdm (`bool`, *optional*, defaults to `False`): hide the progress bar (shown for several batches).

    Returns:
        [`InfillResult`] for one sequence, a list of them for a list.

    Raises:
        [`InfillingNotTrainedError`]: the checkpoint was trained without infilling (e.g. next-token prediction only).
        [`DNAInputError`]: non-DNA characters, no gaps, or malformed / overlapping / touching gaps.
        [`UntrainedGapsError`]: too many gaps, too long a gap or too much masked for what the checkpoint trained on.

    Example:

    ```python
    >>> from birdie_hf import infill
    >>> result = infill(model, tokenizer, "ACGTACGGT____CGTAGCTAG")  # doctest: +SKIP
    >>> result.sequence, result.fills, result.probabilities.shape  # doctest: +SKIP
    ('ACGTACGGTACGTCGTAGCTAG', ['ACGT'], (4,))
    ```
    """
    if decoding not in DECODING_MODES:
        raise ValueError(f"decoding must be one of {DECODING_MODES}, got {decoding!r}.")
    if decoding == "beam" and num_beams < 1:
        raise ValueError(f"num_beams must be at least 1, got {num_beams}.")
    if decoding == "sample" and not temperature > 0:
        raise ValueError(f"temperature must be positive, got {temperature}.")
    if top_k is not None and not 1 <= top_k <= 4:
        raise ValueError(f"top_k must be between 1 and 4 (there are four bases), got {top_k}.")
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}.")
    require_infilling(model, "fill gaps", strict=strict)
    limits = infilling_limits(model, tokenizer, mixture)
    objective = infilling_objective(tokenizer)
    batch, single = as_batch(sequences, "sequences")
    sentinels = np.asarray(objective.special.sentinels, dtype=np.int64)

    prepared = [
        _prepared_example(sequence, given, "sequence" if single else f"sequences[{index}]", tokenizer, mask_char, limits,
                          objective, sentinels, strict)
        for index, (sequence, given) in enumerate(zip(batch, _gaps_for(gaps, len(batch), single)))
    ]  # fmt: skip

    generator = None
    device = model_device(model)
    if seed is not None:
        generator = torch.Generator(device=device).manual_seed(seed)
    bases = base_ids(tokenizer)
    chunks = [prepared[i : i + batch_size] for i in range(0, len(prepared), batch_size)]
    results = []
    with inference_mode(model):
        for chunk in progress_bar(chunks, total=len(chunks), desc="Infilling", disable=disable_tqdm):
            decoded = decode_gaps(
                model,
                [c[2] for c in chunk],
                [c[3] for c in chunk],
                [c[4] for c in chunk],
                bases,
                decoding=decoding,
                num_beams=num_beams,
                temperature=temperature,
                top_k=top_k,
                generator=generator,
                pad_token_id=tokenizer.pad_token_id,
            )
            results += [
                _infill_result(parsed, sequence_gaps, choice, distribution)
                for (parsed, sequence_gaps, *_), (choice, distribution) in zip(chunk, decoded)
            ]
    return results[0] if single else results


def _prepared_example(sequence, given, name, tokenizer, mask_char, limits, objective, sentinels, strict) -> tuple:
    """One sequence to fill, checked (its gaps: the mask characters, or `given`, never both; within what the checkpoint
    was trained to fill) and made into an infilling example: `(parsed, gaps, prefix ids, target ids, which target
    positions are bases rather than sentinels)`."""
    parsed = parse_sequence(sequence, tokenizer, mask_char=mask_char, name=name)
    if given is None:
        if not parsed.gaps:
            raise DNAInputError(f"{name} has no gaps: mark the bases to fill with {mask_char!r} or pass gaps=.")
        sequence_gaps = parsed.gaps
    else:
        sequence_gaps = check_gaps(given, len(parsed), name=f"gaps of {name}")
        covered = np.zeros(len(parsed), dtype=bool)
        for start, end in sequence_gaps:
            covered[start:end] = True
        stray = [start for start, end in parsed.gaps if not covered[start:end].all()]
        if stray:
            raise DNAInputError(
                f"{name} has {mask_char!r} at position {stray[0]}, outside the given gaps: mark "
                "gaps with mask characters or with gaps=, not both."
            )
    limits.check(len(parsed), sequence_gaps, name=name, strict=strict)
    example = infilling_example(parsed.token_ids, sequence_gaps, objective)
    target = example.input_ids[example.prefix_length : -1]
    return parsed, sequence_gaps, example.input_ids[: example.prefix_length], target, ~np.isin(target, sentinels)


def _infill_result(parsed, sequence_gaps, choice: np.ndarray, distribution: np.ndarray) -> InfillResult:
    """The filled sequence, each gap's fill, and the probability of every base written (`choice`: the base index at
    each gap position, in gap order; `distribution`: `(positions, 4)`)."""
    letters = np.array(list(parsed.text))
    written = np.array(list(BASES))[choice]
    fills, offset = [], 0
    for start, end in sequence_gaps:
        letters[start:end] = written[offset : offset + end - start]
        fills.append("".join(written[offset : offset + end - start]))
        offset += end - start
    probabilities = distribution[np.arange(len(choice)), choice]
    return InfillResult(
        sequence="".join(letters),
        gaps=list(sequence_gaps),
        fills=fills,
        probabilities=probabilities,
        base_probabilities=distribution,
        log_likelihood=float(np.log(probabilities).sum()),
    )
