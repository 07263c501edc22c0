import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from datasets import Dataset, DatasetDict
from huggingface_hub import ModelCard
from transformers import (
    AutoModel,
    AutoModelForCausalLM,
    AutoModelForSequenceClassification,
    AutoTokenizer,
    pipeline,
)

from birdie_hf import build_causal_lm, build_dna_tokenizer, default_model_config
from birdie_hf.evaluation.finetune import (
    LoraSettings,
    classification_metrics,
    finetune_classifier,
    load_classification_task,
)
from birdie_hf.hub import finetuned_model_card, pretrained_model_card
from birdie_hf.hub_io import HubAccessError, check_hub_access


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory, tokenizer):
    path = tmp_path_factory.mktemp("ckpt")
    model = build_causal_lm(
        default_model_config(tokenizer, hidden_size=32, num_hidden_layers=2, num_attention_heads=2), seed=0
    )
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return str(path)


def test_native_round_trip_with_auto_classes(checkpoint, tokenizer):
    loaded_tokenizer = AutoTokenizer.from_pretrained(checkpoint)
    inputs = loaded_tokenizer("acgtNNacgtRY", return_tensors="pt")
    assert inputs["input_ids"].tolist() == [tokenizer("ACGTNNACGTNN")["input_ids"]]
    causal = AutoModelForCausalLM.from_pretrained(checkpoint)
    again = AutoModelForCausalLM.from_pretrained(checkpoint)
    assert type(causal).__name__ == "LlamaForCausalLM"
    with torch.no_grad():
        torch.testing.assert_close(causal(**inputs).logits, again(**inputs).logits, rtol=0, atol=0)
        base = AutoModel.from_pretrained(checkpoint)(**inputs).last_hidden_state
    assert base.shape == (1, 12, causal.config.hidden_size)
    classifier = AutoModelForSequenceClassification.from_pretrained(checkpoint, num_labels=2)
    torch.testing.assert_close(classifier.model.embed_tokens.weight, causal.model.embed_tokens.weight)
    assert classifier(**inputs).logits.shape == (1, 2)


def test_text_generation_pipeline(checkpoint):
    generator = pipeline("text-generation", model=checkpoint)
    out = generator("ACGTACGTAC", max_new_tokens=8, do_sample=False)[0]["generated_text"]
    assert out.startswith("ACGTACGTAC") and set(out) <= set("ACGTN")


@pytest.fixture(scope="module")
def sample_task(shared_dir):
    return load_classification_task(str(shared_dir / "data/tasks/dnabert2_sample"))


@pytest.fixture(scope="module")
def birdie_checkpoint(tmp_path_factory, tokenizer):
    """A checkpoint whose config records prefix objectives, as BirdieTrainer writes it."""
    path = tmp_path_factory.mktemp("birdie_ckpt")
    model = build_causal_lm(
        default_model_config(tokenizer, hidden_size=32, num_hidden_layers=2, num_attention_heads=2), seed=0
    )
    model.config.birdie_objectives = ["next_token_prediction", "prefix_lm", "infilling"]
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return str(path)


def _first_position_changes_with_last_base(model, tokenizer) -> bool:
    a = tokenizer("ACGTACGTAC", return_tensors="pt")
    b = tokenizer("ACGTACGTAG", return_tensors="pt")
    with torch.no_grad():
        base = (model.get_base_model() if hasattr(model, "get_base_model") else model).model
        first_a = base(**a).last_hidden_state[0, 0]
        first_b = base(**b).last_hidden_state[0, 0]
    return not torch.allclose(first_a, first_b)


