"""The evaluation instrument: gene-call tasks, probes, controls, statistics and the evaluate recipe."""

import copy
import csv
import gzip
import json

import numpy as np
import pytest
import torch
from sklearn.metrics import matthews_corrcoef as sklearn_mcc
from testing_utils import gff_line, load_recipe, one_line_error, synthetic_genome

from birdie_hf import build_causal_lm, default_model_config
from birdie_hf.evaluation import (
    GENOME_TASK_NAMES,
    GenomeTaskConfig,
    GFFFormatError,
    build_genome_tasks,
    iter_gene_calls,
    shared_genome_sources,
    write_genome_tasks,
)
from birdie_hf.evaluation.controls import markov_classifier, random_init_like
from birdie_hf.evaluation.instrument import (
    Arm,
    ProbeSuiteConfig,
    TaskDataError,
    load_task,
    results_markdown,
    run_probe_suite,
    write_results,
)
from birdie_hf.evaluation.leakage import leakage_report
from birdie_hf.evaluation.probes import SequenceCharacterError, extract_features, fit_probe
from birdie_hf.evaluation.statistics import (
    GroupBootstrap,
    Interval,
    bootstrap_mcc,
    decide,
    matthews_corrcoef,
    seed_interval,
)
from birdie_hf.modeling import cast_parameters
from birdie_hf.vocabulary import reverse_complement


# -- gene calls -----------------------------------------------------------------------------------------------------


def test_gene_calls_are_zero_based_half_open_with_strand_and_partial_flags(tmp_path):
    path = tmp_path / "g.gff.gz"
    with gzip.open(path, "wt") as handle:
        handle.write("##gff-version  3\n# Sequence Data: seqnum=1\n")
        handle.write(gff_line("chr", 10, 21, "+"))
        handle.write(gff_line("chr", 31, 60, "-", partial="10"))
        handle.write("chr\tx\tgene\t1\t5\t.\t+\t.\tID=g\n")  # not a CDS: skipped
    genes = list(iter_gene_calls(path))
    assert [(g.start, g.end, g.strand, g.partial) for g in genes] == [(9, 21, 1, False), (30, 60, -1, True)]
    assert genes[0].start_codon == 9 and genes[0].stop_codon == 18
    assert genes[1].start_codon == 57 and genes[1].stop_codon == 30


@pytest.mark.parametrize(
    "line, message",
    [
        ("chr\tx\tCDS\t10\n", "expected 9 tab-separated"),
        ("chr\tx\tCDS\tten\t20\t.\t+\t0\t\n", "not integers"),
        ("chr\tx\tCDS\t30\t20\t.\t+\t0\t\n", "invalid coordinates"),
        ("chr\tx\tCDS\t10\t20\t.\t?\t0\t\n", "strand must be"),
    ],
)
def test_bad_gff_lines_are_named_by_file_and_line(tmp_path, line, message):
    path = tmp_path / "bad.gff"
    path.write_text("# header\n" + line)
    with pytest.raises(GFFFormatError, match=rf"bad.gff:2: .*{message}"):
        list(iter_gene_calls(path))


# -- genome tasks ---------------------------------------------------------------------------------------------------


def test_genome_tasks_have_exact_labels_balanced_classes_and_disjoint_splits(tmp_path):
    config = GenomeTaskConfig(window_length=40, block_size=3000, examples_per_class=(500, 500, 500), seed=1)
    suite = build_genome_tasks([synthetic_genome(tmp_path)], config)
    assert set(suite.tasks) == set(GENOME_TASK_NAMES)
    for task, splits in suite.tasks.items():
        seen = {}
        for split, rows in splits.items():
            labels = [label for _, label, _ in rows]
            assert labels.count(0) == labels.count(1) > 0, (task, split)
            assert all(len(s) == 40 and set(s) <= set("ACGT") for s, _, _ in rows)
            for sequence, _, group in rows:
                canonical = min(sequence, reverse_complement(sequence))
                assert seen.setdefault(canonical, split) == split, f"{task}: a sequence is in two splits"
                seen[canonical] = split
        groups = {split: {g for _, _, g in rows} for split, rows in splits.items()}
        assert not (groups["train"] & groups["test"]) and not (groups["dev"] & groups["test"])
    # Codon tasks: the triplet at window_length // 2 - 1 is what the label says, read on the gene's strand.
    for sequence, label, _ in (row for rows in suite.tasks["start_codon"].values() for row in rows):
        codon = sequence[19:22]
        assert codon == "ATG" if label else codon in {"ATG", "GTG", "TTG"}
    for sequence, label, _ in (row for rows in suite.tasks["stop_codon"].values() for row in rows):
        assert sequence[19:22] == "TAA" if label else sequence[19:22] in {"TAA", "TAG", "TGA"}
    counts = suite.metadata["counts"]["gene_strand"]
    assert counts["test"]["examples"] == len(suite.tasks["gene_strand"]["test"])


