"""Every Python block of the README runs as written (in order, in a fresh process and an empty folder, offline)."""

import os
import re
import subprocess
import sys

import pytest
from testing_utils import REPO


def readme_python_blocks() -> list[str]:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    return re.findall(r"^```python\n(.*?)^```", text, flags=re.M | re.S)


def test_the_readme_has_python_blocks():
    blocks = readme_python_blocks()
    assert len(blocks) >= 4 and not any("..." in block.replace('"..."', "") for block in blocks)


@pytest.mark.slow
def test_every_readme_python_block_runs_as_written(tmp_path):
    script = tmp_path / "readme_blocks.py"
    script.write_text(
        "\n\n".join(f"# --- README block {i}\n{block}" for i, block in enumerate(readme_python_blocks()))
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": "2"}
    result = subprocess.run(
        [sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / "birdie-dna" / "config.json").is_file()
