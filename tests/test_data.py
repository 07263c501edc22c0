import gzip
import logging

import pytest
import torch

from birdie_hf import (
    GenomeDataError,
    default_genome_path,
    iter_fasta,
    load_genome_windows,
    load_sequence_dataset,
    stream_genome_windows,
    windows_from_sequences,
)


def ids(tokenizer, text):
    return tokenizer(text)["input_ids"]


def test_parses_crlf_blank_lines_and_many_records(write_fasta):
    path = write_fasta(">r1 first\r\nACGT\r\n\r\nAC\r\n\n>r2\nGGGG\n")
    records = list(iter_fasta(path))
    assert [(r.name, r.sequence) for r in records] == [("r1", b"ACGTAC"), ("r2", b"GGGG")]


def test_gzip_and_plain_give_the_same_windows(write_fasta, tokenizer, random_dna):
    text = f">a\n{random_dna(100)}\n>b\n{random_dna(60, seed=1)}\n"
    plain = load_genome_windows(write_fasta(text), tokenizer, window_length=20, validation_fraction=0)
    gz = load_genome_windows(write_fasta(text, "g.fa.gz"), tokenizer, window_length=20, validation_fraction=0)
    assert plain["train"]["input_ids"] == gz["train"]["input_ids"]
    assert len(plain["train"]) == 5 + 3


def test_windows_coordinates_and_stride(write_fasta, tokenizer):
    seq = "ACGTACGTAC"
    ds = load_genome_windows(
        write_fasta(f">chr\n{seq}\n"), tokenizer, window_length=4, stride=3, validation_fraction=0
    )["train"]
    assert ds["start"] == [0, 3, 6] and ds["end"] == [4, 7, 10]
    assert ds["input_ids"] == [ids(tokenizer, seq[s : s + 4]) for s in (0, 3, 6)]
    assert set(ds["record"]) == {"chr"} and set(ds["strand"]) == {"+"}


def test_position_split_never_overlaps(write_fasta, tokenizer, random_dna):
    path = write_fasta(f">chr\n{random_dna(1000)}\n")
    ds = load_genome_windows(path, tokenizer, window_length=50, stride=10, validation_fraction=0.2)
    train_end = max(ds["train"]["end"])
    val_start = min(ds["validation"]["start"])
    assert train_end <= 800 <= val_start
    assert len(ds["validation"]) == (200 - 50) // 10 + 1


def test_record_split_holds_out_whole_records(write_fasta, tokenizer, random_dna):
    text = "".join(f">r{i}\n{random_dna(100, seed=i)}\n" for i in range(10))
    ds = load_genome_windows(
        write_fasta(text), tokenizer, window_length=50, validation_fraction=0.2, split_by="record", seed=3
    )
    train, val = set(ds["train"]["record"]), set(ds["validation"]["record"])
    assert len(val) == 2 and not train & val and len(train) == 8


def test_reverse_complement_augmentation(write_fasta, tokenizer):
    ds = load_genome_windows(
        write_fasta(">r\nAACGTN\n"),
        tokenizer,
        window_length=6,
        validation_fraction=0,
        reverse_complement=True,
        max_n_fraction=0.5,
    )["train"]
    assert ds["strand"] == ["+", "-"]
    assert ds["input_ids"][1] == ids(tokenizer, "NACGTT")
    assert ds["start"] == [0, 0]


def test_n_fraction_cap_drops_windows(write_fasta, tokenizer, caplog):
    with caplog.at_level(logging.WARNING):
        ds = load_genome_windows(
            write_fasta(">r\nACGTNNNNACGT\n"), tokenizer, window_length=4, validation_fraction=0, max_n_fraction=0.25
        )["train"]
    assert ds["start"] == [0, 8]
    assert "Dropped 1 windows" in caplog.text


