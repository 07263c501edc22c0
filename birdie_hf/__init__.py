"""birdie_hf: Birdie mixture-of-objectives pre-training for DNA language models on the Hugging Face stack."""

__version__ = "0.1.0"

from .collator import DataCollatorForBirdie
from .data import (
    GenomeDataError,
    default_genome_path,
    iter_fasta,
    load_genome_windows,
    load_sequence_dataset,
    stream_genome_windows,
    windows_from_sequences,
)
from .mixture import LiveMixture
from .objectives import DEFAULT_MIXTURE, OBJECTIVE_REGISTRY, ObjectiveSpec, parse_mixture, register_objective
from .packing import pack_examples, packed_attention_mask
from .tokenizer import add_birdie_tokens, build_dna_tokenizer


__all__ = [
    "DEFAULT_MIXTURE",
    "OBJECTIVE_REGISTRY",
    "DataCollatorForBirdie",
    "GenomeDataError",
    "LiveMixture",
    "ObjectiveSpec",
    "add_birdie_tokens",
    "build_dna_tokenizer",
    "default_genome_path",
    "iter_fasta",
    "load_genome_windows",
    "load_sequence_dataset",
    "pack_examples",
    "packed_attention_mask",
    "parse_mixture",
    "register_objective",
    "stream_genome_windows",
    "windows_from_sequences",
]
