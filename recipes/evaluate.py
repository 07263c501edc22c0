"""Evaluate checkpoints with frozen-feature probes, controls and intervals: does pre-training help, and which helps more?

    # the README's default checkpoint against its random-init control, on the default task suite
    python recipes/evaluate.py --checkpoints birdie=outputs/birdie-dna-tiny

    # two arms, two pre-training seeds each, differenced against the NTP arm; refuse tasks that leak into the corpus
    python recipes/evaluate.py --checkpoints birdie@0=out/b0 birdie@1=out/b1 ntp@0=out/n0 ntp@1=out/n1 \\
        --baseline ntp --pretraining_corpus corpus/*.fa.gz --output_dir outputs/evaluation

Each `name=path` (a local folder or a Hub id) is a causal-LM checkpoint; `arm@seed=path` marks pre-training seeds
of one arm. Every checkpoint is read causally and bidirectionally (`<|prefix_lm|>` + the bases as a bidirectional
prefix), every layer's hidden states are pooled (mean, last base), and a logistic regression is chosen on dev and
scored once on test (`birdie_hf.evaluation.probes`). Every table also has a random-init model of the same
architecture read the same way, a Markov-chain classifier, a base-composition classifier and 3-/6-mer logistic
regression on the same splits. Test MCCs carry 95% cluster-bootstrap intervals; differences against the random-init
control (and `--baseline`) are decided better / worse / inconclusive by the rule in `birdie_hf.evaluation.statistics`.

Tasks: `--tasks_dir` holds one folder per task (`{train,dev,test}.csv`, columns `sequence,label[,group]`). Without
it, the default suite is built once into `outputs/evaluation_tasks` from `../shared/data`: gene strand, coding vs
intergenic, start-codon and stop-codon context on three bacterial species held out of pre-training (Prodigal gene
calls; `birdie_hf.evaluation.genome_tasks`), human repeats from chr22 (`birdie_hf.evaluation.human_tasks`) and six NT-style human
tasks from curated annotation of chr20, the held-out human chromosome (promoter, splice donor and acceptor, CpG
island, CTCF site, coding vs UTR; `birdie_hf.evaluation.human_annotation_tasks`): a --pretraining_corpus file that
holds chr20 is refused by name. Every table has the positional baselines (one-hot logistic regression, a small CNN)
beside composition, Markov and k-mer. `--hub_tasks
promoter_all splice_sites_all ...` adds Nucleotide Transformer tasks from the Hub (revised benchmark; a download; their
validation split is cut from train, stratified and seeded) to the same instrument.

`--finetune_tasks gene_strand ...` adds the secondary read-out on those tasks: every checkpoint and control is
fine-tuned to convergence (early stopping on dev, the learning rate chosen on dev from `--finetune_learning_rates` per
arm and reading; `birdie_hf.evaluation.finetune_readout`), scored with the same intervals and decisions (rows whose
reading ends in "fine-tuned"). It costs about 1-3 minutes per run on a 2-core CPU for the default tasks.

`--readouts probes zero_shot` adds the zero-shot read-outs (`birdie_hf.evaluation.zero_shot`): substitutions in
called genes of the held-out species (stop-gain and missense vs synonymous, AUROC stratified by substitution type) and
masked-base NLL at random held-out sites, each checkpoint read with a single centred gap, inside a layout its own
infilling objective draws, and causally, both strands averaged, beside the random-init control, composition readers
(the window's own bases; the corpus's) and bidirectional Markov chains fit on `--pretraining_corpus` (default: the
genome shipped with the package, which the README's run pre-trains on). It writes `zero_shot.{json,md,png}`.

Writes `<output_dir>/probe_results.{json,md,png}` and prints the markdown. Bad input (a checkpoint that is not a
causal LM, a task with one class or no label column, a character the tokenizer cannot read, a dev/test sequence found
in `--pretraining_corpus`, unless `--drop_leaked_sequences` drops those rows and records how many in the results)
ends in one `error:` line before any model runs; `--traceback` shows the full traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from transformers import HfArgumentParser

from birdie_hf.cli import (
    TRACEBACK_FLAG,
    TRACEBACK_HELP,
    RecipeError,
    parse_args_with_config,
    parse_checkpoint_pairs,
    run_recipe,
    strip_traceback_flag,
)
from birdie_hf.data import default_genome_path
from birdie_hf.evaluation import genome_tasks
from birdie_hf.evaluation.finetune import NT_TASKS, load_classification_task
from birdie_hf.evaluation.finetune_readout import FinetuneReadoutConfig
from birdie_hf.evaluation.genome_tasks import GenomeSource
from birdie_hf.evaluation.human_annotation_tasks import (
    build_human_annotation_tasks,
    corpus_holds_chromosome,
    shared_annotation_paths,
)
from birdie_hf.evaluation.human_tasks import build_human_repeat_task, write_human_repeat_task
from birdie_hf.evaluation.instrument import (
    READING_MODES,
    Arm,
    ProbeSuiteConfig,
    check_task_characters,
    load_task,
    parse_arm_name,
    run_probe_suite,
    task_from_dataset,
    write_results,
)
from birdie_hf.evaluation.leakage import drop_leaked_sequences, leakage_report, split_overlap, split_overlap_warning
from birdie_hf.evaluation.zero_shot import ZeroShotConfig, run_zero_shot, write_zero_shot_results
from birdie_hf.hub_io import load_tokenizer
from birdie_hf.modeling import causal_lm_config, load_causal_lm_checkpoint


SHARED = Path(os.environ.get("BIRDIE_SHARED_DIR", Path(__file__).resolve().parents[1].parent / "shared"))
DEFAULT_TASKS_DIR = "outputs/evaluation_tasks"
#: Written last into the default suite's folder: the build finished (and which tasks it made).
SUITE_COMPLETE = "suite_complete.json"
READOUTS = ("probes", "zero_shot")


@dataclass
class EvaluateArguments:
    """Arguments of the evaluation recipe (every one can also be a key of a `--config` YAML file)."""

    checkpoints: list[str] = field(
        default_factory=list,
        metadata={
            "help": "NAME=PATH pairs (a local folder or a Hub id of a causal-LM checkpoint); ARM@SEED=PATH marks "
            "pre-training seeds of one arm. Required.",
            "metavar": "NAME=PATH",
        },
    )
    tasks_dir: Optional[str] = field(
        default=None,
        metadata={"help": f"Folder of task folders (default: build the default suite in {DEFAULT_TASKS_DIR})."},
    )
    tasks: Optional[list[str]] = field(default=None, metadata={"help": "Task names to run (default: every folder)."})
    hub_tasks: list[str] = field(
        default_factory=list,
        metadata={
            "help": "Nucleotide Transformer task names loaded from the Hub (a download), e.g. promoter_all; alone they "
            "replace the default suite, with --tasks_dir they are added to it."
        },
    )
    baseline: Optional[list[str]] = field(
        default=None,
        metadata={
            "help": "Arm(s) every other arm is also differenced against (several: each gets its own differences)."
        },
    )
    pretraining_corpus: list[str] = field(
        default_factory=list,
        metadata={
            "help": "FASTA files the checkpoints were pre-trained on (dev/test rows found in them are refused)."
        },
    )
    drop_leaked_sequences: bool = field(
        default=False,
        metadata={
            "help": "Instead of refusing tasks whose dev/test rows occur in --pretraining_corpus, evaluate copies without "
            "those rows (written to <output_dir>/tasks_without_corpus_sequences; the counts are printed)."
        },
    )
    readings: list[str] = field(
        default_factory=lambda: ["causal", "bidirectional"],
        metadata={"help": "How each checkpoint is read: causal and/or bidirectional (<|prefix_lm|> + the bases)."},
    )
    random_init_seeds: list[int] = field(
        default_factory=lambda: [0],
        metadata={"help": "Seeds of the random-init controls (match the pre-training seeds)."},
    )
    n_resamples: int = field(default=2000, metadata={"help": "Bootstrap replicates of every interval."})
    batch_size: int = field(default=64, metadata={"help": "Sequences per forward pass."})
    output_dir: str = field(default="outputs/evaluation", metadata={"help": "Where the results are written."})
    finetune_tasks: Optional[list[str]] = field(
        default=None,
        metadata={
            "help": "Tasks that also get the secondary read-out: every checkpoint and control fine-tuned to "
            "convergence (early stopping on dev MCC, learning rate chosen on dev per arm and reading); minutes per run "
            "on a CPU.",
            "metavar": "TASK",
        },
    )
    finetune_learning_rates: list[float] = field(
        default_factory=lambda: [3e-4, 1e-3, 3e-3],
        metadata={"help": "Fine-tuning learning rates tried (chosen on dev)."},
    )
    finetune_seeds: list[int] = field(
        default_factory=lambda: [0], metadata={"help": "Fine-tuning seeds per pre-training seed."}
    )
    finetune_readings: list[str] = field(
        default_factory=lambda: ["causal", "bidirectional"],
        metadata={"help": "Readings fine-tuned (causal, bidirectional)."},
    )
    finetune_max_epochs: int = field(default=12, metadata={"help": "Most fine-tuning epochs."})
    finetune_patience: int = field(
        default=2, metadata={"help": "Fine-tuning epochs without a better dev MCC before stopping."}
    )
    readouts: list[str] = field(
        default_factory=lambda: ["probes"],
        metadata={
            "help": "probes (frozen-feature probes on the tasks) and/or zero_shot (likelihood read-outs, no training).",
            "choices": list(READOUTS),
        },
    )
    zero_shot_genomes: Optional[list[str]] = field(
        default=None,
        metadata={
            "help": "Zero-shot read-out: held-out genomes with gene calls (default: the three held-out species of ../shared).",
            "metavar": "NAME=FASTA,GFF",
        },
    )
    zero_shot_variants_per_class: int = field(default=500, metadata={"help": "Zero-shot: substitutions per class."})
    zero_shot_sites: int = field(
        default=1500, metadata={"help": "Zero-shot: random held-out sites for masked-base NLL."}
    )

    def __post_init__(self):
        if not self.checkpoints:
            raise RecipeError("--checkpoints is required: one or more NAME=PATH pairs.")
        # Values from a --config file do not pass argparse's choices: checked here for both routes.
        for name, allowed in (
            ("readouts", READOUTS),
            ("readings", READING_MODES),
            ("finetune_readings", READING_MODES),
        ):
            unknown = [value for value in getattr(self, name) if value not in allowed]
            if unknown:
                raise RecipeError(f"--{name}: unknown {unknown}; choose from {list(allowed)}.")


def parse_args(argv=None) -> EvaluateArguments:
    """Command line, then `--config x.yaml` (any argument as a key); flags on the command line win."""
    parser = HfArgumentParser(
        EvaluateArguments,
        prog="recipes/evaluate.py",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--config", metavar="RUN.YAML", help="YAML file of any options below (as keys); command-line flags win"
    )
    parser.add_argument(TRACEBACK_FLAG, action="store_true", help=TRACEBACK_HELP)
    argv = strip_traceback_flag(sys.argv[1:] if argv is None else argv)  # read by run_recipe
    (args,) = parse_args_with_config(parser, argv)
    return args


def zero_shot_sources(args) -> list[GenomeSource]:
    if args.zero_shot_genomes is None:
        return genome_tasks.shared_genome_sources(SHARED)
    sources = []
    for item in args.zero_shot_genomes:
        name, _, files = item.partition("=")
        fasta, _, gff = files.partition(",")
        if not (name and fasta and gff):
            raise RecipeError(f"--zero_shot_genomes takes NAME=FASTA,GFF, got {item!r}.")
        for path in (fasta, gff):
            if not Path(path).is_file():
                raise RecipeError(f"--zero_shot_genomes {name}: {path!r} is not a file.")
        sources.append(GenomeSource(name, fasta, gff))
    return sources


def write_default_tasks(folder: Path) -> None:
    """The default suite: four bacterial tasks on held-out species, the chr22 repeat task and the six NT-style human
    tasks from curated chr20 annotation."""
    sources = genome_tasks.shared_genome_sources(SHARED)
    genome_tasks.write_genome_tasks(genome_tasks.build_genome_tasks(sources), folder)
    human = SHARED / "data" / "genomes" / "human_chr22_segments.fa.gz"
    if human.is_file():
        write_human_repeat_task(build_human_repeat_task(human), str(folder))
    fasta, tables = shared_annotation_paths(SHARED)
    genome_tasks.write_genome_tasks(
        build_human_annotation_tasks(fasta, tables), folder, metadata_name="human_annotation_tasks.json"
    )


def build_default_tasks(folder: Path) -> None:
    """Build the default suite into `<folder>.partial`, mark it complete (`SUITE_COMPLETE`, naming its tasks) and
    only then move it to `folder` (an older folder there is removed after the swap): an interrupted build never
    leaves a suite that looks finished, nor loses the one that was there."""
    print(f"Building the default task suite into {folder} (once; about a minute) ...", flush=True)
    partial = folder.with_name(folder.name + ".partial")
    if partial.exists():
        shutil.rmtree(partial)
    write_default_tasks(partial)
    tasks = sorted(p.name for p in partial.iterdir() if (p / "test.csv").is_file())
    (partial / SUITE_COMPLETE).write_text(json.dumps({"tasks": tasks}) + "\n", encoding="utf-8")
    if folder.exists():  # an older or cut-off build: replaced only now that the new one is complete
        old = folder.with_name(folder.name + ".replaced")
        if old.exists():
            shutil.rmtree(old)
        os.replace(folder, old)
        os.replace(partial, folder)
        shutil.rmtree(old)
    else:
        os.replace(partial, folder)


def resolve_tasks(args) -> dict[str, Path]:
    folder = Path(args.tasks_dir or DEFAULT_TASKS_DIR)
    if args.tasks_dir is None and not (folder / SUITE_COMPLETE).is_file():
        if folder.is_dir():  # built by an older version or cut off: its tasks cannot be trusted to be all there
            print(f"{folder} holds no record of a finished build: building the default suite again.", flush=True)
        build_default_tasks(folder)
    if not folder.is_dir():
        raise RecipeError(f"--tasks_dir {str(folder)!r} is not a folder.")
    available = {p.name: p for p in sorted(folder.iterdir()) if (p / "test.csv").is_file()}
    if not available:
        raise RecipeError(f"--tasks_dir {str(folder)!r} holds no task folder with a test.csv.")
    names = args.tasks or list(available)
    unknown = [n for n in names if n not in available]
    if unknown:
        raise RecipeError(f"--tasks {unknown} not found in {str(folder)!r}; available: {sorted(available)}.")
    return {name: available[name] for name in names}


def without_leaked_sequences(
    task_folders: dict[str, Path], corpus: list[str], output_dir: str
) -> tuple[dict[str, Path], dict[str, dict[str, int]]]:
    """Copies of the task folders under `<output_dir>/tasks_without_corpus_sequences` without the dev/test rows that
    occur verbatim (either strand) in the corpus, and `{task: {split: rows dropped}}`; prints what was dropped."""
    root = Path(output_dir) / "tasks_without_corpus_sequences"
    filtered, counts_by_task = {}, {}
    for name, folder in task_folders.items():
        dropped = drop_leaked_sequences(str(folder), corpus, str(root))
        filtered[name] = root / Path(folder).name
        counts_by_task[name] = {split: n for task in dropped.values() for split, n in task.items()}
        counts = ", ".join(f"{split} {n}" for split, n in counts_by_task[name].items())
        print(f"{name}: dropped the rows found in --pretraining_corpus ({counts}) -> {filtered[name]}", flush=True)
    return filtered, counts_by_task


def check_split_overlap(task_folders: dict[str, Path]) -> None:
    """Warn, one line per task, when rows of a later split repeat an earlier split's sequence (either strand): test
    rows found in train or dev measure memorisation, not generalisation (a random-init control scores 1.0 on a test
    split copied from train). Real benchmarks have some (the DNABERT-2 sample task: 10 of its test rows are in
    train), so this warns instead of refusing."""
    for name, folder in task_folders.items():
        warning = split_overlap_warning(name, split_overlap(str(folder)))
        if warning:
            print(warning, file=sys.stderr)


def check_leakage(task_folders: dict[str, Path], corpus: list[str]) -> None:
    """Refuse tasks whose dev/test sequences occur verbatim (either strand) in the pre-training corpus, and first a
    corpus file that holds the held-out human chromosome itself (naming it); say how many rows could not be looked up
    (under 32 bases, or holding an `N`)."""
    refusal = corpus_holds_chromosome(task_folders, corpus)
    if refusal:
        raise RecipeError(refusal)
    leaked = []
    for name, folder in task_folders.items():
        report = leakage_report(str(folder), corpus)
        for task, splits in report["tasks"].items():
            for split, counts in splits.items():
                if counts["occurring"]:
                    leaked.append(f"{task}/{split}: {counts['occurring']} of {counts['checked']}")
                if counts["unchecked"]:
                    print(
                        f"WARNING: {task}/{split}: {counts['unchecked']} of {counts['sequences']} rows were not "
                        "checked against --pretraining_corpus (under 32 bases, or holding an N).",
                        file=sys.stderr,
                    )
    if leaked:
        raise RecipeError(
            "test data overlaps pre-training: sequences of " + "; ".join(leaked) + " occur verbatim in "
            "--pretraining_corpus; rebuild the tasks from data the checkpoints did not see."
        )


def main(args):
    checkpoints = parse_checkpoint_pairs(args.checkpoints)
    for path in checkpoints.values():
        causal_lm_config(path)  # a missing checkpoint or one that is not a causal LM fails here, before any work
    config = ProbeSuiteConfig(
        readings=tuple(args.readings),
        random_init_seeds=tuple(args.random_init_seeds),
        batch_size=args.batch_size,
        n_resamples=args.n_resamples,
    )
    finetune = None
    if args.finetune_tasks:
        try:
            finetune = FinetuneReadoutConfig(
                learning_rates=tuple(args.finetune_learning_rates),
                finetune_seeds=tuple(args.finetune_seeds),
                readings=tuple(args.finetune_readings),
                max_epochs=args.finetune_max_epochs,
                patience=args.finetune_patience,
                batch_size=32,
                tasks=tuple(args.finetune_tasks),
            )
        except ValueError as error:
            raise RecipeError(f"fine-tuning read-out: {error}") from None
    unknown = [t for t in args.hub_tasks if t not in NT_TASKS]
    if unknown:
        raise RecipeError(f"--hub_tasks {unknown} are not Nucleotide Transformer tasks ({', '.join(NT_TASKS)}).")
    probes = "probes" in args.readouts
    sources = None
    if "zero_shot" in args.readouts:
        try:
            sources = zero_shot_sources(args)
            zero_shot_config = ZeroShotConfig(
                variants_per_class=args.zero_shot_variants_per_class,
                sites=args.zero_shot_sites,
                random_init_seeds=tuple(args.random_init_seeds),
                batch_size=args.batch_size,
                n_resamples=args.n_resamples,
            )
        except (FileNotFoundError, ValueError) as error:
            raise RecipeError(f"zero-shot read-out: {error}") from None
    wants_suite = probes and (args.tasks_dir or args.tasks or not args.hub_tasks)
    task_folders = resolve_tasks(args) if wants_suite else {}
    tasks = {name: load_task(folder) for name, folder in task_folders.items()}
    for name in args.hub_tasks:
        tasks[name] = task_from_dataset(load_classification_task(name, seed=0), name)
    missing = [t for t in args.finetune_tasks or () if t not in tasks]
    if missing:
        raise RecipeError(f"--finetune_tasks {missing} are not among the tasks evaluated ({', '.join(tasks)}).")
    # Characters first (the tokenizer alone is quick to load), then leakage, then the models.
    check_task_characters(tasks, load_tokenizer(next(iter(checkpoints.values()))))
    check_split_overlap(task_folders)
    dropped = None
    if args.pretraining_corpus and args.drop_leaked_sequences and task_folders:
        refusal = corpus_holds_chromosome(task_folders, list(args.pretraining_corpus))
        if refusal:  # a corpus that is the evaluation chromosome is refused, not filtered (check_leakage does it too)
            raise RecipeError(refusal)
        task_folders, dropped = without_leaked_sequences(task_folders, list(args.pretraining_corpus), args.output_dir)
        tasks.update({name: load_task(folder) for name, folder in task_folders.items()})
    elif args.pretraining_corpus:
        check_leakage(task_folders, list(args.pretraining_corpus))
    arms = []
    for name, path in checkpoints.items():
        arm, seed = parse_arm_name(name)
        model, tokenizer = load_causal_lm_checkpoint(path)
        arms.append(Arm(arm, seed, model.eval(), tokenizer, "pretrained", path))
    results = {}
    if probes:
        start = time.perf_counter()
        results = run_probe_suite(arms, tasks, config, baseline=args.baseline, finetune=finetune)
        record_inputs(results, checkpoints, args.pretraining_corpus, start)
        if dropped is not None:
            results["dropped_rows_found_in_pretraining_corpus"] = dropped
        report(results, write_results(results, args.output_dir))
    if sources is not None:
        corpus = list(args.pretraining_corpus) or [default_genome_path()]
        start = time.perf_counter()
        try:
            zero_shot = run_zero_shot(arms, sources, corpus, zero_shot_config, baseline=args.baseline)
        except ValueError as error:  # too few variants or sites in the genomes given
            raise RecipeError(f"zero-shot read-out: {error}") from None
        record_inputs(zero_shot, checkpoints, corpus, start)
        report(zero_shot, write_zero_shot_results(zero_shot, args.output_dir))
        results = {**results, "zero_shot": zero_shot} if results else zero_shot
    return results


def record_inputs(results: dict, checkpoints: dict, corpus: list, start: float) -> None:
    """Record in `results`, before it is written, what it was run on and how long it took."""
    results["checkpoints"] = checkpoints
    results["pretraining_corpus"] = [os.path.basename(p) for p in corpus]
    results["seconds"] = round(time.perf_counter() - start, 1)


def report(results: dict, paths: dict) -> None:
    """Print the markdown written to `paths` and where it went."""
    print(open(paths["markdown"], encoding="utf-8").read())
    print(f"Wrote {paths['markdown']}, {paths['json']} and {paths['plot']} ({results['seconds']:.0f} s).")


if __name__ == "__main__":
    run_recipe(lambda argv: main(parse_args(argv)))
