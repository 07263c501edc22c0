import math
from pathlib import Path

import numpy as np
import pytest

from birdie_hf.evaluation.baselines import MarkovModel, markov_baseline_table
from birdie_hf.evaluation.kmer import kmer_features, kmer_logistic_regression
from birdie_hf.evaluation.task_files import read_task_csvs


CONTIGS = Path(__file__).resolve().parents[2] / "shared" / "data" / "genomes" / "bacterial_contigs.fna"


def _random_dna(rng, length, gc):
    """Random DNA string of `length` bases with GC fraction `gc`."""
    probabilities = [(1 - gc) / 2, gc / 2, gc / 2, (1 - gc) / 2]
    return "".join(rng.choice(list("ACGT"), size=length, p=probabilities))


def _read_records(path):
    records, current = [], []
    for line in path.read_text().splitlines():
        if line.startswith(">"):
            if current:
                records.append("".join(current))
            current = []
        elif line.strip():
            current.append(line.strip())
    records.append("".join(current))
    return records


def _slice_records(records, start, end):
    """Pieces of `records` covering [start, end) of their concatenation, without windows spanning two records."""
    pieces, offset = [], 0
    for record in records:
        low, high = max(start - offset, 0), min(end - offset, len(record))
        if low < high:
            pieces.append(record[low:high])
        offset += len(record)
    return pieces


# ------------------------------------------------------------------------------------------------ Markov models


def test_order0_probabilities_match_hand_computation():
    model = MarkovModel(order=0, pseudocount=0.5).fit(["AACA"])
    # counts A=3, C=1, G=0, T=0; denominator 4 + 4 * 0.5 = 6
    expected = np.array([3.5, 1.5, 0.5, 0.5]) / 6
    np.testing.assert_allclose(model.next_base_probabilities(), expected)
    np.testing.assert_allclose(model.log_likelihood("ACGT"), np.log(expected))
    np.testing.assert_array_equal(model.counts(), [[3, 1, 0, 0]])
    # lower case, bytes and letter arrays are the same input
    np.testing.assert_allclose(model.log_likelihood(b"acgt"), np.log(expected))
    np.testing.assert_allclose(model.log_likelihood(np.array(list("ACGT"))), np.log(expected))
    assert model.nll_per_base(["AC"]) == pytest.approx(-(math.log(3.5 / 6) + math.log(1.5 / 6)) / 2)


def test_order1_counts_and_short_context_fallback():
    model = MarkovModel(order=1, pseudocount=1.0).fit(["AAC"])
    # transitions: A->A once, A->C once; denominator 2 + 4
    np.testing.assert_allclose(model.next_base_probabilities("A"), np.array([2, 2, 1, 1]) / 6)
    # position 0 has no context: scored with order 0 (A=2, C=1 -> (2+1)/(3+4))
    nll = model.nll_per_base("AC")
    assert nll == pytest.approx(-(math.log(3 / 7) + math.log(2 / 6)) / 2)
    assert model.log_likelihood("AC").shape == (1,)
    assert model.log_likelihood("A").shape == (0,)


def test_periodic_sequence_is_predictable_at_order2_not_order0():
    order2 = MarkovModel(order=2).fit(["ACG" * 200])
    order0 = MarkovModel(order=0).fit(["ACG" * 200])
    heldout = ["ACG" * 50]
    assert order2.nll_per_base(heldout) < 0.05
    assert order0.nll_per_base(heldout) == pytest.approx(math.log(3), abs=0.01)
    assert np.all(order2.log_likelihood("GACGA") > -0.01)


def test_windows_touching_n_are_skipped_and_nan():
    model = MarkovModel(order=2).fit(["ACGTNACGT"])
    # order-2 windows (3-mers) without N: ACG, CGT, ACG, CGT
    assert model.n_windows == 4
    log_likelihood = model.log_likelihood("ACGTNACGTA")  # positions 2..9
    assert log_likelihood.shape == (8,)
    nan_positions = np.flatnonzero(np.isnan(log_likelihood)) + 2
    np.testing.assert_array_equal(nan_positions, [4, 5, 6])  # the N itself and the two positions it is context of
    with_n = model.nll_per_base(["ACGTNACGTA"])
    assert np.isfinite(with_n)
    # equal to the mean over the finite positions plus the two prefix positions (orders 0 and 1)
    prefix = [math.log(model.next_base_probabilities("")[0]), math.log(model.next_base_probabilities("A")[1])]
    finite = log_likelihood[~np.isnan(log_likelihood)]
    assert with_n == pytest.approx(-(sum(prefix) + finite.sum()) / (len(prefix) + len(finite)))
    with pytest.raises(ValueError, match="no scorable position"):
        model.nll_per_base(["NNNN"])


def test_markov_argument_errors():
    with pytest.raises(ValueError, match="`order`"):
        MarkovModel(order=-1)
    with pytest.raises(ValueError, match="`pseudocount`"):
        MarkovModel(order=1, pseudocount=0)
    with pytest.raises(ValueError, match="`alphabet`"):
        MarkovModel(order=1, alphabet="AAC")
    with pytest.raises(RuntimeError, match="not fitted"):
        MarkovModel(order=1).log_likelihood("ACGT")
    with pytest.raises(TypeError, match="decoded"):
        MarkovModel(order=1).fit([np.array([5, 6, 7], dtype=np.int64)])
    with pytest.raises(ValueError, match="`orders`"):
        markov_baseline_table(["ACGT"], ["ACGT"], orders=(2, -1))


