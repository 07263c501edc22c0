import json

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
