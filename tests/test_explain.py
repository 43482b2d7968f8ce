"""Importance, partial dependence and the explanation dataset on seeded synthetic data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from srgpu.analysis.explain import (
    explain_flux,
    explanation_dataset,
    impurity_importances,
    partial_dependence,
    pd_grid,
    permutation_importances,
    plot_explanation,
    summary_lines,
)
from srgpu.config import EnsembleConfig, ForestConfig
from srgpu.data.inputs import FluxData, Inputs
from srgpu.forest.train import fit_forest

NAMES = ("MAT", "Prec", "LAI")


class StubCompiled:
    """The inference-engine protocol on top of scikit-learn's own predict."""

    def __init__(self, forests):
        self.forests = list(forests)
        self.n_replicates = len(self.forests)
        self.n_features = self.forests[0].n_features_in_

    def predict(self, X):
        return np.stack([f.predict(X) for f in self.forests])


class StubEngine:
    name = "stub"

    def compile(self, forests):
        return StubCompiled(forests)


def _data(seed=0, n=300):
    """y rises monotonically with MAT, bends with Prec; LAI is irrelevant."""
    rng = np.random.default_rng(seed)
    X = rng.uniform(0, 1, size=(n, 3)).astype(np.float32)
    y = 500 * X[:, 0] + 150 * np.sin(3 * X[:, 1]) + rng.normal(0, 10, n)
    return X, y


def _forests(k=3, trees=20):
    X, y = _data()
    out = []
    for r in range(k):
        idx = np.random.default_rng(r).permutation(len(y))
        tr, te = idx[:240], idx[240:]
        rf = fit_forest(
            X[tr], y[tr], forest=ForestConfig(trees=trees), seed=np.random.SeedSequence(r)
        )
        out.append((rf, (X[te], y[te])))
    return out, X


def test_permutation_importance_ranks_irrelevant_last():
    trained, _ = _forests()
    perm = permutation_importances(
        [f for f, _ in trained],
        [t for _, t in trained],
        repeats=3,
        seed=1,
        flux="SR",
        replicates=range(3),
    )
    assert perm.shape == (3, 3)
    assert (np.argmin(perm, axis=1) == 2).all()
    assert (np.argmax(perm, axis=1) == 0).all()
    imp = impurity_importances([f for f, _ in trained])
    np.testing.assert_allclose(imp.sum(axis=1), 1.0)
    assert (np.argmin(imp, axis=1) == 2).all()


def test_permutation_importance_reproducible():
    trained, _ = _forests(k=1)
    args = dict(repeats=2, seed=5, flux="HR", replicates=[0])
    a = permutation_importances([trained[0][0]], [trained[0][1]], **args)
    b = permutation_importances([trained[0][0]], [trained[0][1]], **args)
    np.testing.assert_array_equal(a, b)


def test_partial_dependence_recovers_monotone_effect():
    trained, X = _forests()
    grid = pd_grid(X, points=10)
    assert grid.shape == (3, 10)
    pdv = partial_dependence(
        StubCompiled([f for f, _ in trained]), X[:100], grid=grid, max_rows=350
    )
    assert pdv.shape == (3, 10, 3)
    med = np.median(pdv, axis=2)
    # MAT: increasing; true rise 500 * (0.975 - 0.025) = 475, which a forest with mtry=1
    # attenuates (observed 354 with this seed)
    assert (np.diff(med[0]) > -5).all()
    assert 250 < med[0, -1] - med[0, 0] < 500
    # LAI: flat
    assert np.ptp(med[2]) < 0.3 * np.ptp(med[0])  # LAI: nearly flat (edge effect)
    # same answer whatever the block size
    pd2 = partial_dependence(StubCompiled([f for f, _ in trained]), X[:100], grid=grid)
    np.testing.assert_allclose(pdv, pd2)


