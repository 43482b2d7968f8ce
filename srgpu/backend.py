"""The prediction device, chosen once per run: ``auto``, ``cpu`` or ``gpu``.

``predict.device`` (:class:`srgpu.config.PredictConfig`, ``--predict-device`` or ``--device``) is
resolved here by :func:`resolve_predict`; the result is also the device of the Dask cluster. (The
training device, ``train.device``, never probes the machine: see :class:`srgpu.config.TrainConfig`.)
:func:`resolve_backend` probes the machine (never at import time: this module imports without cupy,
cuML or nvForest) and returns a frozen :class:`Backend` that the rest of the run passes around: its
``device``, a human-readable ``reason`` for the choice and ``xp``, the array namespace of the device
(``array_api_compat.numpy`` or ``array_api_compat.cupy``).

``auto`` takes the GPU only when all of these hold, and otherwise falls back to the CPU with a
reason naming the first that failed:

1. cupy imports;
2. a CUDA driver is loaded (``cupy.cuda.runtime.driverGetVersion() > 0``);
3. ``cupy.cuda.runtime.getDeviceCount() > 0``;
4. the ``[gpu]`` extra is installed: ``nvforest`` (the GPU inference engine) imports.

``predict.device = "gpu"`` on a machine that fails one of them raises
:class:`~srgpu.errors.BackendError` (``predict.device gpu: no usable GPU: <reason>``), which the
CLI turns into exit code 2. ``auto`` with an engine that runs on the CPU only (``numba``,
``sklearn``) is the CPU without a probe.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from srgpu.errors import BackendError, ConfigError

Device = Literal["cpu", "gpu"]
REQUESTS = ("auto", "cpu", "gpu")


@dataclass(frozen=True)
class Backend:
    """The device of a run and its array namespace.

    ``xp`` is an array-API namespace (``array_api_compat.numpy`` on CPU,
    ``array_api_compat.cupy`` on GPU); kernels take arrays of that namespace.
    """

    device: Device
    reason: str
    xp: Any = field(repr=False, compare=False)

    @property
    def is_gpu(self) -> bool:
        return self.device == "gpu"

    def asarray(self, x: Any, *, dtype: Any = None) -> Any:
        """``x`` as an array of this backend's device (a host-to-device copy on GPU)."""
        return self.xp.asarray(x, dtype=dtype)

    def to_host(self, x: Any) -> np.ndarray:
        """``x`` as a numpy array (a device-to-host copy for a cupy array)."""
        return to_host(x)


def to_host(x: Any) -> np.ndarray:
    """Any numpy or cupy array (or scalar) as a numpy array."""
    if hasattr(x, "__cuda_array_interface__") and hasattr(x, "get"):
        return np.asarray(x.get())
    return np.asarray(x)


def cpu_backend(reason: str) -> Backend:
    """The CPU backend with the given reason."""
    import array_api_compat.numpy as xp_numpy

    return Backend(device="cpu", reason=reason, xp=xp_numpy)


def _gpu_namespace() -> Any:
    """``array_api_compat.cupy`` (imports cupy). Kept apart so that tests can replace it."""
    return importlib.import_module("array_api_compat.cupy")


def _version_of(module: Any) -> str:
    return str(getattr(module, "__version__", "unknown"))


