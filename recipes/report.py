"""Turn one or more pre-training output dirs into plots and a one-page report (markdown and HTML).

    python recipes/report.py outputs/birdie-dna-tiny
    python recipes/report.py outputs/birdie outputs/static outputs/ntp --output_dir outputs/report

For each run: the mixture over training (stacked area), validation loss per objective, rewards (Birdie runs),
and a table of final losses and weights; across runs: next-token validation loss side by side.
"""

from __future__ import annotations

import argparse
import html
import os

from birdie_hf.cli import TRACEBACK_FLAG, TRACEBACK_HELP, RecipeError, run_recipe
from birdie_hf.plotting import plot_losses, plot_mixture, plot_rewards, plot_run_comparison
from birdie_hf.runs.checkpoints import TRAJECTORY_NAME
from birdie_hf.runs.folder import read_json
from birdie_hf.trajectory import mixture_table


def load_trajectory(run_dir: str) -> dict:
    path = os.path.join(run_dir, TRAJECTORY_NAME)
    if not os.path.exists(path):
        raise RecipeError(f"{run_dir!r} has no {TRAJECTORY_NAME}: is it a recipes/pretrain.py output dir?")
    return read_json(path)


def run_names(run_dirs: list[str]) -> list[str]:
    """A distinct name per run folder: its own name, or as many of its last path parts as tell it from the others
    (`a/birdie` and `b/birdie`).

    Raises:
        [`RecipeError`]: a folder is given twice.
    """
    paths = [os.path.normpath(os.path.abspath(d)) for d in run_dirs]
    for index, path in enumerate(paths):
        if path in paths[:index]:
            raise RecipeError(f"run folder {run_dirs[index]!r} is given twice.")
    parts = [path.split(os.sep) for path in paths]
    for depth in range(1, max(len(p) for p in parts) + 1):
        names = ["/".join(p[-depth:]) for p in parts]
        if len(set(names)) == len(names):
            return names
    return paths


def write_report(run_dirs: list[str], output_dir: str) -> str:
    os.makedirs(output_dir, exist_ok=True)
    runs = {name: load_trajectory(d) for name, d in zip(run_names(run_dirs), run_dirs)}
    sections = ["# Birdie training report", ""]
    for name, trajectory in runs.items():
        stem = name.replace("/", "__")
        images = [
            plot_mixture(trajectory, os.path.join(output_dir, f"{stem}_mixture.png")),
            plot_losses(trajectory, os.path.join(output_dir, f"{stem}_losses.png")),
        ]
        if any(e.get("rewards") for e in trajectory["evaluations"]):
            images.append(plot_rewards(trajectory, os.path.join(output_dir, f"{stem}_rewards.png")))
        sections += [
            f"## {name} ({trajectory.get('policy')} policy, {len(trajectory['evaluations'])} evaluations)",
            "",
            mixture_table(trajectory),
            "",
        ]
        sections += [f"![{os.path.basename(i)}]({os.path.basename(i)})" for i in images] + [""]
    if len(runs) > 1:
        image = plot_run_comparison(runs, os.path.join(output_dir, "comparison_next_token_prediction.png"))
        sections += ["## Across runs", "", f"![comparison]({os.path.basename(image)})", ""]
    markdown = "\n".join(sections)
    with open(os.path.join(output_dir, "report.md"), "w", encoding="utf-8") as handle:
        handle.write(markdown)
    with open(os.path.join(output_dir, "report.html"), "w", encoding="utf-8") as handle:
        handle.write(_html(markdown))
    return os.path.join(output_dir, "report.md")


def _html(markdown: str, title: str = "Birdie training report") -> str:
    """A dependency-free, valid HTML5 rendering of the report's headings, paragraphs, tables and images.

    Consecutive markdown table rows become one `<table>` (first row as `<thead>`); headings and images sit outside
    tables.
    """
    body: list[str] = []
    rows: list[list[str]] = []

    def flush_table() -> None:
        if not rows:
            return
        head = "".join(f"<th>{html.escape(c)}</th>" for c in rows[0])
        lines = [f"<tr>{''.join(f'<td>{html.escape(c)}</td>' for c in row)}</tr>" for row in rows[1:]]
        body.append(f"<table>\n<thead><tr>{head}</tr></thead>\n<tbody>\n" + "\n".join(lines) + "\n</tbody>\n</table>")
        rows.clear()

    for line in markdown.splitlines():
        if line.startswith("|"):
            if not set(line) <= set("|-: "):  # skip the |---| separator row
                rows.append([c.strip().strip("`") for c in line.strip().strip("|").split("|")])
            continue
        flush_table()
        if line.startswith("#"):
            level = min(6, len(line) - len(line.lstrip("#")))
            body.append(f"<h{level}>{html.escape(line.lstrip('# '))}</h{level}>")
        elif line.startswith("!["):
            alt, src = line[2 : line.index("]")], line[line.index("(") + 1 : -1]
            body.append(f'<p><img src="{html.escape(src)}" alt="{html.escape(alt)}"></p>')
        elif line.strip():
            body.append(f"<p>{html.escape(line)}</p>")
    flush_table()
    style = (
        "body{font-family:sans-serif;max-width:1100px;margin:2em auto;padding:0 1em}"
        "table{border-collapse:collapse;margin:1em 0}th,td{border:1px solid #ccc;padding:2px 8px;"
        "text-align:right}th:first-child,td:first-child{text-align:left}img{max-width:100%}"
    )
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{html.escape(title)}</title>\n<style>{style}</style>\n</head>\n<body>\n"
        + "\n".join(body)
        + "\n</body>\n</html>\n"
    )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_dirs", nargs="+")
    parser.add_argument("--output_dir", default=None, help="default: <first run>/report")
    parser.add_argument(TRACEBACK_FLAG, action="store_true", help=TRACEBACK_HELP)
    args = parser.parse_args(argv)
    output = args.output_dir or os.path.join(args.run_dirs[0], "report")
    print(f"Wrote {write_report(args.run_dirs, output)}")


if __name__ == "__main__":
    run_recipe(main)
