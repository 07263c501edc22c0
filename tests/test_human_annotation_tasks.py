"""The NT-style human tasks: labels against the annotation on hand-picked sites, strands, blocks, GC matching."""

import gzip
import json
from collections import Counter

import numpy as np
import pytest
from testing_utils import load_recipe

from birdie_hf.cli import RecipeError
from birdie_hf.evaluation.genome_tasks import write_genome_tasks
from birdie_hf.evaluation.human_annotation_tasks import (
    ANNOTATION_TABLES,
    HUMAN_ANNOTATION_TASK_NAMES,
    PROMOTER_UPSTREAM,
    HumanAnnotationTaskConfig,
    _Chromosome,
    _oriented_start,
    _splice_decoys,
    _splice_sites,
    build_human_annotation_tasks,
    corpus_holds_chromosome,
    read_annotation_table,
    read_chromosome,
    shared_annotation_paths,
)
from birdie_hf.evaluation.task_files import read_task_split
from birdie_hf.vocabulary import reverse_complement


HEADER = "chrom\tstart\tend\tgene_name\tStrand\tgene_type\tlevel\tSource\n"


def write_table(folder, name, rows, header=HEADER):
    path = folder / f"{name}.tsv.gz"
    with gzip.open(path, "wt") as handle:
        handle.write(header)
        for row in rows:
            handle.write("\t".join(str(value) for value in row) + "\n")
    return path


@pytest.fixture
def toy_chromosome(tmp_path):
    """400 kb of random bases on `chrT` with 40 four-exon genes (alternating strands, 100-base exons, 500-base
    introns) whose internal boundaries carry canonical GT/AG; 1-based coordinates as the hg19 tables use."""
    rng = np.random.default_rng(3)
    bases = np.frombuffer(b"ACGT", dtype=np.uint8)[rng.integers(0, 4, 400_000)].copy()
    genes, exons, transcripts = [], [], []
    expected = {"donor": [], "acceptor": []}  # (0-based anchor, strand)
    for g in range(40):
        strand = "+" if g % 2 == 0 else "-"
        first = 5_000 + g * 9_700  # 1-based first base of the gene
        spans = [(first + k * 600, first + k * 600 + 99) for k in range(4)]  # 1-based inclusive exons
        for k, (start, end) in enumerate(spans):
            exons.append(("chrT", start, end, f"G{g}", strand, "protein_coding", 2, "HAVANA"))
            if k < 3:  # intron after this exon (genomic order): plant GT..AG on the gene's strand
                intron_first, intron_last = end + 1, spans[k + 1][0] - 1  # 1-based
                if strand == "+":
                    bases[intron_first - 1 : intron_first + 1] = np.frombuffer(b"GT", dtype=np.uint8)
                    bases[intron_last - 2 : intron_last] = np.frombuffer(b"AG", dtype=np.uint8)
                    expected["donor"].append((intron_first - 1, 1))
                    expected["acceptor"].append((spans[k + 1][0] - 1, 1))
                else:  # read on the minus strand, the intron starts at its genomic end
                    bases[intron_last - 2 : intron_last] = np.frombuffer(b"AC", dtype=np.uint8)
                    bases[intron_first - 1 : intron_first + 1] = np.frombuffer(b"CT", dtype=np.uint8)
                    expected["donor"].append((intron_last - 1, -1))
                    expected["acceptor"].append((end - 1, -1))
        genes.append(("chrT", spans[0][0], spans[-1][1], f"G{g}", strand, "protein_coding", 2, "HAVANA"))
        transcripts.append(genes[-1])
    sequence = bytes(bases)
    fasta = tmp_path / "chrT.fa"
    fasta.write_text(">T\n" + sequence.decode() + "\n")
    plain = "chrom\tstart\tend\n"
    tables = {
        "genes": write_table(tmp_path, "genes", genes),
        "transcripts": write_table(tmp_path, "transcripts", transcripts),
        "exons": write_table(tmp_path, "exons", exons),
        "tss": write_table(
            tmp_path,
            "tss",
            [
                (c, s, s, n, st, t, l, o) if st == "+" else (c, e, e, n, st, t, l, o)
                for c, s, e, n, st, t, l, o in genes
            ],
        ),  # fmt: skip
        "cdss": write_table(tmp_path, "cdss", []),
        "utrs": write_table(tmp_path, "utrs", []),
        "cpg_islands": write_table(tmp_path, "cpg_islands", [], plain),
        "ctcf": write_table(tmp_path, "ctcf", [], plain),
        "blacklist_v2": write_table(tmp_path, "blacklist_v2", [("chrT", 1, 1000)], plain),
    }
    return {"fasta": fasta, "tables": tables, "sequence": sequence, "expected": expected}


