"""Moved to :mod:`srgpu.bench.e2e` (so that ``srgpu bench`` works from an installed package);
this name is that same module, for the scripts beside it."""

import sys

from srgpu.bench import e2e as _moved

sys.modules[__name__] = _moved
