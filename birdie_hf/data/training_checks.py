"""How training uses the windows, checked before the first step: held-out windows for the reward policy, the bases
each objective reads from a window under `max_length`, and the number of bases trained on.

[`BirdieTrainer`] calls [`check_training_data`] when it is built; the pre-training recipe calls the stricter
[`check_windows_fit`] too, so that the windows the model trained on are whole; [`source_tokens_seen`] turns the windows
the trainer counted into bases.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Sequence


if TYPE_CHECKING:
    from ..collator import DataCollatorForBirdie


logger = logging.getLogger(__name__)


class MissingHeldOutDataError(ValueError):
    """Raised when `policy="birdie"` has no held-out windows to measure its reward on."""


class WindowCroppingError(ValueError):
    """Raised when `max_length` is too small for an objective to read whole windows."""


def _is_empty(dataset) -> bool:
    """Whether a map-style dataset holds no example (a streaming dataset is never known to be empty up front)."""
    return hasattr(dataset, "__len__") and hasattr(dataset, "__getitem__") and len(dataset) == 0


def check_eval_dataset(eval_dataset, policy: str):
    """The held-out set a run of `policy` evaluates on, refusing a `"birdie"` run without one.

    The reward of `policy="birdie"` is the change of the validation losses, so it needs held-out windows. `"static"`
    and `"ntp"` only record validation losses; without held-out windows they train without evaluations.

    Args:
        eval_dataset (`datasets.Dataset`, *optional*): the held-out windows (e.g. `load_genome_windows(...)
            ["validation"]`), possibly empty or `None`.
        policy (`str`): `"birdie"`, `"static"` or `"ntp"`.

    Returns:
        `eval_dataset`, or `None` when it is empty (with a warning that no evaluation will run).

    Raises:
        [`MissingHeldOutDataError`]: `policy="birdie"` and `eval_dataset` is `None` or empty.
    """
    if eval_dataset is not None and not _is_empty(eval_dataset):
        return eval_dataset
    if policy == "birdie":
        what = "`eval_dataset` is empty" if eval_dataset is not None else "no `eval_dataset` was given"
        raise MissingHeldOutDataError(
            f"policy='birdie' needs held-out windows to measure its reward, but {what}. With load_genome_windows, "
            "use a smaller `window_length`, a larger `validation_fraction` (it must be above 0) or more data (the "
            "loader's warning gives the numbers); or train with policy='static' or 'ntp', which need no held-out "
            "windows."
        )
    if eval_dataset is not None:
        logger.warning(
            "The eval_dataset is empty: this policy=%r run trains without held-out evaluations (no validation losses "
            "are recorded).",
            policy,
        )
    return None


def window_bases_used(collator: DataCollatorForBirdie, window_length: int) -> dict[str, int]:
    """Bases each mixture entry reads from a window of `window_length` bases.

    The collator crops a window (at a random offset) to the longest input whose example fits its `example_length`
    (default `max_length`), so an entry reads `min(window_length, objective.source_length(example_length))` bases:
    e.g. copying writes `2 n + 2` tokens for `n` bases and reads 255 bases of a 256-base window when
    `max_length=512`.

    Returns:
        `dict[str, int]`: bases read per entry name, in mixture order.
    """
    return {
        name: min(window_length, objective.source_length(collator.example_budget))
        for name, objective in zip(collator.entry_names, collator.transforms)
    }


def check_windows_fit(
    collator: DataCollatorForBirdie, window_length: int, *, allow_cropping: bool = False
) -> dict[str, int]:
    """Check that every mixture entry reads whole windows of `window_length` bases within `max_length` tokens (a
    collator with `example_length` crops by design and passes).

    Otherwise the collator crops each window to what fits, silently: the model sees fewer bases than the windows
    hold, and counts of whole windows (`tokens_seen`) overstate what it saw.

    Args:
        collator ([`DataCollatorForBirdie`]): the collator (its objectives and `max_length`).
        window_length (`int`): bases per window of the training data.
        allow_cropping (`bool`, *optional*, defaults to `False`): only warn (with the same numbers) instead of
            raising.

    Returns:
        `dict[str, int]`: the bases each entry reads per window (see [`window_bases_used`]).

    Raises:
        [`WindowCroppingError`]: an entry would crop windows and `allow_cropping` is `False`. The message lists the
        bases each cropping entry reads, the smallest `max_length` that fits whole windows and the longest
        `window_length` that fits the current `max_length`.
    """
    used = window_bases_used(collator, window_length)
    cropped = {name: bases for name, bases in used.items() if bases < window_length}
    if not cropped or collator.example_length is not None:  # cropping to `example_length` is what was asked for
        return used
    needed = max(objective.output_length(window_length) for objective in collator.transforms)
    fits = min(objective.source_length(collator.example_budget) for objective in collator.transforms)
    shown = ", ".join(f"{name!r} {bases}" for name, bases in sorted(cropped.items(), key=lambda item: item[1])[:6])
    message = (
        f"max_length={collator.max_length} is too small for windows of window_length={window_length} bases: "
        f"{len(cropped)} of {len(used)} objective entries would crop every window to the bases that fit ({shown}"
        f"{', ...' if len(cropped) > 6 else ''} of {window_length}), so the model would see fewer bases than the "
        f"windows hold and than tokens_seen counts. Use max_length >= {needed} to read whole windows, or "
        f"window_length <= {fits}."
    )
    if not allow_cropping:
        raise WindowCroppingError(message)
    logger.warning("%s Windows are cropped at a random offset.", message)
    return used


def check_training_data(
    collator: DataCollatorForBirdie, policy: str, eval_dataset, first_windows: Sequence[dict[str, Any]] = ()
):
    """The checks [`BirdieTrainer`] runs when it is built; returns the held-out set to use.

    Refuses `policy="birdie"` without held-out windows and drops an empty held-out set for `"static"` and `"ntp"`
    (see [`check_eval_dataset`]); warns, with the numbers, when `max_length` makes the collator crop the windows
    (see [`check_windows_fit`]; the trainer warns rather than refuses, the pre-training recipe refuses).

    Args:
        collator ([`DataCollatorForBirdie`]): the trainer's collator.
        policy (`str`): the policy mode.
        eval_dataset: the held-out windows, possibly empty or `None`.
        first_windows (`Sequence[dict]`, *optional*): the first training examples (each with `input_ids`); their
            length is the window length checked.

    Returns:
        `eval_dataset`, or `None` in place of an empty one.
    """
    eval_dataset = check_eval_dataset(eval_dataset, policy)
    if first_windows:
        check_windows_fit(collator, len(first_windows[0]["input_ids"]), allow_cropping=True)
    return eval_dataset


def source_tokens_seen(accounting: dict, collator: DataCollatorForBirdie, window_length: int) -> int:
    """Bases of the training windows the model was trained on, all ranks together, from what the trainer measured.

    [`BirdieTrainer`] counts the windows each mixture entry trained on (`windows/<entry>` in its logs, summed by
    [`~birdie_hf.accounting.compute_accounting`]: whatever batches the data loader dealt to each rank, every pass and
    every resume included); each window of an entry gave it [`window_bases_used`] bases. Exact for windows of
    `window_length` bases (as [`load_genome_windows`] makes them), cropping to `example_length` included. Compare
    with `trainer.state.num_input_tokens_seen`, the tokens through the model (prompts, sentinels and targets
    included).

    Args:
        accounting (`dict`): `trainer.mixture_trajectory()["compute"]` (or [`compute_accounting`] of the logs).
        collator ([`DataCollatorForBirdie`]): the trainer's collator (its entries and example budget).
        window_length (`int`): bases per training window.

    Raises:
        `ValueError`: the accounting names an entry the collator does not have, or counts tokens without windows (a
        run resumed from a checkpoint of a version that did not count windows).
    """
    used = window_bases_used(collator, window_length)
    if not accounting.get("windows_complete", True):
        raise ValueError(
            "The training logs count tokens without windows for part of the run: it was resumed from a checkpoint "
            "of a birdie_hf version that did not count windows, so the bases it trained on are not known."
        )
    unknown = sorted(set(accounting["entries"]) - set(used))
    if unknown:
        raise ValueError(f"The accounting has entries {unknown} that the collator lacks (entries: {list(used)}).")
    return sum(int(entry.get("windows", 0)) * used[name] for name, entry in accounting["entries"].items())
