"""Bad input to the recipes ends in one clear line before any work, and what they write (task files, model cards) is
right. Recipes run in-process here (their `main` through `birdie_hf.cli.run_recipe`, as `__main__` runs them); two
subprocess tests check the real entry points."""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from datasets import Dataset, DatasetDict
from huggingface_hub import ModelCard
from testing_utils import REPO, load_recipe, one_line_error

from birdie_hf.evaluation.finetune import LoraSettings
from birdie_hf.evaluation.genbank_tasks import EmptyTaskError, TaskSuiteConfig, build_task_suite, check_task_suite
from birdie_hf.hub_io import check_model_path, load_model_config
from birdie_hf.pretraining import check_windows, held_out_windows
from birdie_hf.run_record import summary_table


@pytest.fixture(scope="module")
def pretrain():
    return load_recipe("pretrain")


# -- birdie_hf.cli ---------------------------------------------------------------------------------------------------
def test_pretrain_yaml_takes_a_single_string_where_a_list_is_expected(pretrain, tmp_path):
    genome = tmp_path / "x.fa"
    genome.write_text(">r\nACGT\n")
    config = tmp_path / "run.yaml"
    config.write_text(f"genomes: {genome}\nobjectives: next_token_prediction\n")
    script_args, training_args = pretrain.parse_args(["--config", str(config), "--output_dir", str(tmp_path / "o")])
    assert script_args.genomes == [str(genome)]
    assert training_args.objectives == ["next_token_prediction"]
    assert [spec.name for spec in training_args.objective_specs()] == ["next_token_prediction"]


def test_pretrain_token_budget_replaces_the_recipe_step_default(pretrain, tmp_path):
    out = ["--output_dir", str(tmp_path / "o"), "--example_length", "260"]
    _, training_args = pretrain.parse_args(out + ["--max_tokens", "208000"])
    assert training_args.max_steps == 100  # 208,000 / (260 x 8 windows); the recipe's 300 steps give way
    config = tmp_path / "run.yaml"
    config.write_text("max_tokens: 416000\n")
    _, training_args = pretrain.parse_args(["--config", str(config)] + out)
    assert training_args.max_steps == 200
    with pytest.raises(ValueError, match="Give `max_steps`"):  # both given by the user: refused
        pretrain.parse_args(out + ["--max_tokens", "208000", "--max_steps", "5"])
    _, training_args = pretrain.parse_args(out + ["--max-tokens", "208000"])  # the dashed spelling too
    assert training_args.max_steps == 100


@pytest.mark.parametrize(
    "yaml_text, argv, expected",
    [
        ("genomes: missing.fa\n", [], "error: --genomes: file not found: 'missing.fa'"),
        ("objectives: copy\n", [], "Unknown objective 'copy'"),
        ("- a\n- b\n", [], "must hold a mapping of argument names to values"),
        (None, ["--config"], "error: --config needs the path of a YAML file"),
        (None, ["--config", "nope.yaml"], "error: --config: file not found: 'nope.yaml'"),
        (None, ["--max_steps", "0"], "`max_steps` must be a positive number of optimizer steps, or -1"),
        (None, ["--max_steps", "-5"], "got -5"),
        (None, ["--policy_min_weight", "-1"], "error: `policy_min_weight` must be in [0, 1], got -1.0."),
        (
            None,
            ["--model_name_or_path", "../no/such/checkpoint"],
            "'../no/such/checkpoint' does not exist: it is neither a local folder nor a valid Hub model id",
        ),
        (None, ["--dataset_name", "reads.fa"], "--dataset_name takes a Hub id or CSV"),
        (None, ["--streaming", "--max_steps", "-1"], "error: --streaming needs --max_steps"),
        (
            None,
            ["--streaming", "--dataset_name", "x.csv"],
            "error: --streaming reads FASTA files given with --genomes",
        ),
        (None, ["--validation_genomes", "v.fa"], "error: --validation_genomes is for --streaming runs"),
        (None, ["--streaming", "--validation_genomes", "v.fa"], "error: --validation_genomes: file not found: 'v.fa'"),
        (None, ["--soft_mask", "mask"], "error: --soft_mask must be ignore or drop, got 'mask'."),
    ],
)
def test_pretrain_bad_input_is_one_line_before_any_work(
    pretrain, capsys, tmp_path, monkeypatch, yaml_text, argv, expected
):
    monkeypatch.chdir(tmp_path)
    if yaml_text is not None:
        (tmp_path / "run.yaml").write_text(yaml_text)
        argv = ["--config", "run.yaml", *argv]
    argv = [*argv, "--output_dir", str(tmp_path / "out")] if argv[-1:] != ["--config"] else argv
    line = one_line_error(capsys, lambda a: pretrain.main(*pretrain.parse_args(a)), argv)
    assert expected in line
    assert not (tmp_path / "out").exists()


