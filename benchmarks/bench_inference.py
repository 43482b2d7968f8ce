"""Moved to :mod:`srgpu.bench.inference` (so that ``srgpu bench`` works from an installed
package); this name is that same module, for the scripts beside it and
``python -m benchmarks.bench_inference``."""

import sys

from srgpu.bench import inference as _moved

if __name__ == "__main__":
    _moved.main()
else:
    sys.modules[__name__] = _moved
