"""The layout of ``OUT/ensemble.zarr`` (see ``docs/store.md``): the per-replicate arrays a batch
writes, the creation of the store (static context, site records, empty row arrays, then the work
store) and the writing of a batch's rows into their arrays."""

from __future__ import annotations

import numpy as np
import xarray as xr
import zarr

from srgpu import __version__
from srgpu import schema as S
from srgpu.config import EnsembleConfig
from srgpu.data.inputs import Inputs
from srgpu.errors import StoreError
from srgpu.grid import bounds_from_centres
from srgpu.run.batch import BatchResult
from srgpu.run.progress import write_progress
from srgpu.run.run_dir import RunDir
from srgpu.run.safe_io import checksum_codecs
from srgpu.run.work_store import create_work
from srgpu.schema import (
    CALIBRATION,
    CALIBRATION_METRICS,
    CELL_AREA,
    CELL_ILAT,
    CELL_ILON,
    COORD_ATTRS,
    DOMAIN,
    FLUX_KINDS,
    FLUX_UNITS,
    FORMAT_VERSION,
    LAND_FRACTION,
    METRICS,
    OUTPUT_FLUXES,
    PREDICTIVE_FLUXES,
    REPLICATE_DONE,
    TRAINED_FLUXES,
    VALIDATION,
    VEG_BIN,
    flux_attrs,
    flux_var,
)

ROW_ARRAYS = (
    *(flux_var(f, "replicate_map") for f in OUTPUT_FLUXES),
    *(flux_var(f, "replicate_total") for f in OUTPUT_FLUXES),
    VALIDATION,
    REPLICATE_DONE,
)
"""The per-replicate arrays a batch writes (chunked by batch along ``replicate``)."""

PREDICTIVE_ROW_ARRAYS = (
    *(flux_var(f, "pred_replicate_mean") for f in PREDICTIVE_FLUXES),
    *(flux_var(f, "pred_replicate_second") for f in PREDICTIVE_FLUXES),
    CALIBRATION,
    S.SITE_FOREST_MEAN,
    S.SITE_HELDOUT,
)
"""The per-replicate arrays of the predictive distribution and of the two bands' held-out
calibration (``config.predictive``)."""

EXTRA_ROW_DIMS = {
    CALIBRATION: ("replicate", "flux", "cal_metric"),
    S.SITE_FOREST_MEAN: ("replicate", "site"),
    S.SITE_HELDOUT: ("replicate", "site"),
}
"""Dimensions of a batch's further rows (``BatchResult.extra``) other than (replicate, cell)."""


def row_arrays(config: EnsembleConfig) -> tuple[str, ...]:
    """Every per-replicate array a batch of this run writes."""
    return ROW_ARRAYS + (PREDICTIVE_ROW_ARRAYS if config.predictive != "none" else ())


NAN_FILL = "AAAAAAAA+H8="
"""A NaN ``_FillValue`` attribute as xarray writes it in Zarr v3 (base64 of the float64 NaN)."""


def cf_coordinate_attrs(ds: xr.Dataset) -> xr.Dataset:
    """``ds`` with :data:`COORD_ATTRS` set on the coordinates it has."""
    for name, attrs in COORD_ATTRS.items():
        if name in ds.coords:
            ds[name].attrs.update(attrs)
    return ds


