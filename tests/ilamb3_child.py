"""ilamb3's bias and spatial-distribution analyses on an srgpu reference file against a model
file; run by ``tests/test_compare_ilamb.py`` with the python of the separate ilamb3 environment
(``tests/ilamb3env.py``), never in srgpu's: it imports neither srgpu nor the tests.

    python tests/ilamb3_child.py REFERENCE.nc MODEL.nc RESULT.json

The reference is opened as it is (ilamb3 applies no cell-measure handling to a reference); the
model as ilamb3 opens a CMIP model (``cmip_cell_measures``: areacella x sftlf). Importing ilamb3
sets ``xr.set_options(keep_attrs=True)`` for the process, as for any ilamb3 user. RESULT.json:
the versions, each analysis's scalar table (source, name, units, value) and the reference
uncertainty that the bias analysis returned (``uncert``: units and values, NaN as null).
"""

from __future__ import annotations

import json
import math
import sys


def table(df) -> list[dict]:
    """The scalar rows of an ilamb3 dataframe, JSON-ready."""
    rows = []
    for rec in df.to_dict("records"):
        value = float(rec["value"])
        rows.append(
            {
                "source": str(rec["source"]),
                "name": str(rec["name"]),
                "units": str(rec["units"]),
                "value": None if math.isnan(value) else value,
            }
        )
    return rows


def main(reference: str, model: str, result: str) -> None:
    import ilamb3
    import numpy as np
    import xarray as xr
    from ilamb3 import dataset as dset
    from ilamb3.analysis import bias_analysis, spatial_distribution_analysis

    coder = xr.coders.CFDatetimeCoder(use_cftime=True)
    ref = xr.open_dataset(reference, decode_times=coder).load()
    com = dset.cmip_cell_measures(xr.open_dataset(model, decode_times=coder).load(), "rh")

    df, ref_out, _ = bias_analysis("rh", spatial_sum=True, table_unit="Pg yr-1")(
        ref.copy(), com.copy()
    )
    df0, ref0, _ = bias_analysis("rh", spatial_sum=True, use_uncertainty=False)(
        ref.copy(), com.copy()
    )
    dfs, _, _ = spatial_distribution_analysis("rh")(ref.copy(), com.copy())

    uncert = None
    if "uncert" in ref_out:
        values = ref_out["uncert"].values.astype(float)
        uncert = {
            "units": str(ref_out["uncert"].attrs.get("units")),
            "dims": list(ref_out["uncert"].dims),
            "values": np.where(np.isnan(values), None, values).tolist(),
        }
    out = {
        "ilamb3": ilamb3.__version__,
        "xarray": xr.__version__,
        "bias": table(df),
        "bias_without_uncertainty": table(df0),
        "uncert": uncert,
        "uncert_without_uncertainty": "uncert" in ref0,
        "spatial_distribution": table(dfs),
    }
    with open(result, "w") as fh:
        json.dump(out, fh)


if __name__ == "__main__":
    main(*sys.argv[1:4])
