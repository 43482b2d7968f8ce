"""``predictive = "quantiles"`` in a run: the exact pooled median, MAD and quantiles per cell,
checked against the library applied to the same forests re-grown from their seeds, across batch
sizes, across an interruption, and against a ``moments`` run (whose numbers it must not change).
"""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest
import xarray as xr

import srgpu.run.predictive as run_predictive
from srgpu.config import EnsembleConfig, ForestConfig
from srgpu.constants import G_PER_PG, NORMAL_MAD_SCALE
from srgpu.data.inputs import prepare_inputs
from srgpu.errors import ConfigError
from srgpu.forest.predictive import (
    WeightAccumulator,
    leaf_tables,
    predictive_summary,
    summary_of_weights,
)
from srgpu.run.ensemble import run_ensemble
from srgpu.run.predictive import quantiles_memory_bytes
from srgpu.run.replicate import train_replicate
from srgpu.schema import (
    PREDICTIVE_FLUXES,
    PREDICTIVE_ORDER_KINDS,
    PREDICTIVE_QUANTILE_LEVELS,
    flux_attrs,
    flux_var,
)

CFG = EnsembleConfig(
    replicates=3, batch_size=3, predictive="quantiles", forest=ForestConfig(trees=10)
)
ORDER_VARS = [flux_var(f, k) for f in PREDICTIVE_FLUXES for k in PREDICTIVE_ORDER_KINDS]


@pytest.fixture(scope="module")
def inputs():
    return prepare_inputs(CFG)


def _open(out):
    return xr.open_zarr(out / "ensemble.zarr", consolidated=False).load()


@pytest.fixture(scope="module")
def run3(inputs, tmp_path_factory):
    """One batch of 3 replicates."""
    out = tmp_path_factory.mktemp("q3")
    return out, run_ensemble(CFG, out=out, inputs=inputs), _open(out)


@pytest.fixture(scope="module")
def run1_batches():
    """``(result, the fluxes of its weights when the batch was reported)`` of run1's batches."""
    return []


@pytest.fixture(scope="module")
def run1(inputs, tmp_path_factory, run1_batches):
    """Three batches of 1 replicate."""
    out = tmp_path_factory.mktemp("q1")
    summary = run_ensemble(
        CFG.replace(batch_size=1),
        out=out,
        inputs=inputs,
        on_batch=lambda res, done, total: run1_batches.append((res, sorted(res.weights))),
    )
    return out, summary, _open(out)


def test_a_written_batch_releases_its_weights(run1, run1_batches):
    """Each batch's weights are in the running pool once written: the run drops them from the
    batch result (before the next batch is computed) instead of holding a third cells x records
    array (a real-grid quantiles run of 32 replicates peaked at 7.8 GB with it, 5.7 without);
    the pooled numbers are unchanged (test_batch_sizes_1_and_3_give_the_same_quantiles)."""
    assert [fluxes for _, fluxes in run1_batches] == [sorted(PREDICTIVE_FLUXES)] * 3
    assert all(res.weights == {} for res, _ in run1_batches)


def _cells(ds, inputs, name):
    return ds[name].values[inputs.cell_ilat, inputs.cell_ilon]


ETA = 1e-11
"""Relative nudge of a distribution's member-count scale ``S`` that moves ``p - C_j`` of the
linear rule by ~``ETA`` (``p = q (S - 1) + 1``, ``C_j = S F_j``): 1000x the float64 rounding
of the cumulative frequencies (sums of a few hundred terms <= 1, ~1e-14), so it resolves every
exact tie ``p == C_j`` both ways."""


def _bracket(W, y_sorted, counts, totals=None):
    """Per statistic, the smallest and largest value of the library's order statistics of the
    weights ``W`` over ``S (1 - ETA)``, ``S`` and ``S (1 + ETA)``: quantile-forest's linear rule
    jumps where a cumulative frequency equals ``p`` exactly (a tie of rational weights), so
    float64 sums of the same weights in another order may land on either side; away from ties
    the bracket is at most ~1e-8 g m-2 yr-1 wide (observed on the demo's cells)."""
    levels = tuple(PREDICTIVE_QUANTILE_LEVELS.values())
    runs = [
        summary_of_weights(W, y_sorted, levels=levels, counts=counts * f, totals=totals)
        for f in (1 - ETA, 1.0, 1 + ETA)
    ]
    out = {}
    for kind in PREDICTIVE_ORDER_KINDS:
        if kind in PREDICTIVE_QUANTILE_LEVELS:
            vals = [r.quantile(PREDICTIVE_QUANTILE_LEVELS[kind]) for r in runs]
        else:
            vals = [getattr(r, kind.removeprefix("pred_")) for r in runs]
        out[kind] = (np.min(vals, axis=0), np.max(vals, axis=0))
    return out


