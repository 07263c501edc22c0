import json

import pytest
from PIL import Image

from birdie_hf.plotting import late_loss_range, plot_losses, plot_mixture, plot_rewards, plot_run_comparison


def trajectory(policy="birdie"):
    names = ["next_token_prediction", "infilling"]
    evaluations = []
    for i, step in enumerate([1, 10, 20, 30]):
        record = {
            "step": step,
            "losses": {n: 3.0 - 0.2 * i - 0.1 * j for j, n in enumerate(names)},
            "mixture": {"next_token_prediction": 0.5 + 0.1 * i, "infilling": 0.5 - 0.1 * i},
        }
        if policy == "birdie":
            record["next_mixture"] = {"next_token_prediction": 0.6 + 0.1 * i, "infilling": 0.4 - 0.1 * i}
            record["rewards"] = None if i == 0 else {"next_token_prediction": 0.5, "infilling": -0.2}
        evaluations.append(record)
    return {"policy": policy, "entries": names, "reward_classes": names, "evaluations": evaluations}


@pytest.mark.parametrize(
    "plot, size", [(plot_mixture, (1000, 500)), (plot_losses, (1200, 320)), (plot_rewards, (1000, 500))]
)
def test_plots_are_real_images(plot, size, tmp_path):
    path = plot(trajectory(), str(tmp_path / "out" / "plot.png"))
    with Image.open(path) as image:
        assert image.format == "PNG" and image.size == size


def test_the_loss_plot_zooms_on_the_second_half_so_small_differences_show():
    run = trajectory()
    run["evaluations"][0]["losses"] = {"next_token_prediction": 4.9, "infilling": 5.1}  # the first evaluation
    for e, (a, b) in zip(run["evaluations"][1:], [(1.40, 1.45), (1.36, 1.39), (1.34, 1.37)]):
        e["losses"] = {"next_token_prediction": a, "infilling": b}
    half, (low, high) = late_loss_range(run)
    assert half == 15 and 1.33 < low < 1.36 and 1.39 < high < 1.40  # steps 20 and 30 only: a 0.05-nat window
    _, (low, high) = late_loss_range(run, "next_token_prediction")
    assert 1.33 < low < 1.34 and 1.36 < high < 1.37  # one entry: its own 0.02-nat window


def test_run_comparison_and_errors(tmp_path):
    path = plot_run_comparison({"birdie": trajectory(), "static": trajectory("static")}, str(tmp_path / "c.png"))
    with Image.open(path) as image:
        assert image.size == (800, 500)
    with pytest.raises(ValueError, match="no rewards"):
        plot_rewards(trajectory("static"), str(tmp_path / "r.png"))
    with pytest.raises(ValueError, match="no evaluations"):
        plot_mixture({"entries": [], "evaluations": []}, str(tmp_path / "m.png"))


def test_report_recipe(tmp_path):
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "recipes"))
    from report import write_report

    for name, policy in (("birdie", "birdie"), ("static", "static")):
        (tmp_path / name).mkdir()
        (tmp_path / name / "mixture_trajectory.json").write_text(json.dumps(trajectory(policy)))
    report = write_report([str(tmp_path / "birdie"), str(tmp_path / "static")], str(tmp_path / "report"))
    text = open(report).read()
    assert "birdie_mixture.png" in text and "comparison_next_token_prediction.png" in text
    assert (tmp_path / "report" / "birdie_rewards.png").exists()
    assert not (tmp_path / "report" / "static_rewards.png").exists()
    assert "<img" in (tmp_path / "report" / "report.html").read_text()