def test_pretrain_refuses_windows_that_max_length_would_crop(pretrain, capsys, tmp_path):
    # --window_length 1024 with the recipe's max_length (520): every objective would crop every window.
    line = one_line_error(
        capsys,
        lambda a: pretrain.main(*pretrain.parse_args(a)),
        ["--window_length", "1024", "--output_dir", str(tmp_path / "out"), "--cpu_threads", "1"],
    )
    assert line.startswith(
        "error: --max_length / --window_length: max_length=520 is too small for windows of "
        "window_length=1024 bases: 13 of 13 objective entries would crop every window"
    )
    assert "'copying' 259" in line and "Use max_length >= 2050 to read whole windows, or window_length <= 259" in line
    assert not (tmp_path / "out").exists()
    # --allow_cropping leaves the decision to the trainer, which warns with the same numbers.
    script_args, training_args = pretrain.parse_args(
        ["--window_length", "1024", "--allow_cropping", "true", "--output_dir", str(tmp_path / "out")]
    )[:2]
    assert script_args.allow_cropping
    from birdie_hf import DataCollatorForBirdie, build_dna_tokenizer

    check_windows(script_args, DataCollatorForBirdie.from_training_args(build_dna_tokenizer(), training_args))


@pytest.mark.parametrize(
    "argv, cause",
    [
        (
            ["--genomes", "{shared}/data/genomes/MT-human.fa", "--window_length", "1024", "--max_length", "2056"],
            "no validation window of --window_length 1024 bases fits in the held-out 0.05 of `MT-human.fa`",
        ),
        (
            ["--validation_fraction", "0", "--window_length", "128", "--max_length", "384"],
            "--validation_fraction 0 holds out nothing. Use a --validation_fraction above 0",
        ),
        (
            ["--streaming", "--window_length", "128", "--max_length", "384"],
            "--streaming holds out no part of --genomes. Use --validation_genomes held_out.fa",
        ),
    ],
)
def test_pretrain_birdie_without_held_out_windows_is_refused_before_training(
    pretrain, capsys, tmp_path, shared_dir, argv, cause
):
    argv = [arg.format(shared=shared_dir) for arg in argv] + [
        "--output_dir",
        str(tmp_path / "out"),
        "--cpu_threads",
        "1",
    ]
    line = one_line_error(capsys, lambda a: pretrain.main(*pretrain.parse_args(a)), argv)
    assert line.startswith("error: --policy birdie needs held-out windows for its reward, but ") and cause in line
    assert "or --policy static / ntp, which train without held-out windows" in line
    assert not (tmp_path / "out").exists()


