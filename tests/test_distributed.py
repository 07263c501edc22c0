import json
import os
import subprocess
import sys
from pathlib import Path

import pytest


SCRIPT = Path(__file__).parent / "scripts" / "ddp_probe.py"
LAUNCH = [
    sys.executable,
    "-m",
    "accelerate.commands.launch",
    "--multi_gpu",
    "--num_processes",
    "2",
    "--num_machines",
    "1",
    "--mixed_precision",
    "no",
    "--dynamo_backend",
    "no",
    "--main_process_port",
    "0",
]


def launch(*args, cwd, extra_env=None):
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": "1", **(extra_env or {})}
    result = subprocess.run(
        LAUNCH + [str(SCRIPT), *map(str, args)], cwd=cwd, env=env, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


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
