"""The vocabulary of Birdie DNA tokenizers: token strings, sentinel and prompt tokens, and id lookups.

These are the names every part of the package agrees on (objectives write these tokens; [`build_dna_tokenizer`]
puts them in a vocabulary). This module depends on nothing else in the package, so the objectives can import it
while `birdie_hf.tokenizer`, which builds tokenizers from the objective registry, imports the objectives.
"""

from __future__ import annotations

import re
from typing import Optional

import numpy as np
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
_COMPLEMENT = str.maketrans("ACGTN", "TGCAN")
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


def dna_lookup_table(
    tokenizer: PreTrainedTokenizerFast, unknown_id: Optional[int] = -1, ambiguity_codes: bool = True
) -> np.ndarray:
    """A 256-entry table mapping an ASCII byte to its token id, for fast vectorised tokenisation of DNA.

    Bytes of `ACGTN`, their lower-case forms and (with `ambiguity_codes`) IUPAC ambiguity codes map like the tokenizer
    does; every other byte maps to `unknown_id` (`-1` by default, so callers can find and report bad characters).
    """
    table = np.full(256, unknown_id, dtype=np.int64)
    vocab = tokenizer.get_vocab()
    for base in BASES:
        table[ord(base)] = table[ord(base.lower())] = vocab[base]
    if ambiguity_codes:
        for code in IUPAC_AMBIGUITY_CODES:
            table[ord(code)] = table[ord(code.lower())] = vocab["N"]
    return table


def reverse_complement(sequence: str) -> str:
    """Reverse complement of an upper-case `ACGTN` sequence (the one implementation; tasks, inference and the
    evaluation import it from here)."""
    return sequence.translate(_COMPLEMENT)[::-1]
