"""Birdie's objectives, registered by name.

A mixture is a list of entries; each entry names an objective and its settings, and has a weight:

```python
>>> from birdie_hf.objectives import ObjectiveSpec, build_objectives
>>> specs = [ObjectiveSpec("next_token_prediction"), ObjectiveSpec("infilling", {"mean_span_length": 32},
...          name="infilling_long")]
```

Entries of the same objective (e.g. short and long infilling) form one *reward class* for the policy.
New objectives register with [`register_objective`]; nothing else in the library needs to know them: each objective
class declares the prompt tokens it writes (`Objective.prompt_tokens`), and [`build_dna_tokenizer`] and
[`add_birdie_tokens`] read them from [`OBJECTIVE_REGISTRY`].
"""

from __future__ import annotations

from ..vocabulary import MissingObjectiveTokenError
from .autoencoding import Autoencoding, AutoencodingConfig
from .base import (
    IGNORE_INDEX,
    OBJECTIVE_REGISTRY,
    Objective,
    ObjectiveConfig,
    ObjectiveConfigError,
    ObjectiveExample,
    SpecialTokenIds,
    check_example,
)
from .copying import Copying, CopyingConfig
from .deshuffling import Deshuffling, DeshufflingConfig
from .infilling import Infilling, InfillingConfig
from .next_token_prediction import NextTokenPrediction, NextTokenPredictionConfig
from .prefix_lm import PrefixLM, PrefixLMConfig
from .registry import (
    BUILTIN_OBJECTIVES,
    DEFAULT_MIXTURE,
    ObjectiveSpec,
    build_objectives,
    parse_mixture,
    register_objective,
)
from .selective_copying import SelectiveCopying, SelectiveCopyingConfig


__all__ = [
    "BUILTIN_OBJECTIVES",
    "DEFAULT_MIXTURE",
    "IGNORE_INDEX",
    "OBJECTIVE_REGISTRY",
    "Autoencoding",
    "AutoencodingConfig",
    "Copying",
    "CopyingConfig",
    "Deshuffling",
    "DeshufflingConfig",
    "Infilling",
    "InfillingConfig",
    "MissingObjectiveTokenError",
    "NextTokenPrediction",
    "NextTokenPredictionConfig",
    "Objective",
    "ObjectiveConfig",
    "ObjectiveConfigError",
    "ObjectiveExample",
    "ObjectiveSpec",
    "PrefixLM",
    "PrefixLMConfig",
    "SelectiveCopying",
    "SelectiveCopyingConfig",
    "SpecialTokenIds",
    "build_objectives",
    "check_example",
    "parse_mixture",
    "register_objective",
]
