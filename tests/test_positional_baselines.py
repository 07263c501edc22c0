"""The positional baselines: they solve what a bag of k-mers cannot (a base at a fixed offset), deterministically."""

import numpy as np
import pytest
import torch

from birdie_hf.evaluation.kmer import kmer_logistic_regression
from birdie_hf.evaluation.positional import cnn_classifier, one_hot, onehot_logistic_regression


def positional_task(n, seed):
    """Both classes hold one planted `GT` and one planted `A`: label 1 has the `GT` at index 20 (the `A` elsewhere),
    label 0 the `A` at 20 (the `GT` elsewhere), so the k-mer content of the classes is the same and only position
    tells them apart."""
    rng = np.random.default_rng(seed)
    sequences, labels = [], []
    for i in range(n):
        bases = list(rng.choice(list("ACGT"), 40))
        label = i % 2
        elsewhere = int(rng.choice([5, 10, 30, 35]))
        gt, a = (20, elsewhere) if label else (elsewhere, 20)
        bases[gt : gt + 2] = ["G", "T"]
        bases[a] = "A"
        sequences.append("".join(bases))
        labels.append(label)
    return sequences, labels


def test_one_hot_layout_padding_and_other_letters():
    encoded = one_hot(["ACGTN", "ga"], length=4)
    assert encoded.shape == (2, 4, 4)
    assert encoded[0].argmax(axis=0).tolist() == [0, 1, 2, 3] and encoded[0].sum() == 4  # N cut off, length 4
    assert encoded[1].sum(axis=0).tolist() == [1, 1, 0, 0]  # padded with zeros
    assert one_hot(["ANA"], 3)[0].sum(axis=0).tolist() == [1, 0, 1]


def test_positional_baselines_see_position_that_kmers_cannot():
    train, dev, test = positional_task(1000, 0), positional_task(200, 1), positional_task(200, 2)
    onehot = onehot_logistic_regression(train, dev, test)
    cnn = cnn_classifier(train, dev, test)
    kmer = kmer_logistic_regression(train, dev, test, k=3)
    assert onehot["test"]["mcc"] > 0.9 and cnn["test"]["mcc"] > 0.8
    assert kmer["test"]["mcc"] < 0.3
    assert onehot["test_predictions"].shape == (200,) and onehot["length"] == 40


def test_cnn_is_deterministic_and_leaves_the_global_rng_alone():
    train, dev, test = positional_task(200, 0), positional_task(60, 1), positional_task(60, 2)
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    first = cnn_classifier(train, dev, test, max_epochs=3, seed=5)
    after = torch.rand(1)
    second = cnn_classifier(train, dev, test, max_epochs=3, seed=5)
    assert np.array_equal(first["test_predictions"], second["test_predictions"]) and first["epoch"] == second["epoch"]
    assert torch.equal(before, after)


def test_positional_baselines_refuse_a_single_class():
    sequences = ["ACGT"] * 4
    with pytest.raises(ValueError, match="at least 2 classes"):
        onehot_logistic_regression((sequences, [1] * 4), (sequences, [0, 1, 0, 1]), (sequences, [0, 1, 0, 1]))
    with pytest.raises(ValueError, match="`dev` split is empty"):
        cnn_classifier((sequences, [0, 1, 0, 1]), ([], []), (sequences, [0, 1, 0, 1]))
