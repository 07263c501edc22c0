"""benchmarks/gpu_throughput.py runs end to end at a tiny size on the CPU: five rows, each with its step time, tokens
and MFU, in one table (the GPU lease runs the same code at 34M and 100M parameters)."""

import importlib.util
import json
import sys

import pytest
from testing_utils import REPO


@pytest.mark.slow
def test_gpu_throughput_benchmark_measures_every_row_on_the_cpu(tmp_path, capsys):
    spec = importlib.util.spec_from_file_location("gpu_throughput", REPO / "benchmarks" / "gpu_throughput.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    status = module.main(["--sizes", "tiny", "--steps", "3", "--warmup", "1", "--output_dir", str(tmp_path)])
    assert status == 0
    records = json.loads((tmp_path / "gpu_throughput.json").read_text())["records"]
    assert [r["row"] for r in records] == ["minimal", "trainer", "birdie_ntp", "birdie_full", "birdie_full_plain"]
    for record in records:
        assert record["tokens_per_s"] > 0 and 0 < record["mfu"] < 1 and record["median_step_s"] > 0
    assert records[0]["step_vs_minimal"] == 1.0
    table = (tmp_path / "gpu_throughput.md").read_text()
    assert "(d) BirdieTrainer, full Birdie mixture" in table and "matmul peak" in table
