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
| 9-15 | the prompt tokens of Birdie's built-in objectives, e.g. `<|infilling|>` |
| 16-… | `num_sentinels` sentinel tokens `<sentinel_0>`, `<sentinel_1>`, … |
| then | the tokens of objectives registered with [`register_objective`], in registration order |

No prompt token is hard-coded here: every objective class declares the tokens it writes into its examples
(`Objective.prompt_tokens`), and [`build_dna_tokenizer`] / [`add_birdie_tokens`] read them from the objective registry.
The tokens of user-registered objectives come after the sentinels, so built-in tokens keep their ids in every Birdie
tokenizer, and adding a new objective's tokens to an existing tokenizer gives the ids a freshly built one has.

For speed the data pipeline does not call the tokenizer on every window: [`dna_lookup_table`] turns bytes into ids
with one numpy indexing operation, and is tested to agree with the tokenizer on every character.
"""

from __future__ import annotations

import json
import os
from typing import Any, Iterable, Optional

from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers
from transformers import PreTrainedTokenizerFast

from .objectives import BUILTIN_OBJECTIVES, OBJECTIVE_REGISTRY, ObjectiveSpec
from .vocabulary import (
    BASES,
    BOS_TOKEN,
    DEFAULT_NUM_SENTINELS,
    EOS_TOKEN,
    IUPAC_AMBIGUITY_CODES,
    PAD_TOKEN,
    UNK_TOKEN,
    sentinel_token,
)


def objective_tokens(objectives: Optional[Iterable[Any]] = None) -> list[str]:
    """The special tokens that `objectives` write into their examples, as their classes declare them
    (`Objective.prompt_tokens`).

    Args:
        objectives (`Iterable`, *optional*):
            Registered objective names or mixture entries (names, dicts or [`ObjectiveSpec`]s, as
            [`parse_mixture`] takes them). Defaults to every objective in [`OBJECTIVE_REGISTRY`].

    Returns:
        `list[str]`: each token once, in registration order of the objectives (the built-in objectives first).

    Raises:
        [`ObjectiveConfigError`]: an entry names an objective that is not registered.
    """
    if objectives is None:
        wanted = set(OBJECTIVE_REGISTRY)
    else:
        wanted = {ObjectiveSpec.from_dict(entry).objective for entry in objectives}
    tokens = [token for name, cls in OBJECTIVE_REGISTRY.items() if name in wanted for token in cls.prompt_tokens]
    return list(dict.fromkeys(tokens))


def _birdie_tokens(num_sentinels: int, objectives: Optional[Iterable[Any]]) -> tuple[list[str], list[str], list[str]]:
    """`(built-in prompt tokens, sentinels, tokens of other objectives)`, in vocabulary order."""
    builtin = objective_tokens([cls.name for cls in BUILTIN_OBJECTIVES])
    sentinels = [sentinel_token(i) for i in range(num_sentinels)]
    extra = [token for token in objective_tokens(objectives) if token not in builtin]
    return builtin, sentinels, extra


#: What transformers 5 writes in `tokenizer_config.json` for a tokenizers-backed tokenizer, and what every version
#: reads: transformers 4.x knows no `TokenizersBackend` class and expects a mapping in `extra_special_tokens`.
PORTABLE_TOKENIZER_CLASS = "PreTrainedTokenizerFast"


def make_tokenizer_config_portable(folder: str) -> None:
    """Rewrite a saved `tokenizer_config.json` so transformers 4.x loads it too: the class `TokenizersBackend` (a
    transformers 5 name) becomes `PreTrainedTokenizerFast`, which both versions resolve to the fast tokenizer of
    `tokenizer.json`; the list of extra special tokens is written under `additional_special_tokens`, the key both
    read as a list; and the model inputs are named (`input_ids`, `attention_mask`: 4.x would add `token_type_ids`).
    transformers 5 loads the result into the same tokenizer (same ids and special tokens).
    Does nothing when the folder has no such file or it needs no change."""
    path = os.path.join(folder, "tokenizer_config.json")
    if not os.path.isfile(path):
        return
    with open(path, encoding="utf-8") as handle:
        config = json.load(handle)
    changed = False
    if config.get("tokenizer_class") == "TokenizersBackend":
        config["tokenizer_class"], changed = PORTABLE_TOKENIZER_CLASS, True
    if isinstance(config.get("extra_special_tokens"), list):
        config["additional_special_tokens"], changed = config.pop("extra_special_tokens"), True
    if "model_input_names" not in config:  # else 4.x returns token_type_ids, which a causal LM's generate refuses
        config["model_input_names"], changed = ["input_ids", "attention_mask"], True
    if changed:
        with open(path + ".tmp", "w", encoding="utf-8") as handle:
            handle.write(json.dumps(config, indent=2, sort_keys=True, ensure_ascii=False) + "\n")
        os.replace(path + ".tmp", path)


def save_tokenizer(tokenizer, folder: str) -> None:
    """`tokenizer.save_pretrained(folder)`, then [`make_tokenizer_config_portable`]."""
    tokenizer.save_pretrained(folder)
    make_tokenizer_config_portable(folder)


def build_dna_tokenizer(
    num_sentinels: int = DEFAULT_NUM_SENTINELS,
    model_max_length: int = 1024,
    objectives: Optional[Iterable[Any]] = None,
) -> PreTrainedTokenizerFast:
    """Build the character-level DNA tokenizer.

    Args:
        num_sentinels (`int`, *optional*, defaults to `128`):
            Number of sentinel tokens for infilling, autoencoding and selective copying. An objective never uses
            more spans than there are sentinels.
        model_max_length (`int`, *optional*, defaults to `1024`):
            Stored on the tokenizer, as transformers expects.
        objectives (`Iterable`, *optional*):
            Objectives whose tokens the vocabulary must hold: registered names or mixture entries. Defaults to
            every registered objective, so an objective registered with [`register_objective`] before this call
            gets its prompt token. The prompt tokens of the built-in objectives are always included (ids 9-15).

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
    builtin, sentinels, extra = _birdie_tokens(num_sentinels, objectives)
    vocab = {token: i for i, token in enumerate(special + list(BASES) + builtin + sentinels + extra)}

    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token=UNK_TOKEN))
    backend.normalizer = normalizers.Sequence(
        [normalizers.Replace(Regex(r"\s+"), "")]
        + [normalizers.Replace(base.lower(), base) for base in BASES]
        + [normalizers.Replace(Regex(f"[{IUPAC_AMBIGUITY_CODES}{IUPAC_AMBIGUITY_CODES.lower()}]"), "N")]
    )
    backend.pre_tokenizer = pre_tokenizers.Split(Regex("."), behavior="isolated")
    backend.decoder = decoders.Fuse()
    backend.add_special_tokens(special + builtin + sentinels + extra)

    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        pad_token=PAD_TOKEN,
        bos_token=BOS_TOKEN,
        eos_token=EOS_TOKEN,
        unk_token=UNK_TOKEN,
        additional_special_tokens=builtin + sentinels + extra,
        model_max_length=model_max_length,
        padding_side="right",
        clean_up_tokenization_spaces=False,
    )


