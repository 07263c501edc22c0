"""Zero-shot read-outs: variants from gene calls, stratified AUROC, composition and Markov readers, both strands,
training layouts, and the run with controls and decisions."""

import json

import numpy as np
import pytest
from testing_utils import load_recipe, synthetic_genome

from birdie_hf import build_causal_lm, default_model_config
from birdie_hf.data import iter_fasta
from birdie_hf.evaluation import iter_gene_calls
from birdie_hf.evaluation.baselines import MarkovModel
from birdie_hf.evaluation.instrument import Arm
from birdie_hf.evaluation.zero_shot import (
    CAUSAL_SITE,
    CAUSAL_WINDOW,
    COMPOSITION_WINDOW,
    GENETIC_CODE,
    LAYOUT,
    SINGLE_GAP,
    Site,
    ZeroShotConfig,
    _layout_view,
    checkpoint_scores,
    classical_scores,
    coding_variants,
    composition_log_probs,
    corpus_composition,
    markov_site_log_probs,
    random_sites,
    run_zero_shot,
    stratified_auroc,
    substitution_consequence,
    write_zero_shot_results,
    zero_shot_markdown,
)
from birdie_hf.vocabulary import reverse_complement


MIXTURE = [
    {"objective": "infilling", "corruption_rate": 0.15, "mean_span_length": 3},
    {"objective": "next_token_prediction"},
]


@pytest.fixture(scope="module")
def infilling_model(tokenizer):
    """A tiny untrained model that records an infilling mixture and a 65-base window, as BirdieTrainer writes them."""
    config = default_model_config(tokenizer, hidden_size=16, num_hidden_layers=2, num_attention_heads=2)
    config.birdie_objectives = ["infilling", "next_token_prediction"]
    config.birdie_mixture = MIXTURE
    config.birdie_window_length = 65
    return build_causal_lm(config, seed=0).eval()


@pytest.mark.parametrize(
    "codon, offset, alt, expected",
    [
        ("TGG", 1, "A", "stop_gain"),
        ("CTG", 0, "T", "synonymous"),
        ("AAA", 2, "C", "missense"),
        ("GGA", 2, "T", "synonymous"),
    ],
)
def test_consequences_follow_the_genetic_code(codon, offset, alt, expected):
    assert substitution_consequence(codon, offset, alt) == expected
    assert len(GENETIC_CODE) == 64 and sum(aa == "*" for aa in GENETIC_CODE.values()) == 3


def test_substitution_types_are_collapsed_over_strands():
    site = Site("g", "r", 0, "AAGAA", "x", alt="A")  # G>A on + is C>T on -
    assert site.ref == "G" and site.substitution == "C>T"
    assert Site("g", "r", 0, "AACAA", "x", alt="T").substitution == "C>T"
    assert Site("g", "r", 0, "AAAAA", "x", alt="C").substitution == "T>G"
    assert Site("g", "r", 0, "ACGTA", "x", alt="A").trinucleotide == "A[C>T]G"  # G>A in CGT read on the - strand
    assert Site("g", "r", 0, "AACTA", "x", alt="G").trinucleotide == "A[C>G]T"


def test_stratified_auroc_by_hand():
    positive, negative = np.array([3.0, 1.0]), np.array([2.0, 0.0])
    # Pairs: 3>2, 3>0, 1<2, 1>0.
    assert stratified_auroc(positive, negative)[0] == pytest.approx(0.75)
    # Only pairs of one stratum: (3, 2) and (1, 0), both won.
    assert stratified_auroc(positive, negative, ["a", "b"], ["a", "b"])[0] == pytest.approx(1.0)
    # Ties count a half.
    assert stratified_auroc(np.array([1.0]), np.array([1.0]))[0] == pytest.approx(0.5)
    # Weights: row 0 unweighted; row 1 counts the first positive twice: (2*2 + 1*1) / (3*2) pairs won.
    weights = np.array([[1.0, 1.0], [2.0, 1.0]])
    values = stratified_auroc(positive, negative, positive_weights=weights, negative_weights=np.ones((2, 2)))
    np.testing.assert_allclose(values, [0.75, 5 / 6])


