"""Issue 16 item 5: ilamb3 itself runs its bias and spatial-distribution analyses on an srgpu
reference file against a synthetic CMIP-style model.

Importing ilamb3 sets ``xr.set_options(keep_attrs=True)`` for the whole process; the fixture
restores the option after the import and the analyses run inside ``set_options(keep_attrs=True)``
as they do in ilamb3, so no other test sees the change. ilamb3 2026.4.20 requires xarray <=
2025.10.1: newer xarray drops conflicting attributes in arithmetic, and its bias analysis then
loses the units of ``model - reference`` when the two carry differently spelt units (ilamb3
rewrites the model's in pint's spelling). :func:`_as_ilamb3_spells` gives the reference the same
spelling through ilamb3's own ``convert`` (values unchanged) so the test runs on either xarray.
"""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import xarray as xr

from srgpu.analysis.compare import ilamb_reference
from tests.test_compare_synthetic import YEARS, make_store_dataset

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("ilamb3") is None, reason="ilamb3 not installed (extra 'ilamb')"
)

SCALE = 1.1


def _model(store: xr.Dataset, tmp_path) -> xr.Dataset:
    """rh = SCALE x the store's HR, monthly 2000-2002 (standard calendar), with CMIP
    areacella and sftlf, loaded the way ilamb3 loads a model (``cmip_cell_measures``)."""
    from ilamb3 import dataset as dset

    times = xr.date_range(f"{YEARS[0]}-01-01", periods=36, freq="MS", use_cftime=True)
    ends = xr.date_range(f"{YEARS[0]}-02-01", periods=36, freq="MS", use_cftime=True)
    mids = [a + (b - a) / 2 for a, b in zip(times, ends, strict=True)]
    rate = store["HR"].values * SCALE * 1e-3 / (365.25 * 86400.0)  # NaN off the domain
    ds = xr.Dataset(
        {
            "rh": (
                ("time", "lat", "lon"),
                np.repeat(rate[None], 36, axis=0),
                {
                    "units": "kg m-2 s-1",
                    "cell_methods": "area: mean where land time: mean",
                    "cell_measures": "area: areacella",
                },
            ),
            "time_bnds": (("time", "nv"), np.stack([np.array(times), np.array(ends)], axis=1)),
            "areacella": (("lat", "lon"), store["cell_area"].values, {"units": "m2"}),
            "sftlf": (("lat", "lon"), 100.0 * store["land_fraction"].values, {"units": "%"}),
        },
        coords={"time": mids, "lat": store["lat"].values, "lon": store["lon"].values},
    )
    ds["time"].attrs["bounds"] = "time_bnds"
    for var in ("time", "time_bnds"):
        ds[var].encoding.update(units="days since 1850-01-01", calendar="standard")
    path = tmp_path / "model_rh.nc"
    ds.to_netcdf(path)
    com = xr.open_dataset(path, decode_times=xr.coders.CFDatetimeCoder(use_cftime=True))
    return dset.cmip_cell_measures(com, "rh")


def _as_ilamb3_spells(ds: xr.Dataset) -> xr.Dataset:
    from ilamb3 import dataset as dset

    out = dset.convert(ds.copy(), ds["rh"].attrs["units"], varname="rh")
    np.testing.assert_array_equal(out["rh"].values, ds["rh"].values)
    return out


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    before = xr.get_options()["keep_attrs"]
    import ilamb3  # noqa: F401 - sets keep_attrs=True process-wide

    xr.set_options(keep_attrs=before)
    tmp = tmp_path_factory.mktemp("ilamb")
    store = make_store_dataset()
    path = tmp / "srgpu_rh.nc"
    ilamb_reference(store, flux="HR").to_netcdf(path)
    ref = xr.open_dataset(path, decode_times=xr.coders.CFDatetimeCoder(use_cftime=True))
    weights = (store["cell_area"] * store["land_fraction"]).where(store["domain"])
    own_total = float((store["HR"] * weights).sum()) * 1e-15  # Pg C yr-1
    with xr.set_options(keep_attrs=True):
        ref = _as_ilamb3_spells(ref.load())
        com = _model(store, tmp).load()
    return store, ref, com, own_total


def _value(df, source, name):
    sel = df[(df["source"] == source) & (df["name"] == name)]
    assert len(sel) == 1, (source, name)
    return float(sel["value"].iloc[0]), str(sel["units"].iloc[0])


def test_ilamb3_bias_reference_total_and_uncertainty(setup):
    from ilamb3.analysis import bias_analysis

    store, ref, com, own_total = setup
    with xr.set_options(keep_attrs=True):
        df, ref_out, _ = bias_analysis("rh", spatial_sum=True, table_unit="Pg yr-1")(
            ref.copy(), com.copy()
        )
        df0, ref0, _ = bias_analysis("rh", spatial_sum=True, use_uncertainty=False)(
            ref.copy(), com.copy()
        )
    total, units = _value(df, "Reference", "Period Mean")
    assert units == "Pg yr-1"
    assert total == pytest.approx(own_total, rel=1e-3)  # was +26.6 % without cell_measures
    model_total, _ = _value(df, "Comparison", "Period Mean")
    assert model_total == pytest.approx(SCALE * own_total, rel=5e-3)
    # the uncertainty is used: ilamb3 returns it and it raises the bias score
    assert "uncert" in ref_out
    assert ref_out["uncert"].attrs["units"] == "g m-2 yr-1"
    np.testing.assert_allclose(ref_out["uncert"].values, store["HR_sd_map"].values, rtol=1e-12)
    with_sd, _ = _value(df, "Comparison", "Bias Score")
    without_sd, _ = _value(df0, "Comparison", "Bias Score")
    assert "uncert" not in ref0
    # |bias| = 0.1 HR and SD = 0.08 HR (the synthetic store): the score is exp(-0.02) per cell
    # with the uncertainty and exp(-0.1) without it
    assert with_sd == pytest.approx(np.exp(-0.02), rel=1e-3)
    assert without_sd == pytest.approx(np.exp(-0.1), rel=1e-3)


def test_ilamb3_spatial_distribution(setup):
    from ilamb3.analysis import spatial_distribution_analysis

    _, ref, com, _ = setup
    with xr.set_options(keep_attrs=True):
        df, _, _ = spatial_distribution_analysis("rh")(ref.copy(), com.copy())
    norm_sd, _ = _value(df, "Comparison", "Normalized Standard Deviation")
    corr, _ = _value(df, "Comparison", "Correlation")
    assert norm_sd == pytest.approx(SCALE, rel=1e-6)
    assert corr == pytest.approx(1.0, abs=1e-9)
