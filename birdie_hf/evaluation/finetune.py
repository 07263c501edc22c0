"""Fine-tuning pre-trained DNA LMs on sequence classification (Nucleotide Transformer style), full or LoRA."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Optional

import numpy as np
import torch
from datasets import DatasetDict

from ..data import GenomeDataError, load_sequence_dataset
from ..hub_io import NT_REVISED_REPO, NT_TASKS, load_model_config, load_tokenizer
from ..modeling import pickled_weights_refused
from ..objectives import OBJECTIVE_REGISTRY
from ..tokenizer import save_tokenizer
from ..vocabulary import prompt_id, prompt_token
from .statistics import prediction_metrics


logger = logging.getLogger(__name__)


def load_classification_task(
    task: str, *, validation_fraction: float = 0.1, seed: int = 0, hub_repo: str = NT_REVISED_REPO
) -> DatasetDict:
    """Load a `sequence,label` task with `train`, `validation` and `test` splits.

    Args:
        task (`str`): a folder of `train/dev/test` CSVs, or an NT task name (e.g. `"promoter_all"`) loaded from
            `hub_repo` (a network download; never done by the tests).
        validation_fraction (`float`): share of `train` held out (stratified, seeded) when there is no dev split.

    Raises:
        `ValueError`: unknown task name; [`GenomeDataError`]: bad CSV content (see [`load_sequence_dataset`]).
    """
    if os.path.isdir(task):
        data = load_sequence_dataset(task, label_column="label")
    elif task in NT_TASKS:
        data = _load_nt_task(task, hub_repo)
    else:
        raise ValueError(
            f"Task {task!r} is neither a folder of train/dev/test CSVs nor a Nucleotide Transformer task "
            f"({', '.join(NT_TASKS)})."
        )
    if "train" not in data:
        raise GenomeDataError(f"Task {task!r} has no train split (splits: {sorted(data)}).")
    if "validation" not in data:
        train = data["train"].class_encode_column("label")
        num_classes = len(set(train["label"]))
        size = max(num_classes, int(round(validation_fraction * len(train))))
        split = train.train_test_split(test_size=size, seed=seed, stratify_by_column="label")
        data["train"], data["validation"] = split["train"], split["test"]
    if "test" not in data:
        raise GenomeDataError(f"Task {task!r} has no test split (splits: {sorted(data)}).")
    check_task_labels(task, data)
    return data


def check_task_labels(task: str, data: DatasetDict) -> None:
    """Refuse labels a classifier cannot be trained or scored on, naming the split: labels that are not the integers
    `0 .. K-1` (e.g. `{1, 2}` or `{-1, 1}`: the model has K outputs indexed from 0), and a train or test split with a
    single class (nothing to learn; F1 and MCC of a one-class test split say nothing).

    Raises:
        [`GenomeDataError`]: naming the task, the split and the labels found.
    """
    found = {split: sorted(set(part["label"])) for split, part in data.items() if "label" in part.column_names}
    every = sorted(set().union(*found.values())) if found else []
    for split, labels in found.items():
        if any(isinstance(label, bool) or not isinstance(label, (int, np.integer)) for label in labels):
            raise GenomeDataError(f"Task {task!r}, {split} split: labels must be integers, got {labels[:5]}.")
    if every != list(range(len(every))):
        raise GenomeDataError(
            f"Task {task!r}: labels must be the integers 0 to K-1 (the classifier's outputs), found {every[:8]}; "
            "renumber them from 0."
        )
    for split in ("train", "test"):
        if split in found and len(found[split]) < 2:
            raise GenomeDataError(
                f"Task {task!r}, {split} split: a single class ({found[split][0] if found[split] else 'none'}); "
                "a classifier needs at least two to be trained or scored (F1 and MCC of one class say nothing)."
            )


#: The revision where the Hub keeps its automatic parquet export of a dataset (loading scripts not needed).
PARQUET_REVISION = "refs/convert/parquet"


def _is_script_refusal(error: Exception) -> bool:
    """Whether `error` is what `datasets` >= 4 raises for a dataset that needs a loading script."""
    return isinstance(error, RuntimeError) and "scripts are no longer supported" in str(error).lower()


def _load_nt_configs(load_dataset, repo: str, task: str, revision: Optional[str]) -> DatasetDict:
    try:
        data = load_dataset(repo, name=task, revision=revision)
    except ValueError:
        # Parquet exports hold every task in one config with a `task` column.
        data = load_dataset(repo, revision=revision)
        if "task" not in data["train"].column_names:
            raise
        data = DatasetDict({split: part.filter(lambda row: row["task"] == task) for split, part in data.items()})
    return DatasetDict({split: part for split, part in data.items()})


def _load_nt_task(task: str, repo: str) -> DatasetDict:
    """Load an NT task from the Hub. The revised NT benchmark is a loading-script dataset, which `datasets` >= 4
    refuses (`RuntimeError`); then the Hub's parquet export of the same dataset ([`PARQUET_REVISION`]) is tried, and if
    that fails too the error says, in one line, what to use instead."""
    import datasets
    from datasets import load_dataset

    try:
        return _load_nt_configs(load_dataset, repo, task, None)
    except RuntimeError as error:
        if not _is_script_refusal(error):
            raise
        logger.warning("%s needs a loading script, which datasets %s does not run: trying its parquet export (%s).",
                       repo, datasets.__version__, PARQUET_REVISION)  # fmt: skip
    try:
        return _load_nt_configs(load_dataset, repo, task, PARQUET_REVISION)
    except Exception as error:  # noqa: BLE001 - any failure here ends in the same advice
        reason = " ".join(str(error).split())[:200]
        raise GenomeDataError(
            f"NT task {task!r}: {repo} is a loading-script dataset, which datasets {datasets.__version__} no longer "
            f"runs, and its parquet export (revision {PARQUET_REVISION!r}) did not load ({type(error).__name__}: "
            f"{reason}); pass a local folder of train/dev/test CSVs (sequence,label) instead of the task name, e.g. "
            "one exported once with datasets<4."
        ) from None


def classification_metrics(eval_pred) -> dict[str, float]:
    """MCC (the NT benchmark's primary metric), macro F1 and accuracy from `(logits, labels)`
    ([`~birdie_hf.evaluation.statistics.prediction_metrics`] of the argmax)."""
    logits, labels = eval_pred
    if isinstance(logits, tuple):
        logits = logits[0]
    return prediction_metrics(labels, np.asarray(logits).argmax(axis=-1))


#: Whether bidirectional classifiers open their input with `<|prefix_lm|>` by default. Measured in
#: benchmarks/results/birdie_vs_ntp.md (both settings, same checkpoints and seeds); the better one is the default.
DEFAULT_PREFIX_PROMPT = True


@dataclass
class LoraSettings:
    """LoRA through `peft`.

    Parameters:
        r (`int`, *optional*, defaults to `0`): LoRA rank; `0` means full fine-tuning (no adapters).
        alpha (`int`, *optional*, defaults to `16`): LoRA scaling numerator (`alpha / r`).
        dropout (`float`, *optional*, defaults to `0.05`): dropout on the adapters' input, in [0, 1).
        target_modules (`tuple`, *optional*, defaults to the attention projections): modules that get adapters.
    """

    r: int = 0
    alpha: int = 16
    dropout: float = 0.05
    target_modules: tuple = ("q_proj", "k_proj", "v_proj", "o_proj")

    def __post_init__(self):
        if isinstance(self.r, bool) or not isinstance(self.r, int) or self.r < 0:
            raise ValueError(
                f"LoRA rank `r` (`--lora_r`) must be a positive integer, or 0 for full fine-tuning; got {self.r!r}."
            )
        if self.enabled:
            if isinstance(self.alpha, bool) or not isinstance(self.alpha, (int, float)) or not self.alpha > 0:
                raise ValueError(f"LoRA `alpha` (`--lora_alpha`) must be a positive number, got {self.alpha!r}.")
            if (
                isinstance(self.dropout, bool)
                or not isinstance(self.dropout, (int, float))
                or not 0 <= self.dropout < 1
            ):
                raise ValueError(f"LoRA `dropout` (`--lora_dropout`) must be in [0, 1), got {self.dropout!r}.")
            if not self.target_modules:
                raise ValueError("LoRA `target_modules` is empty: LoRA needs at least one module to adapt.")

    @property
    def enabled(self) -> bool:
        """Whether LoRA adapters are trained (`r > 0`) rather than the whole model."""
        return self.r > 0


#: How a classifier reads its input: `causal` (each position sees only its left), `bidirectional` (every position
#: sees the whole input, as Birdie reads a prefix) or `auto` (see [`resolve_attention`]).
ATTENTION_MODES = ("auto", "causal", "bidirectional")


def resolve_attention(config, attention: str = "auto") -> str:
    """`"causal"` or `"bidirectional"` for a checkpoint's `config`.

    `auto` reads `config.birdie_objectives` (written by [`BirdieTrainer`] into every checkpoint it trains): a model
    pre-trained with any objective that reads a prefix (`Objective.reads_prefix`: prefix LM, infilling, copying, a
    user-registered objective unless it says otherwise) is read bidirectionally, an NTP-only model (or one that carries
    no record, e.g. any other causal LM) causally. A recorded objective that is not registered in this process counts
    as reading a prefix.
    """
    if attention not in ATTENTION_MODES:
        raise ValueError(f"`attention` must be one of {ATTENTION_MODES}, got {attention!r}.")
    if attention != "auto":
        return attention
    objectives = getattr(config, "birdie_objectives", None) or []
    reads_prefix = [getattr(OBJECTIVE_REGISTRY.get(o), "reads_prefix", True) for o in objectives]
    return "bidirectional" if any(reads_prefix) else "causal"


def add_prefix_prompt(tokenizer, objective: str = "prefix_lm"):
    """Make `tokenizer` open every input with the prompt token of `objective` (`<|prefix_lm|>`), as Birdie's
    prefix-LM examples start. The rule lives in the tokenizer's post-processor (`tokenizer.json`), so
    `AutoTokenizer` and `pipeline("text-classification")` apply it with no custom code. Returns the tokenizer."""
    from tokenizers import processors

    token, token_id = prompt_token(objective), prompt_id(tokenizer, objective)
    tokenizer.backend_tokenizer.post_processor = processors.TemplateProcessing(
        single=f"{token} $A", pair=f"{token} $A $B", special_tokens=[(token, token_id)]
    )
    return tokenizer


def build_sequence_classifier(
    checkpoint: str, num_labels: int, lora: Optional[LoraSettings] = None, attention: str = "auto"
):
    """`AutoModelForSequenceClassification` from a causal-LM checkpoint, optionally wrapped with LoRA adapters (the
    head stays fully trainable).

    A native Llama gets a `score` head on the last non-padding token. With `attention="bidirectional"` the config's
    `is_causal` is set to `False`, so every position attends to the whole input (transformers keeps this through
    `save_pretrained`/`from_pretrained`, so the fine-tuned model stays a plain native checkpoint).
    """
    from transformers import AutoModelForSequenceClassification

    config = load_model_config(checkpoint, num_labels=num_labels)
    mode = resolve_attention(config, attention)
    config.is_causal = mode == "causal"
    config.birdie_attention = mode
    with pickled_weights_refused(checkpoint):
        model = AutoModelForSequenceClassification.from_pretrained(checkpoint, config=config)
    if model.config.pad_token_id is None:
        raise ValueError(f"{checkpoint!r} has no pad_token_id in its config; sequence classification needs one.")
    if lora is not None and lora.enabled:
        from peft import LoraConfig, TaskType, get_peft_model

        model = get_peft_model(
            model,
            LoraConfig(
                task_type=TaskType.SEQ_CLS,
                r=lora.r,
                lora_alpha=lora.alpha,
                lora_dropout=lora.dropout,
                target_modules=list(lora.target_modules),
            ),
        )
    return model


def finetune_classifier(
    checkpoint: str,
    data: DatasetDict,
    output_dir: str,
    *,
    seed: int = 0,
    lora: Optional[LoraSettings] = None,
    num_train_epochs: float = 10,
    learning_rate: float = 3e-4,
    batch_size: int = 32,
    early_stopping_patience: int = 3,
    max_length: Optional[int] = None,
    save_model: bool = True,
    attention: str = "auto",
    prefix_prompt: Optional[bool] = None,
    return_predictions: bool = False,
    show_progress: bool = True,
    **training_overrides,
) -> dict:
    """Fine-tune `checkpoint` on `data` (with `train`/`validation`/`test`), keep the best epoch by dev MCC (early
    stopping), and return `{"validation": {...}, "test": {...}, "attention": ..., "prefix_prompt": ...}`.

    Args:
        checkpoint (`str`): a pre-trained causal-LM folder or Hub id (a missing one is refused up front, see
            [`~hub.load_model_config`]).
        attention (`str`, *optional*, defaults to `"auto"`): `causal`, `bidirectional`, or `auto` (see
            [`resolve_attention`]: bidirectional for checkpoints pre-trained with prefix objectives).
        prefix_prompt (`bool`, *optional*): open every bidirectional input with `<|prefix_lm|>`, as Birdie's prefix-LM
            examples start (see [`add_prefix_prompt`]). Defaults to [`DEFAULT_PREFIX_PROMPT`] in bidirectional mode;
            never used causally.
        return_predictions (`bool`, *optional*, defaults to `False`): also return `"test_predictions"`, the best
            epoch's predicted class per test example (`np.ndarray`, shape `(n_test,)`), and `"best_epoch"`.
        show_progress (`bool`, *optional*, defaults to `True`): progress bars and per-epoch logs; `False` runs silently
            (as the evaluation instrument runs its many fine-tunings).
    """
    from transformers import (
        DataCollatorWithPadding,
        EarlyStoppingCallback,
        PrinterCallback,
        Trainer,
        TrainingArguments,
        set_seed,
    )

    load_model_config(checkpoint)  # a clear error for a missing checkpoint, before the tokenizer is looked for
    set_seed(seed)
    tokenizer = load_tokenizer(checkpoint)
    num_labels = len(set(data["train"]["label"]) | set(data["validation"]["label"]) | set(data["test"]["label"]))
    model = build_sequence_classifier(checkpoint, max(2, num_labels), lora, attention=attention)
    mode = _base_config(model).birdie_attention
    use_prompt = mode == "bidirectional" and (DEFAULT_PREFIX_PROMPT if prefix_prompt is None else prefix_prompt)
    if use_prompt:
        add_prefix_prompt(tokenizer)
    _base_config(model).birdie_prefix_prompt = bool(use_prompt)

    def tokenize(batch):
        return tokenizer(batch["sequence"], truncation=max_length is not None, max_length=max_length)

    with _datasets_progress(show_progress):
        encoded = data.map(
            tokenize, batched=True, remove_columns=[c for c in data["train"].column_names if c != "label"]
        )
    encoded = encoded.rename_column("label", "labels")
    args = TrainingArguments(
        output_dir=output_dir,
        seed=seed,
        num_train_epochs=num_train_epochs,
        learning_rate=learning_rate,
        per_device_train_batch_size=batch_size,
        per_device_eval_batch_size=2 * batch_size,
        eval_strategy="epoch",
        save_strategy="epoch",
        save_total_limit=1,
        load_best_model_at_end=True,
        metric_for_best_model="mcc",
        greater_is_better=True,
        logging_strategy="epoch",
        report_to=training_overrides.pop("report_to", "none"),
        dataloader_pin_memory=training_overrides.pop("dataloader_pin_memory", torch.cuda.is_available()),
        **({"disable_tqdm": True, "log_level": "error"} if not show_progress else {}),
        **training_overrides,
    )
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=encoded["train"],
        eval_dataset=encoded["validation"],
        data_collator=DataCollatorWithPadding(tokenizer),
        processing_class=tokenizer,
        compute_metrics=classification_metrics,
        callbacks=[EarlyStoppingCallback(early_stopping_patience=early_stopping_patience)],
    )
    if not show_progress:
        trainer.remove_callback(PrinterCallback)
    trainer.train()
    trainer.remove_callback(EarlyStoppingCallback)  # the final evaluations below are not epochs
    results = {
        "validation": _strip(trainer.evaluate(encoded["validation"], metric_key_prefix="validation")),
        "attention": mode,
        "prefix_prompt": bool(use_prompt),
    }
    if return_predictions:
        prediction = trainer.predict(encoded["test"], metric_key_prefix="test")
        logits = prediction.predictions[0] if isinstance(prediction.predictions, tuple) else prediction.predictions
        results["test"] = _strip(prediction.metrics)
        results["test_predictions"] = np.asarray(logits).argmax(axis=-1)
        results["best_epoch"] = _best_epoch(trainer.state)
    else:
        results["test"] = _strip(trainer.evaluate(encoded["test"], metric_key_prefix="test"))
    if save_model:
        if lora is not None and lora.enabled:
            trainer.model = trainer.model.merge_and_unload()
        trainer.save_model(output_dir)
        save_tokenizer(tokenizer, output_dir)
    return results


def _best_epoch(state) -> Optional[float]:
    """The epoch of the best dev evaluation (the one `load_best_model_at_end` restored)."""
    scores = [(entry["eval_mcc"], entry["epoch"]) for entry in state.log_history if "eval_mcc" in entry]
    return float(max(scores, key=lambda pair: pair[0])[1]) if scores else None


class _datasets_progress:
    """Hide `datasets`' map progress bars inside the block when `show` is False, restoring the previous setting."""

    def __init__(self, show: bool):
        self.show = show

    def __enter__(self):
        import datasets

        self.was_enabled = datasets.is_progress_bar_enabled()
        if not self.show:
            datasets.disable_progress_bars()

    def __exit__(self, *exc):
        import datasets

        if self.was_enabled:
            datasets.enable_progress_bars()


def _base_config(model):
    """The config of the transformers model inside a (possibly LoRA-wrapped) classifier."""
    return model.get_base_model().config if hasattr(model, "get_base_model") else model.config


def _strip(metrics: dict) -> dict:
    keep = {}
    for key, value in metrics.items():
        name = key.split("_", 1)[1] if "_" in key else key
        if name in ("mcc", "f1", "accuracy", "loss"):
            keep[name] = value
    return keep