def test_pretrain_warns_when_the_reward_gets_few_held_out_windows(pretrain, tmp_path, caplog):
    few = DatasetDict(
        {
            "train": Dataset.from_dict({"input_ids": [[4] * 8] * 20}),
            "validation": Dataset.from_dict({"input_ids": [[4] * 8] * 6}),
        }
    )
    script_args, training_args = pretrain.parse_args(["--output_dir", str(tmp_path / "o")])
    with caplog.at_level("WARNING"):
        assert held_out_windows(script_args, training_args, few) is few["validation"]
    assert (
        "Only 6 validation windows for the reward's held-out set of at least 8 windows per objective entry"
        in caplog.text
    )
    caplog.clear()
    script_args, training_args = pretrain.parse_args(["--output_dir", str(tmp_path / "o"), "--policy", "static"])
    with caplog.at_level("WARNING"):
        held_out_windows(script_args, training_args, few)
    assert not caplog.text


def test_pretrain_summary_without_evaluations_has_no_loss_column(pretrain):
    trajectory = {"evaluations": []}
    table = summary_table(
        trajectory, ["copying", "next_token_prediction"], 2560, 4, {"copying": 0.5, "next_token_prediction": 0.5}
    )
    assert "nan" not in table.lower() and "final val loss" not in table
    assert "no held-out evaluation was run (no validation windows)" in table
    assert "| copying                              |       0.5000 |" in table


