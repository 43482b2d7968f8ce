"""Moved to :mod:`srgpu.bench.scaling` (so that ``srgpu bench`` works from an installed package);
this name is that same module, for the scripts beside it."""

import sys

from srgpu.bench import scaling as _moved

sys.modules[__name__] = _moved
