"""Birdie pre-training's data and model set-up: the arguments of `recipes/pretrain.py` beyond
[`BirdieTrainingArguments`] ([`PretrainingArguments`]), their checks, the windows (eager or streamed, with the held-out
set the reward needs), the model (new, or a checkpoint to continue), and the recipe's defaults. Bad input raises
[`RecipeError`] naming the argument."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from typing import Optional

from datasets import Dataset, DatasetDict

from .cli import TRACEBACK_HELP, RecipeError
from .collator import DataCollatorForBirdie
from .config import BirdieTrainingArguments
from .data import (
    WindowCroppingError,
    check_windows_fit,
    default_genome_path,
    is_fasta_path,
    load_genome_windows,
    load_sequence_windows,
    stream_genome_windows,
)
from .hub_io import check_model_path
from .modeling import build_causal_lm, default_model_config, load_causal_lm_checkpoint, resolve_attn_implementation


logger = logging.getLogger(__name__)

#: With --streaming, windows are shuffled through a buffer of this many (a window and its reverse complement, and
#: neighbouring windows, then rarely share a batch; 10,000 windows of 1,024 bases are 10 MB).
STREAM_SHUFFLE_BUFFER = 10_000


@dataclass
class PretrainingArguments:
    """Data and model arguments of Birdie pre-training (`recipes/pretrain.py`); the Birdie and training arguments are
    [`BirdieTrainingArguments`]."""

    _argument_group_name = "data and model (this recipe)"  # HfArgumentParser lists these options under this title

    genomes: Optional[list[str]] = field(
        default=None, metadata={"help": "FASTA / FASTA.gz files. Default: the genome shipped with birdie_hf."}
    )
    dataset_name: Optional[str] = field(
        default=None,
        metadata={
            "help": "Hub dataset id or CSV file/folder with a `sequence` column, instead of FASTA. Its "
            "validation split is held out; without one, --validation_fraction of the train sequences."
        },
    )
    dataset_config: Optional[str] = field(default=None, metadata={"help": "Hub dataset configuration name."})
    window_length: int = field(default=256, metadata={"help": "Bases per training window."})
    stride: Optional[int] = field(default=None, metadata={"help": "Step between windows (default: window_length)."})
    allow_cropping: bool = field(
        default=False,
        metadata={
            "help": "Train even when --max_length makes some objectives read only part of each window (warns "
            "with the numbers instead of refusing)."
        },
    )
    validation_fraction: float = field(
        default=0.05,
        metadata={"help": "Share of bases held out for validation (the reward of --policy birdie needs it above 0)."},
    )
    split_by: str = field(default="position", metadata={"help": "position or record."})
    reverse_complement: bool = field(default=False, metadata={"help": "Add reverse-complement training windows."})
    soft_mask: str = field(
        default="ignore",
        metadata={
            "help": "Lower-case (soft-masked, e.g. repeat) bases: ignore (read as upper case) or drop (train on no "
            "window holding one; eager loading cuts windows inside upper-case runs, --streaming skips the windows "
            "that touch a masked base)."
        },
    )
    streaming: bool = field(
        default=False,
        metadata={
            "help": "Stream the --genomes windows from disk instead of loading them (genomes larger than memory): "
            "each file is indexed once, then read shard by shard. Needs --max_steps; held-out windows come from "
            "--validation_genomes (--validation_fraction and --split_by do not apply)."
        },
    )
    validation_genomes: Optional[list[str]] = field(
        default=None,
        metadata={
            "help": "With --streaming: FASTA files whose windows are the held-out set (loaded in memory, so keep them "
            "small; the reward of --policy birdie needs them)."
        },
    )
    model_name_or_path: Optional[str] = field(
        default=None, metadata={"help": "Start from this causal-LM checkpoint (continual pre-training)."}
    )
    hidden_size: int = field(default=128, metadata={"help": "Model width (new models)."})
    num_hidden_layers: int = field(default=4, metadata={"help": "Decoder layers (new models)."})
    num_attention_heads: int = field(default=4, metadata={"help": "Attention heads (new models)."})
    tie_word_embeddings: bool = field(
        default=False,
        metadata={
            "help": "Share the input embeddings with the output head (new models). Off by default: tied, the four "
            "base embeddings collapsed onto one direction in 4 of 6 runs of the dna arms of the pre-registered "
            "experiment, which then learned nothing beyond the base composition."
        },
    )
    attn_implementation: str = field(
        default="auto",
        metadata={
            "help": "auto (default: flex_attention on the GPU fast path, see --fast_path; sdpa otherwise), sdpa, eager, "
            "or flex_attention (CUDA: "
            "packed rows as block masks, memory linear in row length, the blocks no example spans skipped; see "
            "--attention_mask_format)."
        },
    )
    cpu_threads: Optional[int] = field(
        default=None,
        metadata={
            "help": "Torch threads per process when training on CPU. Default: the machine's cores divided by "
            "the number of processes (`accelerate launch` would otherwise pin a single process to 1)."
        },
    )
    traceback: bool = field(default=False, metadata={"help": TRACEBACK_HELP})

    def __post_init__(self):
        if isinstance(self.genomes, str):  # `genomes: a.fa` in YAML, or a single path from Python
            self.genomes = [self.genomes]
        if isinstance(self.validation_genomes, str):
            self.validation_genomes = [self.validation_genomes]
        if self.soft_mask not in ("ignore", "drop"):
            raise ValueError(f"--soft_mask must be ignore or drop, got {self.soft_mask!r}.")
        if self.cpu_threads is not None and (
            isinstance(self.cpu_threads, bool) or not isinstance(self.cpu_threads, int) or self.cpu_threads < 1
        ):
            raise ValueError(f"--cpu_threads must be a positive number of threads, got {self.cpu_threads!r}.")


#: Training defaults of `recipes/pretrain.py` (a short CPU run); every one can be overridden on the command line or in YAML.
PRETRAINING_DEFAULTS = {
    "output_dir": "outputs/birdie-dna-tiny",
    "max_steps": 300,
    "per_device_train_batch_size": 8,
    "per_device_eval_batch_size": 16,
    # Whole 256-base windows for every objective: copying and deshuffling write 2 * 256 + 2 = 514 tokens.
    "max_length": 520,
    # learning_rate (2e-3), warmup_steps (a tenth of the run), the cosine schedule and weight decay are
    # BirdieTrainingArguments' own defaults; see "Training health" in benchmarks/README.md.
    "logging_steps": 10,
    "save_steps": 100,
    "save_total_limit": 2,
    "seed": 42,
}


def check_pretraining_args(script_args: PretrainingArguments, training_args: BirdieTrainingArguments) -> None:
    """Check the data and model arguments before anything is built or trained.

    Raises:
        [`RecipeError`]: a genome file is missing, or `--dataset_name` is given a FASTA file.
        `FileNotFoundError`: `--model_name_or_path` is neither a local folder nor a valid Hub id.
    """
    if script_args.streaming and training_args.max_steps <= 0:
        raise RecipeError(
            "--streaming needs --max_steps (a streamed genome has no known length, so epochs cannot be counted)."
        )
    if script_args.streaming and script_args.dataset_name is not None:
        raise RecipeError("--streaming reads FASTA files given with --genomes, not --dataset_name.")
    if script_args.validation_genomes and not script_args.streaming:
        raise RecipeError(
            "--validation_genomes is for --streaming runs; without it the held-out windows are cut from --genomes "
            "(--validation_fraction, --split_by)."
        )
    for path in script_args.validation_genomes or []:
        if not os.path.exists(path):
            raise RecipeError(f"--validation_genomes: file not found: {path!r}")
    if script_args.dataset_name is None:
        for path in script_args.genomes or []:
            if not os.path.exists(path):
                raise RecipeError(f"--genomes: file not found: {path!r}")
    elif is_fasta_path(script_args.dataset_name):
        raise RecipeError(
            f"--dataset_name takes a Hub id or CSV, got the FASTA file {script_args.dataset_name!r}; "
            "pass FASTA files with --genomes."
        )
    if script_args.model_name_or_path:
        check_model_path(script_args.model_name_or_path)


def build_datasets(script_args: PretrainingArguments, tokenizer, seed: int) -> DatasetDict:
    """Train and validation windows from `--genomes` (FASTA; streamed with `--streaming`) or `--dataset_name` (CSV or
    Hub sequences)."""
    if script_args.streaming:
        return streamed_windows(script_args, tokenizer, seed)
    if script_args.dataset_name is None:
        return load_genome_windows(
            script_args.genomes,
            tokenizer,
            window_length=script_args.window_length,
            stride=script_args.stride,
            validation_fraction=script_args.validation_fraction,
            split_by=script_args.split_by,
            reverse_complement=script_args.reverse_complement,
            soft_mask=script_args.soft_mask,
            seed=seed,
        )
    kwargs = {"name": script_args.dataset_config} if script_args.dataset_config else {}
    return load_sequence_windows(
        script_args.dataset_name,
        tokenizer,
        window_length=script_args.window_length,
        stride=script_args.stride,
        validation_fraction=script_args.validation_fraction,
        seed=seed,
        **kwargs,
    )


def streamed_windows(script_args: PretrainingArguments, tokenizer, seed: int) -> dict:
    """`{"train": IterableDataset, "validation": Dataset}`: the `--genomes` windows streamed from disk (memory does
    not grow with the genome), shuffled (the order of the shards, then a buffer of `STREAM_SHUFFLE_BUFFER` windows;
    the Trainer reseeds it every epoch), and every window of `--validation_genomes` (none without them)."""
    genomes = script_args.genomes or [default_genome_path()]
    train = stream_genome_windows(
        genomes,
        tokenizer,
        window_length=script_args.window_length,
        stride=script_args.stride,
        reverse_complement=script_args.reverse_complement,
        soft_mask=script_args.soft_mask,
    ).shuffle(seed=seed, buffer_size=STREAM_SHUFFLE_BUFFER)  # shard order and a window buffer, reseeded per epoch
    if script_args.validation_genomes:
        eager_log = logging.getLogger("birdie_hf.data.eager")
        level = eager_log.level
        eager_log.setLevel(logging.WARNING)  # its "N train, 0 validation" line would name these windows train
        try:
            validation = load_genome_windows(
                script_args.validation_genomes,
                tokenizer,
                window_length=script_args.window_length,
                validation_fraction=0.0,
                soft_mask=script_args.soft_mask,
            )["train"]
        finally:
            eager_log.setLevel(level)
        logger.info("Held-out windows from --validation_genomes: %d.", len(validation))
    else:
        validation = Dataset.from_dict({"input_ids": []})
    return {"train": train, "validation": validation}


def build_model(script_args: PretrainingArguments, training_args: BirdieTrainingArguments, tokenizer):
    """A new model of the recipe's size, or the `--model_name_or_path` checkpoint and its tokenizer (with the Birdie
    tokens added)."""
    # "auto": compiled flex attention on the GPU fast path, sdpa otherwise (the fast path off is the plain step).
    attn = resolve_attn_implementation(script_args.attn_implementation, flex=training_args.fast_path == "on")
    if script_args.model_name_or_path:
        try:
            return load_causal_lm_checkpoint(script_args.model_name_or_path, attn)
        except ValueError as error:
            raise RecipeError(f"--model_name_or_path: {error}") from error
    config = default_model_config(
        tokenizer,
        hidden_size=script_args.hidden_size,
        num_hidden_layers=script_args.num_hidden_layers,
        num_attention_heads=script_args.num_attention_heads,
        max_position_embeddings=max(2048, training_args.max_length),
        tie_word_embeddings=script_args.tie_word_embeddings,
    )
    return build_causal_lm(config, attn, seed=training_args.seed), tokenizer


def check_windows(script_args: PretrainingArguments, collator: DataCollatorForBirdie) -> None:
    """Refuse a `--max_length` too small for every objective to read whole `--window_length` windows (the collator
    would crop them at random offsets and the model would see fewer bases than the windows hold). With
    `--allow_cropping` the trainer's own check warns instead."""
    if script_args.allow_cropping:
        return
    try:
        check_windows_fit(collator, script_args.window_length)
    except WindowCroppingError as error:
        raise RecipeError(f"--max_length / --window_length: {error}") from None