def test_pretrain_entry_point_prints_one_line(tmp_path):
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    env.pop("BIRDIE_TRACEBACK", None)
    result = subprocess.run(
        [sys.executable, str(REPO / "recipes" / "pretrain.py"), "--config", "missing.yaml"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == ["error: --config: file not found: 'missing.yaml'"]


# -- BirdieTrainingArguments ------------------------------------------------------------------------------------------
def test_lora_settings_refuse_a_negative_rank():
    assert not LoraSettings(r=0).enabled and LoraSettings(r=8).enabled
    with pytest.raises(ValueError, match=r"LoRA rank `r` \(`--lora_r`\) must be a positive integer, or 0 for full "):
        LoraSettings(r=-4)
    with pytest.raises(ValueError, match="`--lora_dropout`"):
        LoraSettings(r=4, dropout=1.0)
    with pytest.raises(ValueError, match="`--lora_alpha`"):
        LoraSettings(r=4, alpha=0)


def test_missing_checkpoints_are_reported_as_missing(tmp_path, monkeypatch):
    for path in ("../no/such/model", str(tmp_path / "absent"), "a/b/c"):
        with pytest.raises(FileNotFoundError, match="does not exist: it is neither a local folder nor a valid Hub"):
            check_model_path(path)
    (tmp_path / "weights.bin").write_bytes(b"")
    with pytest.raises(NotADirectoryError, match="is a file, not a checkpoint folder"):
        check_model_path(str(tmp_path / "weights.bin"))
    check_model_path(str(tmp_path))  # an existing folder passes

    def offline(*args, **kwargs):
        raise OSError("We couldn't connect to 'https://huggingface.co' to load the files.")

    monkeypatch.setattr("transformers.AutoConfig.from_pretrained", offline)
    with pytest.raises(
        OSError,
        match="'outputs/typo' is not a local folder, and loading it from the Hub as a model "
        "id failed: We couldn't connect",
    ):
        load_model_config("outputs/typo")


def test_finetune_recipe_refuses_bad_input_in_one_line(capsys, tmp_path):
    finetune = load_recipe("finetune")
    entry = lambda argv: finetune.main(finetune.parse_args(argv))  # noqa: E731
    common = ["--task", str(tmp_path), "--output_dir", str(tmp_path / "out")]
    line = one_line_error(capsys, entry, ["--model_name_or_path", str(tmp_path), "--lora_r", "-4", *common])
    assert line == ("error: LoRA rank `r` (`--lora_r`) must be a positive integer, or 0 for full fine-tuning; got -4.")
    line = one_line_error(capsys, entry, ["--model_name_or_path", "../missing/model", *common])
    assert "'../missing/model' does not exist: it is neither a local folder nor a valid Hub model id" in line
    assert not (tmp_path / "out").exists()


def test_finetune_recipe_writes_a_model_card(tmp_path, monkeypatch):
    finetune = load_recipe("finetune")
    sequences = ["ACGTACGTAC", "TTGACCATGA", "GGGCCCAAAT", "CATCATCATG"]
    split = Dataset.from_dict({"sequence": sequences, "label": [0, 1, 0, 1]})
    monkeypatch.setattr(finetune, "load_model_config", lambda path: None)
    monkeypatch.setattr(
        finetune, "load_classification_task", lambda task, seed: DatasetDict(train=split, validation=split, test=split)
    )

    def fake_finetune(checkpoint, data, output_dir, **kwargs):  # the training itself is tested in test_downstream
        os.makedirs(output_dir, exist_ok=True)
        assert kwargs["lora"].r == 4
        return {
            "validation": {"mcc": 0.5, "f1": 0.7, "accuracy": 0.75},
            "test": {"mcc": 0.4, "f1": 0.6, "accuracy": 0.7},
            "attention": "bidirectional",
            "prefix_prompt": True,
        }

    monkeypatch.setattr(finetune, "finetune_classifier", fake_finetune)
    out = tmp_path / "ft-gene-strand"
    finetune.main(
        finetune.parse_args(
            [
                "--model_name_or_path",
                "my-org/birdie-dna",
                "--task",
                "tasks/gene_strand",
                "--output_dir",
                str(out),
                "--lora_r",
                "4",
            ]
        )
    )
    card = ModelCard.load(out / "README.md")
    assert card.data.base_model == "my-org/birdie-dna" and card.data.pipeline_tag == "text-classification"
    assert card.data.widget == [{"text": "ACGTACGTAC"}, {"text": "TTGACCATGA"}]
    assert "**gene_strand**" in card.content and "LoRA r=4" in card.content
    assert "| attention | bidirectional, inputs open with `<|prefix_lm|>` |" in card.content
    assert "| mcc | 0.4000 |" in card.content and "dev MCC 0.5000" in card.content
    assert json.loads((out / "results.json").read_text())["test"]["mcc"] == 0.4


# -- recipes/make_genome_tasks.py -------------------------------------------------------------------------------------
def toy_genbank(path, length=40000, seed=0):
    """A genome with CDS of 300-600 bases on both strands and intergenic gaps between them."""
    rng = np.random.default_rng(seed)
    sequence = "".join(rng.choice(list("ACGT"), size=length))
    features, start = [], 100
    while start + 700 < length:
        size = int(rng.integers(300, 600)) // 3 * 3
        location = f"{start + 1}..{start + size}"
        features.append(location if rng.random() < 0.5 else f"complement({location})")
        start += size + 150
    lines = [
        f"LOCUS       toy    {length} bp    DNA     linear",
        "FEATURES             Location/Qualifiers",
        f"     source          1..{length}",
    ]
    lines += [f"     CDS             {location}" for location in features]
    lines.append("ORIGIN")
    for i in range(0, length, 60):
        chunk = sequence[i : i + 60].lower()
        lines.append(f"{i + 1:>9} " + " ".join(chunk[j : j + 10] for j in range(0, len(chunk), 10)))
    lines.append("//")
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def test_task_suite_with_an_empty_split_is_refused_with_counts(tmp_path):
    genbank = toy_genbank(tmp_path / "toy.gbk")
    config = TaskSuiteConfig(window_length=1000, block_size=5000)  # longer than every gene of the toy genome
    suite = build_task_suite(genbank, config)
    with pytest.raises(EmptyTaskError) as info:
        check_task_suite(suite, config, genome_length=40000)
    message = str(info.value)
    assert message.startswith("No examples for gene_strand (train/dev/test)")
    assert "gene_strand: train 0, dev 0, test 0" in message and "lower --window_length (now 1000" in message
    good = TaskSuiteConfig(window_length=60, block_size=1000)
    counts = check_task_suite(build_task_suite(genbank, good), good)
    assert all(n > 0 for per in counts.values() for n in per.values())
    with pytest.raises(ValueError, match=r"`block_size` \(5000\) must be at least `window_length` \(100000\)"):
        TaskSuiteConfig(window_length=100000)


@pytest.mark.parametrize(
    "window, expected",
    [
        ("100000", "error: `block_size` (5000) must be at least `window_length` (100000): every example lies inside"),
        ("1000", "error: No examples for gene_strand (train/dev/test)"),
    ],
)
def test_make_genome_tasks_writes_nothing_when_a_split_would_be_empty(capsys, tmp_path, window, expected):
    recipe = load_recipe("make_genome_tasks")
    genbank = toy_genbank(tmp_path / "toy.gbk")
    out = tmp_path / "tasks"
    line = one_line_error(
        capsys, recipe.main, ["--genbank", genbank, "--output_dir", str(out), "--window_length", window]
    )
    assert line.startswith(expected)
    assert not out.exists()


def test_make_genome_tasks_entry_point(tmp_path):
    genbank = toy_genbank(tmp_path / "toy.gbk")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop("BIRDIE_TRACEBACK", None)
    result = subprocess.run(
        [
            sys.executable,
            str(REPO / "recipes" / "make_genome_tasks.py"),
            "--genbank",
            genbank,
            "--output_dir",
            str(tmp_path / "tasks"),
            "--window_length",
            "1000",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1
    assert "Examples that could be made: gene_strand: train 0, dev 0, test 0" in result.stderr
    assert not (tmp_path / "tasks").exists()


# -- model cards ------------------------------------------------------------------------------------------------------
def test_make_genome_tasks_checks_leakage_by_default_and_warns_loudly(tmp_path, capsys, shared_dir):
    make_genome_tasks = load_recipe("make_genome_tasks")
    make_genome_tasks.main(["--output_dir", str(tmp_path / "tasks")])  # the GenBank assembly the default run reads
    captured = capsys.readouterr()
    summary = json.loads((tmp_path / "tasks" / "suite.json").read_text())
    leaked = summary["leakage"]["total_occurring"]
    assert summary["leakage"]["corpus"] == ["bacterial_contigs.fna.gz"] and leaked > 0
    assert (
        f"WARNING: {leaked} dev/test sequences of this suite occur verbatim in bacterial_contigs.fna.gz"
        in captured.err
    )
    assert "recipes/evaluate.py" in captured.err


@pytest.mark.parametrize(
    "yaml_text, message",
    [
        ("window_length: null\n", "key 'window_length' in '.*run.yaml' cannot be null"),
        ("max_steps: 1e3\n", r"key 'max_steps' in '.*run.yaml' takes an integer, got '1e3' \(write 1000\)"),
        ("learning_rate: fast\n", "key 'learning_rate' in '.*run.yaml' takes a number, got 'fast'"),
        ("output_dir: null\n", "key 'output_dir' in '.*run.yaml' cannot be null"),  # not ./trainer_output
        ("max_steps: 3\nseed: 1\nmax_steps: 4\n", r"run.yaml' is not valid YAML \(line 3\): key 'max_steps' is given"),
        ("a: &x [1]\nmax_steps: *x\n", r"not valid YAML \(line 2\): aliases \(\*x\) are not supported"),
        ("? [1, 2]\n: 3\n", r"not valid YAML \(line 1\): key \[1, 2\] is not a name"),
        ("max_steps: [" + "1, " * 50_000 + "1]\n", r"takes an integer, got \[1, 1, 1, 1, 1, 1, 1, 1, \.\.\.\]\.$"),
    ],
)
def test_pretrain_yaml_values_of_the_wrong_kind_are_named(pretrain, tmp_path, capsys, yaml_text, message):
    config = tmp_path / "run.yaml"
    config.write_text(yaml_text)
    line = one_line_error(capsys, lambda a: pretrain.main(*pretrain.parse_args(a)), ["--config", str(config)])
    assert re.search(message, line), line


def test_a_bad_flag_is_one_line_not_the_whole_usage(pretrain, capsys):
    with pytest.raises(SystemExit) as info:
        pretrain.parse_args(["--policy", "birdy"])
    assert info.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].endswith(
        ": error: argument --policy: invalid choice: 'birdy' (choose from 'birdie', 'static', 'ntp') (see --help)"
    )


def test_pretrain_help_describes_the_routes_and_groups_the_options(pretrain, capsys):
    with pytest.raises(SystemExit) as info:
        pretrain.parse_args(["--help"])
    assert info.value.code == 0
    text = capsys.readouterr().out
    assert text.startswith("usage: accelerate launch recipes/pretrain.py [--config RUN.YAML] [options]")
    assert "Birdie pre-training of a DNA language model." in text and "--resume_from_checkpoint last" in text
    groups = [
        "data and model (this recipe):",
        "Birdie: objectives, mixture and reward policy (BirdieTrainingArguments):",
        "transformers.TrainingArguments options (and --help, --config):",
    ]
    assert [text.index(g) for g in groups] == sorted(text.index(g) for g in groups)
    birdie = text[text.index(groups[1]) : text.index(groups[2])]
    assert "--policy " in birdie and "--overwrite_output_dir" in birdie and "--learning_rate" not in birdie
    assert "--config RUN.YAML" in text[text.index(groups[2]) :]


def test_an_alias_bomb_is_refused_in_one_short_line(pretrain, tmp_path, capsys):
    """Nine nested aliases of nine items each would expand to 9^9 strings (the 370-byte file that ran out of
    memory): refused at the first alias, before anything is expanded."""
    lines = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    lines += [f"a{i}: &a{i} [{','.join(['*a' + str(i - 1)] * 9)}]" for i in range(1, 9)]
    config = tmp_path / "run.yaml"
    config.write_text("\n".join(lines) + "\n")
    line = one_line_error(capsys, lambda a: pretrain.main(*pretrain.parse_args(a)), ["--config", str(config)])
    assert "aliases (*a0) are not supported" in line and len(line) < 300


def test_the_suite_reuses_a_run_only_with_the_same_checkpoint_weights_and_settings(tmp_path, monkeypatch, capsys):
    """runs.jsonl was keyed by name: a retrained checkpoint or another learning rate under the same name got the old
    numbers (and --update_cards wrote them into the wrong card)."""
    from datasets import Dataset, DatasetDict
    from transformers import LlamaConfig

    evaluate_suite = load_recipe("evaluate_suite")
    model = tmp_path / "birdie"
    LlamaConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64).save_pretrained(
        model
    )
    (model / "model.safetensors").write_bytes(b"first weights")
    task = tmp_path / "task"
    task.mkdir()
    (task / "train.csv").write_text("sequence,label\nACGT,0\n")
    trained = []

    def fake_finetune(checkpoint, data, output_dir, **settings):
        trained.append(settings["learning_rate"])
        score = {"mcc": 0.1 * len(trained), "f1": 0.5, "accuracy": 0.5}
        return {"validation": score, "test": score, "attention": "causal", "prefix_prompt": False}

    split = Dataset.from_dict({"sequence": ["ACGT"], "label": [0]})
    monkeypatch.setattr(evaluate_suite, "finetune_classifier", fake_finetune)
    monkeypatch.setattr(
        evaluate_suite,
        "load_classification_task",
        lambda *a, **k: DatasetDict(train=split, validation=split, test=split),
    )
    argv = [
        "--checkpoints",
        f"birdie={model}",
        "--tasks",
        str(task),
        "--seeds",
        "0",
        "--output_dir",
        str(tmp_path / "s"),
    ]
    argv += ["--attention_modes", "causal"]

    def mcc(extra=()):
        evaluate_suite.main(evaluate_suite.parse_args([*argv, *extra]))
        results = json.loads((tmp_path / "s" / "results.json").read_text())["summary"]
        return results["birdie"]["task"]["mcc"]["mean"]

    assert mcc() == pytest.approx(0.1) and len(trained) == 1
    assert mcc() == pytest.approx(0.1) and len(trained) == 1  # the same run: reused
    (model / "model.safetensors").write_bytes(b"retrained weights")
    assert mcc() == pytest.approx(0.2) and len(trained) == 2  # same name and path, new weights: trained again
    assert "have this sweep's names, tasks, seeds and modes but another checkpoint" in capsys.readouterr().out
    assert mcc(["--learning_rate", "1e-4"]) == pytest.approx(0.3) and trained[-1] == 1e-4
    assert mcc() == pytest.approx(0.2) and len(trained) == 3  # back to the earlier settings: that run again
    log = tmp_path / "s" / "runs.jsonl"
    log.write_text(log.read_text() + '{"name": "birdie", "cut')  # a record cut short by a kill
    assert mcc(["--seeds", "1"]) == pytest.approx(0.4) and len(trained) == 4  # seed 1: a new run
    assert json.loads(log.read_text().splitlines()[-1])["seed"] == 1  # the new record is a whole line of its own
    assert "not a complete record" in capsys.readouterr().out


def test_an_interrupted_build_of_the_default_suite_is_never_used(tmp_path, monkeypatch, capsys):
    """A build cut off after four of five tasks was reused as the suite; now the suite moves into place only once
    it is complete, and a folder without that record is built again."""
    evaluate = load_recipe("evaluate")
    monkeypatch.chdir(tmp_path)
    calls = []

    def write(folder, interrupt_after=None):
        for index, name in enumerate(["a", "b", "c"]):
            if interrupt_after is not None and index == interrupt_after:
                raise KeyboardInterrupt
            (folder / name).mkdir(parents=True)
            (folder / name / "test.csv").write_text("sequence,label\nACGT,0\n")

    monkeypatch.setattr(evaluate, "write_default_tasks", lambda folder: calls.append(folder) or write(folder, 2))
    args = evaluate.parse_args(["--checkpoints", "x=y"])
    with pytest.raises(KeyboardInterrupt):
        evaluate.resolve_tasks(args)
    assert not Path(evaluate.DEFAULT_TASKS_DIR).exists()  # only the .partial folder, never the suite
    monkeypatch.setattr(evaluate, "write_default_tasks", lambda folder: calls.append(folder) or write(folder))
    assert sorted(evaluate.resolve_tasks(args)) == ["a", "b", "c"] and len(calls) == 2
    assert sorted(evaluate.resolve_tasks(args)) == ["a", "b", "c"] and len(calls) == 2  # built once
    (Path(evaluate.DEFAULT_TASKS_DIR) / evaluate.SUITE_COMPLETE).unlink()  # a suite of an older version
    shutil.rmtree(Path(evaluate.DEFAULT_TASKS_DIR) / "c")
    assert sorted(evaluate.resolve_tasks(args)) == ["a", "b", "c"] and len(calls) == 3
    assert "holds no record of a finished build: building the default suite again" in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--cpu_threads", "-3"], "--cpu_threads must be a positive number of threads, got -3"),
        (["--gradient_accumulation_steps", "0"], "`gradient_accumulation_steps` must be a positive integer, got 0"),
        (["--learning_rate", "inf"], "`learning_rate` must be a finite number above 0, got inf"),
        (["--output_dir", __file__], "is a file; give a folder"),
    ],
)
def test_pretrain_refuses_settings_that_cannot_train_in_one_line(pretrain, capsys, tmp_path, argv, message):
    line = one_line_error(
        capsys, lambda a: pretrain.main(*pretrain.parse_args(a)), ["--output_dir", str(tmp_path / "o"), *argv]
    )
    assert message in line, line
    assert not (tmp_path / "o").exists() and Path(__file__).is_file()


