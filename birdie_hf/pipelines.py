"""Moved to [`birdie_hf.inference.pipelines`]; this import path keeps working (it is the same module object)."""

import sys

from .inference import pipelines as _module


sys.modules[__name__] = _module
