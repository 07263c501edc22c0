"""A user-defined objective, registered with `register_objective`, works end to end: tokenizer, collator, trainer."""

from dataclasses import dataclass

import numpy as np
import pytest
import torch

from birdie_hf import (
    BirdieTrainer,
    BirdieTrainingArguments,
    DataCollatorForBirdie,
    add_birdie_tokens,
    build_causal_lm,
    build_dna_tokenizer,
    default_model_config,
    load_genome_windows,
    register_objective,
)
from birdie_hf.objectives import (
    IGNORE_INDEX,
    OBJECTIVE_REGISTRY,
    MissingObjectiveTokenError,
    Objective,
    ObjectiveConfig,
    ObjectiveExample,
)


@dataclass
class ReversalConfig(ObjectiveConfig):
    """Reversal has no settings."""


class Reversal(Objective):
    """`[<|reversal|>] + x` as the prefix, `x[::-1] + [eos]` as the target."""

    name = "reversal"
    config_class = ReversalConfig
    prompt_tokens = ("<|reversal|>",)
    min_source_tokens = 1

    def output_length(self, num_source_tokens: int) -> int:
        return 2 * num_source_tokens + 2

    def __call__(self, tokens: np.ndarray, rng: np.random.Generator) -> ObjectiveExample:
        return self._prompted([tokens], [tokens[::-1]])


@pytest.fixture
def reversal():
    """Register `Reversal` for one test and remove it afterwards, so the registry of other tests is untouched."""
    register_objective(Reversal)
    try:
        yield Reversal
    finally:
        OBJECTIVE_REGISTRY.pop(Reversal.name, None)


def split_examples(row_ids, row_labels, row_positions):
    """Cut one packed row into its examples (positions restart at 0), dropping padding."""
    starts = [i for i, p in enumerate(row_positions) if p == 0] + [len(row_positions)]
    return [(row_ids[a:b], row_labels[a:b]) for a, b in zip(starts, starts[1:])]


def test_registered_objective_gets_its_token_collates_and_trains(reversal, tmp_path):
    tokenizer = build_dna_tokenizer()
    prompt = tokenizer.convert_tokens_to_ids("<|reversal|>")
    # Built-in tokens keep their ids; the new prompt comes after the 128 sentinels.
    assert prompt == 9 + 7 + 128 and tokenizer.convert_tokens_to_ids("<|autoencoding|>") == 15
    assert tokenizer.convert_tokens_to_ids("<sentinel_0>") == 16
    assert tokenizer.decode([prompt]) == "<|reversal|>"

    genome = load_genome_windows(None, tokenizer, window_length=64)
    mixture = ["next_token_prediction", "reversal"]
    collator = DataCollatorForBirdie(tokenizer, objectives=mixture, max_length=160, mask_format="dense")
    features = [genome["train"][i] for i in range(3)]
    batch = collator.collate_objective(features, mixture.index("reversal"))
    examples = [
        example
        for ids, labels, positions in zip(
            batch["input_ids"].tolist(), batch["labels"].tolist(), batch["position_ids"].tolist()
        )
        for example in split_examples(ids, labels, positions)
        if example[0][0] == prompt
    ]
    assert len(examples) == 3
    eos = tokenizer.eos_token_id
    for (ids, labels), feature in zip(examples, features):
        window = list(feature["input_ids"])
        assert ids == [prompt] + window + window[::-1] + [eos]
        assert labels == [IGNORE_INDEX] * (1 + len(window)) + window[::-1] + [eos]

    args = BirdieTrainingArguments(
        output_dir=str(tmp_path),
        objectives=mixture,
        policy="static",
        max_steps=2,
        logging_steps=1,
        per_device_train_batch_size=8,
        max_length=160,
        learning_rate=3e-3,
        save_strategy="no",
        use_cpu=True,
        disable_tqdm=True,
        report_to="none",
        policy_validation_windows=2,
        policy_warmup_steps=1,
        policy_eval_interval=1,
        seed=0,
    )
    model = build_causal_lm(
        default_model_config(tokenizer, hidden_size=32, num_hidden_layers=1, num_attention_heads=2), seed=0
    )
    trainer = BirdieTrainer(
        model=model,
        args=args,
        train_dataset=genome["train"],
        eval_dataset=genome["validation"],
        processing_class=tokenizer,
    )
    before = [p.detach().clone() for p in model.parameters()]
    trainer.train()
    assert trainer.state.global_step == 2
    train_losses = [h["loss/reversal"] for h in trainer.state.log_history if "loss/reversal" in h]
    assert train_losses and all(np.isfinite(train_losses))
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters()))
    evaluations = trainer.mixture_trajectory()["evaluations"]
    assert evaluations and all(np.isfinite(record["losses"]["reversal"]) for record in evaluations)
    assert "reversal" in model.config.birdie_objectives


