"""The end-of-run record of a pre-training run, written into its output folder by [`write_run_record`]: the model
and tokenizer, the trajectory, `summary.md` (final losses and weights, compute per objective, the held-out next-base
loss beside Markov chains), `train_results.json`, the model card and the plots."""

from __future__ import annotations

import itertools
import json
import logging
import os
from typing import TYPE_CHECKING, Optional

from datasets import IterableDataset

from .accounting import accounting_markdown, plot_compute
from .data import source_tokens_seen
from .evaluation.baselines import markov_baseline_table, next_base_nll, windows_to_text
from .health import health_sentence, health_summary
from .hub import HELD_OUT_NAME
from .plotting import plot_losses, plot_mixture, plot_rewards
from .tokenizer import save_tokenizer
from .trajectory import final_mixture


if TYPE_CHECKING:
    from .trainer import BirdieTrainer


logger = logging.getLogger(__name__)

#: With a streamed training set, the Markov baselines of the summary are fit on this many windows from its start.
STREAMED_MARKOV_WINDOWS = 20_000


def summary_table(
    trajectory: dict,
    entry_names: list[str],
    tokens_seen: Optional[int],
    final_step: int,
    live_mixture: dict[str, float],
) -> str:
    """Last validation loss and final weight per entry. The final weight is the mixture trained on at the end
    (`birdie_hf.trajectory.final_mixture`, as on the model card); `live_mixture` stands in when nothing was evaluated, and
    the loss column is left out then (with a line saying why) rather than filled with NaN. `tokens_seen`: the source
    bases of the windows trained on, as the trainer counted them (`birdie_hf.data.source_tokens_seen`)."""
    evaluations = trajectory["evaluations"]
    final = final_mixture(trajectory, final_step) or live_mixture
    seen = "n/a (not counted for the whole run)" if tokens_seen is None else f"{tokens_seen:,}"
    health = trajectory.get("health") or health_summary(trajectory["evaluations"])
    lines = [f"tokens seen (source bases, all ranks): {seen}", f"training health: {health_sentence(health)}", ""]
    if not evaluations:
        lines += [
            "no held-out evaluation was run (no validation windows): validation losses were not measured; the "
            "weights are the mixture trained on.",
            "",
            f"| {'objective':<36} | {'final weight':>12} |",
            f"|{'-' * 38}|{'-' * 14}|",
        ]
        lines += [f"| {name:<36} | {final[name]:>12.4f} |" for name in entry_names]
        return "\n".join(lines)
    last = evaluations[-1]
    lines += [
        f"| {'objective':<36} | {'final val loss':>14} | {'final weight':>12} |",
        f"|{'-' * 38}|{'-' * 16}|{'-' * 14}|",
    ]
    for name in entry_names:
        lines.append(f"| {name:<36} | {last['losses'][name]:>14.4f} | {final[name]:>12.4f} |")
    return "\n".join(lines)


def next_base_table(model, data, tokenizer, orders=(2, 3, 4, 5, 6)) -> str:
    """Held-out next-base loss of the model next to order-k Markov models fit on the same training windows."""
    if not hasattr(data["validation"], "__len__") or len(data["validation"]) == 0:
        return "(no held-out windows: next-base comparison skipped)"
    heldout = data["validation"]["input_ids"]
    train = data["train"]
    if isinstance(train, IterableDataset):  # streamed: the chains are fit on the stream's first windows
        train_ids = (row["input_ids"] for row in itertools.islice(train, STREAMED_MARKOV_WINDOWS))
    else:
        train_ids = train["input_ids"]
    rows = markov_baseline_table(
        windows_to_text(train_ids, tokenizer),
        list(windows_to_text(heldout, tokenizer)),
        orders=orders,
    )
    lines = [
        f"held-out next-base loss over {len(heldout)} windows (nats per base; lower is better):",
        "",
        f"| {'model':<36} | {'nats':>8} |",
        f"|{'-' * 38}|{'-' * 10}|",
        f"| {'this model (read left to right)':<36} | {next_base_nll(model, heldout, tokenizer):>8.4f} |",
    ]
    for row in rows:
        name = "base composition (order 0)" if row["order"] == 0 else f"order-{row['order']} Markov"
        lines.append(f"| {name:<36} | {row['nll']:>8.4f} |")
    return "\n".join(lines)


