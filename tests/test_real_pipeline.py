"""The real SRDB v5.0 joined to the real 0.5 degree grids (skipped without ../shared/data)."""

from __future__ import annotations

import pytest

from srgpu.config import EnsembleConfig
from srgpu.data.inputs import prepare_inputs
from srgpu.data.observations import load_observations
from srgpu.data.predictors import build_predictors
from srgpu.data.sites import site_table

REAL_SET = ("MAT", "Prec", "Prec_GS", "PAR", "PAR_GS", "LAI_GS")


def _drivers(grids_dir, names):
    files = {
        "era5": "era5_monthly_climatology_0p5.nc",
        "rsds": "merra2_rsds_monthly_climatology_0p5.nc",
        "lai": "lai_proxy_fapar_0p5.nc",
    }
    return [str(grids_dir / files[n]) for n in names]


@pytest.fixture(scope="module")
def obs(srdb_v5_path):
    return load_observations(srdb_v5_path)


def test_sites_join_the_climatology_mat_prec(obs, grids_dir):
    """Every site joins the single climatology period; 2 sites on masked coastal cells move to
    a neighbour within 50 km, 9 find none (small islands, Svalbard) and are dropped."""
    preds = build_predictors(
        drivers=_drivers(grids_dir, ["era5"]),
        vegetation=str(grids_dir / "modis_igbp_2019_0p5.nc"),
        names=["MAT", "Prec"],
    )
    table, counts = site_table(obs.table, preds, max_distance_km=50)
    assert counts == {
        "rows_in": 4511,
        "own_cell": 4500,
        "neighbour_cell": 2,
        "dropped_no_cell": 9,
        "dropped_no_year": 0,
        "years_clamped": 0,
    }
    assert len(table) == 4502
    assert table["iyear"].eq(0).all()  # climatology: one period for every site year
    moved = table[table["distance_km"] > 0]
    assert len(moved) == 2 and moved["distance_km"].max() <= 50


def test_sites_with_radiation_lose_islands_and_high_arctic(obs, grids_dir):
    """MERRA-2 radiation has no data north of 73.5 N and on many Pacific/Caribbean islands:
    79 SRDB rows (Hawaii, Puerto Rico, Svalbard, Greenland...) find no valid cell."""
    preds = build_predictors(
        drivers=_drivers(grids_dir, ["era5", "rsds", "lai"]),
        vegetation=str(grids_dir / "modis_igbp_2019_0p5.nc"),
        names=list(REAL_SET),
    )
    table, counts = site_table(obs.table, preds, max_distance_km=50)
    assert counts["rows_in"] == 4511
    assert counts["own_cell"] == 4432 and counts["dropped_no_cell"] == 79
    kept = obs.table.merge(
        table[["record_id", "flux"]], on=["record_id", "flux"], how="left", indicator=True
    )
    lost = kept[kept["_merge"] == "left_only"]
    hawaii_pr = lost["lon"].between(-160, -154) | lost["lon"].between(-67, -65)
    assert (hawaii_pr | (lost["lat"] > 73.5)).sum() >= 60


def test_prepare_inputs_on_real_data(srdb_v5_path, grids_dir):
    cfg = EnsembleConfig(
        srdb=str(srdb_v5_path),
        drivers=tuple(_drivers(grids_dir, ["era5", "rsds", "lai"])),
        vegetation=str(grids_dir / "modis_igbp_2019_0p5.nc"),
        predictors=(("SR", REAL_SET), ("HR", REAL_SET)),
    )
    inputs = prepare_inputs(cfg)
    assert inputs.n_cells == 53806 and inputs.n_years == 1
    assert inputs.fluxes["SR"].y.size == 3691 and inputs.fluxes["HR"].y.size == 741
    # area shares of the vegetated land (grids README: 11.4, 9.3, 12.9, 53.8, 12.6 %)
    shares = [inputs.area_shares[b] for b in range(1, 6)]
    assert shares == pytest.approx([0.114, 0.093, 0.129, 0.538, 0.126], abs=6e-4)
    # every training record has a vegetation bin after the map fills SRDB's unknowns
    assert (inputs.fluxes["SR"].bins > 0).mean() > 0.97
