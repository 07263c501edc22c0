import gzip
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from birdie_hf import build_dna_tokenizer, load_genome_windows


REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("BIRDIE_SHARED_DIR", REPO_ROOT.parent / "shared"))


def pytest_addoption(parser):
    parser.addoption(
        "--runslow", action="store_true", default=False, help="also run the tests marked slow (end-to-end runs)"
    )


def pytest_collection_modifyitems(config, items):
    """Tests marked `slow` are skipped unless asked for (`--runslow` or BIRDIE_RUN_SLOW=1), as in transformers and
    TRL: the default run stays quick, and CI (`.ci/run`) runs them explicitly."""
    if config.getoption("--runslow") or os.environ.get("BIRDIE_RUN_SLOW") == "1":
        return
    skip = pytest.mark.skip(reason="slow: run with --runslow (or BIRDIE_RUN_SLOW=1)")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def tokenizer():
    return build_dna_tokenizer()


@pytest.fixture(scope="module")
def genome(tokenizer):
    """64-base windows of the genome shipped with the package (train and validation splits)."""
    return load_genome_windows(None, tokenizer, window_length=64)


@pytest.fixture(scope="session")
def shared_dir():
    if not SHARED.exists():
        pytest.skip(f"shared data folder not found at {SHARED}")
    return SHARED


@pytest.fixture
def write_fasta(tmp_path):
    """Write text (or bytes) to a FASTA file in tmp_path, gzipped when the name ends with .gz."""

    def _write(content, name="genome.fa"):
        path = tmp_path / name
        data = content.encode() if isinstance(content, str) else content
        if name.endswith(".gz"):
            with gzip.open(path, "wb") as handle:
                handle.write(data)
        else:
            path.write_bytes(data)
        return str(path)

    return _write


@pytest.fixture
def random_dna():
    def _make(n, seed=0):
        return "".join(np.random.default_rng(seed).choice(list("ACGT"), size=n))

    return _make


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
    np.random.seed(0)
