"""Explaining a finished ensemble: permutation and impurity importance, partial dependence with
replicate bands, and the area of applicability (AOA) of each flux's model.

The store keeps no forests. Replicate ``i``'s forests are re-grown exactly as the ensemble grew
them (the replicate recipe of :mod:`srgpu.run.replicate`: the same stratified draw, the same
forest seed), so the explanation is of the very models whose maps are in the store, for a subset
of replicates.

* **Permutation importance** (scikit-learn ``permutation_importance``, scoring RMSE): the mean
  increase of the held-out RMSE (g C m-2 yr-1) of replicate ``i`` when one predictor's column of
  its own held-out 20 % is shuffled (``repeats`` shuffles), per predictor and replicate.
* **Impurity importance**: scikit-learn's ``feature_importances_`` (mean decrease of squared
  error, normalised to sum 1 per forest; randomForest's ``IncNodePurity`` up to the scale).
* **Partial dependence**: for each predictor, a grid of ``points`` values evenly spaced between
  its 2.5 and 97.5 % quantiles in the records; the forest-mean prediction averaged over a fixed
  seeded sample of ``rows`` records whose column is set to the grid value. All replicates predict
  all rows at once through the inference engine; the bands are the median and the 2.5-97.5 %
  quantiles across replicates.
* **AOA** (:mod:`srgpu.analysis.applicability`): training data = all records of the flux (the
  union of
  the replicates' training draws), weights = mean permutation importance across the explained
  replicates, CV folds = 5-fold ``GroupKFold`` of 5° blocks (the spatial folds of the honest
  validation, so the threshold reflects extrapolation to new places).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from srgpu.config import TRAINED_FLUXES, EnsembleConfig
from srgpu.errors import ConfigError
from srgpu.run.sampling import PURPOSE_IMPORTANCE

BAND = (0.025, 0.5, 0.975)


def regrow_replicates(
    inputs,
    config: EnsembleConfig,
    *,
    flux: str,
    replicates: Sequence[int],
    threads: int | None = None,
) -> list[tuple[object, object]]:
    """``[(forest, split)]`` of the given replicates, re-grown exactly as the ensemble did."""
    from srgpu.run.replicate import train_replicates

    jobs = [(int(r), flux) for r in replicates]
    return train_replicates(inputs, config, jobs, threads=threads)


def permutation_importances(
    forests: Sequence[object],
    tests: Sequence[tuple[np.ndarray, np.ndarray]],
    *,
    repeats: int,
    seed: int,
    flux: str,
    replicates: Sequence[int],
) -> np.ndarray:
    """``(n_replicates, p)`` mean increase in held-out RMSE when a predictor is shuffled.

    ``tests[i] = (X_test, y_test)`` of replicate ``replicates[i]``; the shuffles of replicate
    ``r`` come from ``SeedSequence(seed, spawn_key=(r, flux, PURPOSE_IMPORTANCE))``.
    """
    from sklearn.inspection import permutation_importance

    from srgpu.forest.grown import as_sklearn
    from srgpu.run.sampling import replicate_seed

    out = []
    for rf, (X, y), r in zip(forests, tests, replicates, strict=True):
        ss = replicate_seed(seed, r, flux, PURPOSE_IMPORTANCE)
        rs = int(np.random.default_rng(ss).integers(2**31 - 1))
        res = permutation_importance(
            as_sklearn(rf),
            np.asarray(X, dtype=np.float32),
            np.asarray(y, dtype=np.float64),
            scoring="neg_root_mean_squared_error",
            n_repeats=repeats,
            random_state=rs,
            n_jobs=1,
        )
        out.append(res.importances_mean)
    return np.asarray(out)


def impurity_importances(forests: Sequence[object]) -> np.ndarray:
    """``(n_replicates, p)`` scikit-learn impurity importances (sum 1 per forest)."""
    return np.asarray([rf.feature_importances_ for rf in forests])


def pd_grid(X: np.ndarray, *, points: int = 20, lo: float = 0.025, hi: float = 0.975) -> np.ndarray:
    """``(p, points)`` grid: evenly spaced between each column's ``lo`` and ``hi`` quantiles."""
    if points < 2:
        raise ConfigError(f"partial dependence needs >= 2 grid points, got {points}")
    q = np.quantile(np.asarray(X, dtype=np.float64), [lo, hi], axis=0)
    return np.linspace(q[0], q[1], points).T.astype(np.float32)


