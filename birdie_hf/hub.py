"""Model cards for the Hub (pre-trained and fine-tuned checkpoints) and the Hub access helpers they need."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Optional

from .health import health_sentence, health_summary
from .hub_io import (
    NT_REVISED_REPO,
    NT_TASKS,
)
from .inference import infilling_prompt
from .runs.folder import read_json
from .tokenizer import build_dna_tokenizer
from .trajectory import mixture_table


# -- model cards ------------------------------------------------------------------------------------------------------
CARD_TAGS = ["genomics", "dna", "birdie", "birdie_hf", "biology"]
#: Training facts shown in the Training table of a pre-trained card (placeholders of `templates/pretrained.md`).
TRAINING_FACTS = ("steps", "tokens_seen", "window_length", "max_length", "model_size", "training_data")
_LIMITATIONS = (
    "Trained on a small amount of DNA; it is a demonstration of the training method, not a general genomic "
    "foundation model. Scores on the offline suite (tasks derived from one annotated bacterial assembly) are not "
    "comparable to Nucleotide Transformer benchmark numbers."
)


#: Folder of the model-card templates inside the birdie_hf package (shipped as package data).
TEMPLATES_FOLDER = "templates"


def template_text(name: str) -> str:
    """Text of a model-card template shipped with birdie_hf (`pretrained.md` or `finetuned.md`).

    The templates are package data (`birdie_hf/templates/`), read with `importlib.resources`, so they are found in a
    checkout, an editable install and a regular, `--user` or virtualenv install alike.

    Raises:
        `FileNotFoundError`: no template of that name (or an install that left out the package data).
    """
    from importlib import resources

    resource = resources.files("birdie_hf").joinpath(TEMPLATES_FOLDER).joinpath(name)
    if not resource.is_file():
        raise FileNotFoundError(
            f"Model card template {name!r} not found in the package folder birdie_hf/templates/; reinstall birdie_hf "
            "(the templates are package data)."
        )
    return resource.read_text(encoding="utf-8")


def _as_int(value) -> Optional[int]:
    """`300`, `"300"` or `"614,400"` as an int; `None` for anything else (`"n/a"`)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    text = str(value).replace(",", "").strip()
    return int(text) if text.isdigit() else None


def task_dataset(task: str) -> dict[str, Optional[str]]:
    """How a downstream task is named in a card's `model-index`: `dataset_type` (the dataset id the Hub groups
    results by), `dataset_name` and `dataset_config`.

    A Nucleotide Transformer task is a configuration of the revised NT benchmark on the Hub; any other task (a folder
    of CSVs such as `gene_strand`) is a dataset of its own, typed and named after the task, so that every task gets
    its own entry and leaderboard.
    """
    if task in NT_TASKS:
        return {
            "dataset_type": NT_REVISED_REPO,
            "dataset_name": f"Nucleotide Transformer {task}",
            "dataset_config": task,
        }
    return {"dataset_type": task, "dataset_name": task, "dataset_config": None}


def _eval_results(results: list[dict], split: str = "test"):
    from huggingface_hub import EvalResult

    out = []
    for result in results:
        dataset = task_dataset(result["task"])
        if result.get("dataset"):
            dataset["dataset_type"] = result["dataset"]
        for metric, hub_type in (("mcc", "matthews_correlation"), ("f1", "f1"), ("accuracy", "accuracy")):
            if metric in result:
                out.append(
                    EvalResult(
                        task_type="text-classification",
                        dataset_split=split,
                        metric_type=hub_type,
                        metric_name=metric.upper() if metric == "mcc" else metric,
                        metric_value=float(result[metric]),
                        **dataset,
                    )
                )
    return out