def test_soft_mask_feature_and_drop(write_fasta, tokenizer):
    path = write_fasta(">r\nacgtACGTACGTacgt\n")
    feature = load_genome_windows(path, tokenizer, window_length=8, validation_fraction=0, soft_mask="feature")
    assert feature["train"]["soft_mask"][0] == [1, 1, 1, 1, 0, 0, 0, 0]
    assert feature["train"]["input_ids"][0] == ids(tokenizer, "ACGTACGT")
    dropped = load_genome_windows(path, tokenizer, window_length=8, validation_fraction=0, soft_mask="drop")
    assert dropped["train"]["start"] == [4]
    with pytest.raises(GenomeDataError, match="upper-case"):
        load_genome_windows(path, tokenizer, window_length=9, validation_fraction=0, soft_mask="drop")


def test_short_records_are_skipped_with_a_count(write_fasta, tokenizer, caplog):
    path = write_fasta(">long\nACGTACGT\n>short\nACG\n")
    with caplog.at_level(logging.WARNING):
        ds = load_genome_windows(path, tokenizer, window_length=8, validation_fraction=0)
    assert ds["train"]["record"] == ["long"]
    assert "Skipped 1 of 2 records" in caplog.text
    with pytest.raises(GenomeDataError, match="No training window"):
        load_genome_windows(path, tokenizer, window_length=100, validation_fraction=0)


@pytest.mark.parametrize(
    "content, match",
    [
        (">r\nACGT1ACG\n", r"Invalid character '1' at position 5 of record 'r'"),
        (">r\nACGT\n>p\nMKVLEFQP\n", r"record 'p'.*protein"),
        (">r\nAC-GT\n", r"'-' at position 3.*gaps"),
        ("ACGT\n>r\nACGT\n", r"not a FASTA file: line 1"),
        (">r\n\n>s\nACGT\n", r"Record 'r' .* empty sequence"),
        ("", r"empty: it holds no FASTA records"),
        (b">r\nAC\x00\x01GT\n", r"binary file"),
    ],
)
def test_bad_fasta_errors_name_the_problem(write_fasta, tokenizer, content, match):
    path = write_fasta(content)
    with pytest.raises(GenomeDataError, match=match) as info:
        load_genome_windows(path, tokenizer, window_length=2, validation_fraction=0)
    assert path in str(info.value)


def test_truncated_gzip_and_missing_file(tmp_path, tokenizer, random_dna):
    path = tmp_path / "cut.fa.gz"
    data = gzip.compress(f">r\n{random_dna(5000)}\n".encode())
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(GenomeDataError, match="corrupt or truncated gzip"):
        load_genome_windows(str(path), tokenizer, window_length=10)
    with pytest.raises(FileNotFoundError, match="nope.fa"):
        load_genome_windows(str(tmp_path / "nope.fa"), tokenizer)


def test_bad_arguments(write_fasta, tokenizer):
    path = write_fasta(">r\nACGT\n")
    for kwargs, match in [
        ({"window_length": 0}, "window_length"),
        ({"stride": 0}, "stride"),
        ({"validation_fraction": 1.0}, "validation_fraction"),
        ({"split_by": "x"}, "split_by"),
        ({"soft_mask": "x"}, "soft_mask"),
    ]:
        with pytest.raises(ValueError, match=match):
            load_genome_windows(path, tokenizer, **kwargs)


def test_shipped_genome_loads(tokenizer):
    ds = load_genome_windows(default_genome_path(), tokenizer, window_length=512)
    assert len(ds["train"]) > 500 and len(ds["validation"]) > 10
    assert all(len(w) == 512 for w in ds["train"][:5]["input_ids"])


def test_streaming_yields_the_same_windows(write_fasta, tokenizer, random_dna):
    paths = [write_fasta(f">a\n{random_dna(90)}\n", "a.fa"), write_fasta(f">b\n{random_dna(70, 1)}\n", "b.fa")]
    eager = load_genome_windows(paths, tokenizer, window_length=30, validation_fraction=0)["train"]
    stream = stream_genome_windows(paths, tokenizer, window_length=30)
    assert stream.n_shards == 2
    assert [list(x["input_ids"]) for x in stream] == eager["input_ids"]


