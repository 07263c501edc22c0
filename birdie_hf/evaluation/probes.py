"""Frozen-feature probes: what a pre-trained model stores, read out by logistic regression on its hidden states.

The model is never updated. Each sequence is read in one of two ways:

- `causal`: the bases alone, each position seeing its left (as next-token prediction trains);
- `bidirectional`: `<|prefix_lm|>` + the bases, all of it a bidirectional prefix (as Birdie's prefix-LM and
  infilling objectives read their prefix), through the same packed attention mask training uses.

Features are every layer's hidden states (the embeddings and each decoder layer's output, the last one after the final
norm) pooled over the bases: the mean, and the last base. A standardised L2 logistic regression is fitted on train for
every (layer, pooling, C); the combination with the best dev MCC (first on ties, in a fixed order) is the read-out,
scored once on test. Everything is deterministic: a fixed solver, no shuffling, no sampling.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np
import torch

from ..inference.forward import inference_mode, model_device, model_dtype, progress_bar
from ..packing import single_example_attention_mask
from ..vocabulary import BASES, dna_lookup_table, prompt_id
from .statistics import matthews_corrcoef


READING_MODES = ("causal", "bidirectional")
POOLINGS = ("mean", "last")
DEFAULT_CS = (0.01, 0.1, 1.0)


class SequenceCharacterError(ValueError):
    """A sequence holds a character the tokenizer cannot read as one base."""


def encode_sequences(sequences: Sequence[str], tokenizer, name: str = "sequences") -> list[np.ndarray]:
    """Token ids of each sequence, one per base (`np.ndarray` of int64, read through [`dna_lookup_table`]: a read-out
    encodes every split for every model and reading); raises [`SequenceCharacterError`] naming the first sequence (by
    index) and character that is not one of `ACGTN` (either case; IUPAC ambiguity codes are refused too)."""
    table = dna_lookup_table(tokenizer, ambiguity_codes=False)
    encoded = []
    for index, sequence in enumerate(sequences):
        if not sequence:
            raise SequenceCharacterError(f"{name}[{index}] is empty.")
        tokens = table[np.frombuffer(sequence.encode("utf-8"), dtype=np.uint8)]
        if len(tokens) != len(sequence) or (tokens < 0).any():
            bad = next((c for c in sequence if c.upper() not in BASES), sequence)
            raise SequenceCharacterError(
                f"{name}[{index}] holds {bad!r}, which the tokenizer has no base token for "
                f"(bases: {''.join(sorted(BASES))}); sequence starts {sequence[:30]!r}."
            )
        encoded.append(tokens)
    return encoded


def extract_features(
    model,
    tokenizer,
    sequences: Sequence[str],
    reading: str = "causal",
    batch_size: int = 64,
    show_progress: bool = True,
    description: str = "features",
) -> np.ndarray:
    """Pooled hidden states of a frozen causal LM.

    Args:
        model: a transformers causal LM (e.g. `LlamaForCausalLM`), any device and dtype; it is not modified.
        tokenizer: its tokenizer (one token per base; holds the `<|prefix_lm|>` prompt for `bidirectional`).
        sequences (`Sequence[str]`): `n` DNA sequences (any lengths; padded on the right within a batch).
        reading (`str`): `"causal"` or `"bidirectional"` (see the module docstring).

    Returns:
        `np.ndarray` of shape `(n, num_layers + 1, len(POOLINGS), hidden_size)`, float32.
    """
    if reading not in READING_MODES:
        raise ValueError(f"`reading` must be one of {READING_MODES}, got {reading!r}.")
    encoded = encode_sequences(sequences, tokenizer)
    offset = 1 if reading == "bidirectional" else 0  # the `<|prefix_lm|>` prompt before the bases
    device, dtype = model_device(model), model_dtype(model)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    batches = range(0, len(encoded), batch_size)
    out = []
    with inference_mode(model):
        for start in progress_bar(batches, len(batches), description, disable=not show_progress):
            chunk = encoded[start : start + batch_size]
            lengths = np.array([offset + len(ids) for ids in chunk])
            input_ids = np.full((len(chunk), lengths.max()), pad, dtype=np.int64)
            if offset:
                input_ids[:, 0] = prompt_id(tokenizer, "prefix_lm")
            for row, ids in enumerate(chunk):
                input_ids[row, offset : offset + len(ids)] = ids
            positions = np.arange(input_ids.shape[1])
            real = positions < lengths[:, None]  # (rows, width): not padding
            # Bidirectional: the prompt and the bases are one prefix; causal: no prefix, so no mask is built.
            segments = torch.from_numpy(np.where(real, 0, -1))
            mask = single_example_attention_mask(segments, torch.from_numpy(real & bool(offset)), dtype, device)
            outputs = model(
                input_ids=torch.from_numpy(input_ids).to(device), attention_mask=mask, output_hidden_states=True
            )
            bases = torch.from_numpy(real & (positions >= offset))
            weights = bases.to(device=device, dtype=torch.float32).unsqueeze(-1)
            last = torch.from_numpy(lengths - 1).to(device)
            layers = []
            for hidden in outputs.hidden_states:
                hidden = hidden.float()
                mean = (hidden * weights).sum(1) / weights.sum(1)
                layers.append(torch.stack([mean, hidden[torch.arange(len(chunk), device=device), last]], 1))
            out.append(torch.stack(layers, 1).cpu().numpy())
    return np.concatenate(out).astype(np.float32)


@dataclass
class ProbeResult:
    """The read-out chosen on dev and its test predictions.

    Attributes:
        layer (`int`): hidden-state index (0 = embeddings).
        pooling (`str`): `"mean"` or `"last"`.
        C (`float`): inverse L2 strength of the logistic regression.
        dev_mcc (`float`): dev MCC of the chosen read-out.
        test_mcc (`float`): its test MCC.
        test_predictions (`np.ndarray` of shape `(n_test,)`).
        dev_grid (`dict`): dev MCC of every `(layer, pooling, C)` tried, keyed `"layer/pooling/C"`.
    """

    layer: int
    pooling: str
    C: float
    dev_mcc: float
    test_mcc: float
    test_predictions: np.ndarray
    dev_grid: dict


def fit_probe(
    features: dict[str, np.ndarray],
    labels: dict[str, Sequence[int]],
    Cs: Sequence[float] = DEFAULT_CS,
    layers: Optional[Sequence[int]] = None,
) -> ProbeResult:
    """Choose (layer, pooling, C) by dev MCC, fit on train, predict test.

    Args:
        features (`dict[str, np.ndarray]`): `"train"`, `"dev"`, `"test"` arrays of shape
            `(n_split, num_layers + 1, len(POOLINGS), hidden)` from [`extract_features`].
        labels (`dict[str, Sequence[int]]`): labels per split.
        Cs (`Sequence[float]`, defaults to `(0.01, 0.1, 1.0)`): inverse regularisation strengths tried.
        layers (`Sequence[int]`, *optional*): hidden-state indices tried (default: all).
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    y = {split: np.asarray(labels[split]) for split in ("train", "dev", "test")}
    if len(np.unique(y["train"])) < 2:
        raise ValueError("the probe's train labels hold a single class; a classifier needs at least 2.")
    # Newton-Cholesky converges in a few iterations on these correlated features (lbfgs needed 100x longer); it
    # fits binary tasks only in scikit-learn < 1.6, so multi-class tasks use lbfgs.
    solver = "newton-cholesky" if len(np.unique(y["train"])) == 2 else "lbfgs"
    num_layers = features["train"].shape[1]
    best, grid = None, {}
    for layer in layers if layers is not None else range(num_layers):
        for p, pooling in enumerate(POOLINGS):
            scaler = StandardScaler().fit(features["train"][:, layer, p])
            x = {split: scaler.transform(features[split][:, layer, p]) for split in ("train", "dev", "test")}
            for C in Cs:
                classifier = LogisticRegression(C=C, solver=solver, max_iter=1000).fit(x["train"], y["train"])
                dev = matthews_corrcoef(y["dev"], classifier.predict(x["dev"]))
                grid[f"{layer}/{pooling}/{C}"] = dev
                if best is None or dev > best[0]:
                    best = (dev, layer, pooling, C, classifier, x["test"])
    dev, layer, pooling, C, classifier, x_test = best
    predictions = classifier.predict(x_test)
    return ProbeResult(
        layer=int(layer),
        pooling=pooling,
        C=float(C),
        dev_mcc=float(dev),
        test_mcc=matthews_corrcoef(y["test"], predictions),
        test_predictions=predictions,
        dev_grid=grid,
    )
