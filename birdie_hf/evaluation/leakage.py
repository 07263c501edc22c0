"""Exact-occurrence leakage check: does a downstream sequence occur verbatim in the pre-training data?

[`find_occurrences`] answers, for every query of one length `L >= 32`, whether it (or its reverse complement) is a
substring of a corpus of DNA records, in a single streaming pass over the corpus:

1. bases are encoded in 2 bits and the 32-mer integer code of every corpus position is computed vectorised
   (`uint64`, by doubling: 1-mers -> 2-mers -> ... -> 32-mers);
2. the codes at offsets `0, 32, 64, ...` and of the final 32-mer (offset `L - 32`) of the window starting at each
   position are mixed into one 64-bit hash; together those 32-mers cover the whole window;
3. the queries are hashed with the same function, and corpus hashes are looked up in the sorted query hashes
   (`np.searchsorted`);
4. every candidate hit is verified by comparing the bytes, so a hash collision can never report a false occurrence.

The corpus is processed in chunks of a few Mbp, so memory stays around a few hundred MB whatever its size; a 50-Mbp
corpus takes seconds. Matching is case-insensitive; corpus positions whose window holds a non-ACGT character
(N, IUPAC codes, gaps) are never matches, so a query holding such a character is never found.

[`leakage_report`] applies it to the dev/test CSVs of a task suite folder and a list of FASTA files.
"""

from __future__ import annotations

import csv
import os
from typing import Callable, Iterable, Iterator, Optional, Sequence, Union

import numpy as np

from ..data import iter_fasta
from .task_files import read_task_split


KMER = 32
#: Corpus bases hashed per chunk (memory ~ 60 bytes per base of chunk).
CHUNK_BASES = 4_000_000
_SEPARATOR = b"N"

_CODE = np.zeros(256, dtype=np.uint64)
_VALID = np.zeros(256, dtype=bool)
for _letter, _value in zip(b"ACGT", range(4)):
    _CODE[_letter] = _CODE[_letter + 32] = _value
    _VALID[_letter] = _VALID[_letter + 32] = True
_UPPER_RC = bytes.maketrans(b"ACGTacgt", b"TGCATGCA")


def _as_bytes(sequence: Union[str, bytes]) -> bytes:
    if isinstance(sequence, str):
        return sequence.encode("ascii", errors="replace")
    return bytes(sequence)


def _upper_rc(sequence: bytes) -> bytes:
    return sequence.upper().translate(_UPPER_RC)[::-1]