def sample_rows(n: int, *, rows: int, seed: int) -> np.ndarray:
    """A sorted seeded sample of ``min(rows, n)`` row indices."""
    if rows >= n:
        return np.arange(n)
    rng = np.random.default_rng(np.random.SeedSequence(seed))
    return np.sort(rng.choice(n, size=rows, replace=False))


def partial_dependence(
    compiled, X_ref: np.ndarray, *, grid: np.ndarray, max_rows: int = 200_000
) -> np.ndarray:
    """``(p, points, n_replicates)`` partial dependence of every predictor for every forest.

    ``compiled.predict(X) -> (n_replicates, n_rows)`` (the inference-engine protocol). For
    predictor ``j`` and grid value ``v``: the mean over the rows of ``X_ref`` of the forest-mean
    prediction with column ``j`` set to ``v``. Rows are stacked and predicted in blocks of at
    most ``max_rows``.
    """
    X_ref = np.ascontiguousarray(X_ref, dtype=np.float32)
    n, p = X_ref.shape
    if grid.shape[0] != p:
        raise ConfigError(f"partial dependence grid has {grid.shape[0]} rows, X has {p} columns")
    G = grid.shape[1]
    per_block = max(1, max_rows // n)
    jobs = [(j, g) for j in range(p) for g in range(G)]
    out = None
    for b0 in range(0, len(jobs), per_block):
        block = jobs[b0 : b0 + per_block]
        stack = np.repeat(X_ref[None, :, :], len(block), axis=0)
        for k, (j, g) in enumerate(block):
            stack[k, :, j] = grid[j, g]
        pred = np.asarray(compiled.predict(stack.reshape(-1, p)))  # (n_rep, len(block) * n)
        if hasattr(pred, "get"):
            pred = pred.get()
        means = pred.reshape(pred.shape[0], len(block), n).mean(axis=2)
        if out is None:
            out = np.empty((p, G, pred.shape[0]))
        for k, (j, g) in enumerate(block):
            out[j, g] = means[:, k]
    assert out is not None
    return out


@dataclass
class FluxExplanation:
    """Everything ``srgpu explain`` computes for one flux."""

    flux: str
    names: tuple[str, ...]
    replicates: np.ndarray  # (r,)
    permutation: np.ndarray  # (r, p) g C m-2 yr-1
    impurity: np.ndarray  # (r, p) 1
    test_rmse: np.ndarray  # (r,) held-out RMSE of each replicate
    pd_x: np.ndarray  # (p, points)
    pd: np.ndarray  # (p, points, r)
    di: np.ndarray  # (n_rows,) DI per prediction row
    aoa: np.ndarray  # (n_rows,) bool
    threshold: float
    train_di: float | None = None


def explain_flux(
    inputs,
    config: EnsembleConfig,
    *,
    flux: str,
    replicates: Sequence[int],
    engine=None,
    repeats: int = 5,
    points: int = 20,
    rows: int = 500,
    block_deg: float = 5.0,
    n_folds: int = 5,
    progress: Callable[[str], None] | None = None,
) -> FluxExplanation:
    """Regrow ``replicates`` of ``flux`` and explain them (see the module docstring).

    ``progress`` is called with a short text as each stage starts (for a console status line).
    """

    def stage(text: str) -> None:
        if progress is not None:
            progress(f"{flux}: {text}")

    from srgpu.analysis.applicability import area_of_applicability
    from srgpu.analysis.selection import spatial_blocks
    from srgpu.run.replicate import validate

    if flux not in TRAINED_FLUXES:
        raise ConfigError(f"unknown flux {flux!r}; expected one of {TRAINED_FLUXES}")
    data = inputs.fluxes[flux]
    reps = np.asarray(list(replicates), dtype=np.int64)
    stage(f"re-growing {reps.size} replicate forest(s)")
    trained = regrow_replicates(inputs, config, flux=flux, replicates=reps)
    forests = [f for f, _ in trained]
    tests = [(data.X[s.test], data.y[s.test]) for _, s in trained]
    stage(f"permutation importance ({repeats} shuffles per predictor)")
    perm = permutation_importances(
        forests, tests, repeats=repeats, seed=config.seed, flux=flux, replicates=reps
    )
    imp = impurity_importances(forests)
    rmse = np.array([validate(f, X, y)["rmse"] for f, (X, y) in zip(forests, tests, strict=True)])

    if engine is None:
        from srgpu.forest.engines import get_engine

        engine = get_engine("auto", device="cpu")
    stage(f"partial dependence ({points} points x {len(data.names)} predictors)")
    compiled = engine.compile(forests)
    grid = pd_grid(data.X, points=points)
    ref = data.X[sample_rows(len(data.y), rows=rows, seed=config.seed)]
    pdv = partial_dependence(compiled, ref, grid=grid)

    blocks = spatial_blocks(
        data.table["lat"].to_numpy(dtype=float),
        data.table["lon"].to_numpy(dtype=float),
        size_deg=block_deg,
    )
    folds = _fold_labels(blocks, n_folds=n_folds)
    weights = np.clip(perm.mean(axis=0), 0.0, None)
    if not (weights > 0).any():
        weights = np.ones_like(weights)
    stage("area of applicability (dissimilarity of every grid row)")
    di, aoa, thr = area_of_applicability(data.X, inputs.grid_X[flux], weights=weights, folds=folds)
    return FluxExplanation(
        flux=flux,
        names=tuple(data.names),
        replicates=reps,
        permutation=perm,
        impurity=imp,
        test_rmse=rmse,
        pd_x=grid,
        pd=pdv,
        di=di,
        aoa=aoa,
        threshold=thr,
    )


def _fold_labels(groups: np.ndarray, *, n_folds: int) -> np.ndarray | None:
    from srgpu.analysis.selection import group_folds

    if np.unique(groups).size < 2:
        return None
    labels = np.empty(groups.size, dtype=np.int64)
    for k, (_, test) in enumerate(group_folds(groups, n_folds=n_folds)):
        labels[test] = k
    return labels


# ----------------------------------------------------------------------------- dataset


def explanation_dataset(results: Sequence[FluxExplanation], inputs, store=None):
    """An ``xr.Dataset`` of the explanations, CF attributes and units.

    Per flux ``F``: ``F_perm_importance`` (replicate_F, predictor_F), ``F_impurity_importance``,
    ``F_pd`` (predictor_F, pd_point, pd_stat) median/2.5/97.5 % over replicates, ``F_pd_x``,
    ``F_pd_replicates`` (predictor_F, pd_point, replicate_F), ``F_DI``, ``F_AOA`` and
    ``F_AOA_mask`` on (lat, lon) (time mean of the DI; share of years inside the AOA; the mask,
    int8 CF flags: 1 inside in every year, 0 outside in some year, -1 no cell) and the summary
    attributes
    ``F_aoa_threshold``, ``F_outside_area_share``, ``F_outside_total_share``.
    """
    import xarray as xr

    preds = inputs.predictors
    nlat, nlon = preds.sizes["lat"], preds.sizes["lon"]
    ds = xr.Dataset(coords={"lat": preds["lat"], "lon": preds["lon"]})
    ds = ds.assign_coords(pd_stat=("pd_stat", ["q025", "median", "q975"]))
    w = inputs.weight_m2
    ny, nc = inputs.n_years, inputs.n_cells
    for res in results:
        F = res.flux
        pdim, rdim = f"predictor_{F}", f"replicate_{F}"
        ds = ds.assign_coords(
            {
                pdim: (pdim, list(res.names)),
                rdim: (rdim, res.replicates),
                f"{F}_predictor_units": (
                    pdim,
                    [_units(n) for n in res.names],
                ),
            }
        )
        ds[f"{F}_perm_importance"] = xr.DataArray(
            res.permutation,
            dims=(rdim, pdim),
            attrs={
                "units": "g C m-2 yr-1",
                "long_name": f"{F} permutation importance: increase of held-out RMSE",
            },
        )
        ds[f"{F}_impurity_importance"] = xr.DataArray(
            res.impurity,
            dims=(rdim, pdim),
            attrs={"units": "1", "long_name": f"{F} impurity importance (sum 1 per forest)"},
        )
        ds[f"{F}_test_rmse"] = xr.DataArray(
            res.test_rmse, dims=(rdim,), attrs={"units": "g C m-2 yr-1"}
        )
        ds[f"{F}_pd_x"] = xr.DataArray(
            res.pd_x,
            dims=(pdim, "pd_point"),
            attrs={"long_name": "predictor value; units in " + f"{F}_predictor_units"},
        )
        ds[f"{F}_pd_replicates"] = xr.DataArray(
            res.pd.astype(np.float32),
            dims=(pdim, "pd_point", rdim),
            attrs={"units": "g C m-2 yr-1", "long_name": f"{F} partial dependence per replicate"},
        )
        band = np.quantile(res.pd, BAND, axis=2)  # (3, p, G)
        ds[f"{F}_pd"] = xr.DataArray(
            np.moveaxis(band, 0, -1),
            dims=(pdim, "pd_point", "pd_stat"),
            attrs={
                "units": "g C m-2 yr-1",
                "long_name": f"{F} partial dependence across replicates (2.5 %, median, 97.5 %)",
            },
        )
        di = res.di.reshape(ny, nc)
        inside = res.aoa.reshape(ny, nc).mean(axis=0)
        with np.errstate(invalid="ignore"):
            di_mean = np.nanmean(np.where(np.isfinite(di), di, np.nan), axis=0)
        di_map = np.full((nlat, nlon), np.nan, dtype=np.float32)
        aoa_map = np.full((nlat, nlon), np.nan, dtype=np.float32)
        di_map[inputs.cell_ilat, inputs.cell_ilon] = di_mean
        aoa_map[inputs.cell_ilat, inputs.cell_ilon] = inside
        outside = 1.0 - inside
        area_share = float((outside * w).sum() / w.sum())
        total_share = float("nan")
        if store is not None and F in store:
            fmap = np.asarray(store[F].values)[inputs.cell_ilat, inputs.cell_ilon]
            ok = np.isfinite(fmap)
            total_share = float((fmap * w * outside)[ok].sum() / (fmap * w)[ok].sum())
        ds[f"{F}_DI"] = xr.DataArray(
            di_map,
            dims=("lat", "lon"),
            attrs={
                "units": "1",
                "long_name": f"{F} dissimilarity index (Meyer and Pebesma 2021), time mean",
            },
        )
        ds[f"{F}_AOA"] = xr.DataArray(
            aoa_map,
            dims=("lat", "lon"),
            attrs={
                "units": "1",
                "long_name": f"{F} share of years inside the area of applicability",
                "comment": "1: inside in every year, 0: outside in every year",
            },
        )
        # the mask: inside in every year (a cell outside in any year is outside); CF flags
        mask = np.full((nlat, nlon), -1, dtype=np.int8)
        mask[inputs.cell_ilat, inputs.cell_ilon] = (inside >= 1.0).astype(np.int8)
        ds[f"{F}_AOA_mask"] = xr.DataArray(
            mask,
            dims=("lat", "lon"),
            attrs={
                "long_name": f"{F} area of applicability mask (inside in every year)",
                "flag_values": np.array([0, 1], dtype=np.int8),
                "flag_meanings": "outside_in_some_year inside_in_every_year",
                "_FillValue": np.int8(-1),
            },
        )
        ds.attrs[f"{F}_aoa_threshold"] = float(res.threshold)
        ds.attrs[f"{F}_outside_area_share"] = area_share
        ds.attrs[f"{F}_outside_total_share"] = total_share
    ds["lat"].attrs.update(units="degrees_north", standard_name="latitude")
    ds["lon"].attrs.update(units="degrees_east", standard_name="longitude")
    ds.attrs["Conventions"] = "CF-1.8"
    return ds


def _units(name: str) -> str:
    from srgpu.data.predictors import PREDICTOR_ATTRS

    return PREDICTOR_ATTRS.get(name, ("1", ""))[0]


def summary_lines(ds) -> list[str]:
    """One readable line per flux: the top predictors and the AOA shares."""
    lines = []
    for F in TRAINED_FLUXES:
        key = f"{F}_perm_importance"
        if key not in ds:
            continue
        imp = ds[key].median(ds[key].dims[0])
        order = np.argsort(-imp.values)
        names = ds[key].coords[ds[key].dims[1]].values
        top = ", ".join(f"{names[i]} {imp.values[i]:.1f}" for i in order)
        lines.append(f"{F} permutation importance (median RMSE increase, g C m-2 yr-1): {top}")
        lines.append(
            f"{F} AOA: threshold DI {ds.attrs[f'{F}_aoa_threshold']:.3f}; "
            f"{100 * ds.attrs[f'{F}_outside_area_share']:.1f} % of the vegetated area and "
            f"{100 * ds.attrs[f'{F}_outside_total_share']:.1f} % of the global total outside"
        )
    return lines


# ----------------------------------------------------------------------------- figures


def importance_order(perm: np.ndarray) -> np.ndarray:
    """Predictor indices by increasing median permutation importance over replicates (``perm``:
    replicate x predictor), ties by name position: a horizontal bar chart drawn in this order
    has the most important predictor on top."""
    med = np.median(np.asarray(perm, dtype=float), axis=0)
    return np.lexsort((-np.arange(med.size), med))


def plot_explanation(ds, out_dir) -> list:
    """PNG figures (importance, partial dependence, AOA map) per flux; returns their paths."""
    import matplotlib

    matplotlib.use("Agg")
    from pathlib import Path

    import matplotlib.pyplot as plt

    out_dir = Path(out_dir)
    paths = []
    for F in TRAINED_FLUXES:
        if f"{F}_perm_importance" not in ds:
            continue
        pdim = f"predictor_{F}"
        names = [str(n) for n in ds[pdim].values]
        units = [str(u) for u in ds[f"{F}_predictor_units"].values]
        perm = ds[f"{F}_perm_importance"].values
        imp = ds[f"{F}_impurity_importance"].values
        fig, axes = plt.subplots(1, 2, figsize=(10, 0.5 * len(names) + 2))
        order = importance_order(perm)  # most important on top, same order in both panels
        for ax, vals, title in (
            (axes[0], perm, "permutation (RMSE increase, g C m-2 yr-1)"),
            (axes[1], imp, "impurity (share)"),
        ):
            q = np.quantile(vals, BAND, axis=0)[:, order]
            ypos = np.arange(len(names))
            ax.barh(ypos, q[1], xerr=[q[1] - q[0], q[2] - q[1]], color="tab:green", alpha=0.7)
            ax.set_yticks(ypos, [names[i] for i in order])
            ax.set_title(title, fontsize=9)
        fig.suptitle(f"{F}: importance across {perm.shape[0]} replicates (median, 2.5-97.5 %)")
        fig.tight_layout()
        p = out_dir / f"{F}_importance.png"
        fig.savefig(p, dpi=110)
        plt.close(fig)
        paths.append(p)

        n = len(names)
        ncol = min(n, 4)
        nrow = int(np.ceil(n / ncol))
        fig, axes = plt.subplots(nrow, ncol, figsize=(3.2 * ncol, 2.6 * nrow), squeeze=False)
        band = ds[f"{F}_pd"].values
        xs = ds[f"{F}_pd_x"].values
        for j in range(nrow * ncol):
            ax = axes.flat[j]
            if j >= n:
                ax.axis("off")
                continue
            ax.fill_between(xs[j], band[j, :, 0], band[j, :, 2], alpha=0.3, color="tab:blue")
            ax.plot(xs[j], band[j, :, 1], color="tab:blue")
            ax.set_xlabel(f"{names[j]} ({units[j]})", fontsize=8)
            if j % ncol == 0:
                ax.set_ylabel(f"{F} (g C m-2 yr-1)", fontsize=8)
        fig.suptitle(f"{F}: partial dependence (median and 2.5-97.5 % across replicates)")
        fig.tight_layout()
        p = out_dir / f"{F}_partial_dependence.png"
        fig.savefig(p, dpi=110)
        plt.close(fig)
        paths.append(p)

        fig, ax = plt.subplots(figsize=(9, 4.5))
        di = ds[f"{F}_DI"]
        thr = ds.attrs[f"{F}_aoa_threshold"]
        m = ax.pcolormesh(
            ds["lon"].values,
            ds["lat"].values,
            di.values,
            vmin=0,
            vmax=max(2 * thr, 1e-9),
            cmap="viridis",
            shading="auto",
        )
        ax.contour(
            ds["lon"].values,
            ds["lat"].values,
            np.nan_to_num(ds[f"{F}_AOA"].values, nan=1.0),
            levels=[0.5],
            colors="red",
            linewidths=0.6,
        )
        fig.colorbar(m, ax=ax, label="dissimilarity index")
        ax.set_title(f"{F}: DI (red: edge of the area of applicability, threshold {thr:.3f})")
        fig.tight_layout()
        p = out_dir / f"{F}_aoa.png"
        fig.savefig(p, dpi=110)
        plt.close(fig)
        paths.append(p)
    return paths


# ----------------------------------------------------------------------------- workflow


@dataclass(frozen=True)
class ExplainPlan:
    """What ``srgpu explain`` will do: the opened run, its config, the fluxes and how many of
    its replicates to re-grow (the first ``replicates`` of ``n_replicates``)."""

    run: object  # srgpu.results.Run
    config: EnsembleConfig
    fluxes: tuple[str, ...]
    replicates: int
    n_replicates: int


@dataclass
class ExplainResult:
    """The explanation dataset of a run (:func:`explanation_dataset`) and its per-flux parts."""

    plan: ExplainPlan
    dataset: object  # xr.Dataset
    explanations: list[FluxExplanation]

    def summary_lines(self) -> list[str]:
        return summary_lines(self.dataset)

    def write(self, out=None) -> tuple[object, list]:
        """``explain.nc`` and the PNG figures into ``out`` (default: the run's ``OUT``);
        returns ``(path of explain.nc, figure paths)``."""
        from pathlib import Path

        out_dir = Path(out) if out is not None else self.plan.run.out
        out_dir.mkdir(parents=True, exist_ok=True)
        path = out_dir / "explain.nc"
        self.dataset.to_netcdf(path)
        return path, plot_explanation(self.dataset, out_dir)


def _same_inputs(run, cfg: EnsembleConfig) -> None:
    """explain re-grows forests from the inputs: they must be those the run used (the sha256
    recorded in ``progress.json``, when the run has one). The paths may differ (a run read from
    another directory resolves them, :mod:`srgpu.provenance`), so the contents are compared."""
    import json

    from srgpu.errors import StoreError
    from srgpu.run.guard import input_fingerprints

    try:
        recorded = json.loads((run.out / "progress.json").read_text()).get("inputs")
    except (OSError, ValueError, AttributeError):
        return
    if not isinstance(recorded, dict):
        return
    known = set(recorded.values())
    for path, sha in input_fingerprints(cfg).items():
        if sha not in known:
            raise StoreError(
                f"{path}: content changed since the run in {run.out} (sha256 {sha[:12]} is none "
                "of the recorded inputs'); rerun srgpu ensemble with --overwrite on the inputs "
                "as they are now, then explain that run"
            )


def plan_explain(path, *, replicates: int = 10, fluxes: Sequence[str] | None = None) -> ExplainPlan:
    """Open the finished run at ``path`` (``OUT`` or ``OUT/ensemble.zarr``) and check the
    request: ``replicates`` >= 1 (at most the run's), ``fluxes`` among SR and HR (default both)."""
    from srgpu.provenance import resolve_inputs
    from srgpu.results import open_run

    run = open_run(path)
    cfg = resolve_inputs(run.require_config(), run.out)  # from any directory
    _same_inputs(run, cfg)
    n_rep = int(run.dataset.sizes.get("replicate", cfg.n_replicates))
    if replicates < 1:
        raise ConfigError(f"--replicates must be >= 1, got {replicates}")
    chosen = tuple(fluxes or TRAINED_FLUXES)
    bad = [f for f in chosen if f not in TRAINED_FLUXES]
    if bad:
        raise ConfigError(f"--flux {bad}: expected SR and/or HR")
    return ExplainPlan(
        run=run,
        config=cfg,
        fluxes=chosen,
        replicates=min(replicates, n_rep),
        n_replicates=n_rep,
    )


def explain_run(
    plan: ExplainPlan,
    *,
    engine: str = "auto",
    repeats: int = 5,
    points: int = 20,
    rows: int = 500,
    progress: Callable[[str], None] | None = None,
) -> ExplainResult:
    """Re-grow the plan's replicates from the run's config and explain every flux of it
    (:func:`explain_flux`); partial dependence is predicted by the CPU ``engine``.
    ``progress`` is called with a short text as each stage starts."""
    from srgpu.data.inputs import prepare_inputs
    from srgpu.forest.engines import get_engine

    cfg, ds = plan.config, plan.run.dataset
    inputs = prepare_inputs(cfg)
    eng = get_engine(engine, device="cpu")
    results = [
        explain_flux(
            inputs,
            cfg,
            flux=f,
            replicates=range(plan.replicates),
            engine=eng,
            repeats=repeats,
            points=points,
            rows=rows,
            progress=progress,
        )
        for f in plan.fluxes
    ]
    xds = explanation_dataset(results, inputs, store=ds)
    xds.attrs["config_hash"] = ds.attrs.get("config_hash", cfg.hash())
    return ExplainResult(plan=plan, dataset=xds, explanations=results)
