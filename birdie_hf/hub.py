"""Hugging Face Hub helpers: fail early, before hours of training, when a push cannot work."""

from __future__ import annotations

import os
from typing import Optional


class HubAccessError(RuntimeError):
    """Raised when `--push_to_hub` is asked for but no token or no network is available."""


def check_hub_access(repo_id: str, token: Optional[str] = None) -> str:
    """Check that a Hub token is available and valid before training starts.

    Args:
        repo_id (`str`): the repository that will be pushed to (only used in messages).
        token (`str`, *optional*): a token; otherwise `HF_TOKEN` or the token saved by `hf auth login`.

    Returns:
        `str`: the user name the token belongs to.

    Raises:
        [`HubAccessError`]: no token, an invalid token, or the Hub cannot be reached. The message never contains
        the token itself.
    """
    from huggingface_hub import get_token, whoami

    token = token or os.environ.get("HF_TOKEN") or get_token()
    if not token:
        raise HubAccessError(
            f"--push_to_hub was set for {repo_id!r} but no Hugging Face token was found: run `hf auth login` or set "
            "HF_TOKEN. Nothing was trained yet; drop --push_to_hub to train locally."
        )
    if os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes"):
        raise HubAccessError(f"--push_to_hub was set for {repo_id!r} but HF_HUB_OFFLINE is on.")
    try:
        return whoami(token=token)["name"]
    except Exception as error:  # network errors and HTTP errors alike
        kind = type(error).__name__
        raise HubAccessError(
            f"--push_to_hub was set for {repo_id!r} but the Hub could not be reached or refused the token ({kind}). "
            "Nothing was trained yet; check your network and token, or drop --push_to_hub."
        ) from None


# -- model cards -------------------------------------------------------------------------------------------------------
CARD_TAGS = ["genomics", "dna", "birdie", "birdie_hf", "biology"]
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


def mixture_table(trajectory: dict) -> str:
    """Markdown table: per entry, initial and final weight, mean weight over evaluations and last validation loss."""
    evaluations = trajectory.get("evaluations", [])
    if not evaluations:
        return "No policy evaluation was recorded."
    names = trajectory["entries"]
    rows = ["| objective entry | reward class | initial weight | final weight | mean weight | last val loss |",
            "|---|---|---|---|---|---|"]
    last = evaluations[-1]
    final = last.get("next_mixture", last["mixture"])
    for name, reward_class in zip(names, trajectory.get("reward_classes", names)):
        mean = sum(e["mixture"][name] for e in evaluations) / len(evaluations)
        rows.append(f"| `{name}` | {reward_class} | {evaluations[0]['mixture'][name]:.3f} | {final[name]:.3f} | "
                    f"{mean:.3f} | {last['losses'][name]:.4f} |")
    return "\n".join(rows)


def _eval_results(results: list[dict], split: str = "test"):
    from huggingface_hub import EvalResult

    out = []
    for result in results:
        for metric, hub_type in (("mcc", "matthews_correlation"), ("f1", "f1"), ("accuracy", "accuracy")):
            if metric in result:
                out.append(EvalResult(task_type="text-classification", dataset_type=result.get("dataset", "dna"),
                                      dataset_name=result["task"], dataset_split=split, metric_type=hub_type,
                                      metric_name=metric.upper() if metric == "mcc" else metric,
                                      metric_value=float(result[metric])))
    return out


