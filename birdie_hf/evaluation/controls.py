"""Controls every read-out table carries: the same architecture untrained, and classical sequence classifiers.

- [`random_init_like`]: a randomly initialised model of a checkpoint's architecture and tokenizer, read exactly as
  the checkpoint is. If it matches a pre-trained model, pre-training taught the read-out nothing.
- [`markov_classifier`]: one order-k Markov chain per class (a generative classifier); order 0 is the base
  composition reader, which is what a read-out that "tracks base composition" gets for free.
- k-mer logistic regression: [`~birdie_hf.evaluation.kmer.kmer_logistic_regression`] (3-mers and 6-mers by default).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ..modeling import build_causal_lm, cast_parameters
from .baselines import MarkovModel
from .statistics import matthews_corrcoef


def random_init_like(model, seed: int = 0):
    """A freshly initialised causal LM with `model`'s config (architecture, vocabulary, attention), in eval mode, on
    `model`'s device, its parameters in `model`'s dtype (buffers such as the rotary frequencies stay float32, see
    [`~birdie_hf.modeling.cast_parameters`]). Its weights depend only on `seed`."""
    parameter = next(model.parameters())
    control = build_causal_lm(model.config, seed=seed).to(device=parameter.device)
    return cast_parameters(control, parameter.dtype).eval()


def markov_classifier(
    train: tuple[Sequence[str], Sequence[int]],
    dev: tuple[Sequence[str], Sequence[int]],
    test: tuple[Sequence[str], Sequence[int]],
    orders: Sequence[int] = (0, 1, 2, 3, 4, 5),
) -> dict:
    """Generative classifier: an order-k Markov chain per class fitted on that class's train sequences; a sequence
    goes to the class with the highest log prior + log-likelihood. The order is chosen by dev MCC.

    Returns:
        `{"order": k, "dev_mcc": float, "test_mcc": float, "test_predictions": np.ndarray (n_test,),
        "dev_by_order": {k: mcc}}`.
    """
    sequences, labels = list(train[0]), np.asarray(train[1])
    classes = np.unique(labels)
    if len(classes) < 2:
        raise ValueError("the Markov classifier's train labels hold a single class; it needs at least 2.")
    chains = {c: MarkovModel(order=max(orders)).fit([s for s, y in zip(sequences, labels) if y == c]) for c in classes}
    priors = {c: float(np.log(np.mean(labels == c))) for c in classes}

    def predict(split, order):
        scores = np.stack(
            [
                [priors[c] + float(np.nansum(chains[c].with_order(order).log_likelihood(s))) for s in split[0]]
                for c in classes
            ],
            axis=1,
        )
        return classes[np.argmax(scores, axis=1)]

    dev_by_order = {int(k): matthews_corrcoef(dev[1], predict(dev, k)) for k in orders}
    order = max(dev_by_order, key=lambda k: (dev_by_order[k], -k))
    predictions = predict(test, order)
    return {
        "order": order,
        "dev_mcc": dev_by_order[order],
        "test_mcc": matthews_corrcoef(test[1], predictions),
        "test_predictions": predictions,
        "dev_by_order": dev_by_order,
    }
