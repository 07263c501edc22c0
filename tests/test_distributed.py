import json
import os

import pytest
from testing_utils import launch


@pytest.mark.slow
def test_two_process_run_uses_one_mixture_and_resumes(tmp_path):
    out = tmp_path / "ddp"
    launch(out, 6, "first", cwd=tmp_path)
    ranks = [json.loads((out / f"mixture_first_rank{r}.json").read_text()) for r in (0, 1)]
    assert [r["world_size"] for r in ranks] == [2, 2], "expected two real processes, not one"
    assert ranks[0]["records"] == ranks[1]["records"]
    assert len({tuple(r["mixture"]) for r in ranks[0]["records"]}) > 1, "the policy never changed the mixture"
    assert (out / "checkpoint-4" / "birdie_state.pt").exists()

    launch(out, 0, "resume", cwd=tmp_path)
    resumed = [json.loads((out / f"mixture_resumed_rank{r}.json").read_text()) for r in (0, 1)]
    assert resumed[0]["records"] == resumed[1]["records"]
    assert [r["step"] for r in resumed[0]["records"]] == [4, 5, 6, 7]
    # Steps 4 and 5 replay exactly what the first run trained on.
    assert resumed[0]["records"][:2] == [r for r in ranks[0]["records"] if r["step"] in (4, 5)]
    assert (out / "checkpoint-8" / "birdie_state.pt").exists()


@pytest.mark.slow
def test_a_refused_folder_ends_every_process(tmp_path):
    """The main process checks the folder; the others learn its refusal instead of waiting for it in the first
    collective until the distributed timeout."""
    import subprocess

    from testing_utils import LAUNCH, SCRIPT

    out = tmp_path / "ft"
    out.mkdir()
    (out / "results.json").write_text("{}")
    (out / "config.json").write_text("{}")
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        LAUNCH + [str(SCRIPT), str(out), "0", "first"], cwd=tmp_path, env=env, capture_output=True, text=True,
        timeout=300,
    )  # fmt: skip
    text = result.stdout + result.stderr
    assert result.returncode != 0
    assert "holds a fine-tuning run's outputs" in text  # the main process's own refusal
    assert "the main process refused the run: output_dir" in text  # and the other process's
    assert sorted(set(os.listdir(out)) - {"_birdie_run.lock"}) == ["config.json", "results.json"]
