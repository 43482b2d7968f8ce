"""Registry of inference engines: ``get_engine(name, device=...)``.

``"auto"`` picks the fastest engine measured for the device: on CPU the numba kernel
(:mod:`srgpu.forest.numba_engine`, ~3-4x scikit-learn per core, bit-identical), on GPU nvForest.
nvForest is imported only when asked for, so that CPU installs never need its CUDA wheels.
"""

from __future__ import annotations

from srgpu.errors import BackendError, ConfigError
from srgpu.forest.protocol import InferenceEngine

ENGINE_NAMES = ("auto", "numba", "sklearn", "nvforest")
DEVICES = ("cpu", "gpu")


def _nvforest(device: str) -> InferenceEngine:
    try:
        from srgpu.forest.nvforest_engine import NvForestEngine
    except ImportError as exc:
        raise BackendError(
            f"inference engine 'nvforest' is not available ({exc}); "
            "install srgpu[nvforest] or choose engine 'numba'"
        ) from None
    return NvForestEngine(device=device)


def get_engine(name: str, *, device: str = "cpu") -> InferenceEngine:
    """The inference engine ``name`` ("auto", "numba", "sklearn", "nvforest") for ``device``
    ("cpu" or "gpu").

    "numba" and "sklearn" run on CPU only. "auto" is "numba" on CPU and "nvforest" on GPU.
    Raises :class:`~srgpu.errors.ConfigError` for an unknown name or device and
    :class:`~srgpu.errors.BackendError` when the engine cannot run here.
    """
    if name not in ENGINE_NAMES:
        raise ConfigError(f"engine must be one of {ENGINE_NAMES}, got {name!r}")
    if device not in DEVICES:
        raise ConfigError(f"device must be one of {DEVICES}, got {device!r}")
    if name == "auto":
        name = "numba" if device == "cpu" else "nvforest"
    if name == "nvforest":
        return _nvforest(device)
    if device != "cpu":
        raise BackendError(f"inference engine {name!r} runs on CPU only, not on {device!r}")
    if name == "numba":
        from srgpu.forest.numba_engine import NumbaEngine

        return NumbaEngine()
    from srgpu.forest.sklearn_engine import SklearnEngine

    return SklearnEngine()
