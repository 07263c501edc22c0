"""Build the offline classification suite from an annotated genome (GenBank), as `sequence,label` CSVs.

    python recipes/make_genome_tasks.py                                   # ../shared/data/genomes/bacterial_contigs.gbk
    python recipes/make_genome_tasks.py --genbank my.gbk --output_dir tasks --window_length 200 --seed 1

Writes `<output_dir>/<task>/{train,dev,test}.csv` for gene_strand, coding_vs_intergenic and start_codon, plus
`suite.json` with the settings and row counts. Splits are disjoint genome blocks (no shared bases); see
`birdie_hf.tasks`.
"""

from __future__ import annotations

import argparse
import json
import os
from dataclasses import asdict
from pathlib import Path

from birdie_hf.tasks import TaskSuiteConfig, build_task_suite, write_task_suite


DEFAULT_GENBANK = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "genomes" / "bacterial_contigs.gbk"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--genbank", default=str(DEFAULT_GENBANK), help="annotated genome (.gbk[.gz])")
    parser.add_argument("--output_dir", default="outputs/genome_tasks")
    parser.add_argument("--window_length", type=int, default=100)
    parser.add_argument("--block_size", type=int, default=5000)
    parser.add_argument("--windows_per_gene", type=int, default=4)
    parser.add_argument("--max_examples_per_class", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if not os.path.exists(args.genbank):
        raise SystemExit(f"error: --genbank: file not found: {args.genbank!r}")
    config = TaskSuiteConfig(window_length=args.window_length, block_size=args.block_size,
                             windows_per_gene=args.windows_per_gene,
                             max_examples_per_class=args.max_examples_per_class, seed=args.seed)
    counts = write_task_suite(build_task_suite(args.genbank, config), args.output_dir)
    with open(os.path.join(args.output_dir, "suite.json"), "w", encoding="utf-8") as handle:
        json.dump({"genbank": os.path.basename(args.genbank), "config": asdict(config), "counts": counts}, handle,
                  indent=2)
    for task, splits in counts.items():
        print(f"{task:<22} " + "  ".join(f"{split} {n:>5}" for split, n in splits.items()))
    print(f"Wrote the suite to {args.output_dir}")


if __name__ == "__main__":
    main()
