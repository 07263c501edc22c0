"""Training health: the readings that tell a model that reads its input from one stuck at the base composition."""

import logging
import math
from types import SimpleNamespace

import pytest
import torch
from testing_utils import make_trainer
from torch import nn

from birdie_hf import (
    BirdieTrainer,
    BirdieTrainingArguments,
    build_causal_lm,
    default_model_config,
    load_genome_windows,
)
from birdie_hf.health import (
    AT_COMPOSITION_MARGIN,
    HealthReading,
    composition_entropy,
    constant_fraction,
    health_sentence,
    health_summary,
    health_warning,
    measure_health,
)
from birdie_hf.heldout import health_windows
from birdie_hf.hub import pretrained_model_card
from birdie_hf.run_record import summary_table


def test_constant_fraction_is_one_for_a_shared_vector_and_one_over_length_for_orthogonal_ones():
    shared = torch.tensor([1.0, -2.0, 0.5]).expand(1, 5, 3)
    orthogonal = torch.eye(4)[None]  # 4 positions, 4 orthonormal vectors: ||mean||^2 = 1/4, mean ||h||^2 = 1
    torch.testing.assert_close(constant_fraction(shared), torch.tensor([1.0]))
    torch.testing.assert_close(constant_fraction(orthogonal), torch.tensor([0.25]))
    # Masked positions (padding) do not count: two shared vectors and one odd one out, masked.
    hidden = torch.tensor([[[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]]])
    torch.testing.assert_close(constant_fraction(hidden, torch.tensor([[True, True, False]])), torch.tensor([1.0]))
    torch.testing.assert_close(constant_fraction(hidden), torch.tensor([(4 / 9 + 1 / 9) / 1.0]))


def test_composition_entropy_counts_only_bases():
    a, c, g, t, other = 5, 6, 7, 8, 99
    assert composition_entropy(torch.tensor([a, c, a, c, other]), [a, c, g, t]) == pytest.approx(math.log(2))
    assert composition_entropy(torch.tensor([a, a, a]), [a, c, g, t]) == pytest.approx(0.0)
    assert composition_entropy(torch.tensor([a, c, g, t]), [a, c, g, t]) == pytest.approx(math.log(4))


class FixedLogits(nn.Module):
    """A 'model' whose output does not depend on its input beyond what `predict` makes of it."""

    def __init__(self, predict):
        super().__init__()
        self.predict, self.weight = predict, nn.Parameter(torch.zeros(1))
        self.calls = []

    def forward(self, input_ids, use_cache=False, output_hidden_states=False):
        self.calls.append(self.training)
        logits = self.predict(input_ids)
        hidden = torch.ones(*input_ids.shape, 4)  # every position the same vector
        return SimpleNamespace(logits=logits, hidden_states=(hidden, hidden))


def test_a_model_predicting_the_composition_everywhere_reads_at_composition(tokenizer):
    bases = tokenizer.convert_tokens_to_ids(list("ACGT"))
    windows = torch.tensor([[bases[i % 4] for i in range(33)], [bases[(i * 3) % 4] for i in range(33)]])

    def composition(ids):  # the same uniform distribution over the four bases at every position
        logits = torch.full((*ids.shape, len(tokenizer)), -1e9)
        logits[..., bases] = 0.0
        return logits

    uniform = FixedLogits(composition)
    uniform.train()
    reading = measure_health(uniform, windows, bases, step=7)
    assert reading.step == 7 and uniform.calls == [False] and uniform.training  # read in eval mode, mode restored
    assert reading.composition_loss == pytest.approx(math.log(4))
    assert reading.next_base_loss == pytest.approx(math.log(4), abs=1e-5)
    assert reading.constant_fraction == pytest.approx(1.0)
    assert reading.at_composition and reading.to_dict()["at_composition"] is True

    def next_token(ids):  # puts all mass on the true next base: a model that reads its input
        logits = torch.full((*ids.shape, len(tokenizer)), -1e9)
        logits[:, :-1].scatter_(-1, ids[:, 1:, None], 0.0)
        return logits

    reading = measure_health(FixedLogits(next_token), windows, bases, step=8)
    assert reading.next_base_loss == pytest.approx(0.0, abs=1e-5)
    assert reading.gain == pytest.approx(math.log(4), abs=1e-5) and not reading.at_composition


