"""Model cards (birdie_hf.hub): the training facts, the mixture trained on, results only with their protocol, the
model index, reading a card back and updating it."""

import ast
import json
from pathlib import Path

import pytest
from huggingface_hub import ModelCard
from testing_utils import EVALUATION, REPO, TRAINING, TRAJECTORY, load_recipe

from birdie_hf.evaluation.finetune import NT_REVISED_REPO
from birdie_hf.evaluation.suite_results import summarise
from birdie_hf.hub import (
    HELD_OUT_NAME,
    pretrained_model_card,
    read_card_values,
    template_text,
    update_pretrained_card,
    write_finetuned_card,
)
from birdie_hf.run_record import summary_table
from birdie_hf.trajectory import final_mixture


def test_final_weight_is_the_mixture_trained_on_last_and_matches_the_summary():
    # The decision taken at the last step (4) was never trained on: the last interval used `mixture`.
    assert final_mixture(TRAJECTORY, final_step=4) == {"next_token_prediction": 0.6, "infilling": 0.4}
    # A decision at step 4 is applied at the end of step 5 and first trained on at step 7 (one batch collated ahead).
    assert final_mixture(TRAJECTORY, final_step=6) == {"next_token_prediction": 0.6, "infilling": 0.4}
    assert final_mixture(TRAJECTORY, final_step=7) == {"next_token_prediction": 0.9, "infilling": 0.1}
    assert final_mixture({"evaluations": []}, 4) is None
    card = pretrained_model_card("org/m", TRAJECTORY, TRAINING, widget_sequences=["ACGT"])
    assert "| `infilling` | infilling | 0.500 | 0.400 | 0.450 | 1.9000 |" in card.content
    summary = summary_table(TRAJECTORY, TRAJECTORY["entries"], 2048, 4, live_mixture={})
    assert "| infilling                            |         1.9000 |       0.4000 |" in summary


def test_a_card_never_shows_results_without_their_protocol():
    with pytest.raises(ValueError, match="need `evaluation_protocol`"):
        pretrained_model_card("org/m", TRAJECTORY, TRAINING, widget_sequences=["ACGT"], evaluation=EVALUATION)


def test_every_task_gets_its_own_model_index_entry():
    card = pretrained_model_card(
        "org/m", TRAJECTORY, TRAINING, widget_sequences=["ACGT"], evaluation=EVALUATION, evaluation_protocol="probe"
    )
    results = ModelCard(str(card)).data.to_dict()["model-index"][0]["results"]
    datasets = {r["dataset"]["name"]: r["dataset"] for r in results}
    assert len(results) == 2
    assert datasets["gene_strand"]["type"] == "gene_strand"
    assert datasets["Nucleotide Transformer promoter_all"] == {
        "name": "Nucleotide Transformer promoter_all",
        "type": NT_REVISED_REPO,
        "config": "promoter_all",
        "split": "test",
    }
    assert all(len(r["metrics"]) == 3 for r in results)


def test_card_values_read_back_from_a_rendered_card():
    card = pretrained_model_card("org/m", TRAJECTORY, TRAINING, widget_sequences=["ACGT"])
    values = read_card_values(card.content, ("steps", "window_length", "max_length", "model_size", "repo_id"))
    assert values == {
        "steps": "4",
        "window_length": "128",
        "max_length": "384",
        "repo_id": "org/m",
        "model_size": TRAINING["model_size"],
    }
    assert "{{ steps }}" in template_text("pretrained.md")