def pretrained_model_card(
    repo_id: str,
    trajectory: dict,
    training: dict,
    *,
    widget_sequences: list[str],
    evaluation: Optional[list[dict]] = None,
    license: str = "apache-2.0",
    architecture: str = "LlamaForCausalLM",
):
    """Render the card of a pre-trained checkpoint.

    Args:
        repo_id (`str`): Hub repository id (also the model name).
        trajectory (`dict`): [`BirdieTrainer.mixture_trajectory`] output.
        training (`dict`): keys `steps`, `tokens_seen`, `window_length`, `max_length`, `model_size`, `training_data`.
        widget_sequences (`list[str]`): real DNA strings for the Hub widget.
        evaluation (`list[dict]`, *optional*): `{"task", "mcc", "f1", "accuracy"}` per downstream task (test split);
            they become the card's `model-index`.
    """
    from huggingface_hub import ModelCard, ModelCardData

    if not widget_sequences:
        raise ValueError("widget_sequences must hold at least one DNA string for the Hub widget.")
    data = ModelCardData(
        license=license, library_name="transformers", pipeline_tag="text-generation",
        tags=CARD_TAGS + [f"birdie-policy-{trajectory.get('policy', 'birdie')}"],
        widget=[{"text": sequence} for sequence in widget_sequences],
        model_name=repo_id.split("/")[-1],
        eval_results=_eval_results(evaluation or []) or None,
    )
    if evaluation:
        lines = ["| task | MCC | F1 | accuracy |", "|---|---|---|---|"]
        lines += [f"| {r['task']} | {r['mcc']:.3f} | {r.get('f1', float('nan')):.3f} | "
                  f"{r.get('accuracy', float('nan')):.3f} |" for r in evaluation]
        evaluation_section = "Fine-tuned per task (test split):\n\n" + "\n".join(lines)
    else:
        evaluation_section = "Not evaluated yet: run `recipes/evaluate_suite.py` to fill this section."
    return ModelCard.from_template(
        data, template_str=template_text("pretrained.md"), repo_id=repo_id, architecture=architecture,
        model_name=repo_id.split("/")[-1],
        policy=trajectory.get("policy", "birdie"), num_evaluations=len(trajectory.get("evaluations", [])),
        mixture_table=mixture_table(trajectory), example_sequence=widget_sequences[0],
        evaluation_section=evaluation_section, limitations=_LIMITATIONS,
        **{key: training.get(key, "n/a") for key in ("steps", "tokens_seen", "window_length", "max_length",
                                                      "model_size", "training_data")},
    )


def finetuned_model_card(repo_id: str, record: dict, *, widget_sequences: list[str], license: str = "apache-2.0",
                         architecture: str = "LlamaForSequenceClassification"):
    """Render the card of a fine-tuned classifier from a `recipes/finetune.py` results record."""
    from huggingface_hub import ModelCard, ModelCardData

    task = os.path.basename(str(record["task"]).rstrip("/"))
    test = record["test"]
    data = ModelCardData(
        license=license, library_name="transformers", pipeline_tag="text-classification", tags=CARD_TAGS,
        base_model=record["checkpoint"] if "/" in str(record["checkpoint"]) and not os.path.exists(
            str(record["checkpoint"])) else None,
        widget=[{"text": sequence} for sequence in widget_sequences], model_name=repo_id.split("/")[-1],
        eval_results=_eval_results([{"task": task, **test}]),
    )
    rows = "\n".join(f"| {name} | {test[name]:.4f} |" for name in ("mcc", "f1", "accuracy") if name in test)
    return ModelCard.from_template(
        data, template_str=template_text("finetuned.md"), repo_id=repo_id, base_model=record["checkpoint"],
        model_name=repo_id.split("/")[-1],
        task=task, method=f"LoRA r={record['lora_r']}" if record.get("lora_r") else "full fine-tuning",
        seed=record.get("seed", 0), metrics_rows=rows, example_sequence=widget_sequences[0],
        architecture=architecture,
    )


def push_finetuned(output_dir: str, record: dict, repo_id: Optional[str] = None, token: Optional[str] = None) -> str:
    """Write the card of a fine-tuned model into `output_dir` and upload the folder. The local folder is never
    modified beyond its README.md, so a failed upload loses nothing."""
    from huggingface_hub import HfApi

    repo_id = repo_id or os.path.basename(output_dir.rstrip("/"))
    widget = [s for s in record.get("widget_sequences", [])] or ["ACGTACGTACGTACGTACGT"]
    finetuned_model_card(repo_id, record, widget_sequences=widget).save(os.path.join(output_dir, "README.md"))
    api = HfApi(token=token)
    api.create_repo(repo_id, exist_ok=True)
    api.upload_folder(repo_id=repo_id, folder_path=output_dir, ignore_patterns=["checkpoint-*", "*.tmp-*"])
    return repo_id
