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

The output folder is this run's: a folder holding a pre-training run (or any other job's outputs) is refused, and an
earlier fine-tuning run there is replaced only with `--overwrite_output_dir`.

Bad input (a missing checkpoint or task folder, a negative `--lora_r`, ...) ends in one `error:` line; add
`--traceback` (or set `BIRDIE_TRACEBACK=1`) for the full traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from birdie_hf.cli import TRACEBACK_FLAG, TRACEBACK_HELP, run_recipe
from birdie_hf.evaluation.finetune import LoraSettings, finetune_classifier, load_classification_task
from birdie_hf.evaluation.leakage import split_overlap, split_overlap_warning
from birdie_hf.hub import load_model_config, write_finetuned_card
from birdie_hf.run_folder import FINETUNING, OutputDirLock, claim_output_dir


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--model_name_or_path", required=True, help="pre-trained causal-LM checkpoint (folder or Hub id)"
    )
    parser.add_argument("--task", required=True, help="folder of train/dev/test CSVs, or an NT task name")
    parser.add_argument("--output_dir", required=True, help="folder of the fine-tuned model, its card and results")
    parser.add_argument(
        "--overwrite_output_dir",
        action="store_true",
        help="replace an earlier fine-tuning run in --output_dir (a folder of another job is always refused)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--num_train_epochs", type=float, default=10)
    parser.add_argument("--learning_rate", type=float, default=3e-4)
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--early_stopping_patience", type=int, default=3)
    parser.add_argument("--max_length", type=int, default=None, help="truncate longer sequences (tokens)")
    parser.add_argument("--lora_r", type=int, default=0, help="LoRA rank; 0 = full fine-tuning")
    parser.add_argument("--lora_alpha", type=int, default=16)
    parser.add_argument("--lora_dropout", type=float, default=0.05)
    parser.add_argument(
        "--attention",
        default="auto",
        choices=["auto", "causal", "bidirectional"],
        help="how the classifier reads its input (auto: from the checkpoint's pre-training record)",
    )
    parser.add_argument(
        "--prefix_prompt",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="open bidirectional inputs with <|prefix_lm|> (default: on)",
    )
    parser.add_argument("--push_to_hub", action="store_true", help="push the fine-tuned model and its card")
    parser.add_argument(
        "--hub_model_id", default=None, help="Hub repository of the card and push (default: the name of --output_dir)"
    )
    parser.add_argument(TRACEBACK_FLAG, action="store_true", help=TRACEBACK_HELP)
    return parser.parse_args(argv)


def main(args):
    # Everything that can be checked without training is checked first.
    lora = LoraSettings(r=args.lora_r, alpha=args.lora_alpha, dropout=args.lora_dropout)
    load_model_config(args.model_name_or_path)  # a missing checkpoint fails here, not after loading the task
    if args.push_to_hub:
        from birdie_hf.hub import check_hub_access

        check_hub_access(args.hub_model_id or os.path.basename(os.path.abspath(args.output_dir)))
    with OutputDirLock(args.output_dir):  # one live run per folder, which must be free or this job's own
        claim_output_dir(args.output_dir, FINETUNING, args.overwrite_output_dir)
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
