"""Inference with one Birdie checkpoint: fill gaps, score bases with context from both sides, score variants.

A checkpoint trained with Birdie's mixture is a plain `LlamaForCausalLM` that also learnt the infilling prompt.
Everything here reads a sequence the way an objective trained the model to read it:

- [`infill`] lays gaps out as the infilling objective does (`<|infilling|>`, one sentinel per gap, the prefix read
  bidirectionally) and decodes the missing bases (greedy, sampled or beam search), with per-base probabilities.
- [`score`] gives per-base log-likelihoods with context from both sides (a strided set of bases masked per pass)
  next to the plain left-to-right score.
- [`variant_effect`] gives log-likelihood ratios of substitutions, bidirectional and causal.

Checkpoints trained without infilling (next-token prediction only) are refused for the bidirectional uses with
[`InfillingNotTrainedError`]; gaps outside what the infilling objective trained on with [`UntrainedGapsError`].

```python
>>> from transformers import AutoModelForCausalLM, AutoTokenizer
>>> from birdie_hf import infill, score, variant_effect
>>> model = AutoModelForCausalLM.from_pretrained("outputs/birdie")  # doctest: +SKIP
>>> tokenizer = AutoTokenizer.from_pretrained("outputs/birdie")  # doctest: +SKIP
>>> infill(model, tokenizer, "ATGGCTAGC___AGCTAGGATC").sequence  # doctest: +SKIP
```
"""

from ..vocabulary import reverse_complement
from .decoding import DECODING_MODES, InfillResult, decode_gaps, infill
from .inputs import (
    BASES,
    MASK_CHAR,
    DNAInputError,
    InfillingNotTrainedError,
    UntrainedGapsError,
    check_gaps,
    infilling_example,
    infilling_prompt,
    parse_sequence,
)
from .limits import InfillingLimits, infilling_limits, trained_objectives, trained_with_infilling
from .scoring import SequenceScore, gap_log_probs, score
from .variants import VariantScore, variant_effect


__all__ = [
    "infilling_prompt",
    "BASES",
    "DECODING_MODES",
    "MASK_CHAR",
    "DNAInputError",
    "InfillResult",
    "InfillingLimits",
    "InfillingNotTrainedError",
    "SequenceScore",
    "UntrainedGapsError",
    "VariantScore",
    "check_gaps",
    "decode_gaps",
    "gap_log_probs",
    "infill",
    "infilling_example",
    "infilling_limits",
    "parse_sequence",
    "reverse_complement",
    "score",
    "trained_objectives",
    "trained_with_infilling",
    "variant_effect",
]
