"""Classical baselines a DNA language model has to beat: order-k Markov chains (here); the k-mer logistic regression
is in [`~birdie_hf.evaluation.kmer`].

* [`MarkovModel`] predicts the next base from the previous `order` bases with add-`pseudocount` smoothed counts;
  [`markov_baseline_table`] reports its held-out negative log-likelihood per base for several orders, the number
  to compare with a language model's evaluation loss (in nats, or bits per base).
* [`~birdie_hf.evaluation.kmer.kmer_logistic_regression`] is the bag-of-k-mers classifier baseline for sequence
  classification tasks stored as `{train,dev,test}.csv` files (read by
  [`~birdie_hf.evaluation.task_files.read_task_csvs`]).

Sequences are passed as text: `str`, `bytes`, or a 1-D numpy array of ASCII codes (`uint8`) or single letters.
Token ids are not accepted; decode them with the tokenizer first. Letters are case-insensitive; anything outside
the alphabet (e.g. `N`) makes every window that touches it unusable, both for counting and for scoring.
"""

from __future__ import annotations

import math
from typing import Iterable, Iterator, Optional, Sequence, Union

import numpy as np

from .encoding import (
    SequenceLike,
    as_bytes,
    code_of,
    is_single_sequence,
    iter_chunks,
    iter_kmer_codes,
    iter_sequences,
    lookup_table,
    window_codes,
)


#: Largest number of (k+1)-mers a count table may have (alphabet_size ** (order + 1)).
_MAX_TABLE = 1 << 26


# ----------------------------------------------------------------------------------------------------------------
# Markov chains
# ----------------------------------------------------------------------------------------------------------------


