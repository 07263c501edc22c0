"""Moved to [`birdie_hf.evaluation.baselines`]; this import path keeps working (it is the same module object)."""

import sys

from .evaluation import baselines as _module


sys.modules[__name__] = _module
