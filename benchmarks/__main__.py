"""``python -m benchmarks quick|full|tiny|scaling [--out DIR]``: run, write JSON and a PNG.

The suites live in :mod:`srgpu.bench.suite` (so that ``srgpu bench`` works from an installed
package); this is their command line in a source checkout.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from srgpu.bench.suite import SUITES, run_suite, summary_lines

__all__ = ["SUITES", "main", "run_suite", "summary_lines"]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    p.add_argument(
        "suite",
        choices=(*SUITES, "scaling"),
        help="quick (< 5 min on 2 cores), full, tiny (about a minute on 2 cores, for tests), "
        "or scaling "
        "(the quick suite's scaling curves only)",
    )
    p.add_argument("--out", type=Path, default=None, help="results folder")
    p.add_argument("--no-scaling", action="store_true", help="skip the scaling curves")
    a = p.parse_args(argv)
    if a.suite == "scaling":
        run_suite("quick", out=a.out, e2e=False)
    else:
        run_suite(a.suite, out=a.out, scaling=not a.no_scaling)
    return 0


if __name__ == "__main__":
    sys.exit(main())
