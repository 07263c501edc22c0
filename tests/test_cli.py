"""Recipe plumbing (birdie_hf.cli): one-line errors, tracebacks on request, YAML configs and --help."""

import pytest
from testing_utils import one_line_error

from birdie_hf import BirdieTrainingArguments
from birdie_hf.cli import (
    RecipeError,
    load_config_file,
    pop_config_flag,
    run_recipe,
    strip_traceback_flag,
    wants_traceback,
)


def test_run_recipe_prints_one_line_for_bad_input_and_keeps_tracebacks_on_request(capsys, monkeypatch):
    def entry(argv):
        raise ValueError("`max_steps` must be positive,\n  got 0.")

    assert one_line_error(capsys, entry, []) == "error: `max_steps` must be positive, got 0."

    def missing(argv):
        open("surely/not/here.yaml")

    assert one_line_error(capsys, missing, []) == "error: No such file or directory: 'surely/not/here.yaml'"
    with pytest.raises(ValueError, match="max_steps"):
        run_recipe(entry, ["--traceback"])
    monkeypatch.setenv("BIRDIE_TRACEBACK", "1")
    with pytest.raises(ValueError, match="max_steps"):
        run_recipe(entry, [])
    monkeypatch.delenv("BIRDIE_TRACEBACK")

    def bug(argv):
        raise KeyError("a bug, not bad input")

    with pytest.raises(KeyError):  # never hidden behind one line
        run_recipe(bug, [])
    assert run_recipe(lambda argv: argv, ["--x"]) == ["--x"]


def test_wants_traceback_reads_the_flag_forms():
    assert wants_traceback(["--traceback"]) and wants_traceback(["--traceback", "true", "--x"])
    assert wants_traceback(["--traceback=1"])
    assert not wants_traceback(["--traceback", "false"]) and not wants_traceback(["--traceback=no"])
    assert not wants_traceback(["--output_dir", "x"])
    # Recipes drop every form before their own parser sees it (a stray `true` would be an unknown argument).
    for argv in (["--traceback"], ["--traceback", "true"], ["--traceback=1"], ["--traceback", "no"]):
        assert strip_traceback_flag(["--a", "1", *argv, "--b"]) == ["--a", "1", "--b"]
    assert strip_traceback_flag(["--traceback", "--b", "x"]) == ["--b", "x"]


def test_config_flag_needs_a_value():
    assert pop_config_flag(["--a", "1", "--config", "x.yaml"]) == ("x.yaml", ["--a", "1"])
    assert pop_config_flag(["--config=x.yaml"]) == ("x.yaml", [])
    for argv in (["--config"], ["--config", "--output_dir", "o"], ["--config="]):
        with pytest.raises(RecipeError, match="--config needs the path of a YAML file"):
            pop_config_flag(argv)
    with pytest.raises(RecipeError, match="given twice"):
        pop_config_flag(["--config", "a.yaml", "--config", "b.yaml"])


def test_config_file_errors_name_the_file_and_key(tmp_path):
    types = [BirdieTrainingArguments]
    path = tmp_path / "run.yaml"
    with pytest.raises(RecipeError, match="file not found: .*nope.yaml"):
        load_config_file(str(tmp_path / "nope.yaml"), types)
    path.write_text("- max_steps\n- 3\n")
    with pytest.raises(RecipeError, match="must hold a mapping .* got a list at the top level"):
        load_config_file(str(path), types)
    path.write_text("max_steps: 3\n  bad: [\n")
    with pytest.raises(RecipeError, match=r"run.yaml' is not valid YAML \(line 2\)"):
        load_config_file(str(path), types)
    path.write_text("max_steps: [1, 2]\n")
    with pytest.raises(RecipeError, match="key 'max_steps' in .*run.yaml' takes an integer, got \\[1, 2\\]"):
        load_config_file(str(path), types)
    path.write_text("objective_weights: [1, a]\n")
    with pytest.raises(RecipeError, match="key 'objective_weights' .* takes a list of numbers"):
        load_config_file(str(path), types)
    path.write_text("learning_rate: 0.1\nbf16: false\nobjectives: infilling\nobjective_weights: 1\n")
    assert load_config_file(str(path), types) == {
        "learning_rate": 0.1,
        "bf16": False,
        "objectives": ["infilling"],
        "objective_weights": [1],
    }
    path.write_text("")
    assert load_config_file(str(path), types) == {}


# -- recipes/pretrain.py ----------------------------------------------------------------------------------------------
def test_help_survives_percent_signs_in_field_help(capsys):
    """transformers 5.2's TrainingArguments has a help string with a bare `%`, which crashed `--help` there."""
    from dataclasses import dataclass, field

    from transformers import HfArgumentParser

    from birdie_hf.cli import parse_args_with_config

    @dataclass
    class WithPercent:
        share: float = field(default=0.5, metadata={"help": "share of 100% of the steps (default %(default)s)"})

    with pytest.raises(SystemExit) as info:
        parse_args_with_config(HfArgumentParser(WithPercent), ["--help"])
    assert info.value.code == 0
    assert "share of 100% of the steps (default 0.5)" in " ".join(capsys.readouterr().out.split())
