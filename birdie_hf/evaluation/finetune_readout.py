"""Fine-tuning to convergence as the instrument's secondary read-out.

A frozen probe asks what pre-training stored; fine-tuning asks what the whole network can become from that start,
which is what downstream users do. To measure the second rather than how fast an initialisation adapts in a fixed
number of updates, every run here trains until dev stops improving (early stopping on dev MCC, the best epoch
restored), and the learning rate is chosen on dev from a small sweep:

- for each arm (all its pre-training seeds share one choice) and reading, the sweep runs on the arm's first seed with
  the first fine-tuning seed; the learning rate with the best dev MCC is kept;
- every pre-training seed is then fine-tuned at that rate with each of `finetune_seeds` (the sweep's run is reused
  for the first), and its test predictions are scored; with several fine-tuning seeds the read-out of a pre-training
  seed is their mean MCC (on the shared bootstrap replicates, so differences stay paired).

The random-init control goes through exactly the same protocol, so "does pre-training help after fine-tuning?" is
answered at equal tuning effort. Readings: `causal` (the last base's state, causal attention) and `bidirectional`
(every position sees the whole input, opened with `<|prefix_lm|>` as Birdie's prefix-LM examples are; see
[`~.finetune.finetune_classifier`]).
"""

from __future__ import annotations

import math
import tempfile
from dataclasses import dataclass
from typing import Optional

import numpy as np

from .finetune import finetune_classifier
from .probes import READING_MODES


#: Suffix of the `reading` column for fine-tuned read-outs (`"causal, fine-tuned"`), so that the instrument pairs
#: each fine-tuned arm with the fine-tuned control of the same reading.
FINETUNED = ", fine-tuned"


@dataclass
class FinetuneReadoutConfig:
    """Parameters:
    learning_rates (`tuple`, defaults to `(3e-4, 1e-3, 3e-3)`): the sweep; the best dev MCC wins.
    finetune_seeds (`tuple`, defaults to `(0,)`): fine-tuning seeds run at the chosen rate on every pre-training seed.
    readings (`tuple`, defaults to `("causal", "bidirectional")`): attention modes fine-tuned.
    max_epochs (`int`, defaults to `12`): the cap on training; early stopping usually ends sooner.
    patience (`int`, defaults to `2`): epochs without a better dev MCC before stopping.
    batch_size (`int`, defaults to `32`): training batch size.
    tasks (`tuple`, *optional*): the tasks fine-tuned (each run costs minutes on a CPU); `None` means every task.
    """

    learning_rates: tuple = (3e-4, 1e-3, 3e-3)
    finetune_seeds: tuple = (0,)
    readings: tuple = READING_MODES
    max_epochs: int = 12
    patience: int = 2
    batch_size: int = 32
    tasks: Optional[tuple] = None

    def __post_init__(self):
        if not self.learning_rates or any(not (isinstance(lr, (int, float)) and lr > 0) for lr in self.learning_rates):
            raise ValueError(f"`learning_rates` must be positive numbers, got {self.learning_rates}.")
        if not self.finetune_seeds:
            raise ValueError("`finetune_seeds` must hold at least one seed.")
        unknown = [r for r in self.readings if r not in READING_MODES]
        if unknown or not self.readings:
            raise ValueError(f"`readings` must be a non-empty subset of {READING_MODES}, got {self.readings}.")
        if self.max_epochs < 1 or self.patience < 1 or self.batch_size < 1:
            raise ValueError(
                f"`max_epochs`, `patience` and `batch_size` must be at least 1, got {self.max_epochs}, "
                f"{self.patience}, {self.batch_size}."
            )

    def applies_to(self, task: str) -> bool:
        return self.tasks is None or task in self.tasks

    def runs_per_arm(self, num_seeds: int) -> int:
        """Fine-tuning runs for one reading of an arm with `num_seeds` pre-training seeds."""
        return len(self.learning_rates) + len(self.finetune_seeds) - 1 + (num_seeds - 1) * len(self.finetune_seeds)


@dataclass
class FinetuneRun:
    """One fine-tuning: its dev MCC (best epoch), test predictions `(n_test,)` and the epoch early stopping kept."""

    learning_rate: float
    seed: int
    dev_mcc: float
    test_predictions: np.ndarray
    best_epoch: Optional[float]


def _as_dataset(data) -> "DatasetDict":  # noqa: F821 - datasets is imported lazily
    from datasets import Dataset, DatasetDict

    return DatasetDict(
        {
            name: Dataset.from_dict({"sequence": list(data[split].sequences), "label": np.asarray(data[split].labels)})
            for name, split in (("train", "train"), ("validation", "dev"), ("test", "test"))
        }
    )


def finetune_once(checkpoint: str, dataset, reading: str, learning_rate: float, seed: int, config) -> FinetuneRun:
    """Fine-tune `checkpoint` (a folder) on `dataset` in `reading` mode until dev stops improving."""
    with tempfile.TemporaryDirectory(prefix="birdie-finetune-") as work:
        result = finetune_classifier(
            checkpoint,
            dataset,
            work,
            seed=seed,
            learning_rate=learning_rate,
            num_train_epochs=config.max_epochs,
            batch_size=config.batch_size,
            early_stopping_patience=config.patience,
            attention=reading,
            save_model=False,
            return_predictions=True,
            show_progress=False,
        )
    return FinetuneRun(
        learning_rate, seed, float(result["validation"]["mcc"]), result["test_predictions"], result["best_epoch"]
    )


class FinetuneSweep:
    """Runs the protocol of the module docstring for one task, remembering each arm's chosen rate across its seeds.

    Args:
        data: the task's splits (`{"train", "dev", "test"}` -> `TaskSplit`).
        config ([`FinetuneReadoutConfig`]).
        progress: a tqdm bar advanced once per fine-tuning run (optional).
    """

    def __init__(self, data, config: FinetuneReadoutConfig, progress=None):
        self.dataset = _as_dataset(data)
        self.config = config
        self.progress = progress
        self.chosen: dict[tuple[str, str], float] = {}
        self.sweeps: dict[tuple[str, str], dict[float, float]] = {}

    def _run(self, checkpoint, reading, learning_rate, seed) -> FinetuneRun:
        run = finetune_once(checkpoint, self.dataset, reading, learning_rate, seed, self.config)
        if self.progress is not None:
            self.progress.update(1)
        return run

    def runs(self, arm_name: str, checkpoint: str, reading: str) -> list[FinetuneRun]:
        """The fine-tuning runs of one pre-training seed of `arm_name` (a checkpoint folder) at the arm's chosen
        rate, one per fine-tuning seed; the arm's first call also runs the sweep."""
        key = (arm_name, reading)
        seeds = list(self.config.finetune_seeds)
        done = {}
        if key not in self.chosen:
            sweep = {lr: self._run(checkpoint, reading, lr, seeds[0]) for lr in self.config.learning_rates}
            # The best dev MCC; ties go to the smaller rate. A NaN dev score never wins.
            best = max(sweep, key=lambda lr: (_finite(sweep[lr].dev_mcc), -lr))
            self.chosen[key] = best
            self.sweeps[key] = {lr: run.dev_mcc for lr, run in sweep.items()}
            done[seeds[0]] = sweep[best]
        rate = self.chosen[key]
        return [done[seed] if seed in done else self._run(checkpoint, reading, rate, seed) for seed in seeds]


def _finite(value: float) -> float:
    return value if math.isfinite(value) else -math.inf