def create_store(store: RunDir, config: EnsembleConfig, inputs: Inputs) -> None:
    """Create ``ensemble.zarr`` (static context, site records, empty per-replicate arrays) and
    the work store, between two progress records (``"created": false``, then ``true``)."""
    # the progress record comes first, marked "created": false until every array exists,
    # so that a run killed while creating the store is recognised and started again
    write_progress(store, config=config, batches_done=0, slot=None, count=0, created=False)
    n_rep = config.n_replicates
    preds = inputs.predictors
    coords = {
        "lat": preds["lat"],
        "lon": preds["lon"],
        "year": ("year", inputs.years, {"long_name": "year"}),
        "replicate": ("replicate", np.arange(n_rep), {"long_name": "replicate model index"}),
        "cell": ("cell", np.arange(inputs.n_cells), {"long_name": "prediction-domain cell"}),
        "flux": ("flux", np.array(TRAINED_FLUXES, dtype=object)),
        "metric": ("metric", np.array(METRICS, dtype=object)),
    }
    ds = xr.Dataset(coords=coords)
    for axis, clip in (("lat", {"lower": -90.0, "upper": 90.0}), ("lon", {})):
        ds[f"{axis}_bnds"] = ((axis, "bnds"), bounds_from_centres(preds[axis].values, **clip))
    ds[CELL_ILAT] = ("cell", inputs.cell_ilat.astype(np.int32))
    ds[CELL_ILON] = ("cell", inputs.cell_ilon.astype(np.int32))
    ds[CELL_AREA] = preds[CELL_AREA].astype(np.float64)
    ds[CELL_AREA].attrs.update(units="m2", standard_name=CELL_AREA)
    ds[LAND_FRACTION] = preds[LAND_FRACTION].astype(np.float64)
    ds[LAND_FRACTION].attrs.update(units="1", standard_name="land_area_fraction")
    ds[VEG_BIN] = preds[VEG_BIN].astype(np.int8)
    ds[VEG_BIN].attrs.update(
        long_name="vegetation bin (0 none, 1 EBF, 2 other forests, 3 shrublands, "
        "4 savannas+grasslands, 5 croplands)",
        flag_values=np.arange(6, dtype=np.int8),
        flag_meanings="none evergreen_broadleaf_forest other_forest shrubland "
        "savanna_and_grassland cropland",
    )
    ds[DOMAIN] = preds[DOMAIN].astype(np.int8)
    ds[DOMAIN].attrs.update(
        long_name="prediction domain (vegetated land), 1 = in",
        flag_values=np.array([0, 1], dtype=np.int8),
        flag_meanings="outside_domain inside_domain",
    )
    # the per-replicate arrays (empty: their chunks are written batch by batch), created
    # after the rest: name -> (dimensions, shape after replicate, dtype, attributes)
    rows: dict[str, tuple] = {}
    for f in OUTPUT_FLUXES:
        rows[flux_var(f, "replicate_map")] = (
            ("replicate", "cell"),
            (inputs.n_cells,),
            np.float32,
            flux_attrs(f, "replicate_map"),
        )
        rows[flux_var(f, "replicate_total")] = (
            ("replicate", "year"),
            (inputs.n_years,),
            np.float64,
            flux_attrs(f, "replicate_total"),
        )
    rows[VALIDATION] = (
        ("replicate", "flux", "metric"),
        (len(TRAINED_FLUXES), len(METRICS)),
        np.float64,
        {"long_name": "validation on the held-out records (r2: 1; rmse: g m-2 yr-1; r: 1)"},
    )
    rows[REPLICATE_DONE] = (
        ("replicate",),
        (),
        np.int8,
        {"long_name": "1 when the replicate's rows are written and merged"},
    )
    sites = _site_variables(inputs)
    ds = ds.merge(sites)
    ds.attrs.update(
        Conventions="CF-1.8",
        title="srgpu random-forest ensemble of soil respiration (after Lu et al. 2021)",
        source=f"srgpu {__version__}",
        config=config.to_toml(),
        config_hash=config.hash(),
        srgpu_version=__version__,
        srgpu_format=FORMAT_VERSION,
        climatology=int(preds.attrs.get("climatology", 0)),
    )
    if config.predictive != "none":
        ds = ds.assign_coords(
            cal_metric=("cal_metric", np.array(CALIBRATION_METRICS, dtype=object))
        )
        for f in PREDICTIVE_FLUXES:
            for kind in ("pred_replicate_mean", "pred_replicate_second"):
                rows[flux_var(f, kind)] = (
                    FLUX_KINDS[kind].dims,
                    (inputs.n_cells,),
                    np.float32,
                    flux_attrs(f, kind),
                )
        rows[CALIBRATION] = (
            ("replicate", "flux", "cal_metric"),
            (len(PREDICTIVE_FLUXES), len(CALIBRATION_METRICS)),
            np.float64,
            {
                "long_name": "calibration of each replicate's predictive distribution on its "
                "held-out records (coverage: 1; crps: g m-2 yr-1; pit_i: share of PIT values "
                "in bin i of 10)"
            },
        )
        n_sites = ds.sizes["site"]
        rows[S.SITE_FOREST_MEAN] = (
            ("replicate", "site"),
            (n_sites,),
            np.float64,
            {
                "units": FLUX_UNITS,
                "long_name": "each replicate's forest mean at every record of its flux "
                "(the replicate-spread band at held-out records)",
            },
        )
        rows[S.SITE_HELDOUT] = (
            ("replicate", "site"),
            # float32 with NaN fill, like every row array: a lost chunk reads as missing
            (n_sites,),
            np.float32,
            {
                "units": "1",
                "long_name": "1 where the replicate held the record out, 0 where it trained on it",
            },
        )
    ds = cf_coordinate_attrs(ds)  # last: assigning DataArrays replaces coordinate attrs
    encoding = {name: {"compressors": checksum_codecs()} for name in ds.variables}
    try:
        ds.to_zarr(store.path, mode="w", zarr_format=3, consolidated=False, encoding=encoding)
        _create_rows(store, rows, n_replicates=n_rep, chunk=min(config.batch_size, n_rep))
        create_work(store, config=config, inputs=inputs)
    except OSError as exc:
        raise StoreError(
            f"{store.out}: cannot write the store ({exc.strerror or exc}); nothing was "
            f"computed: {store._retry(exc, 'to start')}"
        ) from None
    write_progress(store, config=config, batches_done=0, slot=None, count=0)