def test_a_score_that_only_knows_the_substitution_type_scores_half_once_stratified():
    rng = np.random.default_rng(0)
    strata_pos, strata_neg = rng.integers(0, 6, size=300), rng.integers(0, 6, size=300)
    # Positives are enriched in the strata with high scores, as stop-gains are in A/T alternate alleles.
    strata_pos = np.where(rng.random(300) < 0.5, 5, strata_pos)
    score_of = np.arange(6, dtype=float)
    raw = stratified_auroc(score_of[strata_pos], score_of[strata_neg])[0]
    stratified = stratified_auroc(score_of[strata_pos], score_of[strata_neg], strata_pos, strata_neg)[0]
    assert raw > 0.65 and stratified == pytest.approx(0.5)


def test_composition_reader_leaves_the_site_out():
    log_probs = composition_log_probs("AACGT", 0)  # counts without the site: A1 C1 G1 T1, plus one each
    np.testing.assert_allclose(np.exp(log_probs), [0.25, 0.25, 0.25, 0.25])
    np.testing.assert_allclose(np.exp(composition_log_probs("AAAAC", 4)), [5 / 8, 1 / 8, 1 / 8, 1 / 8])


def test_markov_site_posterior_is_the_exact_posterior_given_both_flanks(random_dna):
    markov = MarkovModel(2).fit([random_dna(3000, seed=1)])
    left, right = "ACGTTGCA", "GATTACA"
    joint = []
    for base in "ACGT":
        text = left + base + right
        joint.append(markov.log_likelihood(text).sum())  # positions 2.. of the whole text
    expected = np.array(joint) - np.logaddexp.reduce(joint)
    np.testing.assert_allclose(markov_site_log_probs(markov, left, right), expected, atol=1e-10)


def test_coding_variants_are_exact_substitutions_in_called_genes(tmp_path):
    source = synthetic_genome(tmp_path, genes=20, gene_length=300, gap=200)
    genome = next(iter_fasta(source.fasta)).sequence.decode()
    genes = {f"{source.name}:rec:{g.start}-{g.end}": g for g in iter_gene_calls(source.gff)}
    variants = coding_variants([source], per_class=40, flank=30, seed=0)
    counts = {kind: sum(v.consequence == kind for v in variants) for kind in ("synonymous", "missense", "stop_gain")}
    assert counts == {"synonymous": 40, "missense": 40, "stop_gain": 40}
    for v in variants:
        gene = genes[v.group]
        assert gene.start + 3 <= v.position < gene.end - 3  # not the start or stop codon
        assert v.context == genome[v.position - 30 : v.position + 31] and v.ref == genome[v.position]
        # Re-derive the consequence by translating the gene with and without the change.
        mutated = genome[: v.position] + v.alt + genome[v.position + 1 :]
        cds, new = genome[gene.start : gene.end], mutated[gene.start : gene.end]
        if gene.strand < 0:
            cds, new = reverse_complement(cds), reverse_complement(new)
        before = "".join(GENETIC_CODE[cds[i : i + 3]] for i in range(0, len(cds), 3))
        after = "".join(GENETIC_CODE[new[i : i + 3]] for i in range(0, len(new), 3))
        changed = [(a, b) for a, b in zip(before, after) if a != b]
        expected = "synonymous" if not changed else "stop_gain" if changed[0][1] == "*" else "missense"
        assert v.consequence == expected
    assert coding_variants([source], per_class=40, flank=30, seed=0) == variants


def test_random_sites_have_clean_centred_context_and_block_groups(tmp_path):
    source = synthetic_genome(tmp_path, genes=10, gene_length=300, gap=200)
    genome = next(iter_fasta(source.fasta)).sequence.decode()
    sites = random_sites([source], count=50, flank=20, block_size=1000, seed=3)
    assert len(sites) == 50 and all(s.alt is None for s in sites)
    for site in sites:
        assert site.context == genome[site.position - 20 : site.position + 21]
        assert site.group == f"{source.name}:rec:{site.position // 1000}"


def test_layout_view_puts_the_site_in_a_gap_of_a_training_layout(random_dna):
    context = random_dna(129, seed=4)  # centre 64
    rng = np.random.default_rng(0)
    for _ in range(50):
        window, gaps, site = _layout_view(context, rng, 64, [(0.15, 3.0), (0.5, 8.0)], 128)
        assert len(window) == 64 and window[site] == context[64]
        assert window == context[64 - site : 64 - site + 64]
        assert any(start <= site < end for start, end in gaps)
        masked = sum(end - start for start, end in gaps)
        assert masked in (round(0.15 * 64), round(0.5 * 64))


