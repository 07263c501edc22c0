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

import argparse
import logging
import os
import sys
from typing import Optional

import torch
from transformers import HfArgumentParser, TrainingArguments

from birdie_hf import BirdieTrainer, BirdieTrainingArguments, DataCollatorForBirdie, build_dna_tokenizer
from birdie_hf.cli import explain_stopped_training, group_dataclass_options, parse_args_with_config, run_recipe
from birdie_hf.hub_io import check_hub_access
from birdie_hf.presets import PRESETS
from birdie_hf.pretraining import (
    PRETRAINING_DEFAULTS,
    PretrainingArguments,
    build_datasets,
    build_model,
    check_pretraining_args,
    check_windows,
    describe_data,
    held_out_windows,
)
from birdie_hf.run_record import finished_outputs, write_run_record


def parse_args(argv: Optional[list[str]] = None) -> tuple[PretrainingArguments, BirdieTrainingArguments]:
    """Command line, then `--config x.yaml` (any argument as a key), then `PRETRAINING_DEFAULTS`."""
    parser = HfArgumentParser(
        (PretrainingArguments, BirdieTrainingArguments),
        prog="recipes/pretrain.py",
        usage="accelerate launch recipes/pretrain.py [--config RUN.YAML] [options]",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    # `--config` is read before parsing (see birdie_hf.cli.pop_config_flag); declared here so --help lists it.
    parser.add_argument(
        "--config", metavar="RUN.YAML", help="YAML file of any options below (as keys); command-line flags win"
    )
    group_dataclass_options(
        parser,
        BirdieTrainingArguments,
        TrainingArguments,
        "Birdie: objectives, mixture and reward policy (BirdieTrainingArguments)",
    )
    argv = list(sys.argv[1:] if argv is None else argv)
    return parse_args_with_config(
        parser, argv, defaults=PRETRAINING_DEFAULTS, alternatives={"max_tokens": "max_steps"}, presets=PRESETS
    )


def main(script_args: PretrainingArguments, training_args: BirdieTrainingArguments):
    logging.basicConfig(
        level=logging.INFO if training_args.should_log else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    check_pretraining_args(script_args, training_args)
    if training_args.push_to_hub:  # fail before any training, not after it
        repo_id = training_args.hub_model_id or os.path.basename(training_args.output_dir.rstrip("/"))
        check_hub_access(repo_id, training_args.hub_token)
    if training_args.device.type == "cpu":
        torch.set_num_threads(script_args.cpu_threads or max(1, (os.cpu_count() or 1) // training_args.world_size))

    tokenizer = build_dna_tokenizer(model_max_length=training_args.max_length)
    model, tokenizer = build_model(script_args, training_args, tokenizer)
    collator = DataCollatorForBirdie.from_training_args(tokenizer, training_args)
    check_windows(script_args, collator)
    data = build_datasets(script_args, tokenizer, training_args.seed)
    trainer = BirdieTrainer(
        model=model,
        args=training_args,
        data_collator=collator,
        train_dataset=data["train"],
        eval_dataset=held_out_windows(script_args, training_args, data),
        processing_class=tokenizer,
    )

    resume = training_args.resume_from_checkpoint
    with explain_stopped_training(training_args.output_dir, lambda: trainer.state.global_step):
        result = trainer.train(resume_from_checkpoint=True if resume == "last" else resume)
    if result.metrics.get("already_complete") and finished_outputs(training_args.output_dir, result.global_step):
        if trainer.is_world_process_zero():
            print(
                f"The run in {training_args.output_dir} is already complete at step {result.global_step}: nothing "
                "trained, nothing rewritten."
            )
        return

    tokens = write_run_record(
        trainer, result.global_step, result.metrics, data, script_args.window_length, describe_data(script_args)
    )
    if training_args.push_to_hub:
        try:
            trainer.push_to_hub(
                commit_message="Birdie pre-training", training_data=describe_data(script_args), tokens_seen=tokens
            )
        except Exception as error:  # the local output is complete; say so rather than lose track of it
            raise SystemExit(
                f"error: push to the Hub failed ({type(error).__name__}: {error}). The trained model and card are "
                f"saved in {training_args.output_dir}; push them later with `hf upload`."
            ) from None


if __name__ == "__main__":
    run_recipe(lambda argv: main(*parse_args(argv)))