def _assert_within(got, bracket, *, y_sorted, what):
    """``got`` lies in the bracket (slack 1e-9 x the largest |y|); returns how many values
    sit at a tie (bracket wider than the slack)."""
    tol = 1e-9 * float(np.abs(y_sorted).max())
    lo, hi = bracket
    bad = ~((lo - tol <= got) & (got <= hi + tol))
    assert not bad.any(), f"{what}: {bad.sum()} values outside the bracket, e.g. {got[bad][:3]}"
    return int(((hi - lo) > tol).sum())


@pytest.fixture(scope="module")
def reference(inputs):
    """Per flux, the pooled weights of the 3 forests re-grown from their seeds
    (``train_replicate``, the run's recipe), by two independent poolings: (a) the doc's
    ``WeightAccumulator.add(dest=row % n_cells, share=1/n_years)`` over one table of all
    forests; (b) brute force: each forest's cell-year weights (rows = cell-years), summed over
    forests and averaged over years with numpy."""
    n_cells, n_years, K = inputs.n_cells, inputs.n_years, CFG.n_replicates
    out = {}
    for flux in PREDICTIVE_FLUXES:
        data = inputs.fluxes[flux]
        grown = [train_replicate(inputs, CFG, replicate=r, flux=flux) for r in range(K)]
        tables = leaf_tables(
            [f for f, _ in grown], X=data.X, y=data.y, train_index=[s.train for _, s in grown]
        )
        X = inputs.grid_X[flux]
        acc = WeightAccumulator.zeros(n_rows=n_cells, n_records=tables.n_records)
        acc.add(tables, X, dest=np.arange(X.shape[0]) % n_cells, share=1.0 / n_years)
        W = np.zeros((X.shape[0], tables.n_records))
        counts = np.zeros(X.shape[0])
        for r in range(K):
            one = WeightAccumulator.zeros(n_rows=X.shape[0], n_records=tables.n_records)
            one.add(tables.subset(r), X)
            W += one.weights / K
            counts += one.counts / K
        out[flux] = SimpleNamespace(
            tables=tables,
            X=X,
            cell_year=(W, counts),
            dest=acc,
            W=W.reshape(n_years, n_cells, -1).mean(axis=0),
            counts=counts.reshape(n_years, n_cells).mean(axis=0),
        )
    return out


def test_the_two_reference_poolings_agree(reference):
    """(a) and (b) are the same weights up to float64 summation order: the measured largest
    difference is the rounding the brackets below must absorb (observed <= 5e-16 on weights
    <= 1; asserted <= 1e-14, a thousandth of ``ETA``)."""
    for ref in reference.values():
        assert np.abs(ref.dest.weights - ref.W).max() <= 1e-14
        np.testing.assert_allclose(ref.dest.counts, ref.counts, rtol=1e-13)
        np.testing.assert_allclose(ref.dest.totals, 1.0, rtol=1e-13)  # a distribution per cell


def test_brute_cell_year_weights_are_predictive_summarys(reference):
    """The brute-force cell-year pooling read by ``summary_of_weights`` brackets
    ``predictive_summary`` of the pooled tables (its own fused kernel) at every cell-year."""
    for ref in reference.values():
        W, counts = ref.cell_year
        ps = predictive_summary(
            ref.tables, ref.X, levels=tuple(PREDICTIVE_QUANTILE_LEVELS.values())
        )
        br = _bracket(W, ref.tables.y_sorted, counts)
        y = ref.tables.y_sorted
        for kind, level in PREDICTIVE_QUANTILE_LEVELS.items():
            _assert_within(ps.quantile(level), br[kind], y_sorted=y, what=kind)
        _assert_within(ps.median, br["pred_median"], y_sorted=y, what="median")
        _assert_within(ps.mad, br["pred_mad"], y_sorted=y, what="mad")