def add_birdie_tokens(
    tokenizer: PreTrainedTokenizerFast,
    num_sentinels: int = DEFAULT_NUM_SENTINELS,
    objectives: Optional[Iterable[Any]] = None,
) -> int:
    """Add any missing Birdie prompt and sentinel tokens to an existing tokenizer (for continual pre-training, or
    after registering a new objective).

    Tokens are added in the order of [`build_dna_tokenizer`], so a Birdie tokenizer that lacks some gets the ids a
    freshly built one has.

    Args:
        tokenizer ([`~transformers.PreTrainedTokenizerFast`]): the tokenizer, changed in place.
        num_sentinels (`int`, *optional*, defaults to `128`): sentinel tokens it must have.
        objectives (`Iterable`, *optional*): objectives whose tokens it must have (registered names or mixture
            entries); defaults to every registered objective. The built-in prompt tokens are always added.

    Returns:
        `int`: the number of tokens added. Resize the model's embeddings afterwards with
        `model.resize_token_embeddings(len(tokenizer))`.
    """
    builtin, sentinels, extra = _birdie_tokens(num_sentinels, objectives)
    wanted = builtin + sentinels + extra
    vocab = tokenizer.get_vocab()
    missing = [token for token in wanted if token not in vocab]
    if not missing:
        return 0
    return tokenizer.add_special_tokens({"additional_special_tokens": missing}, replace_extra_special_tokens=False)
