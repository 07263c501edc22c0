"""Positional baselines: classifiers that see *where* each base is, which a bag of k-mers cannot.

A splice site's consensus sits at fixed offsets from the window's centre, a promoter's TATA box about 30 bases
upstream of the TSS: a k-mer count or a Markov chain ignores position, so a language model can beat them on such
tasks by learning nothing more than position-specific base preferences. Every table therefore also carries:

- [`onehot_logistic_regression`]: a logistic regression on the one-hot sequence (`4 x length` features), in effect a
  position weight matrix fitted discriminatively; `C` chosen on dev.
- [`cnn_classifier`]: a small convolutional network (one convolution of 32 filters of width 11, max-pooling by 8,
  a linear read-out of the pooled positions) trained on the train split with early stopping on dev MCC: motifs, with
  their coarse position.

Sequences of a task may differ in length: each is one-hot encoded into the length of the longest train sequence,
left-aligned (shorter ones padded with zeros, longer ones cut). Letters other than A/C/G/T (e.g. `N`) encode as
zeros. Both return the same dictionary as [`~birdie_hf.evaluation.kmer.kmer_logistic_regression`].
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from .encoding import lookup_table
from .kmer import check_classification_split, check_inverse_strengths, logistic_regression_chosen_on_dev
from .statistics import matthews_corrcoef, prediction_metrics


_INDEX = lookup_table("ACGT")


def one_hot(sequences: Sequence[str], length: int) -> np.ndarray:
    """One-hot encoding, shape `(len(sequences), 4, length)`, float32: channel `c` of position `i` is 1 when base `i`
    is `"ACGT"[c]` (case-insensitive); positions past a sequence's end and other letters are all zero."""
    encoded = np.zeros((len(sequences), 4, length), dtype=np.float32)
    for row, sequence in enumerate(sequences):
        codes = _INDEX[np.frombuffer(sequence[:length].encode("ascii", "replace"), dtype=np.uint8)]
        positions = np.flatnonzero(codes >= 0)
        encoded[row, codes[positions], positions] = 1.0
    return encoded


def _splits(train, dev, test) -> tuple[dict, int]:
    splits = {
        name: check_classification_split(split, name)
        for name, split in (("train", train), ("dev", dev), ("test", test))
    }
    if len(np.unique(splits["train"][1])) < 2:
        raise ValueError("`train` labels must hold at least 2 classes.")
    length = max(len(sequence) for sequence in splits["train"][0])
    return splits, length


def onehot_logistic_regression(
    train: tuple[Sequence[str], Sequence[int]],
    dev: tuple[Sequence[str], Sequence[int]],
    test: tuple[Sequence[str], Sequence[int]],
    Cs: Sequence[float] = (0.001, 0.01, 0.1, 1.0),
    seed: int = 0,
) -> dict:
    """Logistic regression on the flattened one-hot sequence; `C` chosen by dev MCC (first best on ties).

    Args:
        train, dev, test (`tuple[Sequence[str], Sequence[int]]`): `(sequences, labels)` per split.
        Cs (`Sequence[float]`): candidate inverse L2 strengths. seed (`int`): the classifier's `random_state`.

    Returns:
        `{"C", "length", "dev": metrics, "test": metrics, "test_predictions": np.ndarray (n_test,)}`, metrics
        `{"mcc", "f1", "accuracy"}`.

    Raises:
        `ValueError`: an empty or malformed split, a single train class, or bad `Cs`.
    """
    splits, length = _splits(train, dev, test)
    Cs = check_inverse_strengths(Cs)
    features = {
        name: one_hot(sequences, length).reshape(len(sequences), -1) for name, (sequences, _) in splits.items()
    }
    C, dev_metrics, classifier = logistic_regression_chosen_on_dev(features, splits, Cs, seed)
    predictions = classifier.predict(features["test"])
    return {
        "C": C,
        "length": length,
        "dev": dev_metrics,
        "test": prediction_metrics(splits["test"][1], predictions),
        "test_predictions": predictions,
    }


