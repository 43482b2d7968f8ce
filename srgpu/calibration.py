"""Calibration of predictive distributions on held-out observations (plain numpy functions).

A predictive distribution here is discrete: weights ``w_j >= 0`` (summing to 1) on ascending
values ``x_j`` (a quantile regression forest's weights over the training records sorted by y,
:mod:`srgpu.forest.predictive`), one row per observation; an ensemble of equally likely values
is the special case ``w_j = 1 / n``.

* :func:`interval_coverage`, :func:`central_coverage` – the share of observations inside the
  central 50, 90 and 95 % intervals (bounds included), from the quantiles at
  0.25/0.75, 0.05/0.95, 0.025/0.975.
* :func:`pit` – probability integral transform ``F(y-) + u (F(y) - F(y-))``: randomised with
  ``u ~ U(0, 1)`` drawn from a given generator (exactly uniform for a calibrated discrete
  forecast), or ``u = 1/2`` (mid-PIT) without one. :func:`pit_histogram`: the shares of PIT
  values in ``bins`` equal bins of [0, 1] (flat at ``1 / bins`` when calibrated).
* :func:`crps` – continuous ranked probability score of each observation, closed form for a
  discrete distribution (Gneiting and Raftery 2007, eq. 21, ``E|X - y| - E|X - X'| / 2``), in
  units of y; ``E|X - X'|`` in O(n) from the sorted values:
  ``sum_{j,k} w_j w_k |x_j - x_k| = 2 sum_j w_j x_j (2 C_j - w_j - 1)``, ``C_j`` the cumulative
  weight up to and including ``j``.
* :func:`summarise_replicates` – mean and SD over replicates of these metrics.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from srgpu.errors import InputError

NOMINAL = (0.5, 0.9, 0.95)
"""Central interval probabilities whose coverage is reported."""
PIT_BINS = 10


def _weights(weights: np.ndarray, values: np.ndarray, n_obs: int) -> tuple:
    W = np.asarray(weights, dtype=np.float64)
    x = np.asarray(values, dtype=np.float64)
    if W.ndim == 1:
        W = W[None, :]
    if W.ndim != 2 or W.shape[1] != x.shape[-1] or W.shape[0] != n_obs:
        raise InputError(
            "weights must be (n_obs, n_values)",
            field="weights",
            value=W.shape,
            expected=f"({n_obs}, {x.shape[-1]})",
        )
    if x.ndim == 1:
        x = np.broadcast_to(x, W.shape)
    if x.shape != W.shape:
        raise InputError("values must be (n_values,) or like weights", field="values")
    if np.any(np.diff(x, axis=1) < 0):
        raise InputError("values must be sorted ascending", field="values")
    if np.any(W < 0):
        raise InputError("weights must be >= 0", field="weights")
    total = W.sum(axis=1, keepdims=True)
    if np.any(total <= 0):
        raise InputError("every row needs a positive total weight", field="weights")
    return W / total, x


def interval_coverage(y: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> float:
    """Share of ``y`` with ``lower <= y <= upper``."""
    y = np.asarray(y, dtype=np.float64)
    inside = (np.asarray(lower) <= y) & (y <= np.asarray(upper))
    return float(np.mean(inside)) if y.size else float("nan")


def central_coverage(
    y: np.ndarray,
    quantiles: np.ndarray,
    levels: Sequence[float],
    *,
    nominal: Sequence[float] = NOMINAL,
) -> dict[str, float]:
    """Coverage of the central intervals of probability ``nominal`` (keys ``"0.5"``, ``"0.9"``,
    ``"0.95"``): ``quantiles`` (n_obs, n_levels) at ``levels`` must hold each interval's bounds
    ``(1 - p) / 2`` and ``(1 + p) / 2``."""
    levels = [round(float(v), 10) for v in levels]
    out = {}
    for p in nominal:
        lo, hi = round((1 - p) / 2, 10), round((1 + p) / 2, 10)
        if lo not in levels or hi not in levels:
            raise InputError(
                "quantile levels lack an interval bound",
                field="levels",
                value=levels,
                expected=f"{lo} and {hi}",
            )
        out[f"{p:g}"] = interval_coverage(
            y, quantiles[:, levels.index(lo)], quantiles[:, levels.index(hi)]
        )
    return out


def pit(
    y: np.ndarray,
    weights: np.ndarray,
    values: np.ndarray,
    *,
    rng: np.random.Generator | None = None,
) -> np.ndarray:
    """PIT of each observation ``y[i]`` under the distribution ``weights[i]`` on ``values``
    (randomised with ``rng``, mid-PIT without)."""
    y = np.asarray(y, dtype=np.float64).reshape(-1)
    W, x = _weights(weights, values, y.shape[0])
    below = np.sum(W * (x < y[:, None]), axis=1)
    at = np.sum(W * (x == y[:, None]), axis=1)
    u = 0.5 if rng is None else rng.random(y.shape[0])
    return np.clip(below + u * at, 0.0, 1.0)


def pit_histogram(values: np.ndarray, *, bins: int = PIT_BINS) -> np.ndarray:
    """Shares of PIT ``values`` in ``bins`` equal bins of [0, 1] (1 counted in the last bin)."""
    v = np.asarray(values, dtype=np.float64).reshape(-1)
    if v.size == 0:
        return np.full(bins, np.nan)
    idx = np.minimum((v * bins).astype(np.int64), bins - 1)
    return np.bincount(idx, minlength=bins) / v.size


def crps(y: np.ndarray, weights: np.ndarray, values: np.ndarray) -> np.ndarray:
    """CRPS of each observation ``y[i]`` under ``weights[i]`` on ``values`` (see the module
    docstring), units of y; 0 only for a point mass at the observation."""
    y = np.asarray(y, dtype=np.float64).reshape(-1)
    W, x = _weights(weights, values, y.shape[0])
    term1 = np.sum(W * np.abs(x - y[:, None]), axis=1)
    C = np.cumsum(W, axis=1)
    spread = np.sum(W * x * (2.0 * C - W - 1.0), axis=1)  # = E|X - X'| / 2
    return np.maximum(term1 - spread, 0.0)


def crps_sample(y: np.ndarray, samples: np.ndarray) -> np.ndarray:
    """CRPS of each ``y[i]`` under the equally weighted ``samples[i]`` (n_obs, m), e.g. the
    replicate-spread ensemble of forest means."""
    s = np.sort(np.asarray(samples, dtype=np.float64), axis=1)
    return crps(y, np.full(s.shape, 1.0 / s.shape[1]), s)


def summarise_replicates(per_replicate: Sequence[Mapping]) -> dict:
    """Mean and SD (ddof 1; 0 for one replicate) over replicates of ``coverage`` (dict by
    nominal), ``pit_hist`` (list) and ``crps`` (the replicate's mean CRPS): the
    ``calibration.<F>`` block of ``summary.json``."""
    if not per_replicate:
        raise InputError("no replicate to summarise", field="per_replicate")

    def ms(a: np.ndarray) -> tuple:
        sd = a.std(axis=0, ddof=1) if a.shape[0] > 1 else np.zeros(a.shape[1:])
        return a.mean(axis=0), sd

    keys = list(per_replicate[0]["coverage"])
    cov = np.array([[r["coverage"][k] for k in keys] for r in per_replicate])
    hist = np.array([r["pit_hist"] for r in per_replicate], dtype=np.float64)
    score = np.array([r["crps"] for r in per_replicate], dtype=np.float64)
    cm, cs = ms(cov)
    hm, hs = ms(hist)
    sm, ss = ms(score)
    return {
        "coverage": {k: {"mean": float(cm[i]), "sd": float(cs[i])} for i, k in enumerate(keys)},
        "pit_hist": {"mean": hm.tolist(), "sd": hs.tolist()},
        "crps": {"mean": float(sm), "sd": float(ss)},
        "replicates": len(per_replicate),
    }
