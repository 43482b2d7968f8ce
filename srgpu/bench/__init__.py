"""Benchmarks of srgpu's CPU path, shipped with the package so that ``srgpu bench`` works from
an installed srgpu: :mod:`srgpu.bench.suite` (the suites), :mod:`srgpu.bench.e2e` (end to end
vs a scikit-learn loop and R randomForest), :mod:`srgpu.bench.inference`,
:mod:`srgpu.bench.scaling`, :mod:`srgpu.bench.plot` and :mod:`srgpu.bench.common` (synthetic
paper-shaped data, fresh-process memory measurement). ``benchmarks/`` in a source checkout holds
the other benchmarks and thin callers of these (``python -m benchmarks``), and the results.
"""
