import pytest
from transformers import AutoTokenizer

from birdie_hf import add_birdie_tokens, build_dna_tokenizer
from birdie_hf.objectives import BUILTIN_OBJECTIVES
from birdie_hf.vocabulary import MissingObjectiveTokenError, dna_lookup_table, prompt_id, sentinel_ids


def test_vocabulary_layout(tokenizer):
    vocab = tokenizer.get_vocab()
    assert [vocab[t] for t in ["<pad>", "<bos>", "<eos>", "<unk>", "A", "C", "G", "T", "N"]] == list(range(9))
    assert len(sentinel_ids(tokenizer)) == 128
    assert len(tokenizer) == 9 + len(BUILTIN_OBJECTIVES) + 128
    prompts = [token for cls in BUILTIN_OBJECTIVES for token in cls.prompt_tokens]
    assert [vocab[t] for t in prompts] == list(range(9, 16))
    assert tokenizer.pad_token_id == 0 and tokenizer.eos_token_id == 2


def test_case_iupac_and_whitespace_normalisation(tokenizer):
    assert tokenizer("ACGTN")["input_ids"] == [4, 5, 6, 7, 8]
    assert tokenizer("acgtn")["input_ids"] == [4, 5, 6, 7, 8]
    assert tokenizer("RYKMSWBDHVrykmswbdhv")["input_ids"] == [8] * 20
    assert tokenizer("AC GT\nA")["input_ids"] == [4, 5, 6, 7, 4]
    assert tokenizer("AXC")["input_ids"] == [4, tokenizer.unk_token_id, 5]


def test_special_tokens_are_single_ids_and_decode(tokenizer):
    ids = tokenizer("AC<|infilling|><sentinel_5>GT")["input_ids"]
    assert ids == [4, 5, prompt_id(tokenizer, "infilling"), sentinel_ids(tokenizer)[5], 6, 7]
    assert tokenizer.decode(ids) == "AC<|infilling|><sentinel_5>GT"
    assert tokenizer.decode(ids, skip_special_tokens=True) == "ACGT"


def test_save_and_load_with_auto_tokenizer(tokenizer, tmp_path):
    tokenizer.save_pretrained(tmp_path)
    assert (tmp_path / "tokenizer.json").exists()
    loaded = AutoTokenizer.from_pretrained(tmp_path)
    text = "acgtnRY<|copying|><sentinel_127>"
    assert loaded(text)["input_ids"] == tokenizer(text)["input_ids"]
    assert loaded.get_vocab() == tokenizer.get_vocab()
    assert loaded.pad_token == "<pad>" and loaded.eos_token == "<eos>"


def test_lookup_table_agrees_with_tokenizer_on_every_byte(tokenizer):
    table = dna_lookup_table(tokenizer)
    for byte in range(33, 127):
        char = chr(byte)
        ids = tokenizer(char)["input_ids"]
        if table[byte] >= 0:
            assert ids == [table[byte]], char
        else:
            assert ids == [tokenizer.unk_token_id], char


def test_add_birdie_tokens_to_a_plain_tokenizer():
    small = build_dna_tokenizer(num_sentinels=2)
    assert add_birdie_tokens(small, num_sentinels=4) == 2
    assert len(sentinel_ids(small)) == 4
    assert add_birdie_tokens(small, num_sentinels=4) == 0


def test_bad_arguments():
    with pytest.raises(ValueError, match="num_sentinels"):
        build_dna_tokenizer(num_sentinels=0)
    with pytest.raises(MissingObjectiveTokenError, match=r"no token '<\|not_an_objective\|>'"):
        prompt_id(build_dna_tokenizer(), "not_an_objective")


def test_a_saved_tokenizer_loads_the_same_and_names_a_class_every_transformers_knows(tmp_path):
    """transformers 5 writes `TokenizersBackend` and a list of extra special tokens, which transformers 4.x cannot
    read ("Tokenizer class TokenizersBackend does not exist"); the saved config names `PreTrainedTokenizerFast` and
    lists them under `additional_special_tokens` (loaded with transformers 4.57.1 too: same ids, 135 specials)."""
    import json

    from transformers import AutoTokenizer

    from birdie_hf.tokenizer import build_dna_tokenizer, save_tokenizer

    tokenizer = build_dna_tokenizer()
    save_tokenizer(tokenizer, str(tmp_path))
    config = json.loads((tmp_path / "tokenizer_config.json").read_text())
    assert config["tokenizer_class"] == "PreTrainedTokenizerFast" and "extra_special_tokens" not in config
    assert config["additional_special_tokens"][:2] == ["<|next_token_prediction|>", "<|prefix_lm|>"]
    loaded = AutoTokenizer.from_pretrained(tmp_path)
    text = "ACGTN<sentinel_0><|infilling|>acgt"
    assert loaded(text)["input_ids"] == tokenizer(text)["input_ids"]
    assert loaded.all_special_ids == tokenizer.all_special_ids and len(loaded) == len(tokenizer)
    assert loaded.decode(tokenizer("AC<sentinel_3>GT<eos>")["input_ids"], skip_special_tokens=True) == "ACGT"