def test_attention_modes_resolve_from_the_pretraining_record(checkpoint, birdie_checkpoint):
    from transformers import AutoConfig

    from birdie_hf.evaluation.finetune import resolve_attention

    assert resolve_attention(AutoConfig.from_pretrained(birdie_checkpoint)) == "bidirectional"
    assert resolve_attention(AutoConfig.from_pretrained(checkpoint)) == "causal"  # no record: causal
    ntp = AutoConfig.from_pretrained(checkpoint)
    ntp.birdie_objectives = ["next_token_prediction"]
    assert resolve_attention(ntp) == "causal"
    assert resolve_attention(ntp, "bidirectional") == "bidirectional"
    with pytest.raises(ValueError, match="attention"):
        resolve_attention(ntp, "sideways")


@pytest.mark.parametrize("lora_r", [0, 4])
def test_bidirectional_classifier_reads_the_whole_input_and_causal_does_not(birdie_checkpoint, tokenizer, lora_r):
    from birdie_hf.evaluation.finetune import build_sequence_classifier

    lora = LoraSettings(r=lora_r)
    bidirectional = build_sequence_classifier(birdie_checkpoint, 2, lora, attention="auto").eval()
    causal = build_sequence_classifier(birdie_checkpoint, 2, lora, attention="causal").eval()
    assert _first_position_changes_with_last_base(bidirectional, tokenizer)
    assert not _first_position_changes_with_last_base(causal, tokenizer)


def test_prefix_prompt_is_a_native_tokenizer_rule(tokenizer, tmp_path):
    from birdie_hf.evaluation.finetune import add_prefix_prompt

    prompted = add_prefix_prompt(build_dna_tokenizer())
    prompt = prompted.convert_tokens_to_ids("<|prefix_lm|>")
    assert prompted("ACGT")["input_ids"] == [prompt] + tokenizer("ACGT")["input_ids"]
    prompted.save_pretrained(tmp_path)
    assert AutoTokenizer.from_pretrained(tmp_path)("ACGT")["input_ids"][0] == prompt


@pytest.mark.slow
@pytest.mark.parametrize("attention", ["bidirectional", "causal"])
def test_finetuned_mode_survives_save_load_and_the_pipeline(
    birdie_checkpoint, sample_task, tmp_path, tokenizer, attention
):
    out = tmp_path / "ft"
    results = finetune_classifier(
        birdie_checkpoint,
        sample_task,
        str(out),
        seed=0,
        attention=attention,
        num_train_epochs=1,
        batch_size=8,
        disable_tqdm=True,
    )
    assert results["attention"] == attention and results["prefix_prompt"] == (attention == "bidirectional")
    model = AutoModelForSequenceClassification.from_pretrained(out).eval()
    assert model.config.is_causal is (attention == "causal") and model.config.birdie_attention == attention
    assert _first_position_changes_with_last_base(model, tokenizer) is (attention == "bidirectional")
    classifier = pipeline("text-classification", model=str(out))
    sequence = sample_task["test"][0]["sequence"]
    with torch.no_grad():
        expected = model(**AutoTokenizer.from_pretrained(out)(sequence, return_tensors="pt")).logits.softmax(-1).max()
    assert classifier(sequence)[0]["score"] == pytest.approx(float(expected), rel=1e-5)
    assert AutoTokenizer.from_pretrained(out)(sequence)["input_ids"][0] == (
        tokenizer.convert_tokens_to_ids("<|prefix_lm|>")
        if attention == "bidirectional"
        else tokenizer(sequence)["input_ids"][0]
    )


@pytest.mark.slow
@pytest.mark.parametrize("lora_r", [0, 4])
def test_finetune_and_text_classification_pipeline(checkpoint, sample_task, tmp_path, lora_r):
    out = tmp_path / "ft"
    results = finetune_classifier(
        checkpoint,
        sample_task,
        str(out),
        seed=0,
        lora=LoraSettings(r=lora_r),
        num_train_epochs=2,
        batch_size=8,
        disable_tqdm=True,
    )
    assert set(results) == {"validation", "test", "attention", "prefix_prompt"}
    assert results["attention"] == "causal"  # no pre-training record: read causally
    assert {"mcc", "f1", "accuracy"} <= set(results["test"])
    assert -1 <= results["test"]["mcc"] <= 1
    model = AutoModelForSequenceClassification.from_pretrained(out)
    assert not any("lora" in name for name, _ in model.named_parameters())
    classifier = pipeline("text-classification", model=str(out))
    prediction = classifier(sample_task["test"][0]["sequence"])[0]
    assert prediction["label"] in model.config.id2label.values() and 0 <= prediction["score"] <= 1


