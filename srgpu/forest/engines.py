"""Registry of inference engines: ``get_engine(name, device=...)``.

One table, :data:`ENGINES`, in the manner of xarray's backend entry points: each engine is named
once with the module and class that implement it (imported only when asked for, so that CPU
installs never need nvForest's CUDA wheels) and the devices it runs on. ``"auto"`` picks the
fastest engine measured for the device: on CPU the numba kernel (:mod:`srgpu.forest.numba_engine`,
bit-identical to scikit-learn's ``predict``; its speed is in docs/benchmarks.md), on GPU nvForest.
The config's choices (:data:`srgpu.config.ENGINES`) and the check of each ``(predict.device,
predict.engine)`` pair (:data:`srgpu.config.STAGES`) are derived from this table; the training
counterpart is :mod:`srgpu.forest.trainers`.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

from srgpu.errors import BackendError, ConfigError
from srgpu.forest.protocol import InferenceEngine


@dataclass(frozen=True)
class EngineEntry:
    """Where an engine lives and which devices it runs on."""

    module: str
    cls: str
    devices: tuple[str, ...]
    extra: str | None = None  # the pip extra that installs it, for the error message


ENGINES: dict[str, EngineEntry] = {
    "numba": EngineEntry("srgpu.forest.numba_engine", "NumbaEngine", ("cpu",)),
    "sklearn": EngineEntry("srgpu.forest.sklearn_engine", "SklearnEngine", ("cpu",)),
    "nvforest": EngineEntry(
        "srgpu.forest.nvforest_engine", "NvForestEngine", ("cpu", "gpu"), extra="nvforest"
    ),
}
"""Every inference engine, by name."""

AUTO_ENGINE: dict[str, str] = {"cpu": "numba", "gpu": "nvforest"}
"""What ``"auto"`` means on each device."""

ENGINE_NAMES: tuple[str, ...] = ("auto", *ENGINES)
DEVICES: tuple[str, ...] = tuple(AUTO_ENGINE)


def get_engine(name: str, *, device: str = "cpu") -> InferenceEngine:
    """The inference engine ``name`` (a key of :data:`ENGINES` or ``"auto"``) for ``device``
    (``"cpu"`` or ``"gpu"``).

    Raises :class:`~srgpu.errors.ConfigError` for an unknown name or device and
    :class:`~srgpu.errors.BackendError` when the engine cannot run here.
    """
    if name not in ENGINE_NAMES:
        raise ConfigError(f"engine must be one of {ENGINE_NAMES}, got {name!r}")
    if device not in DEVICES:
        raise ConfigError(f"device must be one of {DEVICES}, got {device!r}")
    if name == "auto":
        name = AUTO_ENGINE[device]
    entry = ENGINES[name]
    if device not in entry.devices:
        raise BackendError(
            f"inference engine {name!r} runs on {', '.join(entry.devices)} only, not on {device!r}"
        )
    try:
        cls = getattr(importlib.import_module(entry.module), entry.cls)
    except ImportError as exc:
        hint = f"install srgpu[{entry.extra}] or " if entry.extra else ""
        raise BackendError(
            f"inference engine {name!r} is not available ({exc}); {hint}choose engine 'numba'"
        ) from None
    return cls(device=device) if len(entry.devices) > 1 else cls()
