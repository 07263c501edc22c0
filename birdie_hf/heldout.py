"""The run's fixed held-out sets: the windows the reward measures every entry on (collated once, the same examples
at every evaluation) and the windows the health readings use. Deterministic in the seed, so a resumed run rebuilds
the same sets."""

from __future__ import annotations

import copy
import itertools
import logging
from typing import TYPE_CHECKING, Any, Optional

import numpy as np
import torch


if TYPE_CHECKING:
    from .collator import DataCollatorForBirdie
    from .config import BirdieTrainingArguments


logger = logging.getLogger(__name__)


def validation_windows_per_entry(
    args: BirdieTrainingArguments, collator: DataCollatorForBirdie, eval_dataset, max_steps: Optional[int] = None
) -> int:
    """Held-out windows per mixture entry of the reward's fixed set (see `policy_validation_fraction`).

    `policy_validation_windows` when set; otherwise as many as keep the forward passes of all scheduled
    evaluations within `policy_validation_fraction` of the forward and backward passes of `max_steps` training
    steps (a backward pass costs about two forward passes), counted in tokens through the model: each entry's
    tokens per window are measured by collating the first held-out window, and a training window costs the
    initial mixture's average. Clamped to `[policy_validation_min_windows, policy_validation_max_windows]` and to
    the size of `eval_dataset`. Deterministic, so a resumed run rebuilds the same set.

    Args:
        args ([`BirdieTrainingArguments`]): the run's settings (`policy_validation_*`, batch geometry, schedule).
        collator ([`DataCollatorForBirdie`]): the run's collator (entries and initial mixture).
        eval_dataset: the held-out windows.
        max_steps (`int`, *optional*): the run's length; defaults to `args.max_steps`. Without one (`<= 0`), the
            minimum is used.
    """
    if args.policy_validation_windows:
        return min(args.policy_validation_windows, len(eval_dataset))
    max_steps = max_steps or args.max_steps
    windows = args.policy_validation_min_windows
    if max_steps and max_steps > 0:
        first = [eval_dataset[0]]
        tokens = np.array(
            [
                int((collator.collate_with_objectives(first, [entry])["objective_ids"] >= 0).sum())
                for entry in range(len(collator.entry_names))
            ],
            dtype=np.float64,
        )
        evaluations = max(1, len(args.policy_schedule(max_steps)[2]))
        training_tokens = (
            3.0
            * max_steps
            * args.per_device_train_batch_size
            * args.gradient_accumulation_steps
            * args.world_size
            * float(collator.mixture.weights @ tokens)
        )
        affordable = int(args.policy_validation_fraction * training_tokens / (evaluations * tokens.sum()))
        windows = min(max(affordable, args.policy_validation_min_windows), args.policy_validation_max_windows)
    return max(1, min(windows, len(eval_dataset)))


def build_validation_batches(
    collator: DataCollatorForBirdie, eval_dataset, count: int, seed: int, batch_size: int
) -> list[dict[str, torch.Tensor]]:
    """Fixed held-out batches: the same `count` windows ([`validation_windows_per_entry`]) for every entry, in a seeded
    order spread over `eval_dataset`, collated once (corruption included) in batches of
    `per_device_eval_batch_size` windows. Every evaluation measures these same examples, so the reward compares
    the model at two checkpoints on identical inputs (`benchmarks/reward_noise.py` measures how much that
    pairing removes)."""
    if len(eval_dataset) == 0:
        raise ValueError("The eval_dataset is empty: the reward policy needs held-out windows.")
    order = np.random.default_rng(seed).permutation(len(eval_dataset))
    size = max(1, batch_size)
    windows = [eval_dataset[int(i)] for i in order[:count]]
    batches = []
    for entry in range(len(collator.entry_names)):
        for start in range(0, count, size):
            chunk = windows[start : start + size]
            batches.append(collator.collate_with_objectives(chunk, [entry] * len(chunk)))
    logger.info(
        "Birdie held-out set: %d windows per entry, %d examples per evaluation.",
        count,
        count * len(collator.entry_names),
    )
    return batches


#: Held-out windows the health readings use (`birdie_hf.health`): a forward pass on them costs less than a training
#: step, and the gain of their next-base loss over the composition varies by about 0.002 nats between readings of a
#: model at the composition.
HEALTH_WINDOWS = 32


def health_windows(eval_dataset, seed: int, count: int = HEALTH_WINDOWS) -> torch.Tensor:
    """The fixed held-out windows of the health readings, shape `(count, length)`: the first `count` of a seeded order
    over `eval_dataset` (the order the reward's held-out set also starts from), cropped to the shortest of them."""
    order = np.random.default_rng(seed).permutation(len(eval_dataset))[:count]
    windows = [list(eval_dataset[int(i)]["input_ids"]) for i in order]
    length = min(len(window) for window in windows)
    return torch.tensor([window[:length] for window in windows], dtype=torch.long)


def first_examples(dataset, count: int) -> list[dict[str, Any]]:
    """The first `count` examples of `dataset` (fewer when it is shorter), map-style or streaming.

    A map-style dataset is indexed. A streaming one (`datasets.IterableDataset`, a torch `IterableDataset`, any
    iterable) is read from a deep copy when it can be copied: iterating a `datasets.IterableDataset` itself (or a
    `take()` of it) resets the position its `state_dict()` reports, which would make a training stream resume from the
    wrong place.
    """
    if hasattr(dataset, "__getitem__") and hasattr(dataset, "__len__"):
        return [dataset[i] for i in range(min(count, len(dataset)))]
    try:
        source = copy.deepcopy(dataset)
    except Exception:  # noqa: BLE001 - an object that cannot be copied (open handles): read it directly
        source = dataset
    return list(itertools.islice(iter(source), count))
