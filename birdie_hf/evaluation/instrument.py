"""The evaluation instrument: frozen probes on every checkpoint, with controls, intervals and decisions.

For each task (a folder of `{train,dev,test}.csv`, columns `sequence,label` and optionally `group`) and each
checkpoint, the frozen model is read causally and bidirectionally and probed ([`~.probes.fit_probe`]). Every table
also holds:

- `random-init`: the checkpoints' architecture and tokenizer, untrained, probed the same way (per reading);
- `markov`: one order-k Markov chain per class, order chosen on dev; `composition`: the same at order 0;
- `3-mer LR` and `6-mer LR`: logistic regression on k-mer frequencies, C chosen on dev;
- `one-hot LR` and `CNN`: the positional baselines ([`~.positional`]), which see where each base is; a model that
  beats the k-mer rows but not these may have learned no more than position-specific base preferences.

Test MCCs get 95% cluster-bootstrap intervals (the task's `group` column, e.g. genome blocks, resampled as units;
the same resamples for every row, so differences are paired). Each pre-trained read-out is differenced against the
random-init control of the same reading ("does pre-training help at all?") and, if given, against a baseline
checkpoint of the same reading; [`~.statistics.decide`] turns each interval into better / worse / inconclusive.
Checkpoints named `arm@seed` are pre-training seeds of one arm (the unit of replication): differences are paired by
seed label and summarised over seeds with an interval counting both the spread over seeds and test sampling. A
baseline that was only trained causally (next-token prediction) read bidirectionally is read in a way it never
learned: compare readings side by side before crediting a bidirectional difference to the objective.
"""

from __future__ import annotations

import json
import os
import textwrap
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Optional, Sequence, Union

import numpy as np

from ..plotting import import_pyplot, save_figure
from .controls import markov_classifier, random_init_like
from .finetune_readout import FINETUNED, FinetuneReadoutConfig, FinetuneSweep
from .kmer import kmer_logistic_regression
from .positional import cnn_classifier, onehot_logistic_regression
from .probes import DEFAULT_CS, READING_MODES, encode_sequences, extract_features, fit_probe
from .statistics import GroupBootstrap, Interval, decide, percentile_interval, with_seed_spread
from .task_files import SPLITS, read_task_split


PathLike = Union[str, os.PathLike]
RANDOM_INIT = "random-init"
DECISION_RULE = (
    "better: the 95% interval of (read-out - reference) lies above 0; worse: below 0; inconclusive: it contains 0. "
    "Intervals: a paired cluster bootstrap over test groups within a pre-training seed; with >= 2 pre-training seeds, "
    "the mean over seeds with the t interval over seeds and the bootstrap of the seed-mean combined (half-widths in "
    "quadrature). Each decision is at 95% on its own: across the ~20 decisions of a suite about one is expected to "
    "read better or worse by chance (no multiple-comparison correction)."
)


class TaskDataError(ValueError):
    """A task folder that cannot be evaluated (missing split or column, one class, bad characters)."""


@dataclass
class TaskSplit:
    sequences: list[str]
    labels: np.ndarray
    groups: Optional[list[str]] = None


def load_task(folder: PathLike) -> dict[str, TaskSplit]:
    """Read `folder/{train,dev,test}.csv`; checks every split has at least 2 classes and no empty sequence.

    Raises:
        [`TaskDataError`]: naming the folder, split and problem.
    """
    folder = Path(folder)
    splits = {}
    for split in SPLITS:
        try:
            sequences, labels, groups = read_task_split(folder / f"{split}.csv")
        except (FileNotFoundError, ValueError) as error:
            raise TaskDataError(f"task {folder.name!r}: {error}") from None
        labels = np.asarray(labels)
        if len(np.unique(labels)) < 2:
            raise TaskDataError(
                f"task {folder.name!r}: {split}.csv holds a single class ({labels[0]}); a classification task needs "
                "at least 2."
            )
        splits[split] = TaskSplit(sequences, labels, groups)
    return splits


