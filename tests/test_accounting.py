"""Compute accounting: tokens through the model and unseen-base targets per objective."""

import pytest
import torch
from testing_utils import make_trainer

from birdie_hf.accounting import accounting_by_objective, accounting_markdown, compute_accounting, plot_compute


LOGS = [
    {"step": 2, "loss": 1.0, "tokens/ntp": 100, "targets/ntp": 90, "tokens/copy": 300, "targets/copy": 140},
    {"step": 4, "loss": 0.9, "tokens/ntp": 100, "targets/ntp": 90, "tokens/copy": 100, "targets/copy": 50},
    {"step": 4, "eval_loss": 1.2},
]


def test_accounting_adds_the_logged_counts_by_hand():
    accounting = compute_accounting(LOGS, ["ntp", "copy"], [1.0, 0.0])
    assert accounting["model_tokens"] == 600 and accounting["unseen_base_targets"] == 180
    ntp, copy = accounting["entries"]["ntp"], accounting["entries"]["copy"]
    assert (ntp["model_tokens"], ntp["targets"], ntp["unseen_base_targets"]) == (200, 180, 180.0)
    assert ntp["model_token_share"] == pytest.approx(1 / 3) and ntp["unseen_base_target_share"] == 1.0
    assert copy["model_token_share"] == pytest.approx(2 / 3) and copy["unseen_base_target_share"] == 0.0
    # An objective of unknown fraction is left out of the unseen totals, not counted as zero.
    unknown = compute_accounting(LOGS, ["ntp", "copy"], [1.0, None])
    assert unknown["entries"]["copy"]["unseen_base_target_share"] is None
    assert accounting_by_objective(unknown, ["a", "b"])["b"]["unseen_base_target_share"] is None
    table = accounting_markdown(accounting, ["next_token_prediction", "copying"])
    assert "| next_token_prediction | 33.3% | 100.0% |" in table and "| copying | 66.7% | 0.0% |" in table


def test_a_run_logs_its_compute_per_entry_and_records_it(tokenizer, genome, tmp_path):
    # 7 steps, logs every 2: the last step is counted by the final log.
    trainer = make_trainer(tokenizer, genome, tmp_path, policy="static", max_steps=7)
    trainer.train()
    names = trainer.data_collator.entry_names
    logged = [logs for logs in trainer.state.log_history if any(k.startswith("tokens/") for k in logs)]
    assert logged and all(logs[f"tokens/{n}"] >= logs[f"targets/{n}"] > 0 for logs in logged for n in names if
                          f"tokens/{n}" in logs)  # fmt: skip
    compute = trainer.mixture_trajectory()["compute"]
    # Every token through the model is counted once, by its entry.
    assert compute["model_tokens"] == trainer.state.num_input_tokens_seen
    shares = [entry["model_token_share"] for entry in compute["entries"].values()]
    assert sum(shares) == pytest.approx(1.0)
    # Copying's targets are all in its input; next-token prediction's never are.
    assert compute["entries"]["copying"]["unseen_base_targets"] == 0.0
    ntp = compute["entries"]["next_token_prediction"]
    assert ntp["unseen_base_targets"] == ntp["targets"] > 0
    assert compute["entries"]["copying"]["targets"] > 0
    path = plot_compute(
        trainer.state.log_history, names, trainer.data_collator.reward_classes, str(tmp_path / "c.png")
    )
    assert open(path, "rb").read(4) == b"\x89PNG"


def test_only_targets_that_are_bases_are_counted(tokenizer, genome, tmp_path):
    """Infilling's targets hold a sentinel per span and an end token besides the masked bases: those are counted as
    tokens through the model but not as base targets."""
    trainer = make_trainer(tokenizer, genome, tmp_path, policy="static")
    entry = trainer.data_collator.entry_names.index("infilling_short")
    batch = trainer.data_collator.collate_with_objectives([genome["train"][i] for i in range(4)], [entry] * 4)
    labels = batch["labels"][:, 1:]
    bases = torch.isin(labels, torch.tensor(tokenizer.convert_tokens_to_ids(list("ACGT"))))
    assert 0 < int(bases.sum()) < int((labels != -100).sum())
    trainer.model.train()
    trainer.compute_loss(trainer.model, batch)
    counts = trainer._entry_counts
    assert counts[1, entry] == int(bases.sum()) and counts[0, entry] == int((batch["objective_ids"] >= 0).sum())