def _mix(h: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser (a bijection on uint64), vectorised; wraps modulo 2**64."""
    h = h ^ (h >> np.uint64(30))
    h = h * np.uint64(0xBF58476D1CE4E5B9)
    h = h ^ (h >> np.uint64(27))
    h = h * np.uint64(0x94D049BB133111EB)
    return h ^ (h >> np.uint64(31))


def _offsets(length: int) -> list[int]:
    offsets = list(range(0, length - KMER + 1, KMER))
    if offsets[-1] != length - KMER:
        offsets.append(length - KMER)
    return offsets


def _window_hashes(text: bytes, length: int) -> tuple[np.ndarray, np.ndarray]:
    """Hash of the `length`-base window starting at each position of `text` and whether that window is all ACGT.

    Returns two arrays of `len(text) - length + 1` entries (empty if `text` is shorter than `length`).
    """
    n = len(text)
    count = n - length + 1
    if count <= 0:
        return np.zeros(0, dtype=np.uint64), np.zeros(0, dtype=bool)
    raw = np.frombuffer(text, dtype=np.uint8)
    codes = _CODE[raw]
    # Doubling: after the step with k, codes[i] is the code of the 2k-mer at i (valid for i <= n - 2k).
    k = 1
    while k < KMER:
        codes[: n - k] = (codes[: n - k] << np.uint64(2 * k)) | codes[k:]
        k *= 2
    invalid = np.concatenate([[0], np.cumsum(~_VALID[raw], dtype=np.int64)])
    valid = invalid[length : length + count] == invalid[:count]
    hashes = np.zeros(count, dtype=np.uint64)
    for index, offset in enumerate(_offsets(length)):
        hashes = _mix(hashes ^ codes[offset : offset + count] ^ np.uint64(index))
    return hashes, valid


def _corpus_chunks(corpus: Iterable[Union[str, bytes]], length: int, chunk_bases: int) -> Iterator[bytes]:
    """Upper-case pieces of the corpus joined by an `N` (so no window spans two records), each about `chunk_bases`
    long; a record longer than a chunk is cut into pieces that overlap by `length - 1` bases, so every window of the
    record lies whole inside one piece."""
    step = max(chunk_bases - (length - 1), 1)
    buffer: list[bytes] = []
    size = 0
    for record in corpus:
        sequence = _as_bytes(record).upper()
        if len(sequence) < length:
            continue
        for start in range(0, len(sequence) - length + 1, step):
            piece = sequence[start : start + chunk_bases]
            buffer.append(piece)
            size += len(piece) + 1
            if size >= chunk_bases:
                yield _SEPARATOR.join(buffer)
                buffer, size = [], 0
    if buffer:
        yield _SEPARATOR.join(buffer)


def find_occurrences(
    queries: Sequence[Union[str, bytes]],
    corpus: Iterable[Union[str, bytes]],
    both_strands: bool = True,
    *,
    chunk_bases: int = CHUNK_BASES,
) -> np.ndarray:
    """For each query, whether it occurs verbatim as a substring of a corpus sequence.

    Args:
        queries (`Sequence[str | bytes]`): DNA sequences, all of the same length `L >= 32`; case is ignored.
        corpus (`Iterable[str | bytes]`): the corpus records (e.g. `r.sequence for r in iter_fasta(path)`); consumed
            once. A match never spans two records.
        both_strands (`bool`, defaults to `True`): also report a query whose reverse complement occurs.
        chunk_bases (`int`): corpus bases hashed at once (memory/speed trade-off only).

    Returns:
        `np.ndarray` of `bool`, one entry per query (`True` = occurs). Windows holding a non-ACGT character never
        match. Every `True` has been verified by an exact byte comparison (no false positives from hash collisions).

    Raises:
        `ValueError`: the queries do not all have the same length, or that length is below 32.
    """
    queries = [_as_bytes(query).upper() for query in queries]
    found = np.zeros(len(queries), dtype=bool)
    if not queries:
        return found
    lengths = {len(query) for query in queries}
    if len(lengths) != 1:
        raise ValueError(
            f"find_occurrences needs queries of one length, got lengths {sorted(lengths)[:10]}; group them by length "
            "(see `find_occurrences_any_length`)."
        )
    length = lengths.pop()
    if length < KMER:
        raise ValueError(f"find_occurrences needs queries of at least {KMER} bases, got {length}.")

    # Distinct texts to look for (each strand of each query), and which queries each text answers.
    text_index: dict[bytes, int] = {}
    owners: list[list[int]] = []
    for position, query in enumerate(queries):
        variants = (query, _upper_rc(query)) if both_strands else (query,)
        for text in set(variants):
            index = text_index.setdefault(text, len(text_index))
            if index == len(owners):
                owners.append([])
            owners[index].append(position)
    texts = list(text_index)
    query_hashes, query_valid = _window_hashes(_SEPARATOR.join(texts), length)
    query_hashes = query_hashes[:: length + 1]
    query_valid = query_valid[:: length + 1]
    keep = np.flatnonzero(query_valid)  # a text with non-ACGT characters can never match
    order = keep[np.argsort(query_hashes[keep], kind="stable")]
    sorted_hashes = query_hashes[order]
    distinct_hashes = bool(np.all(sorted_hashes[1:] != sorted_hashes[:-1]))
    text_found = np.zeros(len(texts), dtype=bool)
    remaining = len(order)

    for chunk in _corpus_chunks(corpus, length, chunk_bases):
        if remaining == 0:
            break
        hashes, valid = _window_hashes(chunk, length)
        lo = np.searchsorted(sorted_hashes, hashes, side="left")
        hit = valid & (lo < len(sorted_hashes))
        hit[hit] = sorted_hashes[lo[hit]] == hashes[hit]
        positions = np.flatnonzero(hit)
        if not len(positions):
            continue
        if distinct_hashes:  # else two texts share a hash: a position may match either, so check them all
            positions = positions[~text_found[order[lo[positions]]]]
        for position in positions.tolist():
            # Exact verification: the hash only proposes candidates.
            text = text_index.get(chunk[position : position + length])
            if text is not None and not text_found[text]:
                text_found[text] = True
                remaining -= 1
    for text in np.flatnonzero(text_found).tolist():
        found[owners[text]] = True
    return found


def find_occurrences_any_length(
    queries: Sequence[Union[str, bytes]],
    corpus_factory: Callable[[], Iterable[Union[str, bytes]]],
    both_strands: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """[`find_occurrences`] for queries of mixed lengths: one corpus pass per length (`corpus_factory()` is called
    once per length). Returns `(found, checked)`; queries shorter than 32 bases or holding a non-ACGT character (which
    never match) are not checked (`checked` False, `found` False)."""
    found = np.zeros(len(queries), dtype=bool)
    checked = np.zeros(len(queries), dtype=bool)
    groups: dict[int, list[int]] = {}
    for index, query in enumerate(queries):
        groups.setdefault(len(query), []).append(index)
    for length, indices in sorted(groups.items()):
        if length < KMER:
            continue
        found[indices] = find_occurrences([queries[i] for i in indices], corpus_factory(), both_strands)
        checked[indices] = [bool(_VALID[np.frombuffer(_as_bytes(queries[i]), np.uint8)].all()) for i in indices]
    return found, checked


def _scan(
    task_dir: str, corpus_paths: Sequence[str], splits: Sequence[str], both_strands: bool
) -> tuple[dict[str, str], list[tuple[str, str, int, int]], np.ndarray, np.ndarray]:
    """Every `splits` sequence of every task of `task_dir`, looked up in the corpus: `(folders, slots, found,
    checked)`, where `slots` holds `(task, split, start, stop)` ranges into the flat `found` / `checked` arrays."""
    if not os.path.isdir(task_dir):
        raise FileNotFoundError(f"Task folder not found: {task_dir!r}.")
    corpus_paths = [os.fspath(path) for path in corpus_paths]
    if not corpus_paths:
        raise ValueError("`corpus_paths` is empty: give at least one FASTA file.")
    for path in corpus_paths:
        if not os.path.exists(path):
            raise FileNotFoundError(f"FASTA file not found: {path!r}.")
    folders = {}
    if any(os.path.exists(os.path.join(task_dir, f"{split}.csv")) for split in splits):
        folders[os.path.basename(os.path.normpath(task_dir))] = task_dir
    for name in sorted(os.listdir(task_dir)):
        folder = os.path.join(task_dir, name)
        if os.path.isdir(folder) and any(os.path.exists(os.path.join(folder, f"{s}.csv")) for s in splits):
            folders[name] = folder
    queries: list[str] = []
    slots: list[tuple[str, str, int, int]] = []
    for task, folder in folders.items():
        for split in splits:
            path = os.path.join(folder, f"{split}.csv")
            if os.path.exists(path):
                sequences = read_task_split(path)[0]
                slots.append((task, split, len(queries), len(queries) + len(sequences)))
                queries.extend(sequences)

    def corpus() -> Iterator[bytes]:
        for path in corpus_paths:
            for record in iter_fasta(path):
                yield record.sequence

    found, checked = find_occurrences_any_length(queries, corpus, both_strands)
    return folders, slots, found, checked


def drop_leaked_sequences(
    task_dir: str,
    corpus_paths: Sequence[str],
    output_dir: str,
    splits: Sequence[str] = ("dev", "test"),
    both_strands: bool = True,
) -> dict:
    """Copy a task suite to `output_dir` without the `splits` rows whose sequence occurs verbatim in the corpus.

    The rule is fixed in advance (every occurring row goes, whatever its label), so the filtered suite does not
    depend on any model's results. Train rows are copied unchanged.

    Args:
        task_dir, corpus_paths, splits, both_strands: as in [`leakage_report`].
        output_dir (`str`): the new suite folder (`<task>/{train,dev,test}.csv` and any other files of each task);
            must not be `task_dir`.

    Returns:
        `{task: {split: rows dropped}}` for every task and checked split.
    """
    import shutil

    if os.path.abspath(output_dir) == os.path.abspath(task_dir):
        raise ValueError(f"`output_dir` must differ from `task_dir` ({task_dir!r}): the suite is copied, not edited.")
    folders, slots, found, _ = _scan(task_dir, corpus_paths, splits, both_strands)
    dropped: dict = {}
    for task, folder in folders.items():
        target = os.path.join(output_dir, task)
        shutil.copytree(folder, target, dirs_exist_ok=True)
    for task, split, start, stop in slots:
        leaked = found[start:stop]
        path = os.path.join(folders[task], f"{split}.csv")
        with open(path, newline="", encoding="utf-8") as handle:
            rows = [row for row in csv.reader(handle) if row]
        header, body = rows[0], rows[1:]
        kept = [row for row, drop in zip(body, leaked) if not drop]
        with open(os.path.join(output_dir, task, f"{split}.csv"), "w", newline="", encoding="utf-8") as handle:
            csv.writer(handle).writerows([header, *kept])
        dropped.setdefault(task, {})[split] = int(leaked.sum())
    if os.path.normpath(task_dir) not in {os.path.normpath(f) for f in folders.values()}:
        for name in os.listdir(task_dir):  # a suite's own files (e.g. suite.json)
            if os.path.isfile(os.path.join(task_dir, name)):
                shutil.copy2(os.path.join(task_dir, name), os.path.join(output_dir, name))
    return dropped


def leakage_report(
    task_dir: str,
    corpus_paths: Sequence[str],
    splits: Sequence[str] = ("dev", "test"),
    both_strands: bool = True,
) -> dict:
    """How many dev/test sequences of each task of a suite folder occur verbatim in a FASTA corpus.

    Args:
        task_dir (`str`): a folder holding `<task>/{train,dev,test}.csv` (`sequence,label`), as written by
            [`~tasks.write_task_suite`], or a single task folder holding the CSVs directly.
        corpus_paths (`Sequence[str]`): FASTA / FASTA.gz files, e.g. the pre-training genomes.
        splits (`Sequence[str]`, defaults to `("dev", "test")`): the CSVs to check.
        both_strands (`bool`, defaults to `True`): also count reverse-complement occurrences.

    Returns:
        `{"corpus": [basenames], "both_strands": bool, "tasks": {task: {split: {"sequences": n, "checked": n,
        "occurring": k, "fraction": k / checked, "unchecked": n}}}, "total_occurring": k}`. Sequences shorter than 32
        bases or holding a non-ACGT character (`N`) cannot be looked up: `unchecked` counts them.
    """
    folders, slots, found, checked = _scan(task_dir, corpus_paths, splits, both_strands)
    tasks: dict = {}
    for task, split, start, stop in slots:
        n_checked = int(checked[start:stop].sum())
        occurring = int(found[start:stop].sum())
        tasks.setdefault(task, {})[split] = {
            "sequences": stop - start,
            "checked": n_checked,
            "unchecked": stop - start - n_checked,
            "occurring": occurring,
            "fraction": occurring / n_checked if n_checked else 0.0,
        }
    return {
        "corpus": [os.path.basename(path) for path in corpus_paths],
        "both_strands": both_strands,
        "tasks": tasks,
        "total_occurring": int(found.sum()),
    }


def split_overlap(task_folder: str, both_strands: bool = True) -> dict[str, int]:
    """Rows of a task that repeat another split's sequence (case ignored; with `both_strands`, its reverse complement
    too): `{"dev in train": n, "test in train": n, "test in dev": n}` for the splits the folder has. A test row
    whose sequence is in train measures memorisation, not generalisation (a random-init control scores 1.0 on a test
    split copied from train).

    Raises:
        `FileNotFoundError`: `task_folder` has no `train.csv`.
    """

    def canonical(sequence: str) -> bytes:
        text = _as_bytes(sequence).upper()
        return min(text, _upper_rc(text)) if both_strands else text

    if not os.path.exists(os.path.join(task_folder, "train.csv")):
        raise FileNotFoundError(f"{task_folder!r} has no train.csv.")
    seen: dict[str, list[bytes]] = {}
    for split in ("train", "dev", "test"):
        path = os.path.join(task_folder, f"{split}.csv")
        if os.path.exists(path):
            seen[split] = [canonical(sequence) for sequence in read_task_split(path)[0]]
    overlap = {}
    for later, earlier in (("dev", "train"), ("test", "train"), ("test", "dev")):
        if later in seen and earlier in seen:
            before = set(seen[earlier])
            overlap[f"{later} in {earlier}"] = sum(text in before for text in seen[later])
    return overlap


def split_overlap_warning(task: str, overlap: dict[str, int]) -> Optional[str]:
    """One warning line for the non-zero counts of [`split_overlap`], or None when the splits are disjoint."""
    found = {pair: n for pair, n in overlap.items() if n}
    if not found:
        return None
    pairs = ", ".join(f"{n} {pair.replace(' in ', ' rows repeat a sequence of ')}" for pair, n in found.items())
    return f"WARNING: task {task!r}: {pairs} (either strand); scores on those rows measure memorisation."