def test_baseline_table_rows_and_equivalence_with_separate_fits():
    rng = np.random.default_rng(0)
    train = [_random_dna(rng, 2000, 0.6) for _ in range(3)]
    heldout = [_random_dna(rng, 500, 0.6)]
    table = markov_baseline_table(iter(train), heldout, orders=(1, 3, 3))
    assert [row["order"] for row in table] == [0, 1, 3]
    for row in table:
        assert row["nll"] == pytest.approx(MarkovModel(row["order"]).fit(train).nll_per_base(heldout))
        assert row["bits_per_base"] == pytest.approx(row["nll"] / math.log(2))


def test_markov_on_real_bacterial_dna():
    if not CONTIGS.exists():
        pytest.skip(f"genome not found at {CONTIGS}")
    records = _read_records(CONTIGS)
    train = _slice_records(records, 0, 200_000)
    heldout = _slice_records(records, 200_000, 250_000)
    table = {row["order"]: row["nll"] for row in markov_baseline_table(train, heldout, orders=(5,))}
    assert 1.30 < table[0] < 1.40
    assert table[5] < table[0]


# ---------------------------------------------------------------------------------------- k-mer classification


def test_kmer_features_rows_sum_to_one_and_skip_non_acgt():
    features = kmer_features(["ACGTACGTAC", "acgtnacgta", "AC", "NNNNNNN"], k=3)
    assert features.shape == (4, 64)
    row_sums = np.asarray(features.sum(axis=1)).reshape(-1)
    np.testing.assert_allclose(row_sums, [1, 1, 0, 0])
    # "ACGTNACGTA": clean 3-mers ACG, CGT, ACG, CGT, GTA -> ACG 2/5, CGT 2/5, GTA 1/5
    acg, cgt, gta = 0 * 16 + 1 * 4 + 2, 1 * 16 + 2 * 4 + 3, 2 * 16 + 3 * 4 + 0
    row = features[1].toarray().reshape(-1)
    assert row[acg] == pytest.approx(0.4) and row[cgt] == pytest.approx(0.4) and row[gta] == pytest.approx(0.2)
    assert np.count_nonzero(row) == 3
    with pytest.raises(ValueError, match="`k`"):
        kmer_features(["ACGT"], k=0)


def _gc_task(rng, size):
    labels = rng.integers(0, 2, size=size)
    sequences = [_random_dna(rng, 100, 0.7 if label else 0.3) for label in labels]
    return sequences, labels.tolist()


def test_kmer_logistic_regression_separates_gc_rich_from_at_rich():
    rng = np.random.default_rng(0)
    train, dev, test = _gc_task(rng, 200), _gc_task(rng, 60), _gc_task(rng, 60)
    result = kmer_logistic_regression(train, dev, test, k=3, Cs=(0.1, 10.0), seed=0)
    assert set(result) == {"k", "C", "dev", "test"}
    assert result["k"] == 3 and result["C"] in (0.1, 10.0)
    assert set(result["test"]) == {"mcc", "f1", "accuracy"}
    assert result["test"]["mcc"] > 0.9


def test_kmer_logistic_regression_multiclass():
    rng = np.random.default_rng(1)

    def split(size):
        labels = rng.integers(0, 3, size=size)
        return [_random_dna(rng, 100, (0.2, 0.5, 0.8)[label]) for label in labels], labels.tolist()

    result = kmer_logistic_regression(split(240), split(60), split(60), k=2, Cs=(10.0,))
    assert result["test"]["accuracy"] > 0.8


def test_kmer_logistic_regression_rejects_empty_or_bad_splits():
    train = (["ACGT", "GGCC"], [0, 1])
    with pytest.raises(ValueError, match="`dev` split is empty"):
        kmer_logistic_regression(train, ([], []), train, k=2)
    with pytest.raises(ValueError, match="`test` has 2 sequences"):
        kmer_logistic_regression(train, train, (["ACGT", "GGCC"], [0]), k=2)
    with pytest.raises(ValueError, match="at least 2 classes"):
        kmer_logistic_regression((["ACGT", "GGCC"], [1, 1]), train, train, k=2)
    with pytest.raises(ValueError, match="`Cs`"):
        kmer_logistic_regression(train, train, train, k=2, Cs=())


def test_read_task_csvs(tmp_path):
    for split, rows in (("train", "ACGT,1\nGGCC,0\n"), ("dev", "AAAA,0\n"), ("test", "TTTT,1\n")):
        (tmp_path / f"{split}.csv").write_text("sequence,label\n" + rows)
    data = read_task_csvs(tmp_path)
    assert data["train"] == (["ACGT", "GGCC"], [1, 0])
    assert data["test"] == (["TTTT"], [1])

    (tmp_path / "dev.csv").unlink()
    with pytest.raises(FileNotFoundError, match="dev.csv"):
        read_task_csvs(tmp_path)
    (tmp_path / "dev.csv").write_text("seq,label\nAAAA,0\n")
    with pytest.raises(ValueError, match="sequence"):
        read_task_csvs(tmp_path)
    (tmp_path / "dev.csv").write_text("sequence,label\nAAAA,x\n")
    with pytest.raises(ValueError, match="line 2"):
        read_task_csvs(tmp_path)
