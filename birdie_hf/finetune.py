"""Moved to [`birdie_hf.evaluation.finetune`]; this import path keeps working (it is the same module object)."""

import sys

from .evaluation import finetune as _module


sys.modules[__name__] = _module
