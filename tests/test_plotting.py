import json

import pytest
from PIL import Image

from birdie_hf.plotting import plot_losses, plot_mixture, plot_rewards, plot_run_comparison


def trajectory(policy="birdie"):
    names = ["next_token_prediction", "infilling"]
    evaluations = []
    for i, step in enumerate([1, 10, 20, 30]):
        record = {"step": step, "losses": {n: 3.0 - 0.2 * i - 0.1 * j for j, n in enumerate(names)},
                  "mixture": {"next_token_prediction": 0.5 + 0.1 * i, "infilling": 0.5 - 0.1 * i}}
        if policy == "birdie":
            record["next_mixture"] = {"next_token_prediction": 0.6 + 0.1 * i, "infilling": 0.4 - 0.1 * i}
            record["rewards"] = None if i == 0 else {"next_token_prediction": 0.5, "infilling": -0.2}
        evaluations.append(record)
    return {"policy": policy, "entries": names, "reward_classes": names, "evaluations": evaluations}


@pytest.mark.parametrize("plot", [plot_mixture, plot_losses, plot_rewards])
def test_plots_are_real_images(plot, tmp_path):
    path = plot(trajectory(), str(tmp_path / "out" / "plot.png"))
    with Image.open(path) as image:
        assert image.format == "PNG" and image.size == (1000, 500)


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
