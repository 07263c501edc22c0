"""Compute accounting: what each objective of the mixture costs and what it asks the model to predict.

The mixture is a distribution over *examples*, but objectives make examples of different lengths (copying writes
`2 n + 2` tokens for `n` bases, next-token prediction `n + 1`) and ask for different things (copying's targets are
visible in its input, next-token prediction's never are). So the sampling weights say little about where compute
goes. [`BirdieTrainer`] logs, per entry and logging interval, the tokens through the model (`tokens/<entry>`:
context and targets, padding excluded), the loss-bearing targets that are bases (`targets/<entry>`: A, C, G or T;
not sentinels, prompts or end tokens) and the windows trained on (`windows/<entry>`: one packed example each); the
functions here add them up from `trainer.state.log_history` (which a resumed run keeps) and estimate the targets that
predict a base absent from the input (*unseen-base targets*: base targets times the objective's
`unseen_target_fraction`).
"""

from __future__ import annotations

import os
from collections import defaultdict
from typing import Optional, Sequence

from .plotting import import_pyplot, save_figure


def training_flops_per_token(model, row_length: int) -> float:
    """Training FLOPs per token of a decoder (the usual count): 6 x the parameters that multiply (the input
    embedding is a lookup; a tied output head multiplies) + 12 x layers x hidden x `row_length` (attention scores and
    their backward, every position of the row attended, as a dense or flex mask computes them)."""
    config = model.config
    embedding = model.get_input_embeddings().weight.numel()
    matmul = sum(p.numel() for p in model.parameters()) - embedding
    if config.tie_word_embeddings:
        matmul += embedding
    return 6 * matmul + 12 * config.num_hidden_layers * config.hidden_size * row_length


def matmul_peak_flops(size: int, dtype, device: str, repeats: int = 5) -> float:
    """Best of `repeats` FLOP/s of a `size` x `size` matrix product in `dtype` on `device`: the peak an MFU figure is
    measured against, taken on the machine of the same run."""
    import time

    import torch

    a = torch.randn(size, size, device=device).to(dtype)
    b = torch.randn(size, size, device=device).to(dtype)
    torch.mm(a, b)  # warm-up
    best = float("inf")
    for _ in range(repeats):
        if device == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        torch.mm(a, b)
        if device == "cuda":
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - start)
    return 2 * size**3 / best


def compute_accounting(
    log_history: Sequence[dict], entry_names: Sequence[str], unseen_fractions: Sequence[Optional[float]]
) -> dict:
    """Totals and shares per entry from the training logs.

    Args:
        log_history: `trainer.state.log_history` (logs with `tokens/<entry>`, `targets/<entry>` (the base targets)
            and `windows/<entry>` keys).
        entry_names: the mixture's entries.
        unseen_fractions: per entry, the objective's `unseen_target_fraction` (`None`: unknown, left out of the
            unseen-base totals).

    Returns:
        `{"entries": {name: {"model_tokens", "targets", "windows", "unseen_base_targets", "model_token_share",
        "unseen_base_target_share"}}, "model_tokens", "windows", "windows_complete", "unseen_base_targets"}` (shares
        of the run's totals; the unseen values are `None` for entries of unknown fraction; `windows_complete` is
        `False` when some logs count tokens without windows, as a run resumed from an older version's checkpoint).
    """
    if len(unseen_fractions) != len(entry_names):
        raise ValueError(f"Got {len(unseen_fractions)} unseen-target fractions for {len(entry_names)} entries.")
    tokens, targets, windows = defaultdict(int), defaultdict(int), defaultdict(int)
    windows_complete = True  # every log that counts tokens counts windows too (older versions' logs do not)
    for logs in log_history:
        counts_tokens = any(key.startswith("tokens/") for key in logs)
        if counts_tokens and not any(key.startswith("windows/") for key in logs):
            windows_complete = False
        for name in entry_names:
            tokens[name] += int(logs.get(f"tokens/{name}", 0))
            targets[name] += int(logs.get(f"targets/{name}", 0))
            windows[name] += int(logs.get(f"windows/{name}", 0))
    unseen = {
        name: None if fraction is None else targets[name] * float(fraction)
        for name, fraction in zip(entry_names, unseen_fractions)
    }
    total_tokens = sum(tokens.values())
    total_unseen = sum(value for value in unseen.values() if value is not None)
    entries = {
        name: {
            "model_tokens": tokens[name],
            "targets": targets[name],
            "windows": windows[name],
            "unseen_base_targets": unseen[name],
            "model_token_share": tokens[name] / total_tokens if total_tokens else 0.0,
            "unseen_base_target_share": None
            if unseen[name] is None
            else (unseen[name] / total_unseen if total_unseen else 0.0),
        }
        for name in entry_names
    }
    return {
        "entries": entries,
        "model_tokens": total_tokens,
        "windows": sum(windows.values()),
        "windows_complete": windows_complete,
        "unseen_base_targets": total_unseen,
    }