def toy_config(**overrides):
    settings = dict(chrom="chrT", block_size=20_000, examples_per_class=(1000, 1000, 1000), seed=0)
    return HumanAnnotationTaskConfig(**{**settings, **overrides})


def oriented(sequence: bytes, anchor: int, strand: int, index: int, length: int) -> str:
    start = int(_oriented_start(np.asarray([anchor]), np.asarray([strand]), index, length)[0])
    text = sequence[start : start + length].decode()
    return reverse_complement(text) if strand < 0 else text


def test_annotation_table_is_read_as_zero_based_half_open(tmp_path):
    path = write_table(
        tmp_path, "exons", [("chr1", 11, 20, "A", "-", "lncRNA", 2, "HAVANA"), ("chr2", 5, 5, "B", "+", "x", 1, "E")]
    )
    table = read_annotation_table(path, "chr1")
    assert table.start.tolist() == [10] and table.end.tolist() == [20]
    assert table.strand.tolist() == [-1] and table.gene_type == ["lncRNA"]
    bad = write_table(tmp_path, "bad", [("chr1", 30, 20, "A", "+", "x", 1, "E")])
    with pytest.raises(ValueError, match="line 2: bad interval 30-20"):
        read_annotation_table(bad, "chr1")
    with pytest.raises(ValueError, match=r"no \['end'\] column"):
        read_annotation_table(write_table(tmp_path, "short", [], "chrom\tstart\n"), "chr1")


def test_splice_sites_are_the_internal_canonical_boundaries_on_each_strand(toy_chromosome):
    config = toy_config()
    read = {name: read_annotation_table(path, "chrT") for name, path in toy_chromosome["tables"].items()}
    chromosome = _Chromosome(toy_chromosome["sequence"], read["blacklist_v2"], config)
    for kind, index_pair, pair in (("donor", 0, "GT"), ("acceptor", -2, "AG")):
        anchors, strands, non_canonical = _splice_sites(chromosome, read["exons"], read["transcripts"], kind)
        assert sorted(zip(anchors.tolist(), strands.tolist())) == sorted(toy_chromosome["expected"][kind])
        assert non_canonical == 0
        for anchor, strand in zip(anchors.tolist(), strands.tolist()):
            text = oriented(toy_chromosome["sequence"], anchor, strand, 100, 200)
            assert text[100 + index_pair : 100 + index_pair + 2] == pair
        decoys, decoy_strands = _splice_decoys(chromosome, read["genes"], read["exons"], kind, 50)
        boundaries = np.concatenate([read["exons"].start, read["exons"].end - 1])
        assert np.abs(decoys[:, None] - boundaries[None, :]).min() >= 50
        for anchor, strand in list(zip(decoys.tolist(), decoy_strands.tolist()))[::97]:
            assert (
                oriented(toy_chromosome["sequence"], anchor, strand, 100, 200)[100 + index_pair : 102 + index_pair]
                == pair
            )
            gene = [
                (s, e, st)
                for s, e, st in zip(read["genes"].start, read["genes"].end, read["genes"].strand)
                if s <= anchor < e
            ]
            assert gene and gene[0][2] == strand  # inside a gene body, read on the gene's strand