def test_report_keeps_every_run_when_two_folders_share_a_name(tmp_path):
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "recipes"))
    from report import run_names, write_report

    from birdie_hf.cli import RecipeError

    for seed, policy in (("seed42", "birdie"), ("seed43", "static")):
        (tmp_path / seed / "birdie").mkdir(parents=True)
        (tmp_path / seed / "birdie" / "mixture_trajectory.json").write_text(json.dumps(trajectory(policy)))
    runs = [str(tmp_path / "seed42" / "birdie"), str(tmp_path / "seed43" / "birdie") + "/"]
    assert run_names(runs) == ["seed42/birdie", "seed43/birdie"]
    text = open(write_report(runs, str(tmp_path / "report"))).read()
    assert "## seed42/birdie (birdie policy" in text and "## seed43/birdie (static policy" in text
    assert (tmp_path / "report" / "seed42__birdie_mixture.png").exists()
    assert (tmp_path / "report" / "seed43__birdie_mixture.png").exists()
    with pytest.raises(RecipeError, match="is given twice"):
        run_names([runs[0], runs[0] + "/."])


def test_entry_styles_colour_by_type_and_style_by_configuration():
    from birdie_hf.plotting import entry_styles

    names = [
        "next_token_prediction",
        "infilling_15pct_span3",
        "infilling_15pct_span8",
        "infilling_50pct_span3",
        "copying",
        "deshuffling_25pct",
        "deshuffling_75pct",
    ]
    classes = ["next_token_prediction", "infilling", "infilling", "infilling", "copying", "deshuffling", "deshuffling"]
    styles = entry_styles({"entries": names, "reward_classes": classes})
    # Same type: same colour, every configuration a distinct line style and fill shade.
    infilling = [styles[n] for n in names[1:4]]
    assert len({s["color"] for s in infilling}) == 1
    assert len({str(s["linestyle"]) for s in infilling}) == 3 and len({s["shade"] for s in infilling}) == 3
    # Different types: different colours.
    assert (
        len(
            {
                styles[n]["color"]
                for n in ("next_token_prediction", "infilling_15pct_span3", "copying", "deshuffling_25pct")
            }
        )
        == 4
    )
    # No two entries look the same.
    assert len({(s["color"], str(s["linestyle"]), s["shade"]) for s in styles.values()}) == len(names)


class _StrictHTML:
    """Checks that every non-void element is closed in order and nothing sits outside <html>."""

    VOID = {"meta", "img", "br", "hr", "link", "input"}

    def __init__(self, text: str):
        from html.parser import HTMLParser

        self.stack, self.errors, self.tags = [], [], []
        checker = self

        class Parser(HTMLParser):
            def handle_starttag(self, tag, attrs):
                checker.tags.append(tag)
                if tag not in checker.VOID:
                    checker.stack.append(tag)

            def handle_endtag(self, tag):
                if not checker.stack or checker.stack[-1] != tag:
                    checker.errors.append(f"</{tag}> closes {checker.stack[-1:]}")
                else:
                    checker.stack.pop()

        Parser().feed(text)
        if self.stack:
            self.errors.append(f"unclosed {self.stack}")


def test_report_html_is_valid(tmp_path):
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "recipes"))
    from report import write_report

    (tmp_path / "birdie").mkdir()
    (tmp_path / "birdie" / "mixture_trajectory.json").write_text(json.dumps(trajectory()))
    write_report([str(tmp_path / "birdie")], str(tmp_path / "report"))
    text = (tmp_path / "report" / "report.html").read_text()
    assert text.startswith("<!DOCTYPE html>")
    checked = _StrictHTML(text)
    assert checked.errors == []
    # Headings and images are never inside a table; tables have a header row.
    assert "<thead>" in text and text.count("<table>") == text.count("</table>") >= 1
    import re

    for table in re.findall(r"<table>.*?</table>", text, flags=re.S):
        assert "<h" not in table and "<img" not in table


def test_a_cut_short_trajectory_is_named_in_one_line(tmp_path, capsys):
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "recipes"))
    import report

    from birdie_hf.cli import run_recipe

    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "mixture_trajectory.json").write_text('{"policy": "bir')
    with pytest.raises(SystemExit):
        run_recipe(report.main, [str(tmp_path / "run")])
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert "mixture_trajectory.json' is not valid JSON (line 1" in line and "cut short" in line
