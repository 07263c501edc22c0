"""Fine-tune a pre-trained checkpoint on one sequence-classification task (full fine-tuning or LoRA).

    # a local folder of train/dev/test CSVs (sequence,label)
    python recipes/finetune.py --model_name_or_path outputs/birdie-dna-tiny \
        --task ../shared/data/tasks/dnabert2_sample --output_dir outputs/ft-sample

    # a Nucleotide Transformer task from the Hub (downloads), with LoRA
    python recipes/finetune.py --model_name_or_path my-org/birdie-dna --task promoter_all --lora_r 8

The classifier reads its input causally or bidirectionally (`--attention`, default `auto`: bidirectional for
checkpoints pre-trained with prefix objectives, as Birdie trains them, causal for NTP-only ones); bidirectional inputs
open with `<|prefix_lm|>` unless `--no-prefix_prompt`. The mode is saved in the model (`config.is_causal`) and the
prompt in its tokenizer, so `pipeline("text-classification")` reads it the same way with no custom code.

    python recipes/finetune.py --model_name_or_path outputs/birdie-dna-tiny --task outputs/genome_tasks/gene_strand \
        --output_dir outputs/ft-causal --attention causal

Early stopping on the dev split by MCC; writes `results.json` (dev and test MCC, F1, accuracy), the best model (LoRA
merged) and its model card (`README.md`: base model, task, attention mode, metrics) to `--output_dir`.

Options come from the command line or a `--config` YAML file (any option as a key; flags win).

The output folder is this run's: a folder holding a pre-training run (or any other job's outputs) is refused, and an
earlier fine-tuning run there is replaced only with `--overwrite_output_dir`.

Bad input (a missing checkpoint or task folder, a negative `--lora_r`, ...) ends in one `error:` line; add
`--traceback` (or set `BIRDIE_TRACEBACK=1`) for the full traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from dataclasses import dataclass, field
from typing import Optional

from transformers import HfArgumentParser

from birdie_hf.cli import TRACEBACK_FLAG, TRACEBACK_HELP, parse_args_with_config, run_recipe, strip_traceback_flag
from birdie_hf.evaluation.finetune import LoraSettings, finetune_classifier, load_classification_task
from birdie_hf.evaluation.leakage import split_overlap, split_overlap_warning
from birdie_hf.hub import write_finetuned_card
from birdie_hf.hub_io import load_model_config
from birdie_hf.runs.folder import FINETUNING, OutputDirLock, claim_output_dir


@dataclass
class FinetuneArguments:
    """Arguments of the fine-tuning recipe (command line or `--config` YAML; flags win)."""

    model_name_or_path: Optional[str] = field(
        default=None, metadata={"help": "Pre-trained causal-LM checkpoint (folder or Hub id). Required."}
    )
    task: Optional[str] = field(
        default=None, metadata={"help": "Folder of train/dev/test CSVs, or an NT task name. Required."}
    )
    output_dir: Optional[str] = field(
        default=None, metadata={"help": "Folder of the fine-tuned model, its card and results. Required."}
    )
    overwrite_output_dir: bool = field(
        default=False,
        metadata={"help": "Replace an earlier fine-tuning run in --output_dir (another job's folder is refused)."},
    )
    seed: int = field(default=0, metadata={"help": "Seed of the head's initialisation, data order and dev split."})
    num_train_epochs: float = field(default=10, metadata={"help": "Most epochs (early stopping on dev MCC)."})
    learning_rate: float = field(default=3e-4, metadata={"help": "Peak learning rate (AdamW)."})
    batch_size: int = field(default=32, metadata={"help": "Sequences per training batch per device."})
    gradient_accumulation_steps: int = field(default=1, metadata={"help": "Batches per optimizer step."})
    early_stopping_patience: int = field(default=3, metadata={"help": "Epochs without a better dev MCC."})
    max_length: Optional[int] = field(default=None, metadata={"help": "Truncate longer sequences (tokens)."})
    lora_r: int = field(default=0, metadata={"help": "LoRA rank; 0 = full fine-tuning."})
    lora_alpha: int = field(default=16, metadata={"help": "LoRA scaling alpha."})
    lora_dropout: float = field(default=0.05, metadata={"help": "Dropout on the LoRA layers."})
    attention: str = field(
        default="auto",
        metadata={
            "help": "How the classifier reads its input: auto (from the checkpoint's pre-training record), causal "
            "or bidirectional.",
            "choices": ["auto", "causal", "bidirectional"],
        },
    )
    prefix_prompt: Optional[bool] = field(
        default=None, metadata={"help": "Open bidirectional inputs with <|prefix_lm|> (default: on)."}
    )
    bf16: bool = field(default=False, metadata={"help": "Train in bfloat16 mixed precision (GPU)."})
    report_to: str = field(default="none", metadata={"help": "Where to log: none, tensorboard, wandb, ..."})
    push_to_hub: bool = field(default=False, metadata={"help": "Push the fine-tuned model and its card."})
    hub_model_id: Optional[str] = field(
        default=None, metadata={"help": "Hub repository of the card and push (default: the name of --output_dir)."}
    )

    def __post_init__(self):
        missing = [name for name in ("model_name_or_path", "task", "output_dir") if not getattr(self, name)]
        if missing:
            raise ValueError(
                f"{', '.join('--' + name for name in missing)} required (on the command line or in --config)."
            )
        if self.gradient_accumulation_steps < 1:
            raise ValueError(
                f"--gradient_accumulation_steps must be at least 1, got {self.gradient_accumulation_steps}."
            )


def parse_args(argv=None) -> FinetuneArguments:
    """Command line, then `--config x.yaml` (any argument as a key). `--no-prefix_prompt` is read as
    `--prefix_prompt false`."""
    parser = HfArgumentParser(
        FinetuneArguments,
        prog="recipes/finetune.py",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--config", metavar="RUN.YAML", help="YAML file of any options below (as keys); command-line flags win"
    )
    parser.add_argument(TRACEBACK_FLAG, action="store_true", help=TRACEBACK_HELP)
    argv = list(sys.argv[1:] if argv is None else argv)
    argv = [item for arg in argv for item in (["--prefix_prompt", "false"] if arg == "--no-prefix_prompt" else [arg])]
    argv = strip_traceback_flag(argv)  # read by run_recipe
    (args,) = parse_args_with_config(parser, argv)
    return args


def main(args):
    # Everything that can be checked without training is checked first.
    lora = LoraSettings(r=args.lora_r, alpha=args.lora_alpha, dropout=args.lora_dropout)
    load_model_config(args.model_name_or_path)  # a missing checkpoint fails here, not after loading the task
    if args.push_to_hub:
        from birdie_hf.hub_io import check_hub_access

        check_hub_access(args.hub_model_id or os.path.basename(os.path.abspath(args.output_dir)))
    from accelerate import PartialState

    state = PartialState()  # under accelerate launch: only the main process owns (locks, checks, records) the folder
    owner = OutputDirLock(args.output_dir) if state.is_main_process else contextlib.nullcontext()
    with owner:  # one live run per folder, which must be free or this job's own
        if state.is_main_process:
            claim_output_dir(args.output_dir, FINETUNING, args.overwrite_output_dir)
        state.wait_for_everyone()
        run(args, lora)


def run(args, lora: LoraSettings) -> None:
    data = load_classification_task(args.task, seed=args.seed)
    warning = split_overlap_warning(args.task, split_overlap(args.task)) if os.path.isdir(args.task) else None
    if warning:
        print(warning, file=sys.stderr)
    results = finetune_classifier(
        args.model_name_or_path,
        data,
        args.output_dir,
        seed=args.seed,
        lora=lora,
        num_train_epochs=args.num_train_epochs,
        learning_rate=args.learning_rate,
        batch_size=args.batch_size,
        early_stopping_patience=args.early_stopping_patience,
        max_length=args.max_length,
        attention=args.attention,
        prefix_prompt=args.prefix_prompt,
        gradient_accumulation_steps=args.gradient_accumulation_steps,
        bf16=args.bf16,
        report_to=args.report_to,
    )
    record = {
        "task": args.task,
        "checkpoint": args.model_name_or_path,
        "seed": args.seed,
        "lora_r": args.lora_r,
        **results,
    }
    with open(os.path.join(args.output_dir, "results.json"), "w", encoding="utf-8") as handle:
        json.dump(record, handle, indent=2)
    print(json.dumps(record, indent=2))
    widget = list(data["test"]["sequence"][:2])  # real inputs of the task for the Hub widget
    card = write_finetuned_card(args.output_dir, record, repo_id=args.hub_model_id, widget_sequences=widget)
    print(f"Wrote the model card to {card}")
    if args.push_to_hub:
        from birdie_hf.hub import push_finetuned

        push_finetuned(args.output_dir, record, repo_id=args.hub_model_id, widget_sequences=widget)


if __name__ == "__main__":
    run_recipe(lambda argv: main(parse_args(argv)))
