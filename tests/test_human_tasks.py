import csv
import random

import numpy as np
import pytest

import birdie_hf.evaluation.leakage as leakage
from birdie_hf.data import GenomeDataError, iter_fasta
from birdie_hf.evaluation.human_tasks import (
    HumanRepeatTaskConfig,
    build_human_repeat_task,
    parse_chr22_coordinates,
    pretraining_record_names,
    split_human_records,
    write_human_repeat_task,
    write_pretraining_fasta,
)
from birdie_hf.evaluation.leakage import find_occurrences, leakage_report
from birdie_hf.vocabulary import reverse_complement


W = 50  # window length of the toy task
HEADER_TAIL = " Homo sapiens (GRCh37, Ensembl Compara EPO catarrhini alignment, human rows)"


def random_bases(rng, n):
    return "".join(rng.choice("ACGT") for _ in range(n))


def window_of(kind, rng):
    """A 50-base window: U all upper (label 0), L all lower (1), T90 45 lower (1), T88 44 lower (dropped),
    U1 one lower base (dropped), M half lower (dropped), N upper with an N (dropped)."""
    bases = random_bases(rng, W)
    n_lower = {"U": 0, "L": W, "T90": 45, "T88": 44, "U1": 1, "M": 25, "N": 0}[kind]
    positions = set(rng.sample(range(W), n_lower))
    text = "".join(b.lower() if i in positions else b for i, b in enumerate(bases))
    if kind == "N":
        text = text[:20] + "N" + text[21:]
    return text


@pytest.fixture
def toy(tmp_path):
    """Coordinates 1-5001: boundary = 1 + int(0.8 * 5000) = 4001. Pre-training records start before it; held-out
    records start at 4001 + k * 200, so with stride 50 and 100-base blocks no window crosses a block."""
    rng = random.Random(7)
    pre_kinds = [
        ("chr22:1-200", ["L", "U", "T90", "U"]),
        ("chr22:1001-1200", ["U", "L", "M", "N"]),
        ("chr22:2001-2200", ["L", "U", "T88", "U1"]),
        ("chr22:3001-3300", ["U", "L", "L", "U", "U", "L"]),
    ]
    held_kinds = [
        ("chr22:4001-4200", ["U", "L", "L", "U"]),
        ("chr22:4201-4400", ["L", "U", "M", "U"]),
        ("chr22:4401-4600", ["U", "L", "N", "L"]),
        ("chr22:4601-4800", ["L", "U", "U", "L"]),
        ("chr22:4801-5001", ["U", "L", "L", "U"]),
    ]
    records = {}
    kinds = {}
    for name, window_kinds in pre_kinds + held_kinds:
        windows = [window_of(kind, rng) for kind in window_kinds]
        for window, kind in zip(windows, window_kinds):
            kinds[window.upper()] = kind
        records[name] = "".join(windows)
    records["chr22:4801-5001"] += "a"
    # Leak: a held-out upper-case window planted lowercase, and another one's reverse complement, in a pre-training
    # record; the N fillers keep every 50-base window of this record out of the task itself.
    leak_forward = records["chr22:4001-4200"][:W]
    leak_reverse = records["chr22:4601-4800"][2 * W : 3 * W]
    assert kinds[leak_forward] == kinds[leak_reverse] == "U"
    records["chr22:3401-3520"] = "NNNNN" + leak_forward.lower() + "NNNNN" + reverse_complement(leak_reverse) + "N" * 10
    order = ["chr22:1-200", "chr22:1001-1200", "chr22:2001-2200", "chr22:3001-3300", "chr22:3401-3520"] + [
        name for name, _ in held_kinds
    ]
    path = tmp_path / "toy_chr22.fa"
    with open(path, "w") as handle:
        for name in order:
            handle.write(f">{name}{HEADER_TAIL}\n")
            for i in range(0, len(records[name]), 60):
                handle.write(records[name][i : i + 60] + "\n")
    config = HumanRepeatTaskConfig(window_length=W, block_size=100, max_examples_per_class=None, seed=3)
    return {
        "path": str(path),
        "records": records,
        "order": order,
        "kinds": kinds,
        "config": config,
        "heldout": [name for name, _ in held_kinds],
        "leaks": (leak_forward, leak_reverse),
    }