def task_from_dataset(data, name: str = "task") -> dict[str, TaskSplit]:
    """A `datasets.DatasetDict` with `train`/`validation`/`test` splits and `sequence`/`label` columns (as
    [`~birdie_hf.evaluation.finetune.load_classification_task`] returns for Nucleotide Transformer tasks on the Hub) as the
    instrument's splits (`validation` becomes `dev`; a `group` column is kept if present).

    Raises:
        [`TaskDataError`]: a split or column is missing, or a split holds a single class.
    """
    splits = {}
    for split, source in (("train", "train"), ("dev", "validation"), ("test", "test")):
        if source not in data:
            raise TaskDataError(f"task {name!r} has no {source!r} split (splits: {sorted(data)}).")
        part = data[source]
        missing = {"sequence", "label"} - set(part.column_names)
        if missing:
            raise TaskDataError(f"task {name!r}, split {source!r}: missing columns {sorted(missing)}.")
        labels = np.asarray(part["label"])
        if len(np.unique(labels)) < 2:
            raise TaskDataError(f"task {name!r}, split {source!r} holds a single class; a classifier needs 2.")
        groups = list(map(str, part["group"])) if "group" in part.column_names else None
        splits[split] = TaskSplit([s.strip() for s in part["sequence"]], labels, groups)
    return splits


def check_task_characters(tasks: dict[str, dict[str, TaskSplit]], tokenizer) -> None:
    """Raise [`TaskDataError`] naming the task, split, row and character when a sequence has a character the
    tokenizer cannot read as a base (before any model runs)."""
    for task, splits in tasks.items():
        for split, data in splits.items():
            try:
                encode_sequences(data.sequences, tokenizer, name=f"{split}.csv row")
            except ValueError as error:
                raise TaskDataError(f"task {task!r}: {error}") from None


@dataclass
class ProbeSuiteConfig:
    """Parameters:
    readings (`tuple`, defaults to `("causal", "bidirectional")`): how each checkpoint is read.
    Cs (`tuple`, defaults to `(0.01, 0.1, 1.0)`): the probes' inverse L2 strengths (chosen on dev).
    random_init_seeds (`tuple`, defaults to `(0,)`): seeds of the random-init controls.
    kmer_ks (`tuple`, defaults to `(3, 6)`): k of the k-mer logistic-regression baselines.
    markov_orders (`tuple`, defaults to `(0, 1, 2, 3, 4, 5)`): orders tried by the Markov classifier.
    positional_baselines (`bool`, defaults to `True`): also fit the baselines that see position
        ([`~.positional`]: one-hot logistic regression and a small CNN, trained on the task's train split).
    probe_layer_fractions (`tuple`, *optional*): probe only the hidden states at these fractions of the depth (e.g.
        `(0.5, 1.0)`: the middle and the last layer; 0 is the embeddings); default: every layer. A reduced grid for
        read-outs that must be quick (the GPU lease).
    keep_predictions (`bool`, defaults to `False`): also record each row's test predictions (`test_predictions`: one
        label per test example; a list of such lists for a fine-tuned row, one per fine-tuning seed) and each task's
        test labels and groups, so intervals
        and decisions can be recomputed elsewhere (e.g. on a CPU, from what a GPU machine returned).
    batch_size (`int`, defaults to `64`): sequences per forward pass.
    n_resamples (`int`, defaults to `2000`): bootstrap replicates.
    seed (`int`, defaults to `0`): bootstrap seed.
    """

    readings: tuple = READING_MODES
    Cs: tuple = DEFAULT_CS
    random_init_seeds: tuple = (0,)
    kmer_ks: tuple = (3, 6)
    markov_orders: tuple = (0, 1, 2, 3, 4, 5)
    positional_baselines: bool = True
    probe_layer_fractions: Optional[tuple] = None
    keep_predictions: bool = False
    batch_size: int = 64
    n_resamples: int = 2000
    seed: int = 0

    def __post_init__(self):
        unknown = [r for r in self.readings if r not in READING_MODES]
        if unknown or not self.readings:
            raise ValueError(f"`readings` must be a non-empty subset of {READING_MODES}, got {self.readings}.")


