"""Build the offline classification suite from an annotated genome (GenBank), as `sequence,label` CSVs.

    python recipes/make_genome_tasks.py                                   # ../shared/data/genomes/bacterial_contigs.gbk
    python recipes/make_genome_tasks.py --genbank my.gbk --output_dir tasks --window_length 200 --seed 1

    python recipes/make_genome_tasks.py --human_fasta ../shared/data/genomes/human_chr22_segments.fa.gz \\
        --check_leakage outputs/genome_tasks/human_pretraining.fa.gz

    python recipes/make_genome_tasks.py --human_chr20                     # + six NT-style human tasks (chr20)

Writes `<output_dir>/<task>/{train,dev,test}.csv` for gene_strand, coding_vs_intergenic and start_codon, plus
`suite.json` with the settings and row counts. Splits are disjoint genome blocks (no shared bases); see
`birdie_hf.evaluation.genbank_tasks`.

`--human_fasta` (a soft-masked FASTA with `chr22:START-END` headers) also builds `human_repeat` (repeat vs
non-repeat windows, split by genomic position; see `birdie_hf.evaluation.human_tasks`) and writes
`<output_dir>/human_pretraining.fa.gz`, the pre-training region: pre-train on that file, never on the full FASTA,
so the dev/test windows stay unseen. `--human_chr20` also builds the six NT-style human tasks from curated hg19
annotation of chr20 in the shared data folder (promoter, splice donor and acceptor, CpG island, CTCF site, coding vs
UTR; see `birdie_hf.evaluation.human_annotation_tasks`; their metadata in `human_annotation_tasks.json`): chr20 is
the held-out human chromosome, never pre-train on it. `--check_leakage` counts the dev/test sequences of every task that occur
verbatim (either strand) in the given FASTA files, prints it and stores it in suite.json under "leakage".

Settings that leave any task or split without examples (e.g. a `--window_length` longer than the genes) are refused
before anything is written, with the counts that could be made. Bad input ends in one `error:` line; add
`--traceback` (or set `BIRDIE_TRACEBACK=1`) for the full traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import asdict
from pathlib import Path

from birdie_hf.cli import TRACEBACK_FLAG, TRACEBACK_HELP, RecipeError, run_recipe
from birdie_hf.data import default_genome_path
from birdie_hf.evaluation.genbank import iter_genbank
from birdie_hf.evaluation.genbank_tasks import TaskSuiteConfig, build_task_suite, check_task_suite, write_task_suite
from birdie_hf.evaluation.genome_tasks import write_genome_tasks
from birdie_hf.evaluation.human_annotation_tasks import build_human_annotation_tasks, shared_annotation_paths
from birdie_hf.evaluation.human_tasks import TASK_NAME as HUMAN_TASK
from birdie_hf.evaluation.human_tasks import (
    HumanRepeatTaskConfig,
    build_human_repeat_task,
    write_human_repeat_task,
    write_pretraining_fasta,
)
from birdie_hf.evaluation.leakage import leakage_report


SHARED = Path(os.environ.get("BIRDIE_SHARED_DIR", Path(__file__).resolve().parents[1].parent / "shared"))
DEFAULT_GENBANK = SHARED / "data" / "genomes" / "bacterial_contigs.gbk"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--genbank", default=str(DEFAULT_GENBANK), help="annotated genome (.gbk[.gz])")
    parser.add_argument("--output_dir", default="outputs/genome_tasks")
    parser.add_argument("--window_length", type=int, default=100)
    parser.add_argument("--block_size", type=int, default=5000)
    parser.add_argument("--windows_per_gene", type=int, default=4)
    parser.add_argument(
        "--max_examples_per_class",
        type=int,
        default=None,
        help="cap per class and split (default: none for the GenBank tasks, "
        f"{HumanRepeatTaskConfig.max_examples_per_class} for human_repeat)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--human_fasta",
        default=None,
        metavar="PATH",
        help="soft-masked FASTA with chr22:START-END headers: also build human_repeat and write "
        "<output_dir>/human_pretraining.fa.gz (the pre-training region)",
    )
    parser.add_argument(
        "--human_chr20",
        action="store_true",
        help="also build the six NT-style human tasks from the curated chr20 annotation of the shared data folder",
    )
    parser.add_argument(
        "--check_leakage",
        nargs="+",
        default=None,
        metavar="FASTA",
        help="report how many dev/test sequences occur verbatim in these FASTA files (default: the genome "
        "the README's pre-training run uses, shipped with birdie_hf)",
    )
    parser.add_argument(TRACEBACK_FLAG, action="store_true", help=TRACEBACK_HELP)
    args = parser.parse_args(argv)
    if not os.path.exists(args.genbank):
        if os.path.abspath(args.genbank) == os.path.abspath(str(DEFAULT_GENBANK)):
            raise RecipeError(
                f"the default annotated genome {args.genbank!r} does not exist. It comes from the shared data "
                "folder, expected next to the repository checkout (../shared/data/genomes/bacterial_contigs.gbk); "
                "pass --genbank PATH to an annotated genome (.gbk[.gz])."
            )
        raise RecipeError(f"--genbank: file not found: {args.genbank!r}")
    for path in [args.human_fasta] if args.human_fasta else []:
        if not os.path.exists(path):
            raise RecipeError(f"--human_fasta: file not found: {path!r}")
    pretraining_path = os.path.join(args.output_dir, "human_pretraining.fa.gz")
    for path in args.check_leakage or []:
        written_here = args.human_fasta and os.path.abspath(path) == os.path.abspath(pretraining_path)
        if not written_here and not os.path.exists(path):
            raise RecipeError(f"--check_leakage: file not found: {path!r}")
    config = TaskSuiteConfig(
        window_length=args.window_length,
        block_size=args.block_size,
        windows_per_gene=args.windows_per_gene,
        max_examples_per_class=args.max_examples_per_class,
        seed=args.seed,
    )
    # Build and check every task before writing anything: settings that leave a split empty write no file.
    suite = build_task_suite(args.genbank, config)
    check_task_suite(suite, config, genome_length=sum(len(record.sequence) for record in iter_genbank(args.genbank)))
    if args.human_fasta:
        human_config = HumanRepeatTaskConfig(window_length=args.window_length, seed=args.seed)
        if args.max_examples_per_class is not None:
            human_config.max_examples_per_class = args.max_examples_per_class
        human = build_human_repeat_task(args.human_fasta, human_config)
        check_task_suite({HUMAN_TASK: dict(human)}, human_config)
    if args.human_chr20:
        try:
            chr20 = build_human_annotation_tasks(*shared_annotation_paths(SHARED))
        except FileNotFoundError as error:
            raise RecipeError(f"--human_chr20: {error}") from None
    counts = write_task_suite(suite, args.output_dir)
    summary = {"genbank": os.path.basename(args.genbank), "config": asdict(config), "counts": counts}
    if args.human_fasta:
        counts[HUMAN_TASK] = write_human_repeat_task(human, args.output_dir)
        pretraining = write_pretraining_fasta(args.human_fasta, pretraining_path, human_config)
        summary["human_repeat"] = dict(
            human.metadata, pretraining_fasta=os.path.basename(pretraining_path), pretraining_fasta_counts=pretraining
        )
    if args.human_chr20:
        write_genome_tasks(chr20, args.output_dir, metadata_name="human_annotation_tasks.json")
        for task, info in chr20.metadata["tasks"].items():
            counts[task] = info["examples"]
        print("human chr20 tasks (negatives GC-matched; test MCC of a GC-only classifier):")
        for task, info in chr20.metadata["tasks"].items():
            print(f"  {task:<22} {info['window_length']} bp  GC-only MCC {info['gc_only_test_mcc']:+.3f}")
    # The leakage check always runs: against the given corpus, else the genome the default pre-training run reads.
    corpus = args.check_leakage or [default_genome_path()]
    summary["leakage"] = leakage_report(args.output_dir, corpus)
    with open(os.path.join(args.output_dir, "suite.json"), "w", encoding="utf-8") as handle:
        json.dump(summary, handle, indent=2)
    for task, splits in counts.items():
        print(f"{task:<22} " + "  ".join(f"{split} {n:>5}" for split, n in splits.items()))
    if args.human_fasta:
        meta = summary["human_repeat"]
        print(
            f"human_repeat: pre-training region {meta['records']['pretraining']} records, "
            f"{meta['bases']['pretraining']} bases -> {pretraining_path}; held out from "
            f"{meta['chrom']}:{meta['heldout_start']} ({meta['bases']['heldout']} bases); "
            f"dev/test windows dropped as occurring in the pre-training region: {meta['leaked_dropped']}"
        )
    report = summary["leakage"]
    print(f"Leakage check against {', '.join(report['corpus'])} (both strands):")
    for task, splits in report["tasks"].items():
        print(
            f"  {task:<22} "
            + "  ".join(f"{split} {entry['occurring']}/{entry['checked']}" for split, entry in splits.items())
        )
    print(f"  {report['total_occurring']} dev/test sequences occur verbatim in the corpus")
    if report["total_occurring"]:
        print(
            f"WARNING: {report['total_occurring']} dev/test sequences of this suite occur verbatim in "
            f"{', '.join(report['corpus'])}: a checkpoint pre-trained on it has seen its test data, so its scores "
            "here measure memory, not generalisation. Evaluate such checkpoints with recipes/evaluate.py (species "
            "held out of pre-training) or build this suite from a genome they did not see (--genbank).",
            file=sys.stderr,
        )
    print(f"Wrote the suite to {args.output_dir}")


if __name__ == "__main__":
    run_recipe(main)