@pytest.mark.parametrize(
    "labels, message",
    [
        (
            {"train": [1, 2, 1, 2], "dev": [1, 2], "test": [1, 2]},
            r"labels must be the integers 0 to K-1 .* found \[1, 2\]",
        ),
        ({"train": [-1, 1, -1, 1], "dev": [-1, 1], "test": [1, -1]}, r"found \[-1, 1\]; renumber them from 0"),
        ({"train": [0, 1, 0, 1], "dev": [0, 1], "test": [1, 1]}, r"test split: a single class \(1\)"),
        ({"train": [0, 0, 0, 0], "dev": [0, 1], "test": [0, 1]}, r"train split: a single class \(0\)"),
    ],
)
def test_a_task_with_labels_a_classifier_cannot_use_is_refused(tmp_path, labels, message):
    from birdie_hf.data import GenomeDataError
    from birdie_hf.evaluation.finetune import load_classification_task

    for split, values in labels.items():
        rows = "".join(f"ACGTACGTA{'ACGT'[i % 4]},{label}\n" for i, label in enumerate(values))
        (tmp_path / f"{split}.csv").write_text("sequence,label\n" + rows)
    with pytest.raises(GenomeDataError, match=message):
        load_classification_task(str(tmp_path))


def test_evaluate_refuses_a_missing_checkpoint_before_building_any_task(tmp_path, capsys, monkeypatch):
    evaluate = load_recipe("evaluate")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(evaluate, "resolve_tasks", lambda args: pytest.fail("tasks built before the check"))
    line = one_line_error(
        capsys, lambda a: evaluate.main(evaluate.parse_args(a)), ["--checkpoints", "birdie@42=outputs/missing"]
    )
    assert "outputs/missing" in line