@dataclass
class Arm:
    """A model to probe: `name` (the arm), `seed` (its pre-training seed label), `kind` (`pretrained`/`control`)."""

    name: str
    seed: str
    model: object
    tokenizer: object
    kind: str = "pretrained"
    source: str = ""


def parse_arm_name(name: str) -> tuple[str, str]:
    """`"birdie@s1"` -> `("birdie", "s1")`; `"birdie"` -> `("birdie", "0")`."""
    arm, _, seed = name.partition("@")
    if not arm:
        raise ValueError(f"checkpoint name {name!r} has no arm before '@'.")
    return arm, seed or "0"


#: Read-out names the instrument uses for its own rows.
RESERVED_NAMES = (RANDOM_INIT, "markov", "composition", "3-mer LR", "6-mer LR")


def baseline_names(baseline: Union[None, str, Sequence[str]]) -> list[str]:
    """`baseline` as a list of arm names: `None` -> `[]`, `"ntp"` -> `["ntp"]`, a sequence as it is."""
    if baseline is None:
        return []
    return [baseline] if isinstance(baseline, str) else list(baseline)


def check_baselines(arms: Sequence[Arm], baseline: Union[None, str, Sequence[str]]) -> None:
    """Refuse a baseline that is not one of the checkpoints' arms (named in the message)."""
    names = {arm.name for arm in arms}
    for name in baseline_names(baseline):
        if name not in names:
            raise ValueError(f"baseline {name!r} is not one of the checkpoints' arms {sorted(names)}.")


def reference_rows(baseline: Union[None, str, Sequence[str]]) -> list[tuple[str, str]]:
    """The `(read-out, description)` references of every pre-trained row: the random-init control, then each baseline
    arm read the same way."""
    return [(RANDOM_INIT, "random-init control, same reading")] + [
        (name, f"{name}, same reading") for name in baseline_names(baseline)
    ]


def check_arm_names(
    arms: Sequence[Arm], random_init_seeds: Sequence, baseline: Union[None, str, Sequence[str]] = None
) -> None:
    """Refuse repeated (arm, seed) pairs, reserved names, and seed labels that cannot be paired: every arm compared
    with another must carry the same `@seed` labels, unless that reference has a single seed."""
    seen = {}
    for arm in arms:
        if arm.name in RESERVED_NAMES or arm.name.endswith("-mer LR"):
            raise ValueError(f"checkpoint name {arm.name!r} is reserved for the instrument's own rows; rename it.")
        key = (arm.name, arm.seed)
        if key in seen:
            raise ValueError(
                f"checkpoints {seen[key]!r} and {arm.source!r} are both {arm.name}@{arm.seed}: give each pre-training "
                "seed its own @seed label."
            )
        seen[key] = arm.source
    seeds_of = defaultdict(set)
    for arm in arms:
        seeds_of[arm.name].add(arm.seed)
    references = {RANDOM_INIT: {str(s) for s in random_init_seeds}}
    for name in baseline_names(baseline):
        references[name] = seeds_of[name]
    for name, seeds in seeds_of.items():
        for reference, ref_seeds in references.items():
            if reference == name or len(ref_seeds) == 1 or seeds <= ref_seeds:
                continue
            raise ValueError(
                f"{name} has pre-training seeds {sorted(seeds)} but {reference} has {sorted(ref_seeds)}: differences "
                "are paired by seed, so give both the same @seed labels"
                + (" (--random_init_seeds)" if reference == RANDOM_INIT else "")
                + ", or a single seed to the reference."
            )