def _inputs():
    X, y = _data(seed=3, n=240)
    rng = np.random.default_rng(4)
    lat = rng.uniform(-40, 60, y.size)
    lon = rng.uniform(-120, 120, y.size)
    table = pd.DataFrame({"lat": lat, "lon": lon, "study": np.arange(y.size) // 4, "value": y})
    bins = rng.integers(1, 6, y.size)
    flux = FluxData(names=NAMES, X=X, y=y, bins=bins, table=table)
    glat = np.arange(-45.0, 60.0, 15.0)
    glon = np.arange(-120.0, 120.0, 30.0)
    ilat, ilon = np.meshgrid(np.arange(glat.size), np.arange(glon.size), indexing="ij")
    ilat, ilon = ilat.ravel(), ilon.ravel()
    n_cells = ilat.size
    grid_X = rng.uniform(0, 1, size=(n_cells, 3)).astype(np.float32)
    grid_X[:5] += 10.0  # far outside the training range
    preds = xr.Dataset(coords={"lat": glat, "lon": glon, "year": [2000]})
    return Inputs(
        fluxes={"SR": flux, "HR": flux},
        grid_X={"SR": grid_X, "HR": grid_X},
        years=np.array([2000]),
        n_cells=n_cells,
        cell_ilat=ilat,
        cell_ilon=ilon,
        weight_m2=np.ones(n_cells),
        area_shares={b: 0.2 for b in range(1, 6)},
        predictors=preds,
    )


def test_explain_flux_end_to_end(tmp_path):
    from srgpu.run.replicate import train_replicate

    inputs = _inputs()
    cfg = EnsembleConfig(forest=ForestConfig(trees=10), seed=3)
    res = explain_flux(
        inputs,
        cfg,
        flux="SR",
        replicates=[0, 1, 2],
        engine=StubEngine(),
        repeats=2,
        points=5,
        rows=60,
    )
    assert res.permutation.shape == (3, 3)
    assert res.pd.shape == (3, 5, 3)
    # the explained forests are the ensemble's: replicate 1 regrown gives the same predictions
    rf, split = train_replicate(inputs, cfg, 1, "SR")
    X_t, y_t = inputs.fluxes["SR"].X[split.test], inputs.fluxes["SR"].y[split.test]
    np.testing.assert_allclose(
        res.test_rmse[1], np.sqrt(np.mean((rf.predict(X_t) - y_t) ** 2)), rtol=1e-12
    )
    assert not res.aoa[:5].any()
    assert res.aoa[5:].mean() > 0.8

    fmap = np.full((inputs.predictors.sizes["lat"], inputs.predictors.sizes["lon"]), 100.0)
    store = xr.Dataset({"SR": (("lat", "lon"), fmap)})
    ds = explanation_dataset([res], inputs, store=store)
    assert ds["SR_perm_importance"].attrs["units"] == "g C m-2 yr-1"
    assert ds["SR_pd"].sizes == {"predictor_SR": 3, "pd_point": 5, "pd_stat": 3}
    assert (ds["SR_pd"].sel(pd_stat="q025") <= ds["SR_pd"].sel(pd_stat="q975")).all()
    share = 1 - res.aoa.mean()
    assert ds.attrs["SR_outside_area_share"] == pytest.approx(share)
    assert ds.attrs["SR_outside_total_share"] == pytest.approx(share)
    assert list(ds["SR_predictor_units"].values) == ["degC", "mm yr-1", "m2 m-2"]
    path = tmp_path / "explain.nc"
    ds.to_netcdf(path)
    back = xr.open_dataset(path)
    np.testing.assert_allclose(back["SR_DI"].values, ds["SR_DI"].values)
    # the mask: 1 exactly where the cell is inside in every year (one period here: res.aoa),
    # 0 elsewhere on land, missing off the grid's cells; CF flag attributes
    mask = ds["SR_AOA_mask"].values
    cells = mask[inputs.cell_ilat, inputs.cell_ilon]
    np.testing.assert_array_equal(cells, res.aoa.reshape(-1, inputs.n_cells).all(axis=0))
    assert (mask == -1).sum() == mask.size - inputs.n_cells
    assert back["SR_AOA_mask"].attrs["flag_meanings"] == "outside_in_some_year inside_in_every_year"
    assert list(back["SR_AOA_mask"].attrs["flag_values"]) == [0, 1]
    figs = plot_explanation(ds, tmp_path)
    assert len(figs) == 3 and all(p.stat().st_size > 0 for p in figs)
    assert any("SR AOA" in line for line in summary_lines(ds))


def test_cli_explain_demo(tmp_path):
    pytest.importorskip("srgpu.forest.engines")
    from typer.testing import CliRunner

    from srgpu.cli import app

    runner = CliRunner()
    out = tmp_path / "ens"
    res = runner.invoke(
        app,
        [
            "ensemble",
            "--replicates",
            "2",
            "--trees",
            "5",
            "--batch-size",
            "2",
            "--out",
            str(out),
            "--quiet",
        ],
    )
    assert res.exit_code == 0, res.output
    res = runner.invoke(
        app,
        [
            "explain",
            str(out),
            "--replicates",
            "2",
            "--repeats",
            "1",
            "--points",
            "4",
            "--rows",
            "50",
        ],
    )
    assert res.exit_code == 0, res.output
    ds = xr.open_dataset(out / "explain.nc")
    assert ds["SR_perm_importance"].shape[0] == 2
    assert 0.0 <= ds.attrs["HR_outside_area_share"] <= 1.0
    assert (out / "SR_partial_dependence.png").exists()
    res = runner.invoke(app, ["explain", str(tmp_path / "nothing")])
    assert res.exit_code == 2
    bad = tmp_path / "bad"
    (bad / "ensemble.zarr").mkdir(parents=True)
    (bad / "ensemble.zarr" / "zarr.json").write_text("not json")
    res = runner.invoke(app, ["explain", str(bad)])
    assert res.exit_code == 2
    assert "ensemble.zarr" in res.output and "Traceback" not in res.output
