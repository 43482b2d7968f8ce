"""Moved to :mod:`srgpu.bench.common` (so that ``srgpu bench`` works from an installed package);
this name is that same module, for the scripts beside it and ``python -m benchmarks.common``."""

import sys

from srgpu.bench import common as _moved

if __name__ == "__main__":
    _moved._child_main(sys.argv[1:])
else:
    sys.modules[__name__] = _moved