def _create_rows(store: RunDir, rows: dict[str, tuple], *, n_replicates: int, chunk: int) -> None:
    """Create the empty per-replicate arrays ``rows`` (name -> (dimensions, shape after
    ``replicate``, dtype, attributes)) in chunks of ``chunk`` replicates, straight through
    zarr (raises ``OSError``): the metadata xarray writes for such an array (NaN fill
    recorded in ``_FillValue`` as well, 0 for integers), without building the placeholder
    dask arrays it would need."""
    grp = zarr.open_group(store.path, mode="r+", zarr_format=3)
    for name, (dims, shape, dtype, attrs) in rows.items():
        floating = np.dtype(dtype).kind == "f"
        grp.create_array(
            name,
            shape=(n_replicates, *shape),
            chunks=(chunk, *shape),
            dtype=dtype,
            fill_value=np.nan if floating else 0,
            compressors=checksum_codecs(),
            dimension_names=dims,
            attributes={**attrs, "_FillValue": NAN_FILL} if floating else dict(attrs),
        )


def _site_variables(inputs: Inputs) -> xr.Dataset:
    frames = [inputs.fluxes[f].table.assign(flux=f) for f in TRAINED_FLUXES]
    import pandas as pd

    t = pd.concat(frames, ignore_index=True)
    ds = xr.Dataset()
    ds[S.SITE_FLUX] = ("site", t["flux"].to_numpy().astype(object))
    ds[S.SITE_VALUE] = ("site", t["value"].to_numpy(np.float64), {"units": FLUX_UNITS})
    for col, name in (("lat", S.SITE_LAT), ("lon", S.SITE_LON), ("year", S.SITE_YEAR)):
        ds[name] = ("site", t[col].to_numpy(np.float64))
    ds[S.SITE_LAT].attrs["units"] = "degrees_north"
    ds[S.SITE_LON].attrs["units"] = "degrees_east"
    for col, name in (
        ("ilat", S.SITE_ILAT),
        ("ilon", S.SITE_ILON),
        ("iyear", S.SITE_IYEAR),
        (VEG_BIN, S.SITE_VEG_BIN),
    ):
        ds[name] = ("site", t[col].to_numpy(np.int32))
    for col, name in (("study", S.SITE_STUDY), ("record_id", S.SITE_RECORD_ID)):
        ds[name] = ("site", pd.to_numeric(t[col], errors="coerce").fillna(-1).to_numpy(np.int64))
    return ds


def batch_rows(result: BatchResult) -> dict[str, tuple[tuple[str, ...], np.ndarray]]:
    """A batch's replicate rows: array name -> (dimensions, values)."""
    rows: dict[str, tuple[tuple[str, ...], np.ndarray]] = {}
    for f in OUTPUT_FLUXES:
        rows[flux_var(f, "replicate_map")] = (
            ("replicate", "cell"),
            result.maps[f].astype(np.float32),
        )
        rows[flux_var(f, "replicate_total")] = (("replicate", "year"), result.totals[f])
    rows[VALIDATION] = (("replicate", "flux", "metric"), result.validation)
    rows[REPLICATE_DONE] = (("replicate",), np.ones(result.spec.size, dtype=np.int8))
    for name, values in result.extra.items():
        rows[name] = (EXTRA_ROW_DIMS.get(name, ("replicate", "cell")), values)
    return rows


def write_row_arrays(store: RunDir, result: BatchResult) -> None:
    """Write a batch's replicate rows into their arrays, straight through zarr (the arrays
    exist; each batch fills whole chunks along ``replicate``): the same chunks, bit for
    bit, as an xarray region write, without opening the whole store's metadata."""
    spec = result.spec
    grp = zarr.open_group(store.path, mode="r+", zarr_format=3)
    for name, (dims, values) in batch_rows(result).items():
        arr = grp[name]
        values = np.asarray(values)
        want = (spec.size, *arr.shape[1:])
        if tuple(arr.metadata.dimension_names or ()) != dims or values.shape != want:
            raise ValueError(
                f"{store.path}/{name}: rows of shape {values.shape} over {dims} do not fit "
                f"the array's {want} over {arr.metadata.dimension_names}"
            )
        arr[spec.start : spec.stop] = values