class MarkovModel:
    """Order-k Markov chain for next-base prediction, with add-`pseudocount` smoothing.

    `P(x_i | x_{i-k} .. x_{i-1}) = (count(context, x_i) + pseudocount) / (count(context) + A * pseudocount)` where
    `A = len(alphabet)`. [`~MarkovModel.fit`] keeps the counts of every order 0..k, so the first `k` bases of a
    sequence, which have a shorter context, are scored with the longest context available (order `i` at position
    `i`) by [`~MarkovModel.nll_per_base`].

    Windows (context plus next base) that contain a letter outside the alphabet, e.g. `N`, are skipped when
    counting and give NaN when scoring.

    Args:
        order (`int`): context length k (0 = base composition only).
        alphabet (`str`, *optional*, defaults to `"ACGT"`): the letters modelled; case-insensitive.
        pseudocount (`float`, *optional*, defaults to 0.5): added to every count (0.5 = Krichevsky-Trofimov).

    Example:

    ```python
    >>> model = MarkovModel(order=2).fit(["ACGACGACGACG"])
    >>> model.log_likelihood("ACGA").shape  # positions 2 and 3
    (2,)
    ```
    """

    def __init__(self, order: int, alphabet: str = "ACGT", pseudocount: float = 0.5) -> None:
        if isinstance(order, bool) or not isinstance(order, (int, np.integer)) or order < 0:
            raise ValueError(f"`order` must be a non-negative integer, got {order!r}.")
        if not isinstance(alphabet, str) or len(alphabet) < 2:
            raise ValueError(f"`alphabet` must be a string of at least 2 letters, got {alphabet!r}.")
        if len(set(alphabet.upper())) != len(alphabet) or not all(c.isascii() and c.isalpha() for c in alphabet):
            raise ValueError(f"`alphabet` must hold distinct ASCII letters (case-insensitive), got {alphabet!r}.")
        if len(alphabet) ** (order + 1) > _MAX_TABLE:
            raise ValueError(
                f"`order`={order} needs {len(alphabet)}**{order + 1} counts, more than the supported {_MAX_TABLE}."
            )
        if not (isinstance(pseudocount, (int, float)) and math.isfinite(pseudocount) and pseudocount > 0):
            raise ValueError(f"`pseudocount` must be a finite number > 0, got {pseudocount!r}.")
        self.order = int(order)
        self.alphabet = alphabet.upper()
        self.pseudocount = float(pseudocount)
        self._table = lookup_table(self.alphabet)
        self._counts: Optional[list[np.ndarray]] = None
        self._log_probs: Optional[list[np.ndarray]] = None

    def __repr__(self) -> str:
        state = "fitted" if self.is_fitted else "not fitted"
        return f"MarkovModel(order={self.order}, alphabet={self.alphabet!r}, pseudocount={self.pseudocount}, {state})"

    @property
    def is_fitted(self) -> bool:
        return self._counts is not None

    @property
    def n_windows(self) -> int:
        """Number of (order+1)-mers counted by the last [`~MarkovModel.fit`]."""
        return int(self._require_fitted()[self.order].sum())

    def encode(self, sequence: SequenceLike) -> np.ndarray:
        """Letter indices of `sequence`, shape `(length,)`, int8, -1 for letters outside the alphabet."""
        return self._table[as_bytes(sequence, "sequence")]

    def fit(self, sequences: Union[SequenceLike, Iterable[SequenceLike]]) -> "MarkovModel":
        """Count the (j+1)-mers of every order j = 0..`order` in `sequences` (replacing earlier counts).

        Args:
            sequences: an iterable of sequences (`str`, `bytes` or 1-D letter arrays), or a single sequence.
                Consumed once, so a generator streaming a large genome is fine.

        Returns:
            `self`.
        """
        size = len(self.alphabet)
        counts = [np.zeros(size ** (j + 1), dtype=np.int64) for j in range(self.order + 1)]
        for sequence in iter_sequences(sequences, "sequences"):
            codes = self.encode(sequence)
            for piece, starts in iter_chunks(codes, overlap=self.order):
                for width, kmer_codes, valid in iter_kmer_codes(piece, self.order + 1, size):
                    kept = kmer_codes[:starts][valid[:starts]]
                    counts[width - 1] += np.bincount(kept, minlength=counts[width - 1].shape[0])
        self._counts = counts
        self._log_probs = [self._smoothed_log_probs(table) for table in counts]
        return self

    def _smoothed_log_probs(self, counts: np.ndarray) -> np.ndarray:
        """Flat `(A**(j+1),)` counts -> flat log P(last letter | first j letters) with the pseudocount."""
        size = len(self.alphabet)
        table = counts.reshape(-1, size).astype(np.float64) + self.pseudocount
        return np.log(table / table.sum(axis=1, keepdims=True)).reshape(-1)

    def _require_fitted(self) -> list[np.ndarray]:
        if self._counts is None:
            raise RuntimeError("This MarkovModel is not fitted yet; call `fit(sequences)` first.")
        return self._counts

    def counts(self, order: Optional[int] = None) -> np.ndarray:
        """Counts of the fitted (order+1)-mers, shape `(A**order, A)`: row = context code, column = next letter.

        Args:
            order (`int`, *optional*): 0..`self.order`; defaults to `self.order`.
        """
        order = self._check_order(order)
        return self._require_fitted()[order].reshape(-1, len(self.alphabet)).copy()

    def _check_order(self, order: Optional[int]) -> int:
        if order is None:
            return self.order
        if isinstance(order, bool) or not isinstance(order, (int, np.integer)) or not 0 <= order <= self.order:
            raise ValueError(f"`order` must be an integer in [0, {self.order}], got {order!r}.")
        return int(order)

    def with_order(self, order: int) -> "MarkovModel":
        """A fitted model of a lower `order` sharing these counts (no refit: counts of every order are kept)."""
        order = self._check_order(order)
        counts = self._require_fitted()
        lower = MarkovModel(order, alphabet=self.alphabet, pseudocount=self.pseudocount)
        lower._counts = counts[: order + 1]
        lower._log_probs = self._log_probs[: order + 1]
        return lower

    def next_base_probabilities(self, context: SequenceLike = "") -> np.ndarray:
        """Distribution of the next letter, shape `(len(alphabet),)`, after `context`.

        Uses the last `order` letters of `context`, or all of it when shorter (lower-order counts).

        Raises:
            `ValueError`: the used part of `context` holds a letter outside the alphabet.
        """
        self._require_fitted()
        codes = self.encode(context)
        codes = codes[codes.shape[0] - min(self.order, codes.shape[0]) :]
        if (codes < 0).any():
            raise ValueError(
                f"`context` must only hold letters of {self.alphabet!r} in its last {self.order} positions."
            )
        size = len(self.alphabet)
        context_code = code_of(codes, size)
        row = self._log_probs[codes.shape[0]].reshape(-1, size)[context_code]
        return np.exp(row)

    def _score(self, codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Natural-log probabilities of each letter of an encoded sequence.

        Returns:
            `(prefix, full)`: `prefix` of shape `(min(order, length),)` scores position `i < order` with order `i`;
            `full` of shape `(max(length - order, 0),)` scores positions `order..length-1` with order `order`.
            NaN where the window holds a letter outside the alphabet.
        """
        self._require_fitted()
        size = len(self.alphabet)
        prefix = np.full(min(self.order, codes.shape[0]), np.nan)
        for position in range(prefix.shape[0]):
            window = codes[: position + 1]
            if (window >= 0).all():
                prefix[position] = self._log_probs[position][code_of(window, size)]
        pieces = []
        for piece, starts in iter_chunks(codes, overlap=self.order):
            kmer_codes, valid = window_codes(piece, self.order + 1, size)
            kmer_codes, valid = kmer_codes[:starts], valid[:starts]
            pieces.append(np.where(valid, self._log_probs[self.order][kmer_codes], np.nan))
        full = np.concatenate(pieces) if pieces else np.empty(0)
        return prefix, full

    def log_likelihood(self, sequence: SequenceLike) -> np.ndarray:
        """Per-position natural-log probabilities `log P(x_i | x_{i-order} .. x_{i-1})`.

        Args:
            sequence: one sequence (`str`, `bytes` or 1-D letter array).

        Returns:
            `np.ndarray` of shape `(max(len(sequence) - order, 0),)`, float64: entry `j` scores position
            `order + j`; NaN where the base or its context holds a letter outside the alphabet.
        """
        if not is_single_sequence(sequence):
            raise TypeError(f"`sequence` must be one sequence, got {type(sequence).__name__}; see `nll_per_base`.")
        return self._score(self.encode(sequence))[1]

    def _nll_sum(self, sequences: Iterable[np.ndarray]) -> tuple[float, int]:
        total, scored = 0.0, 0
        for codes in sequences:
            for log_probs in self._score(codes):
                finite = log_probs[~np.isnan(log_probs)]
                total -= float(finite.sum())
                scored += finite.shape[0]
        return total, scored

    def nll_per_base(self, sequences: Union[SequenceLike, Iterable[SequenceLike]]) -> float:
        """Mean negative log-likelihood per base, in nats, over every scorable position of `sequences`.

        Every position is scored, the first `order` of each sequence with the shorter context they have; positions
        whose base or context holds a letter outside the alphabet are left out. Divide by `ln 2` for bits per base.

        Raises:
            `ValueError`: no position could be scored (no sequences, or only letters outside the alphabet).
        """
        total, scored = self._nll_sum(self.encode(s) for s in iter_sequences(sequences, "sequences"))
        if scored == 0:
            raise ValueError("`sequences` has no scorable position (empty, or no letters of the alphabet).")
        return total / scored


def markov_baseline_table(
    train_sequences: Union[SequenceLike, Iterable[SequenceLike]],
    heldout_sequences: Union[SequenceLike, Iterable[SequenceLike]],
    orders: Sequence[int] = (2, 3, 4, 5, 6),
    alphabet: str = "ACGT",
    pseudocount: float = 0.5,
) -> list[dict]:
    """Held-out negative log-likelihood of Markov chains of several orders, each fitted on `train_sequences`.

    The counts are collected once, for the highest order (which yields every lower order too), so the training
    sequences are read once and may be a generator.

    Args:
        train_sequences: sequences to fit on.
        heldout_sequences: sequences to score, see [`MarkovModel.nll_per_base`].
        orders (`Sequence[int]`, *optional*, defaults to `(2, 3, 4, 5, 6)`): orders to report after order 0.
        alphabet (`str`, *optional*, defaults to `"ACGT"`): see [`MarkovModel`].
        pseudocount (`float`, *optional*, defaults to 0.5): see [`MarkovModel`].

    Returns:
        `list[dict]`: one `{"order": k, "nll": nats_per_base, "bits_per_base": bits}` per order, order 0 (base
        composition) first, then `orders` in the given order (duplicates and a repeated 0 dropped).
    """
    if isinstance(orders, (int, np.integer)) or not isinstance(orders, Iterable):
        raise ValueError(f"`orders` must be a sequence of non-negative integers, got {orders!r}.")
    report = [0]
    for order in orders:
        if isinstance(order, bool) or not isinstance(order, (int, np.integer)) or order < 0:
            raise ValueError(f"`orders` must only hold non-negative integers, got {order!r} in {orders!r}.")
        if int(order) not in report:
            report.append(int(order))
    model = MarkovModel(max(report), alphabet=alphabet, pseudocount=pseudocount).fit(train_sequences)
    heldout = [model.encode(s) for s in iter_sequences(heldout_sequences, "heldout_sequences")]
    rows = []
    for order in report:
        total, scored = model.with_order(order)._nll_sum(heldout)
        if scored == 0:
            raise ValueError("`heldout_sequences` has no scorable position (empty, or no letters of the alphabet).")
        nll = total / scored
        rows.append({"order": order, "nll": nll, "bits_per_base": nll / math.log(2)})
    return rows


def windows_to_text(windows: Iterable[Sequence[int]], tokenizer) -> Iterator[str]:
    """Decode token-id windows (as [`load_genome_windows`] stores them) back to base letters, one string each."""
    table = np.full(max(len(tokenizer), 256), "N", dtype="<U1")
    for base in "ACGTN":
        table[tokenizer.convert_tokens_to_ids(base)] = base
    for window in windows:
        yield "".join(table[np.asarray(window, dtype=np.int64)].tolist())


def next_base_nll(model, windows: Sequence[Sequence[int]], tokenizer, batch_size: int = 32) -> float:
    """Mean causal next-base negative log-likelihood (nats) of `model` over `windows` of token ids, shape
    `(num_windows, window_length)`, as a plain left-to-right read (no prompt). Positions whose target is `N` are left
    out, as the Markov baselines leave them out."""
    import torch

    n_id = tokenizer.convert_tokens_to_ids("N")
    device = next(model.parameters()).device
    total, count = 0.0, 0
    was_training = model.training
    model.eval()
    with torch.no_grad():
        by_length: dict[int, list] = {}
        for window in windows:
            by_length.setdefault(len(window), []).append(window)
        batches = [group[i : i + batch_size] for group in by_length.values() for i in range(0, len(group), batch_size)]
        for batch in batches:
            ids = torch.as_tensor(np.asarray(batch, dtype=np.int64), device=device)
            logits = model(input_ids=ids, use_cache=False).logits[:, :-1].float()
            nll = torch.nn.functional.cross_entropy(logits.transpose(1, 2), ids[:, 1:], reduction="none")
            keep = ids[:, 1:] != n_id
            total += float(nll[keep].sum())
            count += int(keep.sum())
    model.train(was_training)
    return total / max(count, 1)
