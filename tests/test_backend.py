"""Device choice: auto/cpu/gpu, with a fake cupy for the GPU branch."""

from __future__ import annotations

import sys
import types

import numpy as np
import pytest

from srgpu import backend as backend_mod
from srgpu.backend import Backend, probe_gpu, resolve_backend, to_host
from srgpu.errors import BackendError, ConfigError
from tests import has_gpu, requires_gpu


def _fake_cupy(*, driver: int = 13000, count: int = 1, count_error: Exception | None = None):
    runtime = types.SimpleNamespace(
        runtimeGetVersion=lambda: 13020,
        driverGetVersion=lambda: driver,
        getDeviceProperties=lambda i: {"name": b"Fake H100", "totalGlobalMem": 80 * 2**30},
    )

    def get_device_count():
        if count_error is not None:
            raise count_error
        return count

    runtime.getDeviceCount = get_device_count
    mod = types.ModuleType("cupy")
    mod.__version__ = "99.0"
    mod.cuda = types.SimpleNamespace(runtime=runtime)
    return mod


@pytest.fixture
def fake_gpu(monkeypatch):
    """A machine with one fake GPU, cupy and nvforest."""

    def install(*, nvforest: bool = True, **kw):
        monkeypatch.setitem(sys.modules, "cupy", _fake_cupy(**kw))
        if nvforest:
            nv = types.ModuleType("nvforest")
            nv.__version__ = "26.10.0"
            monkeypatch.setitem(sys.modules, "nvforest", nv)
        else:
            monkeypatch.setitem(sys.modules, "nvforest", None)  # import raises ImportError
        monkeypatch.setattr(backend_mod, "_gpu_namespace", lambda: "fake-xp")

    return install


def test_cpu_requested():
    b = resolve_backend("cpu")
    assert b == Backend(device="cpu", reason="requested predict.device cpu", xp=None)
    assert b.xp.__name__ == "array_api_compat.numpy"
    assert not b.is_gpu
    x = b.asarray([1.0, 2.0])
    np.testing.assert_array_equal(b.to_host(x), [1.0, 2.0])


@pytest.mark.skipif(has_gpu, reason="this machine has a GPU")
def test_auto_without_gpu_is_cpu_with_reason():
    b = resolve_backend("auto")
    assert b.device == "cpu"
    assert b.reason.startswith("auto: no usable GPU (")
    assert len(b.reason) > len("auto: no usable GPU ()")


@pytest.mark.skipif(has_gpu, reason="this machine has a GPU")
def test_gpu_without_gpu_raises():
    with pytest.raises(BackendError, match=r"^predict.device gpu: no usable GPU: "):
        resolve_backend("gpu")


def test_unknown_request():
    with pytest.raises(ConfigError, match="predict.device must be one of"):
        resolve_backend("tpu")


def test_no_cupy(monkeypatch):
    monkeypatch.setitem(sys.modules, "cupy", None)
    probe = probe_gpu()
    assert probe["usable"] is False
    assert probe["reason"].startswith("cupy is not installed")
    assert resolve_backend("auto").device == "cpu"


@pytest.mark.parametrize(
    ("kw", "reason"),
    [
        ({"driver": 0}, "no NVIDIA driver is loaded"),
        ({"count": 0}, "no GPU device is visible"),
        ({"count_error": RuntimeError("cudaErrorNoDevice")}, "CUDA sees no device"),
        ({"nvforest": False}, "nvforest is not installed"),
    ],
)
def test_fake_cupy_negative_branches(fake_gpu, kw, reason):
    fake_gpu(**kw)
    probe = probe_gpu()
    assert probe["usable"] is False
    assert reason in probe["reason"]
    b = resolve_backend("auto")
    assert b.device == "cpu" and reason in b.reason
    with pytest.raises(BackendError, match=reason):
        resolve_backend("gpu")


def test_fake_cupy_positive_branch(fake_gpu):
    fake_gpu()
    probe = probe_gpu()
    assert probe["usable"] is True
    assert probe["device_count"] == 1
    assert probe["devices"] == [{"id": 0, "name": "Fake H100", "memory_gib": 80.0}]
    assert probe["cupy"] == "99.0" and probe["nvforest"] == "26.10.0"
    for requested in ("auto", "gpu"):
        b = resolve_backend(requested)
        assert b.device == "gpu" and b.is_gpu
        assert b.xp == "fake-xp"
        assert "Fake H100" in b.reason
    assert resolve_backend("cpu").device == "cpu"


def test_predict_device_auto_with_a_cpu_only_engine_is_the_cpu_without_a_probe(fake_gpu):
    """On a machine with a usable GPU, ``predict.device = "auto"`` follows the engine: a CPU-only
    engine (numba, sklearn) predicts on the CPU; ``auto`` and nvforest take the GPU."""
    from srgpu.backend import resolve_predict
    from srgpu.config import PredictConfig

    fake_gpu()
    for engine in ("numba", "sklearn"):
        b = resolve_predict(PredictConfig(engine=engine))
        assert (
            b.device == "cpu"
            and b.reason == f"auto: predict.engine {engine!r} runs on the CPU only"
        )
    for engine in ("auto", "nvforest"):
        assert resolve_predict(PredictConfig(engine=engine)).device == "gpu"
    assert resolve_predict(PredictConfig(device="cpu", engine="nvforest")).device == "cpu"
    assert resolve_predict(PredictConfig(device="gpu")).reason.startswith(
        "requested predict.device gpu"
    )


def test_to_host_of_device_like_array():
    class DeviceArray:
        __cuda_array_interface__ = {}

        def get(self):
            return np.arange(3)

    np.testing.assert_array_equal(to_host(DeviceArray()), [0, 1, 2])
    np.testing.assert_array_equal(to_host(np.ones(2)), [1.0, 1.0])


@pytest.mark.gpu
@requires_gpu
def test_real_gpu_is_picked():
    b = resolve_backend("auto")
    assert b.device == "gpu"
    x = b.asarray(np.arange(4.0))
    np.testing.assert_array_equal(b.to_host(x), np.arange(4.0))