def test_csv_folder_loads_like_the_nt_benchmark(shared_dir):
    ds = load_sequence_dataset(shared_dir / "data/tasks/dnabert2_sample", label_column="label")
    assert set(ds) == {"train", "validation", "test"}
    assert len(ds["train"]) == 15 and len(ds["train"][0]["sequence"]) == 101
    assert ds["train"].features["label"].dtype == "int64"


def test_csv_errors(tmp_path):
    no_column = tmp_path / "a.csv"
    no_column.write_text("seq,label\nACGT,1\n")
    with pytest.raises(GenomeDataError, match=r"no 'sequence' column; columns found: \['seq', 'label'\]"):
        load_sequence_dataset(no_column)
    bad_label = tmp_path / "b.csv"
    bad_label.write_text("sequence,label\nACGT,1\nACGT,yes\n")
    with pytest.raises(GenomeDataError, match=r"Label 'yes' in row 2"):
        load_sequence_dataset(bad_label, label_column="label")
    bad_char = tmp_path / "c.csv"
    bad_char.write_text("sequence,label\nACGT,1\nAC7T,0\n")
    with pytest.raises(GenomeDataError, match=r"'7' at position 3 of record 'train row 2'"):
        load_sequence_dataset(bad_char)


def test_windows_from_sequences(tokenizer):
    ds = windows_from_sequences([("a", "ACGTACGT"), ("b", "AC")], tokenizer, window_length=4)
    assert ds["record"] == ["a", "a"] and ds["input_ids"][1] == ids(tokenizer, "ACGT")


def test_fasta_index_uses_fai_when_present(write_fasta, monkeypatch, caplog):
    from birdie_hf.data import fasta, index_fasta

    path = write_fasta(">a desc\nACGT\nAC\n>b\nGG\n")
    assert index_fasta(path) == [("a", 6), ("b", 2)]
    with open(path + ".fai", "w") as handle:
        handle.write("a\t6\t8\t4\t5\nb\t2\t19\t2\t3\n")
    monkeypatch.setattr(fasta, "scan_fasta", lambda *args, **kwargs: pytest.fail("read the FASTA despite the .fai"))
    with caplog.at_level(logging.WARNING):
        assert index_fasta(path) == [("a", 6), ("b", 2)]
    assert not caplog.text


@pytest.mark.slow
def test_streaming_two_ranks_two_workers_see_every_window_once(shared_dir, tokenizer):
    from datasets.distributed import split_dataset_by_node
    from torch.utils.data import DataLoader

    paths = [
        str(shared_dir / "data/genomes/klebsiella_pneumoniae_NTUH-K2044.fna.gz"),
        str(shared_dir / "data/genomes/klebsiella_pneumoniae_MGH78578.fna.gz"),
    ]
    stream = stream_genome_windows(paths, tokenizer, window_length=1024, windows_per_shard=512)
    assert stream.n_shards % 4 == 0 or stream.n_shards > 16
    seen = []
    for rank in range(2):
        part = split_dataset_by_node(stream, rank=rank, world_size=2).select_columns(["record", "start"])
        loader = DataLoader(part, batch_size=256, num_workers=2)
        for batch in loader:
            seen += list(zip(batch["record"], batch["start"].tolist()))
    assert len(seen) == len(set(seen)), "a window was produced twice"
    expected = load_genome_windows(paths, tokenizer, window_length=1024, validation_fraction=0)["train"]
    assert set(seen) == set(zip(expected["record"], expected["start"]))