def test_stored_order_statistics_equal_the_library_on_regrown_forests(run3, inputs, reference):
    """Every stored median, MAD and quantile lies in the bracket of the brute-force pooled
    weights (b), i.e. equals it up to the rounding of the summation order; ties are rare."""
    _, _, ds = run3
    ties = total = 0
    for flux, ref in reference.items():
        br = _bracket(ref.W, ref.tables.y_sorted, ref.counts)
        for kind in PREDICTIVE_ORDER_KINDS:
            got = _cells(ds, inputs, flux_var(flux, kind))
            ties += _assert_within(got, br[kind], y_sorted=ref.tables.y_sorted, what=kind)
            total += got.size
    assert ties <= 0.01 * total


def test_order_statistics_are_ordered_and_described_by_the_schema(run3, inputs):
    _, _, ds = run3
    for flux in PREDICTIVE_FLUXES:
        q = [_cells(ds, inputs, flux_var(flux, k)) for k in PREDICTIVE_QUANTILE_LEVELS]
        med = _cells(ds, inputs, flux_var(flux, "pred_median"))
        cols = [*q[:3], med, *q[3:]]
        assert all(np.all(lo <= hi) for lo, hi in zip(cols, cols[1:], strict=False))
        assert np.all(np.isfinite(med))
        mad = _cells(ds, inputs, flux_var(flux, "pred_mad"))
        scaled = _cells(ds, inputs, flux_var(flux, "pred_mad_scaled"))
        # a MAD of 0 is possible (over half the weight on one record value: 10 trees), rare
        assert np.all(mad >= 0) and np.mean(mad > 0) > 0.9
        np.testing.assert_allclose(scaled, NORMAL_MAD_SCALE * mad, rtol=1e-15)
        for kind in PREDICTIVE_ORDER_KINDS:
            attrs = ds[flux_var(flux, kind)].attrs
            want = flux_attrs(flux, kind)
            assert attrs["units"] == want["units"] == "g m-2 yr-1"
            assert attrs["long_name"] == want["long_name"]
            assert attrs["cell_methods"].endswith(want["cell_methods"])


def test_summary_integrates_the_mad_maps(run3, inputs):
    out, summary, ds = run3
    on_disk = json.loads((out / "summary.json").read_text())
    w = inputs.weight_m2
    for flux in PREDICTIVE_FLUXES:
        p = on_disk["fluxes"][flux]["predictive"]
        for key, kind in (
            ("integrated_mad_pg_per_yr", "pred_mad"),
            ("integrated_mad_scaled_pg_per_yr", "pred_mad_scaled"),
            ("integrated_sd_pg_per_yr", "pred_sd"),
        ):
            want = float((_cells(ds, inputs, flux_var(flux, kind)) * w).sum() / G_PER_PG)
            assert p[key] > 0
            assert p[key] == pytest.approx(want, rel=1e-12)
        assert p["integrated_mad_scaled_pg_per_yr"] == pytest.approx(
            NORMAL_MAD_SCALE * p["integrated_mad_pg_per_yr"], rel=1e-12
        )
    assert on_disk["fluxes"]["AR"]["predictive"] is None


