"""Packing objective examples into fixed-width rows with block-diagonal prefix-LM attention masks."""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
import torch

from .objectives.base import IGNORE_INDEX, ObjectiveExample


def first_fit(lengths: Sequence[int], capacity: int) -> list[list[int]]:
    """Assign items (in order) to the first row with room; returns the item indices of each row."""
    rows: list[list[int]] = []
    room: list[int] = []
    for index, length in enumerate(lengths):
        if length > capacity:
            raise ValueError(f"Example {index} has {length} tokens, more than the row length {capacity}.")
        for row, free in enumerate(room):
            if length <= free:
                rows[row].append(index)
                room[row] -= length
                break
        else:
            rows.append([index])
            room.append(capacity - length)
    return rows


def pack_examples(
    examples: Sequence[ObjectiveExample],
    objective_ids: Sequence[int],
    *,
    max_length: int,
    pad_token_id: int,
    pad_to_multiple_of: int | None = 8,
    min_rows: int = 0,
    full_width: bool = False,
) -> dict[str, np.ndarray]:
    """Pack examples into rows of at most `max_length` tokens.

    Returns numpy arrays, each of shape `(num_rows, length)` where `length` is the longest row rounded up to
    `pad_to_multiple_of` (and at most `max_length`), or `max_length` itself with `full_width=True`, and `num_rows` is
    at least `min_rows` (rows of padding are added; with both, every batch has one shape, which a compiled model
    needs to run without recompiling):

    - `input_ids`, `labels` (`-100` on padding), `position_ids` (restarting at 0 for each example, 0 on padding),
    - `objective_ids` (the mixture index of each token's example, `-1` on padding),
    - `segment_ids` (0, 1, … for the examples of a row, `-1` on padding),
    - `bidirectional_mask` (`True` on prefix tokens, which attend to each other both ways).
    """
    rows = first_fit([len(example) for example in examples], max_length)
    width = max(sum(len(examples[i]) for i in row) for row in rows)
    if full_width:
        width = max_length
    elif pad_to_multiple_of:
        width = min(max_length, -(-width // pad_to_multiple_of) * pad_to_multiple_of)
    shape = (max(len(rows), min_rows), width)
    out = {
        "input_ids": np.full(shape, pad_token_id, dtype=np.int64),
        "labels": np.full(shape, IGNORE_INDEX, dtype=np.int64),
        "position_ids": np.zeros(shape, dtype=np.int64),
        "objective_ids": np.full(shape, -1, dtype=np.int64),
        "segment_ids": np.full(shape, -1, dtype=np.int64),
        "bidirectional_mask": np.zeros(shape, dtype=bool),
    }
    for r, row in enumerate(rows):
        offset = 0
        for segment, index in enumerate(row):
            example = examples[index]
            end = offset + len(example)
            out["input_ids"][r, offset:end] = example.input_ids
            out["labels"][r, offset:end] = example.labels
            out["position_ids"][r, offset:end] = np.arange(len(example))
            out["objective_ids"][r, offset:end] = objective_ids[index]
            out["segment_ids"][r, offset:end] = segment
            out["bidirectional_mask"][r, offset : offset + example.prefix_length] = True
            offset = end
    return out


def packed_attention_mask(
    segment_ids: torch.Tensor, bidirectional_mask: torch.Tensor, dtype: torch.dtype = torch.float32
) -> torch.Tensor:
    """The dense additive 4-D mask for packed prefix-LM rows.

    Query `q` may attend key `k` when both belong to the same example and either `k <= q` (causal) or both are in
    that example's prefix (bidirectional). Padding tokens attend to earlier padding only, so no row is fully masked.

    Args:
        segment_ids (`torch.Tensor` of shape `(batch, length)`): example index per token, `-1` on padding.
        bidirectional_mask (`torch.Tensor` of shape `(batch, length)`): `True` on prefix tokens.
        dtype (`torch.dtype`): the model's compute dtype.

    Returns:
        `torch.Tensor` of shape `(batch, 1, length, length)`: `0` where attention is allowed and
        `torch.finfo(dtype).min` elsewhere (right for both the `eager` and `sdpa` attention of transformers; a bool
        mask is silently wrong for `eager`).
    """
    allowed = packed_attention_allowed(segment_ids, bidirectional_mask)
    mask = torch.zeros(allowed.shape, dtype=dtype, device=allowed.device)
    mask.masked_fill_(~allowed, torch.finfo(dtype).min)
    return mask.unsqueeze(1)


def single_example_attention_mask(
    segment_ids: torch.Tensor, bidirectional_mask: torch.Tensor, dtype: torch.dtype, device: torch.device
) -> Optional[torch.Tensor]:
    """[`packed_attention_mask`] for rows holding one example each, right-padded (inference and read-outs), built on
    `device` (for 128 rows of 1,024 tokens it is 256 MiB, which the host would take longer to build and copy than a
    GPU takes to read it); `None` when no row has a prefix, as the model's own causal mask then reads every real token
    the same (padding comes after it) and lets the attention kernel skip the masked half.

    Args:
        segment_ids (`torch.Tensor` of shape `(batch, length)`): `0` on the example, `-1` on padding.
        bidirectional_mask (`torch.Tensor` of shape `(batch, length)`): `True` on prefix tokens.
    """
    if not bidirectional_mask.any():
        return None
    return packed_attention_mask(segment_ids.to(device), bidirectional_mask.to(device), dtype)


def packed_attention_allowed(segment_ids: torch.Tensor, bidirectional_mask: torch.Tensor) -> torch.Tensor:
    """Boolean `(batch, length, length)` form of [`packed_attention_mask`] (`True` = may attend)."""
    length = segment_ids.shape[-1]
    causal = torch.ones(length, length, dtype=torch.bool, device=segment_ids.device).tril_()
    same = segment_ids.unsqueeze(-1) == segment_ids.unsqueeze(-2)
    both_prefix = bidirectional_mask.unsqueeze(-1) & bidirectional_mask.unsqueeze(-2)
    return same & (causal | both_prefix)


def packed_mask_mod(segment_ids: torch.Tensor, bidirectional_mask: torch.Tensor):
    """The same rule as [`packed_attention_allowed`] as a `flex_attention` `mask_mod(b, h, q, k)`."""

    def mask_mod(b, h, q, k):
        same = segment_ids[b, q] == segment_ids[b, k]
        return same & ((k <= q) | (bidirectional_mask[b, q] & bidirectional_mask[b, k]))

    return mask_mod


def packed_block_mask(segment_ids: torch.Tensor, bidirectional_mask: torch.Tensor):
    """A `flex_attention` `BlockMask` for packed prefix-LM rows: memory linear in the row length (one entry per
    128x128 block instead of per token pair). For `attn_implementation="flex_attention"` models, on CUDA, where it
    is built by a compiled kernel (`create_block_mask(_compile=True)`: without it, every step evaluates the rule on
    all `rows x length x length` pairs in eager mode)."""
    from torch.nn.attention.flex_attention import create_block_mask

    rows, length = segment_ids.shape
    return create_block_mask(
        packed_mask_mod(segment_ids, bidirectional_mask),
        B=rows,
        H=None,
        Q_LEN=length,
        KV_LEN=length,
        device=segment_ids.device,
        _compile=segment_ids.device.type == "cuda",
    )


MASK_FORMATS = ("dense", "flex")


def to_model_inputs(
    batch: dict[str, torch.Tensor], dtype: torch.dtype = torch.float32, mask_format: str = "dense"
) -> dict:
    """Turn a collated batch into keyword arguments for a transformers causal LM.

    Builds the attention mask from `segment_ids`/`bidirectional_mask` when the batch is in the compact format (on
    the batch's device): the dense 4-D additive mask in `dtype` (`mask_format="dense"`, for `sdpa`/`eager`) or a
    `flex_attention` `BlockMask` (`mask_format="flex"`). An existing dense mask is re-expressed in `dtype`.
    `objective_ids` is dropped.
    """
    if mask_format not in MASK_FORMATS:
        raise ValueError(f"mask_format must be one of {MASK_FORMATS}, got {mask_format!r}.")
    inputs = {k: v for k, v in batch.items() if k not in ("objective_ids", "segment_ids", "bidirectional_mask")}
    if "segment_ids" in batch:
        if mask_format == "flex":
            inputs["attention_mask"] = packed_block_mask(batch["segment_ids"], batch["bidirectional_mask"])
        else:
            inputs["attention_mask"] = packed_attention_mask(batch["segment_ids"], batch["bidirectional_mask"], dtype)
    elif "attention_mask" in batch and batch["attention_mask"].dtype != dtype:
        allowed = batch["attention_mask"] == 0
        inputs["attention_mask"] = torch.zeros(allowed.shape, dtype=dtype, device=allowed.device).masked_fill_(
            ~allowed, torch.finfo(dtype).min
        )
    return inputs