def test_splice_tasks_label_planted_sites_with_disjoint_block_splits(toy_chromosome, tmp_path):
    suite = build_human_annotation_tasks(
        toy_chromosome["fasta"],
        toy_chromosome["tables"],
        toy_config(),
        tasks=("human_splice_donor", "human_splice_acceptor"),
    )
    sequence = toy_chromosome["sequence"]
    for task, kind, index_pair, pair in (
        ("human_splice_donor", "donor", 0, "GT"),
        ("human_splice_acceptor", "acceptor", -2, "AG"),
    ):
        expected = {oriented(sequence, a, s, 100, 200) for a, s in toy_chromosome["expected"][kind]}
        rows = suite.tasks[task]
        positives = [text for split in rows.values() for text, label, _ in split if label == 1]
        assert set(positives) <= expected and len(positives) >= 0.8 * len(expected)
        for split in rows.values():
            assert Counter(label for _, label, _ in split) == {0: len(split) // 2, 1: len(split) // 2}
            assert all(text[100 + index_pair : 102 + index_pair] == pair for text, _, _ in split)
        # A block belongs to one split; no sequence (either strand) is in two.
        split_of_group = {}
        seen = {}
        for name, split in rows.items():
            for text, _, group in split:
                assert split_of_group.setdefault(group, name) == name
                key = min(text, reverse_complement(text))
                assert seen.setdefault(key, name) == name
        # GC matching: the classes' GC histograms (50 bins) are equal in every split.
        for split in rows.values():
            bins = lambda label: sorted(
                min(int((t.count("G") + t.count("C")) / len(t) * 50), 49) for t, y, _ in split if y == label
            )  # noqa: E731
            assert bins(0) == bins(1)
        assert suite.metadata["tasks"][task]["gc_only_test_mcc"] < 0.2
    # Written as the suite's CSVs, with groups.
    write_genome_tasks(suite, tmp_path / "out", metadata_name="human_annotation_tasks.json")
    sequences, labels, groups = read_task_split(tmp_path / "out" / "human_splice_donor" / "test.csv")
    assert len(sequences) == len(suite.tasks["human_splice_donor"]["test"]) and groups[0].startswith("chrT:block")
    assert (tmp_path / "out" / "human_annotation_tasks.json").is_file()


def test_missing_chromosome_and_bad_settings_are_named(toy_chromosome):
    with pytest.raises(ValueError, match="no record named 'chr9'"):
        read_chromosome(toy_chromosome["fasta"], "chr9")
    with pytest.raises(ValueError, match="window_lengths` names unknown tasks"):
        HumanAnnotationTaskConfig(window_lengths={"human_promotor": 300})
    with pytest.raises(ValueError, match="must exceed 249"):
        HumanAnnotationTaskConfig(window_lengths={"human_promoter": 200})
    with pytest.raises(ValueError, match="unknown human annotation tasks"):
        build_human_annotation_tasks(toy_chromosome["fasta"], toy_chromosome["tables"], toy_config(), tasks=("x",))


@pytest.fixture(scope="module")
def chr20(shared_dir):
    fasta, tables = shared_annotation_paths(shared_dir)
    config = HumanAnnotationTaskConfig()
    read = {name: read_annotation_table(tables[name], "chr20") for name in ANNOTATION_TABLES}
    return {
        "config": config,
        "read": read,
        "chromosome": _Chromosome(read_chromosome(fasta, "chr20"), read["blacklist_v2"], config),
    }


def test_hand_picked_chr20_sites(chr20):
    """Sites read off the hg19 tables by hand: DEFB125 (+) exon 67,891-68,000 of transcript 67,891-77,735 and
    DEFB128 (-) exons 170,216-170,322 (its TSS at 170,322) and 168,494-168,759 (1-based, inclusive)."""
    chromosome, read = chr20["chromosome"], chr20["read"]
    sequence = chromosome.sequence
    donors = set(
        zip(*(a.tolist() for a in _splice_sites(chromosome, read["exons"], read["transcripts"], "donor")[:2]))
    )
    acceptors = set(
        zip(*(a.tolist() for a in _splice_sites(chromosome, read["exons"], read["transcripts"], "acceptor")[:2]))
    )
    assert (68000, 1) in donors  # first intron base after exon end 68,000 (1-based) = 0-based 68,000
    assert sequence[68000:68002] == b"GT"
    assert (170214, -1) in donors  # DEFB128 exon 1 starts at 170,216; its intron (read on -) starts at 170,215
    assert oriented(sequence, 170214, -1, 100, 200)[100:102] == "GT"
    assert (168758, -1) in acceptors  # DEFB128 exon 2 ends at 168,759: on -, its first base
    assert oriented(sequence, 168758, -1, 100, 200)[98:100] == "AG"
    # Transcript ends are not splice sites: DEFB125 starts at 67,891 and ends at 77,735.
    assert (67890, 1) not in acceptors and (77735, 1) not in donors
    # The promoter window of DEFB128's TSS (170,322, minus strand): base 249 is the TSS read on the minus strand.
    window = oriented(sequence, 170321, -1, PROMOTER_UPSTREAM, 300)
    assert window == reverse_complement(sequence[170321 - 50 : 170321 + 250].decode())
    assert window[PROMOTER_UPSTREAM] == reverse_complement(sequence[170321:170322].decode())


@pytest.mark.slow
def test_chr20_tasks_build_in_one_command_gc_matched(shared_dir, tmp_path, capsys):
    """`make_genome_tasks.py --human_chr20` builds the six tasks from ../shared; every split has examples, a GC-only
    classifier scores near 0, and a corpus holding chr20 is refused by name while the chr22 segments pass."""
    recipe = load_recipe("make_genome_tasks")
    out = tmp_path / "tasks"
    chr22 = shared_dir / "data" / "genomes" / "human_chr22_segments.fa.gz"
    recipe.main(["--human_chr20", "--output_dir", str(out), "--check_leakage", str(chr22)])
    metadata = json.loads((out / "human_annotation_tasks.json").read_text())
    assert set(metadata["tasks"]) == set(HUMAN_ANNOTATION_TASK_NAMES)
    suite = json.loads((out / "suite.json").read_text())
    for task, info in metadata["tasks"].items():
        assert min(info["examples"].values()) >= 500, (task, info["examples"])
        assert abs(info["gc_only_test_mcc"]) < 0.1, (task, info["gc_only_test_mcc"])
        assert suite["leakage"]["tasks"][task]["test"]["occurring"] == 0
        sequences, labels, groups = read_task_split(out / task / "test.csv")
        assert len(sequences) == info["examples"]["test"] and sorted(set(labels)) == [0, 1]
        assert {len(s) for s in sequences} == {info["window_length"]}
    assert "human_ctcf" in capsys.readouterr().out
    fasta, _ = shared_annotation_paths(shared_dir)
    refusal = corpus_holds_chromosome({"human_promoter": out / "human_promoter"}, [chr22, fasta])
    assert refusal.startswith(f"pre-training corpus {str(fasta)!r} contains the held-out human chromosome")
    assert corpus_holds_chromosome({"human_promoter": out / "human_promoter"}, [chr22]) is None


def test_evaluate_refuses_a_corpus_that_holds_the_held_out_chromosome(toy_chromosome, tmp_path):
    """The instrument's leakage check names the corpus file that is the evaluation chromosome, in one line."""
    evaluate = load_recipe("evaluate")
    sequence = toy_chromosome["sequence"].decode()
    folder = tmp_path / "human_ctcf"
    folder.mkdir()
    for split in ("train", "dev", "test"):
        rows = [(sequence[i : i + 100], i % 2, f"b{i}") for i in range(10_000, 60_000, 1_000)]
        (folder / f"{split}.csv").write_text("sequence,label,group\n" + "".join(f"{s},{y},{g}\n" for s, y, g in rows))
    unrelated = tmp_path / "other.fa"
    unrelated.write_text(">x\n" + "ACGT" * 500 + "\n")
    evaluate.check_leakage({"human_ctcf": folder}, [str(unrelated)])
    with pytest.raises(RecipeError, match=r"'.*chrT\.fa' contains the held-out human chromosome: 50 of 50"):
        evaluate.check_leakage({"human_ctcf": folder}, [str(unrelated), str(toy_chromosome["fasta"])])
