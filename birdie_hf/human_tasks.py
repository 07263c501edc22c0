"""Moved to [`birdie_hf.evaluation.human_tasks`]; this import path keeps working (it is the same module object)."""

import sys

from .evaluation import human_tasks as _module


sys.modules[__name__] = _module
