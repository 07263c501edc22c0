"""Moved to [`birdie_hf.evaluation.leakage`]; this import path keeps working (it is the same module object)."""

import sys

from .evaluation import leakage as _module


sys.modules[__name__] = _module
