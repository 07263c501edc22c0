"""Results of the fine-tuning suite (`recipes/evaluate_suite.py`): the finished runs' test metrics summarised over
fine-tuning seeds, per checkpoint and task, and as a markdown table."""

from __future__ import annotations

import statistics


#: The test metrics every fine-tuning run records.
METRICS = ("mcc", "f1", "accuracy")


def summarise(runs: list[dict], by_mode: bool = False) -> dict:
    """`{checkpoint: {task: {metric: {"mean", "std", "n"}}, "mean_over_tasks": {...}}}`; with `by_mode` the keys
    are `"<checkpoint> (<mode>)"`."""
    table: dict = {}
    for run in runs:
        key = f"{run['name']} ({run.get('mode', 'auto')})" if by_mode else run["name"]
        table.setdefault(key, {}).setdefault(run["task_name"], []).append(run["test"])
    summary = {}
    for name, tasks in table.items():
        summary[name] = {}
        for task, results in tasks.items():
            summary[name][task] = {
                metric: {
                    "mean": statistics.fmean(r[metric] for r in results),
                    "std": statistics.stdev(r[metric] for r in results) if len(results) > 1 else 0.0,
                    "n": len(results),
                }
                for metric in METRICS
            }
        summary[name]["mean_over_tasks"] = {
            metric: statistics.fmean(v[metric]["mean"] for k, v in summary[name].items()) for metric in METRICS
        }
    return summary


def markdown(summary: dict) -> str:
    """[`summarise`]'s test MCC as a markdown table: mean ± std (n) per checkpoint and task, and the mean over tasks."""
    tasks = sorted({task for per in summary.values() for task in per if task != "mean_over_tasks"})
    lines = [
        "Test MCC, mean ± std over seeds (F1 and accuracy in results.json).",
        "",
        "| checkpoint | " + " | ".join(tasks) + " | mean MCC |",
        "|---|" + "---|" * (len(tasks) + 1),
    ]
    for name, per in summary.items():
        cells = [
            f"{per[t]['mcc']['mean']:.3f} ± {per[t]['mcc']['std']:.3f} (n={per[t]['mcc']['n']})" if t in per else "–"
            for t in tasks
        ]
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {per['mean_over_tasks']['mcc']:.3f} |")
    return "\n".join(lines)
