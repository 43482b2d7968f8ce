"""A corpus of bad input files, generated into a temporary directory (no data is committed).

:func:`write_good_files` writes the demo world as an SRDB CSV, a driver NetCDF and a vegetation
NetCDF. Each :class:`BadCase` writes one broken variant of one of them and says which CLI option
it replaces and which words the one-line error must hold (the field and the offending value).
``CASES`` is the corpus used by ``tests/test_bad_inputs.py``.
"""

from __future__ import annotations

import gzip
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr


@dataclass(frozen=True)
class GoodFiles:
    """Valid inputs written from the demo world."""

    root: Path
    srdb: Path
    drivers: Path
    vegetation: Path

    def srdb_frame(self) -> pd.DataFrame:
        return pd.read_csv(self.srdb, dtype=str, keep_default_na=False)

    def drivers_ds(self) -> xr.Dataset:
        return xr.load_dataset(self.drivers)

    def vegetation_ds(self) -> xr.Dataset:
        return xr.load_dataset(self.vegetation)


def write_good_files(root: Path) -> GoodFiles:
    """The demo world as files: ``srdb.csv``, ``drivers.nc``, ``vegetation.nc``."""
    from srgpu.data.demo import make_demo_world

    root.mkdir(parents=True, exist_ok=True)
    world = make_demo_world(seed=0)
    files = GoodFiles(
        root=root,
        srdb=root / "srdb.csv",
        drivers=root / "drivers.nc",
        vegetation=root / "vegetation.nc",
    )
    world.srdb.to_csv(files.srdb, index=False)
    world.drivers.to_netcdf(files.drivers)
    world.vegetation.to_netcdf(files.vegetation)
    return files


@dataclass(frozen=True)
class BadCase:
    """One bad file. ``option``: the CLI option it replaces (``srdb``, ``drivers``,
    ``vegetation``); ``make`` writes it (a list for ``drivers``: the last file is the bad
    one); ``expect``: substrings of the message besides the bad file's name."""

    name: str
    option: str
    make: Callable[[GoodFiles, Path], Path | list[Path]]
    expect: tuple[str, ...]


# ----------------------------------------------------------------------------- helpers
def _csv(frame: pd.DataFrame, path: Path) -> Path:
    frame.to_csv(path, index=False)
    return path


def _srdb_edit(edit: Callable[[pd.DataFrame], pd.DataFrame | None]):
    def make(good: GoodFiles, path: Path) -> Path:
        frame = good.srdb_frame()
        out = edit(frame)
        return _csv(frame if out is None else out, path.with_suffix(".csv"))

    return make


def _set(column: str, value: str, rows=slice(3, 4)):
    def edit(frame: pd.DataFrame) -> None:
        frame.loc[frame.index[rows], column] = value

    return edit


def _nc_edit(which: str, edit: Callable[[xr.Dataset], xr.Dataset | None], *, suffix=".nc"):
    def make(good: GoodFiles, path: Path) -> Path:
        ds = good.drivers_ds() if which == "drivers" else good.vegetation_ds()
        out = edit(ds)
        ds = ds if out is None else out
        target = path.with_suffix(suffix)
        if suffix == ".zarr":
            ds.to_zarr(target, mode="w", zarr_format=3, consolidated=False)
        else:
            ds.to_netcdf(target)
        return target

    return make


def _empty(suffix: str):
    def make(good: GoodFiles, path: Path) -> Path:
        target = path.with_suffix(suffix)
        target.write_bytes(b"")
        return target

    return make


def _truncated_nc(which: str, fraction: float):
    def make(good: GoodFiles, path: Path) -> Path:
        src = good.drivers if which == "drivers" else good.vegetation
        data = src.read_bytes()
        target = path.with_suffix(".nc")
        target.write_bytes(data[: int(len(data) * fraction)])
        return target

    return make


