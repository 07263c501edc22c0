"""Moved to [`birdie_hf.evaluation.genbank`]; this import path keeps working (it is the same module object)."""

import sys

from .evaluation import genbank as _module


sys.modules[__name__] = _module