def test_batch_sizes_1_and_3_give_the_same_quantiles(run1, run3, inputs, reference):
    """The pooled weights are a sum over replicates: batches of 1 add the three forests'
    weights one by one, a batch of 3 adds them inside the batch first. Only float64 rounding
    differs (<= 5e-16 on the weights, see ``test_the_two_reference_poolings_agree``): both
    runs' order statistics lie in the same reference bracket, and away from the linear rule's
    ties (none at the demo's cells) they agree to 1e-12 relative (observed: 30-50 % of the
    cells differ, by at most 4e-14 relative, 9e-12 g m-2 yr-1). The per-replicate rows and the
    pooled moments are bit-identical; the integrated MADs agree to 1e-12 relative (observed
    1.3e-15)."""
    _, s1, ds1 = run1
    _, s3, ds3 = run3
    for flux, ref in reference.items():
        br = _bracket(ref.W, ref.tables.y_sorted, ref.counts)
        tol = 1e-9 * float(np.abs(ref.tables.y_sorted).max())
        for kind in PREDICTIVE_ORDER_KINDS:
            a = _cells(ds1, inputs, flux_var(flux, kind))
            b = _cells(ds3, inputs, flux_var(flux, kind))
            for got in (a, b):
                _assert_within(got, br[kind], y_sorted=ref.tables.y_sorted, what=kind)
            calm = (br[kind][1] - br[kind][0]) <= tol
            np.testing.assert_allclose(a[calm], b[calm], rtol=1e-12, atol=1e-9)
    for name in ds3.data_vars:
        if name in ORDER_VARS:
            continue
        exact = "replicate" in ds3[name].dims or "_pred_" in name  # rows, the pooled moments
        if exact or ds3[name].dtype.kind not in "fc":
            np.testing.assert_array_equal(ds1[name].values, ds3[name].values, err_msg=name)
        else:  # the replicate spread's merged moments: batch-order rounding, as before
            np.testing.assert_allclose(ds1[name].values, ds3[name].values, rtol=1e-12)
    for flux in PREDICTIVE_FLUXES:
        a, b = s1["fluxes"][flux]["predictive"], s3["fluxes"][flux]["predictive"]
        assert a["integrated_mad_pg_per_yr"] == pytest.approx(
            b["integrated_mad_pg_per_yr"], rel=1e-12
        )


def test_interrupted_then_resumed_equals_uninterrupted(run1, inputs, tmp_path):
    """A run stopped after its first batch keeps the pooled weights in its work store and,
    resumed, ends with the same bits as the uninterrupted run (same batches, same order)."""
    _, s1, ds1 = run1
    cfg = CFG.replace(batch_size=1)
    out = tmp_path / "resumed"
    part = run_ensemble(cfg, out=out, inputs=inputs, max_batches=1)
    assert part == {"complete": False, "batches_done": 1, "batches": 3}
    import zarr

    slot = json.loads((out / "progress.json").read_text())["moments_slot"]
    work = zarr.open_group(out / "work.zarr", mode="r")
    w = np.asarray(work[f"{slot}_SR_pred_weights"][:])
    # one replicate of three: its weights sum to 1/3 per cell
    np.testing.assert_allclose(w.sum(axis=1), 1 / 3, rtol=1e-12)
    notes = []
    summary = run_ensemble(cfg, out=out, inputs=inputs, on_notice=notes.append)
    assert any("resuming" in n for n in notes)
    ds = _open(out)
    for name in ds1.data_vars:
        np.testing.assert_array_equal(ds[name].values, ds1[name].values, err_msg=name)
    assert summary["fluxes"]["SR"]["predictive"] == s1["fluxes"]["SR"]["predictive"]
    assert not (out / "work.zarr").exists()  # removed at finalisation, weights and all


def test_moments_numbers_are_those_of_a_moments_run(run3, inputs, tmp_path):
    """Quantiles add variables; every variable a ``moments`` run writes is bit-identical."""
    _, s3, ds3 = run3
    out = tmp_path / "moments"
    sm = run_ensemble(CFG.replace(predictive="moments"), out=out, inputs=inputs)
    dm = _open(out)
    assert set(dm.data_vars) == set(ds3.data_vars) - set(ORDER_VARS)
    for name in dm.data_vars:
        np.testing.assert_array_equal(dm[name].values, ds3[name].values, err_msg=name)
    for flux in PREDICTIVE_FLUXES:
        p = sm["fluxes"][flux]["predictive"]
        assert p["integrated_mad_pg_per_yr"] is None
        assert p["integrated_mad_scaled_pg_per_yr"] is None
        assert (
            p["integrated_sd_pg_per_yr"]
            == s3["fluxes"][flux]["predictive"]["integrated_sd_pg_per_yr"]
        )
    assert sm["calibration"] == s3["calibration"]


