"""Birdie pre-training of a DNA language model.

Runs with no arguments: the small bacterial genome shipped with birdie_hf, a tiny Llama, a few minutes on a laptop CPU.

    # default run (CPU friendly)
    accelerate launch recipes/pretrain.py

    # the baselines, same data and token budget
    accelerate launch recipes/pretrain.py --policy static --output_dir outputs/static
    accelerate launch recipes/pretrain.py --policy ntp --output_dir outputs/ntp

    # your own genomes, a bigger model, a YAML config (any flag below can go in it)
    accelerate launch recipes/pretrain.py --genomes a.fna.gz b.fa --hidden_size 512 --num_hidden_layers 8 \
        --window_length 1024 --max_length 2048 --max_steps 32768 --bf16
    accelerate launch recipes/pretrain.py --config my_run.yaml

    # two processes on CPU (gloo)
    accelerate launch --multi_gpu --num_processes 2 --num_machines 1 --mixed_precision no --dynamo_backend no \
        recipes/pretrain.py

    # continual pre-training from an existing causal-LM checkpoint
    accelerate launch recipes/pretrain.py --model_name_or_path outputs/birdie-dna-tiny --learning_rate 3e-4

Bad input (a missing genome, an unknown objective, an out-of-range setting, a malformed YAML config) ends in one
`error:` line before any training; add `--traceback` (or set `BIRDIE_TRACEBACK=1`) for the full traceback.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from dataclasses import dataclass, field
from typing import Optional

import torch
from transformers import HfArgumentParser

from birdie_hf import (
    BirdieTrainer,
    BirdieTrainingArguments,
    add_birdie_tokens,
    build_causal_lm,
    build_dna_tokenizer,
    default_model_config,
    load_genome_windows,
)
from birdie_hf.cli import TRACEBACK_HELP, RecipeError, parse_args_with_config, run_recipe
from birdie_hf.data import is_fasta_path, load_sequence_dataset, windows_from_sequences
from birdie_hf.hub import check_model_path, final_mixture, load_model_config


logger = logging.getLogger("birdie_hf.pretrain")


@dataclass
class ScriptArguments:
    """Data and model arguments of the pre-training recipe."""

    genomes: Optional[list[str]] = field(
        default=None, metadata={"help": "FASTA / FASTA.gz files. Default: the genome shipped with birdie_hf."}
    )
    dataset_name: Optional[str] = field(
        default=None, metadata={"help": "Hub dataset id or CSV file/folder with a `sequence` column, instead of FASTA."}
    )
    dataset_config: Optional[str] = field(default=None, metadata={"help": "Hub dataset configuration name."})
    window_length: int = field(default=256, metadata={"help": "Bases per training window."})
    stride: Optional[int] = field(default=None, metadata={"help": "Step between windows (default: window_length)."})
    validation_fraction: float = field(default=0.05, metadata={"help": "Share of bases held out."})
    split_by: str = field(default="position", metadata={"help": "position or record."})
    reverse_complement: bool = field(default=False, metadata={"help": "Add reverse-complement training windows."})
    model_name_or_path: Optional[str] = field(
        default=None, metadata={"help": "Start from this causal-LM checkpoint (continual pre-training)."}
    )
    hidden_size: int = field(default=128, metadata={"help": "Model width (new models)."})
    num_hidden_layers: int = field(default=4, metadata={"help": "Decoder layers (new models)."})
    num_attention_heads: int = field(default=4, metadata={"help": "Attention heads (new models)."})
    attn_implementation: str = field(default="sdpa", metadata={"help": "sdpa or eager."})
    cpu_threads: Optional[int] = field(
        default=None,
        metadata={"help": "Torch threads per process when training on CPU. Default: the machine's cores divided by "
                          "the number of processes (`accelerate launch` would otherwise pin a single process to 1)."},
    )
    traceback: bool = field(default=False, metadata={"help": TRACEBACK_HELP})

    def __post_init__(self):
        if isinstance(self.genomes, str):  # `genomes: a.fa` in YAML, or a single path from Python
            self.genomes = [self.genomes]


#: Training defaults of the recipe (a short CPU run); every one can be overridden on the command line or in YAML.
RECIPE_DEFAULTS = {
    "output_dir": "outputs/birdie-dna-tiny",
    "max_steps": 300,
    "per_device_train_batch_size": 8,
    "per_device_eval_batch_size": 16,
    "max_length": 512,
    "learning_rate": 1e-3,
    "weight_decay": 0.1,
    "warmup_steps": 15,
    "lr_scheduler_type": "cosine",
    "logging_steps": 10,
    "save_steps": 100,
    "save_total_limit": 2,
    "seed": 42,
    # The shipped genome holds out ~62 windows; a held-out set of all of them per entry keeps each of the ~12
    # evaluations to seconds (the library defaults, sized for long runs, would cost more than the training here).
    "policy_validation_tokens": 4096,
    "policy_validation_min_windows": 64,
    "policy_validation_max_windows": 64,
}


def parse_args(argv: Optional[list[str]] = None) -> tuple[ScriptArguments, BirdieTrainingArguments]:
    """Command line, then `--config x.yaml` (any argument as a key), then [`RECIPE_DEFAULTS`]."""
    parser = HfArgumentParser((ScriptArguments, BirdieTrainingArguments))
    argv = list(sys.argv[1:] if argv is None else argv)
    return parse_args_with_config(parser, argv, defaults=RECIPE_DEFAULTS)


def check_script_args(script_args: ScriptArguments) -> None:
    """Check the data and model arguments before anything is built or trained.

    Raises:
        [`RecipeError`]: a genome file is missing, or `--dataset_name` is given a FASTA file.
        `FileNotFoundError`: `--model_name_or_path` is neither a local folder nor a valid Hub id.
    """
    if script_args.dataset_name is None:
        for path in script_args.genomes or []:
            if not os.path.exists(path):
                raise RecipeError(f"--genomes: file not found: {path!r}")
    elif is_fasta_path(script_args.dataset_name):
        raise RecipeError(f"--dataset_name takes a Hub id or CSV, got the FASTA file {script_args.dataset_name!r}; "
                          "pass FASTA files with --genomes.")
    if script_args.model_name_or_path:
        check_model_path(script_args.model_name_or_path)


def build_datasets(script_args: ScriptArguments, tokenizer, seed: int):
    if script_args.dataset_name is None:
        return load_genome_windows(
            script_args.genomes, tokenizer, window_length=script_args.window_length, stride=script_args.stride,
            validation_fraction=script_args.validation_fraction, split_by=script_args.split_by,
            reverse_complement=script_args.reverse_complement, seed=seed,
        )
    source = script_args.dataset_name
    kwargs = {"name": script_args.dataset_config} if script_args.dataset_config else {}
    dataset = load_sequence_dataset(source, **kwargs)
    splits = {}
    for split, part in dataset.items():
        rows = ((f"{split}:{i}", seq) for i, seq in enumerate(part["sequence"]))
        splits["train" if split == "train" else "validation"] = windows_from_sequences(
            rows, tokenizer, window_length=script_args.window_length, stride=script_args.stride, source=source)
    if "validation" not in splits:
        split = splits["train"].train_test_split(test_size=script_args.validation_fraction, seed=seed)
        splits = {"train": split["train"], "validation": split["test"]}
    return splits


def build_model(script_args: ScriptArguments, training_args: BirdieTrainingArguments, tokenizer):
    if script_args.model_name_or_path:
        from transformers import AutoModelForCausalLM, AutoTokenizer
        from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

        path = script_args.model_name_or_path
        config = load_model_config(path)
        architectures = getattr(config, "architectures", None) or []
        causal = (any(a.endswith(("ForCausalLM", "LMHeadModel")) for a in architectures) if architectures
                  else config.model_type in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES)
        if not causal:
            raise RecipeError(f"--model_name_or_path {path!r} holds a {config.model_type!r} model saved as "
                              f"{architectures or 'an unknown architecture'}, not a causal LM; Birdie continual "
                              "pre-training needs a decoder checkpoint such as LlamaForCausalLM.")
        tokenizer = AutoTokenizer.from_pretrained(path)
        if any(len(tokenizer(base, add_special_tokens=False)["input_ids"]) != 1 for base in "ACGT"):
            raise RecipeError(f"--model_name_or_path: the tokenizer of {path!r} is not character level (A, C, G, T "
                              "must be single tokens); birdie_hf objectives work on single bases.")
        added = add_birdie_tokens(tokenizer)
        model = AutoModelForCausalLM.from_pretrained(
            script_args.model_name_or_path, attn_implementation=script_args.attn_implementation)
        if added:
            model.resize_token_embeddings(len(tokenizer))
            logger.info("Added %d Birdie tokens to the tokenizer and resized the embeddings.", added)
        return model, tokenizer
    config = default_model_config(
        tokenizer, hidden_size=script_args.hidden_size, num_hidden_layers=script_args.num_hidden_layers,
        num_attention_heads=script_args.num_attention_heads,
        max_position_embeddings=max(2048, training_args.max_length),
    )
    return build_causal_lm(config, script_args.attn_implementation, seed=training_args.seed), tokenizer


def summary_table(trajectory: dict, objective_names: list[str], tokens_seen: int, final_step: int,
                  live_mixture: dict[str, float]) -> str:
    """Last validation loss and final weight per entry. The final weight is the mixture trained on at the end
    (`birdie_hf.hub.final_mixture`, as on the model card); `live_mixture` stands in when nothing was evaluated."""
    evaluations = trajectory["evaluations"]
    last = evaluations[-1] if evaluations else {"losses": {}}
    final = final_mixture(trajectory, final_step) or live_mixture
    lines = [f"tokens seen (source bases, all ranks): {tokens_seen:,}", "",
             f"| {'objective':<36} | {'final val loss':>14} | {'final weight':>12} |",
             f"|{'-' * 38}|{'-' * 16}|{'-' * 14}|"]
    for name in objective_names:
        loss = last["losses"].get(name, float("nan"))
        lines.append(f"| {name:<36} | {loss:>14.4f} | {final[name]:>12.4f} |")
    return "\n".join(lines)


def next_base_table(model, data, tokenizer, orders=(2, 3, 4, 5, 6)) -> str:
    """Held-out next-base loss of the model next to order-k Markov models fit on the same training windows."""
    from birdie_hf.baselines import markov_baseline_table, next_base_nll, windows_to_text

    if not hasattr(data["validation"], "__len__") or len(data["validation"]) == 0:
        return "(no held-out windows: next-base comparison skipped)"
    heldout = data["validation"]["input_ids"]
    rows = markov_baseline_table(windows_to_text(data["train"]["input_ids"], tokenizer),
                                 list(windows_to_text(heldout, tokenizer)), orders=orders)
    lines = [f"held-out next-base loss over {len(heldout)} windows (nats per base; lower is better):", "",
             f"| {'model':<36} | {'nats':>8} |", f"|{'-' * 38}|{'-' * 10}|",
             f"| {'this model (read left to right)':<36} | {next_base_nll(model, heldout, tokenizer):>8.4f} |"]
    for row in rows:
        name = "base composition (order 0)" if row["order"] == 0 else f"order-{row['order']} Markov"
        lines.append(f"| {name:<36} | {row['nll']:>8.4f} |")
    return "\n".join(lines)


def main(script_args: ScriptArguments, training_args: BirdieTrainingArguments):
    logging.basicConfig(level=logging.INFO if training_args.should_log else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    check_script_args(script_args)
    if training_args.push_to_hub:  # fail before any training, not after it
        from birdie_hf.hub import check_hub_access

        repo_id = training_args.hub_model_id or os.path.basename(training_args.output_dir.rstrip("/"))
        check_hub_access(repo_id, training_args.hub_token)
    if training_args.device.type == "cpu":
        torch.set_num_threads(script_args.cpu_threads or max(1, (os.cpu_count() or 1) // training_args.world_size))
    tokenizer = build_dna_tokenizer(model_max_length=training_args.max_length)
    model, tokenizer = build_model(script_args, training_args, tokenizer)
    data = build_datasets(script_args, tokenizer, training_args.seed)
    trainer = BirdieTrainer(
        model=model, args=training_args, train_dataset=data["train"], eval_dataset=data["validation"],
        processing_class=tokenizer,
    )
    resume = training_args.resume_from_checkpoint
    result = trainer.train(resume_from_checkpoint=True if resume == "last" else resume)
    trainer.save_model(training_args.output_dir)
    tokens = int(result.global_step * training_args.per_device_train_batch_size
                 * training_args.gradient_accumulation_steps * training_args.world_size * script_args.window_length)
    if trainer.is_world_process_zero():
        tokenizer.save_pretrained(training_args.output_dir)
        trainer.save_birdie_state(training_args.output_dir)
        table = summary_table(trainer.mixture_trajectory(), trainer.data_collator.objective_names, tokens,
                              result.global_step, trainer.data_collator.mixture.as_dict())
        table += "\n\n" + next_base_table(trainer.model, data, tokenizer)
        with open(os.path.join(training_args.output_dir, "summary.md"), "w", encoding="utf-8") as handle:
            handle.write(table + "\n")
        with open(os.path.join(training_args.output_dir, "train_results.json"), "w", encoding="utf-8") as handle:
            json.dump({**result.metrics, "global_step": result.global_step, "tokens_seen": tokens,
                       "model_tokens": trainer.state.num_input_tokens_seen, "policy": training_args.policy},
                      handle, indent=2)
        print("\n" + table)
        print(f"\nSaved model, tokenizer and mixture trajectory to {training_args.output_dir}")
        # The card comes before the plots: it is the run's record, the plots are a view of it.
        trainer.create_model_card(training_data=describe_data(script_args), tokens_seen=tokens)
        print(f"Wrote the model card to {os.path.join(training_args.output_dir, 'README.md')}")
        save_plots(trainer.mixture_trajectory(), os.path.join(training_args.output_dir, "plots"))
    if training_args.push_to_hub:
        try:
            trainer.push_to_hub(commit_message="Birdie pre-training", training_data=describe_data(script_args),
                                tokens_seen=tokens)
        except Exception as error:  # the local output is complete; say so rather than lose track of it
            raise SystemExit(f"error: push to the Hub failed ({type(error).__name__}: {error}). The trained model "
                             f"and card are saved in {training_args.output_dir}; push them later with "
                             "`hf upload`.") from None


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
