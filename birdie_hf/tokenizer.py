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

import re
from typing import Any, Iterable, Optional

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
#: Tokens no objective may declare as its own.
CORE_TOKENS = (PAD_TOKEN, BOS_TOKEN, EOS_TOKEN, UNK_TOKEN, *BASES)
DEFAULT_NUM_SENTINELS = 128
#: Matches sentinel tokens.
SENTINEL_PATTERN = re.compile(r"^<sentinel_\d+>$")


class MissingObjectiveTokenError(KeyError, ValueError):
    """A tokenizer lacks a token that a Birdie objective writes into its examples.

    Both a `KeyError` (a token lookup failed) and a `ValueError` (the tokenizer does not fit the mixture).
    """

    def __str__(self) -> str:  # `KeyError` would print the repr of the message
        return str(self.args[0]) if self.args else ""


def prompt_token(objective: str) -> str:
    """The prompt token that opens every example of `objective`, e.g. `<|infilling|>`."""
    return f"<|{objective}|>"


def sentinel_token(index: int) -> str:
    """The `index`-th sentinel token, e.g. `<sentinel_0>`."""
    return f"<sentinel_{index}>"


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
    from .objectives import OBJECTIVE_REGISTRY, ObjectiveSpec

    if objectives is None:
        wanted = set(OBJECTIVE_REGISTRY)
    else:
        wanted = {ObjectiveSpec.from_dict(entry).objective for entry in objectives}
    tokens = [token for name, cls in OBJECTIVE_REGISTRY.items() if name in wanted for token in cls.prompt_tokens]
    return list(dict.fromkeys(tokens))


def _birdie_tokens(num_sentinels: int, objectives: Optional[Iterable[Any]]) -> tuple[list[str], list[str], list[str]]:
    """`(built-in prompt tokens, sentinels, tokens of other objectives)`, in vocabulary order."""
    from .objectives import BUILTIN_OBJECTIVES

    builtin = objective_tokens([cls.name for cls in BUILTIN_OBJECTIVES])
    sentinels = [sentinel_token(i) for i in range(num_sentinels)]
    extra = [token for token in objective_tokens(objectives) if token not in builtin]
    return builtin, sentinels, extra


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


def sentinel_ids(tokenizer: PreTrainedTokenizerFast) -> list[int]:
    """Ids of the tokenizer's sentinel tokens, in order (`<sentinel_0>` first)."""
    ids = []
    while True:
        token = sentinel_token(len(ids))
        token_id = tokenizer.convert_tokens_to_ids(token)
        if token_id is None or token_id == tokenizer.unk_token_id:
            return ids
        ids.append(token_id)


def objective_token_id(tokenizer: PreTrainedTokenizerFast, token: str, objective: str) -> int:
    """Id of `token`, which objective `objective` writes into its examples.

    Raises:
        [`MissingObjectiveTokenError`]: the tokenizer lacks `token`; the message names the objective and the token
        and says how to add it.
    """
    token_id = tokenizer.convert_tokens_to_ids(token)
    if token_id is None or token_id == tokenizer.unk_token_id:
        raise MissingObjectiveTokenError(
            f"The tokenizer has no token {token!r}, which objective {objective!r} writes into its examples. Add it "
            f"with `birdie_hf.add_birdie_tokens(tokenizer)` (then `model.resize_token_embeddings(len(tokenizer))`), "
            f"or build the tokenizer with `birdie_hf.build_dna_tokenizer()` after registering {objective!r}."
        )
    return token_id


def prompt_id(tokenizer: PreTrainedTokenizerFast, objective: str) -> int:
    """Id of the prompt token `<|objective|>` of `objective`.

    Raises:
        [`MissingObjectiveTokenError`] (a `KeyError`): the tokenizer lacks it.
    """
    return objective_token_id(tokenizer, prompt_token(objective), objective)


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