def test_memory_estimate_of_the_real_grid():
    """53 806 cells x 2665 SR records x 8 bytes = 1.147 GB for SR's weights alone; the run
    plans twice that (running sum and one batch's sum) plus HR's."""
    fake = SimpleNamespace(
        n_cells=53_806,
        fluxes={"SR": SimpleNamespace(y=np.empty(2665)), "HR": SimpleNamespace(y=np.empty(672))},
    )
    assert 53_806 * 2665 * 8 == pytest.approx(1.147e9, rel=1e-3)
    assert quantiles_memory_bytes(fake) == 2 * 8 * 53_806 * (2667 + 674)
    with pytest.raises(ConfigError, match="--predictive moments"):
        run_predictive.check_quantiles_memory(fake, limit_bytes=2_000_000_000)
    assert run_predictive.check_quantiles_memory(fake) < 8e9  # the real grid is allowed


def test_too_much_memory_is_refused_before_anything_is_written(inputs, tmp_path, monkeypatch):
    need = quantiles_memory_bytes(inputs)
    monkeypatch.setattr(run_predictive, "QUANTILES_MEMORY_LIMIT_BYTES", need - 1)
    out = tmp_path / "refused"
    with pytest.raises(ConfigError, match=rf"needs {need:,} bytes.*--predictive moments"):
        run_ensemble(CFG, out=out, inputs=inputs)
    assert not out.exists()


def test_predictive_setting_accepts_quantiles_only_among_known_modes():
    assert EnsembleConfig(predictive="quantiles").predictive == "quantiles"
    assert EnsembleConfig().predictive == "moments"  # the default is unchanged
    with pytest.raises(ConfigError):
        EnsembleConfig(predictive="qrf")


def test_export_carries_the_order_statistics(run3):
    from srgpu.run.export import export_dataset

    out, _, ds = run3
    exported = export_dataset(xr.open_zarr(out / "ensemble.zarr", consolidated=False))
    for name in ORDER_VARS:
        assert exported[name].attrs["units"] == "g m-2 yr-1"
        np.testing.assert_array_equal(exported[name].values, ds[name].values)


def test_damaged_pooled_weights_are_refused_on_resume(inputs, tmp_path):
    """A flipped byte in the work store's pooled weights fails its crc32c: the resumed run
    stops with a one-line StoreError naming the array (the weights cannot be rebuilt from the
    stored rows), never with quantiles of damaged weights."""
    from srgpu.errors import StoreError

    cfg = CFG.replace(batch_size=1)
    out = tmp_path / "damaged"
    run_ensemble(cfg, out=out, inputs=inputs, max_batches=1)
    slot = json.loads((out / "progress.json").read_text())["moments_slot"]
    chunk = out / "work.zarr" / f"{slot}_HR_pred_weights" / "c" / "0" / "0"
    data = bytearray(chunk.read_bytes())
    data[len(data) // 2] ^= 0xFF
    chunk.write_bytes(bytes(data))
    with pytest.raises(StoreError, match=rf"{slot}_HR_pred_weights.*--overwrite"):
        run_ensemble(cfg, out=out, inputs=inputs)


def test_a_local_dask_cluster_gives_the_same_bits(run1, inputs, tmp_path):
    """Batches trained on two Dask worker processes (their sums of the pooled weights pickled
    back) and merged in batch order: every array equals the serial run's, bit for bit."""
    _, _, ds1 = run1
    out = tmp_path / "dask"
    run_ensemble(CFG.replace(batch_size=1), out=out, inputs=inputs, workers=2)
    ds = _open(out)
    assert set(ds.data_vars) == set(ds1.data_vars)
    for name in ds1.data_vars:
        np.testing.assert_array_equal(ds[name].values, ds1[name].values, err_msg=name)


def test_a_complete_store_reopened_rebuilds_the_same_summary(run3, inputs, tmp_path):
    """Opening a finished quantiles run again checks its order statistics (attributes
    included) and rebuilds a lost summary.json from the store with the same MAD figures."""
    import shutil

    src, s3, _ = run3
    out = tmp_path / "copy"
    shutil.copytree(src, out, ignore=shutil.ignore_patterns(".srgpu.lock"))
    (out / "summary.json").unlink()
    notes = []
    again = run_ensemble(CFG, out=out, inputs=inputs, on_notice=notes.append)
    assert any("rebuilt summary.json" in n for n in notes)
    for flux in PREDICTIVE_FLUXES:
        assert again["fluxes"][flux]["predictive"] == s3["fluxes"][flux]["predictive"]