def _infilling_widget(trajectory: dict, widget_sequences: Sequence[str]) -> list[dict[str, str]]:
    """A text-generation widget example in the infilling prompt format (a gap of up to 8 bases in the middle of the
    first widget sequence), for checkpoints trained with infilling; none otherwise."""
    classes = trajectory.get("reward_classes") or trajectory.get("entries") or []
    sequence = widget_sequences[0] if widget_sequences else ""
    if "infilling" not in classes or len(sequence) < 16:
        return []
    span = min(8, len(sequence) // 4)
    start = (len(sequence) - span) // 2
    gapped = sequence[:start] + "_" * span + sequence[start + span :]
    return [{"text": infilling_prompt(gapped, build_dna_tokenizer()), "example_title": "infilling"}]


def training_facts(
    model,
    *,
    steps: int,
    max_length: int,
    window_length: Optional[int] = None,
    tokens_seen: Optional[int] = None,
    training_data: Optional[str] = None,
) -> dict[str, str]:
    """The [`TRAINING_FACTS`] of a pre-trained card: steps, tokens seen, window and row length, the model's size and
    the training data (`"n/a"` for what is unknown)."""
    config = model.config
    return {
        "steps": steps,
        "tokens_seen": f"{tokens_seen:,}" if tokens_seen else "n/a",
        "window_length": window_length if window_length else "n/a",
        "max_length": max_length,
        "model_size": f"{type(model).__name__}, hidden {getattr(config, 'hidden_size', '?')}, "
        f"{getattr(config, 'num_hidden_layers', '?')} layers, "
        f"{sum(p.numel() for p in model.parameters()) / 1e6:.2f}M parameters",
        "training_data": training_data or "DNA windows (see training arguments)",
    }


def read_held_out_table(output_dir: str) -> Optional[str]:
    """The held-out next-base loss table ([`HELD_OUT_NAME`]) a pre-training run wrote into `output_dir`, if any."""
    path = os.path.join(output_dir, HELD_OUT_NAME)
    if not os.path.exists(path):
        return None
    with open(path, encoding="utf-8") as handle:
        return handle.read()


def pretrained_model_card(
    repo_id: str,
    trajectory: dict,
    training: dict,
    *,
    widget_sequences: list[str],
    evaluation: Optional[list[dict]] = None,
    evaluation_protocol: Optional[str] = None,
    held_out: Optional[str] = None,
    license: str = "apache-2.0",
    architecture: str = "LlamaForCausalLM",
):
    """Render the card of a pre-trained checkpoint.

    Args:
        repo_id (`str`): Hub repository id (also the model name).
        trajectory (`dict`): [`BirdieTrainer.mixture_trajectory`] output.
        training (`dict`): keys `steps`, `tokens_seen`, `window_length`, `max_length`, `model_size`, `training_data`.
        widget_sequences (`list[str]`): real DNA strings for the Hub widget.
        evaluation (`list[dict]`, *optional*): `{"task", "mcc", "f1", "accuracy"}` per downstream task (test split),
            optionally with `"baseline_mcc"` (a classical baseline on the same split, shown beside it); they become
            the card's `model-index`.
        evaluation_protocol (`str`, *optional*): how the `evaluation` numbers were obtained (read-out, epochs, sizes,
            seeds); required with `evaluation`, so a card never shows numbers without their protocol.
        held_out (`str`, *optional*): markdown table of the held-out next-base loss of this model beside Markov
            baselines ([`HELD_OUT_NAME`] in a `recipes/pretrain.py` output folder).
    """
    from huggingface_hub import ModelCard, ModelCardData

    if not widget_sequences:
        raise ValueError("widget_sequences must hold at least one DNA string for the Hub widget.")
    data = ModelCardData(
        license=license,
        library_name="transformers",
        pipeline_tag="text-generation",
        tags=CARD_TAGS + [f"birdie-policy-{trajectory.get('policy', 'birdie')}"],
        widget=[{"text": sequence} for sequence in widget_sequences] + _infilling_widget(trajectory, widget_sequences),
        model_name=repo_id.split("/")[-1],
        eval_results=_eval_results(evaluation or []) or None,
    )
    sections = []
    if held_out:
        sections.append(
            "### Held-out next-base loss\n\nNats per base on windows held out of pre-training, read left to right, "
            "beside order-k Markov chains fitted on the same training windows (lower is better):\n\n"
            + held_out.strip()
        )
    if evaluation:
        if not evaluation_protocol:
            raise ValueError(
                "evaluation results need `evaluation_protocol`: say how they were obtained (read-out, epochs, "
                "training examples, seeds) so the card does not present them without it."
            )
        with_baseline = any("baseline_mcc" in r for r in evaluation)
        lines = ["| task | MCC | F1 | accuracy |" + (" 6-mer LR MCC (same split) |" if with_baseline else "")]
        lines.append("|---|---|---|---|" + ("---|" if with_baseline else ""))
        lines += [
            f"| {r['task']} | {r['mcc']:.3f} | {r.get('f1', float('nan')):.3f} | "
            f"{r.get('accuracy', float('nan')):.3f} |"
            + (
                f" {r['baseline_mcc']:.3f} |"
                if with_baseline and "baseline_mcc" in r
                else (" n/a |" if with_baseline else "")
            )
            for r in evaluation
        ]
        sections.append(f"### Downstream tasks\n\n{evaluation_protocol.strip()}\n\n" + "\n".join(lines))
    if not evaluation:
        sections.append(
            "Downstream tasks: not evaluated yet. `recipes/evaluate.py` probes the frozen model against a random-init "
            "control and k-mer baselines with intervals; `recipes/evaluate_suite.py --update_cards` writes fine-tuning "
            "results here."
        )
    evaluation_section = "\n\n".join(sections)
    health = trajectory.get("health") or health_summary(trajectory.get("evaluations", []))
    return ModelCard.from_template(
        data,
        template_str=template_text("pretrained.md"),
        repo_id=repo_id,
        architecture=architecture,
        model_name=repo_id.split("/")[-1],
        policy=trajectory.get("policy", "birdie"),
        num_evaluations=len(trajectory.get("evaluations", [])),
        mixture_table=mixture_table(trajectory, _as_int(training.get("steps"))),
        example_sequence=widget_sequences[0],
        evaluation_section=evaluation_section,
        training_health=health_sentence(health),
        health_warning=_HEALTH_WARNINGS.get(health["status"], ""),
        limitations=_LIMITATIONS,
        **{key: training.get(key, "n/a") for key in TRAINING_FACTS},
    )


#: The warning a card opens with when its run ended at the composition (see `birdie_hf.health.health_summary`).
_HEALTH_WARNINGS = {
    "collapsed": (
        "> [!WARNING]\n> This run **did not learn beyond the base composition**: its held-out next-base loss is not "
        "below the entropy of the bases' composition and every position carries the same vector, so it predicts the "
        "same distribution whatever the input. Do not use it as a pre-trained model; see the Training table.\n"
    ),
    "at_composition": (
        "> [!WARNING]\n> This run **did not learn next-base prediction beyond the base composition**: its held-out "
        "next-base loss is not below the entropy of the bases' composition. It reads its input, so it may have "
        "learned its other objectives; check them before using it. See the Training table.\n"
    ),
}


def read_card_values(card_text: str, keys: Sequence[str], template: str = "pretrained.md") -> dict[str, str]:
    """Read back values a card rendered from one of our templates: each template line whose placeholders are all in
    `keys` (e.g. `| steps | {{ steps }} |`) is matched against the card's lines. Values shown as `n/a` are left
    out, so a re-rendered card keeps what it knew.

    Returns:
        `dict[str, str]`: the values found, as rendered (e.g. `{"steps": "300", "tokens_seen": "614,400"}`).
    """
    import re

    placeholder = re.compile(r"\{\{ (\w+) \}\}")
    lines = card_text.splitlines()
    values: dict[str, str] = {}
    for template_line in template_text(template).splitlines():
        names = placeholder.findall(template_line)
        if not names or not set(names) <= set(keys):
            continue
        pieces = placeholder.split(template_line)  # literal, name, literal, name, ..., literal
        pattern = "".join(re.escape(piece) if i % 2 == 0 else f"(?P<{piece}>.+?)" for i, piece in enumerate(pieces))
        for line in lines:
            match = re.fullmatch(pattern, line)
            if match:
                values.update({k: v for k, v in match.groupdict().items() if v.strip() != "n/a"})
                break
    return values


#: File a `recipes/pretrain.py` output folder keeps the held-out next-base table in, for its card.
HELD_OUT_NAME = "held_out_next_base.md"


def update_pretrained_card(checkpoint_dir: str, evaluation: list[dict], evaluation_protocol: str) -> str:
    """Re-render the card (`README.md`) of a local pre-trained checkpoint with downstream `evaluation` results.

    Everything else the card said is kept: the repository id, architecture and training facts of its Training table
    (completed by `train_results.json` where the card shows `n/a`), and its widget examples. The mixture table is
    rebuilt from `mixture_trajectory.json`.

    Args:
        checkpoint_dir (`str`): a `recipes/pretrain.py` output folder.
        evaluation (`list[dict]`): `{"task", "mcc", "f1", "accuracy"}` per downstream task (test split), optionally
            `"baseline_mcc"`.
        evaluation_protocol (`str`): how the results were obtained (see [`pretrained_model_card`]).

    Returns:
        `str`: the path of the card written.

    Raises:
        `FileNotFoundError`: `checkpoint_dir` has no `mixture_trajectory.json`.
    """

    from huggingface_hub import ModelCard

    trajectory_path = os.path.join(checkpoint_dir, "mixture_trajectory.json")
    if not os.path.exists(trajectory_path):
        raise FileNotFoundError(
            f"{checkpoint_dir!r} has no mixture_trajectory.json: it is not a recipes/pretrain.py "
            "output folder, so it has no pre-training card to update."
        )
    trajectory = read_json(trajectory_path)
    readme = os.path.join(checkpoint_dir, "README.md")
    card_text = open(readme, encoding="utf-8").read() if os.path.exists(readme) else ""
    values = read_card_values(card_text, (*TRAINING_FACTS, "repo_id", "architecture"))
    training = {key: values[key] for key in TRAINING_FACTS if key in values}
    results_path = os.path.join(checkpoint_dir, "train_results.json")
    if os.path.exists(results_path):
        results = read_json(results_path)
        if "steps" not in training and "global_step" in results:
            training["steps"] = results["global_step"]
        if "tokens_seen" not in training and results.get("tokens_seen"):
            training["tokens_seen"] = f"{int(results['tokens_seen']):,}"
    widget = []
    if card_text:
        widget = [  # the DNA examples; the infilling example is rebuilt from them
            w["text"]
            for w in (ModelCard(card_text).data.widget or [])
            if isinstance(w, dict) and "text" in w and w.get("example_title") != "infilling"
        ]
    card = pretrained_model_card(
        values.get("repo_id", os.path.basename(os.path.abspath(checkpoint_dir))),
        trajectory,
        training,
        widget_sequences=widget or ["ACGTACGTACGTACGTACGTACGTACGTACGT"],
        evaluation=evaluation,
        evaluation_protocol=evaluation_protocol,
        held_out=_read_text(os.path.join(checkpoint_dir, HELD_OUT_NAME)),
        **({"architecture": values["architecture"]} if "architecture" in values else {}),
    )
    card.save(readme)
    return readme


def _read_text(path: str) -> Optional[str]:
    return open(path, encoding="utf-8").read() if os.path.exists(path) else None


#: How each attention mode of a fine-tuned classifier reads its input, for its card.
_ATTENTION_NOTES = {
    "causal": "The classifier reads its input causally (each position sees only its left), as the base model was "
    "pre-trained.",
    "bidirectional": "The classifier reads its input bidirectionally (`config.is_causal = False`: every position "
    "sees the whole input), as Birdie pre-trains a model to read a prefix; transformers >= 5.2 "
    "honours this setting.",
}


def finetuned_model_card(
    repo_id: str,
    record: dict,
    *,
    widget_sequences: list[str],
    license: str = "apache-2.0",
    architecture: str = "LlamaForSequenceClassification",
):
    """Render the card of a fine-tuned classifier from a `recipes/finetune.py` results record.

    Args:
        repo_id (`str`): Hub repository id (also the model name).
        record (`dict`): `task`, `checkpoint` (the base model), `test` (and optionally `validation`) metrics, and the
            optional `seed`, `lora_r`, `attention` (`"causal"` or `"bidirectional"`) and `prefix_prompt`.
        widget_sequences (`list[str]`): real DNA strings for the Hub widget.
    """
    from huggingface_hub import ModelCard, ModelCardData

    task = os.path.basename(str(record["task"]).rstrip("/"))
    test = record["test"]
    checkpoint = str(record["checkpoint"])
    data = ModelCardData(
        license=license,
        library_name="transformers",
        pipeline_tag="text-classification",
        tags=CARD_TAGS,
        base_model=checkpoint if "/" in checkpoint and not os.path.exists(checkpoint) else None,
        widget=[{"text": sequence} for sequence in widget_sequences],
        model_name=repo_id.split("/")[-1],
        eval_results=_eval_results([{"task": task, **test}]),
    )
    rows = "\n".join(f"| {name} | {test[name]:.4f} |" for name in ("mcc", "f1", "accuracy") if name in test)
    attention = record.get("attention")
    prompt = bool(record.get("prefix_prompt")) and attention == "bidirectional"
    if attention in _ATTENTION_NOTES:
        attention_note = _ATTENTION_NOTES[attention]
        if prompt:
            attention_note += (
                " Every input opens with `<|prefix_lm|>`, as Birdie's prefix-LM examples do; the "
                "tokenizer adds it, so the pipeline above needs no change."
            )
        attention_label = f"{attention}{', inputs open with `<|prefix_lm|>`' if prompt else ''}"
    else:
        attention_note, attention_label = "", "not recorded"
    validation = record.get("validation") or {}
    validation_note = f" (dev MCC {validation['mcc']:.4f})" if "mcc" in validation else ""
    return ModelCard.from_template(
        data,
        template_str=template_text("finetuned.md"),
        repo_id=repo_id,
        base_model=checkpoint,
        model_name=repo_id.split("/")[-1],
        task=task,
        method=f"LoRA r={record['lora_r']}" if record.get("lora_r") else "full fine-tuning",
        seed=record.get("seed", 0),
        metrics_rows=rows,
        example_sequence=widget_sequences[0],
        architecture=architecture,
        attention=attention_label,
        attention_note=attention_note,
        validation_note=validation_note,
    )


def write_finetuned_card(
    output_dir: str, record: dict, repo_id: Optional[str] = None, widget_sequences: Optional[Sequence[str]] = None
) -> str:
    """Write the card of a fine-tuned classifier to `output_dir/README.md` (see [`finetuned_model_card`]).

    Args:
        repo_id (`str`, *optional*): defaults to the name of `output_dir`.
        widget_sequences (`Sequence[str]`, *optional*): defaults to `record["widget_sequences"]`, else a toy string.

    Returns:
        `str`: the path of the card.
    """
    repo_id = repo_id or os.path.basename(os.path.abspath(output_dir))
    widget = list(widget_sequences or record.get("widget_sequences") or []) or ["ACGTACGTACGTACGTACGT"]
    path = os.path.join(output_dir, "README.md")
    finetuned_model_card(repo_id, record, widget_sequences=widget).save(path)
    return path


def push_finetuned(
    output_dir: str,
    record: dict,
    repo_id: Optional[str] = None,
    token: Optional[str] = None,
    widget_sequences: Optional[Sequence[str]] = None,
) -> str:
    """Write the card of a fine-tuned model into `output_dir` (see [`write_finetuned_card`]) and upload the folder.
    The local folder is never modified beyond its README.md, so a failed upload loses nothing."""
    from huggingface_hub import HfApi

    repo_id = repo_id or os.path.basename(os.path.abspath(output_dir))
    write_finetuned_card(output_dir, record, repo_id=repo_id, widget_sequences=widget_sequences)
    api = HfApi(token=token)
    api.create_repo(repo_id, exist_ok=True)
    local = ["checkpoint-*", "*.tmp-*", "_*"]  # checkpoints, partial writes, the folder lock and job record
    api.upload_folder(repo_id=repo_id, folder_path=output_dir, ignore_patterns=local)
    return repo_id
