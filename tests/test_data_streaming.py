"""Streaming windows from FASTA files: up-front indexing and validation, seeks, resumes and stale `.fai` indexes."""

import builtins
import logging
import os

import numpy as np
import pytest

from birdie_hf import GenomeDataError, load_genome_windows, stream_genome_windows
from birdie_hf.data import index_fasta, plan_window_shards


def eager_windows(paths, tokenizer, **kwargs):
    ds = load_genome_windows(paths, tokenizer, validation_fraction=0, **kwargs)["train"]
    return list(zip(ds["record"], ds["start"], ds["input_ids"]))


def streamed_windows(stream):
    return [(x["record"], x["start"], list(x["input_ids"])) for x in stream]


def count_reads(monkeypatch, path):
    """Count the opens of `path` and the bytes read from it (through `open`, which `gzip.open` also uses)."""
    real_open = builtins.open
    stats = {"opens": 0, "bytes": 0}

    class Counting:
        def __init__(self, handle):
            self._handle = handle

        def read(self, *args):
            data = self._handle.read(*args)
            stats["bytes"] += len(data)
            return data

        def __iter__(self):
            for line in self._handle:
                stats["bytes"] += len(line)
                yield line

        def __enter__(self):
            return self

        def __exit__(self, *exc_info):
            return self._handle.__exit__(*exc_info)

        def __getattr__(self, name):
            return getattr(self._handle, name)

    def counting_open(file, *args, **kwargs):
        handle = real_open(file, *args, **kwargs)
        if isinstance(file, (str, os.PathLike)) and os.fspath(file) == path:
            stats["opens"] += 1
            return Counting(handle)
        return handle

    monkeypatch.setattr(builtins, "open", counting_open)
    return stats


def awkward_fasta(random_dna):
    """Ragged and CRLF lines, blank lines, soft-masking, N runs, a short record and a single-line record."""
    rng = np.random.default_rng(7)

    def ragged(sequence, newline="\n"):
        lines, i = [], 0
        while i < len(sequence):
            width = int(rng.integers(1, 40))
            lines.append(sequence[i : i + width])
            i += width
        return newline.join(lines) + newline

    n_run = random_dna(150, seed=2)[:60] + "N" * 50 + random_dna(150, seed=3)[:90]
    return (
        f">ragged first record\n{ragged(random_dna(700).lower()[:300] + random_dna(700, 1)[300:])}\n"
        f">gappy\r\n{ragged(n_run, newline=chr(13) + chr(10))}"
        ">short\nACGTN\n"
        f">one_line\n{random_dna(333, seed=4)}\n"
        f">tail_n\n{random_dna(120, seed=5)}{'n' * 30}\n"
    )


@pytest.mark.parametrize("name", ["genome.fa", "genome.fa.gz"])
@pytest.mark.parametrize("window_length, stride", [(25, 25), (30, 7), (10, 40)])
def test_stream_matches_eager_windows_across_blocks_and_checkpoints(
    write_fasta, tokenizer, random_dna, monkeypatch, name, window_length, stride
):
    from birdie_hf.data import fasta

    path = write_fasta(awkward_fasta(random_dna), name)
    expected = eager_windows(path, tokenizer, window_length=window_length, stride=stride, max_n_fraction=0.2)
    # Tiny blocks and checkpoints: every window straddles read blocks, validation blocks and checkpoints.
    monkeypatch.setattr(fasta, "_READ_BLOCK", 16)
    monkeypatch.setattr(fasta, "_SCAN_BLOCK", 7)
    monkeypatch.setattr(fasta, "_CHECKPOINT_BASES", 5)
    stream = stream_genome_windows(
        path, tokenizer, window_length=window_length, stride=stride, max_n_fraction=0.2, windows_per_shard=3
    )
    assert streamed_windows(stream) == expected
    assert any(record == "gappy" for record, _, _ in expected)


def test_stream_keeps_records_with_the_same_name(write_fasta, tokenizer, caplog):
    path = write_fasta(">r\nAAAAAAAA\n>r\nCCCCCCCC\n>s\nGGGG\n")
    with caplog.at_level(logging.WARNING):
        stream = stream_genome_windows(path, tokenizer, window_length=4)
    expected = [("r", 0, "AAAA"), ("r", 4, "AAAA"), ("r", 0, "CCCC"), ("r", 4, "CCCC"), ("s", 0, "GGGG")]
    assert streamed_windows(stream) == [(r, s, tokenizer(text)["input_ids"]) for r, s, text in expected]
    assert "'r' x2" in caplog.text
    assert [(s.record_index, s.record) for s in plan_window_shards([path], 4, 4)] == [(0, "r"), (1, "r"), (2, "s")]