def test_n_rich_windows_are_counted_per_file(write_fasta, tokenizer, caplog):
    clean = write_fasta(">c\nACGTACGTACGT\n", "clean.fa")
    gappy = write_fasta(">g\nACGTNNNNACGT\n>h\nNNNNNNNNACGT\n", "gappy.fa")
    with caplog.at_level(logging.WARNING):
        ds = load_genome_windows(
            [clean, gappy], tokenizer, window_length=4, validation_fraction=0, max_n_fraction=0.25
        )["train"]
    assert list(zip(ds["record"], ds["start"])) == [("c", 0), ("c", 4), ("c", 8), ("g", 0), ("g", 8), ("h", 8)]
    assert f"Dropped 3 windows with more than 25% N from {gappy!r} (3 windows kept)" in caplog.text
    assert repr(clean) not in caplog.text


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"window_length": 0}, r"`window_length` must be a positive integer, got 0"),
        ({"window_length": -8}, r"`window_length` must be a positive integer, got -8"),
        ({"window_length": 4, "stride": 0}, r"`stride` must be a positive integer, got 0"),
        ({"window_length": 4, "stride": -1}, r"`stride` must be a positive integer, got -1"),
        ({"window_length": 4.0}, r"`window_length` must be a positive integer, got 4.0"),
    ],
)
def test_window_arguments_are_checked_by_every_loader(write_fasta, tokenizer, kwargs, match):
    from birdie_hf.data import plan_window_shards

    path = write_fasta(">r\nACGTACGT\n")
    window_length, stride = kwargs["window_length"], kwargs.get("stride")
    with pytest.raises(ValueError, match=match):
        stream_genome_windows(path, tokenizer, **kwargs)
    with pytest.raises(ValueError, match=match):
        plan_window_shards([path], window_length, stride if stride is not None else 4)
    with pytest.raises(ValueError, match=match):
        windows_from_sequences([("r", "ACGTACGT")], tokenizer, **kwargs)
    with pytest.raises(ValueError, match=match):
        load_genome_windows(path, tokenizer, **kwargs)
    with pytest.raises(ValueError, match=r"`windows_per_shard` must be a positive integer, got 0"):
        stream_genome_windows(path, tokenizer, window_length=4, windows_per_shard=0)
    with pytest.raises(ValueError, match=r"`max_n_fraction` must be in \[0, 1\], got 1.5"):
        stream_genome_windows(path, tokenizer, window_length=4, max_n_fraction=1.5)


@pytest.mark.parametrize("where, line", [(">\nACGT\n>s\nACGT\n", 1), (">r\nACGT\n>  \nACGT\n", 3)])
def test_empty_header_is_the_same_clear_error_everywhere(write_fasta, tokenizer, where, line):
    from birdie_hf.data import index_fasta

    path = write_fasta(where)
    match = rf"Empty FASTA header on line {line} of '{path}'"
    with pytest.raises(GenomeDataError, match=match):
        list(iter_fasta(path))
    with pytest.raises(GenomeDataError, match=match):
        index_fasta(path)
    with pytest.raises(GenomeDataError, match=match):
        load_genome_windows(path, tokenizer, window_length=2, validation_fraction=0)
    with pytest.raises(GenomeDataError, match=match):
        stream_genome_windows(path, tokenizer, window_length=2)


@pytest.mark.parametrize(
    "content",
    [
        b"\xef\xbb\xbf>r1 first\nACGT\nAC\n>r2\nGGGG\n",  # UTF-8 byte-order mark
        b">r1 first\r\nACGT\r\n\r\nAC\r\n>r2\r\nGGGG\r\n",  # Windows
        b">r1 first\rACGT\rAC\r\r>r2\rGGGG\r",  # old Mac OS: lone carriage returns
        b"\xef\xbb\xbf>r1 first\rACGT\rAC\r>r2\rGGGG",  # both, and no final line break
    ],
    ids=["bom", "crlf", "cr", "bom-cr"],
)
def test_byte_order_mark_and_every_line_ending_are_read_alike(write_fasta, tokenizer, content):
    from birdie_hf.data import index_fasta

    path = write_fasta(content)
    assert [(r.name, r.sequence) for r in iter_fasta(path)] == [("r1", b"ACGTAC"), ("r2", b"GGGG")]
    assert index_fasta(path) == [("r1", 6), ("r2", 4)]
    eager = load_genome_windows(path, tokenizer, window_length=2, validation_fraction=0)["train"]
    assert eager["input_ids"] == [ids(tokenizer, pair) for pair in ("AC", "GT", "AC", "GG", "GG")]
    stream = stream_genome_windows(path, tokenizer, window_length=2)
    assert [list(x["input_ids"]) for x in stream] == eager["input_ids"]


