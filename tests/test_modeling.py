"""Loading checkpoints for continual pre-training (`birdie_hf.modeling.load_causal_lm_checkpoint`)."""

import pytest
import torch
from transformers import BertConfig, PreTrainedTokenizerFast, T5Config

from birdie_hf import build_causal_lm, build_dna_tokenizer, default_model_config
from birdie_hf.modeling import cast_parameters, load_causal_lm_checkpoint, resolve_attn_implementation
from birdie_hf.vocabulary import sentinel_ids


def save_tiny_llama(path, tokenizer):
    model = build_causal_lm(
        default_model_config(tokenizer, hidden_size=16, num_hidden_layers=1, num_attention_heads=2), seed=0
    )
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return model


def test_checkpoint_gets_the_missing_birdie_tokens_and_resized_embeddings(tmp_path):
    small = build_dna_tokenizer(num_sentinels=4)  # an older checkpoint with too few sentinels
    original = save_tiny_llama(tmp_path / "base", small).get_input_embeddings().weight.detach().clone()
    model, tokenizer = load_causal_lm_checkpoint(str(tmp_path / "base"), attn_implementation="eager")
    assert type(model).__name__ == "LlamaForCausalLM" and model.config._attn_implementation == "eager"
    assert len(sentinel_ids(tokenizer)) == 128 and len(tokenizer) > len(small)
    weights = model.get_input_embeddings().weight
    assert weights.shape[0] >= len(tokenizer)
    torch.testing.assert_close(weights[: original.shape[0]], original)  # the trained rows are kept


def test_checkpoint_with_every_token_is_loaded_unchanged(tmp_path):
    tokenizer = build_dna_tokenizer()
    save_tiny_llama(tmp_path / "full", tokenizer)
    model, loaded = load_causal_lm_checkpoint(str(tmp_path / "full"))
    assert loaded.get_vocab() == tokenizer.get_vocab()
    assert model.get_input_embeddings().weight.shape[0] == len(tokenizer)


def test_encoder_checkpoint_is_refused_by_its_architecture(tmp_path):
    BertConfig(
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        architectures=["BertForMaskedLM"],
    ).save_pretrained(tmp_path / "bert")
    with pytest.raises(ValueError, match=r"holds a 'bert' model saved as \['BertForMaskedLM'\], not a causal LM"):
        load_causal_lm_checkpoint(str(tmp_path / "bert"))


def test_model_type_without_a_causal_lm_class_is_refused(tmp_path):
    path = tmp_path / "t5"
    T5Config(d_model=16, d_ff=32, num_layers=1, num_heads=2, vocab_size=300).save_pretrained(path)
    build_dna_tokenizer().save_pretrained(path)
    with pytest.raises(
        ValueError,
        match=r"Cannot load .* \(a 't5' model saved without `architectures`\) as a causal "
        r"LM for continual pre-training",
    ):
        load_causal_lm_checkpoint(str(path))


def test_tokenizer_that_is_not_character_level_is_refused(tmp_path):
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers

    # "A" is normalised to two words, so it becomes two tokens.
    backend = Tokenizer(models.WordLevel({"[UNK]": 0, "x": 1, "y": 2, "C": 3, "G": 4, "T": 5}, unk_token="[UNK]"))
    backend.normalizer = normalizers.Replace("A", "x y")
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="[UNK]", pad_token="[UNK]")
    path = tmp_path / "bpe"
    model = build_causal_lm(
        default_model_config(build_dna_tokenizer(), hidden_size=16, num_hidden_layers=1, num_attention_heads=2), seed=0
    )
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    with pytest.raises(ValueError, match=r"not character level: \['A'\] are not single tokens"):
        load_causal_lm_checkpoint(str(path))


def test_missing_checkpoint_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist: it is neither a local folder nor a valid Hub"):
        load_causal_lm_checkpoint("../no/such/checkpoint")


def test_a_pickled_checkpoint_is_refused_with_advice_not_torchs_raw_message(tmp_path, tokenizer):
    from transformers import LlamaConfig, LlamaForCausalLM

    from birdie_hf.modeling import load_causal_lm_checkpoint

    config = LlamaConfig(
        hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32, vocab_size=200
    )
    config.architectures = ["LlamaForCausalLM"]
    config.save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    weights = LlamaForCausalLM(config).state_dict()
    weights["extra"] = PickledObject()
    torch.save(weights, tmp_path / "pytorch_model.bin")
    with pytest.raises(
        ValueError, match=r"pickled with Python objects besides tensors.*convert them once to safetensors"
    ):
        load_causal_lm_checkpoint(str(tmp_path))


def test_fine_tuning_a_pickled_checkpoint_is_refused_with_the_same_advice(tmp_path, tokenizer):
    from transformers import LlamaConfig, LlamaForCausalLM

    from birdie_hf.evaluation.finetune import build_sequence_classifier

    config = LlamaConfig(
        hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32, vocab_size=200
    )
    config.architectures = ["LlamaForCausalLM"]
    config.pad_token_id = 0
    config.save_pretrained(tmp_path)
    weights = LlamaForCausalLM(config).state_dict()
    weights["extra"] = PickledObject()
    torch.save(weights, tmp_path / "pytorch_model.bin")
    with pytest.raises(ValueError, match=r"holds weights pickled with Python objects besides tensors"):
        build_sequence_classifier(str(tmp_path), 2, None, attention="causal")


def test_a_model_folder_without_tokenizer_files_is_named(tmp_path):
    from transformers import LlamaConfig

    from birdie_hf.modeling import load_causal_lm_checkpoint

    config = LlamaConfig(hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32)
    config.architectures = ["LlamaForCausalLM"]
    config.save_pretrained(tmp_path)
    with pytest.raises(FileNotFoundError, match=r"has no tokenizer files \(tokenizer.json or tokenizer_config.json\)"):
        load_causal_lm_checkpoint(str(tmp_path))


class PickledObject:
    """Not a tensor: torch.load(weights_only=True) refuses it."""


def test_cast_parameters_keeps_the_rotary_frequencies_in_float32():
    """`model.to(torch.bfloat16)` rounds the rotary `inv_freq` too, so positions far apart are read with other angles
    than in training (bf16 autocast keeps them float32); `cast_parameters` casts the weights alone."""
    config = default_model_config(build_dna_tokenizer(), hidden_size=64, num_hidden_layers=1, num_attention_heads=2)
    model = build_causal_lm(config, seed=0)
    exact = model.model.rotary_emb.inv_freq.clone()
    assert cast_parameters(model, torch.bfloat16) is model
    assert {p.dtype for p in model.parameters()} == {torch.bfloat16}
    assert model.model.rotary_emb.inv_freq.dtype == torch.float32
    torch.testing.assert_close(model.model.rotary_emb.inv_freq, exact, rtol=0, atol=0)
    rounded = build_causal_lm(config, seed=0).to(torch.bfloat16).model.rotary_emb.inv_freq.float()
    assert (1023 * (rounded - exact)).abs().max() > 0.05  # what the plain cast does to the angles at 1,023 tokens


def test_auto_attention_is_flex_where_the_fast_path_is_on():
    """One rule for `"auto"`: the recipe passes whether the GPU fast path is on; the library's default asks for CUDA."""
    assert resolve_attn_implementation("auto", flex=True) == "flex_attention"
    assert resolve_attn_implementation("auto", flex=False) == "sdpa"
    assert resolve_attn_implementation("auto") == ("flex_attention" if torch.cuda.is_available() else "sdpa")
    assert resolve_attn_implementation("eager", flex=True) == "eager"  # a name given is kept
