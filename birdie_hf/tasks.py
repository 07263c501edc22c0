"""Moved to [`birdie_hf.evaluation.tasks`]; this import path keeps working (it is the same module object)."""

import sys

from .evaluation import tasks as _module


sys.modules[__name__] = _module