def test_every_reader_scores_both_strands_the_same(tokenizer, infilling_model, random_dna):
    context = random_dna(129, seed=5)
    forward = Site("g", "r", 64, context, "x", alt="A" if context[64] != "A" else "C", consequence="missense")
    reverse = Site("g", "r", 64, reverse_complement(context), "x", alt=reverse_complement(forward.alt))
    markov = MarkovModel(3).fit([random_dna(2000, seed=6)])
    corpus = np.log(np.array([0.3, 0.2, 0.2, 0.3]))
    # An odd window is centred on the site on both strands.
    a = classical_scores([forward], 65, corpus, [markov])
    b = classical_scores([reverse], 65, corpus, [markov])
    assert set(a) == {COMPOSITION_WINDOW, "composition (corpus)", "markov-3"}
    for reader in a:
        np.testing.assert_allclose(a[reader], b[reader], atol=1e-9)
    readings = (SINGLE_GAP, CAUSAL_SITE, CAUSAL_WINDOW)
    a = checkpoint_scores(infilling_model, tokenizer, [forward], 65, readings)
    b = checkpoint_scores(infilling_model, tokenizer, [reverse], 65, readings)
    for reading in readings:
        np.testing.assert_allclose(a[reading], b[reading], atol=1e-5)


def test_layout_reading_of_a_variant_is_the_ratio_of_everything_masked(tokenizer, infilling_model, random_dna):
    from birdie_hf.inference import gap_log_probs

    context = random_dna(129, seed=7)
    alt = "A" if context[64] != "A" else "G"
    site = Site("g", "r", 64, context, "x", alt=alt, consequence="missense")
    llr = checkpoint_scores(infilling_model, tokenizer, [site], 64, (LAYOUT,), seed=11)[LAYOUT][0]
    # Redo it by hand: the same draws (+ strand, then - strand), likelihood of the masked bases with alt and ref.
    rng = np.random.default_rng(11)
    from birdie_hf.inference import infilling_limits

    limits = infilling_limits(infilling_model, tokenizer)
    by_strand = []
    for text, alt_base in ((context, alt), (reverse_complement(context), reverse_complement(alt))):
        window, gaps, at = _layout_view(text, rng, 64, limits.entries, limits.num_sentinels)
        mutated = window[:at] + alt_base + window[at + 1 :]
        totals = []
        for sequence in (window, mutated):
            lp = gap_log_probs(infilling_model, tokenizer, sequence, gaps, strict=False, disable_tqdm=True)
            truth = ["ACGT".index(sequence[i]) for start, end in gaps for i in range(start, end)]
            totals.append(lp[np.arange(len(truth)), truth].sum())
        by_strand.append(totals[1] - totals[0])
    assert llr == pytest.approx(np.mean(by_strand), abs=1e-6)


def test_zero_shot_run_past_its_deadline_reads_no_model(tmp_path, tokenizer, infilling_model, monkeypatch):
    import birdie_hf.evaluation.zero_shot as zero_shot

    source = synthetic_genome(tmp_path, genes=10, gene_length=300, gap=200)
    config = ZeroShotConfig(variants_per_class=4, sites=6, n_resamples=10, markov_orders=(2,))
    read = []
    monkeypatch.setattr(zero_shot, "checkpoint_scores", lambda model, *a, **k: read.append(model) or {})
    arms = [Arm("birdie", "0", infilling_model, tokenizer, source="tiny")]
    with pytest.raises(zero_shot.ReadoutDeadlineError, match=r"deadline with 2 of 2 models of the variants still"):
        run_zero_shot(arms, [source], [source.fasta], config, show_progress=False, deadline=0.0)
    assert read == []  # the model and its control: neither started


