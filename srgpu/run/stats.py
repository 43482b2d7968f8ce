"""Ensemble statistics written once against the array API (numpy, cupy, ``array_api_strict``).

Every function takes arrays of one array-API namespace, uses only functions of the array-API
standard and returns arrays of that same namespace (on the same device): the ensemble engine
runs the same code on host and GPU. Sums and moments are accumulated in float64 even when the
predictions arrive as float32. See ``docs/statistics.md`` for what each statistic means.

Contents
--------
* :class:`Moments`, :func:`moments_of`, :func:`merge_moments`, :func:`moments_sd` – mergeable
  per-element count/mean/M2 (Welford; Chan, Golub and LeVeque 1979) for per-cell-year mean and SD
  streamed over replicate batches and workers.
* :func:`quantiles`, :func:`median`, :func:`median_abs_deviation` – exact order statistics
  (sort + linear interpolation, numpy's default ``method="linear"`` = Hyndman and Fan type 7).
* :func:`replicate_summary` – mean, SD, median, MAD, 2.5/97.5 % quantiles and CV of a
  replicate × cell block (the per-replicate time-mean maps).
* :func:`time_mean_per_replicate` – (replicate, year, cell) → (replicate, cell).
* :func:`cell_area_m2`, :func:`global_total_pg` – areas on the sphere and global totals in Pg C/yr.
* :func:`validation_metrics` – R² (as scikit-learn's ``r2_score``), RMSE, Pearson r and bias.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import array_api_compat

from srgpu.errors import InputError

Array = Any

#: Factor that turns the unscaled MAD into a consistent estimator of the SD of a normal
#: distribution (1 / Phi^-1(3/4)); R's ``mad()`` default. Pass as ``scale=`` if wanted.
NORMAL_MAD_SCALE = 1.482602218505602

#: grams per petagram.
G_PER_PG = 1e15


# ----------------------------------------------------------------------------- helpers


def _ns(*arrays: Array):
    return array_api_compat.array_namespace(*arrays)


def _device(x: Array):
    return array_api_compat.device(x)


def _as_float64(xp, x: Array) -> Array:
    return x if x.dtype == xp.float64 else xp.astype(x, xp.float64)


def _as_floating(xp, x: Array) -> Array:
    """Keep float32/float64 as they are; promote anything else (ints, bools) to float64."""
    return x if xp.isdtype(x.dtype, "real floating") else xp.astype(x, xp.float64)


def _norm_axis(axis: int, ndim: int) -> int:
    if not -ndim <= axis < ndim:
        raise ValueError(f"axis {axis} is out of bounds for an array of dimension {ndim}")
    return axis % ndim


def _take_index(axis: int, ndim: int, i: int) -> tuple:
    """Index tuple that picks position ``i`` along ``axis`` (array-API strict indexing)."""
    return (slice(None),) * axis + (i,) + (Ellipsis,) * min(1, ndim - axis - 1)


def _full(xp, shape: tuple, value: float, *, dtype, like: Array) -> Array:
    return xp.full(shape, value, dtype=dtype, device=_device(like))


# ----------------------------------------------------------------------------- moments


@dataclass(frozen=True)
class Moments:
    """Mergeable running moments per element: sample count, mean and M2.

    ``m2`` is the sum of squared deviations from the mean, so the variance is
    ``m2 / (count - ddof)``. ``count`` is one integer shared by all elements (every replicate
    predicts every element; NaN predictions propagate instead of being skipped). ``mean`` and
    ``m2`` are float64 arrays of one shape (the input shape without the reduced axis).
    """

    count: int
    mean: Array
    m2: Array


def moments_of(block: Array, *, axis: int = 0) -> Moments:
    """Moments of ``block`` along ``axis`` (e.g. a ``(b_replicates, n_rows)`` block, ``axis=0``).

    Two-pass (mean first, then squared deviations) in float64, which is exact to rounding even
    for float32 input with a large offset. An empty axis gives ``count=0`` with zero mean/M2,
    the neutral element of :func:`merge_moments`.
    """
    xp = _ns(block)
    x = _as_float64(xp, block)
    ax = _norm_axis(axis, x.ndim)
    n = x.shape[ax]
    out_shape = x.shape[:ax] + x.shape[ax + 1 :]
    if n == 0:
        zeros = xp.zeros(out_shape, dtype=xp.float64, device=_device(x))
        return Moments(count=0, mean=zeros, m2=xp.zeros_like(zeros))
    mean = xp.mean(x, axis=ax)
    dev = x - xp.expand_dims(mean, axis=ax)
    return Moments(count=int(n), mean=mean, m2=xp.sum(dev * dev, axis=ax))


def merge_moments(a: Moments | None, b: Moments) -> Moments:
    """Exact parallel merge of two sets of moments (Chan et al. 1979); ``a=None`` means empty.

    With ``delta = mean_b - mean_a`` and ``n = n_a + n_b``::

        mean = mean_a + delta * n_b / n
        m2   = m2_a + m2_b + delta**2 * n_a * n_b / n

    The merge is associative and commutative up to rounding, so replicate batches and Dask
    workers may combine in any order.
    """
    if a is None or a.count == 0:
        return b
    if b.count == 0:
        return a
    if tuple(a.mean.shape) != tuple(b.mean.shape):
        raise ValueError(f"cannot merge moments of shapes {a.mean.shape} and {b.mean.shape}")
    n = a.count + b.count
    delta = b.mean - a.mean
    mean = a.mean + delta * (b.count / n)
    m2 = a.m2 + b.m2 + (delta * delta) * (a.count * b.count / n)
    return Moments(count=n, mean=mean, m2=m2)


def moments_sd(m: Moments, *, ddof: int = 1) -> Array:
    """Standard deviation ``sqrt(m2 / (count - ddof))``; NaN where ``count <= ddof``."""
    xp = _ns(m.m2)
    if m.count - ddof <= 0:
        return _full(xp, tuple(m.m2.shape), math.nan, dtype=m.m2.dtype, like=m.m2)
    return xp.sqrt(m.m2 / (m.count - ddof))


# ----------------------------------------------------------------------------- order statistics


def _quantiles_of_sorted(xp, xs: Array, q: Sequence[float], *, axis: int) -> Array:
    """Type-7 quantiles of ``xs`` already sorted along ``axis``; shape ``(len(q), ...rest)``."""
    n = xs.shape[axis]
    rest = xs.shape[:axis] + xs.shape[axis + 1 :]
    if n == 0:
        return _full(xp, (len(q), *rest), math.nan, dtype=xs.dtype, like=xs)
    rows = []
    for p in q:
        h = (n - 1) * p
        lo = min(int(math.floor(h)), n - 1)
        hi = min(lo + 1, n - 1)
        t = h - lo
        a = xs[_take_index(axis, xs.ndim, lo)]
        if t == 0.0 or hi == lo:
            rows.append(a)
            continue
        b = xs[_take_index(axis, xs.ndim, hi)]
        diff = b - a
        # numpy's _lerp: interpolate from the nearer end for accuracy and monotonicity.
        rows.append(a + diff * t if t < 0.5 else b - diff * (1.0 - t))
    return xp.stack(rows, axis=0)


def _check_q(q: Sequence[float]) -> list[float]:
    qs = [float(p) for p in q]
    bad = [p for p in qs if not 0.0 <= p <= 1.0]
    if bad:
        raise ValueError(f"quantile levels must lie in [0, 1], got {bad}")
    return qs


def _sorted_with_nan_mask(xp, x: Array, axis: int) -> tuple[Array, Array]:
    xs = xp.sort(x, axis=axis)
    return xs, xp.any(xp.isnan(x), axis=axis)


def _nan_where(xp, mask: Array, values: Array) -> Array:
    return xp.where(mask, xp.full_like(values, math.nan), values)


def quantiles(x: Array, q: Sequence[float], *, axis: int = 0) -> Array:
    """Exact quantiles along ``axis`` by sorting and linear interpolation.

    Equals ``np.quantile(x, q, axis=axis)`` (method ``"linear"``, R type 7): the ``p``-quantile
    interpolates between order statistics ``floor((n-1) p)`` and the next one. Result shape is
    ``(len(q), ...rest)``. Floating input keeps its dtype; integers become float64. A slice
    containing NaN gives NaN (as numpy); an empty axis gives NaN.
    """
    xp = _ns(x)
    qs = _check_q(q)
    xf = _as_floating(xp, x)
    ax = _norm_axis(axis, xf.ndim)
    xs, has_nan = _sorted_with_nan_mask(xp, xf, ax)
    out = _quantiles_of_sorted(xp, xs, qs, axis=ax)
    return _nan_where(xp, xp.expand_dims(has_nan, axis=0), out)


def median(x: Array, *, axis: int = 0) -> Array:
    """Exact median along ``axis`` (``np.median``); NaN where a slice contains NaN."""
    return quantiles(x, [0.5], axis=axis)[0, ...]


def _mad_about(xp, x: Array, med: Array, *, axis: int, scale: float) -> Array:
    dev = xp.abs(x - xp.expand_dims(med, axis=axis))
    return median(dev, axis=axis) * scale


def median_abs_deviation(x: Array, *, axis: int = 0, scale: float = 1.0) -> Array:
    """Median absolute deviation ``median(|x - median(x)|) * scale`` along ``axis``.

    Unscaled by default (``scale=1.0``, as ``scipy.stats.median_abs_deviation``), unlike R's
    ``mad()`` whose default constant is 1.4826 (:data:`NORMAL_MAD_SCALE`): Lu et al. 2021 report
    MAD/SD = 27.3/40.4 = 0.676 for SR, close to 0.6745, the unscaled MAD/SD of a normal
    distribution; a scaled MAD would be close to the SD instead.
    """
    xp = _ns(x)
    xf = _as_floating(xp, x)
    ax = _norm_axis(axis, xf.ndim)
    return _mad_about(xp, xf, median(xf, axis=ax), axis=ax, scale=float(scale))


def replicate_summary(maps: Array, *, axis: int = 0) -> dict[str, Array]:
    """Summary of a replicate block (e.g. ``(n_replicates, n_cells)`` time-mean maps).

    Keys: ``mean``, ``sd`` (ddof=1), ``median``, ``mad`` (unscaled), ``q025``, ``q975`` and
    ``cv`` (``100 * sd / mean`` in %, NaN where the mean is 0; negative where the mean is, e.g.
    AR cells). All values are float64 arrays of the input shape without ``axis``. The mean and
    SD use float64 moments; order statistics sort the input in its own precision.
    """
    xp = _ns(maps)
    xf = _as_floating(xp, maps)
    ax = _norm_axis(axis, xf.ndim)
    mom = moments_of(xf, axis=ax)
    sd = moments_sd(mom, ddof=1)
    xs, has_nan = _sorted_with_nan_mask(xp, xf, ax)
    qs = _nan_where(
        xp,
        xp.expand_dims(has_nan, axis=0),
        _quantiles_of_sorted(xp, xs, [0.5, 0.025, 0.975], axis=ax),
    )
    del xs
    med = qs[0, ...]
    mad = _mad_about(xp, xf, med, axis=ax, scale=1.0)
    mean = mom.mean
    safe = xp.where(mean == 0, xp.ones_like(mean), mean)
    cv = _nan_where(xp, mean == 0, 100.0 * sd / safe)
    return {
        "mean": mean,
        "sd": sd,
        "median": _as_float64(xp, med),
        "mad": _as_float64(xp, mad),
        "q025": _as_float64(xp, qs[1, ...]),
        "q975": _as_float64(xp, qs[2, ...]),
        "cv": cv,
    }


def time_mean_per_replicate(pred: Array, *, n_years: int | None = None) -> Array:
    """Per-replicate time mean: ``(b, n_years, n_cells)`` → ``(b, n_cells)``.

    A 2-D ``(b, n_years * n_cells)`` block is read year-major (row ``year * n_cells + cell``)
    and needs ``n_years``. The mean accumulates in float64 and is returned in the input's
    floating dtype (float32 predictions stay float32, halving the replicate × cell block).
    """
    xp = _ns(pred)
    if pred.ndim == 2:
        if n_years is None or n_years <= 0 or pred.shape[1] % n_years:
            raise ValueError(
                f"a 2-D block of shape {pred.shape} needs n_years dividing its second axis, "
                f"got n_years={n_years}"
            )
        pred = xp.reshape(pred, (pred.shape[0], n_years, pred.shape[1] // n_years))
    elif pred.ndim != 3:
        raise ValueError(f"expected (b, n_years, n_cells) or (b, rows), got shape {pred.shape}")
    elif n_years is not None and pred.shape[1] != n_years:
        raise ValueError(f"n_years={n_years} does not match axis 1 of shape {pred.shape}")
    out_dtype = _as_floating(xp, pred).dtype
    if pred.shape[1] == 0:
        return _full(xp, (pred.shape[0], pred.shape[2]), math.nan, dtype=out_dtype, like=pred)
    mean = xp.mean(_as_float64(xp, pred), axis=1)
    return mean if mean.dtype == out_dtype else xp.astype(mean, out_dtype)


# ----------------------------------------------------------------------------- areas and totals


def _check_bounds(xp, b: Array, *, field: str, limit: float) -> None:
    if b.ndim != 2 or b.shape[1] != 2:
        raise InputError(
            "cell bounds have the wrong shape", field=field, value=tuple(b.shape), expected="(n, 2)"
        )
    if b.shape[0] and bool(xp.any(xp.isnan(b) | (xp.abs(b) > limit))):
        raise InputError(
            "cell bounds out of range or NaN", field=field, expected=f"degrees within ±{limit}"
        )


def cell_area_m2(lat_bounds: Array, lon_bounds: Array, *, radius_m: float = 6_371_000.0) -> Array:
    """Areas (m²) of the cells of a regular lat/lon grid on a sphere; shape ``(nlat, nlon)``.

    ``lat_bounds`` ``(nlat, 2)`` and ``lon_bounds`` ``(nlon, 2)`` are in degrees (CF
    ``lat_bnds``/``lon_bnds``); either order of the two bounds is accepted. Each cell has area
    ``R² · Δλ · |sin φ_hi − sin φ_lo|`` (exact on the sphere), computed in float64.
    """
    xp = _ns(lat_bounds, lon_bounds)
    lat = _as_float64(xp, lat_bounds)
    lon = _as_float64(xp, lon_bounds)
    _check_bounds(xp, lat, field="lat_bounds", limit=90.0)
    _check_bounds(xp, lon, field="lon_bounds", limit=720.0)
    rad = math.pi / 180.0
    band = xp.abs(xp.sin(lat[:, 1] * rad) - xp.sin(lat[:, 0] * rad))
    dlon = xp.abs(lon[:, 1] - lon[:, 0])
    if lon.shape[0] and bool(xp.any(dlon > 360.0)):
        raise InputError("a cell is wider than 360°", field="lon_bounds", expected="width <= 360")
    return (radius_m * radius_m) * band[:, None] * (dlon * rad)[None, :]


def bounds_from_centres(
    centres: Array, *, lower: float | None = None, upper: float | None = None
) -> Array:
    """CF-style cell bounds ``(n, 2)`` of an axis given only its centres: edges midway between
    neighbours, the outer edges mirrored; clipped to ``[lower, upper]`` (e.g. ±90 for latitude).
    A single centre gets a 1-degree cell."""
    xp = _ns(centres)
    c = _as_float64(xp, centres)
    n = c.shape[0]
    if n == 1:
        edges = xp.concat([c - 0.5, c + 0.5])
    else:
        mid = (c[:-1] + c[1:]) / 2
        first = c[:1] - (mid[:1] - c[:1])
        last = c[-1:] + (c[-1:] - mid[-1:])
        edges = xp.concat([first, mid, last])
    if lower is not None or upper is not None:
        edges = xp.clip(edges, min=lower, max=upper)
    return xp.stack([edges[:-1], edges[1:]], axis=1)


def global_total_pg(flux: Array, weight_m2: Array, *, axis: int | tuple[int, ...] = -1) -> Array:
    """Global total in Pg C/yr: ``sum(flux · weight) / 1e15`` over ``axis``.

    ``flux`` is in g C m⁻² yr⁻¹, ``weight_m2`` the effective land area of each cell in m²
    (cell area × land or vegetated fraction), broadcast against ``flux`` (e.g. flux
    ``(b, n_years, n_cells)`` with weight ``(n_cells,)`` gives ``(b, n_years)``; flux
    ``(b, nlat, nlon)`` with weight ``(nlat, nlon)`` and ``axis=(-2, -1)`` gives ``(b,)``).

    NaN rule: a NaN flux counts as 0 where its weight is exactly 0 (ocean, ice, cells outside
    the mask); a NaN flux on a cell with positive weight, or a NaN weight, makes the total NaN:
    a missing land prediction must not vanish silently. Fill ocean weights with 0, not NaN.
    Products and sums are float64.
    """
    xp = _ns(flux, weight_m2)
    w = _as_float64(xp, weight_m2)
    contrib = _as_float64(xp, flux) * w
    contrib = xp.where(w == 0, xp.zeros_like(contrib), contrib)
    return xp.sum(contrib, axis=axis) / G_PER_PG


# ----------------------------------------------------------------------------- validation


def validation_metrics(y_true: Array, y_pred: Array) -> dict[str, float]:
    """Validation scores of one replicate's held-out records, as Python floats.

    * ``r2``: ``1 - SS_res / SS_tot`` (scikit-learn ``r2_score``: can be negative; if
      ``SS_tot == 0`` it is 1.0 for a perfect prediction and 0.0 otherwise);
    * ``rmse``: ``sqrt(mean((y_pred - y_true)²))``;
    * ``r``: Pearson correlation (NaN if either input is constant);
    * ``bias``: ``mean(y_pred - y_true)``.

    Computed in float64; NaN in the inputs propagates. Inputs are flattened and must have the
    same number of elements (at least one).
    """
    xp = _ns(y_true, y_pred)
    t = xp.reshape(_as_float64(xp, y_true), (-1,))
    p = xp.reshape(_as_float64(xp, y_pred), (-1,))
    if t.shape[0] != p.shape[0]:
        raise ValueError(f"y_true has {t.shape[0]} values but y_pred has {p.shape[0]}")
    n = t.shape[0]
    if n == 0:
        raise ValueError("validation_metrics needs at least one record")
    err = p - t
    ss_res = float(xp.sum(err * err))
    dt = t - xp.mean(t)
    dp = p - xp.mean(p)
    ss_tot = float(xp.sum(dt * dt))
    ss_pred = float(xp.sum(dp * dp))
    cross = float(xp.sum(dt * dp))
    if ss_tot == 0.0:
        r2 = 1.0 if ss_res == 0.0 else 0.0
    else:
        r2 = 1.0 - ss_res / ss_tot
    denom = math.sqrt(ss_tot) * math.sqrt(ss_pred)
    r = cross / denom if denom > 0.0 else math.nan
    return {
        "r2": r2,
        "rmse": math.sqrt(ss_res / n),
        "r": r,
        "bias": float(xp.mean(err)),
    }
