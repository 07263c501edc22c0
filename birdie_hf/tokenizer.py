"""Character-level DNA tokenizer.

The tokenizer is built with 🤗 `tokenizers` and wrapped as a [`~transformers.PreTrainedTokenizerFast`], so it is
saved as a plain `tokenizer.json` and loads with `AutoTokenizer.from_pretrained` (and in Hub widgets) without any
remote code. All DNA-specific normalisation (upper-casing soft-masked bases, mapping IUPAC ambiguity codes to `N`,
dropping whitespace) lives inside `tokenizer.json` as `tokenizers` normalisers.

The vocabulary is laid out as:

| ids | tokens |
|---|---|
| 0-3 | `<pad>`, `<bos>`, `<eos>`, `<unk>` |
| 4-8 | `A`, `C`, `G`, `T`, `N` |
| 9-15 | one prompt token per Birdie objective, e.g. `<|infilling|>` |
| 16-… | `num_sentinels` sentinel tokens `<sentinel_0>`, `<sentinel_1>`, … |

For speed the data pipeline does not call the tokenizer on every window: [`dna_lookup_table`] turns bytes into ids
with one numpy indexing operation, and is tested to agree with the tokenizer on every character.
"""

from __future__ import annotations

from typing import Optional

import numpy as np
from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers
from transformers import PreTrainedTokenizerFast


PAD_TOKEN = "<pad>"
BOS_TOKEN = "<bos>"
EOS_TOKEN = "<eos>"
UNK_TOKEN = "<unk>"
BASES = ("A", "C", "G", "T", "N")
#: IUPAC ambiguity codes; each maps to `N`.
IUPAC_AMBIGUITY_CODES = "RYKMSWBDHV"
#: Names of the Birdie objectives that own a prompt token, in vocabulary order.
OBJECTIVE_PROMPT_NAMES = (
    "next_token_prediction",
    "prefix_lm",
    "infilling",
    "deshuffling",
    "copying",
    "selective_copying",
    "autoencoding",
)
DEFAULT_NUM_SENTINELS = 128


def prompt_token(objective: str) -> str:
    """The prompt token that opens every example of `objective`, e.g. `<|infilling|>`."""
    return f"<|{objective}|>"


def sentinel_token(index: int) -> str:
    """The `index`-th sentinel token, e.g. `<sentinel_0>`."""
    return f"<sentinel_{index}>"


def build_dna_tokenizer(
    num_sentinels: int = DEFAULT_NUM_SENTINELS, model_max_length: int = 1024
) -> PreTrainedTokenizerFast:
    """Build the character-level DNA tokenizer.

    Args:
        num_sentinels (`int`, *optional*, defaults to `128`):
            Number of sentinel tokens for infilling, autoencoding and selective copying. An objective never uses
            more spans than there are sentinels.
        model_max_length (`int`, *optional*, defaults to `1024`):
            Stored on the tokenizer, as transformers expects.

    Returns:
        `PreTrainedTokenizerFast`: the tokenizer. Lower-case bases map to the ids of upper-case ones, IUPAC ambiguity
        codes map to `N`, whitespace is dropped, and any other character becomes `<unk>` (the data pipeline rejects
        such characters with an error before they get here).

    Example:

    ```python
    >>> from birdie_hf import build_dna_tokenizer
    >>> tokenizer = build_dna_tokenizer()
    >>> tokenizer("acgtRN")["input_ids"]
    [4, 5, 6, 7, 8, 8]
    ```
    """
    if num_sentinels < 1:
        raise ValueError(f"`num_sentinels` must be at least 1, got {num_sentinels}.")
    special = [PAD_TOKEN, BOS_TOKEN, EOS_TOKEN, UNK_TOKEN]
    prompts = [prompt_token(name) for name in OBJECTIVE_PROMPT_NAMES]
    sentinels = [sentinel_token(i) for i in range(num_sentinels)]
    vocab = {token: i for i, token in enumerate(special + list(BASES) + prompts + sentinels)}

    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token=UNK_TOKEN))
    backend.normalizer = normalizers.Sequence(
        [normalizers.Replace(Regex(r"\s+"), "")]
        + [normalizers.Replace(base.lower(), base) for base in BASES]
        + [normalizers.Replace(Regex(f"[{IUPAC_AMBIGUITY_CODES}{IUPAC_AMBIGUITY_CODES.lower()}]"), "N")]
    )
    backend.pre_tokenizer = pre_tokenizers.Split(Regex("."), behavior="isolated")
    backend.decoder = decoders.Fuse()
    backend.add_special_tokens(special + prompts + sentinels)

    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        pad_token=PAD_TOKEN,
        bos_token=BOS_TOKEN,
        eos_token=EOS_TOKEN,
        unk_token=UNK_TOKEN,
        additional_special_tokens=prompts + sentinels,
        model_max_length=model_max_length,
        padding_side="right",
        clean_up_tokenization_spaces=False,
    )


def sentinel_ids(tokenizer: PreTrainedTokenizerFast) -> list[int]:
    """Ids of the tokenizer's sentinel tokens, in order (`<sentinel_0>` first)."""
    ids = []
    while True:
        token = sentinel_token(len(ids))
        token_id = tokenizer.convert_tokens_to_ids(token)
        if token_id is None or token_id == tokenizer.unk_token_id:
            return ids
        ids.append(token_id)


def prompt_id(tokenizer: PreTrainedTokenizerFast, objective: str) -> int:
    """Id of the prompt token of `objective`; raises `KeyError` if the tokenizer lacks it."""
    token_id = tokenizer.convert_tokens_to_ids(prompt_token(objective))
    if token_id is None or token_id == tokenizer.unk_token_id:
        raise KeyError(
            f"The tokenizer has no prompt token {prompt_token(objective)!r} for objective {objective!r}. "
            "Build it with `birdie_hf.build_dna_tokenizer()` or add the Birdie tokens with "
            "`birdie_hf.add_birdie_tokens(tokenizer)`."
        )
    return token_id


def add_birdie_tokens(tokenizer: PreTrainedTokenizerFast, num_sentinels: int = DEFAULT_NUM_SENTINELS) -> int:
    """Add any missing Birdie prompt and sentinel tokens to an existing tokenizer (for continual pre-training).

    Returns:
        `int`: the number of tokens added. Resize the model's embeddings afterwards with
        `model.resize_token_embeddings(len(tokenizer))`.
    """
    wanted = [prompt_token(name) for name in OBJECTIVE_PROMPT_NAMES] + [sentinel_token(i) for i in range(num_sentinels)]
    vocab = tokenizer.get_vocab()
    missing = [token for token in wanted if token not in vocab]
    if not missing:
        return 0
    return tokenizer.add_special_tokens({"additional_special_tokens": missing}, replace_extra_special_tokens=False)


def dna_lookup_table(tokenizer: PreTrainedTokenizerFast, unknown_id: Optional[int] = -1) -> np.ndarray:
    """A 256-entry table mapping an ASCII byte to its token id, for fast vectorised tokenisation of DNA.

    Bytes of `ACGTN`, their lower-case forms and IUPAC ambiguity codes map like the tokenizer does; every other byte
    maps to `unknown_id` (`-1` by default, so callers can find and report bad characters).
    """
    table = np.full(256, unknown_id, dtype=np.int64)
    vocab = tokenizer.get_vocab()
    for base in BASES:
        table[ord(base)] = table[ord(base.lower())] = vocab[base]
    for code in IUPAC_AMBIGUITY_CODES:
        table[ord(code)] = table[ord(code.lower())] = vocab["N"]
    return table