def cnn_classifier(
    train: tuple[Sequence[str], Sequence[int]],
    dev: tuple[Sequence[str], Sequence[int]],
    test: tuple[Sequence[str], Sequence[int]],
    filters: int = 32,
    width: int = 11,
    pool: int = 8,
    max_epochs: int = 30,
    patience: int = 5,
    learning_rate: float = 3e-3,
    batch_size: int = 128,
    seed: int = 0,
) -> dict:
    """A small CNN (convolution, ReLU, max-pool, dropout 0.2, linear) trained with AdamW on train; the epoch with the
    best dev MCC is kept (stopping after `patience` epochs without a better one) and scored once on test.
    Deterministic for a given `seed` on the CPU (its own generator; torch's global seed is left alone).

    Returns:
        `{"epoch", "length", "dev": metrics, "test": metrics, "test_predictions": np.ndarray (n_test,)}`.
    """
    import torch
    from torch import nn

    splits, length = _splits(train, dev, test)
    classes = np.unique(splits["train"][1])
    index_of = {int(c): i for i, c in enumerate(classes.tolist())}
    tensors = {
        name: (
            torch.from_numpy(one_hot(sequences, length)),
            torch.as_tensor([index_of.get(int(y), -100) for y in labels], dtype=torch.long),
        )
        for name, (sequences, labels) in splits.items()
    }
    generator = torch.Generator().manual_seed(seed)
    pooled = max(1, length // pool)
    with torch.random.fork_rng(devices=[]):  # module construction draws from torch's global generator
        convolution = nn.Conv1d(4, filters, width, padding=width // 2)
        linear = nn.Linear(filters * pooled, len(classes))
    with torch.no_grad():  # initialise from our generator, not torch's global one
        for layer in (convolution, linear):
            bound = 1.0 / math.sqrt(layer.weight[0].numel())
            layer.weight.copy_(torch.empty_like(layer.weight).uniform_(-bound, bound, generator=generator))
            layer.bias.copy_(torch.empty_like(layer.bias).uniform_(-bound, bound, generator=generator))
    model = nn.Sequential(convolution, nn.ReLU(), nn.AdaptiveMaxPool1d(pooled), nn.Flatten(), nn.Dropout(0.2), linear)
    optimizer = torch.optim.AdamW(model.parameters(), lr=learning_rate, weight_decay=0.01)

    def predict(name):
        model.eval()
        with torch.no_grad():
            x = tensors[name][0]
            logits = torch.cat([model(x[i : i + 1024]) for i in range(0, len(x), 1024)])
        return classes[logits.argmax(dim=-1).numpy()]

    x_train, y_train = tensors["train"]
    best, best_state, since = None, None, 0
    for epoch in range(1, max_epochs + 1):
        model.train()
        order = torch.randperm(len(x_train), generator=generator)
        for i in range(0, len(order), batch_size):
            batch = order[i : i + batch_size]
            # Dropout draws from torch's global generator: fork it so the caller's random state is untouched.
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed * 1_000_003 + epoch * 10_007 + i)
                loss = nn.functional.cross_entropy(model(x_train[batch]), y_train[batch])
                optimizer.zero_grad()
                loss.backward()
            optimizer.step()
        dev_mcc = matthews_corrcoef(splits["dev"][1], predict("dev"))
        if best is None or dev_mcc > best[1]:
            best, since = (epoch, dev_mcc), 0
            best_state = {key: value.clone() for key, value in model.state_dict().items()}
        else:
            since += 1
            if since >= patience:
                break
    model.load_state_dict(best_state)
    predictions = predict("test")
    return {
        "epoch": best[0],
        "length": length,
        "dev": prediction_metrics(splits["dev"][1], predict("dev")),
        "test": prediction_metrics(splits["test"][1], predictions),
        "test_predictions": predictions,
    }