def accounting_by_objective(accounting: dict, reward_classes: Sequence[str]) -> dict[str, dict]:
    """[`compute_accounting`]'s entries summed per objective (reward class), in first-seen order."""
    names = list(accounting["entries"])
    grouped: dict[str, dict] = {}
    for name, objective in zip(names, reward_classes):
        entry = accounting["entries"][name]
        into = grouped.setdefault(objective, {"model_token_share": 0.0, "unseen_base_target_share": 0.0})
        into["model_token_share"] += entry["model_token_share"]
        if entry["unseen_base_target_share"] is None or into["unseen_base_target_share"] is None:
            into["unseen_base_target_share"] = None
        else:
            into["unseen_base_target_share"] += entry["unseen_base_target_share"]
    return grouped


def accounting_markdown(accounting: dict, reward_classes: Sequence[str]) -> str:
    """A table per objective: share of the tokens through the model and of the unseen-base targets."""
    lines = [
        f"compute by objective ({accounting['model_tokens']:,} tokens through the model, "
        f"about {accounting['unseen_base_targets']:,.0f} targets predicting a base absent from the input):",
        "",
        "| objective | share of model tokens | share of unseen-base targets |",
        "|---|---|---|",
    ]
    for objective, shares in accounting_by_objective(accounting, reward_classes).items():
        unseen = shares["unseen_base_target_share"]
        lines.append(
            f"| {objective} | {shares['model_token_share']:.1%} | {'n/a' if unseen is None else f'{unseen:.1%}'} |"
        )
    return "\n".join(lines)


def plot_compute(
    log_history: Sequence[dict], entry_names: Sequence[str], reward_classes: Sequence[str], path: str
) -> Optional[str]:
    """Stacked areas of each objective's share of the tokens through the model per logging interval, over training
    steps (the mixture's weights are over examples; this is over compute). Returns the path, or `None` when the logs
    hold no token counts."""
    objectives = list(dict.fromkeys(reward_classes))
    steps, series = [], {objective: [] for objective in objectives}
    for logs in log_history:
        counts = {name: logs.get(f"tokens/{name}") for name in entry_names}
        if not any(counts.values()):
            continue
        total = sum(v or 0 for v in counts.values())
        steps.append(logs.get("step", len(steps)))
        for objective in objectives:
            used = sum(counts[n] or 0 for n, o in zip(entry_names, reward_classes) if o == objective)
            series[objective].append(used / total)
    if not steps:
        return None
    plt = import_pyplot()
    figure, axis = plt.subplots(figsize=(10, 5))
    axis.stackplot(steps, [series[o] for o in objectives], labels=objectives, step="post", edgecolor="white")
    axis.set(
        xlabel="training step",
        ylabel="share of tokens through the model",
        ylim=(0, 1),
        xlim=(steps[0], steps[-1]) if len(steps) > 1 else None,
        title="Compute by objective (per logging interval)",
    )
    axis.legend(loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=8)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    return save_figure(figure, path)
