"""The pre-registered experiment's runner (benchmarks/birdie_dna_experiment.py) gives every arm the same compute."""

from __future__ import annotations

import importlib.util
import json
import logging
import math
import sys

import pytest
import torch
from testing_utils import REPO, load_recipe


@pytest.fixture(scope="module")
def runner():
    spec = importlib.util.spec_from_file_location(
        "birdie_dna_experiment", REPO / "benchmarks" / "birdie_dna_experiment.py"
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


class _Done:
    returncode = 0

    def __init__(self, command, **kwargs):
        self.command = command

    def poll(self):
        return 0


@pytest.mark.parametrize("scale", ["tiny", "birdiedna"])
def test_every_arm_gets_the_same_geometry_budget_and_steps(runner, tmp_path, monkeypatch, scale):
    launched = []
    monkeypatch.setattr(runner.subprocess, "Popen", lambda command, **kw: launched.append(command) or _Done(command))
    monkeypatch.setattr(runner.time, "sleep", lambda seconds: None)
    genome = tmp_path / "g.fa"
    genome.write_text(">r\nACGT\n")
    argv = ["train", "--jobs", "3", "--scale", scale, "--output_root", str(tmp_path / "exp"), "--genomes", str(genome)]
    assert runner.main(argv) == 0
    assert len(launched) == len(runner.ARMS) * len(runner.SEEDS)
    pretrain = load_recipe("pretrain")
    steps = set()
    for command in launched:
        _, args = pretrain.parse_args(command[2:])
        steps.add((args.max_steps, args.example_length, args.max_length, args.per_device_train_batch_size))
        assert args.seed in runner.SEEDS and str(genome) in command
    budget = runner.SCALES[scale][1]
    ((max_steps, example_length, _, batch),) = steps  # one geometry and one step count for all 12 runs
    assert max_steps == -(-budget // (example_length * batch))
    presets = {tuple(c[c.index("--preset") + 1 : c.index("--preset") + 2]) for c in launched if "--preset" in c}
    assert presets == {("paper",), ("dna",)}


def test_finished_runs_are_skipped_and_summarised(runner, tmp_path, monkeypatch, capsys):
    folder = runner.run_dir(tmp_path, "ntp", 42)
    folder.mkdir(parents=True)
    (folder / "model.safetensors").write_bytes(b"")
    (folder / "train_results.json").write_text('{"train_runtime": 12.5, "global_step": 9}')
    (folder / "mixture_trajectory.json").write_text(
        '{"evaluations": [{"step": 9, "losses": {"next_token_prediction": 1.3}, "decision": "keep"}],'
        ' "compute": {"entries": {"next_token_prediction": {"model_token_share": 1.0}}}}'
    )
    (folder / "held_out_next_base.md").write_text(
        "| model | nats |\n|---|---|\n| this model (read left to right) | 1.3100 |\n| base composition (order 0) | 1.3829 |\n"
    )
    monkeypatch.setattr(runner.subprocess, "Popen", lambda *a, **k: pytest.fail("a finished run was started again"))
    argv = ["--output_root", str(tmp_path), "--arms", "ntp", "--seeds", "42"]
    assert runner.main(["train", *argv]) == 0
    assert runner.main(["summarise", *argv]) == 0
    assert "| ntp | 42 | 1.3100 | 1.3829 | - | 100.0% | 0 / 0 / 0 | 9 | 12 |" in capsys.readouterr().out
    (folder / "held_out_next_base.md").write_text(
        "| model | nats |\n|---|---|\n| this model (read left to right) | 1.3830 |\n| base composition (order 0) | 1.3829 |\n"
    )
    assert runner.main(["summarise", *argv]) == 0
    assert "| ntp | 42 | 1.3830 (composition plateau) |" in capsys.readouterr().out


def _difference(readout, reference, reading, estimate, decision):
    interval = {"estimate": estimate, "low": estimate - 0.01, "high": estimate + 0.01, "confidence": 0.95}
    return {
        "readout": readout,
        "reference": reference,
        "reading": reading,
        "difference": interval,
        "decision": decision,
    }


@pytest.mark.parametrize(
    "decisions, ntp_sees, verdict",
    [
        (["better", "better", "better", "inconclusive", "inconclusive"], True, "Birdie helps at this scale"),
        (["better", "better", "better", "worse", "inconclusive"], True, "no detectable difference at this scale"),
        (["worse", "worse", "worse", "inconclusive", "inconclusive"], True, "Birdie hurts at this scale"),
        (["better", "better", "inconclusive", "inconclusive", "inconclusive"], True, "no detectable difference"),
        (["better", "better", "better", "inconclusive", "inconclusive"], False, "uninterpretable: ntp beats"),
    ],
)
def test_the_pre_registered_rule_counts_tasks_as_written(runner, decisions, ntp_sees, verdict):
    tasks = {}
    for i, (task, decision) in enumerate(zip(runner.PRIMARY_TASKS, decisions)):
        differences = [
            _difference("birdie_dna", "ntp", "causal", 0.05, decision),
            _difference("birdie_dna", "ntp", "bidirectional", 0.5, "better"),  # another reading never counts
            _difference("ntp", "random-init", "causal", 0.1, "better" if i and ntp_sees else "inconclusive"),
            _difference("birdie_dna", "random-init", "causal", 0.1, "inconclusive"),
        ]
        tasks[task] = {"differences": differences}
    got, rows = runner.primary_decision({"tasks": tasks})
    assert got.startswith(verdict)
    assert rows[0]["beat_random_init"] == []
    with pytest.raises(SystemExit, match="the rule counts the tasks"):
        runner.primary_decision({"tasks": {**tasks, "promoter_all": tasks["gene_strand"]}})


def test_protocol_v1_pins_the_settings_of_its_time_and_v2_trains_with_the_defaults(runner, tmp_path, monkeypatch):
    launched = []
    monkeypatch.setattr(runner.subprocess, "Popen", lambda command, **kw: launched.append(command) or _Done(command))
    monkeypatch.setattr(runner.time, "sleep", lambda seconds: None)
    genome = tmp_path / "g.fa"
    genome.write_text(">r\nACGT\n")
    pretrain = load_recipe("pretrain")
    settings = {}
    for protocol in ("v1", "v2"):
        launched.clear()
        argv = ["train", "--protocol", protocol, "--arms", "ntp", "--seeds", "42", "--genomes", str(genome)]
        assert runner.main(argv + ["--output_root", str(tmp_path / protocol)]) == 0
        script_args, args = pretrain.parse_args(launched[0][2:])
        settings[protocol] = (script_args.tie_word_embeddings, args.warmup_steps, args.learning_rate)
    assert settings == {"v1": (True, 15, 2e-3), "v2": (False, 0.1, 2e-3)}


def _finished_run(runner, root, health):
    folder = runner.run_dir(root, "birdie_dna", 43)
    folder.mkdir(parents=True)
    (folder / "model.safetensors").write_bytes(b"")
    (folder / "train_results.json").write_text('{"train_runtime": 12.5, "global_step": 9}')
    (folder / "held_out_next_base.md").write_text(  # the whole held-out split says: below the composition
        "| model | nats |\n|---|---|\n| this model (read left to right) | 1.3500 |\n| base composition (order 0) | 1.3829 |\n"
    )
    (folder / "mixture_trajectory.json").write_text(
        json.dumps({"evaluations": [{"step": 9, "losses": {"x": 1.3}, "decision": "keep"}], "health": health})
    )


def test_summarise_flags_a_run_from_its_health_record(runner, tmp_path, capsys):
    argv = ["summarise", "--arms", "birdie_dna", "--seeds", "43"]
    _finished_run(runner, tmp_path / "stuck", {"status": "at_composition", "last": None, "first_below": None})
    assert runner.main(argv + ["--output_root", str(tmp_path / "stuck")]) == 0
    assert "| birdie_dna | 43 | 1.3500 (composition plateau) |" in capsys.readouterr().out
    _finished_run(runner, tmp_path / "fine", {"status": "learning", "last": None, "first_below": 9})
    assert runner.main(argv + ["--output_root", str(tmp_path / "fine")]) == 0
    assert "| birdie_dna | 43 | 1.3500 |" in capsys.readouterr().out


def test_the_health_command_reads_every_run_and_resumes(runner, tmp_path, capsys):
    genome = str(REPO / "birdie_hf" / "genomes" / "bacterial_contigs.fna.gz")
    argv = ["health", "--arms", "ntp", "--seeds", "42", "--genomes", genome, "--output_root", str(tmp_path)]
    argv += ["--max_tokens", "40000", "--every", "5", "--stop_fraction", "0.5", "--threads", "1"]
    level, threads = logging.getLogger("birdie_hf").level, torch.get_num_threads()
    assert runner.main(argv) == 0
    records = [json.loads(line) for line in (tmp_path / "health.jsonl").read_text().splitlines()]
    steps = -(-40000 // (272 * 8))  # the protocol's geometry: examples of 272 tokens, 8 windows per step
    assert [r["step"] for r in records] == [5, math.ceil(0.5 * steps)] and records[-1]["last"]
    assert {"next_base_loss", "composition_loss", "constant_fraction", "base_embedding_cosine"} <= set(records[0])
    out = capsys.readouterr().out
    assert "| v2 | ntp | 42 |" in out and "| v2 | ntp | 1 |" in out  # the run's row and the arm's count
    assert logging.getLogger("birdie_hf").level == level and torch.get_num_threads() == threads  # put back
    assert runner.main(argv) == 0  # measured already: skipped
    assert "already measured, skipped" in capsys.readouterr().out
    assert len((tmp_path / "health.jsonl").read_text().splitlines()) == len(records)
    # a run cut off after its first reading: its reading is dropped and the run measured again, whole
    (tmp_path / "health.jsonl").write_text(json.dumps(records[0]) + "\n")
    assert runner.main(argv) == 0
    again = [json.loads(line) for line in (tmp_path / "health.jsonl").read_text().splitlines()]
    assert [r["step"] for r in again] == [r["step"] for r in records] and again[-1]["last"]


def small_tasks(root, rng_seed=0):
    """Two tiny tasks (GC-rich vs AT-rich windows; a planted motif) with groups, as the suite writes them."""
    import numpy as np

    rng = np.random.default_rng(rng_seed)
    for task, make in (
        ("gc", lambda y: "".join(rng.choice(list("GGCCAT") if y else list("AATTCG"), 60))),
        (
            "motif",
            lambda y: (
                "".join(rng.choice(list("ACGT"), 28))
                + ("TATAAA" if y else "GCGCGC")
                + "".join(rng.choice(list("ACGT"), 26))
            ),
        ),
    ):
        folder = root / task
        folder.mkdir(parents=True)
        for split, count in (("train", 80), ("dev", 40), ("test", 60)):
            rows = [f"{make(i % 2)},{i % 2},b{i // 6}" for i in range(count)]
            (folder / f"{split}.csv").write_text("sequence,label,group\n" + "\n".join(rows) + "\n")
    return root


@pytest.mark.slow
def test_lease_smoke_runs_protocol_v2_end_to_end(runner, tmp_path, capsys, shared_dir):
    """`lease --smoke`: throughput measured, steps planned by the rule, every arm trained, read with controls and
    baselines, the rule applied, the zero-shot read-outs after the verdict, at most 8 files written, predictions kept
    for intervals off the machine."""
    from birdie_hf.data import default_genome_path

    tasks = small_tasks(tmp_path / "tasks")
    runner.copy_heldout_genomes(shared_dir, tmp_path / "heldout")  # found beside tasks/, as prepare_lease writes it
    out = tmp_path / "lease"
    status = runner.main(
        ["lease", "--smoke", "--seeds", "42", "--budget_s", "900", "--readout_reserve_s", "60", "--probe_steps", "6",
         "--n_resamples", "100", "--tasks_dir", str(tasks), "--genomes", default_genome_path(), "--output_dir", str(out)]
    )  # fmt: skip
    assert status == 0
    files = sorted(p.name for p in out.iterdir() if p.is_file())
    assert files == [
        "lease.json", "lease.log", "lease.md", "probe_results.json", "probe_results.png", "zero_shot.json",
        "zero_shot.png",
    ]  # fmt: skip
    record = json.loads((out / "lease.json").read_text())
    plan = record["plan"]
    assert plan["steps_per_run"] * plan["tokens_per_step"] == plan["tokens_per_run"] <= 20_000
    assert [(r["arm"], r["status"]) for r in record["training"]] == [
        ("ntp", "trained"), ("birdie_paper", "trained"), ("birdie_dna", "trained"), ("dna_static", "trained")
    ]  # fmt: skip
    assert {r["steps"] for r in record["training"]} == {plan["steps_per_run"]}  # equal steps and tokens for every arm
    assert record["verdict"].split(" (")[0] in {
        "Birdie helps at this scale", "Birdie hurts at this scale", "no detectable difference at this scale",
    } or record["verdict"].startswith("uninterpretable")  # fmt: skip
    results = json.loads((out / "probe_results.json").read_text())
    task = results["tasks"]["motif"]
    assert len(task["test_labels"]) == 60 and task["test_groups"][0] == "b0"
    readouts = {(row["readout"], row["reading"]) for row in task["rows"]}
    assert {
        ("birdie_dna", "causal"),
        ("random-init", "bidirectional"),
        ("one-hot LR", "-"),
        ("6-mer LR", "-"),
    } <= readouts
    assert all(len(row["test_predictions"]) == 60 for row in task["rows"])
    assert "Verdict (pre-registered rule)" in (out / "lease.md").read_text()
    assert "plan:" in (out / "lease.log").read_text()
    # The zero-shot read-outs: every trained model and its control, both flanks and the left flank, beside the
    # readers without a model; the verdict was written before they began and they do not change it.
    assert record["zero_shot"]["status"] == "read"
    assert record["zero_shot"]["sources"] == ["s_aureus_n315", "h_pylori_els37", "v_cholerae_h1"]
    zero_shot = json.loads((out / "zero_shot.json").read_text())
    rows = {(row["readout"], row["reading"]) for row in zero_shot["tasks"]["masked_base_nll"]["rows"]}
    assert {("birdie_dna", "bidirectional, single gap"), ("birdie_dna", "causal, site"), ("ntp", "causal, site"),
            ("random-init", "causal, site"), ("composition (window)", "-"), ("markov-2", "-")} <= rows  # fmt: skip
    assert ("ntp", "bidirectional, single gap") not in rows  # next-token prediction never saw an infilling prompt
    assert ("random-init", "bidirectional, single gap") in rows  # every reading has its control
    assert {"stop_gain_vs_synonymous", "missense_vs_synonymous"} <= set(zero_shot["tasks"])
    assert "Zero-shot read-outs (secondary: not part of the verdict)" in (out / "lease.md").read_text()


def test_lease_that_cannot_fit_the_protocol_says_so_and_trains_nothing(runner, tmp_path):
    from birdie_hf.data import default_genome_path
    from birdie_hf.evaluation import HELD_OUT_GENOMES

    tasks = small_tasks(tmp_path / "tasks")
    heldout = tmp_path / "elsewhere"  # --heldout_dir names it; nothing reads these files before the plan
    heldout.mkdir()
    for name in HELD_OUT_GENOMES:
        (heldout / f"{name}.fa.gz").touch()
        (heldout / f"{name}.prodigal.gff.gz").touch()
    out = tmp_path / "lease"
    status = runner.main(
        ["lease", "--smoke", "--seeds", "42", "--budget_s", "0", "--readout_reserve_s", "0", "--probe_steps", "4",
         "--tasks_dir", str(tasks), "--heldout_dir", str(heldout), "--genomes", default_genome_path(),
         "--output_dir", str(out)]
    )  # fmt: skip
    assert status == 3
    record = json.loads((out / "lease.json").read_text())
    assert record["verdict"].startswith("not run: ") and "training" not in record
    assert "not run: " in (out / "lease.md").read_text()


def test_lease_reads_a_model_trained_with_flex_attention_through_sdpa(runner):
    """The GPU fast path trains with flex attention; the read-outs pass dense prefix-LM masks, read by sdpa, with the
    same outputs as the model had (a CPU stand-in: flex attention cannot train here, but a model can be built with it)."""
    import torch

    from birdie_hf import build_dna_tokenizer, packed_attention_mask
    from birdie_hf.modeling import build_causal_lm, default_model_config

    tiny_config = default_model_config(
        build_dna_tokenizer(), hidden_size=16, num_hidden_layers=1, num_attention_heads=2
    )
    model = build_causal_lm(tiny_config, attn_implementation="flex_attention", seed=0)
    reference = build_causal_lm(tiny_config, attn_implementation="sdpa", seed=0).eval()
    read = runner.for_reading(model)
    assert read.config._attn_implementation == "sdpa" and not read.training
    ids = torch.randint(0, tiny_config.vocab_size, (2, 16))
    # A prefix of 6 tokens read both ways, then causally; the second row ends in padding (a segment of its own).
    segments = torch.tensor([[0] * 16, [0] * 12 + [-1] * 4])
    prefix = torch.arange(16).expand(2, 16) < 6
    mask = packed_attention_mask(segments, prefix)
    with torch.no_grad():
        torch.testing.assert_close(read(input_ids=ids).logits, reference(input_ids=ids).logits)
        torch.testing.assert_close(
            read(input_ids=ids, attention_mask=mask).logits, reference(input_ids=ids, attention_mask=mask).logits
        )


def test_a_run_whose_gpu_fast_path_fails_trains_once_more_on_the_plain_step(runner, monkeypatch, tmp_path):
    """The lease's and the learning-rate check's runs: a fast-path failure (compilation, flex attention) on the lent
    machine costs one try, not the call; a divergence is the run's own result and is raised."""
    from birdie_hf.trainer import TrainingDivergedError

    tried = []

    def train_one(shape, run_args, tokenizer, data, deadline, gate_fraction):
        tried.append((run_args.fast_path, shape.attn_implementation, deadline))
        if run_args.fast_path == "on":
            raise failure
        return "model", {"fast_path": run_args.fast_path}

    monkeypatch.setattr(runner, "_train_one", train_one)
    monkeypatch.setattr("torch._dynamo.reset", lambda: tried.append("reset"))
    fast = [*runner.SMOKE_ARGS, "--fast_path", "on", "--attn_implementation", "flex_attention"]
    failure = RuntimeError("BackendCompilerFailed: inductor")
    model, record, fell_back = runner._train_or_fall_back(
        runner.SMOKE_SHAPE, fast, "ntp", 42, 3, tmp_path, None, None, lambda: len(tried), 1.0
    )
    assert (model, record, fell_back) == ("model", {"fast_path": "off"}, True)
    # Each try takes its deadline as it starts: the plain step's is not what the failed try left of it.
    assert tried == [("on", "flex_attention", 0), "reset", ("off", "sdpa", 2)]
    tried.clear()
    args = (runner.SMOKE_SHAPE, runner.SMOKE_ARGS, "ntp", 42, 3, tmp_path, None, None, lambda: 0.0, 1.0)
    assert runner._train_or_fall_back(*args)[2] is False and tried == [
        ("off", "auto", 0.0)
    ]  # the CPU's plain step: nothing to fall back from
    failure = TrainingDivergedError("ntp: the training loss became nan at step 3")
    with pytest.raises(TrainingDivergedError):
        runner._train_or_fall_back(runner.SMOKE_SHAPE, fast, "ntp", 42, 3, tmp_path, None, None, lambda: 0.0, 1.0)


def test_a_failing_zero_shot_read_out_is_recorded_not_raised(runner, monkeypatch):
    """The verdict is on disk before the zero-shot read-outs begin: their failure (or their deadline) becomes their
    status, the lease still ends normally, and it says it began before it did."""
    import argparse
    import time
    from types import SimpleNamespace

    import birdie_hf.evaluation.zero_shot as zero_shot
    from birdie_hf.evaluation import Arm

    model = SimpleNamespace(config=SimpleNamespace(birdie_objectives=["infilling"]))
    arms = [Arm("birdie_dna", "42", model, None)]
    args = argparse.Namespace(smoke=True, n_resamples=10, genomes=[])

    def fail(*args, **kwargs):
        raise zero_shot.ReadoutDeadlineError("the zero-shot read-out reached its deadline with 2 of 3 models ...")

    monkeypatch.setattr(zero_shot, "run_zero_shot", fail)
    began = []
    results, status = runner._zero_shot_readout(arms, [], args, None, time.time() + 600, began.append)
    assert results is None and status["status"].startswith("not read: ReadoutDeadlineError: the zero-shot read-out")
    assert began == [{"status": began[0]["status"]}] and began[0]["status"].startswith("started with 5")
    # Too little time left: not started at all.
    args.smoke, began = False, []
    results, status = runner._zero_shot_readout(arms, [], args, None, time.time() + 30, began.append)
    assert results is None and not began and status["status"].startswith("not read: 10 s were left, under the 40 s")


def test_lease_without_the_held_out_genomes_stops_before_training(runner, tmp_path):
    from birdie_hf.data import default_genome_path

    tasks = small_tasks(tmp_path / "tasks")
    message = r"--heldout_dir .*heldout.* lacks s_aureus_n315.fa.gz, a held-out genome of the zero-shot read-outs"
    with pytest.raises(SystemExit, match=message) as stop:
        runner.main(
            ["lease", "--smoke", "--seeds", "42", "--tasks_dir", str(tasks), "--genomes", default_genome_path(),
             "--output_dir", str(tmp_path / "lease")]
        )  # fmt: skip
    assert "\n" not in str(stop.value)
    assert not (tmp_path / "lease" / "lease.json").exists()  # nothing trained, nothing planned


@pytest.mark.slow
def test_lr_check_smoke_trains_every_arm_at_every_rate_and_applies_the_rule(runner, tmp_path, capsys):
    """`lr_check --smoke`: next-token prediction and the `dna` mixture at each rate, the same steps each, the held-out
    next-base loss against the composition's, and the rate the committed rule picks."""
    from birdie_hf.data import default_genome_path

    out = tmp_path / "lr"
    status = runner.main(
        ["lr_check", "--smoke", "--seeds", "42", "--budget_s", "600", "--genomes", default_genome_path(),
         "--output_dir", str(out)]
    )  # fmt: skip
    assert status == 0
    record = json.loads((out / "lr_check.json").read_text())
    assert [(r["arm"], r["learning_rate"]) for r in record["runs"]] == [
        ("ntp", 1e-3), ("ntp", 2e-3), ("birdie_dna", 1e-3), ("birdie_dna", 2e-3)
    ]  # fmt: skip
    for run in record["runs"]:
        assert run["steps"] == run["planned_steps"] == 6 and run["tokens"] > 0
        assert run["heldout_next_base_loss"] > 0 and run["composition_loss"] > 0
    worse = {
        rate: max(r["heldout_next_base_loss"] for r in record["runs"] if r["learning_rate"] == rate)
        for rate in (1e-3, 2e-3)
    }
    assert record["chosen"] == min(worse, key=worse.get)
    assert "| ntp | 0.001 | 6 |" in (out / "lr_check.md").read_text()


def test_lr_check_rule_ignores_rates_an_arm_did_not_finish(runner):
    runs = [
        {"arm": "ntp", "learning_rate": 1e-3, "steps": 10, "planned_steps": 10, "heldout_next_base_loss": 1.30},
        {"arm": "birdie_dna", "learning_rate": 1e-3, "steps": 10, "planned_steps": 10, "heldout_next_base_loss": 1.34},
        {"arm": "ntp", "learning_rate": 2e-3, "steps": 10, "planned_steps": 10, "heldout_next_base_loss": 1.20},
        {"arm": "birdie_dna", "learning_rate": 2e-3, "steps": 7, "planned_steps": 10, "heldout_next_base_loss": 1.10},
        {"arm": "ntp", "learning_rate": 4e-3, "steps": 10, "planned_steps": 10, "heldout_next_base_loss": 1.25},
        {"arm": "birdie_dna", "learning_rate": 4e-3, "steps": 10, "planned_steps": 10, "heldout_next_base_loss": 1.32},
    ]
    # 2e-3 has the lowest losses but a run cut short; of the others, 4e-3's worse arm (1.32) beats 1e-3's (1.34).
    assert runner._chosen_rate(runs, (1e-3, 2e-3, 4e-3)) == 4e-3
    assert runner._chosen_rate(runs[2:4], (2e-3,)) is None
