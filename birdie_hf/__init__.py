"""birdie_hf: Birdie mixture-of-objectives pre-training for DNA language models on the Hugging Face stack."""

__version__ = "0.1.0"

from .callback import BirdieRewardCallback
from .collator import DataCollatorForBirdie
from .config import BirdieTrainingArguments, as_birdie_training_args
from .console import BirdiePrinterCallback, BirdieProgressCallback
from .data import (
    GenomeDataError,
    default_genome_path,
    iter_fasta,
    load_genome_windows,
    load_sequence_dataset,
    stream_genome_windows,
    windows_from_sequences,
)
from .inference import InfillingNotTrainedError, UntrainedGapsError, infill, score, variant_effect
from .inference.pipelines import register_pipelines
from .mixture import LiveMixture
from .modeling import build_causal_lm, default_model_config
from .objectives import DEFAULT_MIXTURE, OBJECTIVE_REGISTRY, ObjectiveSpec, parse_mixture, register_objective
from .packing import pack_examples, packed_attention_mask
from .policy import BirdiePolicy, PolicyConfig
from .runs.checkpoints import checkpoint_problems, last_complete_checkpoint
from .tokenizer import add_birdie_tokens, build_dna_tokenizer
from .trainer import BirdieTrainer
from .vocabulary import MissingObjectiveTokenError


register_pipelines()  # `pipeline("dna-infilling")` and `pipeline("dna-variant-effect")`


__all__ = [
    "BirdiePolicy",
    "BirdiePrinterCallback",
    "BirdieProgressCallback",
    "MissingObjectiveTokenError",
    "BirdieRewardCallback",
    "BirdieTrainer",
    "BirdieTrainingArguments",
    "PolicyConfig",
    "as_birdie_training_args",
    "build_causal_lm",
    "checkpoint_problems",
    "default_model_config",
    "last_complete_checkpoint",
    "DEFAULT_MIXTURE",
    "OBJECTIVE_REGISTRY",
    "DataCollatorForBirdie",
    "GenomeDataError",
    "InfillingNotTrainedError",
    "LiveMixture",
    "ObjectiveSpec",
    "UntrainedGapsError",
    "add_birdie_tokens",
    "build_dna_tokenizer",
    "default_genome_path",
    "infill",
    "iter_fasta",
    "load_genome_windows",
    "load_sequence_dataset",
    "pack_examples",
    "packed_attention_mask",
    "parse_mixture",
    "register_objective",
    "register_pipelines",
    "score",
    "stream_genome_windows",
    "variant_effect",
    "windows_from_sequences",
]
