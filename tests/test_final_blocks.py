"""The final statistics read the per-replicate rows in large blocks and compute in ``cell_chunk``
blocks (:func:`srgpu.run.final_results.final_read_cells`): any block sizes give the same bits."""

from __future__ import annotations

import numpy as np
import xarray as xr

import srgpu.run.final_results as final_mod
from srgpu.data.inputs import prepare_inputs
from srgpu.run.ensemble import run_ensemble
from srgpu.run.final_results import final_read_cells
from srgpu.run.store import EnsembleStore
from tests.test_ensemble import TINY


def test_read_blocks_are_whole_compute_blocks():
    assert final_read_cells(n_replicates=2000, cell_chunk=8192) == 8192
    assert final_read_cells(n_replicates=32, cell_chunk=8192) == 64 * 8192
    assert final_read_cells(n_replicates=10**9, cell_chunk=8192) == 8192  # at least one
    assert final_read_cells(n_replicates=4, cell_chunk=3) % 3 == 0


def test_final_statistics_do_not_depend_on_block_sizes(tmp_path, monkeypatch):
    inputs = prepare_inputs(TINY)
    reference = run_ensemble(TINY, out=tmp_path / "ref", inputs=inputs)
    finalize = EnsembleStore.finalize
    # compute blocks of 4 cells, read blocks of 2 compute blocks (and short last ones)
    monkeypatch.setattr(final_mod, "FINAL_READ_VALUES", TINY.n_replicates * 4 * 2)
    monkeypatch.setattr(
        EnsembleStore, "finalize", lambda self, **kw: finalize(self, **kw, cell_chunk=4)
    )
    assert inputs.n_cells % 4  # the last read block and compute block are cut short
    assert run_ensemble(TINY, out=tmp_path / "small", inputs=inputs) == reference
    ref = xr.open_zarr(tmp_path / "ref" / "ensemble.zarr", consolidated=False)
    got = xr.open_zarr(tmp_path / "small" / "ensemble.zarr", consolidated=False)
    assert set(got.data_vars) == set(ref.data_vars)
    for name in ref.data_vars:
        np.testing.assert_array_equal(got[name].values, ref[name].values, err_msg=name)
