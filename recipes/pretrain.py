"""Birdie pre-training of a DNA language model.

Runs with no arguments: the small bacterial genome shipped with birdie_hf, a tiny Llama, a few minutes on a laptop CPU.

    # default run (CPU friendly)
    accelerate launch recipes/pretrain.py

    # the baselines, same data and token budget
    accelerate launch recipes/pretrain.py --policy static --output_dir outputs/static
    accelerate launch recipes/pretrain.py --policy ntp --output_dir outputs/ntp

    # a named preset (birdie_hf.presets): the paper's Birdie, or Birdie calibrated on DNA; flags win over it
    accelerate launch recipes/pretrain.py --preset dna --output_dir outputs/birdie-dna

    # your own genomes, a bigger model, a YAML config (any flag below can go in it)
    accelerate launch recipes/pretrain.py --genomes a.fna.gz b.fa --hidden_size 512 --num_hidden_layers 8 \
        --window_length 1024 --max_length 2056 --max_steps 32768 --bf16
    accelerate launch recipes/pretrain.py --config my_run.yaml

    # two processes on CPU (gloo)
    accelerate launch --multi_gpu --num_processes 2 --num_machines 1 --mixed_precision no --dynamo_backend no \
        recipes/pretrain.py

    # a genome larger than memory: windows streamed from disk, held-out windows from a separate file
    accelerate launch recipes/pretrain.py --streaming --genomes big.fa --validation_genomes held_out.fa.gz \
        --reverse_complement --soft_mask drop --max_steps 20000

    # continual pre-training from an existing causal-LM checkpoint
    accelerate launch recipes/pretrain.py --model_name_or_path outputs/birdie-dna-tiny --learning_rate 3e-4

    # resume an interrupted run (its last complete checkpoint, same settings); start over in a used folder
    accelerate launch recipes/pretrain.py --resume_from_checkpoint last
    accelerate launch recipes/pretrain.py --overwrite_output_dir true

The options below come in three groups: data and model (this recipe), Birdie (objectives, mixture, reward policy;
`BirdieTrainingArguments`) and every `transformers.TrainingArguments` option. `--config run.yaml` takes any of them
as keys; flags on the command line win over the file.

Every objective must read whole windows: `--max_length` must hold the longest example a window makes (copying and
deshuffling write `2 * window_length + 2` tokens), or the run is refused with the numbers. `--policy birdie` needs
held-out windows (`--validation_fraction` above 0, and held-out parts at least a window long); `static` and `ntp`
train without them (no validation losses are recorded then).

Bad input (a missing genome, an unknown objective, an out-of-range setting, a malformed YAML config, windows that do
not fit `--max_length`, no held-out window for `--policy birdie`) ends in one `error:` line before any training; add
`--traceback` (or set `BIRDIE_TRACEBACK=1`) for the full traceback.
"""

from __future__ import annotations

import errno
import itertools
import json
import logging
import os
import sys
from dataclasses import dataclass, field
from typing import Optional

import torch
from datasets import Dataset, DatasetDict, IterableDataset
from transformers import HfArgumentParser

from birdie_hf import (
    BirdieTrainer,
    BirdieTrainingArguments,
    DataCollatorForBirdie,
    build_causal_lm,
    build_dna_tokenizer,
    default_model_config,
    last_complete_checkpoint,
)
from birdie_hf.accounting import accounting_markdown, plot_compute
from birdie_hf.cli import TRACEBACK_HELP, RecipeError, RecipeInterrupted, parse_args_with_config, run_recipe
from birdie_hf.data import (
    WindowCroppingError,
    check_windows_fit,
    default_genome_path,
    is_fasta_path,
    load_genome_windows,
    load_sequence_windows,
    source_tokens_seen,
    stream_genome_windows,
)
from birdie_hf.health import health_sentence, health_summary
from birdie_hf.hub import HELD_OUT_NAME
from birdie_hf.hub_io import check_model_path
from birdie_hf.modeling import load_causal_lm_checkpoint
from birdie_hf.presets import PRESETS
from birdie_hf.tokenizer import save_tokenizer
from birdie_hf.trajectory import final_mixture


logger = logging.getLogger("birdie_hf.pretrain")
#: With --streaming, the Markov baselines of the summary are fit on this many windows from the start of the stream.
STREAMED_MARKOV_WINDOWS = 20_000
#: With --streaming, windows are shuffled through a buffer of this many (a window and its reverse complement, and
#: neighbouring windows, then rarely share a batch; 10,000 windows of 1,024 bases are 10 MB).
STREAM_SHUFFLE_BUFFER = 10_000


@dataclass
class ScriptArguments:
    """Data and model arguments of the pre-training recipe."""

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
            "help": "auto (default: flex_attention on CUDA, sdpa elsewhere), sdpa, eager, or flex_attention (CUDA: "
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