def test_the_warning_comes_after_the_check_fraction_only_for_a_run_at_the_composition():
    stuck = HealthReading(step=500, next_base_loss=1.3831, composition_loss=1.3829, constant_fraction=0.9998)
    learning = HealthReading(step=500, next_base_loss=1.3600, composition_loss=1.3829, constant_fraction=0.45)
    assert health_warning(stuck, [], progress=0.1, check_fraction=0.2) is None
    assert health_warning(learning, [], progress=0.5, check_fraction=0.2) is None
    # A run that left the composition once is not warned about for one reading near it later (noise, not a collapse).
    assert health_warning(stuck, [learning.to_dict()], progress=0.5, check_fraction=0.2) is None
    warning = health_warning(stuck, [stuck.to_dict()], progress=0.25, check_fraction=0.2)
    assert "\n" not in warning and "step 500 (25% of training)" in warning and stuck.collapsed
    assert "1.3831" in warning and "1.3829" in warning and "0.9998" in warning and "ignores its input" in warning
    assert "--tie_word_embeddings false" in warning and "--warmup_steps 0.1" in warning
    # At the composition but reading its input (no shared vector): slow next-base learning, another advice.
    slow = HealthReading(step=500, next_base_loss=1.3831, composition_loss=1.3829, constant_fraction=0.73)
    warning = health_warning(slow, [], progress=0.25, check_fraction=0.2)
    assert not slow.collapsed and "reads its input" in warning and "--policy_fixed_shares" in warning
    # The margin: a gain just below it is still the composition.
    assert HealthReading(1, 1.0, 1.0 + AT_COMPOSITION_MARGIN * 0.9, 0.5).at_composition
    assert not HealthReading(1, 1.0, 1.0 + AT_COMPOSITION_MARGIN * 1.1, 0.5).at_composition


def _evaluation(step, next_base, composition=1.3829, fraction=0.5):
    return {"step": step, "health": HealthReading(step, next_base, composition, fraction).to_dict()}


def test_health_summary_and_sentence():
    assert health_summary([{"step": 1}])["status"] == "not_measured"
    assert health_sentence(health_summary([])) == "not measured (no held-out windows)"
    learning = health_summary([_evaluation(10, 1.40), _evaluation(20, 1.37), _evaluation(40, 1.35)])
    assert (learning["status"], learning["first_below"], learning["last"]["step"]) == ("learning", 20, 40)
    assert health_sentence(learning).startswith("learning: below the base composition from step 20")
    stuck = health_summary([_evaluation(10, 1.40), _evaluation(20, 1.3830, fraction=0.9999)])
    assert stuck["status"] == "collapsed" and stuck["first_below"] is None
    assert "did not learn beyond the base composition" in health_sentence(stuck)
    assert "0.9999" in health_sentence(stuck) and "ignores its input" in health_sentence(stuck)
    slow = health_summary([_evaluation(10, 1.40), _evaluation(20, 1.3830, fraction=0.7)])
    assert slow["status"] == "at_composition" and "reads its input" in health_sentence(slow)
    # One reading near the composition after the run left it is noise; two in a row at the end are a relapse.
    dip = health_summary([_evaluation(10, 1.35), _evaluation(20, 1.3800), _evaluation(30, 1.35)])
    assert dip["status"] == "learning"
    assert health_summary([_evaluation(10, 1.35), _evaluation(20, 1.3800)])["status"] == "learning"
    relapse = health_summary([_evaluation(10, 1.35), _evaluation(20, 1.3800), _evaluation(30, 1.3831)])
    assert relapse["status"] == "at_composition" and relapse["first_below"] == 10
    assert "fell back to the base composition** (below it from step 10)" in health_sentence(relapse)


def test_a_run_records_its_health_at_every_scheduled_evaluation_and_warns_once(tokenizer, genome, tmp_path, caplog):
    trainer = make_trainer(tokenizer, genome, tmp_path, policy="static", health_check_fraction=0.0)
    with caplog.at_level(logging.WARNING, logger="birdie_hf"):
        trainer.train()
    evaluations = trainer.mixture_trajectory()["evaluations"]
    assert evaluations and all(set(e["health"]) >= {"next_base_loss", "composition_loss", "constant_fraction"}
                               for e in evaluations)  # fmt: skip
    assert [e["health"]["step"] for e in evaluations] == [e["step"] for e in evaluations]
    # 8 steps of a 32-wide model: still above the composition, so the run says so, once.
    assert trainer.mixture_trajectory()["health"]["status"] in ("collapsed", "at_composition")
    warnings = [r.getMessage() for r in caplog.records if "Training health" in r.getMessage()]
    assert len(warnings) == 1, warnings
    logged = [entry for entry in trainer.state.log_history if "health/next_base_loss" in entry]
    assert len(logged) == len(evaluations)
    assert logged[0]["health/composition_loss"] == pytest.approx(evaluations[0]["health"]["composition_loss"])


