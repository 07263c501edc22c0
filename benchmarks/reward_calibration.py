"""Does the policy's reward register progress on DNA? The paper's reward against the standardised one, per interval.

    # the committed trajectories (mean losses only: the paper's reward) and a fresh run with the standardised reward
    accelerate launch recipes/pretrain.py --policy_reward standardised --output_dir outputs/reward-standardised
    for s in 43 44; do accelerate launch recipes/pretrain.py --policy_reward standardised --seed $s \\
        --output_dir outputs/reward-standardised-seed$s; done
    python benchmarks/reward_calibration.py \\
        --trajectories benchmarks/results/birdie_vs_ntp_birdie_trajectory.json \\
        benchmarks/results/policy_comparison_birdie_trajectory.json \\
        --runs outputs/reward-standardised outputs/reward-standardised-seed43 outputs/reward-standardised-seed44 \\
        --output benchmarks/results/reward_calibration

For every evaluation interval and the entries that predict unseen bases (next-token prediction, prefix LM, infilling)
it prints the change of the held-out loss, the paper's reward `clip(-100 e tanh(e S ratio^3))` computed from the mean
losses, and, for runs trained with `--policy_reward standardised`, the reward the policy received and the paired t
statistic `z` of the change over the same held-out examples (the measurement's own noise: `|z| > 2` is progress
beyond it). Baseline: the paper's reward on the same intervals. A reward that registers progress is clearly above 0
where `z > 2`; one that does not stays near 0. The "min_change sweep" re-reads the standardised runs' changes with
other `--policy_reward_min_change` values (the `dna` preset's 0.03 comes from it).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from birdie_hf.policy import objective_rewards


REPO = Path(__file__).resolve().parents[1]


WATCHED = ("next_token_prediction", "prefix_lm", "infilling")


def trajectories_of(path: Path) -> dict[str, dict]:
    """`{label: trajectory}` from a `mixture_trajectory.json`, a run folder holding one, or a JSON of several."""
    label = path.name
    if path.is_dir():
        path = path / "mixture_trajectory.json"
    else:
        label = path.stem
    data = json.loads(path.read_text())
    if "evaluations" in data:
        return {label: data}
    return {f"{path.stem} seed {seed}": trajectory for seed, trajectory in data.items()}


def interval_rows(label: str, trajectory: dict) -> list[dict]:
    evaluations = trajectory["evaluations"]
    classes = dict(zip(trajectory["entries"], trajectory["reward_classes"]))
    watched = [name for name in trajectory["entries"] if classes[name] in WATCHED]
    rows = []
    for before, after in zip(evaluations, evaluations[1:]):
        old = np.array([before["losses"][n] for n in watched])
        new = np.array([after["losses"][n] for n in watched])
        paper = objective_rewards(old, new)
        for i, name in enumerate(watched):
            rows.append(
                {
                    "run": label,
                    "interval": f"{before['step']}-{after['step']}",
                    "end": after["step"],
                    "entry": name,
                    "objective": classes[name],
                    "change": float(old[i] - new[i]),
                    "paper": float(paper[i]),
                    "received": (after.get("rewards") or {}).get(name),
                    "z": (after.get("reward_z") or {}).get(name),
                }
            )
    return rows


def summarise(rows: list[dict]) -> list[str]:
    lines = [
        "| run | objective | intervals | mean change (nats) | paper reward: median, share with abs > 0.05 | "
        "standardised reward: median abs | share with abs(z) > 2 (z > 2) |",
        "|---|---|---|---|---|---|---|",
    ]
    groups = {}
    for row in rows:
        groups.setdefault((row["run"], row["objective"]), []).append(row)
    for (run, objective), group in groups.items():
        paper = np.array([r["paper"] for r in group])
        received = [r["received"] for r in group if r["z"] is not None]
        zs = np.array([r["z"] for r in group if r["z"] is not None], dtype=float)
        lines.append(
            f"| {run} | {objective} | {len(group)} | {np.mean([r['change'] for r in group]):+.4f} | "
            f"{np.median(paper):+.4f}, {np.mean(np.abs(paper) > 0.05):.0%} | "
            + (
                f"{np.median(np.abs(received)):.3f} | {np.mean(np.abs(zs) > 2):.0%} ({np.mean(zs > 2):.0%}) |"
                if received
                else "n/a | n/a |"
            )
        )
    return lines


def min_change_sweep(rows: list[dict], grid: list[float], scale: float = 2.0) -> list[str]:
    """How the standardised reward reads the measured changes for each `min_change` in `grid` (`scale` fixed).

    Each row's standard error is recovered from its change and `z` (`se = |change| / |z|`), and the reward
    `tanh(change / max(scale * se, min_change))` is recomputed: a calibrated `min_change` leaves a typical change
    near `tanh(1)` instead of saturating every entry at +-1.
    """
    measured = [r for r in rows if r["z"] is not None and r["z"] != 0]
    if not measured:
        return []
    change = np.array([r["change"] for r in measured])
    se = np.abs(change) / np.abs(np.array([r["z"] for r in measured], dtype=float))
    objectives = np.array([r["objective"] for r in measured])
    names = [o for o in WATCHED if o in set(objectives)]
    lines = [
        f"## min_change sweep (standardised reward, scale {scale}; {len(measured)} late intervals x entries)",
        "",
        "Median absolute change per objective: "
        + ", ".join(f"{o} {np.median(np.abs(change[objectives == o])):.4f} nats" for o in names)
        + f"; all base-predicting entries {np.median(np.abs(change)):.4f}.",
        "",
        "| min_change (nats) | "
        + " | ".join(f"{o}: median abs reward, share saturated (> 0.95)" for o in names)
        + " |",
        "|---|" + "---|" * len(names),
    ]
    for min_change in grid:
        reward = np.tanh(change / np.maximum(scale * se, min_change))
        cells = [
            f"{np.median(np.abs(reward[objectives == o])):.3f}, {np.mean(np.abs(reward[objectives == o]) > 0.95):.0%}"
            for o in names
        ]
        lines.append(f"| {min_change:g} | " + " | ".join(cells) + " |")
    return lines


def main(argv=None) -> str:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trajectories", nargs="*", default=[], help="mixture_trajectory JSON files")
    parser.add_argument("--runs", nargs="*", default=[], help="run folders (with mixture_trajectory.json)")
    parser.add_argument("--after_step", type=int, default=50, help="intervals ending after this step (late training)")
    parser.add_argument("--output", default=None, help="write <output>.md")
    parser.add_argument(
        "--min_change_grid",
        nargs="*",
        type=float,
        default=[1e-3, 3e-3, 1e-2, 2e-2, 3e-2, 5e-2],
        help="min_change values to re-read the standardised runs' changes with",
    )
    args = parser.parse_args(argv)
    rows = []
    for source in list(args.trajectories) + list(args.runs):
        for label, trajectory in trajectories_of(Path(source)).items():
            rows += interval_rows(label, trajectory)
    late = [r for r in rows if r["end"] > args.after_step]
    lines = [
        f"## Reward per interval ending after step {args.after_step}, entries that predict unseen bases",
        "",
        "Paper reward: `clip(-100 e tanh(e S ratio^3))` of the mean held-out losses (the baseline). Standardised: "
        "what a `--policy_reward standardised` run received, with the paired t statistic `z` of each change over the "
        "same held-out examples (`z > 2`: progress beyond the measurement's noise).",
        "",
        *summarise(late),
        "",
        "| run | interval | entry | change (nats) | paper reward | standardised reward | z |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in late:
        received = "n/a" if r["received"] is None or r["z"] is None else f"{r['received']:+.3f}"
        z = "n/a" if r["z"] is None else f"{r['z']:+.2f}"
        lines.append(
            f"| {r['run']} | {r['interval']} | {r['entry']} | {r['change']:+.4f} | {r['paper']:+.5f} | {received} | "
            f"{z} |"
        )
    sweep = min_change_sweep(late, args.min_change_grid)
    if sweep:
        lines += ["", *sweep]
    report = "\n".join(lines)
    print(report)
    if args.output:
        Path(f"{args.output}.md").write_text(report + "\n")
        print(f"wrote {args.output}.md")
    return report


if __name__ == "__main__":
    main()