#: Training defaults of the recipe (a short CPU run); every one can be overridden on the command line or in YAML.
RECIPE_DEFAULTS = {
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


def parse_args(argv: Optional[list[str]] = None) -> tuple[ScriptArguments, BirdieTrainingArguments]:
    """Command line, then `--config x.yaml` (any argument as a key), then [`RECIPE_DEFAULTS`]."""
    import argparse

    parser = HfArgumentParser(
        (ScriptArguments, BirdieTrainingArguments),
        prog="recipes/pretrain.py",
        usage="accelerate launch recipes/pretrain.py [--config RUN.YAML] [options]",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    # `--config` is read before parsing (see birdie_hf.cli.pop_config_flag); declared here so --help lists it.
    parser.add_argument(
        "--config", metavar="RUN.YAML", help="YAML file of any options below (as keys); command-line flags win"
    )
    _list_birdie_options_first(parser)
    argv = list(sys.argv[1:] if argv is None else argv)
    return parse_args_with_config(
        parser, argv, defaults=RECIPE_DEFAULTS, alternatives={"max_tokens": "max_steps"}, presets=PRESETS
    )


def _list_birdie_options_first(parser) -> None:
    """--help: the options BirdieTrainingArguments adds get their own group, right after the recipe's, instead of
    coming last among the ~200 `TrainingArguments` options (display only; parsing is unchanged)."""
    import dataclasses

    from transformers import TrainingArguments

    inherited = {f.name for f in dataclasses.fields(TrainingArguments)}
    birdie = {f.name for f in dataclasses.fields(BirdieTrainingArguments) if f.name not in inherited}
    group = parser.add_argument_group("Birdie: objectives, mixture and reward policy (BirdieTrainingArguments)")
    for source in parser._action_groups:
        if source is group:
            continue
        moved = [action for action in source._group_actions if action.dest in birdie]
        for action in moved:
            source._group_actions.remove(action)
            group._group_actions.append(action)
    # Recipe options, then Birdie's, then the inherited TrainingArguments ones (argparse's default group) last.
    parser._action_groups.remove(group)
    parser._action_groups.remove(parser._optionals)
    parser._action_groups += [group, parser._optionals]
    parser._optionals.title = "transformers.TrainingArguments options (and --help, --config)"


def check_script_args(script_args: ScriptArguments, training_args: BirdieTrainingArguments) -> None:
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


def build_datasets(script_args: ScriptArguments, tokenizer, seed: int) -> DatasetDict:
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


def streamed_windows(script_args: ScriptArguments, tokenizer, seed: int) -> dict:
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


def build_model(script_args: ScriptArguments, training_args: BirdieTrainingArguments, tokenizer):
    """A new model of the recipe's size, or the `--model_name_or_path` checkpoint and its tokenizer (with the Birdie
    tokens added)."""
    if script_args.model_name_or_path:
        try:
            return load_causal_lm_checkpoint(script_args.model_name_or_path, script_args.attn_implementation)
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
    return build_causal_lm(config, script_args.attn_implementation, seed=training_args.seed), tokenizer


def check_windows(script_args: ScriptArguments, collator: DataCollatorForBirdie) -> None:
    """Refuse a `--max_length` too small for every objective to read whole `--window_length` windows (the collator
    would crop them at random offsets and the model would see fewer bases than the windows hold). With
    `--allow_cropping` the trainer's own check warns instead."""
    if script_args.allow_cropping:
        return
    try:
        check_windows_fit(collator, script_args.window_length)
    except WindowCroppingError as error:
        raise RecipeError(f"--max_length / --window_length: {error}") from None


def held_out_windows(script_args: ScriptArguments, training_args: BirdieTrainingArguments, data: DatasetDict):
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


def summary_table(
    trajectory: dict,
    objective_names: list[str],
    tokens_seen: Optional[int],
    final_step: int,
    live_mixture: dict[str, float],
) -> str:
    """Last validation loss and final weight per entry. The final weight is the mixture trained on at the end
    (`birdie_hf.hub.final_mixture`, as on the model card); `live_mixture` stands in when nothing was evaluated, and
    the loss column is left out then (with a line saying why) rather than filled with NaN. `tokens_seen`: the source
    bases of the windows trained on, as the trainer counted them (`birdie_hf.data.source_tokens_seen`)."""
    evaluations = trajectory["evaluations"]
    final = final_mixture(trajectory, final_step) or live_mixture
    seen = "n/a (not counted for the whole run)" if tokens_seen is None else f"{tokens_seen:,}"
    health = trajectory.get("health") or health_summary(trajectory["evaluations"])
    lines = [f"tokens seen (source bases, all ranks): {seen}", f"training health: {health_sentence(health)}", ""]
    if not evaluations:
        lines += [
            "no held-out evaluation was run (no validation windows): validation losses were not measured; the "
            "weights are the mixture trained on.",
            "",
            f"| {'objective':<36} | {'final weight':>12} |",
            f"|{'-' * 38}|{'-' * 14}|",
        ]
        lines += [f"| {name:<36} | {final[name]:>12.4f} |" for name in objective_names]
        return "\n".join(lines)
    last = evaluations[-1]
    lines += [
        f"| {'objective':<36} | {'final val loss':>14} | {'final weight':>12} |",
        f"|{'-' * 38}|{'-' * 16}|{'-' * 14}|",
    ]
    for name in objective_names:
        lines.append(f"| {name:<36} | {last['losses'][name]:>14.4f} | {final[name]:>12.4f} |")
    return "\n".join(lines)


def next_base_table(model, data, tokenizer, orders=(2, 3, 4, 5, 6)) -> str:
    """Held-out next-base loss of the model next to order-k Markov models fit on the same training windows."""
    from birdie_hf.evaluation.baselines import markov_baseline_table, next_base_nll, windows_to_text

    if not hasattr(data["validation"], "__len__") or len(data["validation"]) == 0:
        return "(no held-out windows: next-base comparison skipped)"
    heldout = data["validation"]["input_ids"]
    train = data["train"]
    if isinstance(train, IterableDataset):  # streamed: the chains are fit on the stream's first windows
        train_ids = (row["input_ids"] for row in itertools.islice(train, STREAMED_MARKOV_WINDOWS))
    else:
        train_ids = train["input_ids"]
    rows = markov_baseline_table(
        windows_to_text(train_ids, tokenizer),
        list(windows_to_text(heldout, tokenizer)),
        orders=orders,
    )
    lines = [
        f"held-out next-base loss over {len(heldout)} windows (nats per base; lower is better):",
        "",
        f"| {'model':<36} | {'nats':>8} |",
        f"|{'-' * 38}|{'-' * 10}|",
        f"| {'this model (read left to right)':<36} | {next_base_nll(model, heldout, tokenizer):>8.4f} |",
    ]
    for row in rows:
        name = "base composition (order 0)" if row["order"] == 0 else f"order-{row['order']} Markov"
        lines.append(f"| {name:<36} | {row['nll']:>8.4f} |")
    return "\n".join(lines)


def main(script_args: ScriptArguments, training_args: BirdieTrainingArguments):
    logging.basicConfig(
        level=logging.INFO if training_args.should_log else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    check_script_args(script_args, training_args)
    if training_args.push_to_hub:  # fail before any training, not after it
        from birdie_hf.hub_io import check_hub_access

        repo_id = training_args.hub_model_id or os.path.basename(training_args.output_dir.rstrip("/"))
        check_hub_access(repo_id, training_args.hub_token)
    if training_args.device.type == "cpu":
        torch.set_num_threads(script_args.cpu_threads or max(1, (os.cpu_count() or 1) // training_args.world_size))
    tokenizer = build_dna_tokenizer(model_max_length=training_args.max_length)
    model, tokenizer = build_model(script_args, training_args, tokenizer)
    collator = DataCollatorForBirdie.from_training_args(tokenizer, training_args)
    check_windows(script_args, collator)
    data = build_datasets(script_args, tokenizer, training_args.seed)
    eval_dataset = held_out_windows(script_args, training_args, data)
    trainer = BirdieTrainer(
        model=model,
        args=training_args,
        data_collator=collator,
        train_dataset=data["train"],
        eval_dataset=eval_dataset,
        processing_class=tokenizer,
    )
    resume = training_args.resume_from_checkpoint
    try:
        result = trainer.train(resume_from_checkpoint=True if resume == "last" else resume)
    except (OSError, RuntimeError) as error:
        # A full disk: OSError ENOSPC from Python's writes, RuntimeError from torch.save ("PytorchStreamWriter
        # failed writing file ...").
        if not (getattr(error, "errno", None) == errno.ENOSPC or "failed writing file" in str(error)):
            raise
        checkpoint = last_complete_checkpoint(training_args.output_dir)
        raise RecipeError(
            f"could not write to {training_args.output_dir!r} at step {trainer.state.global_step} (no space left on "
            f"the device? {str(error).splitlines()[0][:120]}); free space, then "
            + (
                f"resume from {checkpoint} with --resume_from_checkpoint last (and the same settings)."
                if checkpoint
                else "rerun: no checkpoint was saved yet."
            )
        ) from None
    except KeyboardInterrupt:
        checkpoint = last_complete_checkpoint(training_args.output_dir)
        raise RecipeInterrupted(
            f"stopped at step {trainer.state.global_step}; "
            + (
                f"resume from {checkpoint} with --resume_from_checkpoint last (and the same settings)."
                if checkpoint
                else "no checkpoint was saved yet, so a rerun starts over."
            )
        ) from None
    if result.metrics.get("already_complete") and finished_outputs(training_args.output_dir, result.global_step):
        if trainer.is_world_process_zero():
            print(
                f"The run in {training_args.output_dir} is already complete at step {result.global_step}: nothing "
                "trained, nothing rewritten."
            )
        return
    trainer.save_model(training_args.output_dir)
    trajectory = trainer.mixture_trajectory()  # the run's record: evaluations and compute accounting
    try:
        tokens = source_tokens_seen(trajectory["compute"], trainer.data_collator, script_args.window_length)
    except ValueError as error:  # resumed from an older version's checkpoint, which did not count windows
        logger.warning("%s The summary and card say 'n/a'.", error)
        tokens = None
    if trainer.is_world_process_zero():
        save_tokenizer(tokenizer, training_args.output_dir)
        trainer.save_birdie_state(training_args.output_dir, policy_state=False)  # checkpoints keep the policy state
        table = summary_table(
            trajectory,
            trainer.data_collator.objective_names,
            tokens,
            result.global_step,
            trainer.data_collator.mixture.as_dict(),
        )
        compute = accounting_markdown(trajectory["compute"], trainer.data_collator.reward_classes)
        held_out = next_base_table(trainer.model, data, tokenizer)
        table += "\n\n" + compute + "\n\n" + held_out
        with open(os.path.join(training_args.output_dir, HELD_OUT_NAME), "w", encoding="utf-8") as handle:
            handle.write(held_out + "\n")
        with open(os.path.join(training_args.output_dir, "summary.md"), "w", encoding="utf-8") as handle:
            handle.write(table + "\n")
        with open(os.path.join(training_args.output_dir, "train_results.json"), "w", encoding="utf-8") as handle:
            json.dump(
                {
                    **result.metrics,
                    "global_step": result.global_step,
                    "tokens_seen": tokens,
                    "model_tokens": trainer.state.num_input_tokens_seen,
                    "policy": training_args.policy,
                },
                handle,
                indent=2,
            )
        print("\n" + table)
        print(f"\nSaved model, tokenizer and mixture trajectory to {training_args.output_dir}")
        # The card comes before the plots: it is the run's record, the plots are a view of it.
        trainer.create_model_card(training_data=describe_data(script_args), tokens_seen=tokens)
        print(f"Wrote the model card to {os.path.join(training_args.output_dir, 'README.md')}")
        save_plots(trajectory, os.path.join(training_args.output_dir, "plots"))
        plot_compute(
            trainer.state.log_history,
            trainer.data_collator.objective_names,
            trainer.data_collator.reward_classes,
            os.path.join(training_args.output_dir, "plots", "compute.png"),
        )
    if training_args.push_to_hub:
        try:
            trainer.push_to_hub(
                commit_message="Birdie pre-training", training_data=describe_data(script_args), tokens_seen=tokens
            )
        except Exception as error:  # the local output is complete; say so rather than lose track of it
            raise SystemExit(
                f"error: push to the Hub failed ({type(error).__name__}: {error}). The trained model "
                f"and card are saved in {training_args.output_dir}; push them later with "
                "`hf upload`."
            ) from None


def finished_outputs(output_dir: str, global_step: int) -> bool:
    """Whether `output_dir` holds the final outputs (train_results.json, model, card) of a run ended at `global_step`."""
    try:
        with open(os.path.join(output_dir, "train_results.json"), encoding="utf-8") as handle:
            recorded = json.load(handle).get("global_step")
    except (OSError, ValueError):
        return False
    present = all(os.path.isfile(os.path.join(output_dir, name)) for name in ("config.json", "README.md"))
    return recorded == global_step and present


def save_plots(trajectory: dict, directory: str) -> None:
    """Mixture, loss and reward plots of the run (matplotlib is a dependency of birdie_hf)."""
    from birdie_hf.plotting import plot_losses, plot_mixture, plot_rewards

    if not trajectory["evaluations"]:
        return
    plot_mixture(trajectory, os.path.join(directory, "mixture.png"))
    plot_losses(trajectory, os.path.join(directory, "validation_losses.png"))
    if any(e.get("rewards") for e in trajectory["evaluations"]):
        plot_rewards(trajectory, os.path.join(directory, "rewards.png"))
    print(f"Saved plots to {directory}")


def describe_data(script_args: ScriptArguments) -> str:
    if script_args.dataset_name:
        return f"`{script_args.dataset_name}`"
    if script_args.genomes:
        return ", ".join(f"`{os.path.basename(path)}`" for path in script_args.genomes)
    return "the bacterial assembly shipped with birdie_hf (3 contigs, 317 kbp; Prokka test assembly, GPL-2.0)"


if __name__ == "__main__":
    run_recipe(lambda argv: main(*parse_args(argv)))