def test_classification_metrics_hand_checked():
    logits = torch.tensor([[2.0, 0.0], [0.0, 1.0], [1.0, 0.0], [0.0, 3.0]]).numpy()
    metrics = classification_metrics((logits, [0, 1, 1, 1]))
    assert metrics["accuracy"] == 0.75
    assert metrics["mcc"] == pytest.approx(0.5773502691896258)


def test_nt_tasks_load_through_the_hub_code_path(monkeypatch):
    calls = []

    def fake_load_dataset(repo, name=None, **kwargs):
        calls.append((repo, name))
        if name is not None:
            raise ValueError("BuilderConfig not found")
        rows = {
            "sequence": ["ACGT", "GGCC", "TTAA", "CCGG"] * 5,
            "label": [0, 1, 0, 1] * 5,
            "task": ["promoter_all", "promoter_all", "enhancers", "enhancers"] * 5,
        }
        return DatasetDict({"train": Dataset.from_dict(rows), "test": Dataset.from_dict(rows)})

    import datasets

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    data = load_classification_task("promoter_all")
    assert calls[0] == ("InstaDeepAI/nucleotide_transformer_downstream_tasks_revised", "promoter_all")
    assert set(data["test"]["task"]) == {"promoter_all"}
    assert len(data["train"]) + len(data["validation"]) == 10
    with pytest.raises(ValueError, match="neither a folder"):
        load_classification_task("not_a_task")


def test_nt_loader_falls_back_to_the_parquet_export_when_datasets_refuses_scripts(monkeypatch):
    """datasets >= 4 raises RuntimeError for loading-script datasets (the revised NT benchmark is one)."""
    import datasets

    from birdie_hf.evaluation.finetune import PARQUET_REVISION

    calls = []
    rows = {"sequence": ["ACGT", "GGCC", "TTAA", "CCGG"] * 5, "label": [0, 1, 0, 1] * 5}

    def fake_load_dataset(repo, name=None, revision=None, **kwargs):
        calls.append((name, revision))
        if revision is None:
            raise RuntimeError(
                "Dataset scripts are no longer supported, but found nucleotide_transformer_downstream_tasks_revised.py"
            )
        return DatasetDict({"train": Dataset.from_dict(rows), "test": Dataset.from_dict(rows)})

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    data = load_classification_task("promoter_all")
    assert calls == [("promoter_all", None), ("promoter_all", PARQUET_REVISION)]
    assert len(data["test"]) == 20


def test_nt_loader_refuses_in_one_line_when_no_export_loads(tmp_path):
    """The real `datasets` code path, offline: a local dataset folder with a loading script, which datasets >= 4
    refuses, ends in one line saying what to use instead."""
    import datasets

    from birdie_hf.data import GenomeDataError

    script_dir = tmp_path / "nt_revised"
    script_dir.mkdir()
    (script_dir / "nt_revised.py").write_text("import datasets\n")
    if int(datasets.__version__.split(".")[0]) < 4:
        pytest.skip("datasets < 4 still runs loading scripts")
    with pytest.raises(GenomeDataError) as caught:
        load_classification_task("promoter_all", hub_repo=str(script_dir))
    message = str(caught.value)
    assert "\n" not in message and "loading-script dataset" in message and "local folder" in message


