"""Plots of what the curriculum did (matplotlib, drawn off-screen with the Agg backend).

Every function takes the `mixture_trajectory.json` content of a run (see [`BirdieTrainer.mixture_trajectory`]) and
writes a PNG.
"""

from __future__ import annotations

import os
from typing import Optional


def import_pyplot():
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as error:
        raise ImportError(
            "birdie_hf.plotting needs matplotlib, a dependency of birdie_hf: pip install matplotlib"
        ) from error
    return plt


#: Line styles that tell the configurations of one objective type apart (colour tells the types apart).
LINE_STYLES = ("-", "--", ":", "-.", (0, (5, 1, 1, 1)), (0, (1, 3)))
MARKERS = ("o", "s", "^", "D", "v", "P")


def entry_styles(trajectory: dict) -> dict[str, dict]:
    """Colour by objective type, line style and marker by configuration within a type.

    A Birdie mixture has ~13 entries but only ~7 objective types; a 10-colour cycle makes pairs indistinguishable.
    Types come from the trajectory's `reward_classes` (one per entry, e.g. `infilling` for `infilling_15pct_span3`).

    Returns `{entry: {"color", "linestyle", "marker", "shade"}}`; `shade` is the colour lightened per configuration,
    for filled plots where line styles do not show.
    """
    from matplotlib import colors as mcolors
    from matplotlib import pyplot as plt

    names = list(trajectory["entries"])
    classes = list(trajectory.get("reward_classes") or names)
    if len(classes) != len(names):
        classes = names
    palette = plt.get_cmap("tab10").colors
    type_order = list(dict.fromkeys(classes))
    seen: dict[str, int] = {}
    styles = {}
    for name, kind in zip(names, classes):
        index = seen.get(kind, 0)
        seen[kind] = index + 1
        base = palette[type_order.index(kind) % len(palette)]
        if len(type_order) > len(palette):  # more types than colours: repeat colours with dark/light halves
            base = tuple(c * 0.6 for c in base) if type_order.index(kind) // len(palette) % 2 else base
        lighten = min(0.6, 0.22 * index)
        shade = tuple(c + (1.0 - c) * lighten for c in mcolors.to_rgb(base))
        styles[name] = {
            "color": base,
            "linestyle": LINE_STYLES[index % len(LINE_STYLES)],
            "marker": MARKERS[index % len(MARKERS)],
            "shade": shade,
        }
    return styles


def _check(trajectory: dict) -> list[dict]:
    evaluations = trajectory.get("evaluations") or []
    if not evaluations:
        raise ValueError("The trajectory has no evaluations to plot.")
    return evaluations


def plot_mixture(trajectory: dict, path: str, title: Optional[str] = None) -> str:
    """Stacked area plot of the sampling mixture over training steps (piecewise constant between decisions)."""
    plt = import_pyplot()
    evaluations = _check(trajectory)
    names = trajectory["entries"]
    # The first evaluation records the initial mixture; each evaluation's decision holds from its step onwards.
    steps = [0] + [e["step"] for e in evaluations]
    points = [evaluations[0]["mixture"]] + [e.get("next_mixture", e["mixture"]) for e in evaluations]
    series = [[point[n] for point in points] for n in names]
    figure, axis = plt.subplots(figsize=(10, 5))
    styles = entry_styles(trajectory)
    axis.stackplot(
        steps,
        series,
        labels=names,
        colors=[styles[n]["shade"] for n in names],
        step="post",
        edgecolor="white",
        linewidth=0.5,
    )
    axis.set(
        xlabel="training step",
        ylabel="sampling probability",
        ylim=(0, 1),
        xlim=(steps[0], steps[-1]),
        title=title or f"Objective mixture ({trajectory.get('policy', 'birdie')} policy)",
    )
    axis.legend(loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=8)
    return save_figure(figure, path)


def late_loss_range(trajectory: dict, entry: Optional[str] = None) -> tuple[float, Optional[tuple[float, float]]]:
    """`(first step of the second half, (low, high))`: the y-range of the losses from the second half of the run on
    (of `entry`, or of every entry), with a 5% margin; the range is None when no finite loss falls there."""
    evaluations = _check(trajectory)
    half = evaluations[-1]["step"] / 2
    names = [entry] if entry is not None else trajectory["entries"]
    values = [
        e["losses"][name]
        for e in evaluations
        if e["step"] >= half
        for name in names
        if e["losses"].get(name) is not None and e["losses"][name] == e["losses"][name]
    ]
    if not values:
        return half, None
    low, high = min(values), max(values)
    margin = max(0.05 * (high - low), 1e-3)
    return half, (low - margin, high + margin)