def test_utf16_fasta_is_named_as_such(write_fasta):
    path = write_fasta(">r\nACGT\n".encode("utf-16"))
    with pytest.raises(GenomeDataError, match="UTF-16"):
        list(iter_fasta(path))


def test_line_endings_split_across_read_blocks(write_fasta, monkeypatch):
    from birdie_hf.data import fasta

    content = b"\xef\xbb\xbf>a\r\nACG\r\nTT\r>b x\rGG\n\n>c\nA" + b"C" * 20 + b"\r\n"
    expected = [("a", b"ACGTT"), ("b", b"GG"), ("c", b"A" + b"C" * 20)]
    path = write_fasta(content)
    for block in (1, 2, 3, 5, 7):
        monkeypatch.setattr(fasta, "_READ_BLOCK", block)
        assert [(r.name, r.sequence) for r in iter_fasta(path)] == expected, block


def test_duplicate_record_names_keep_both_records(write_fasta, tokenizer, caplog):
    path = write_fasta(">r\nAAAAAAAA\n>r\nCCCCCCCC\n")
    with caplog.at_level(logging.WARNING):
        ds = load_genome_windows(path, tokenizer, window_length=4, validation_fraction=0)["train"]
    assert ds["input_ids"] == [ids(tokenizer, s) for s in ("AAAA", "AAAA", "CCCC", "CCCC")]
    assert "'r' x2" in caplog.text


def test_windows_are_stored_as_one_byte_per_base(write_fasta, tokenizer, random_dna):
    import tracemalloc

    bases = 1_000_000
    path = write_fasta(f">a\n{random_dna(bases // 2)}\n>b\n{random_dna(bases // 2, seed=1)}\n")
    load_genome_windows(write_fasta(">w\nACGTACGT\n", "warm.fa"), tokenizer, window_length=4)  # lazy imports
    tracemalloc.start()
    try:
        ds = load_genome_windows(path, tokenizer, window_length=500, validation_fraction=0.1)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    train = ds["train"]
    assert train.features["input_ids"].feature.dtype == "uint8"
    assert sum(split.data.nbytes for split in ds.values()) < 1.2 * bases
    assert peak < 12 * bases, f"{peak / bases:.1f} bytes per base at peak"
    # Consumers still see plain ids: lists of int by default, int64 tensors in the torch format.
    assert isinstance(train[0]["input_ids"][0], int) and len(train[0]["input_ids"]) == 500
    assert train.with_format("torch")[0]["input_ids"].dtype == torch.int64


def test_reverse_complement_and_soft_mask_rows_stay_aligned(write_fasta, tokenizer):
    path = write_fasta(">r\nacGTAAcgTTGGccAA\n")
    ds = load_genome_windows(
        path, tokenizer, window_length=4, stride=4, validation_fraction=0, reverse_complement=True, soft_mask="feature"
    )["train"]
    assert ds["strand"] == ["+", "-"] * 4 and ds["start"] == [0, 0, 4, 4, 8, 8, 12, 12]
    assert ds["input_ids"][2:4] == [ids(tokenizer, "AACG"), ids(tokenizer, "CGTT")]
    assert ds["soft_mask"][2:4] == [[0, 0, 1, 1], [1, 1, 0, 0]]


def test_windows_built_in_many_arrow_chunks_read_back_in_order(write_fasta, tokenizer, random_dna, monkeypatch):
    from birdie_hf.data import windows

    path = write_fasta(f">a\n{random_dna(50)}\n>b\n{random_dna(33, seed=1)}\n>c\n{random_dna(21, seed=2)}\n")
    kwargs = dict(window_length=4, stride=3, validation_fraction=0.2, reverse_complement=True, soft_mask="feature")
    whole = load_genome_windows(path, tokenizer, **kwargs)
    monkeypatch.setattr(windows, "_ARROW_CHUNK_VALUES", 12)
    chunked = load_genome_windows(path, tokenizer, **kwargs)
    assert chunked["train"].data.table.column("input_ids").num_chunks > 5
    for split in ("train", "validation"):
        assert chunked[split].to_dict() == whole[split].to_dict()
    assert whole["train"]["strand"][:4] == ["+", "-", "+", "-"]