def test_stream_validates_every_base_before_iterating(write_fasta, tokenizer, random_dna, monkeypatch):
    from birdie_hf.data import fasta

    monkeypatch.setattr(fasta, "_SCAN_BLOCK", 64)
    bad = random_dna(500, seed=1)[:300] + "X" + random_dna(200, seed=2)
    path = write_fasta(f">fine\n{random_dna(1000)}\n>broken\n{bad}\n")
    match = rf"Invalid character 'X' at position 301 of record 'broken' in '{path}'"
    with pytest.raises(GenomeDataError, match=match):
        stream_genome_windows(path, tokenizer, window_length=100)


def test_stream_counts_n_rich_windows_per_file(write_fasta, tokenizer, caplog):
    clean = write_fasta(">c\nACGTACGTACGT\n", "clean.fa")
    gappy = write_fasta(">g\nACGTNNNNACGT\n>h\nNNNNNNNNACGT\n", "gappy.fa")
    with caplog.at_level(logging.WARNING):
        stream = stream_genome_windows([clean, gappy], tokenizer, window_length=4, max_n_fraction=0.25)
    assert f"Dropped 3 windows with more than 25% N from {gappy!r} (3 windows kept)" in caplog.text
    assert repr(clean) not in caplog.text
    assert [(x["record"], x["start"]) for x in stream] == [("c", 0), ("c", 4), ("c", 8), ("g", 0), ("g", 8), ("h", 8)]


def test_stream_refuses_a_genome_without_usable_windows(write_fasta, tokenizer):
    path = write_fasta(">a\nNNNNNNNN\n>b\nAC\n")
    with pytest.raises(GenomeDataError, match="No window of 4 bases could be cut"):
        stream_genome_windows(path, tokenizer, window_length=4)


