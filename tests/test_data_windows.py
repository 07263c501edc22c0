"""The `birdie_hf.data` package: one window cutter shared by every loader, the public names, the shipped genome."""

import os

import numpy as np
import pytest

from birdie_hf.data import (
    NRichWindowCounter,
    WindowCutter,
    default_genome_path,
    load_genome_windows,
    stream_genome_windows,
    windows_from_sequences,
)


def brute_force_windows(ids, window_length, stride, max_n=None, n_id=None):
    """Windows by definition: every `stride`-th start whose window fits, minus those with more than `max_n` N."""
    kept, dropped = [], 0
    for start in range(0, len(ids) - window_length + 1, stride):
        window = list(ids[start : start + window_length])
        if max_n is not None and sum(token == n_id for token in window) > max_n:
            dropped += 1
            continue
        kept.append((start, window))
    return kept, dropped


@pytest.mark.parametrize("window_length, stride", [(4, 4), (5, 2), (3, 7), (1, 1), (10, 3)])
def test_cutter_matches_the_definition(window_length, stride):
    rng = np.random.default_rng(window_length * 100 + stride)
    for length in (0, 1, window_length - 1, window_length, window_length + stride, 57):
        ids = rng.integers(0, 5, size=max(length, 0)).astype(np.uint8)  # 4 plays N
        cutter = WindowCutter(window_length, stride, max_n_fraction=0.3)
        starts, windows, dropped = cutter.cut(ids, is_n=ids == 4)
        expected, expected_dropped = brute_force_windows(
            ids.tolist(), window_length, stride, max_n=0.3 * window_length, n_id=4
        )
        assert [(int(s), w.tolist()) for s, w in zip(starts, windows)] == expected
        assert dropped == expected_dropped
        assert windows.dtype == np.uint8 and windows.shape == (len(expected), window_length)
        assert cutter.count(length) == len(brute_force_windows(ids.tolist(), window_length, stride)[0])


@pytest.mark.parametrize("window_length, stride", [(6, 6), (6, 2), (4, 9)])
def test_block_by_block_counter_agrees_with_the_cutter(window_length, stride):
    rng = np.random.default_rng(3)
    is_n = rng.random(500) < 0.3
    cutter = WindowCutter(window_length, stride, max_n_fraction=0.34)
    _, _, dropped = cutter.cut(np.zeros(is_n.size, dtype=np.uint8), is_n=is_n)
    assert dropped > 0
    for block in (1, 3, 5, 64, 500):
        counter = cutter.n_rich_counter()
        assert isinstance(counter, NRichWindowCounter)
        for lo in range(0, is_n.size, block):
            counter.feed(is_n[lo : lo + block])
        assert counter.n_rich == dropped, block


def test_cutter_checks_its_arguments():
    assert WindowCutter(8).stride == 8
    with pytest.raises(ValueError, match=r"`window_length` must be a positive integer, got 0"):
        WindowCutter(0)
    with pytest.raises(ValueError, match=r"`stride` must be a positive integer, got -2"):
        WindowCutter(4, -2)
    with pytest.raises(ValueError, match=r"`max_n_fraction` must be in \[0, 1\], got 2"):
        WindowCutter(4, max_n_fraction=2)


@pytest.mark.parametrize("window_length, stride", [(7, 7), (7, 3), (5, 11)])
def test_every_loader_cuts_the_same_windows(write_fasta, tokenizer, random_dna, window_length, stride):
    sequences = [("a", random_dna(90)), ("b", random_dna(33, seed=1)), ("c", "ACG")]
    path = write_fasta("".join(f">{name}\n{sequence}\n" for name, sequence in sequences))
    kwargs = dict(window_length=window_length, stride=stride)
    eager = load_genome_windows(path, tokenizer, validation_fraction=0, max_n_fraction=1.0, **kwargs)["train"]
    streamed = list(stream_genome_windows(path, tokenizer, max_n_fraction=1.0, **kwargs))
    from_rows = windows_from_sequences(sequences, tokenizer, **kwargs)
    expected = [
        (name, start, list(tokenizer(sequence[start : start + window_length])["input_ids"]))
        for name, sequence in sequences
        for start in range(0, len(sequence) - window_length + 1, stride)
    ]
    assert list(zip(eager["record"], eager["start"], eager["input_ids"])) == expected
    assert [(x["record"], x["start"], list(x["input_ids"])) for x in streamed] == expected
    assert list(zip(from_rows["record"], from_rows["start"], from_rows["input_ids"])) == expected


def test_every_loader_counts_the_bases_of_records_shorter_than_a_window(write_fasta, tokenizer, random_dna, caplog):
    import logging

    sequences = [("long", random_dna(400)), ("short", random_dna(90, seed=1)), ("tiny", "ACGT")]
    path = write_fasta("".join(f">{name}\n{sequence}\n" for name, sequence in sequences))
    with caplog.at_level(logging.WARNING):
        load_genome_windows(path, tokenizer, window_length=100, validation_fraction=0)
        stream_genome_windows(path, tokenizer, window_length=100)
        windows_from_sequences(sequences, tokenizer, window_length=100)
    unused = [r.getMessage() for r in caplog.records if "are never used" in r.getMessage()]
    assert len(unused) == 3 and all("Skipped 2 of 3" in m and "94 of 494 bases (19.0%)" in m for m in unused)


def test_public_names_stay_importable_from_birdie_hf_data():
    import birdie_hf.data as data

    names = [
        "FastaRecord",
        "GenomeDataError",
        "PathLike",
        "WindowShard",
        "default_genome_path",
        "index_fasta",
        "is_fasta_path",
        "iter_fasta",
        "load_genome_windows",
        "load_sequence_dataset",
        "plan_window_shards",
        "reverse_complement_table",
        "stream_genome_windows",
        "tokenize_record",
        "windows_from_sequences",
    ]
    missing = [name for name in names if not hasattr(data, name)]
    assert not missing
    assert set(names) <= set(data.__all__)


def test_shipped_genome_is_found_and_packaged():
    from setuptools import find_packages

    path = default_genome_path()
    assert os.path.isfile(path) and path.endswith(os.path.join("birdie_hf", "genomes", "bacterial_contigs.fna.gz"))
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(path))))
    packages = find_packages(where=root, include=["birdie_hf", "birdie_hf.*"])
    assert {"birdie_hf", "birdie_hf.data"} <= set(packages)