def plot_losses(trajectory: dict, path: str, title: Optional[str] = None) -> str:
    """Validation loss of every objective entry at every evaluation.

    The first panel shows the whole run, every entry, on a log scale. One small panel per entry then shows the second
    half of the run on that entry's own scale, with its change over that half in nats: the first losses (~5 nats)
    and the solved copy tasks (~0.1) would otherwise set one shared scale on which the hundredths of a nat that tell
    runs apart cannot be seen."""
    plt = import_pyplot()
    evaluations = _check(trajectory)
    steps = [e["step"] for e in evaluations]
    entries = list(trajectory["entries"])
    columns = 4 if len(entries) > 3 else len(entries) + 1
    rows = -(-(len(entries) + 1) // columns)
    figure, axes = plt.subplots(rows, columns, figsize=(4 * columns, 3.2 * rows), squeeze=False)
    styles = entry_styles(trajectory)
    overview = axes.flat[0]
    for index, name in enumerate(entries):
        style = styles[name]
        values = [e["losses"][name] for e in evaluations]
        line = dict(color=style["color"], linestyle=style["linestyle"], marker=style["marker"], markersize=3)
        overview.plot(steps, values, label=name, **line)
        axis = axes.flat[index + 1]
        half, zoom = late_loss_range(trajectory, name)
        late = [(s, v) for s, v in zip(steps, values) if s >= half]
        axis.plot([s for s, _ in late], [v for _, v in late], **line)
        if zoom is not None:
            axis.set_ylim(*zoom)
        change = late[-1][1] - late[0][1] if len(late) > 1 else float("nan")
        axis.set_title(f"{name}\n{change:+.3f} nats from step {late[0][0]}" if late else name, fontsize=8)
        axis.tick_params(labelsize=7)
    spare = list(axes.flat[len(entries) + 1 :])
    for axis in spare:
        axis.axis("off")
    overview.set_yscale("log")
    overview.set_title("whole run, every entry (log scale)", fontsize=8)
    overview.set_xlabel("training step", fontsize=8)
    overview.set_ylabel("validation loss (nats/token)", fontsize=8)
    overview.tick_params(labelsize=7)
    handles, labels = overview.get_legend_handles_labels()
    if spare:  # the overview's legend in the first empty cell
        spare[0].legend(handles, labels, loc="center", fontsize=7, frameon=False)
        bottom = 0.0
    else:
        figure.legend(handles, labels, loc="lower center", ncol=min(4, len(entries)), fontsize=7)
        bottom = 0.04 * (-(-len(entries) // 4)) / rows
    figure.suptitle(title or "Validation loss per objective (small panels: second half of the run, own scale)")
    figure.tight_layout(rect=(0, bottom, 1, 1))
    return save_figure(figure, path, layout=False)


def plot_rewards(trajectory: dict, path: str, title: Optional[str] = None) -> str:
    """Reward of every entry at every evaluation after the first (Birdie policy runs only)."""
    plt = import_pyplot()
    evaluations = [e for e in _check(trajectory) if e.get("rewards")]
    if not evaluations:
        raise ValueError("The trajectory has no rewards (static and ntp runs have none).")
    steps = [e["step"] for e in evaluations]
    figure, axis = plt.subplots(figsize=(10, 5))
    styles = entry_styles(trajectory)
    for name in trajectory["entries"]:
        style = styles[name]
        axis.plot(
            steps,
            [e["rewards"][name] for e in evaluations],
            color=style["color"],
            linestyle=style["linestyle"],
            marker=style["marker"],
            markersize=3,
            label=name,
        )
    axis.axhline(0.0, color="grey", linewidth=0.8)
    axis.set(xlabel="training step", ylabel="reward", ylim=(-1.05, 1.05), title=title or "Reward per objective")
    axis.legend(loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=8)
    return save_figure(figure, path)


def plot_run_comparison(trajectories: dict[str, dict], path: str, objective: str = "next_token_prediction") -> str:
    """One objective's validation loss across several runs (e.g. birdie vs static vs ntp)."""
    plt = import_pyplot()
    figure, axis = plt.subplots(figsize=(8, 5))
    for run, trajectory in trajectories.items():
        evaluations = [e for e in _check(trajectory) if objective in e["losses"]]
        axis.plot(
            [e["step"] for e in evaluations],
            [e["losses"][objective] for e in evaluations],
            marker="o",
            markersize=3,
            label=run,
        )
    axis.set(xlabel="training step", ylabel=f"validation loss: {objective}", title=f"{objective} across runs")
    axis.legend()
    return save_figure(figure, path)


def save_figure(figure, path: str, layout: bool = True) -> str:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    if layout:  # False when the caller laid the figure out itself
        figure.tight_layout()
    figure.savefig(path, dpi=100)
    import matplotlib.pyplot as plt

    plt.close(figure)
    return path
