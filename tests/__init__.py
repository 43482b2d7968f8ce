"""Optional dependencies probed once, as xarray does: ``has_X`` flags, ``requires_X`` marks."""

from __future__ import annotations

import importlib.util

import pytest


def _has(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def _has_gpu() -> bool:
    if not _has("cupy"):
        return False
    try:
        import cupy

        return cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:
        return False


has_nvforest = _has("nvforest")
has_cuml = _has("cuml")
has_array_api_strict = _has("array_api_strict")
has_matplotlib = _has("matplotlib")
has_gpu = _has_gpu()

requires_nvforest = pytest.mark.skipif(not has_nvforest, reason="nvforest-cu13 not installed")
requires_cuml = pytest.mark.skipif(not has_cuml, reason="cuML not installed")
requires_gpu = pytest.mark.skipif(not has_gpu, reason="no CUDA GPU visible to cupy")
requires_matplotlib = pytest.mark.skipif(not has_matplotlib, reason="matplotlib not installed")
