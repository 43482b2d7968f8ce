"""Moved to :mod:`srgpu.bench.plot` (so that ``srgpu bench`` works from an installed package);
this name is that same module, for the scripts beside it."""

import sys

from srgpu.bench import plot as _moved

sys.modules[__name__] = _moved
