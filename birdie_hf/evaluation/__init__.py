"""What evaluates a checkpoint: task builders, frozen-feature probes, controls and statistics.

from birdie_hf.evaluation import build_genome_tasks, shared_genome_sources, run_probe_suite
"""

from .controls import markov_classifier, random_init_like
from .genome_tasks import (
    GENOME_TASK_NAMES,
    HELD_OUT_GENOMES,
    GenomeSource,
    GenomeTaskConfig,
    GenomeTasks,
    build_genome_tasks,
    shared_genome_sources,
    write_genome_tasks,
)
from .gff import GeneCall, GFFFormatError, iter_gene_calls
from .instrument import Arm, ProbeSuiteConfig, TaskDataError, load_task, run_probe_suite, write_results
from .probes import READING_MODES, ProbeResult, extract_features, fit_probe
from .statistics import GroupBootstrap, Interval, bootstrap_mcc, decide, matthews_corrcoef, seed_interval


__all__ = [
    "GENOME_TASK_NAMES",
    "HELD_OUT_GENOMES",
    "READING_MODES",
    "Arm",
    "GFFFormatError",
    "GeneCall",
    "GenomeSource",
    "GenomeTaskConfig",
    "GenomeTasks",
    "GroupBootstrap",
    "Interval",
    "ProbeResult",
    "ProbeSuiteConfig",
    "TaskDataError",
    "bootstrap_mcc",
    "build_genome_tasks",
    "decide",
    "extract_features",
    "fit_probe",
    "iter_gene_calls",
    "load_task",
    "markov_classifier",
    "matthews_corrcoef",
    "random_init_like",
    "run_probe_suite",
    "seed_interval",
    "shared_genome_sources",
    "write_genome_tasks",
    "write_results",
]