def probe_gpu() -> dict[str, Any]:
    """What this machine offers for the GPU path, for ``srgpu info`` and :func:`resolve_backend`.

    Returns a JSON-serialisable dict: ``usable`` (bool), ``reason`` (why or why not), ``cupy``
    (version or None), ``cuda_driver`` and ``cuda_runtime`` (CUDA version integers such as
    13020, or None), ``device_count``, ``devices`` (name and memory of each), ``nvforest``
    (version or None). Never raises: every failure becomes the ``reason``.
    """
    info: dict[str, Any] = {
        "usable": False,
        "reason": "",
        "cupy": None,
        "cuda_driver": None,
        "cuda_runtime": None,
        "device_count": 0,
        "devices": [],
        "nvforest": None,
    }
    try:
        cupy = importlib.import_module("cupy")
    except ImportError as exc:
        info["reason"] = f"cupy is not installed ({exc.__class__.__name__}: {exc})"
        return info
    except Exception as exc:  # a broken CUDA install can raise anything on import
        info["reason"] = f"cupy failed to import: {exc.__class__.__name__}: {exc}"
        return info
    info["cupy"] = _version_of(cupy)
    runtime = cupy.cuda.runtime
    try:
        info["cuda_runtime"] = int(runtime.runtimeGetVersion())
    except Exception:  # informative only
        pass
    try:
        driver = int(runtime.driverGetVersion())
    except Exception as exc:
        info["reason"] = f"no NVIDIA driver: {exc.__class__.__name__}: {exc}"
        return info
    info["cuda_driver"] = driver
    if driver <= 0:
        info["reason"] = "no NVIDIA driver is loaded (cudaDriverGetVersion returned 0)"
        return info
    try:
        count = int(runtime.getDeviceCount())
    except Exception as exc:
        info["reason"] = f"CUDA sees no device: {exc.__class__.__name__}: {exc}"
        return info
    info["device_count"] = count
    if count <= 0:
        info["reason"] = "CUDA driver loaded but no GPU device is visible"
        return info
    for i in range(count):
        try:
            props = runtime.getDeviceProperties(i)
            name = props.get("name", b"?")
            name = name.decode() if isinstance(name, bytes) else str(name)
            mem = int(props.get("totalGlobalMem", 0))
            info["devices"].append({"id": i, "name": name, "memory_gib": round(mem / 2**30, 1)})
        except Exception as exc:
            info["devices"].append({"id": i, "error": f"{exc.__class__.__name__}: {exc}"})
    try:
        nvforest = importlib.import_module("nvforest")
    except ImportError as exc:
        info["reason"] = (
            f"nvforest is not installed (install the [gpu] extra: nvforest-cu13): {exc}"
        )
        return info
    except Exception as exc:
        info["reason"] = f"nvforest failed to import: {exc.__class__.__name__}: {exc}"
        return info
    info["nvforest"] = _version_of(nvforest)
    first = info["devices"][0] if info["devices"] else {}
    info["usable"] = True
    info["reason"] = (
        f"{count} CUDA device(s), GPU 0: {first.get('name', '?')}; "
        f"cupy {info['cupy']}, nvforest {info['nvforest']}"
    )
    return info


def resolve_backend(requested: str = "auto", *, setting: str = "predict.device") -> Backend:
    """Choose the device once: ``"auto"``, ``"cpu"`` or ``"gpu"`` (see the module docstring).

    ``setting`` names the request in reasons and errors. Raises :class:`BackendError` for
    ``"gpu"`` without a usable GPU, :class:`ConfigError` for an unknown request.
    """
    if requested not in REQUESTS:
        raise ConfigError(f"{setting} must be one of {REQUESTS}, got {requested!r}")
    if requested == "cpu":
        return cpu_backend(f"requested {setting} cpu")
    probe = probe_gpu()
    if not probe["usable"]:
        if requested == "gpu":
            raise BackendError(f"{setting} gpu: no usable GPU: {probe['reason']}")
        return cpu_backend(f"auto: no usable GPU ({probe['reason']})")
    try:
        xp = _gpu_namespace()
    except Exception as exc:
        reason = f"array_api_compat.cupy failed to import: {exc.__class__.__name__}: {exc}"
        if requested == "gpu":
            raise BackendError(f"{setting} gpu: no usable GPU: {reason}") from None
        return cpu_backend(f"auto: no usable GPU ({reason})")
    prefix = f"requested {setting} gpu" if requested == "gpu" else "auto"
    return Backend(device="gpu", reason=f"{prefix}: {probe['reason']}", xp=xp)


def resolve_predict(predict: Any) -> Backend:
    """The device of a run's prediction stage (and its Dask cluster) from its
    :class:`~srgpu.config.PredictConfig`: ``device = "auto"`` with an engine that runs on the
    CPU only is the CPU without a probe; otherwise :func:`resolve_backend` of the device."""
    request = predict.device_request
    if predict.device == "auto" and request == "cpu":
        return cpu_backend(f"auto: predict.engine {predict.engine!r} runs on the CPU only")
    return resolve_backend(request)