def reference_labels(records, names):
    """Straightforward per-window labels: {UPPER_SEQUENCE: label} for the windows at stride W."""
    labels = {}
    for name in names:
        sequence = records[name]
        for start in range(0, len(sequence) - W + 1, W):
            window = sequence[start : start + W]
            if set(window.upper()) - set("ACGT"):
                continue
            lower = sum(c.islower() for c in window)
            if lower == 0:
                labels[window.upper()] = 0
            elif lower >= 0.9 * W:
                labels[window.upper()] = 1
    return labels


def test_parse_chr22_coordinates():
    assert parse_chr22_coordinates("chr22:16050000-16051000") == ("chr22", 16050000, 16051000)
    assert parse_chr22_coordinates(">chr22:17443629-17448117" + HEADER_TAIL) == ("chr22", 17443629, 17448117)
    with pytest.raises(GenomeDataError, match="'contig_7'.*chr22:START-END"):
        parse_chr22_coordinates("contig_7")
    with pytest.raises(GenomeDataError, match="before start"):
        parse_chr22_coordinates("chr22:200-100")


def test_bad_header_names_the_record(tmp_path):
    path = tmp_path / "bad.fa"
    path.write_text(">chr22:1-8\nACGTACGT\n>scaffold_3 human\nACGT\n")
    with pytest.raises(GenomeDataError, match="scaffold_3"):
        split_human_records(str(path))


def test_config_validation():
    with pytest.raises(ValueError, match="min_repeat_fraction"):
        HumanRepeatTaskConfig(min_repeat_fraction=0.3, max_nonrepeat_fraction=0.5)
    with pytest.raises(ValueError, match="drop_leaked"):
        HumanRepeatTaskConfig(window_length=20)
    HumanRepeatTaskConfig(window_length=20, block_size=100, drop_leaked=False)


def test_region_split_and_pretraining_fasta(toy, tmp_path):
    pretraining, heldout = split_human_records(toy["path"], toy["config"])
    assert [r.name for r in heldout] == toy["heldout"]
    assert [r.name for r in pretraining] == [n for n in toy["order"] if n not in toy["heldout"]]
    assert pretraining_record_names(toy["path"], toy["config"]) == [r.name for r in pretraining]

    out = tmp_path / "pre" / "human_pretraining.fa.gz"
    counts = write_pretraining_fasta(toy["path"], out, toy["config"])
    written = list(iter_fasta(out))
    assert [r.name for r in written] == [r.name for r in pretraining]
    assert [r.sequence for r in written] == [toy["records"][r.name].encode() for r in pretraining]  # mask kept
    assert counts == {
        "records": 5,
        "bases": sum(len(r.sequence) for r in pretraining),
        "heldout_records": 5,
        "heldout_bases": 1001,
    }
    assert not {r.name for r in written} & set(toy["heldout"])


