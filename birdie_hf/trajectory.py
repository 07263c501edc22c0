"""Reading a run's mixture trajectory (`mixture_trajectory.json`): the mixture in force at the end, and its table."""

from __future__ import annotations

from typing import Optional


#: Steps between a policy decision at step `s` and the first optimizer step trained on it (`s + 3`): applied at the end
#: of step `s + 1`, while the batch of step `s + 2` is already collated (no loader workers).
DECISION_LAG_STEPS = 3


def final_mixture(trajectory: dict, final_step: Optional[int] = None) -> Optional[dict[str, float]]:
    """The mixture in force at the end of training (during its last interval), from a run's trajectory.

    Every evaluation records the mixture trained on up to it (`mixture`) and, for the `birdie` policy, the decision
    for the next interval (`next_mixture`). [`BirdieRewardCallback`] applies a decision at the end of the step after
    the one that took it, and the data loader has collated one batch ahead by then, so a decision taken at step `s` is
    first trained on at step `s + 3` (later with `dataloader_num_workers > 0`). The last decision therefore counts
    only when the run went on to at least that step; a decision taken in the last steps was never trained on.

    Args:
        trajectory (`dict`): [`BirdieTrainer.mixture_trajectory`] output (`mixture_trajectory.json`).
        final_step (`int`, *optional*): the run's last optimizer step (`global_step`). When unknown, the mixture the
            last evaluation saw (certainly trained on) is returned.

    Returns:
        `dict[str, float]` per entry, or `None` when no evaluation was recorded.
    """
    evaluations = trajectory.get("evaluations", [])
    if not evaluations:
        return None
    last = evaluations[-1]
    if "next_mixture" in last and final_step is not None and final_step >= last["step"] + DECISION_LAG_STEPS:
        return dict(last["next_mixture"])
    return dict(last["mixture"])


def mixture_table(trajectory: dict, final_step: Optional[int] = None) -> str:
    """Markdown table: per entry, initial and final weight, mean weight over evaluations and last validation loss.

    The final weight is the one trained on at the end of the run (see [`final_mixture`]), as in the run's
    `summary.md`.
    """
    final = final_mixture(trajectory, final_step)
    if final is None:
        return "No policy evaluation was recorded."
    evaluations = trajectory["evaluations"]
    names = trajectory["entries"]
    rows = [
        "| objective entry | reward class | initial weight | final weight | mean weight | last val loss |",
        "|---|---|---|---|---|---|",
    ]
    last = evaluations[-1]
    for name, reward_class in zip(names, trajectory.get("reward_classes", names)):
        mean = sum(e["mixture"][name] for e in evaluations) / len(evaluations)
        rows.append(
            f"| `{name}` | {reward_class} | {evaluations[0]['mixture'][name]:.3f} | {final[name]:.3f} | "
            f"{mean:.3f} | {last['losses'][name]:.4f} |"
        )
    end = f"step {final_step}" if final_step is not None else "the last evaluation"
    rows += [
        "",
        f"Initial weight: at the first evaluation (step {evaluations[0]['step']}). Final weight: the mixture "
        f"trained on in the last interval, up to {end}. Mean weight: over the {len(evaluations)} "
        "evaluations.",
    ]
    return "\n".join(rows)
