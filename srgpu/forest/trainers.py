"""Registry of training implementations (trainers) and the devices each runs on.

The training counterpart of :mod:`srgpu.forest.engines`: one table, :data:`TRAINERS`, names every
trainer once with the devices it runs on. The config's ``train.trainer`` choices and the check of
each ``(train.device, train.trainer)`` pair (:func:`srgpu.config.check_device_pair`) are derived
from it; :func:`srgpu.run.replicate.grow` dispatches on the resolved name.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TrainerEntry:
    """The devices a trainer runs on and what it is, in words."""

    devices: tuple[str, ...]
    description: str


TRAINERS: dict[str, TrainerEntry] = {
    "numba": TrainerEntry(
        ("cpu",), "srgpu's numba grower (srgpu.forest.numba_train): scikit-learn's trees, faster"
    ),
    "numba-exact": TrainerEntry(
        ("cpu",), "the numba grower replaying scikit-learn's sort on tied predictors"
    ),
    "sklearn": TrainerEntry(("cpu",), "scikit-learn's DecisionTreeRegressor (the reference)"),
    "cuml": TrainerEntry(("gpu",), "cuML's RandomForestRegressor (srgpu.forest.cuml_train)"),
}
"""Every trainer, by name."""

AUTO_TRAINER: dict[str, str] = {"cpu": "numba", "gpu": "cuml"}
"""What ``train.trainer = "auto"`` means on each device."""

TRAINER_NAMES: tuple[str, ...] = ("auto", *TRAINERS)
CPU_TRAINERS: tuple[str, ...] = tuple(n for n, e in TRAINERS.items() if "cpu" in e.devices)
"""The trainers of :func:`srgpu.forest.train.fit_forest` (the host's cores)."""
DEFAULT_TRAINER = "numba"
