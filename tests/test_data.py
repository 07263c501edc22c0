import gzip
import logging

import numpy as np
import pytest

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
    ds = load_genome_windows(write_fasta(f">chr\n{seq}\n"), tokenizer, window_length=4, stride=3,
                             validation_fraction=0)["train"]
    assert ds["start"] == [0, 3, 6] and ds["end"] == [4, 7, 10]
    assert ds["input_ids"] == [ids(tokenizer, seq[s:s + 4]) for s in (0, 3, 6)]
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
    ds = load_genome_windows(write_fasta(text), tokenizer, window_length=50, validation_fraction=0.2,
                             split_by="record", seed=3)
    train, val = set(ds["train"]["record"]), set(ds["validation"]["record"])
    assert len(val) == 2 and not train & val and len(train) == 8


def test_reverse_complement_augmentation(write_fasta, tokenizer):
    ds = load_genome_windows(write_fasta(">r\nAACGTN\n"), tokenizer, window_length=6, validation_fraction=0,
                             reverse_complement=True, max_n_fraction=0.5)["train"]
    assert ds["strand"] == ["+", "-"]
    assert ds["input_ids"][1] == ids(tokenizer, "NACGTT")
    assert ds["start"] == [0, 0]


def test_n_fraction_cap_drops_windows(write_fasta, tokenizer, caplog):
    with caplog.at_level(logging.WARNING):
        ds = load_genome_windows(write_fasta(">r\nACGTNNNNACGT\n"), tokenizer, window_length=4,
                                 validation_fraction=0, max_n_fraction=0.25)["train"]
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
    for kwargs, match in [({"window_length": 0}, "window_length"), ({"stride": 0}, "stride"),
                          ({"validation_fraction": 1.0}, "validation_fraction"), ({"split_by": "x"}, "split_by"),
                          ({"soft_mask": "x"}, "soft_mask")]:
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


def test_fasta_index_uses_fai_when_present(write_fasta):
    from birdie_hf.data import index_fasta

    path = write_fasta(">a desc\nACGT\nAC\n>b\nGG\n")
    assert index_fasta(path) == [("a", 6), ("b", 2)]
    with open(path + ".fai", "w") as handle:
        handle.write("a\t6\t8\t4\t5\nb\t2\t20\t2\t3\n")
    assert index_fasta(path) == [("a", 6), ("b", 2)]


@pytest.mark.slow
def test_streaming_two_ranks_two_workers_see_every_window_once(shared_dir, tokenizer):
    from datasets.distributed import split_dataset_by_node
    from torch.utils.data import DataLoader

    paths = [str(shared_dir / "data/genomes/klebsiella_pneumoniae_NTUH-K2044.fna.gz"),
             str(shared_dir / "data/genomes/klebsiella_pneumoniae_MGH78578.fna.gz")]
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
