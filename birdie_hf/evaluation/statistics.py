"""Intervals and decisions for classification read-outs: Matthews correlation with a (cluster) bootstrap.

Within one pre-training seed, test examples are resampled *by group* (a genome block, a chromosome region: examples
that share a group are not independent) with the same resamples for every arm, so the interval of a difference
between two arms is paired. Across pre-training seeds (the unit of replication), per-seed values are summarised with a
t interval. The decision rule applied by every report:

- **better**: the 95% interval of (arm - baseline) lies entirely above 0;
- **worse**: it lies entirely below 0;
- **inconclusive**: it contains 0.

With several pre-training seeds the interval is the t interval over seeds of the per-seed differences; with one seed
it is the paired bootstrap interval, and the report says that replication across seeds was not measured.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Mapping, Optional, Sequence

import numpy as np


DECISIONS = ("better", "worse", "inconclusive")


@dataclass(frozen=True)
class Interval:
    """A point estimate with a two-sided interval (`low`, `high`) at `confidence`."""

    estimate: float
    low: float
    high: float
    confidence: float = 0.95

    def to_dict(self) -> dict:
        return asdict(self)


def decide(interval: Interval, higher_is_better: bool = True) -> str:
    """`"better"` if the interval of a difference lies above 0, `"worse"` if below, else `"inconclusive"` (the other
    way round with `higher_is_better=False`, for a loss)."""
    if interval.low > 0:
        return "better" if higher_is_better else "worse"
    if interval.high < 0:
        return "worse" if higher_is_better else "better"
    return "inconclusive"


def mcc_from_confusion(confusion: np.ndarray) -> np.ndarray:
    """Matthews correlation of confusion matrices `(..., K, K)` (rows: true class, columns: predicted), any K >= 2;
    0 where it is undefined (a constant prediction or a single true class), as scikit-learn does."""
    confusion = np.asarray(confusion, dtype=np.float64)
    total = confusion.sum(axis=(-2, -1))
    correct = np.trace(confusion, axis1=-2, axis2=-1)
    true = confusion.sum(axis=-1)
    predicted = confusion.sum(axis=-2)
    numerator = correct * total - (true * predicted).sum(-1)
    denominator = np.sqrt((total**2 - (predicted**2).sum(-1)) * (total**2 - (true**2).sum(-1)))
    with np.errstate(invalid="ignore", divide="ignore"):
        value = np.where(denominator > 0, numerator / np.where(denominator > 0, denominator, 1), 0.0)
    return value


def matthews_corrcoef(labels: Sequence[int], predictions: Sequence[int]) -> float:
    """Matthews correlation of two label sequences (equal to scikit-learn's `matthews_corrcoef`)."""
    labels, predictions = np.asarray(labels), np.asarray(predictions)
    classes = np.union1d(labels, predictions)
    k = max(len(classes), 2)
    index = {c: i for i, c in enumerate(classes)}
    confusion = np.zeros((k, k))
    np.add.at(confusion, ([index[c] for c in labels], [index[c] for c in predictions]), 1)
    return float(mcc_from_confusion(confusion))


def prediction_metrics(labels: Sequence[int], predictions: Sequence[int]) -> dict[str, float]:
    """MCC (the NT benchmark's primary metric, [`matthews_corrcoef`]), macro F1 and accuracy of predicted labels,
    shape `(n,)` each: `{"mcc", "f1", "accuracy"}`. The one metric set of the k-mer baseline and fine-tuning."""
    from sklearn.metrics import accuracy_score, f1_score

    labels, predictions = np.asarray(labels), np.asarray(predictions)
    return {
        "mcc": matthews_corrcoef(labels, predictions),
        "f1": float(f1_score(labels, predictions, average="macro")),
        "accuracy": float(accuracy_score(labels, predictions)),
    }


class GroupBootstrap:
    """Resampling weights over groups, shared by every arm it scores (so differences are paired).

    Each of `n_resamples` replicates draws the groups with replacement (as many as there are); an example's weight
    is how often its group was drawn. With `groups=None` every example is its own group (the ordinary bootstrap).

    Args:
        groups (`Sequence`, *optional*): one group id per test example, shape `(n,)`.
        n (`int`, *optional*): number of examples when `groups` is None.
        n_resamples (`int`, defaults to `2000`).
        seed (`int`, defaults to `0`).
    """

    def __init__(
        self, groups: Optional[Sequence] = None, n: Optional[int] = None, n_resamples: int = 2000, seed: int = 0
    ):
        if groups is None:
            if n is None:
                raise ValueError("GroupBootstrap needs `groups` or the number of examples `n`.")
            self.group_index = np.arange(n)
        else:
            _, self.group_index = np.unique(np.asarray(groups, dtype=str), return_inverse=True)
        if n_resamples < 1:
            raise ValueError(f"`n_resamples` must be at least 1, got {n_resamples}.")
        self.num_groups = int(self.group_index.max()) + 1 if len(self.group_index) else 0
        if self.num_groups < 2:
            raise ValueError(f"a bootstrap needs at least 2 groups of test examples, got {self.num_groups}.")
        rng = np.random.default_rng(seed)
        # How often each group is drawn in each replicate (G draws with replacement): (n_resamples, G) counts.
        uniform = np.full(self.num_groups, 1.0 / self.num_groups)
        self.weights = rng.multinomial(self.num_groups, uniform, size=n_resamples).astype(np.float32)

    def __len__(self) -> int:
        return len(self.group_index)

    def mcc(self, labels: Sequence[int], predictions: Sequence[int]) -> tuple[float, np.ndarray]:
        """Matthews correlation on the full test set and on every replicate, shape `(n_resamples,)`."""
        labels, predictions = np.asarray(labels), np.asarray(predictions)
        if labels.shape != (len(self),) or predictions.shape != (len(self),):
            raise ValueError(
                f"labels {labels.shape} and predictions {predictions.shape} must both have shape ({len(self)},), "
                "one per test example of the bootstrap."
            )
        classes = np.union1d(labels, predictions)
        k = max(len(classes), 2)
        true, predicted = np.searchsorted(classes, labels), np.searchsorted(classes, predictions)
        per_group = np.zeros((self.num_groups, k * k))
        np.add.at(per_group, (self.group_index, true * k + predicted), 1)
        full = mcc_from_confusion(per_group.sum(0).reshape(k, k))
        replicates = mcc_from_confusion((self.weights @ per_group).reshape(-1, k, k))
        return float(full), replicates


def percentile_interval(estimate: float, replicates: np.ndarray, confidence: float = 0.95) -> Interval:
    """`estimate` with the percentile interval of its bootstrap `replicates`."""
    tail = 100 * (1 - confidence) / 2
    low, high = np.percentile(replicates, [tail, 100 - tail])
    return Interval(float(estimate), float(low), float(high), confidence)


def bootstrap_mcc(
    labels: Sequence[int],
    predictions: Mapping[str, Sequence[int]],
    groups: Optional[Sequence] = None,
    baseline: Optional[str] = None,
    n_resamples: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> dict:
    """MCC with a percentile interval for each arm, and paired differences against `baseline`.

    Args:
        labels (`Sequence[int]`): true labels of the test examples, shape `(n,)`.
        predictions (`Mapping[str, Sequence[int]]`): arm name -> predicted labels, each shape `(n,)`.
        groups (`Sequence`, *optional*): group id per example (resampled as units); None: each example alone.
        baseline (`str`, *optional*): arm to difference against (must be in `predictions`).

    Returns:
        `{"arms": {arm: Interval}, "differences": {arm: Interval}, "decisions": {arm: decision}}` (differences and
        decisions for every arm but the baseline; empty without one).
    """
    if baseline is not None and baseline not in predictions:
        raise ValueError(f"baseline arm {baseline!r} is not among the arms {sorted(predictions)}.")
    bootstrap = GroupBootstrap(groups, n=len(labels), n_resamples=n_resamples, seed=seed)
    scored = {arm: bootstrap.mcc(labels, p) for arm, p in predictions.items()}
    arms = {arm: percentile_interval(full, reps, confidence) for arm, (full, reps) in scored.items()}
    differences, decisions = {}, {}
    if baseline is not None:
        base_full, base_reps = scored[baseline]
        for arm, (full, reps) in scored.items():
            if arm != baseline:
                differences[arm] = percentile_interval(full - base_full, reps - base_reps, confidence)
                decisions[arm] = decide(differences[arm])
    return {"arms": arms, "differences": differences, "decisions": decisions}


def with_seed_spread(test: Interval, values: Sequence[float]) -> Interval:
    """The interval of a mean over pre-training seeds counting both sources of noise: `test` (test sampling, around
    the mean) and the spread of the per-seed `values` (Student t), their half-widths added in quadrature."""
    seed_half = seed_interval(values, test.confidence).high - test.estimate
    return Interval(
        test.estimate,
        test.estimate - float(np.hypot(test.estimate - test.low, seed_half)),
        test.estimate + float(np.hypot(test.high - test.estimate, seed_half)),
        test.confidence,
    )


def seed_interval(values: Sequence[float], confidence: float = 0.95) -> Interval:
    """Mean of per-seed values with a Student t interval over seeds (the pre-training seed is the unit of
    replication). Needs at least 2 values."""
    from scipy import stats

    values = np.asarray(values, dtype=np.float64)
    if values.size < 2:
        raise ValueError(f"a t interval over seeds needs at least 2 seeds, got {values.size}.")
    mean = float(values.mean())
    half = float(stats.t.ppf(0.5 + confidence / 2, df=values.size - 1) * values.std(ddof=1) / np.sqrt(values.size))
    return Interval(mean, mean - half, mean + half, confidence)