def control_arms(arms: Sequence[Arm], seeds: Sequence[int]) -> list[Arm]:
    """Random-init controls with the first checkpoint's architecture; refuses checkpoints of differing architectures
    (a single control would not match them all)."""
    reference = arms[0].model.config
    keys = ("model_type", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size", "vocab_size")
    for arm in arms[1:]:
        differing = [k for k in keys if getattr(arm.model.config, k, None) != getattr(reference, k, None)]
        if differing:
            raise ValueError(
                f"checkpoints {arms[0].source!r} and {arm.source!r} differ in {differing}: one random-init control "
                "cannot match both; evaluate checkpoints of one architecture together."
            )
    return [
        Arm(
            RANDOM_INIT, str(seed), random_init_like(arms[0].model, seed), arms[0].tokenizer, "control", f"seed {seed}"
        )
        for seed in seeds
    ]


@dataclass
class ReadoutRow:
    """One row of a task's table."""

    readout: str  # arm name or baseline name
    reading: str  # causal / bidirectional / "-" for classical baselines
    seed: str
    kind: str  # pretrained / control / baseline
    test: Interval
    dev_mcc: float
    selection: dict = field(default_factory=dict)
    test_predictions: Optional[list] = None  # with `ProbeSuiteConfig.keep_predictions`


def combined_interval(values: Sequence[float], replicates: np.ndarray, confidence: float = 0.95) -> Interval:
    """95% interval of the mean over pre-training seeds of `values`, counting both sources of noise: the spread over
    seeds (Student t over the per-seed values) and test sampling (percentiles of the seed-mean over the shared
    bootstrap replicates, shape `(seeds, n_resamples)`), their half-widths added in quadrature. With one seed it is
    the bootstrap interval alone."""
    values = np.asarray(values, dtype=np.float64)
    test = percentile_interval(float(values.mean()), np.asarray(replicates).mean(axis=0), confidence)
    return test if values.size < 2 else with_seed_spread(test, values)


def paired_differences(
    scores: dict[tuple[str, str], dict[str, tuple[float, np.ndarray]]],
    kinds: dict[tuple[str, str], str],
    references: Sequence[tuple],
    higher_is_better: bool = True,
) -> list[dict]:
    """Differences of every pre-trained read-out against each reference, with decisions.

    Args:
        scores: `(read-out, reading)` -> `{seed label: (value on the full test set, bootstrap replicates)}`, every
            entry on the same resamples (so differences are paired).
        kinds: `(read-out, reading)` -> `pretrained` / `control` / `baseline`; only `pretrained` rows are differenced.
        references: `(read-out name, description)` to difference against read the same way (e.g. the random-init
            control), or `(read-out name, description, reading)` for a reference with a fixed reading (e.g. `"-"`
            for a classical baseline).
        higher_is_better: False for a metric such as NLL, where a negative difference decides "better".

    Differences are paired by seed label; a reference with a single seed is the same for every seed. Over several
    seeds the interval is [`combined_interval`] (seed spread and test sampling).
    """
    differences = []
    for (readout, reading), seeds in scores.items():
        if kinds[(readout, reading)] != "pretrained":
            continue
        for reference, description, *fixed in references:
            ref_key = (reference, fixed[0] if fixed else reading)
            if reference == readout or ref_key not in scores:
                continue
            ref_seeds = scores[ref_key]
            per_seed = []
            for seed, (full, replicates) in sorted(seeds.items()):
                ref_full, ref_replicates = ref_seeds[seed] if seed in ref_seeds else next(iter(ref_seeds.values()))
                per_seed.append((full - ref_full, replicates - ref_replicates))
            interval = combined_interval([d for d, _ in per_seed], np.stack([r for _, r in per_seed]))
            if len(per_seed) >= 2:
                replication = (
                    f"{len(per_seed)} pre-training seeds: t interval over seeds and paired bootstrap over test "
                    "groups, combined"
                )
            else:
                replication = "1 pre-training seed: paired bootstrap within the seed (replication not measured)"
            differences.append(
                {
                    "readout": readout,
                    "reading": reading,
                    "reference": reference,
                    "reference_description": description,
                    "difference": interval.to_dict(),
                    "decision": decide(interval, higher_is_better),
                    "replication": replication,
                }
            )
    return differences


def _row_key(row: ReadoutRow) -> tuple[str, str]:
    return row.readout, row.reading


def evaluate_task(
    task: str,
    data: dict[str, TaskSplit],
    arms: Sequence[Arm],
    config: ProbeSuiteConfig,
    baseline: Union[None, str, Sequence[str]] = None,
    progress=None,
    finetune: Optional[FinetuneReadoutConfig] = None,
    checkpoint_folders: Optional[dict] = None,
) -> dict:
    """Probe every arm (and its controls) on one task and difference them; see the module docstring. With
    `finetune` (and `checkpoint_folders`: `(arm name, seed)` -> a folder or Hub id to fine-tune from), the task also
    gets the fine-tuned read-outs of [`~.finetune_readout`] as rows whose reading ends in `", fine-tuned"`.

    Returns `{"task", "sizes", "rows": [ReadoutRow dicts], "differences": [...]}`.
    """
    test = data["test"]
    bootstrap = GroupBootstrap(test.groups, n=len(test.labels), n_resamples=config.n_resamples, seed=config.seed)
    replicates_of: dict[tuple[str, str, str], np.ndarray] = {}  # bootstrap MCCs per (read-out, reading, seed)
    rows: list[ReadoutRow] = []

    def add(readout, reading, seed, kind, preds, dev_mcc, selection):
        """`preds`: one prediction array, or a list of them (fine-tuning seeds) whose MCCs are averaged."""
        scored = [bootstrap.mcc(test.labels, p) for p in (preds if isinstance(preds, list) else [preds])]
        full = float(np.mean([f for f, _ in scored]))
        replicates = np.mean([r for _, r in scored], axis=0)
        replicates_of[(readout, reading, seed)] = replicates
        interval = percentile_interval(full, replicates)
        kept = None
        if config.keep_predictions:
            kept = [np.asarray(p).tolist() for p in preds] if isinstance(preds, list) else np.asarray(preds).tolist()
        rows.append(ReadoutRow(readout, reading, seed, kind, interval, dev_mcc, selection, kept))

    labels = {split: data[split].labels for split in SPLITS}
    for arm in arms:
        for reading in config.readings:
            features = {
                split: extract_features(
                    arm.model, arm.tokenizer, data[split].sequences, reading, config.batch_size, show_progress=False
                )
                for split in SPLITS
            }
            layers = None
            if config.probe_layer_fractions:
                depth = features["train"].shape[1] - 1  # hidden states: the embeddings and one per layer
                layers = sorted({int(round(fraction * depth)) for fraction in config.probe_layer_fractions})
            probe = fit_probe(features, labels, Cs=config.Cs, layers=layers)
            add(
                arm.name,
                reading,
                arm.seed,
                arm.kind,
                probe.test_predictions,
                probe.dev_mcc,
                {"layer": probe.layer, "pooling": probe.pooling, "C": probe.C},
            )
            if progress is not None:
                progress.update(1)
    if finetune is not None and finetune.applies_to(task):
        sweep = FinetuneSweep(data, finetune, progress)
        for arm in arms:
            for reading in finetune.readings:
                runs = sweep.runs(arm.name, checkpoint_folders[(arm.name, arm.seed)], reading)
                selection = {
                    "learning rate": runs[0].learning_rate,
                    "best epoch": [r.best_epoch for r in runs] if len(runs) > 1 else runs[0].best_epoch,
                    "sweep dev MCC": {f"{lr:g}": round(v, 3) for lr, v in sweep.sweeps[(arm.name, reading)].items()},
                }
                add(
                    arm.name,
                    reading + FINETUNED,
                    arm.seed,
                    arm.kind,
                    [r.test_predictions for r in runs],
                    float(np.mean([r.dev_mcc for r in runs])),
                    selection,
                )
    pairs = {split: (data[split].sequences, data[split].labels) for split in SPLITS}
    markov = markov_classifier(pairs["train"], pairs["dev"], pairs["test"], orders=config.markov_orders)
    add("markov", "-", "0", "baseline", markov["test_predictions"], markov["dev_mcc"], {"order": markov["order"]})
    composition = markov_classifier(pairs["train"], pairs["dev"], pairs["test"], orders=(0,))
    add("composition", "-", "0", "baseline", composition["test_predictions"], composition["dev_mcc"], {"order": 0})
    for k in config.kmer_ks:
        kmer = kmer_logistic_regression(pairs["train"], pairs["dev"], pairs["test"], k=k, return_predictions=True)
        add(f"{k}-mer LR", "-", "0", "baseline", kmer["test_predictions"], kmer["dev"]["mcc"], {"C": kmer["C"]})
    if config.positional_baselines:
        onehot = onehot_logistic_regression(pairs["train"], pairs["dev"], pairs["test"], seed=config.seed)
        add("one-hot LR", "-", "0", "baseline", onehot["test_predictions"], onehot["dev"]["mcc"], {"C": onehot["C"]})
        cnn = cnn_classifier(pairs["train"], pairs["dev"], pairs["test"], seed=config.seed)
        add("CNN", "-", "0", "baseline", cnn["test_predictions"], cnn["dev"]["mcc"], {"epoch": cnn["epoch"]})
    if progress is not None:
        progress.update(1)

    by_arm = defaultdict(dict)  # (arm, reading) -> {seed: (full, replicates)}
    kinds = {}
    for row in rows:
        by_arm[_row_key(row)][row.seed] = (row.test.estimate, replicates_of[(row.readout, row.reading, row.seed)])
        kinds[_row_key(row)] = row.kind
    differences = paired_differences(by_arm, kinds, reference_rows(baseline))
    sizes = {
        split: {"examples": len(data[split].labels), "classes": {int(c): int((data[split].labels == c).sum())
                for c in np.unique(data[split].labels)}}
        for split in SPLITS
    }  # fmt: skip
    sizes["test"]["groups"] = bootstrap.num_groups
    result = {
        "task": task,
        "sizes": sizes,
        "rows": [
            {
                key: value
                for key, value in {**asdict(row), "test": row.test.to_dict()}.items()
                if key != "test_predictions" or value is not None
            }
            for row in rows
        ],
        "differences": differences,
    }
    if config.keep_predictions:
        result["test_labels"] = np.asarray(test.labels).tolist()
        result["test_groups"] = None if test.groups is None else [str(g) for g in test.groups]
    return result


def run_probe_suite(
    arms: Sequence[Arm],
    tasks: dict[str, dict[str, TaskSplit]],
    config: Optional[ProbeSuiteConfig] = None,
    baseline: Union[None, str, Sequence[str]] = None,
    show_progress: bool = True,
    finetune: Optional[FinetuneReadoutConfig] = None,
) -> dict:
    """Evaluate `arms` (pre-trained checkpoints) plus random-init controls and classical baselines on `tasks`.

    With `finetune`, the tasks it names also get the secondary read-out, fine-tuning to convergence
    ([`~.finetune_readout`]): each pre-trained arm is fine-tuned from `Arm.source` (its folder or Hub id), each
    control from a temporary copy.

    Returns `{"config", "decision_rule", "arms": [{name, seed, source}], "tasks": {task: evaluate_task(...)}}` (and
    `"finetune"`: its config, when given).
    """
    import tempfile

    from tqdm.auto import tqdm

    config = config or ProbeSuiteConfig()
    if not arms:
        raise ValueError("no checkpoints to evaluate.")
    check_baselines(arms, baseline)
    check_arm_names(arms, config.random_init_seeds, baseline)
    check_task_characters(tasks, arms[0].tokenizer)
    everything = list(arms) + control_arms(arms, config.random_init_seeds)
    total = len(tasks) * (len(everything) * len(config.readings) + 1)
    if finetune is not None:
        unknown = [t for t in finetune.tasks or () if t not in tasks]
        if unknown:
            raise ValueError(f"fine-tuning tasks {unknown} are not among the tasks {sorted(tasks)}.")
        seeds_of = defaultdict(int)
        for arm in everything:
            seeds_of[arm.name] += 1
        per_task = sum(finetune.runs_per_arm(n) for n in seeds_of.values()) * len(finetune.readings)
        total += per_task * sum(finetune.applies_to(t) for t in tasks)
    results = {}
    with tempfile.TemporaryDirectory(prefix="birdie-controls-") as scratch:
        folders = {(arm.name, arm.seed): arm.source for arm in everything if arm.kind != "control"}
        if finetune is not None:
            for arm in everything:
                if arm.kind == "control":  # an in-memory model: fine-tuning starts from a saved copy
                    folder = os.path.join(scratch, f"{arm.name}-{arm.seed}")
                    arm.model.save_pretrained(folder)
                    arm.tokenizer.save_pretrained(folder)
                    folders[(arm.name, arm.seed)] = folder
        with tqdm(total=total, desc="evaluating", unit="read-out", disable=not show_progress) as progress:
            for task, data in tasks.items():
                progress.set_postfix_str(task)
                results[task] = evaluate_task(
                    task,
                    data,
                    everything,
                    config,
                    baseline=baseline,
                    progress=progress,
                    finetune=finetune,
                    checkpoint_folders=folders,
                )
    extra = {"finetune": asdict(finetune)} if finetune is not None else {}
    return {
        **extra,
        "config": asdict(config),
        "decision_rule": DECISION_RULE,
        "baseline": baseline,
        "arms": [{"name": a.name, "seed": a.seed, "kind": a.kind, "source": a.source} for a in everything],
        "tasks": results,
    }


def _fmt(interval: dict) -> str:
    return f"{interval['estimate']:.3f} [{interval['low']:.3f}, {interval['high']:.3f}]"


def summary_rows(result: dict) -> list[dict]:
    """One row per (read-out, reading) of a task's result: with several pre-training seeds, the mean over seeds with
    an interval counting the spread over seeds and test sampling; with one, that seed's bootstrap interval."""
    grouped: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for row in result["rows"]:
        grouped[(row["readout"], row["reading"])].append(row)
    summary = []
    for (readout, reading), rows in grouped.items():
        if len(rows) > 1:
            # The seeds' spread (t) and test sampling (the mean per-seed bootstrap half-width, as the seeds share the
            # test set), added in quadrature.
            values = np.array([r["test"]["estimate"] for r in rows])
            mean = float(values.mean())
            low_test = float(np.mean([r["test"]["estimate"] - r["test"]["low"] for r in rows]))
            high_test = float(np.mean([r["test"]["high"] - r["test"]["estimate"] for r in rows]))
            interval = with_seed_spread(Interval(mean, mean - low_test, mean + high_test), values).to_dict()
        else:
            interval = rows[0]["test"]
        summary.append(
            {"readout": readout, "reading": reading, "kind": rows[0]["kind"], "seeds": len(rows), "test": interval}
        )
    return summary


def summary_markdown(result: dict, metric: str = "test MCC") -> list[str]:
    """Lines of a task's summary table ([`summary_rows`]: one row per read-out and reading, over seeds)."""
    lines = [
        "Summary: rows with several pre-training seeds give their mean over seeds (the seed is the unit of",
        "replication) with an interval combining the spread over seeds (t) and test sampling (bootstrap over test",
        "groups); single rows give the bootstrap interval over test groups.",
        "",
        f"| read-out | reading | seeds | {metric} [95% CI] |",
        "|---|---|---|---|",
    ]
    for row in summary_rows(result):
        lines.append(f"| {row['readout']} | {row['reading']} | {row['seeds']} | {_fmt(row['test'])} |")
    return lines


def differences_markdown(result: dict, metric: str = "test MCC") -> list[str]:
    """Lines of a task's table of differences and decisions (none without differences)."""
    if not result["differences"]:
        return []
    lines = ["", f"| read-out | reading | vs | difference in {metric} [95% CI] | decision | replication |"]
    lines.append("|---|---|---|---|---|---|")
    for d in result["differences"]:
        lines.append(
            f"| {d['readout']} | {d['reading']} | {d['reference']} | {_fmt(d['difference'])} | "
            f"**{d['decision']}** | {d['replication']} |"
        )
    return lines


def results_markdown(results: dict) -> str:
    """Markdown: per task, a summary (one row per read-out and reading, over seeds), every seed's row with what dev
    chose, then the differences and decisions."""
    lines = []
    for task, result in results["tasks"].items():
        test = result["sizes"]["test"]
        lines += [
            f"### {task}",
            "",
            f"test: {test['examples']} sequences in {test['groups']} groups, classes {test['classes']}; "
            f"train {result['sizes']['train']['examples']}, dev {result['sizes']['dev']['examples']}",
            "",
        ]
        lines += summary_markdown(result)
        lines += [
            "",
            "| read-out | reading | seed | test MCC [95% CI] | dev MCC | chosen on dev |",
            "|---|---|---|---|---|---|",
        ]
        for row in result["rows"]:
            chosen = ", ".join(f"{k} {v}" for k, v in row["selection"].items())
            lines.append(
                f"| {row['readout']} | {row['reading']} | {row['seed']} | {_fmt(row['test'])} | "
                f"{row['dev_mcc']:.3f} | {chosen} |"
            )
        lines += differences_markdown(result)
        lines.append("")
    lines += [f"Decision rule: {results['decision_rule']}", ""]
    return "\n".join(lines)


def plot_results(results: dict, path: PathLike, title: Optional[str] = None) -> str:
    """One panel per task: its metric (a task result's `metric`, else test MCC) with its 95% interval for every
    read-out (pre-trained checkpoints and the random-init control over their seeds, classical baselines), coloured by
    kind. Returns the path written."""
    plt = import_pyplot()
    tasks = list(results["tasks"])
    colours = {"pretrained": "tab:blue", "control": "tab:red", "baseline": "tab:gray"}
    columns = min(3, len(tasks))
    grid_rows = -(-len(tasks) // columns)
    panels = {}
    for task in tasks:
        rows = summary_rows(results["tasks"][task])
        names = [r["readout"] + (f" ({r['reading']})" if r["reading"] != "-" else "") for r in rows]
        panels[task] = rows, [n + (f", {r['seeds']} seeds" if r["seeds"] > 1 else "") for n, r in zip(names, rows)]
    height = max(2.5, 0.32 * max(len(rows) for rows, _ in panels.values()) + 1.2)
    same_rows = all(names == panels[tasks[0]][1] for _, names in panels.values())
    figure, axes = plt.subplots(
        grid_rows,
        columns,
        figsize=((4.6 if same_rows else 6.2) * columns, height * grid_rows),
        sharey=same_rows,
        squeeze=False,
    )
    for axis in axes.flat[len(tasks) :]:
        axis.set_visible(False)
    for axis, task in zip(axes.flat, tasks):
        rows, names = panels[task]
        for y, row in enumerate(rows):
            t = row["test"]
            axis.errorbar(
                t["estimate"], y, xerr=[[t["estimate"] - t["low"]], [t["high"] - t["estimate"]]],
                fmt="o", color=colours.get(row["kind"], "black"), capsize=3,
            )  # fmt: skip
        axis.set_yticks(range(len(rows)), names)
        if "metric" not in results["tasks"][task]:
            axis.axvline(0, color="black", linewidth=0.6)
        elif results["tasks"][task]["metric"] == "AUROC":
            axis.axvline(0.5, color="black", linewidth=0.6)
        heading = f"{task} (n test = {results['tasks'][task]['sizes']['test']['examples']})"
        axis.set_title(textwrap.fill(heading, 36), fontsize=9)
        axis.set_xlabel(f"{results['tasks'][task].get('metric', 'test MCC')}, 95% CI")
        axis.grid(axis="x", alpha=0.3)
    for axis in axes.flat[: 1 if same_rows else len(tasks)]:
        axis.invert_yaxis()
    figure.suptitle(
        title or "Frozen-feature probes: pre-trained (blue), random-init control (red), classical baselines (grey)"
    )
    figure.tight_layout(rect=(0, 0, 1, 0.98))  # room for the suptitle
    return save_figure(figure, os.fspath(path))


def write_results(
    results: dict,
    output_dir: PathLike,
    stem: str = "probe_results",
    render: Callable[[dict], str] = results_markdown,
    title: Optional[str] = None,
) -> dict[str, str]:
    """Write `<stem>.json`, `<stem>.md` (by `render`) and `<stem>.png` (titled `title`) into `output_dir`; returns
    the paths."""
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    paths = {"json": output_dir / f"{stem}.json", "markdown": output_dir / f"{stem}.md"}
    partial = paths["json"].with_suffix(".json.partial")
    partial.write_text(json.dumps(results, indent=2) + "\n")
    os.replace(partial, paths["json"])
    paths["markdown"].write_text(render(results))
    paths["plot"] = Path(plot_results(results, output_dir / f"{stem}.png", title))
    return {k: str(v) for k, v in paths.items()}