TRAJECTORY = {
    "policy": "birdie",
    "entries": ["next_token_prediction", "infilling_a", "infilling_b"],
    "reward_classes": ["next_token_prediction", "infilling", "infilling"],
    "evaluations": [
        {
            "step": 10,
            "losses": {"next_token_prediction": 1.4, "infilling_a": 2.0, "infilling_b": 2.1},
            "mixture": {"next_token_prediction": 1 / 3, "infilling_a": 1 / 3, "infilling_b": 1 / 3},
            "next_mixture": {"next_token_prediction": 0.5, "infilling_a": 0.25, "infilling_b": 0.25},
        },
    ],
}


def test_pretrained_card_parses_back_with_metrics_and_widget():
    card = pretrained_model_card(
        "org/birdie-dna",
        TRAJECTORY,
        {"steps": 300, "tokens_seen": "614,400"},
        widget_sequences=["GACAGAAAACCTTGCCCTCACCTGG"],
        evaluation=[{"task": "gene_strand", "mcc": 0.43, "f1": 0.71, "accuracy": 0.72}],
        evaluation_protocol="Fine-tuned 10 epochs, 3 seeds.",
    )
    parsed = ModelCard(str(card))
    assert parsed.data.pipeline_tag == "text-generation" and parsed.data.license == "apache-2.0"
    assert {"genomics", "dna", "birdie"} <= set(parsed.data.tags)
    # the DNA example, then (the run trained infilling) the same sequence with a middle gap in the infilling prompt
    assert parsed.data.widget == [
        {"text": "GACAGAAAACCTTGCCCTCACCTGG"},
        {"text": "<|infilling|>GACAGAAAA<sentinel_0>CCTCACCTGG<sentinel_0>", "example_title": "infilling"},
    ]
    mcc = [r for r in parsed.data.eval_results if r.metric_type == "matthews_correlation"]
    assert mcc[0].metric_value == 0.43 and mcc[0].dataset_name == "gene_strand"
    assert "| `infilling_a` | infilling | 0.333 | 0.250 |" in card.content
    assert 'AutoModelForCausalLM.from_pretrained("org/birdie-dna")' in card.content


def test_finetuned_card_parses_back():
    record = {
        "task": "tasks/gene_strand",
        "checkpoint": "org/birdie-dna",
        "seed": 1,
        "lora_r": 8,
        "test": {"mcc": 0.4, "f1": 0.7, "accuracy": 0.7},
    }
    card = finetuned_model_card("org/birdie-dna-gene-strand", record, widget_sequences=["ACGTTGCA"])
    parsed = ModelCard(str(card))
    assert parsed.data.pipeline_tag == "text-classification" and parsed.data.base_model == "org/birdie-dna"
    assert {r.metric_type: r.metric_value for r in parsed.data.eval_results}["f1"] == 0.7
    assert "LoRA r=8" in card.content and "| mcc | 0.4000 |" in card.content


def test_hub_access_fails_early_without_token_or_network(monkeypatch):
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setattr("huggingface_hub.get_token", lambda: None)
    with pytest.raises(HubAccessError, match="no Hugging Face token"):
        check_hub_access("org/model")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(HubAccessError, match="HF_HUB_OFFLINE") as info:
        check_hub_access("org/model", token="hf_secret_value_123")
    assert "hf_secret_value_123" not in str(info.value)


def test_pretrain_push_to_hub_fails_before_training_and_hides_the_token(tmp_path):
    env = {**os.environ, "HF_TOKEN": "hf_secret_value_123", "HF_HUB_OFFLINE": "1", "CUDA_VISIBLE_DEVICES": ""}
    result = subprocess.run(
        [
            sys.executable,
            str(Path(__file__).parents[1] / "recipes" / "pretrain.py"),
            "--push_to_hub",
            "--output_dir",
            str(tmp_path / "out"),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode != 0 and "HF_HUB_OFFLINE" in result.stderr
    assert "hf_secret_value_123" not in result.stdout + result.stderr
    assert not (tmp_path / "out" / "model.safetensors").exists()