def test_zero_shot_run_has_controls_composition_intervals_and_decisions(tmp_path, tokenizer, infilling_model):
    source = synthetic_genome(tmp_path, genes=30, gene_length=300, gap=200)
    config = ZeroShotConfig(variants_per_class=30, sites=60, n_resamples=100, markov_orders=(2,), batch_size=64)
    arms = [Arm("birdie", "0", infilling_model, tokenizer, source="tiny")]
    results = run_zero_shot(arms, [source], [source.fasta], config, show_progress=False)
    assert set(results["tasks"]) == {
        "stop_gain_vs_synonymous", "stop_gain_vs_synonymous (trinucleotide)", "stop_gain_vs_synonymous (unstratified)",
        "missense_vs_synonymous", "missense_vs_synonymous (trinucleotide)", "missense_vs_synonymous (unstratified)",
        "masked_base_nll",
    }  # fmt: skip
    variants = results["tasks"]["stop_gain_vs_synonymous"]
    rows = {(r["readout"], r["reading"]) for r in variants["rows"]}
    for reader in ("birdie", "random-init"):
        assert {(reader, r) for r in (SINGLE_GAP, LAYOUT, CAUSAL_SITE, CAUSAL_WINDOW)} <= rows
    assert {(COMPOSITION_WINDOW, "-"), ("composition (corpus)", "-"), ("markov-2", "-")} <= rows
    references = {(d["reading"], d["reference"]) for d in variants["differences"]}
    assert (SINGLE_GAP, "random-init") in references and (SINGLE_GAP, COMPOSITION_WINDOW) in references
    for d in variants["differences"]:
        assert d["decision"] in ("better", "worse", "inconclusive")
    for row in variants["rows"]:
        assert 0 <= row["test"]["low"] <= row["test"]["estimate"] <= row["test"]["high"] <= 1
    nll = results["tasks"]["masked_base_nll"]
    assert not nll["higher_is_better"] and CAUSAL_WINDOW not in {r["reading"] for r in nll["rows"]}
    for row in nll["rows"]:
        assert 1.0 < row["test"]["estimate"] < 2.0  # an untrained model and composition: about ln 4 nats
    markdown = zero_shot_markdown(results)
    assert "### masked_base_nll" in markdown and "lower is better" in markdown and "AUROC [95% CI]" in markdown
    paths = write_zero_shot_results(results, tmp_path / "out")
    assert json.loads(open(paths["json"]).read())["tasks"]["masked_base_nll"]["rows"]
    assert open(paths["plot"], "rb").read(4) == b"\x89PNG"


def test_nll_decisions_read_lower_as_better():
    from birdie_hf.evaluation.statistics import Interval, decide

    assert decide(Interval(-0.1, -0.2, -0.05), higher_is_better=False) == "better"
    assert decide(Interval(0.1, 0.05, 0.2), higher_is_better=False) == "worse"
    assert decide(Interval(0.1, -0.05, 0.2), higher_is_better=False) == "inconclusive"


def test_corpus_composition_counts_bases_of_every_record(write_fasta):
    path = write_fasta(">a\nAAAC\n>b\nacgN\n")
    # A 4+1, C 2+1, G 1+1, T 0+1 (add-one), N ignored.
    markov = MarkovModel(2).fit(record.sequence for record in iter_fasta(path))
    np.testing.assert_allclose(np.exp(corpus_composition(markov)), np.array([5, 3, 2, 1]) / 11)


def test_evaluate_recipe_runs_the_zero_shot_readout(tmp_path, tokenizer, infilling_model, capsys):
    infilling_model.save_pretrained(tmp_path / "ckpt")
    tokenizer.save_pretrained(tmp_path / "ckpt")
    source = synthetic_genome(tmp_path, genes=30, gene_length=300, gap=200)
    recipe = load_recipe("evaluate")
    out = tmp_path / "out"
    results = recipe.main(
        recipe.parse_args(
            ["--checkpoints", f"tiny={tmp_path / 'ckpt'}", "--readouts", "zero_shot", "--zero_shot_genomes",
             f"syn={source.fasta},{source.gff}", "--zero_shot_variants_per_class", "20", "--zero_shot_sites", "30",
             "--n_resamples", "50", "--pretraining_corpus", source.fasta, "--output_dir", str(out)]
        )
    )  # fmt: skip
    assert (out / "zero_shot.md").read_text().startswith("### stop_gain_vs_synonymous")
    assert not (out / "probe_results.md").exists()
    written = json.loads((out / "zero_shot.json").read_text())  # what it ran on is in the file, not only returned
    assert written["checkpoints"] == {"tiny": str(tmp_path / "ckpt")} and written["pretraining_corpus"] == ["g0.fa"]
    assert written["tasks"]["masked_base_nll"]["window_length"] == 65  # odd: centred on both strands
    assert "AUROC [95% CI]" in capsys.readouterr().out
    json.dumps(results)  # the returned results are plain data, not a dict that holds itself