def test_a_tokenizer_without_the_objectives_token_is_refused_by_name(reversal):
    plain = build_dna_tokenizer(objectives=["copying"])  # the built-in tokens only
    assert "<|reversal|>" not in plain.get_vocab()
    with pytest.raises(ValueError, match=r"no token '<\|reversal\|>', which objective 'reversal'.*add_birdie_tokens"):
        DataCollatorForBirdie(plain, objectives=["copying", "reversal"])
    with pytest.raises(MissingObjectiveTokenError):
        DataCollatorForBirdie(plain, objectives=["reversal"])
    DataCollatorForBirdie(plain, objectives=["copying"])  # a mixture without it does not need the token
    assert add_birdie_tokens(plain, objectives=["reversal"]) == 1
    assert add_birdie_tokens(plain) == 0
    # Adding gives the same vocabulary as building after registration.
    assert plain.get_vocab() == build_dna_tokenizer().get_vocab()
    collator = DataCollatorForBirdie(plain, objectives=["reversal"], max_length=64)
    batch = collator([{"input_ids": [4, 5, 6, 7]}])
    assert batch["input_ids"][0, :11].tolist() == [
        plain.convert_tokens_to_ids("<|reversal|>"),
        4,
        5,
        6,
        7,
        7,
        6,
        5,
        4,
        plain.eos_token_id,
        plain.pad_token_id,
    ]


def test_register_objective_checks_the_declared_tokens(reversal):
    class Undeclared(Objective):
        name = "undeclared"
        config_class = ReversalConfig

    class SameToken(Reversal):
        name = "same_token"

    class BaseToken(Reversal):
        name = "base_token"
        prompt_tokens = ("A",)

    class LettersOnly(Reversal):
        name = "letters_only"
        prompt_tokens = ("ACGT",)

    with pytest.raises(TypeError, match=r"prompt_tokens = \('<\|undeclared\|>',\)"):
        register_objective(Undeclared)
    with pytest.raises(ValueError, match="objective 'reversal' already declares"):
        register_objective(SameToken)
    for cls in (BaseToken, LettersOnly):
        with pytest.raises(ValueError, match="cannot be objective tokens"):
            register_objective(cls)
    assert not {"undeclared", "same_token", "base_token", "letters_only"} & set(OBJECTIVE_REGISTRY)


def test_mistakes_of_a_new_objective_are_named_before_packing(reversal):
    class NoPrompt(Reversal):
        name = "no_prompt"
        prompt_tokens = ()

    class LabelsTheFirstToken(Reversal):
        name = "labels_first"
        prompt_tokens = ("<|labels_first|>",)

        def __call__(self, tokens, rng):
            example = super().__call__(tokens, rng)
            example.labels[0] = example.input_ids[0]
            return example

    tokenizer = build_dna_tokenizer()
    try:
        for cls in (NoPrompt, LabelsTheFirstToken):
            register_objective(cls)
        add_birdie_tokens(tokenizer)
        window = [{"input_ids": [4, 5, 6, 7]}]
        with pytest.raises(TypeError, match=r"'no_prompt' opens its examples with a prompt token but declares none"):
            DataCollatorForBirdie(tokenizer, objectives=["no_prompt"], max_length=64)(window)
        with pytest.raises(ValueError, match=r"'labels_first' put the label .* on the first token"):
            DataCollatorForBirdie(tokenizer, objectives=["labels_first"], max_length=64)(window)
    finally:
        OBJECTIVE_REGISTRY.pop("no_prompt", None)
        OBJECTIVE_REGISTRY.pop("labels_first", None)


def test_an_unregistered_objective_is_named_with_the_fix():
    with pytest.raises(ValueError, match=r"Unknown objective 'reversal'.*register_objective"):
        DataCollatorForBirdie(build_dna_tokenizer(), objectives=["reversal"])


def test_fine_tuning_auto_attention_reads_the_objectives_declaration(reversal):
    from transformers import LlamaConfig

    from birdie_hf.evaluation.finetune import resolve_attention

    config = LlamaConfig(birdie_objectives=["next_token_prediction", "reversal"])
    assert resolve_attention(config) == "bidirectional"  # Reversal reads a prefix (the default)

    class CausalReversal(Reversal):
        name = "causal_reversal"
        prompt_tokens = ("<|causal_reversal|>",)
        reads_prefix = False

    register_objective(CausalReversal)
    try:
        assert (
            resolve_attention(LlamaConfig(birdie_objectives=["next_token_prediction", "causal_reversal"])) == "causal"
        )
        # A recorded objective this process does not know counts as reading a prefix.
        assert (
            resolve_attention(LlamaConfig(birdie_objectives=["next_token_prediction", "unknown_objective"]))
            == "bidirectional"
        )
    finally:
        OBJECTIVE_REGISTRY.pop("causal_reversal", None)