def test_genome_tasks_are_reproducible_and_written_with_groups(tmp_path):
    source = synthetic_genome(tmp_path)
    config = GenomeTaskConfig(window_length=40, block_size=3000)
    first, second = build_genome_tasks([source], config), build_genome_tasks([source], config)
    assert first.tasks == second.tasks
    write_genome_tasks(first, tmp_path / "tasks")
    with open(tmp_path / "tasks" / "gene_strand" / "test.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == ["sequence", "label", "group"]
    assert [(r["sequence"], int(r["label"]), r["group"]) for r in rows] == first.tasks["gene_strand"]["test"]
    assert json.loads((tmp_path / "tasks" / "suite.json").read_text())["counts"] == first.metadata["counts"]
    loaded = load_task(tmp_path / "tasks" / "gene_strand")
    assert loaded["test"].groups == [g for _, _, g in first.tasks["gene_strand"]["test"]]


@pytest.mark.parametrize(
    "extra_call, message",
    [
        (("plasmid9", 1, 30, "+"), "plasmid9"),  # a record the FASTA lacks
        (("rec", 10, 10_000_000, "+"), "ends at 10000000, past the record's .* another assembly"),
    ],
)
def test_gene_calls_that_do_not_fit_the_fasta_are_refused(tmp_path, extra_call, message):
    source = synthetic_genome(tmp_path)
    with open(source.gff, "a") as handle:
        handle.write(gff_line(*extra_call))
    with pytest.raises(ValueError, match=message):
        build_genome_tasks([source], GenomeTaskConfig(window_length=40, block_size=3000))


def test_default_suite_on_shared_genomes_is_large_and_unseen_by_the_default_corpus(shared_dir, tmp_path):
    suite = build_genome_tasks(shared_genome_sources(shared_dir))
    for task in GENOME_TASK_NAMES:
        assert len(suite.tasks[task]["test"]) >= 2000, task
        assert suite.metadata["counts"][task]["test"]["groups"] >= 30
    write_genome_tasks(suite, tmp_path)
    corpus = shared_dir / "data" / "genomes" / "bacterial_contigs.fna"
    assert leakage_report(str(tmp_path), [str(corpus)])["total_occurring"] == 0


def test_rows_repeated_across_a_tasks_splits_are_counted_on_either_strand(tmp_path, capsys):
    from birdie_hf.evaluation.leakage import split_overlap, split_overlap_warning

    rng = np.random.default_rng(6)
    bases = ["".join(rng.choice(list("ACGT"), 40)) for _ in range(6)]
    rows = {
        "train": [bases[0], bases[1]],
        "dev": [bases[2], reverse_complement(bases[0])],  # 1 dev row in train (other strand)
        "test": [bases[0].lower(), bases[2], bases[3], bases[4]],  # 1 in train (case ignored), 2 in dev
    }
    for split, sequences in rows.items():
        lines = ["sequence,label"] + [f"{seq},{i % 2}" for i, seq in enumerate(sequences)]
        (tmp_path / f"{split}.csv").write_text("\n".join(lines) + "\n")
    overlap = split_overlap(str(tmp_path))
    assert overlap == {"dev in train": 1, "test in train": 1, "test in dev": 2}
    assert split_overlap(str(tmp_path), both_strands=False)["dev in train"] == 0
    assert split_overlap_warning("toy", overlap) == (
        "WARNING: task 'toy': 1 dev rows repeat a sequence of train, 1 test rows repeat a sequence of train, 2 test "
        "rows repeat a sequence of dev (either strand); scores on those rows measure memorisation."
    )
    assert split_overlap_warning("toy", {"test in train": 0}) is None


def test_the_leakage_report_counts_the_rows_it_could_not_check(tmp_path):
    rng = np.random.default_rng(7)
    genome = "".join(rng.choice(list("ACGT"), 500))
    (tmp_path / "corpus.fa").write_text(f">rec\n{genome}\n")
    task = tmp_path / "toy"
    task.mkdir()
    test = [genome[10:50], genome[10:30], genome[100:120] + "N" + genome[121:160], genome[200:260]]
    (task / "test.csv").write_text("sequence,label\n" + "".join(f"{s},{i % 2}\n" for i, s in enumerate(test)))
    counts = leakage_report(str(task), [str(tmp_path / "corpus.fa")], splits=("test",))["tasks"]["toy"]["test"]
    assert counts == {"sequences": 4, "checked": 2, "unchecked": 2, "occurring": 2, "fraction": 1.0}


def test_drop_leaked_sequences_removes_exactly_the_rows_found_in_the_corpus_on_either_strand(tmp_path):
    from birdie_hf.evaluation.leakage import drop_leaked_sequences

    rng = np.random.default_rng(5)
    random_bases = lambda n: "".join(rng.choice(list("ACGT"), n))  # noqa: E731
    genome = random_bases(2000)
    seen, seen_rc = genome[100:160], reverse_complement(genome[900:960])
    unseen = [random_bases(60) for _ in range(4)]
    (tmp_path / "corpus.fa").write_text(f">rec\n{genome}\n")
    task = tmp_path / "suite" / "toy"
    task.mkdir(parents=True)
    rows = {"train": [seen, unseen[0]], "dev": [unseen[1], seen_rc], "test": [seen, unseen[2], unseen[3]]}
    for split, sequences in rows.items():
        lines = ["sequence,label"] + [f"{seq},{i % 2}" for i, seq in enumerate(sequences)]
        (task / f"{split}.csv").write_text("\n".join(lines) + "\n")
    (tmp_path / "suite" / "suite.json").write_text("{}")
    dropped = drop_leaked_sequences(str(tmp_path / "suite"), [str(tmp_path / "corpus.fa")], str(tmp_path / "out"))
    assert dropped == {"toy": {"dev": 1, "test": 1}}
    from birdie_hf.evaluation.task_files import read_task_split

    out = tmp_path / "out" / "toy"
    assert read_task_split(out / "dev.csv")[0] == [unseen[1]]
    test_sequences, test_labels, _ = read_task_split(out / "test.csv")
    assert test_sequences == [unseen[2], unseen[3]] and list(test_labels) == [1, 0]  # labels stay with their rows
    assert read_task_split(out / "train.csv")[0] == [seen, unseen[0]]  # train is copied unchanged
    assert (tmp_path / "out" / "suite.json").is_file()
    assert leakage_report(str(tmp_path / "out"), [str(tmp_path / "corpus.fa")])["total_occurring"] == 0
    with pytest.raises(ValueError, match="must differ"):
        drop_leaked_sequences(str(tmp_path / "suite"), [str(tmp_path / "corpus.fa")], str(tmp_path / "suite"))


# -- statistics -----------------------------------------------------------------------------------------------------


def test_mcc_matches_scikit_learn_for_binary_and_multiclass():
    rng = np.random.default_rng(0)
    for classes in (2, 3):
        y, p = rng.integers(0, classes, 300), rng.integers(0, classes, 300)
        p[:150] = y[:150]
        assert matthews_corrcoef(y, p) == pytest.approx(sklearn_mcc(y, p))
    assert matthews_corrcoef([0, 1, 0, 1], [1, 1, 1, 1]) == 0.0  # constant prediction: undefined, reported as 0


def test_bootstrap_interval_covers_the_true_mcc_about_95_percent_of_the_time():
    # Labels balanced, predictions correct with probability 0.75: true MCC = 0.5.
    rng = np.random.default_rng(0)
    covered = 0
    for trial in range(200):
        y = rng.integers(0, 2, 400)
        p = np.where(rng.random(400) < 0.75, y, 1 - y)
        low, high = np.percentile(GroupBootstrap(n=400, n_resamples=400, seed=trial).mcc(y, p)[1], [2.5, 97.5])
        covered += low <= 0.5 <= high
    assert 0.90 <= covered / 200 <= 0.99


def test_cluster_bootstrap_widens_the_interval_when_examples_of_a_group_agree():
    rng = np.random.default_rng(1)
    groups = np.repeat(np.arange(20), 50)
    y = rng.integers(0, 2, 1000)
    correct = np.repeat(rng.random(20) < 0.75, 50)  # whole groups right or wrong: 20 effective samples, not 1000
    p = np.where(correct, y, 1 - y)
    plain = bootstrap_mcc(y, {"a": p})["arms"]["a"]
    clustered = bootstrap_mcc(y, {"a": p}, groups=groups)["arms"]["a"]
    assert plain.estimate == clustered.estimate
    assert (clustered.high - clustered.low) > 3 * (plain.high - plain.low)


def test_paired_differences_and_the_decision_rule():
    rng = np.random.default_rng(2)
    y = rng.integers(0, 2, 2000)
    good = np.where(rng.random(2000) < 0.9, y, 1 - y)
    worse = np.where(rng.random(2000) < 0.7, y, 1 - y)
    result = bootstrap_mcc(y, {"good": good, "worse": worse, "same": good.copy()}, baseline="good")
    assert result["decisions"] == {"worse": "worse", "same": "inconclusive"}
    assert result["differences"]["same"] == Interval(0.0, 0.0, 0.0)  # paired: identical predictions, no width
    assert decide(Interval(0.1, 0.01, 0.2)) == "better" and decide(Interval(-0.1, -0.2, -0.01)) == "worse"
    with pytest.raises(ValueError, match="baseline arm 'nope'"):
        bootstrap_mcc(y, {"good": good}, baseline="nope")


def test_seed_interval_is_the_student_t_interval():
    interval = seed_interval([1.0, 2.0, 3.0])
    assert interval.estimate == 2.0
    assert interval.high - interval.estimate == pytest.approx(4.302653 / np.sqrt(3), rel=1e-5)
    with pytest.raises(ValueError, match="at least 2 seeds"):
        seed_interval([0.3])


# -- probes and controls --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_model(tokenizer):
    config = default_model_config(tokenizer, hidden_size=16, num_hidden_layers=2, num_attention_heads=2)
    return build_causal_lm(config, seed=0).eval()


def test_features_have_one_row_per_layer_and_pooling_and_ignore_padding(tiny_model, tokenizer):
    sequences = ["ACGTACGTAC", "GGGCC", "TTTTTTTTTTTTTTTTTTTT"]
    for reading in ("causal", "bidirectional"):
        together = extract_features(tiny_model, tokenizer, sequences, reading, batch_size=3, show_progress=False)
        assert together.shape == (3, 3, 2, 16) and together.dtype == np.float32
        alone = np.concatenate(
            [extract_features(tiny_model, tokenizer, [s], reading, show_progress=False) for s in sequences]
        )
        np.testing.assert_allclose(together, alone, atol=1e-5)  # right padding changes nothing
    causal = extract_features(tiny_model, tokenizer, ["ACGTA", "ACGTC"], "causal", show_progress=False)
    bidirectional = extract_features(tiny_model, tokenizer, ["ACGTA", "ACGTC"], "bidirectional", show_progress=False)
    # Layer 1 at the first base: causally it cannot see the last base; bidirectionally it does. Mean pooling over
    # 5 bases of causal states differs only through the last position; the bidirectional mean differs everywhere.
    assert not np.allclose(bidirectional[0], bidirectional[1])
    assert not np.allclose(causal[0, 1, 1], causal[1, 1, 1])  # the last base itself differs


def test_feature_extraction_names_a_bad_character(tiny_model, tokenizer):
    with pytest.raises(SequenceCharacterError, match=r"sequences\[1\] holds 'X'"):
        extract_features(tiny_model, tokenizer, ["ACGT", "ACXT"], show_progress=False)
    # An ambiguity code is not a base either (inference reads it as N; a probe's input must be what it says).
    with pytest.raises(SequenceCharacterError, match=r"sequences\[0\] holds 'r'.*\(bases: ACGNT\)"):
        extract_features(tiny_model, tokenizer, ["acgrt"], show_progress=False)
    assert extract_features(tiny_model, tokenizer, ["acgtn"], show_progress=False).shape[0] == 1  # any case


def test_probe_separates_features_that_encode_the_label_and_scores_zero_on_shuffled_labels():
    rng = np.random.default_rng(0)
    labels = {split: rng.integers(0, 2, n) for split, n in (("train", 600), ("dev", 300), ("test", 2000))}
    features = {split: rng.normal(size=(len(y), 3, 2, 8)).astype(np.float32) for split, y in labels.items()}
    encoded = {split: f.copy() for split, f in features.items()}
    for split, f in encoded.items():
        f[:, 2, 0, 5] += 4.0 * labels[split]  # layer 2, mean pooling, one dimension carries the label
    probe = fit_probe(encoded, labels)
    assert probe.test_mcc > 0.95 and (probe.layer, probe.pooling) == (2, "mean")
    assert len(probe.dev_grid) == 3 * 2 * 3
    noise = fit_probe(features, labels)
    assert abs(noise.test_mcc) < 0.08
    again = fit_probe(features, labels)
    np.testing.assert_array_equal(again.test_predictions, noise.test_predictions)  # deterministic


def test_random_init_control_matches_the_architecture_not_the_weights(tiny_model):
    control = random_init_like(tiny_model, seed=3)
    assert control.config.to_dict() == tiny_model.config.to_dict()
    assert not torch.equal(control.model.layers[0].mlp.up_proj.weight, tiny_model.model.layers[0].mlp.up_proj.weight)
    assert torch.equal(
        control.model.embed_tokens.weight, random_init_like(tiny_model, seed=3).model.embed_tokens.weight
    )
    # A control of a bf16 model: bf16 parameters, the rotary frequencies still float32 (as the model was trained).
    control = random_init_like(cast_parameters(copy.deepcopy(tiny_model), torch.bfloat16), seed=3)
    assert control.model.embed_tokens.weight.dtype == torch.bfloat16
    assert control.model.rotary_emb.inv_freq.dtype == torch.float32


def test_markov_classifier_reads_composition_and_context(random_dna):
    rng = np.random.default_rng(0)

    def make(n, seed):
        at = ["".join(rng.choice(list("AATTCG"), 60)) for _ in range(n)]
        gc = ["".join(rng.choice(list("GGCCAT"), 60)) for _ in range(n)]
        return at + gc, [0] * n + [1] * n

    result = markov_classifier(make(100, 0), make(50, 1), make(100, 2), orders=(0, 2))
    assert result["test_mcc"] > 0.95 and result["test_predictions"].shape == (200,)
    # Same composition, different order: only a context model separates "ACACAC..." from "AACCAACC...".
    periodic = (["AC" * 30] * 20 + ["AACC" * 15] * 20, [0] * 20 + [1] * 20)
    result = markov_classifier(periodic, periodic, periodic, orders=(0, 1))
    assert result["dev_by_order"][0] == 0.0 and result["order"] == 1 and result["test_mcc"] == 1.0


# -- the instrument -------------------------------------------------------------------------------------------------


def write_task(folder, rows_by_split, header=("sequence", "label", "group")):
    folder.mkdir(parents=True, exist_ok=True)
    for split, rows in rows_by_split.items():
        with open(folder / f"{split}.csv", "w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(header)
            writer.writerows(rows)
    return folder


def gc_task(random_dna, n=(60, 30, 60)):
    rng = np.random.default_rng(5)
    out = {}
    for split, count in zip(("train", "dev", "test"), n):
        rows = []
        for i in range(count):
            label = i % 2
            alphabet = list("GGCCAT") if label else list("AATTCG")
            rows.append(("".join(rng.choice(alphabet, 40)), label, f"block{i // 6}"))
        out[split] = rows
    return out


def test_probe_suite_reports_controls_intervals_and_decisions(tmp_path, tiny_model, tokenizer, random_dna):
    tasks = {"gc": load_task(write_task(tmp_path / "gc", gc_task(random_dna)))}
    arms = [Arm("birdie", "0", tiny_model, tokenizer, source="tiny")]
    config = ProbeSuiteConfig(n_resamples=200, kmer_ks=(3,), markov_orders=(0, 1))
    results = run_probe_suite(arms, tasks, config, show_progress=False)
    rows = {(r["readout"], r["reading"]) for r in results["tasks"]["gc"]["rows"]}
    assert rows == {
        ("birdie", "causal"), ("birdie", "bidirectional"), ("random-init", "causal"), ("random-init", "bidirectional"),
        ("markov", "-"), ("composition", "-"), ("3-mer LR", "-"), ("one-hot LR", "-"), ("CNN", "-"),
    }  # fmt: skip
    differences = results["tasks"]["gc"]["differences"]
    assert {(d["readout"], d["reading"], d["reference"]) for d in differences} == {
        ("birdie", "causal", "random-init"),
        ("birdie", "bidirectional", "random-init"),
    }
    for row in results["tasks"]["gc"]["rows"]:
        assert row["test"]["low"] <= row["test"]["estimate"] <= row["test"]["high"]
    assert results["tasks"]["gc"]["sizes"]["test"]["groups"] == 10
    markdown = results_markdown(results)
    assert "### gc" in markdown and "random-init" in markdown and "Decision rule" in markdown
    paths = write_results(results, tmp_path / "out")
    assert json.loads(open(paths["json"]).read())["tasks"]["gc"]["rows"]
    assert open(paths["plot"], "rb").read(4) == b"\x89PNG"


@pytest.mark.parametrize(
    "rows, message",
    [
        ({s: [("ACGT", 0, "a"), ("ACGA", 1, "b")] for s in ("train", "dev")}, "test.csv"),  # missing split
        ({s: [("ACGT", 1, "a"), ("ACGA", 1, "b")] for s in ("train", "dev", "test")}, "single class"),
    ],
)
def test_tasks_that_cannot_be_evaluated_are_named(tmp_path, rows, message):
    with pytest.raises(TaskDataError, match=message):
        load_task(write_task(tmp_path / "t", rows))


def test_task_without_a_label_column_is_refused(tmp_path):
    rows = {s: [("ACGT", "a"), ("ACGA", "b")] for s in ("train", "dev", "test")}
    with pytest.raises(TaskDataError, match=r"missing \['label'\]"):
        load_task(write_task(tmp_path / "t", rows, header=("sequence", "group")))


# -- the recipe -----------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def evaluate_recipe():
    return load_recipe("evaluate")


@pytest.fixture
def saved_checkpoint(tmp_path, tiny_model, tokenizer):
    path = tmp_path / "ckpt"
    tiny_model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def recipe_main(recipe):
    return lambda argv: recipe.main(recipe.parse_args(argv))


def test_evaluate_recipe_runs_end_to_end(evaluate_recipe, tmp_path, saved_checkpoint, random_dna, capsys):
    write_task(tmp_path / "tasks" / "gc", gc_task(random_dna))
    out = tmp_path / "out"
    results = recipe_main(evaluate_recipe)(
        ["--checkpoints", f"tiny={saved_checkpoint}", "--tasks_dir", str(tmp_path / "tasks"),
         "--n_resamples", "100", "--output_dir", str(out)]
    )  # fmt: skip
    assert results["checkpoints"] == {"tiny": str(saved_checkpoint)}
    assert (out / "probe_results.md").read_text().startswith("### gc")
    assert "test MCC [95% CI]" in capsys.readouterr().out


def test_evaluate_recipe_refuses_bad_input_in_one_line(
    evaluate_recipe, tmp_path, saved_checkpoint, random_dna, capsys
):
    tasks = tmp_path / "tasks"
    write_task(tasks / "gc", gc_task(random_dna))
    main = recipe_main(evaluate_recipe)
    base = ["--tasks_dir", str(tasks), "--output_dir", str(tmp_path / "out")]
    line = one_line_error(capsys, main, ["--checkpoints", "tiny", *base])
    assert "not name=path" in line
    classifier = tmp_path / "classifier"
    from transformers import LlamaConfig, LlamaForSequenceClassification

    LlamaForSequenceClassification(
        LlamaConfig(hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32, vocab_size=200)
    ).save_pretrained(classifier)
    capsys.readouterr()  # the save's progress bar
    line = one_line_error(capsys, main, ["--checkpoints", f"c={classifier}", *base])
    assert "not a causal LM" in line
    line = one_line_error(capsys, main, ["--checkpoints", f"t={saved_checkpoint}", *base, "--tasks", "promoters"])
    assert "promoters" in line and "gc" in line
    # A test sequence that occurs in the pre-training corpus.
    test_sequence = gc_task(random_dna)["test"][0][0]
    corpus = tmp_path / "corpus.fa"
    corpus.write_text(">c\n" + "A" * 50 + reverse_complement(test_sequence * 2) + "\n")
    line = one_line_error(
        capsys, main, ["--checkpoints", f"t={saved_checkpoint}", *base, "--pretraining_corpus", str(corpus)]
    )
    assert "overlaps pre-training" in line and "gc/test" in line
    bad = tasks / "bad"
    write_task(bad, {s: [("ACGT", 0, "a"), ("ACZT", 1, "b")] for s in ("train", "dev", "test")})
    line = one_line_error(capsys, main, ["--checkpoints", f"t={saved_checkpoint}", *base, "--tasks", "bad"])
    assert "'Z'" in line and "bad" in line


def test_nucleotide_transformer_tasks_go_through_the_same_instrument_offline(
    evaluate_recipe, tmp_path, saved_checkpoint, monkeypatch, capsys
):
    from datasets import Dataset, DatasetDict

    import birdie_hf.evaluation.finetune as finetune

    rng = np.random.default_rng(7)
    alphabets = ("AATTCG", "GGCCAT", "ACGTTT")  # three classes, as enhancers_types or splice_sites_all have

    def split(n):
        labels = [i % 3 for i in range(n)]
        return Dataset.from_dict(
            {"sequence": ["".join(rng.choice(list(alphabets[y]), 40)) for y in labels], "label": labels}
        )

    requested = []

    def fake_hub(task, repo):  # what load_dataset returns for an NT task: train and test, no validation
        requested.append((task, repo))
        return DatasetDict({"train": split(90), "test": split(60)})

    monkeypatch.setattr(finetune, "_load_nt_task", fake_hub)
    results = recipe_main(evaluate_recipe)(
        ["--checkpoints", f"tiny={saved_checkpoint}", "--hub_tasks", "splice_sites_all", "--n_resamples", "100",
         "--output_dir", str(tmp_path / "out")]
    )  # fmt: skip
    assert requested == [("splice_sites_all", finetune.NT_REVISED_REPO)]
    task = results["tasks"]["splice_sites_all"]
    assert task["sizes"]["test"]["classes"] == {0: 20, 1: 20, 2: 20}
    assert {r["readout"] for r in task["rows"]} >= {"tiny", "random-init", "markov", "6-mer LR"}
    capsys.readouterr()
    line = one_line_error(
        capsys, recipe_main(evaluate_recipe), ["--checkpoints", f"t={saved_checkpoint}", "--hub_tasks", "promoters"]
    )
    assert "promoters" in line and "promoter_all" in line


def test_the_default_suite_without_the_shared_folder_says_where_the_data_comes_from(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"genome 's_aureus_n315': .* not found.*BIRDIE_SHARED_DIR"):
        shared_genome_sources(tmp_path)


def test_intervals_over_seeds_count_test_sampling_too():
    from birdie_hf.evaluation.instrument import combined_interval

    rng = np.random.default_rng(0)
    # Three seeds that agree closely (t interval about +-0.0025) on a test set whose sampling noise is about +-0.02.
    replicates = np.array([0.011, 0.012, 0.013])[:, None] + rng.normal(0, 0.01, size=(1, 2000))
    interval = combined_interval([0.011, 0.012, 0.013], replicates)
    t_only = seed_interval([0.011, 0.012, 0.013])
    assert t_only.low > 0 and interval.low < 0 < interval.high  # the seeds alone would overclaim "better"
    one = combined_interval([0.012], replicates[:1])
    assert one.low == pytest.approx(np.percentile(replicates[0], 2.5))


def test_checkpoint_names_must_pair_by_seed_and_not_repeat(tiny_model, tokenizer):
    from birdie_hf.evaluation.instrument import check_arm_names

    arm = lambda name, seed, source="x": Arm(name, seed, tiny_model, tokenizer, source=source)  # noqa: E731
    check_arm_names([arm("birdie", "1"), arm("birdie", "2")], random_init_seeds=(0,))  # one control: shared
    check_arm_names([arm("b", "1"), arm("b", "2"), arm("n", "1"), arm("n", "2")], (1, 2), baseline="n")
    with pytest.raises(ValueError, match=r"b has pre-training seeds \['1', '2'\] but n has \['a', 'b'\]"):
        check_arm_names([arm("b", "1"), arm("b", "2"), arm("n", "a"), arm("n", "b")], (0,), baseline="n")
    with pytest.raises(ValueError, match="both birdie@0"):
        check_arm_names([arm("birdie", "0", "p"), arm("birdie", "0", "q")], (0,))
    with pytest.raises(ValueError, match="'random-init' is reserved"):
        check_arm_names([arm("random-init", "0")], (0,))


def test_several_baselines_each_get_their_own_paired_differences(tiny_model, tokenizer):
    from birdie_hf.evaluation.instrument import check_arm_names, check_baselines, paired_differences, reference_rows

    arm = lambda name, seed: Arm(name, seed, tiny_model, tokenizer, source=f"{name}{seed}")  # noqa: E731
    arms = [arm(name, seed) for name in ("b", "n", "s") for seed in ("1", "2")]
    check_baselines(arms, ["n", "s"])
    check_arm_names(arms, (1, 2), baseline=["n", "s"])
    with pytest.raises(ValueError, match=r"baseline 'x' is not one of the checkpoints' arms \['b', 'n', 's'\]"):
        check_baselines(arms, ["n", "x"])
    assert [name for name, _ in reference_rows("n")] == ["random-init", "n"]
    assert [name for name, _ in reference_rows(None)] == ["random-init"]
    reps = np.zeros(4)
    scores = {(name, "causal"): {"1": (value, reps), "2": (value + 0.1, reps)}
              for name, value in {"b": 0.5, "n": 0.3, "s": 0.4, "random-init": 0.0}.items()}  # fmt: skip
    kinds = {key: "control" if key[0] == "random-init" else "pretrained" for key in scores}
    rows = paired_differences(scores, kinds, reference_rows(["n", "s"]))
    got = {(r["readout"], r["reference"]): r["difference"]["estimate"] for r in rows}
    # every pre-trained arm against the control and against each baseline other than itself
    assert got == pytest.approx({("b", "random-init"): 0.5, ("b", "n"): 0.2, ("b", "s"): 0.1,
                                 ("n", "random-init"): 0.3, ("n", "s"): -0.1,
                                 ("s", "random-init"): 0.4, ("s", "n"): 0.1})  # fmt: skip


# -- the fine-tuning read-out ---------------------------------------------------------------------------------------


def test_finetuning_chooses_the_rate_on_dev_once_per_arm_and_averages_finetuning_seeds(
    tmp_path, tiny_model, tokenizer, random_dna, monkeypatch
):
    from birdie_hf.evaluation import finetune_readout
    from birdie_hf.evaluation.finetune_readout import FinetuneReadoutConfig, FinetuneRun

    tasks = {"gc": load_task(write_task(tmp_path / "gc", gc_task(random_dna)))}
    labels = tasks["gc"]["test"].labels
    calls = []

    def fake_finetune(checkpoint, dataset, reading, learning_rate, seed, config):
        calls.append((checkpoint, reading, learning_rate, seed))
        dev = {3e-4: 0.2, 1e-3: 0.6, 3e-3: 0.4}[learning_rate]  # dev prefers 1e-3
        # Fine-tuning seed 0 gets every test label right, seed 1 gets every one wrong: their mean MCC is 0.
        predictions = labels.copy() if seed == 0 else 1 - labels
        return FinetuneRun(learning_rate, seed, dev, predictions, best_epoch=3.0)

    monkeypatch.setattr(finetune_readout, "finetune_once", fake_finetune)
    arms = [Arm("birdie", s, tiny_model, tokenizer, source=f"ckpt{s}") for s in ("1", "2")]
    config = ProbeSuiteConfig(n_resamples=100, kmer_ks=(3,), markov_orders=(0,), readings=("causal",))
    finetune = FinetuneReadoutConfig(finetune_seeds=(0, 1), readings=("causal",), tasks=("gc",))
    results = run_probe_suite(arms, tasks, config, show_progress=False, finetune=finetune)
    birdie_calls = [c for c in calls if c[0].startswith("ckpt")]
    # The first seed sweeps three rates (seed 0) and adds fine-tuning seed 1 at the chosen rate; the second seed
    # runs both fine-tuning seeds at that rate, without sweeping again.
    assert birdie_calls == [
        ("ckpt1", "causal", 3e-4, 0), ("ckpt1", "causal", 1e-3, 0), ("ckpt1", "causal", 3e-3, 0),
        ("ckpt1", "causal", 1e-3, 1), ("ckpt2", "causal", 1e-3, 0), ("ckpt2", "causal", 1e-3, 1),
    ]  # fmt: skip
    assert finetune.runs_per_arm(2) == 6 and finetune.runs_per_arm(1) == 4
    control_calls = [c for c in calls if not c[0].startswith("ckpt")]
    assert len(control_calls) == 4 and all("random-init" in c[0] for c in control_calls)  # a saved copy
    rows = [r for r in results["tasks"]["gc"]["rows"] if r["reading"] == "causal, fine-tuned"]
    assert {(r["readout"], r["seed"]) for r in rows} == {("birdie", "1"), ("birdie", "2"), ("random-init", "0")}
    for row in rows:
        assert row["test"]["estimate"] == pytest.approx(0.0)  # mean of MCC +1 and -1
        assert row["selection"]["learning rate"] == 1e-3 and row["dev_mcc"] == pytest.approx(0.6)
        assert row["selection"]["sweep dev MCC"] == {"0.0003": 0.2, "0.001": 0.6, "0.003": 0.4}
    decided = {(d["readout"], d["reading"]) for d in results["tasks"]["gc"]["differences"]}
    assert ("birdie", "causal, fine-tuned") in decided
    assert tuple(results["finetune"]["learning_rates"]) == (3e-4, 1e-3, 3e-3)


def test_evaluate_refuses_a_corpus_holding_the_held_out_chromosome_even_when_dropping_leaks(
    evaluate_recipe, tmp_path, saved_checkpoint, random_dna, capsys
):
    """--drop_leaked_sequences filters a few shared rows; a corpus that *is* the evaluation chromosome is refused."""
    chromosome = random_dna(60_000, seed=5)
    corpus = tmp_path / "chr20.fa"
    corpus.write_text(">20\n" + chromosome + "\n")
    folder = tmp_path / "tasks" / "human_ctcf"
    folder.mkdir(parents=True)
    for offset, split in enumerate(("train", "dev", "test")):  # disjoint windows of the chromosome per split
        starts = range(offset * 200, 40_000, 1_000)
        rows = [f"{chromosome[i : i + 100]},{(i // 1000) % 2},b{i // 1000}" for i in starts]
        (folder / f"{split}.csv").write_text("sequence,label,group\n" + "\n".join(rows) + "\n")
    line = one_line_error(
        capsys,
        recipe_main(evaluate_recipe),
        ["--checkpoints", f"t={saved_checkpoint}", "--tasks_dir", str(tmp_path / "tasks"), "--pretraining_corpus",
         str(corpus), "--drop_leaked_sequences", "--traceback=0", "--output_dir", str(tmp_path / "out")],
    )  # fmt: skip
    assert "chr20.fa' contains the held-out human chromosome: 40 of 40 human_ctcf test windows" in line


def test_reduced_probe_grid_and_kept_predictions(tmp_path, tiny_model, tokenizer, random_dna):
    """`probe_layer_fractions` limits the layers probed; `keep_predictions` records what intervals need."""
    tasks = {"gc": load_task(write_task(tmp_path / "gc", gc_task(random_dna)))}
    arms = [Arm("birdie", "0", tiny_model, tokenizer, source="tiny")]
    config = ProbeSuiteConfig(
        n_resamples=50, kmer_ks=(3,), markov_orders=(0,), readings=("causal",), probe_layer_fractions=(1.0,),
        keep_predictions=True, positional_baselines=False,
    )  # fmt: skip
    task = run_probe_suite(arms, tasks, config, show_progress=False)["tasks"]["gc"]
    depth = tiny_model.config.num_hidden_layers
    probed = [r for r in task["rows"] if r["kind"] != "baseline"]
    assert probed and all(r["selection"]["layer"] == depth for r in probed)
    n_test = len(tasks["gc"]["test"].labels)
    assert len(task["test_labels"]) == n_test and len(task["test_groups"]) == n_test
    assert all(len(r["test_predictions"]) == n_test for r in task["rows"])
    assert {r["readout"] for r in task["rows"]} == {"birdie", "random-init", "markov", "composition", "3-mer LR"}


def test_finetuning_config_refuses_what_cannot_run():
    from birdie_hf.evaluation.finetune_readout import FinetuneReadoutConfig

    with pytest.raises(ValueError, match="learning_rates"):
        FinetuneReadoutConfig(learning_rates=(0.0,))
    with pytest.raises(ValueError, match="readings"):
        FinetuneReadoutConfig(readings=("sideways",))
    with pytest.raises(ValueError, match="finetune_seeds"):
        FinetuneReadoutConfig(finetune_seeds=())


@pytest.mark.slow
def test_evaluate_recipe_fine_tunes_to_convergence_on_the_named_tasks(
    evaluate_recipe, tmp_path, saved_checkpoint, random_dna, capsys
):
    write_task(tmp_path / "tasks" / "gc", gc_task(random_dna, n=(200, 60, 60)))
    write_task(tmp_path / "tasks" / "gc2", gc_task(random_dna))
    main = recipe_main(evaluate_recipe)
    base = ["--checkpoints", f"tiny={saved_checkpoint}", "--tasks_dir", str(tmp_path / "tasks"), "--n_resamples", "100",
            "--output_dir", str(tmp_path / "out"), "--readings", "causal"]  # fmt: skip
    line = one_line_error(capsys, main, [*base, "--finetune_tasks", "gc3"])
    assert "gc3" in line and "gc2" in line
    results = main(
        [*base, "--finetune_tasks", "gc", "--finetune_learning_rates", "3e-3", "1e-2", "--finetune_readings",
         "causal", "bidirectional", "--finetune_max_epochs", "4"]
    )  # fmt: skip
    readings = {(r["readout"], r["reading"]) for r in results["tasks"]["gc"]["rows"]}
    assert {("tiny", "causal, fine-tuned"), ("tiny", "bidirectional, fine-tuned")} <= readings
    assert {("random-init", "causal, fine-tuned"), ("random-init", "bidirectional, fine-tuned")} <= readings
    assert not any("fine-tuned" in r["reading"] for r in results["tasks"]["gc2"]["rows"])  # not named
    tuned = [r for r in results["tasks"]["gc"]["rows"] if r["reading"].endswith("fine-tuned")]
    for row in tuned:
        assert row["selection"]["learning rate"] in (3e-3, 1e-2) and 1 <= row["selection"]["best epoch"] <= 4
    # The composition task is learnable: fine-tuning the tiny model (or its control) separates it well past chance.
    assert min(r["test"]["estimate"] for r in tuned) > 0.8  # measured 0.97 for every row
    assert "causal, fine-tuned" in (tmp_path / "out" / "probe_results.md").read_text()
