"""Letters to integer codes, shared by the Markov baselines and the k-mer features.

Sequences are passed as text: `str`, `bytes`, or a 1-D numpy array of ASCII codes (`uint8`) or single letters.
Token ids are not accepted; decode them with the tokenizer first. Letters are case-insensitive; anything outside
the alphabet (e.g. `N`) is code `-1`, and every window that touches it is invalid.
"""

from __future__ import annotations

from typing import Iterable, Iterator, Union

import numpy as np


SequenceLike = Union[str, bytes, bytearray, np.ndarray]

#: Window starts processed at once, bounding memory to a few hundred MB whatever the sequence length.
CHUNK = 1 << 22


def lookup_table(alphabet: str) -> np.ndarray:
    """ASCII byte -> letter index (0..len(alphabet)-1), -1 for anything else; upper and lower case both map."""
    table = np.full(256, -1, dtype=np.int8)
    for index, letter in enumerate(alphabet):
        table[ord(letter.upper())] = index
        table[ord(letter.lower())] = index
    return table


def as_bytes(sequence: SequenceLike, name: str) -> np.ndarray:
    """View one sequence as a `(length,)` uint8 array of ASCII codes."""
    if isinstance(sequence, str):
        return np.frombuffer(sequence.encode("ascii", errors="replace"), dtype=np.uint8)
    if isinstance(sequence, (bytes, bytearray, memoryview)):
        return np.frombuffer(bytes(sequence), dtype=np.uint8)
    if isinstance(sequence, np.ndarray) and sequence.ndim == 1:
        if sequence.dtype == np.uint8:
            return sequence
        if sequence.dtype.kind == "S" and sequence.dtype.itemsize == 1:
            return sequence.view(np.uint8)
        if sequence.dtype.kind == "U" and sequence.dtype.itemsize == 4:
            code_points = sequence.view(np.uint32)
            return np.where(code_points < 256, code_points, 0).astype(np.uint8)
    raise TypeError(
        f"`{name}` must hold DNA text (str, bytes, or a 1-D numpy array of uint8 ASCII codes or single letters), "
        f"got {type(sequence).__name__}"
        + (f" with dtype {sequence.dtype} and shape {sequence.shape}" if isinstance(sequence, np.ndarray) else "")
        + ". Token ids must be decoded to text first."
    )


def is_single_sequence(value: object) -> bool:
    if isinstance(value, (str, bytes, bytearray, memoryview)):
        return True
    return isinstance(value, np.ndarray) and value.ndim == 1 and (value.dtype == np.uint8 or value.dtype.kind in "SU")


def iter_sequences(sequences: Union[SequenceLike, Iterable[SequenceLike]], name: str) -> Iterator[SequenceLike]:
    """Iterate sequences; a lone string/bytes/array is treated as one sequence rather than as its letters."""
    if is_single_sequence(sequences):
        yield sequences
        return
    if not isinstance(sequences, Iterable):
        raise TypeError(f"`{name}` must be a sequence or an iterable of sequences, got {type(sequences).__name__}.")
    yield from sequences


def iter_kmer_codes(codes: np.ndarray, max_width: int, base: int) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
    """Rolling base-`base` integer codes of all windows of width 1..`max_width`.

    Args:
        codes (`np.ndarray` of shape `(length,)`): letter indices, -1 for letters outside the alphabet.
        max_width (`int`): the widest window to code.
        base (`int`): the alphabet size.

    Yields:
        `(width, kmer_codes, valid)` with `kmer_codes` (int64) and `valid` (bool) of shape `(length - width + 1,)`;
        entry `s` codes the window `codes[s : s + width]` (first letter most significant) and is valid when no
        letter in it is -1. Stops early when the sequence is shorter than the window.
    """
    if codes.shape[0] == 0:
        return
    valid = codes >= 0
    clean = np.where(valid, codes, 0).astype(np.int64)
    kmer_codes, kmer_valid = clean, valid
    yield 1, kmer_codes, kmer_valid
    for width in range(2, max_width + 1):
        count = codes.shape[0] - width + 1
        if count <= 0:
            return
        kmer_codes = kmer_codes[:count] * base + clean[width - 1 :]
        kmer_valid = kmer_valid[:count] & valid[width - 1 :]
        yield width, kmer_codes, kmer_valid


def code_of(codes: np.ndarray, base: int) -> int:
    """Integer code of one short window of valid letter indices (first letter most significant); 0 when empty."""
    code = 0
    for letter in codes.tolist():
        code = code * base + letter
    return code


def window_codes(codes: np.ndarray, width: int, base: int) -> tuple[np.ndarray, np.ndarray]:
    """Codes and validity of the windows of exactly `width` letters, shapes `(max(length - width + 1, 0),)`."""
    for current, kmer_codes, valid in iter_kmer_codes(codes, width, base):
        if current == width:
            return kmer_codes, valid
    return np.empty(0, dtype=np.int64), np.empty(0, dtype=bool)


def iter_chunks(codes: np.ndarray, overlap: int) -> Iterator[tuple[np.ndarray, int]]:
    """Split `codes` into pieces of `CHUNK` window starts plus `overlap` trailing letters.

    Yields:
        `(piece, starts)`: windows starting at `piece[0 : starts]` belong to this piece (each start is in exactly
        one piece), and every window of up to `overlap + 1` letters starting there fits in `piece`.
    """
    for start in range(0, codes.shape[0], CHUNK):
        yield codes[start : start + CHUNK + overlap], min(CHUNK, codes.shape[0] - start)


#: Letter index of `A, C, G, T` (the k-mer features' alphabet).
DNA_TABLE = lookup_table("ACGT")