def test_the_card_of_a_run_at_the_composition_warns_and_a_learning_run_says_so():
    trajectory = {
        "policy": "static",
        "entries": ["next_token_prediction"],
        "reward_classes": ["next_token_prediction"],
    }
    evaluation = {"step": 300, "losses": {"next_token_prediction": 1.38}, "mixture": {"next_token_prediction": 1.0}}
    training = {"steps": 300}
    stuck = {**trajectory, "evaluations": [{**evaluation, **_evaluation(300, 1.3831, fraction=0.9998)}]}
    card = str(pretrained_model_card("me/stuck", stuck, training, widget_sequences=["ACGT" * 8]))
    assert "[!WARNING]" in card and "did not learn beyond the base composition" in card
    assert "every position carries the same vector" in card
    slow = {**trajectory, "evaluations": [{**evaluation, **_evaluation(300, 1.3831, fraction=0.6)}]}
    card = str(pretrained_model_card("me/slow", slow, training, widget_sequences=["ACGT" * 8]))
    assert "[!WARNING]" in card and "did not learn next-base prediction beyond the base composition" in card
    assert "| training health | **did not learn beyond the base composition** (held-out next-base loss 1.3831" in card
    learning = {**trajectory, "evaluations": [{**evaluation, **_evaluation(300, 1.30)}]}
    card = str(pretrained_model_card("me/fine", learning, training, widget_sequences=["ACGT" * 8]))
    assert (
        "[!WARNING]" not in card and "| training health | learning: below the base composition from step 300" in card
    )


def _collapse_run(tokenizer, data, tmp_path, seed, **settings):
    """150 steps of the pre-registered experiment's dna_static arm at its geometry; returns the final reading."""
    tied = settings.pop("tie_word_embeddings")
    args = BirdieTrainingArguments.from_preset(
        "dna",
        policy="static",
        output_dir=str(tmp_path / f"run-{tied}"),
        max_length=544,
        example_length=272,
        per_device_train_batch_size=8,
        max_steps=150,
        save_strategy="no",
        report_to="none",
        disable_tqdm=True,
        seed=seed,
        **settings,
    )
    config = default_model_config(tokenizer, tie_word_embeddings=tied)
    model = build_causal_lm(config, seed=seed)
    BirdieTrainer(model=model, args=args, train_dataset=data["train"], processing_class=tokenizer).train()
    windows = health_windows(data["validation"], 0, count=32)
    return measure_health(model, windows, tokenizer.convert_tokens_to_ids(list("ACGT")), 150)


@pytest.mark.slow
def test_the_old_defaults_collapse_onto_the_composition_and_the_new_ones_learn(tokenizer, shared_dir, tmp_path):
    """The collapse of the pre-registered experiment (protocol v1), at its geometry and on its corpus, in 150 steps:
    tied embeddings with 15 warm-up steps at lr 2e-3 put every position on one vector and stay at the composition;
    the library's defaults (untied head, a tenth of the run as warm-up) learn. Seed 43 failed in the experiment."""
    genomes = shared_dir / "data" / "genomes"
    corpus = [
        genomes / "bacteria" / "e_coli_mg1655-k12.fa.gz",
        genomes / "bacteria" / "e_coli_dh1.fa.gz",
        genomes / "klebsiella_pneumoniae_MGH78578.fna.gz",
        genomes / "klebsiella_pneumoniae_NTUH-K2044.fna.gz",
    ]
    data = load_genome_windows([str(p) for p in corpus], tokenizer, window_length=272, seed=0)
    old = _collapse_run(tokenizer, data, tmp_path, 43, tie_word_embeddings=True, warmup_steps=15, learning_rate=2e-3)
    new = _collapse_run(tokenizer, data, tmp_path, 43, tie_word_embeddings=False)
    assert old.collapsed, old  # at the composition, one vector at every position (constant fraction 0.9998 seen)
    assert not new.at_composition and new.constant_fraction < 0.9, new  # 0.0137 nats below it, 0.36 seen


def test_the_recipes_summary_gives_the_runs_health():
    entries = ["next_token_prediction"]
    evaluation = {"step": 300, "losses": {"next_token_prediction": 1.38}, "mixture": {"next_token_prediction": 1.0}}
    stuck = {"entries": entries, "evaluations": [{**evaluation, **_evaluation(300, 1.3831, fraction=0.9998)}]}
    summary = summary_table(stuck, entries, 1000, 300, live_mixture={})
    assert summary.splitlines()[1].startswith("training health: **did not learn beyond the base composition**")
    assert "--tie_word_embeddings false" in summary
    unmeasured = summary_table({"entries": entries, "evaluations": []}, entries, 1000, 300, {entries[0]: 1.0})
    assert "training health: not measured (no held-out windows)" in unmeasured
