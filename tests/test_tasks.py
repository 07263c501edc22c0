import pytest

from birdie_hf.evaluation.genbank import iter_genbank
from birdie_hf.evaluation.genbank_tasks import TaskSuiteConfig, _SplitAssigner, build_task_suite, write_task_suite
from birdie_hf.vocabulary import reverse_complement


def genbank_text(sequence, features):
    lines = [
        f"LOCUS       toy    {len(sequence)} bp    DNA     linear",
        "FEATURES             Location/Qualifiers",
        f"     source          1..{len(sequence)}",
    ]
    for kind, location in features:
        lines += [f"     {kind:<16}{location}", '                     /product="x"']
    lines.append("ORIGIN")
    for i in range(0, len(sequence), 60):
        chunk = sequence[i : i + 60].lower()
        lines.append(f"{i + 1:>9} " + " ".join(chunk[j : j + 10] for j in range(0, len(chunk), 10)))
    lines.append("//")
    return "\n".join(lines) + "\n"


def test_genbank_reader(tmp_path):
    path = tmp_path / "toy.gbk"
    path.write_text(
        genbank_text("ACGT" * 50, [("gene", "11..40"), ("CDS", "complement(51..<90)"), ("CDS", "join(1..5,7..9)")])
    )
    record = next(iter_genbank(str(path)))
    assert record.name == "toy" and record.sequence == "ACGT" * 50
    cds = [f for f in record.features if f.type == "CDS"]
    assert len(cds) == 1 and (cds[0].start, cds[0].end, cds[0].strand, cds[0].partial) == (50, 90, -1, True)
    assert record.features[1].qualifiers["product"] == "x"


def test_not_genbank(tmp_path):
    path = tmp_path / "x.gbk"
    path.write_text(">fasta\nACGT\n")
    with pytest.raises(ValueError, match="not a GenBank file"):
        next(iter_genbank(str(path)))


def test_split_assigner_drops_windows_across_blocks():
    class R:
        name, sequence = "r", "A" * 1000

    assigner = _SplitAssigner([R()], TaskSuiteConfig(window_length=100, block_size=250))
    assert assigner.split_of("r", 100) is not None
    assert assigner.split_of("r", 200) is None  # 200..300 crosses the edge at 250


def test_suite_on_the_shared_annotation(shared_dir, tmp_path):
    path = str(shared_dir / "data/genomes/bacterial_contigs.gbk")
    suite = build_task_suite(path, TaskSuiteConfig(seed=3))
    assert suite == build_task_suite(path, TaskSuiteConfig(seed=3))
    for task, splits in suite.items():
        seen = {}
        for split, rows in splits.items():
            assert rows, (task, split)
            labels = [label for _, label in rows]
            assert labels.count(0) == labels.count(1)  # balanced
            assert all(len(seq) == 100 and set(seq) <= set("ACGT") for seq, _ in rows)
            for seq, _ in rows:
                assert seen.setdefault(seq, split) == split, f"{task}: a window is in two splits"
    # Start-codon positives are centred on a start codon read on the gene's strand.
    positives = [seq for seq, label in suite["start_codon"]["train"] if label == 1]
    assert sum(seq[49:52] in ("ATG", "GTG", "TTG") for seq in positives) / len(positives) > 0.95
    negatives = [seq for seq, label in suite["start_codon"]["train"] if label == 0]
    assert all(seq[49:52] in ("ATG", "GTG", "TTG") for seq in negatives)
    counts = write_task_suite(suite, str(tmp_path))
    assert (tmp_path / "gene_strand" / "train.csv").read_text().startswith("sequence,label\n")
    assert counts["gene_strand"]["test"] == len(suite["gene_strand"]["test"])


def test_reverse_complement():
    assert reverse_complement("AACGTN") == "NACGTT"