def test_evaluate_takes_a_yaml_config_and_documents_every_option(tmp_path, capsys):
    evaluate = load_recipe("evaluate")
    config = tmp_path / "eval.yaml"
    config.write_text(
        "checkpoints: [birdie@42=a, ntp@42=b]\nbaseline: ntp\nrandom_init_seeds: [42]\nn_resamples: 500\n"
    )
    args = evaluate.parse_args(["--config", str(config), "--n_resamples", "100"])
    assert args.checkpoints == ["birdie@42=a", "ntp@42=b"] and args.baseline == ["ntp"]
    assert args.random_init_seeds == [42] and args.n_resamples == 100  # the command line wins over the file
    line = one_line_error(capsys, lambda a: evaluate.main(evaluate.parse_args(a)), ["--tasks_dir", "x"])
    assert line == "error: --checkpoints is required: one or more NAME=PATH pairs."
    config.write_text("checkpoints: [a=b]\nreadouts: [probes, zero-shot]\n")
    line = one_line_error(capsys, lambda a: evaluate.main(evaluate.parse_args(a)), ["--config", str(config)])
    assert "readouts" in line and "zero-shot" in line
    with pytest.raises(SystemExit):
        evaluate.parse_args(["--help"])
    shown = capsys.readouterr().out
    for option in ("--checkpoints", "--readings", "--finetune_patience", "--zero_shot_sites", "--config"):
        block = shown[shown.index(option + " ") :].split("\n  --")[0]
        assert len(block.split()) > 3, f"{option} has no help"


def test_finetune_takes_a_yaml_config_and_the_trainer_flags_users_expect(tmp_path):
    finetune = load_recipe("finetune")
    config = tmp_path / "ft.yaml"
    config.write_text(
        "model_name_or_path: outputs/birdie\ntask: tasks/gene_strand\noutput_dir: outputs/ft\nlora_r: 8\n"
        "gradient_accumulation_steps: 4\nbf16: true\nreport_to: tensorboard\n"
    )
    args = finetune.parse_args(["--config", str(config), "--lora_r", "2", "--no-prefix_prompt"])
    assert (args.model_name_or_path, args.task, args.output_dir) == (
        "outputs/birdie",
        "tasks/gene_strand",
        "outputs/ft",
    )
    assert args.lora_r == 2 and args.gradient_accumulation_steps == 4  # the flag wins over the file
    assert args.bf16 is True and args.report_to == "tensorboard" and args.prefix_prompt is False
    with pytest.raises(ValueError, match="--task, --output_dir required"):
        finetune.parse_args(["--model_name_or_path", "x"])
