import logging

import numpy as np
import pytest
from transformers import AutoModelForCausalLM, LlamaForCausalLM, pipeline
from transformers.pipelines import PIPELINE_REGISTRY

import birdie_hf
from birdie_hf import build_causal_lm, default_model_config, infill, variant_effect
from birdie_hf.inference import DNAInputError, InfillingNotTrainedError
from birdie_hf.inference.pipelines import DNAInfillingPipeline, DNAVariantEffectPipeline


def save_checkpoint(tokenizer, path, objectives):
    model = build_causal_lm(
        default_model_config(tokenizer, hidden_size=32, num_hidden_layers=2, num_attention_heads=2), seed=0
    )
    model.config.birdie_objectives = list(objectives)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return str(path)


@pytest.fixture(scope="module")
def checkpoint(tokenizer, tmp_path_factory):
    return save_checkpoint(tokenizer, tmp_path_factory.mktemp("birdie"), ["next_token_prediction", "infilling"])


@pytest.fixture(scope="module")
def loaded(checkpoint):
    from transformers import AutoTokenizer

    return AutoModelForCausalLM.from_pretrained(checkpoint).eval(), AutoTokenizer.from_pretrained(checkpoint)


def test_importing_birdie_hf_registers_both_tasks(caplog):
    for task, pipeline_class in (
        ("dna-infilling", DNAInfillingPipeline),
        ("dna-variant-effect", DNAVariantEffectPipeline),
    ):
        entry = PIPELINE_REGISTRY.supported_tasks[task]
        assert entry["impl"] is pipeline_class and entry["pt"] == (AutoModelForCausalLM,)
    with caplog.at_level(logging.WARNING):
        birdie_hf.register_pipelines()  # again: a no-op, not an "Overwriting pipeline" warning
    assert "already registered" not in caplog.text


@pytest.mark.parametrize("task", ["dna-infilling", "dna-variant-effect"])
def test_pipeline_without_a_model_says_what_to_pass(task):
    """transformers looks up a default model when none is given; there is none, so the error says what to pass
    (it was `KeyError: 'default'`)."""
    with pytest.raises(ValueError, match=rf"pipeline\('{task}'\) needs a model: birdie_hf has no default checkpoint"):
        pipeline(task)


def test_infilling_pipeline_loads_a_saved_folder_and_matches_infill(checkpoint, loaded):
    fill = pipeline("dna-infilling", model=checkpoint, trust_remote_code=False)
    assert type(fill.model) is LlamaForCausalLM and isinstance(fill, DNAInfillingPipeline)
    model, tokenizer = loaded
    sequence = "ACGTAC___GTAGCT__AGCTAGCTAGCATCGAT"
    output = fill(sequence)
    expected = infill(model, tokenizer, sequence)
    assert output["sequence"] == expected.sequence and output["fills"] == expected.fills
    assert output["gaps"] == [[6, 9], [15, 17]]
    np.testing.assert_allclose(output["probabilities"], expected.probabilities, rtol=1e-5)

    inputs = [sequence, {"sequence": "ACGTACGTAGCTAGCTAGCTAGCATCGAT", "gaps": [(3, 5)]}]
    outputs = fill(inputs, decoding="beam", num_beams=3, batch_size=2)
    expected = infill(
        model,
        tokenizer,
        [sequence, "ACGTACGTAGCTAGCTAGCTAGCATCGAT"],
        gaps=[None, [(3, 5)]],
        decoding="beam",
        num_beams=3,
    )
    assert [o["sequence"] for o in outputs] == [e.sequence for e in expected]
    assert [o["fills"] for o in outputs] == [e.fills for e in expected]
    # a generator is batched like a list; beam search with one beam is greedy decoding (deterministic)
    generated = fill((s for s in [sequence, sequence]), batch_size=2, decoding="beam", num_beams=1)
    assert [o["sequence"] for o in generated] == [infill(model, tokenizer, sequence).sequence] * 2


def test_variant_effect_pipeline_matches_variant_effect(checkpoint, loaded):
    effect = pipeline("dna-variant-effect", model=checkpoint, reverse_complement_average=True)
    assert type(effect.model) is LlamaForCausalLM
    model, tokenizer = loaded
    sequence = "ACGTACGTAGCTAGCTAGCTAGCATCGAT"
    expected = [
        v.to_dict()
        for v in variant_effect(
            model, tokenizer, [(sequence, 4, "G"), (sequence, 10, "A")], reverse_complement_average=True
        )
    ]
    single = effect({"sequence": sequence, "position": 4, "alt": "G"})
    assert single.keys() == expected[0].keys() and single["ref"] == "A"
    for key in ("bidirectional_llr", "causal_llr", "causal_site_llr"):
        assert single[key] == pytest.approx(expected[0][key], abs=1e-6)
    assert effect((sequence, 4, "G"))["causal_llr"] == pytest.approx(expected[0]["causal_llr"], abs=1e-6)
    # one variant as a list is one variant, not a batch of three inputs
    assert effect([sequence, 4, "G"])["causal_llr"] == pytest.approx(expected[0]["causal_llr"], abs=1e-6)
    # with the reference allele, checked, and with a VCF (1-based) position
    with_ref = effect({"sequence": sequence, "position": 5, "ref": "A", "alt": "G"}, one_based=True)
    assert with_ref["position"] == 4 and with_ref["causal_llr"] == pytest.approx(expected[0]["causal_llr"], abs=1e-6)
    assert effect((sequence, 4, "A", "G"))["causal_llr"] == pytest.approx(expected[0]["causal_llr"], abs=1e-6)
    with pytest.raises(DNAInputError, match="ref 'C' does not match"):
        effect((sequence, 4, "C", "G"))
    batched = effect([(sequence, 4, "G"), {"sequence": sequence, "position": 10, "alt": "A"}], batch_size=4)
    for got, want in zip(batched, expected):
        assert (got["position"], got["ref"], got["alt"]) == (want["position"], want["ref"], want["alt"])
        assert got["bidirectional_llr"] == pytest.approx(want["bidirectional_llr"], abs=1e-6)


def test_pipelines_refuse_what_they_cannot_do(tokenizer, tmp_path, checkpoint):
    ntp = save_checkpoint(tokenizer, tmp_path / "ntp", ["next_token_prediction"])
    with pytest.raises(InfillingNotTrainedError, match="without the infilling objective"):
        pipeline("dna-infilling", model=ntp)("ACGT__ACGT")
    causal = pipeline("dna-variant-effect", model=ntp)({"sequence": "ACGTACGTAC", "position": 3, "alt": "A"})
    assert causal["bidirectional_llr"] is None and causal["causal_llr"] is not None
    fill = pipeline("dna-infilling", model=checkpoint)
    with pytest.raises(DNAInputError, match="needs a 'sequence' key"):
        fill({"seq": "ACGT__ACGT"})
    with pytest.raises(DNAInputError, match="dna-infilling takes a DNA input .*got NoneType None"):
        fill(None)
    with pytest.raises(TypeError, match=r"unknown parameters \['beams'\]"):
        fill("ACGT__ACGT", beams=4)
    with pytest.raises(TypeError, match=r"unknown parameters \['gaps'\]"):
        pipeline("dna-variant-effect", model=checkpoint)(("ACGTACGT", 1, "A"), gaps=[(0, 2)])
    with pytest.raises(DNAInputError, match=r"missing \['alt'\]"):
        pipeline("dna-variant-effect", model=checkpoint)({"sequence": "ACGT", "position": 1})
