"""Fine-tune several checkpoints on several tasks with several seeds; write one comparison table.

    # the offline suite built by recipes/make_genome_tasks.py, three pre-training policies, three seeds
    python recipes/evaluate_suite.py --checkpoints birdie=outputs/birdie static=outputs/static ntp=outputs/ntp \
        --suite_dir outputs/genome_tasks --seeds 0 1 2 --output_dir outputs/suite

    # every checkpoint read causally and bidirectionally (with and without the <|prefix_lm|> prompt)
    python recipes/evaluate_suite.py --checkpoints birdie=outputs/birdie ntp=outputs/ntp --suite_dir outputs/genome_tasks \
        --attention_modes causal bidirectional bidirectional_prompt

    # Nucleotide Transformer tasks from the Hub (downloads)
    python recipes/evaluate_suite.py --checkpoints birdie=my-org/birdie-dna --tasks promoter_all enhancers

Every checkpoint is fine-tuned in each of `--attention_modes`: `causal`, `bidirectional` (the whole input read as a
bidirectional prefix), `bidirectional_prompt` (the same, opened with `<|prefix_lm|>` as Birdie's prefix-LM examples
are) or `auto` (bidirectional for checkpoints pre-trained with prefix objectives, causal for NTP-only ones).
Results go to `<output_dir>/runs.jsonl` as they finish (a rerun skips runs finished with the same checkpoint weights,
task, seed, mode and fine-tuning settings, and no other run enters the results), then to `results.json` and
`results.md`: test MCC (the NT benchmark's primary metric), F1 and accuracy as mean ± standard deviation over seeds
per task, checkpoint and mode, plus the mean over tasks. `--update_cards` writes the test results into the model card
of each local pre-training output folder (one `model-index` entry per task; the rest of the card is kept).

Bad input (a missing checkpoint or task, a malformed `--checkpoints` entry, ...) ends in one `error:` line before any
fine-tuning; add `--traceback` (or set `BIRDIE_TRACEBACK=1`) for the full traceback.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
from pathlib import Path
from typing import Optional

from tqdm.auto import tqdm

from birdie_hf.cli import TRACEBACK_FLAG, TRACEBACK_HELP, RecipeError, parse_checkpoint_pairs, run_recipe
from birdie_hf.evaluation.finetune import NT_TASKS, LoraSettings, finetune_classifier, load_classification_task
from birdie_hf.evaluation.suite_results import METRICS, markdown, summarise
from birdie_hf.hub_io import load_model_config


#: Fine-tuning modes: (attention, prefix_prompt) passed to `finetune_classifier`.
MODES = {
    "auto": ("auto", None),
    "causal": ("causal", False),
    "bidirectional": ("bidirectional", False),
    "bidirectional_prompt": ("bidirectional", True),
}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoints", nargs="+", required=True, help="name=path_or_hub_id pairs")
    parser.add_argument("--tasks", nargs="*", default=[], help="task folders or NT task names")
    parser.add_argument("--suite_dir", default=None, help="a folder whose sub-folders are tasks")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--output_dir", default="outputs/suite")
    parser.add_argument("--num_train_epochs", type=float, default=10)
    parser.add_argument("--learning_rate", type=float, default=3e-4)
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--lora_r", type=int, default=0)
    parser.add_argument(
        "--attention_modes",
        nargs="+",
        default=["causal", "bidirectional_prompt"],
        choices=list(MODES),
        help="how the classifiers read their input (each is a separate row)",
    )
    parser.add_argument("--max_train_examples", type=int, default=None, help="cap the train split (seeded)")
    parser.add_argument(
        "--max_eval_examples",
        type=int,
        default=None,
        help="cap the dev split used for early stopping (seeded); the test split is never capped",
    )
    parser.add_argument("--update_cards", action="store_true", help="write results into local checkpoints' cards")
    parser.add_argument(TRACEBACK_FLAG, action="store_true", help=TRACEBACK_HELP)
    return parser.parse_args(argv)


def resolve_tasks(args) -> list[str]:
    tasks = list(args.tasks)
    if args.suite_dir:
        if not os.path.isdir(args.suite_dir):
            raise RecipeError(f"--suite_dir: not a folder: {args.suite_dir!r}")
        found = sorted(str(p) for p in Path(args.suite_dir).iterdir() if (p / "train.csv").exists())
        if not found:
            raise RecipeError(
                f"--suite_dir: {args.suite_dir!r} holds no task folder (a sub-folder with train.csv); "
                "build one with recipes/make_genome_tasks.py."
            )
        tasks += found
    if not tasks:
        raise RecipeError("no task: give --tasks and/or --suite_dir")
    for task in tasks:
        if not os.path.isdir(task) and task not in NT_TASKS:
            raise RecipeError(
                f"--tasks: {task!r} is neither a folder of train/dev/test CSVs nor a Nucleotide "
                f"Transformer task ({', '.join(NT_TASKS)})."
            )
    return tasks


def read_runs(path: str) -> list[dict]:
    """The finished runs recorded in `runs.jsonl` (a line cut short by a kill is skipped, with a note)."""
    if not os.path.exists(path):
        return []
    runs = []
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            try:
                runs.append(json.loads(line))
            except ValueError:
                print(f"{path}, line {number}: not a complete record (an interrupted write?); that run is redone.")
    return runs


def weights_fingerprint(checkpoint: str) -> Optional[str]:
    """sha256 over a local checkpoint's weight files (`*.safetensors`, `*.bin`), so a retrained model under the same
    name and path is told apart; None for a Hub id (its name is its identity here)."""
    if not os.path.isdir(checkpoint):
        return None
    digest = hashlib.sha256()
    for path in sorted(Path(checkpoint).glob("*")):
        if path.suffix in (".safetensors", ".bin") and path.is_file():
            digest.update(path.name.encode())
            with open(path, "rb") as handle:
                for block in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(block)
    return digest.hexdigest()


def run_settings(args, name: str, checkpoint: str, weights: Optional[str], task: str, seed: int, mode: str) -> dict:
    """Everything that changes a fine-tuning run's result: the checkpoint (path and weights), the task, the seed,
    the attention mode and the fine-tuning settings, with the name the results are reported under. A run in
    `runs.jsonl` is reused only when all of them match."""
    return {
        "name": name,
        "checkpoint": os.path.abspath(checkpoint) if os.path.exists(checkpoint) else checkpoint,
        "weights_sha256": weights,
        "task": os.path.abspath(task) if os.path.exists(task) else task,
        "seed": seed,
        "mode": mode,
        "lora_r": args.lora_r,
        "num_train_epochs": args.num_train_epochs,
        "learning_rate": args.learning_rate,
        "batch_size": args.batch_size,
        "max_train_examples": args.max_train_examples,
        "max_eval_examples": args.max_eval_examples,
    }


def settings_key(settings: Optional[dict]) -> Optional[str]:
    return None if settings is None else json.dumps(settings, sort_keys=True)


def main(args):
    checkpoints = parse_checkpoint_pairs(args.checkpoints)
    for path in checkpoints.values():
        load_model_config(path)  # a missing checkpoint fails here, not after hours of other runs
    tasks = resolve_tasks(args)
    lora = LoraSettings(r=args.lora_r)
    os.makedirs(args.output_dir, exist_ok=True)
    log_path = os.path.join(args.output_dir, "runs.jsonl")
    runs = read_runs(log_path)
    weights = {name: weights_fingerprint(path) for name, path in checkpoints.items()}
    # Seeds outermost: an interrupted sweep still compares every checkpoint and mode on the seeds it finished.
    wanted = [
        (n, c, t, s, m, run_settings(args, n, c, weights[n], t, s, m))
        for s in args.seeds
        for t in tasks
        for n, c in checkpoints.items()
        for m in args.attention_modes
    ]
    done = {settings_key(r.get("settings")) for r in runs}
    jobs = [job for job in wanted if settings_key(job[-1]) not in done]
    older = [r for r in runs if r.get("settings") is None]
    if older:
        print(
            f"{len(older)} runs in {log_path} were recorded by an older birdie_hf, without the settings that made "
            "them: they are not reused (and not in the results)."
        )
    named = {(r["name"], r["task"], r["seed"], r.get("mode", "auto")) for r in runs if r.get("settings") is not None}
    stale = named & {job[:1] + job[2:5] for job in jobs}
    if stale:
        print(
            f"{len(stale)} runs in {log_path} have this sweep's names, tasks, seeds and modes but another checkpoint "
            "or other fine-tuning settings: they are not reused (and not in the results)."
        )
    for name, checkpoint, task, seed, mode, settings in tqdm(jobs, desc="fine-tuning runs"):
        data = load_classification_task(task, seed=seed)
        if args.max_train_examples and len(data["train"]) > args.max_train_examples:
            data["train"] = data["train"].shuffle(seed=seed).select(range(args.max_train_examples))
        if args.max_eval_examples and len(data["validation"]) > args.max_eval_examples:
            data["validation"] = data["validation"].shuffle(seed=seed).select(range(args.max_eval_examples))
        task_name = os.path.basename(task.rstrip("/"))
        attention, prompt = MODES[mode]
        results = finetune_classifier(
            checkpoint,
            data,
            os.path.join(args.output_dir, "runs", f"{name}-{mode}-{task_name}-seed{seed}"),
            seed=seed,
            lora=lora,
            num_train_epochs=args.num_train_epochs,
            learning_rate=args.learning_rate,
            batch_size=args.batch_size,
            save_model=False,
            disable_tqdm=True,
            attention=attention,
            prefix_prompt=prompt,
        )
        run = {
            "name": name,
            "checkpoint": checkpoint,
            "task": task,
            "task_name": task_name,
            "seed": seed,
            "mode": mode,
            "settings": settings,
            **results,
        }
        runs.append(run)
        separator = ""
        if os.path.exists(log_path) and os.path.getsize(log_path):
            with open(log_path, "rb") as handle:  # a line cut short by a kill has no newline
                handle.seek(-1, os.SEEK_END)
                separator = "" if handle.read(1) == b"\n" else "\n"
        with open(log_path, "a", encoding="utf-8") as handle:
            handle.write(separator + json.dumps(run) + "\n")
    current = {settings_key(job[-1]) for job in wanted}
    summary = summarise(
        [r for r in runs if settings_key(r.get("settings")) in current], by_mode=len(args.attention_modes) > 1
    )
    with open(os.path.join(args.output_dir, "results.json"), "w", encoding="utf-8") as handle:
        json.dump(
            {"checkpoints": checkpoints, "tasks": tasks, "seeds": args.seeds, "summary": summary}, handle, indent=2
        )
    table = markdown(summary)
    with open(os.path.join(args.output_dir, "results.md"), "w", encoding="utf-8") as handle:
        handle.write(table + "\n")
    print(table)
    if args.update_cards:
        update_cards(checkpoints, summary, protocol=fine_tuning_protocol(args), baselines=kmer_baselines(tasks))


def fine_tuning_protocol(args) -> str:
    """One paragraph saying how the fine-tuning results were obtained, for the model card."""
    seeds = len(args.seeds)
    train = (
        f"at most {args.max_train_examples:,} training examples per task"
        if args.max_train_examples
        else "the full train split"
    )
    return (
        f"Fine-tuned with `recipes/evaluate_suite.py` on each task's test split: {'LoRA r=' + str(args.lora_r) if args.lora_r else 'full fine-tuning'}, "
        f"up to {args.num_train_epochs:g} epochs with early stopping on dev, learning rate {args.learning_rate:g}, batch "
        f"{args.batch_size}, {train}, mean over {seeds} fine-tuning seed{'s' if seeds > 1 else ''} of one pre-trained "
        "checkpoint (pre-training seed variation is not included). The 6-mer logistic regression is a classical "
        "baseline on the same splits; a model that does not beat it has learned less than k-mer counts."
    )


def kmer_baselines(tasks: list[str]) -> dict[str, float]:
    """Test MCC of 6-mer logistic regression (C chosen on dev) per task name, on the splits the fine-tuning used."""
    from birdie_hf.evaluation.kmer import kmer_logistic_regression

    scores = {}
    for task in tasks:
        data = load_classification_task(task, seed=0)
        splits = [(list(data[s]["sequence"]), list(data[s]["label"])) for s in ("train", "validation", "test")]
        scores[os.path.basename(task.rstrip("/"))] = kmer_logistic_regression(*splits, k=6)["test"]["mcc"]
    return scores


def update_cards(
    checkpoints: dict[str, str], summary: dict, protocol: str, baselines: Optional[dict[str, float]] = None
) -> None:
    """Write the mean test metrics per task, with the protocol that produced them and the 6-mer baseline beside
    them, into the card of each local pre-training output folder (see `birdie_hf.hub.update_pretrained_card`: one
    `model-index` entry per task, training facts and widget kept)."""
    from transformers import AutoConfig

    from birdie_hf.evaluation.finetune import DEFAULT_PREFIX_PROMPT, resolve_attention
    from birdie_hf.hub import update_pretrained_card

    for name, path in checkpoints.items():
        if not os.path.exists(os.path.join(path, "mixture_trajectory.json")):
            print(f"--update_cards: skipped {name} ({path!r} is not a local recipes/pretrain.py output folder)")
            continue
        rows = [key for key in summary if key == name or key.startswith(f"{name} (")]
        if not rows:
            continue
        # One row per checkpoint on its card: the mode `auto` picks for it when it was evaluated, else the first.
        mode = resolve_attention(AutoConfig.from_pretrained(path))
        preferred = (
            f"{name} ({'bidirectional_prompt' if DEFAULT_PREFIX_PROMPT else 'bidirectional'})"
            if mode == "bidirectional"
            else f"{name} (causal)"
        )
        row = preferred if preferred in rows else rows[0]
        evaluation = [
            {
                "task": task,
                **{m: v[m]["mean"] for m in METRICS},
                **({"baseline_mcc": baselines[task]} if baselines and task in baselines else {}),
            }
            for task, v in summary[row].items()
            if task != "mean_over_tasks"
        ]
        card = update_pretrained_card(path, evaluation, f"{protocol} Reading mode: {row}.")
        print(f"--update_cards: wrote the {row} results to {card}")


if __name__ == "__main__":
    run_recipe(lambda argv: main(parse_args(argv)))
