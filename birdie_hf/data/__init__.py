"""Genome data: FASTA / FASTA.gz, CSV and Hub datasets turned into fixed-length windows of token ids.

Everything here produces 🤗 `datasets` objects with an `input_ids` column (token ids of the DNA tokenizer, stored as
`uint8` when the tokenizer's base ids fit, so a window costs one byte per base) and provenance columns (`record`,
`start`, `end`, `strand`) so every window can be traced back to its source.

One module per concept:

- `fasta`: reading and indexing FASTA files ([`iter_fasta`], [`index_fasta`], [`tokenize_record`]).
- `windows`: the one window cutter every loader uses ([`WindowCutter`]) and the compact Arrow storage of windows.
- `eager`: [`load_genome_windows`], windows held in memory with a train / validation split.
- `streaming`: [`stream_genome_windows`], windows cut while iterating, in resumable [`WindowShard`]s.
- `sequences`: CSV / Hub sequence datasets ([`load_sequence_dataset`]) and windows cut from them
  ([`windows_from_sequences`], [`load_sequence_windows`]).
- `usage`: how training uses the windows: held-out windows for the reward ([`check_eval_dataset`]), bases each
  objective reads from a window ([`window_bases_used`], [`check_windows_fit`]) and the bases trained on
  ([`source_tokens_seen`]).
"""

from .eager import load_genome_windows
from .fasta import (
    FastaRecord,
    GenomeDataError,
    PathLike,
    default_genome_path,
    index_fasta,
    is_fasta_path,
    iter_fasta,
    tokenize_record,
)
from .sequences import load_sequence_dataset, load_sequence_windows, windows_from_sequences
from .streaming import WindowShard, plan_window_shards, stream_genome_windows
from .training_checks import (
    MissingHeldOutDataError,
    WindowCroppingError,
    check_eval_dataset,
    check_training_data,
    check_windows_fit,
    source_tokens_seen,
    window_bases_used,
)
from .windows import NRichWindowCounter, WindowCutter, reverse_complement_table


__all__ = [
    "FastaRecord",
    "GenomeDataError",
    "MissingHeldOutDataError",
    "NRichWindowCounter",
    "PathLike",
    "WindowCroppingError",
    "WindowCutter",
    "WindowShard",
    "check_eval_dataset",
    "check_training_data",
    "check_windows_fit",
    "default_genome_path",
    "index_fasta",
    "is_fasta_path",
    "iter_fasta",
    "load_genome_windows",
    "load_sequence_dataset",
    "load_sequence_windows",
    "plan_window_shards",
    "reverse_complement_table",
    "source_tokens_seen",
    "stream_genome_windows",
    "tokenize_record",
    "window_bases_used",
    "windows_from_sequences",
]
