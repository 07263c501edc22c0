"""Helpers shared by test modules (import them from here, never from another test module)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from birdie_hf.cli import run_recipe


REPO = Path(__file__).resolve().parents[1]


def load_recipe(name: str):
    """Import `recipes/<name>.py` as a module (recipes are scripts, not a package)."""
    spec = importlib.util.spec_from_file_location(f"recipe_{name}", REPO / "recipes" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve the recipe's annotations through sys.modules
    spec.loader.exec_module(module)
    return module


def one_line_error(capsys, entry, argv) -> str:
    """Run `entry` as a recipe; return its single stderr line (and check it is one line, with exit status 2)."""
    with pytest.raises(SystemExit) as info:
        run_recipe(entry, argv)
    assert info.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), lines
    return lines[0]