def test_update_cards_keeps_the_training_facts(tmp_path, capsys):
    from transformers import LlamaConfig

    evaluate_suite = load_recipe("evaluate_suite")
    run = tmp_path / "birdie"
    run.mkdir()
    LlamaConfig(
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
        birdie_objectives=["next_token_prediction", "infilling"],
    ).save_pretrained(run)
    (run / "mixture_trajectory.json").write_text(json.dumps(TRAJECTORY))
    (run / "train_results.json").write_text(json.dumps({"train_loss": 2.0}))  # no global_step, no tokens_seen
    pretrained_model_card("org/birdie", TRAJECTORY, TRAINING, widget_sequences=["GATTACA"]).save(run / "README.md")
    summary = summarise(
        [
            {
                "name": "birdie",
                "task_name": task["task"],
                "mode": "bidirectional_prompt",
                "test": {m: task[m] for m in ("mcc", "f1", "accuracy")},
            }
            for task in EVALUATION
        ]
    )
    (run / HELD_OUT_NAME).write_text(
        "| model | nats |\n|---|---|\n| this model | 1.3570 |\n| order-2 Markov | 1.3320 |\n"
    )
    protocol = evaluate_suite.fine_tuning_protocol(
        evaluate_suite.parse_args(
            ["--checkpoints", "birdie=x", "--num_train_epochs", "1", "--max_train_examples", "200", "--seeds", "0"]
        )
    )
    evaluate_suite.update_cards(
        {"birdie": str(run)}, summary, protocol, baselines={task["task"]: 0.61 for task in EVALUATION}
    )
    text = (run / "README.md").read_text()
    # Honest card: how the numbers were obtained, the baseline beside them, and the held-out loss beside Markov.
    assert "up to 1 epochs with early stopping on dev" in text and "at most 200 training examples" in text
    assert "mean over 1 fine-tuning seed of one pre-trained checkpoint" in text
    assert "| gene_strand | 0.400 |" in text and "| 0.610 |" in text
    assert "### Held-out next-base loss" in text and "| order-2 Markov | 1.3320 |" in text
    for row in (
        "| steps | 4 |",
        "| tokens seen (source bases) | 2,048 |",
        "| window / packed row length | 128 / 384 |",
        f"| model | {TRAINING['model_size']} |",
        "| training data | `toy.fa` |",
    ):
        assert row in text
    assert "n/a" not in text
    card = ModelCard(text)
    assert card.data.widget == [{"text": "GATTACA"}] and 'from_pretrained("org/birdie")' in text
    assert len(card.data.to_dict()["model-index"][0]["results"]) == 2
    assert "| `infilling` | infilling | 0.500 | 0.400 |" in text  # still the mixture of the last interval
    assert "| gene_strand | 0.400 |" in text


def test_update_card_fills_missing_facts_from_train_results(tmp_path):
    (tmp_path / "mixture_trajectory.json").write_text(json.dumps(TRAJECTORY))
    (tmp_path / "train_results.json").write_text(json.dumps({"global_step": 7, "tokens_seen": 3072}))
    update_pretrained_card(str(tmp_path), EVALUATION, "Fine-tuned 1 epoch on 200 examples, 1 seed.")
    text = (tmp_path / "README.md").read_text()
    assert "| steps | 7 |" in text and "| tokens seen (source bases) | 3,072 |" in text
    assert "| `infilling` | infilling | 0.500 | 0.100 |" in text  # 7 >= 4 + 3: the last decision was trained on
    with pytest.raises(FileNotFoundError, match="no mixture_trajectory.json"):
        update_pretrained_card(str(tmp_path / "elsewhere"), EVALUATION, "protocol")


def test_finetuned_card_records_the_attention_mode(tmp_path):
    record = {
        "task": "outputs/genome_tasks/gene_strand",
        "checkpoint": "outputs/birdie",
        "seed": 0,
        "lora_r": 0,
        "validation": {"mcc": 0.5},
        "test": {"mcc": 0.4, "f1": 0.7, "accuracy": 0.7},
        "attention": "causal",
        "prefix_prompt": False,
    }
    (tmp_path / "ft").mkdir()
    text = Path(write_finetuned_card(str(tmp_path / "ft"), record, widget_sequences=["ACGT"])).read_text()
    assert "`outputs/birdie` fine-tuned on the DNA sequence-classification task **gene_strand**" in text
    assert "| attention | causal |" in text and "full fine-tuning" in text and 'model="ft"' in text


# -- packaging --------------------------------------------------------------------------------------------------------
def test_card_templates_are_package_data():
    setup = ast.parse((REPO / "setup.py").read_text())
    call = next(
        node for node in ast.walk(setup) if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "setup"
    )
    keywords = {k.arg: k.value for k in call.keywords}
    assert "data_files" not in keywords  # nothing is installed under sys.prefix any more
    package_data = ast.literal_eval(keywords["package_data"])
    assert "templates/*.md" in package_data["birdie_hf"]
    for name in ("pretrained.md", "finetuned.md"):
        assert (REPO / "birdie_hf" / "templates" / name).is_file()
        assert template_text(name).startswith("---\n{{ card_data }}\n---")
