"""The bag-of-k-mers classifier baseline: [`kmer_features`] (normalised overlapping k-mer counts) and
[`kmer_logistic_regression`] (the inverse regularisation chosen by dev MCC), for classification tasks stored as
`{train,dev,test}.csv` files ([`~birdie_hf.evaluation.task_files.read_task_csvs`])."""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
from scipy import sparse

from .encoding import DNA_TABLE, SequenceLike, as_bytes, is_single_sequence, window_codes
from .statistics import prediction_metrics


def kmer_features(sequences: Sequence[SequenceLike], k: int = 6) -> sparse.csr_matrix:
    """Normalised k-mer count vectors (bag of overlapping k-mers).

    Args:
        sequences (`Sequence[str]`): DNA sequences (`str`, `bytes` or 1-D letter arrays), case-insensitive.
        k (`int`, *optional*, defaults to 6): k-mer length.

    Returns:
        `scipy.sparse.csr_matrix` of shape `(len(sequences), 4**k)`, float64: column = base-4 code of the k-mer
        (`A=0, C=1, G=2, T=3`, first base most significant); each row sums to 1, or is all zeros when the sequence
        has no k-mer free of non-ACGT letters (such k-mers are skipped).
    """
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k <= 15:
        raise ValueError(f"`k` must be an integer in [1, 15], got {k!r}.")
    if is_single_sequence(sequences):
        raise TypeError("`sequences` must be a list of sequences, not a single sequence; wrap it in a list.")
    encoded = [DNA_TABLE[as_bytes(s, "sequences")] for s in sequences]
    n_columns = 4**k
    if not encoded:
        return sparse.csr_matrix((0, n_columns), dtype=np.float64)
    # One pass over all sequences joined by an invalid letter, so no k-mer spans two sequences.
    lengths = np.array([codes.shape[0] for codes in encoded], dtype=np.int64)
    joined = np.concatenate([part for codes in encoded for part in (codes, np.full(1, -1, dtype=np.int8))])
    row_of_start = np.repeat(np.arange(len(encoded)), lengths + 1)
    kmer_codes, valid = window_codes(joined, k, 4)
    rows = row_of_start[: kmer_codes.shape[0]][valid]
    counts = sparse.coo_matrix(
        (np.ones(rows.shape[0]), (rows, kmer_codes[valid])), shape=(len(encoded), n_columns)
    ).tocsr()
    counts.sum_duplicates()
    row_sums = np.asarray(counts.sum(axis=1)).reshape(-1)
    counts.data /= np.repeat(row_sums, np.diff(counts.indptr))
    return counts


def check_classification_split(split: object, name: str) -> tuple[list, np.ndarray]:
    """`(sequences, labels as an array)` of a `(sequences, labels)` pair, or a `ValueError` naming the split (`name`)
    when it is not such a pair, is empty, or its labels do not match its sequences one to one."""
    if not isinstance(split, (tuple, list)) or len(split) != 2:
        raise ValueError(f"`{name}` must be a (sequences, labels) pair, got {type(split).__name__}.")
    sequences, labels = split
    if is_single_sequence(sequences):
        raise ValueError(f"`{name}` sequences must be a list of sequences, not a single sequence.")
    sequences, labels = list(sequences), np.asarray(labels)
    if len(sequences) == 0:
        raise ValueError(f"`{name}` split is empty: it needs at least one (sequence, label) pair.")
    if labels.ndim != 1 or labels.shape[0] != len(sequences):
        raise ValueError(
            f"`{name}` has {len(sequences)} sequences but labels of shape {labels.shape}; "
            f"expected ({len(sequences)},)."
        )
    return sequences, labels


def check_inverse_strengths(Cs: Sequence[float]) -> list[float]:
    """`Cs` as a list, or a `ValueError` when it is empty or holds a value that is not a finite number > 0."""
    Cs = list(Cs)
    if not Cs or not all(isinstance(c, (int, float)) and math.isfinite(c) and c > 0 for c in Cs):
        raise ValueError(f"`Cs` must be a non-empty sequence of finite numbers > 0, got {Cs!r}.")
    return Cs


def logistic_regression_chosen_on_dev(features: dict, splits: dict, Cs: Sequence[float], seed: int = 0) -> tuple:
    """One scikit-learn `LogisticRegression` (`max_iter=2000`) per `C`, fitted on `features["train"]`; returns
    `(C, dev metrics, classifier)` of the one with the best dev MCC (the first on ties). `splits[name][1]` are the
    labels of each split."""
    from sklearn.linear_model import LogisticRegression

    best = None
    for C in Cs:
        classifier = LogisticRegression(C=C, max_iter=2000, random_state=seed)
        classifier.fit(features["train"], splits["train"][1])
        dev_metrics = prediction_metrics(splits["dev"][1], classifier.predict(features["dev"]))
        if best is None or dev_metrics["mcc"] > best[1]["mcc"]:
            best = (C, dev_metrics, classifier)
    return best


def kmer_logistic_regression(
    train: tuple[Sequence[str], Sequence[int]],
    dev: tuple[Sequence[str], Sequence[int]],
    test: tuple[Sequence[str], Sequence[int]],
    k: int = 6,
    Cs: Sequence[float] = (0.01, 0.1, 1.0, 10.0),
    seed: int = 0,
    return_predictions: bool = False,
) -> dict:
    """Logistic regression on [`kmer_features`]; the inverse regularisation `C` is chosen by dev MCC.

    One model per `C` is fitted on `train` (scikit-learn `LogisticRegression`, `max_iter=2000`; binary or
    multinomial); the one with the best dev Matthews correlation (first on ties) is evaluated on `test`.

    Args:
        train, dev, test (`tuple[Sequence[str], Sequence[int]]`): `(sequences, labels)` per split.
        k (`int`, *optional*, defaults to 6): k-mer length.
        Cs (`Sequence[float]`, *optional*, defaults to `(0.01, 0.1, 1.0, 10.0)`): candidate values of `C`.
        seed (`int`, *optional*, defaults to 0): `random_state` of the classifier.
        return_predictions (`bool`, *optional*, defaults to `False`): also return the test predictions (for
            intervals), under `"test_predictions"` (`np.ndarray` of shape `(n_test,)`).

    Returns:
        `dict`: `{"k": k, "C": best_C, "dev": metrics, "test": metrics}` with metrics
        `{"mcc": float, "f1": float (macro), "accuracy": float}`.

    Raises:
        `ValueError`: a split is empty or malformed, `train` has a single class, or `Cs` is empty or not positive.
    """
    splits = {
        name: check_classification_split(split, name)
        for name, split in (("train", train), ("dev", dev), ("test", test))
    }
    if len(np.unique(splits["train"][1])) < 2:
        raise ValueError("`train` labels must hold at least 2 classes.")
    Cs = check_inverse_strengths(Cs)
    features = {name: kmer_features(sequences, k=k) for name, (sequences, _) in splits.items()}
    C, dev_metrics, classifier = logistic_regression_chosen_on_dev(features, splits, Cs, seed)
    test_predictions = classifier.predict(features["test"])
    result = {
        "k": int(k),
        "C": C,
        "dev": dev_metrics,
        "test": prediction_metrics(splits["test"][1], test_predictions),
    }
    if return_predictions:
        result["test_predictions"] = test_predictions
    return result