def finished_outputs(output_dir: str, global_step: int) -> bool:
    """Whether `output_dir` holds the final outputs (train_results.json, model, card) of a run ended at `global_step`."""
    try:
        with open(os.path.join(output_dir, "train_results.json"), encoding="utf-8") as handle:
            recorded = json.load(handle).get("global_step")
    except (OSError, ValueError):
        return False
    present = all(os.path.isfile(os.path.join(output_dir, name)) for name in ("config.json", "README.md"))
    return recorded == global_step and present


def save_plots(trajectory: dict, directory: str) -> None:
    """Mixture, loss and reward plots of the run (matplotlib is a dependency of birdie_hf)."""
    if not trajectory["evaluations"]:
        return
    plot_mixture(trajectory, os.path.join(directory, "mixture.png"))
    plot_losses(trajectory, os.path.join(directory, "validation_losses.png"))
    if any(e.get("rewards") for e in trajectory["evaluations"]):
        plot_rewards(trajectory, os.path.join(directory, "rewards.png"))
    print(f"Saved plots to {directory}")


def write_run_record(
    trainer: BirdieTrainer,
    global_step: int,
    metrics: dict,
    data,
    window_length: int,
    training_data: Optional[str] = None,
) -> Optional[int]:
    """Write the end-of-run record of a finished pre-training run into `trainer.args.output_dir`: the model and
    tokenizer, the trajectory (without the policy state, which checkpoints keep), `summary.md` (printed too),
    [`HELD_OUT_NAME`], `train_results.json`, the model card and the plots. Call it on every process after
    `trainer.train()`; only the main process writes (saving the model is a collective).

    Args:
        trainer ([`BirdieTrainer`]): the trainer that ran.
        global_step, metrics: the `TrainOutput`'s.
        data: the run's `{"train", "validation"}` windows (the held-out next-base table reads them).
        window_length (`int`): bases per training window (turns the windows counted into source bases).
        training_data (`str`, *optional*): the training data in words, for the card.

    Returns:
        The source bases trained on (`birdie_hf.data.source_tokens_seen`), or `None` when the run did not count them.
    """
    output_dir = trainer.args.output_dir
    trainer.save_model(output_dir)
    collator = trainer.data_collator
    trajectory = trainer.mixture_trajectory()  # the run's record: evaluations and compute accounting
    try:
        tokens = source_tokens_seen(trajectory["compute"], collator, window_length)
    except ValueError as error:  # a run that did not count windows for all of its steps
        logger.warning("%s The summary and card say 'n/a'.", error)
        tokens = None
    if not trainer.is_world_process_zero():
        return tokens
    save_tokenizer(trainer.processing_class, output_dir)
    trainer.save_birdie_state(output_dir, policy_state=False)  # checkpoints keep the policy state
    table = summary_table(trajectory, collator.entry_names, tokens, global_step, collator.mixture.as_dict())
    held_out = next_base_table(trainer.model, data, trainer.processing_class)
    table += "\n\n" + accounting_markdown(trajectory["compute"], collator.reward_classes) + "\n\n" + held_out
    _write_text(os.path.join(output_dir, HELD_OUT_NAME), held_out)
    _write_text(os.path.join(output_dir, "summary.md"), table)
    results = {
        **metrics,
        "global_step": global_step,
        "tokens_seen": tokens,
        "model_tokens": trainer.state.num_input_tokens_seen,
        "policy": trainer.args.policy,
    }
    _write_text(os.path.join(output_dir, "train_results.json"), json.dumps(results, indent=2))
    print("\n" + table)
    print(f"\nSaved model, tokenizer and mixture trajectory to {output_dir}")
    # The card comes before the plots: it is the run's record, the plots are a view of it.
    trainer.create_model_card(training_data=training_data, tokens_seen=tokens)
    print(f"Wrote the model card to {os.path.join(output_dir, 'README.md')}")
    save_plots(trajectory, os.path.join(output_dir, "plots"))
    plot_compute(
        trainer.state.log_history,
        collator.entry_names,
        collator.reward_classes,
        os.path.join(output_dir, "plots", "compute.png"),
    )
    return tokens


def _write_text(path: str, text: str) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(text.rstrip("\n") + "\n")