def test_build_task_labels_splits_and_leak_drop(toy, tmp_path):
    records, config = toy["records"], toy["config"]
    task = build_human_repeat_task(toy["path"], config)
    meta = task.metadata
    assert set(task) == {"train", "dev", "test"}
    assert meta["heldout_start"] == 4001 and meta["coordinate_range"] == [1, 5001]
    assert meta["records"] == {"pretraining": 5, "heldout": 5, "excluded_overlapping": 0}
    assert meta["windows_crossing_blocks"] == 0

    pre_names = [n for n in toy["order"] if n not in toy["heldout"]]
    train_ref = reference_labels(records, pre_names)
    held_ref = reference_labels(records, toy["heldout"])
    # Threshold cases: 90% lowercase is a repeat; 88%, one lowercase base, half, and an N are dropped.
    kinds_by_label = {}
    for sequence, label in {**train_ref, **held_ref}.items():
        kinds_by_label.setdefault(label, set()).add(toy["kinds"][sequence])
    assert kinds_by_label == {0: {"U"}, 1: {"L", "T90"}}
    assert meta["candidates"]["train"] == {0: 7, 1: 7}
    assert {label: meta["candidates"]["dev"][label] + meta["candidates"]["test"][label] for label in (0, 1)} == {
        0: 9,
        1: 9,
    }

    # Train: balanced 7/7 with no cap, so it is exactly the reference set, labels exact, upper-case.
    assert sorted(task["train"]) == sorted(train_ref.items())
    for split in ("dev", "test"):
        rows = task[split]
        assert sum(label for _, label in rows) * 2 == len(rows)  # balanced
        for sequence, label in rows:
            assert sequence == sequence.upper() and held_ref[sequence] == label

    # The planted copies (forward, lowercase; reverse complement) in the pre-training region were dropped.
    assert sum(meta["leaked_dropped"].values()) == 2 and meta["leaked_dropped"]["train"] == 0
    evaluation = [s for split in ("dev", "test") for s, _ in task[split]]
    assert not set(toy["leaks"]) & set(evaluation)
    assert len(set(evaluation)) == len(evaluation)

    # Dev and test come from disjoint held-out blocks, after the boundary; no base is shared with pre-training.
    starts = {name: int(name.split(":")[1].split("-")[0]) for name in toy["heldout"]}
    blocks = {}
    for split in ("dev", "test"):
        for sequence, _ in task[split]:
            ((name, offset),) = [
                (n, records[n].upper().find(sequence)) for n in toy["heldout"] if sequence in records[n].upper()
            ]
            position = starts[name] + offset
            assert position >= meta["heldout_start"]
            blocks.setdefault(split, set()).add((position - meta["heldout_start"]) // config.block_size)
    assert not blocks.get("dev", set()) & blocks.get("test", set())
    pretraining_fasta = tmp_path / "pre.fa"
    write_pretraining_fasta(toy["path"], pretraining_fasta, config)
    corpus = [r.sequence for r in iter_fasta(pretraining_fasta)]
    assert not find_occurrences(evaluation, corpus).any()

    counts = write_human_repeat_task(task, str(tmp_path / "suite"))
    assert counts == {split: len(task[split]) for split in ("train", "dev", "test")}
    with open(tmp_path / "suite" / "human_repeat" / "train.csv", newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ["sequence", "label", "group"] and len(rows) == 15
    # Each dev/test row names its held-out block (the unit intervals resample); blocks never span two splits.
    assert {g for g in task.groups["test"]} == {f"block{b}" for b in blocks["test"]}
    assert not set(task.groups["dev"]) & set(task.groups["test"])
    assert all(g.startswith("record:") for g in task.groups["train"])
    report = leakage_report(str(tmp_path / "suite"), [str(pretraining_fasta)])
    assert report["total_occurring"] == 0 and report["tasks"]["human_repeat"]["test"]["checked"] == len(task["test"])

    # Without the drop step the leak check sees the planted copies among the candidates.
    kept = build_human_repeat_task(
        toy["path"],
        HumanRepeatTaskConfig(window_length=W, block_size=100, max_examples_per_class=None, seed=3, drop_leaked=False),
    )
    assert kept.metadata["leaked_dropped"] == {"train": 0, "dev": 0, "test": 0}


def test_build_is_deterministic_and_capped(toy):
    config = HumanRepeatTaskConfig(window_length=W, block_size=100, max_examples_per_class=2, seed=3)
    first, second = build_human_repeat_task(toy["path"], config), build_human_repeat_task(toy["path"], config)
    assert dict(first) == dict(second)
    assert len(first["train"]) == 4


# ----------------------------------------------------------------------------------------------- find_occurrences


def test_find_occurrences_planted_mutated_strands_and_n():
    rng = random.Random(1)
    corpus = [random_bases(rng, 3000) for _ in range(3)]
    planted = corpus[1][500:560]
    mutated = planted[:30] + ("A" if planted[30] != "A" else "C") + planted[31:]
    reverse = reverse_complement(corpus[2][100:160])
    across_records = corpus[0][-30:] + corpus[1][:30]
    lower = corpus[0][:60].lower()
    with_n = planted[:10] + "N" + planted[11:]
    at_end = corpus[2][-60:]
    queries = [planted, mutated, reverse, across_records, lower, with_n, at_end]
    assert find_occurrences(queries, corpus).tolist() == [True, False, True, False, True, False, True]
    assert find_occurrences(queries, corpus, both_strands=False).tolist() == [
        True,
        False,
        False,
        False,
        True,
        False,
        True,
    ]
    # Bytes, lowercase corpus, tiny chunks (records cut into overlapping pieces): same answers.
    lowered = [c.lower().encode() for c in corpus]
    assert find_occurrences([q.encode() for q in queries], lowered, chunk_bases=100).tolist() == [
        True,
        False,
        True,
        False,
        True,
        False,
        True,
    ]
    # An N inside the corpus occurrence hides it; next to it, the occurrence is still found.
    with_gap = corpus[1][:520] + "N" + corpus[1][521:]
    assert find_occurrences([planted, corpus[1][521:581]], [with_gap]).tolist() == [False, True]
    # Duplicated queries get the same answer.
    assert find_occurrences([planted, planted, mutated], corpus).tolist() == [True, True, False]


def test_find_occurrences_rejects_bad_lengths():
    with pytest.raises(ValueError, match="one length"):
        find_occurrences(["A" * 40, "A" * 41], ["A" * 100])
    with pytest.raises(ValueError, match="at least 32"):
        find_occurrences(["ACGT" * 5], ["ACGT" * 50])
    assert find_occurrences([], ["ACGT"]).tolist() == []


def test_find_occurrences_matches_brute_force_even_when_every_hash_collides(monkeypatch):
    rng = random.Random(2)
    corpus = [random_bases(rng, rng.randint(20, 400)) for _ in range(30)]
    joined = "|".join(corpus)
    queries = []
    for _ in range(200):
        record = rng.choice([c for c in corpus if len(c) >= 33])
        start = rng.randint(0, len(record) - 33)
        query = record[start : start + 33]
        if rng.random() < 0.5:
            query = query[:16] + rng.choice("ACGT") + query[17:]
        if rng.random() < 0.3:
            query = reverse_complement(query)
        queries.append(query)
    expected = [q in joined or reverse_complement(q) in joined for q in queries]
    assert find_occurrences(queries, corpus).tolist() == expected
    # A degenerate hash (every window collides) must still give exact answers: hits are verified byte by byte.
    monkeypatch.setattr(leakage, "_mix", lambda h: h & np.uint64(0))
    assert find_occurrences(queries, corpus, chunk_bases=500).tolist() == expected


# ----------------------------------------------------------------------------------------------- real chr22 data


def test_real_chr22_task_has_no_test_leakage(shared_dir, tmp_path):
    path = shared_dir / "data" / "genomes" / "human_chr22_segments.fa.gz"
    if not path.exists():
        pytest.skip(f"{path} not found")
    config = HumanRepeatTaskConfig(max_examples_per_class=300)
    task = build_human_repeat_task(str(path), config)
    meta = task.metadata
    assert (
        meta["records"]["pretraining"] + meta["records"]["heldout"] + meta["records"]["excluded_overlapping"] == 8417
    )
    assert meta["bases"]["pretraining"] > 3 * meta["bases"]["heldout"] > 0
    for split in ("train", "dev", "test"):
        rows = task[split]
        assert len(rows) == 600 and sum(label for _, label in rows) == 300
        assert all(sequence == sequence.upper() and len(sequence) == 100 for sequence, _ in rows)
    evaluation = [s for split in ("dev", "test") for s, _ in task[split]]
    assert len(set(evaluation) | {s for s, _ in task["train"]}) == len(evaluation) + 600

    pretraining_fasta = tmp_path / "human_pretraining.fa"
    counts = write_pretraining_fasta(str(path), pretraining_fasta, config)
    assert counts["records"] == meta["records"]["pretraining"] and counts["bases"] == meta["bases"]["pretraining"]
    names = {r.name for r in iter_fasta(pretraining_fasta)}
    pre_starts = [parse_chr22_coordinates(n)[1] for n in names]
    assert max(pre_starts) < meta["heldout_start"]

    write_human_repeat_task(task, str(tmp_path / "suite"))
    report = leakage_report(str(tmp_path / "suite"), [str(pretraining_fasta)])
    assert report["tasks"]["human_repeat"]["test"] == {
        "sequences": 600,
        "checked": 600,
        "unchecked": 0,
        "occurring": 0,
        "fraction": 0.0,
    }
    assert report["total_occurring"] == 0