def write_fai(path, records):
    """A samtools index for records written as `>name` then lines of `width` bases."""
    offset, rows = 0, []
    for name, length, width in records:
        offset += len(name) + 2
        rows.append(f"{name}\t{length}\t{offset}\t{width}\t{width + 1}\n")
        offset += length + -(-length // width)
    with open(path + ".fai", "w") as handle:
        handle.writelines(rows)


def fasta_text(records, random_dna):
    text = ""
    for i, (name, length, width) in enumerate(records):
        sequence = random_dna(length, seed=i)
        text += f">{name}\n" + "".join(sequence[j : j + width] + "\n" for j in range(0, length, width))
    return text


def test_fai_written_for_the_file_is_trusted(write_fasta, random_dna):
    records = [("a", 23, 10), ("b", 30, 10), ("c", 5, 10)]
    path = write_fasta(fasta_text(records, random_dna))
    write_fai(path, records)
    assert index_fasta(path) == [("a", 23), ("b", 30), ("c", 5)]


def test_fai_older_than_the_fasta_is_ignored(write_fasta, tokenizer, random_dna, caplog):
    old = [("a", 8, 10), ("b", 4, 10)]
    path = write_fasta(fasta_text(old, random_dna))
    write_fai(path, old)
    new = [("a", 16, 10), ("b", 8, 10)]
    write_fasta(fasta_text(new, random_dna))  # the genome was replaced; its index was not
    stat = os.stat(path)
    os.utime(path + ".fai", ns=(stat.st_atime_ns, stat.st_mtime_ns - 10**9))
    with caplog.at_level(logging.WARNING):
        assert index_fasta(path) == [("a", 16), ("b", 8)]
    assert "stale index" in caplog.text and "older than the FASTA file" in caplog.text
    assert [(s.record, s.first, s.last) for s in plan_window_shards([path], 4, 4)] == [("a", 0, 4), ("b", 0, 2)]
    assert streamed_windows(stream_genome_windows(path, tokenizer, window_length=4)) == eager_windows(
        path, tokenizer, window_length=4
    )


@pytest.mark.parametrize(
    "wrong",
    [
        [("a", 16, 10), ("b", 4, 10)],  # lengths that do not match the file
        [("a", 8, 10)],  # a record missing
        [("x", 8, 10), ("b", 4, 10)],  # another name
    ],
)
def test_fai_that_does_not_match_the_fasta_is_ignored(write_fasta, tokenizer, random_dna, caplog, wrong):
    records = [("a", 8, 10), ("b", 4, 10)]
    path = write_fasta(fasta_text(records, random_dna))
    write_fai(path, wrong)
    with caplog.at_level(logging.WARNING):
        assert index_fasta(path) == [("a", 8), ("b", 4)]
    assert f"Ignoring the stale index '{path}.fai'" in caplog.text
    assert streamed_windows(stream_genome_windows(path, tokenizer, window_length=4)) == eager_windows(
        path, tokenizer, window_length=4
    )


def test_stream_reads_each_file_once_per_pass(write_fasta, tokenizer, random_dna, monkeypatch):
    path = write_fasta("".join(f">contig_{i}\n{random_dna(100, seed=i)}\n" for i in range(60)))
    size = os.path.getsize(path)
    stats = count_reads(monkeypatch, path)
    stream = stream_genome_windows(path, tokenizer, window_length=50)
    assert stats["bytes"] <= size + 2  # indexing and validating: one pass
    stats["bytes"] = stats["opens"] = 0
    windows = streamed_windows(stream)
    assert len(windows) == 120
    assert stats["opens"] <= 2 and stats["bytes"] <= 1.2 * size, stats


def test_resumed_stream_seeks_past_the_consumed_windows(write_fasta, tokenizer, random_dna, monkeypatch):
    from birdie_hf.data import fasta

    # One checkpoint per 2 windows, to scale with this small genome.
    monkeypatch.setattr(fasta, "_CHECKPOINT_BASES", 100)
    path = write_fasta(f">chr\n{random_dna(4000)}\n")
    size = os.path.getsize(path)
    make = lambda: stream_genome_windows(path, tokenizer, window_length=50, windows_per_shard=4)  # noqa: E731
    full = streamed_windows(make())
    assert len(full) == 80
    stream = make()
    consumed = iter(stream)
    for _ in range(70):
        next(consumed)
    state = stream.state_dict()

    resumed = make()
    resumed.load_state_dict(state)
    stats = count_reads(monkeypatch, path)
    assert streamed_windows(resumed) == full[70:]
    # Only the shard in progress and those after it are read: 3 shards of 4 windows of 50 bases (600 of 4000 bases).
    assert stats["bytes"] <= 0.2 * size, stats


def test_stream_fails_clearly_when_the_file_changes_after_indexing(write_fasta, tokenizer, random_dna):
    path = write_fasta(f">a\n{random_dna(100)}\n")
    stream = stream_genome_windows(path, tokenizer, window_length=10)
    write_fasta(f">a\n{random_dna(50)}\n")
    with pytest.raises(GenomeDataError, match="changed after `stream_genome_windows` indexed it"):
        list(stream)


def test_stream_in_forked_workers_after_reading_in_the_main_process(write_fasta, tokenizer, random_dna):
    from torch.utils.data import DataLoader

    path = write_fasta(f">a\n{random_dna(2000)}\n>b\n{random_dna(1000, seed=1)}\n", "genome.fa.gz")
    stream = stream_genome_windows(path, tokenizer, window_length=100, windows_per_shard=5)
    expected = streamed_windows(stream)  # leaves the file open in this process
    loader = DataLoader(stream, batch_size=None, num_workers=2, multiprocessing_context="fork")
    seen = [(x["record"], int(x["start"]), [int(i) for i in x["input_ids"]]) for x in loader]
    assert sorted(seen) == sorted(expected) and len(seen) == 30


def test_gzip_and_plain_streams_agree(write_fasta, tokenizer, random_dna):
    text = f">a\n{random_dna(500)}\n>b\n{random_dna(300, seed=1)}\n"
    plain = stream_genome_windows(write_fasta(text, "g.fa"), tokenizer, window_length=64, stride=32)
    gz = stream_genome_windows(write_fasta(text, "g.fa.gz"), tokenizer, window_length=64, stride=32)
    assert streamed_windows(plain) == streamed_windows(gz)
    assert plain.features["input_ids"].feature.dtype == "uint8"


def test_a_gzipped_stream_decompresses_the_file_once(write_fasta, tokenizer, random_dna, monkeypatch):
    """Overlapping windows (stride < window) and many records: every shard starts before the end of the last read,
    which used to rewind the gzip stream from its start (quadratic in the file size)."""
    from birdie_hf.data import fasta

    monkeypatch.setattr(fasta, "_CHECKPOINT_BASES", 512)
    text = "".join(f">contig_{i}\n{random_dna(5000, seed=i)}\n" for i in range(8))
    plain = streamed_windows(
        stream_genome_windows(write_fasta(text, "g.fa"), tokenizer, window_length=100, stride=50, windows_per_shard=8)
    )
    path = write_fasta(text, "g.fa.gz")
    stream = stream_genome_windows(path, tokenizer, window_length=100, stride=50, windows_per_shard=8)
    stats = count_reads(monkeypatch, path)
    assert streamed_windows(stream) == plain and len(plain) == 8 * 99
    assert stats["bytes"] <= 1.2 * os.path.getsize(path), stats  # ~100 shards: one pass, not one rewind per shard


@pytest.mark.parametrize("name", ["g.fa", "g.fa.gz"])
def test_a_shuffled_stream_yields_the_bases_of_its_coordinates(write_fasta, tokenizer, random_dna, name):
    """`datasets` reads a shuffled stream's shards from a thread pool; readers shared by its threads interleaved
    their seeks (windows whose bases were another place's, sometimes then a false "file changed" error)."""
    genome = {f"contig_{i}": random_dna(20_000, seed=i) for i in range(4)}
    path = write_fasta("".join(f">{record}\n{bases}\n" for record, bases in genome.items()), name)
    stream = stream_genome_windows(path, tokenizer, window_length=64, stride=32, windows_per_shard=4)
    ids = tokenizer.convert_tokens_to_ids(list("ACGT"))
    expected = {record: np.array([ids["ACGT".index(b)] for b in bases]) for record, bases in genome.items()}
    seen = 0
    for epoch in range(2):
        for window in stream.shuffle(seed=epoch, buffer_size=64):
            bases = expected[window["record"]][window["start"] : window["end"]]
            assert np.array_equal(np.asarray(window["input_ids"]), bases), (window["record"], window["start"])
            seen += 1
    assert seen == 2 * 4 * (20_000 // 32 - 1)


def test_a_genome_given_through_a_pipe_is_refused_by_name(tmp_path, tokenizer, random_dna):
    """`--genomes <(zcat genome.fa.gz)` is a FIFO: it was called "not FASTA" or "empty" (the first read consumed it)."""
    fifo = tmp_path / "genome.pipe"
    os.mkfifo(fifo)
    for load in (load_genome_windows, stream_genome_windows):
        with pytest.raises(GenomeDataError, match=r"is a pipe or device, not a file .*gzipped FASTA is read directly"):
            load(str(fifo), tokenizer, window_length=64)


def test_stream_reverse_complement_follows_each_window_as_the_eager_train_split(write_fasta, tokenizer, random_dna):
    path = write_fasta(">a\n" + random_dna(700, seed=1) + "\n>b\n" + random_dna(300, seed=2) + "\n")
    streamed = list(stream_genome_windows(path, tokenizer, window_length=100, reverse_complement=True))
    eager = load_genome_windows(path, tokenizer, window_length=100, validation_fraction=0, reverse_complement=True)
    eager = eager["train"]
    assert [row["strand"] for row in streamed[:4]] == ["+", "-", "+", "-"]
    assert [(r["record"], r["start"], r["strand"], list(r["input_ids"])) for r in streamed] == [
        (r, s, st, list(ids))
        for r, s, st, ids in zip(eager["record"], eager["start"], eager["strand"], eager["input_ids"])
    ]
    forward, reverse = streamed[0]["input_ids"], streamed[1]["input_ids"]
    text = tokenizer.decode(list(forward)).replace(" ", "")
    complement = {"A": "T", "C": "G", "G": "C", "T": "A"}
    assert tokenizer.decode(list(reverse)).replace(" ", "") == "".join(complement[b] for b in reversed(text))


def test_stream_soft_mask_drop_skips_masked_windows_and_feature_marks_them(write_fasta, tokenizer, random_dna):
    bases = random_dna(400, seed=3)
    masked = bases[:150] + bases[150:160].lower() + bases[160:]  # bases 150-159 soft-masked: window 1 of 4
    path = write_fasta(">a\n" + masked + "\n")
    kept = list(stream_genome_windows(path, tokenizer, window_length=100, soft_mask="drop"))
    assert [row["start"] for row in kept] == [0, 200, 300]
    featured = list(stream_genome_windows(path, tokenizer, window_length=100, soft_mask="feature"))
    assert [sum(row["soft_mask"]) for row in featured] == [0, 10, 0, 0]
    assert list(featured[1]["soft_mask"]).index(1) == 50
    # ignore: lower case reads as upper case
    plain = list(stream_genome_windows(path, tokenizer, window_length=100))
    upper = list(
        stream_genome_windows(write_fasta(">a\n" + bases + "\n", name="upper.fa"), tokenizer, window_length=100)
    )
    assert [list(r["input_ids"]) for r in plain] == [list(r["input_ids"]) for r in upper]
    with pytest.raises(ValueError, match="`soft_mask` must be"):
        stream_genome_windows(path, tokenizer, soft_mask="mask")
