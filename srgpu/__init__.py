"""srgpu: a GPU-accelerated random-forest ensemble engine for global soil respiration.

Rebuilds the method of Lu et al. 2021 (Environ. Res. Lett. 16 054048): random forests trained on
the Soil Respiration Database predict annual soil respiration (SR) and heterotrophic respiration
(HR) on a global grid; many replicate models, each trained on an area-weighted stratified 80 %
draw of the records, give the uncertainty; autotrophic respiration is AR = SR - HR.

The public API (docs/api.md) is what :data:`__all__` names; it is imported lazily, so that
``import srgpu`` stays cheap for the CLI.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_PUBLIC: dict[str, str] = {
    "SoilRespirationEnsemble": "srgpu.estimator",
    "EnsembleConfig": "srgpu.config",
    "ForestConfig": "srgpu.config",
    "TrainConfig": "srgpu.config",
    "PredictConfig": "srgpu.config",
    "run_ensemble": "srgpu.run.ensemble",
    "open_run": "srgpu.results",
    "Run": "srgpu.results",
    "SrgpuError": "srgpu.errors",
    "InputError": "srgpu.errors",
}

__all__ = ["__version__", *_PUBLIC]


def __getattr__(name: str) -> Any:
    if name in _PUBLIC:
        return getattr(importlib.import_module(_PUBLIC[name]), name)
    raise AttributeError(f"module 'srgpu' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