def _zarr_chunk(action: str, variable: str, *, every: bool = False):
    """A valid Zarr copy of the drivers with a chunk of ``variable`` (or all of its chunks)
    deleted or truncated."""

    def make(good: GoodFiles, path: Path) -> Path:
        target = path.with_suffix(".zarr")
        ds = good.drivers_ds()
        ds.to_zarr(target, mode="w", zarr_format=3, consolidated=False)
        chunks = sorted(p for p in (target / variable / "c").rglob("*") if p.is_file())
        for victim in chunks if every else chunks[:1]:
            if action == "delete":
                victim.unlink()
            else:
                data = victim.read_bytes()
                victim.write_bytes(data[: len(data) // 2])
        return target

    return make


def _zarr_metadata(variable: str):
    def make(good: GoodFiles, path: Path) -> Path:
        target = path.with_suffix(".zarr")
        good.drivers_ds().to_zarr(target, mode="w", zarr_format=3, consolidated=False)
        meta = target / variable / "zarr.json"
        meta.write_text(meta.read_text()[:40])
        return target

    return make


def _all_nan(var: str):
    def edit(ds: xr.Dataset) -> None:
        ds[var] = ds[var].where(False)

    return edit


def _put(var: str, value: float):
    """Set ``var`` to ``value`` in every month of the first cell where it has data."""

    def edit(ds: xr.Dataset) -> None:
        a = ds[var].values.copy()
        good = np.isfinite(a).all(axis=0) if a.ndim == 3 else np.isfinite(a)
        ilat, ilon = (int(i[0]) for i in np.nonzero(good))
        a[..., ilat, ilon] = value
        ds[var] = (ds[var].dims, a, ds[var].attrs)

    return edit


def _attr(var: str, key: str, value: str | None):
    def edit(ds: xr.Dataset) -> None:
        if value is None:
            ds[var].attrs.pop(key, None)
            ds[var].encoding.pop(key, None)
        else:
            ds[var].attrs[key] = value

    return edit


def _shuffle_axis(axis: str):
    def edit(ds: xr.Dataset) -> xr.Dataset:
        n = ds.sizes[axis]
        order = np.r_[1, 0, 2:n]
        return ds.isel({axis: order})

    return edit


def _irregular_axis(axis: str):
    def edit(ds: xr.Dataset) -> xr.Dataset:
        v = ds[axis].values.astype(float).copy()
        v[-1] = v[-1] + 0.5 * (v[1] - v[0])
        return ds.assign_coords({axis: (axis, v, ds[axis].attrs)})

    return edit


def _shifted_grid(ds: xr.Dataset) -> xr.Dataset:
    return ds.isel(lat=slice(0, -1))  # one latitude row fewer


def _renamed_var(old: str, new: str):
    def edit(ds: xr.Dataset) -> xr.Dataset:
        ds = ds.rename({old: new})
        ds[new].attrs.pop("standard_name", None)
        return ds

    return edit


def _split_drivers(good: GoodFiles, path: Path) -> list[Path]:
    """Two driver files: the drivers, and humidity on a grid one latitude row shorter."""
    ds = good.drivers_ds()
    first = path.with_name(path.name + "_main.nc")
    second = path.with_name(path.name + "_hurs.nc")
    ds.drop_vars("hurs").to_netcdf(first)
    _shifted_grid(ds[["hurs"]]).to_netcdf(second)
    return [first, second]


def _unknown_calendar(ds: xr.Dataset) -> xr.Dataset:
    days = np.arange(ds.sizes["time"]) * 30.0 + 15.0
    ds = ds.assign_coords(time=("time", days, {"units": "days since 2001-01-01"}))
    ds = ds.drop_vars("time_bnds")
    ds["time"].attrs["calendar"] = "martian_sols"
    return ds


def _duplicate_months(ds: xr.Dataset) -> xr.Dataset:
    t = ds["time"].values.copy()
    t[1] = t[0]
    return ds.assign_coords(time=("time", t)).drop_vars("time_bnds")


def _text_as(suffix: str, text: bytes):
    def make(good: GoodFiles, path: Path) -> Path:
        target = path.with_suffix(suffix)
        target.write_bytes(text)
        return target

    return make


def _gzip_truncated(good: GoodFiles, path: Path) -> Path:
    target = path.with_suffix(".csv.gz")
    data = gzip.compress(good.srdb.read_bytes())
    target.write_bytes(data[: len(data) // 2])
    return target


def _renamed(column: str, new: str):
    def edit(frame: pd.DataFrame) -> pd.DataFrame:
        return frame.rename(columns={column: new})

    return edit


def _dropped(column: str):
    def edit(frame: pd.DataFrame) -> pd.DataFrame:
        return frame.drop(columns=[column])

    return edit


def _duplicate_record(frame: pd.DataFrame) -> pd.DataFrame:
    return pd.concat([frame, frame.iloc[[5]]], ignore_index=True)


def _all_rows(column: str, value: str):
    def edit(frame: pd.DataFrame) -> None:
        frame[column] = value

    return edit


def _header_only(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.iloc[:0]


def _ragged(good: GoodFiles, path: Path) -> Path:
    target = path.with_suffix(".csv")
    lines = good.srdb.read_text().splitlines()
    lines[4] = lines[4] + ",1,2,3,4"
    target.write_text("\n".join(lines) + "\n")
    return target


def _veg_var(var: str, edit_values: Callable[[np.ndarray], np.ndarray]):
    def edit(ds: xr.Dataset) -> None:
        ds[var] = (ds[var].dims, edit_values(ds[var].values.copy()), ds[var].attrs)

    return edit


def _veg_fraction_extra_dim(ds: xr.Dataset) -> xr.Dataset:
    return ds.assign(land_cover_fraction=ds["land_cover_fraction"].expand_dims(band=[0, 1]))


def _copy(src_attr: str):
    def make(good: GoodFiles, path: Path) -> Path:
        src = getattr(good, src_attr)
        target = path.with_suffix(src.suffix)
        shutil.copy(src, target)
        return target

    return make


# ----------------------------------------------------------------------------- the corpus
CASES: tuple[BadCase, ...] = (
    # --- SRDB CSV ------------------------------------------------------------------------
    BadCase("srdb_empty", "srdb", _empty(".csv"), ("empty",)),
    BadCase("srdb_header_only", "srdb", _srdb_edit(_header_only), ("no records",)),
    BadCase("srdb_binary", "srdb", _text_as(".csv", b"\x00\x01\x02PK\x03\x04" * 64), ("text",)),
    BadCase("srdb_gzip_truncated", "srdb", _gzip_truncated, ("gzip",)),
    BadCase("srdb_ragged_row", "srdb", _ragged, ("CSV",)),
    BadCase("srdb_missing_rs", "srdb", _srdb_edit(_dropped("Rs_annual")), ("'Rs_annual'",)),
    BadCase(
        "srdb_renamed_latitude",
        "srdb",
        _srdb_edit(_renamed("Latitude", "Lat")),
        ("'Latitude'", "missing"),
    ),
    BadCase(
        "srdb_text_in_longitude",
        "srdb",
        _srdb_edit(_set("Longitude", "ten")),
        ("'Longitude'", "'ten'", "line 5"),
    ),
    BadCase("srdb_text_in_year", "srdb", _srdb_edit(_set("Study_midyear", "2001?")), ("'2001?'",)),
    BadCase("srdb_inf_flux", "srdb", _srdb_edit(_set("Rs_annual", "inf")), ("'Rs_annual'", "inf")),
    BadCase(
        "srdb_minus_inf_lat", "srdb", _srdb_edit(_set("Latitude", "-inf")), ("'Latitude'", "inf")
    ),
    BadCase(
        "srdb_absurd_flux",
        "srdb",
        _srdb_edit(_set("Rs_annual", "250000")),
        ("'Rs_annual'", "250000", "line 5"),
    ),
    BadCase(
        "srdb_absurd_hr",
        "srdb",
        _srdb_edit(_set("Rh_annual", "1e9")),
        ("'Rh_annual'", "1e+09"),
    ),
    BadCase(
        "srdb_duplicate_record",
        "srdb",
        _srdb_edit(_duplicate_record),
        ("'Record_number'", "6", "line"),
    ),
    BadCase(
        "srdb_all_latitudes_out_of_range",
        "srdb",
        _srdb_edit(_all_rows("Latitude", "95")),
        ("invalid_coordinates",),
    ),
    BadCase(
        "srdb_all_latitudes_missing",
        "srdb",
        _srdb_edit(_all_rows("Latitude", "NA")),
        ("invalid_coordinates",),
    ),
    BadCase(
        "srdb_all_fluxes_negative",
        "srdb",
        _srdb_edit(lambda f: f.assign(Rs_annual="-5", Rh_annual="-1")),
        ("nonpositive",),
    ),
    BadCase(
        "srdb_year_far_future",
        "srdb",
        _srdb_edit(_set("Study_midyear", "30000")),
        ("'Study_midyear'", "30000"),
    ),
    # --- drivers (NetCDF / Zarr) -----------------------------------------------------------
    BadCase("drivers_empty_nc", "drivers", _empty(".nc"), ("NetCDF",)),
    BadCase("drivers_text_nc", "drivers", _text_as(".nc", b"lat,lon\n1,2\n"), ("NetCDF",)),
    BadCase("drivers_truncated_nc_half", "drivers", _truncated_nc("drivers", 0.5), ("NetCDF",)),
    BadCase("drivers_truncated_nc_tail", "drivers", _truncated_nc("drivers", 0.97), ("NetCDF",)),
    BadCase(
        "drivers_zarr_chunk_truncated",
        "drivers",
        _zarr_chunk("truncate", "tas"),
        ("'tas'",),
    ),
    BadCase(
        "drivers_zarr_chunks_deleted",
        "drivers",
        _zarr_chunk("delete", "lai", every=True),
        ("'lai'", "no finite value"),
    ),
    BadCase("drivers_zarr_bad_metadata", "drivers", _zarr_metadata("tas"), ("Zarr",)),
    BadCase(
        "drivers_missing_units",
        "drivers",
        _nc_edit("drivers", _attr("tas", "units", None)),
        ("'tas'", "units"),
    ),
    BadCase(
        "drivers_wrong_units",
        "drivers",
        _nc_edit("drivers", _attr("pr", "units", "furlongs fortnight-1")),
        ("'pr'", "furlongs"),
    ),
    BadCase(
        "drivers_renamed_variable",
        "drivers",
        _nc_edit("drivers", _renamed_var("hurs", "humidity")),
        ("'RH'",),
    ),
    BadCase(
        "drivers_all_nan_variable",
        "drivers",
        _nc_edit("drivers", _all_nan("lai")),
        ("'lai'", "finite"),
    ),
    BadCase(
        "drivers_inf_value",
        "drivers",
        _nc_edit("drivers", _put("tas", np.inf)),
        ("'tas'", "inf", "infinite"),
    ),
    BadCase(
        "drivers_nan_and_negative_precip",
        "drivers",
        _nc_edit("drivers", _put("pr", -1e-3)),
        ("'pr'", "Prec", "kg m-2 s-1"),
    ),
    BadCase(
        "drivers_kelvin_labelled_celsius",
        "drivers",
        _nc_edit("drivers", _attr("tas", "units", "degC")),
        ("'tas'", "MAT", "'degC'"),
    ),
    BadCase(
        "drivers_non_monotonic_lat",
        "drivers",
        _nc_edit("drivers", _shuffle_axis("lat")),
        ("'lat'", "monotonic"),
    ),
    BadCase(
        "drivers_irregular_lon",
        "drivers",
        _nc_edit("drivers", _irregular_axis("lon")),
        ("'lon'", "irregular"),
    ),
    BadCase(
        "drivers_unknown_calendar",
        "drivers",
        _nc_edit("drivers", _unknown_calendar),
        ("time units", "martian_sols"),
    ),
    BadCase(
        "drivers_duplicate_months",
        "drivers",
        _nc_edit("drivers", _duplicate_months),
        ("'time'", "month"),
    ),
    BadCase(
        "drivers_second_file_other_grid",
        "drivers",
        _split_drivers,
        ("'hurs'", "'lat'", "44 points"),
    ),
    BadCase(
        "drivers_zarr_latitude_out_of_range",
        "drivers",
        _nc_edit(
            "drivers",
            lambda ds: ds.assign_coords(lat=("lat", ds["lat"].values * 2.5, ds["lat"].attrs)),
            suffix=".zarr",
        ),
        ("'lat'", "220"),
    ),
    # --- vegetation ------------------------------------------------------------------------
    BadCase("vegetation_empty", "vegetation", _empty(".nc"), ("NetCDF",)),
    BadCase("vegetation_truncated", "vegetation", _truncated_nc("vegetation", 0.6), ("NetCDF",)),
    BadCase(
        "vegetation_other_grid",
        "vegetation",
        _nc_edit("vegetation", _shifted_grid),
        ("'lat'",),
    ),
    BadCase(
        "vegetation_sftlf_no_units",
        "vegetation",
        _nc_edit("vegetation", _attr("sftlf", "units", None)),
        ("'sftlf'", "units"),
    ),
    BadCase(
        "vegetation_fraction_extra_dim",
        "vegetation",
        _nc_edit("vegetation", _veg_fraction_extra_dim),
        ("'land_cover_fraction'",),
    ),
    BadCase(
        "vegetation_class_codes_unknown",
        "vegetation",
        _nc_edit(
            "vegetation",
            lambda ds: (
                [
                    _veg_var(v, lambda a: np.where(a == 10, 99, a))(ds)
                    for v in ("land_cover", "land_cover_on_land")
                ]
                and ds
            ),
        ),
        ("'land_cover_on_land'", "99"),
    ),
    BadCase(
        "vegetation_fraction_negative",
        "vegetation",
        _nc_edit(
            "vegetation",
            _veg_var("land_cover_fraction", lambda a: np.where(a > 0.5, -a, a)),
        ),
        ("'land_cover_fraction'", "-0.", "outside [0, 1]"),
    ),
)


# ----------------------------------------------------------------------------- model files
def write_good_model(root: Path) -> tuple[Path, Path]:
    """``(store, model file)``: the synthetic ensemble store of the compare tests and one
    CMOR-like model file on another grid."""
    from tests.test_compare_synthetic import write_model, write_store

    store_path = write_store(root / "ensemble.zarr")
    store = xr.open_zarr(store_path, consolidated=False).load()
    directory = write_model(root / "model", store, one_file=True, variables=("rh", "raRoot", "gpp"))
    return store_path, sorted(directory.glob("*.nc"))[0]


def _model(edit: Callable[[xr.Dataset], xr.Dataset]):
    def make(model: Path, path: Path) -> Path:
        target = path.with_suffix(".nc")
        ds = edit(xr.load_dataset(model, decode_times=xr.coders.CFDatetimeCoder(use_cftime=True)))
        ds.to_netcdf(target)
        return target

    return make


def _model_bytes(cut: Callable[[bytes], bytes]):
    def make(model: Path, path: Path) -> Path:
        target = path.with_suffix(".nc")
        target.write_bytes(cut(model.read_bytes()))
        return target

    return make


def _model_attr(var: str, value: str | None):
    def edit(ds: xr.Dataset) -> xr.Dataset:
        if value is None:
            ds[var].attrs.pop("units", None)
        else:
            ds[var].attrs["units"] = value
        return ds

    return edit


def _model_calendar(ds: xr.Dataset) -> xr.Dataset:
    days = np.arange(ds.sizes["time"]) * 30.0 + 15.0
    ds = ds.assign_coords(time=("time", days, {"units": "days since 2001-01-01"}))
    ds["time"].attrs["calendar"] = "martian_sols"
    return ds.drop_vars([v for v in ds.variables if "bnds" in str(v) and "time" in str(v)])


MODEL_CASES: tuple[tuple[str, Callable[[Path, Path], Path], tuple[str, ...]], ...] = (
    ("model_empty", _model_bytes(lambda b: b""), ("cannot be read",)),
    ("model_truncated", _model_bytes(lambda b: b[: len(b) // 2]), ("cannot be read",)),
    ("model_text", _model_bytes(lambda b: b"rh,lat\n1,2\n"), ("cannot be read",)),
    ("model_no_units", _model(_model_attr("rh", None)), ("'rh'", "units")),
    ("model_bad_units", _model(_model_attr("rh", "bananas")), ("'rh'", "bananas")),
    (
        "model_non_monotonic_lat",
        _model(lambda ds: ds.isel(lat=np.r_[1, 0, 2 : ds.sizes["lat"]])),
        ("lat", "monotonic"),
    ),
    (
        "model_lat_out_of_range",
        _model(lambda ds: ds.assign_coords(lat=ds["lat"].values * 3)),
        ("lat", "262.5"),
    ),
    ("model_all_nan", _model(lambda ds: ds.assign(rh=ds["rh"].where(False))), ("'rh'", "finite")),
    (
        "model_inf",
        _model(lambda ds: ds.assign(rh=ds["rh"].where(ds["rh"] < ds["rh"].max(), np.inf))),
        ("'rh'", "inf"),
    ),
    ("model_unknown_calendar", _model(_model_calendar), ("time", "martian_sols")),
    ("model_no_variables", _model(lambda ds: ds[[]]), ("no model variable",)),
)
"""Bad model files for ``srgpu compare``: (name, writer, substrings of the message)."""