def held_out_windows(script_args: PretrainingArguments, training_args: BirdieTrainingArguments, data: DatasetDict):
    """The validation windows, or `None` for a `static` / `ntp` run without any.

    Raises:
        [`RecipeError`]: `--policy birdie` (whose reward is measured on held-out windows) and no validation window.
    """
    validation = data["validation"]
    wanted = training_args.policy_validation_windows or training_args.policy_validation_min_windows
    if 0 < len(validation) < wanted and training_args.policy == "birdie":
        logger.warning(
            "Only %d validation windows for the reward's held-out set of at least %d windows per objective entry "
            "(policy_validation_min_windows): it uses all of them, so rewards are noisier. --split_by "
            "record (whole records held out), a larger --validation_fraction or a smaller --window_length "
            "give more.",
            len(validation),
            wanted,
        )
    if len(validation) > 0:
        return validation
    if script_args.streaming:
        cause, change = "--streaming holds out no part of --genomes", "--validation_genomes held_out.fa"
    elif script_args.validation_fraction == 0:
        cause, change = "--validation_fraction 0 holds out nothing", "a --validation_fraction above 0 (e.g. 0.05)"
    else:
        cause = (
            f"no validation window of --window_length {script_args.window_length} bases fits in the held-out "
            f"{script_args.validation_fraction:g} of {describe_data(script_args)} (the warning above gives the "
            "numbers)"
        )
        change = "a smaller --window_length, a larger --validation_fraction, more data"
    if training_args.policy == "birdie":
        raise RecipeError(
            f"--policy birdie needs held-out windows for its reward, but {cause}. Use {change}, or "
            "--policy static / ntp, which train without held-out windows."
        )
    logger.warning(
        "No held-out windows (%s): --policy %s trains without validation evaluations; summary.md and the "
        "model card record no validation losses.",
        cause,
        training_args.policy,
    )
    return None


def describe_data(script_args: PretrainingArguments) -> str:
    """The training data in words, for the model card and the summary."""
    if script_args.dataset_name:
        return f"`{script_args.dataset_name}`"
    if script_args.genomes:
        return ", ".join(f"`{os.path.basename(path)}`" for path in script_args.genomes)
    return "the bacterial assembly shipped with birdie_hf (3 contigs, 317 kbp; Prokka test assembly, GPL-2.0)"
