"""Running a Birdie checkpoint on objective examples: batched teacher-forced forward passes with the training masks."""

from __future__ import annotations

import contextlib
from typing import Iterator, Sequence

import numpy as np
import torch

from ..objectives.base import ObjectiveExample
from ..packing import single_example_attention_mask


def model_device(model) -> torch.device:
    """The device of the model's parameters."""
    return next(model.parameters()).device


def model_dtype(model) -> torch.dtype:
    """The floating-point dtype of the model's parameters (the dtype of its attention masks)."""
    for parameter in model.parameters():
        if parameter.is_floating_point():
            return parameter.dtype
    return torch.float32


@contextlib.contextmanager
def inference_mode(model) -> Iterator[None]:
    """Evaluation mode and no gradients for the duration; the model's previous mode is restored afterwards."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            yield
    finally:
        model.train(was_training)


def progress_bar(iterable, total: int, desc: str, disable: bool):
    """A tqdm bar over `iterable`, shown only when enabled and there is more than one step."""
    from tqdm.auto import tqdm

    return tqdm(iterable, total=total, desc=desc, disable=disable or total <= 1, leave=False)


def teacher_forced_base_log_probs(
    model,
    examples: Sequence[ObjectiveExample],
    base_ids: Sequence[int],
    *,
    batch_size: int = 16,
    disable_tqdm: bool = False,
    desc: str = "Scoring",
) -> list[np.ndarray]:
    """Log-probabilities of the four bases at every position of each example, read as in training.

    Each example is one row with the collator's attention mask ([`packed_attention_mask`]): its prefix
    (`prefix_length` tokens) attends bidirectionally, the rest causally; `position_ids` start at 0. Examples are
    sorted by length into batches of `batch_size` rows, right-padded.

    Args:
        model: an `AutoModelForCausalLM` that accepts 4-D additive attention masks.
        examples (`Sequence[ObjectiveExample]`): objective examples (see [`infilling_example`]).
        base_ids (`Sequence[int]`): token ids of `A`, `C`, `G`, `T`.
        batch_size (`int`, *optional*, defaults to `16`): rows per forward pass.
        disable_tqdm (`bool`, *optional*, defaults to `False`): hide the progress bar.
        desc (`str`): progress bar label.

    Returns:
        `list[np.ndarray]`: per example, shape `(len(example), 4)`, float64: row `i` is
        `log p(token i = base | tokens < i, and the whole prefix)`, normalised over the four bases (the model's
        softmax restricted to `A, C, G, T`); row 0 is NaN (nothing predicts the first token).
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}.")
    device, dtype = model_device(model), model_dtype(model)
    order = sorted(range(len(examples)), key=lambda i: len(examples[i]))
    batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    bases = torch.as_tensor(list(base_ids), device=device)
    results: list = [None] * len(examples)
    with inference_mode(model):
        for batch in progress_bar(batches, total=len(batches), desc=desc, disable=disable_tqdm):
            width = max(len(examples[i]) for i in batch)
            input_ids = torch.zeros(len(batch), width, dtype=torch.long)
            segment_ids = torch.full((len(batch), width), -1, dtype=torch.long)
            bidirectional = torch.zeros(len(batch), width, dtype=torch.bool)
            for row, index in enumerate(batch):
                example = examples[index]
                input_ids[row, : len(example)] = torch.from_numpy(np.asarray(example.input_ids, dtype=np.int64))
                segment_ids[row, : len(example)] = 0
                bidirectional[row, : example.prefix_length] = True
            mask = single_example_attention_mask(segment_ids, bidirectional, dtype, device)
            positions = torch.arange(width).expand(len(batch), width).to(device)
            logits = model(
                input_ids=input_ids.to(device), attention_mask=mask, position_ids=positions, use_cache=False
            ).logits
            log_probs = torch.log_softmax(logits[..., bases].double(), dim=-1).cpu().numpy()
            for row, index in enumerate(batch):
                n = len(examples[index])
                out = np.full((n, 4), np.nan)
                out[1:] = log_probs[row, : n - 1]
                results[index] = out
    return results
