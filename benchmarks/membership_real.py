"""Leaf membership on the real data: two finished ``srgpu ensemble`` runs, the same config but
``predictive_membership`` ("all" and "oob"), side by side.

``python -m benchmarks.membership_real RUN_ALL RUN_OOB [--out FILE] [--note TEXT]`` reads each
run's ``summary.json`` and writes, per flux and membership, the held-out coverage of the
central 50 / 90 / 95 % intervals (mean over replicates), the mean CRPS, the PIT histogram's
outer tenths, the integrated predictive SD and the replicate spread and total (equal in both:
the same forests) to ``benchmarks/results/membership-real-<date>.json``. The two runs must
differ in ``predictive_membership`` only (checked). README and docs/predictive.md quote it.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
from pathlib import Path


def _block(summary: dict, flux: str) -> dict:
    c = summary["calibration"][flux]
    f = summary["fluxes"][flux]
    return {
        "coverage_50_90_95_pct": [
            round(100 * c["coverage"][k]["mean"], 1) for k in ("0.5", "0.9", "0.95")
        ],
        "crps_g_m2_yr": round(c["crps"]["mean"], 1),
        "pit_first_last_tenth_pct": [
            round(100 * c["pit_hist"][0], 1),
            round(100 * c["pit_hist"][-1], 1),
        ],
        "predictive_integrated_sd_pg_per_yr": round(f["predictive"]["integrated_sd_pg_per_yr"], 2),
        "replicate_integrated_sd_pg_per_yr": round(f["integrated_sd_pg_per_yr"], 2),
        "total_pg_per_yr": round(f["total_pg_per_yr"]["mean"], 2),
    }


def compare(run_all: Path, run_oob: Path) -> dict:
    """The side-by-side figures of the two runs (see the module docstring)."""
    runs = {"all": run_all, "oob": run_oob}
    s = {m: json.loads((p / "summary.json").read_text()) for m, p in runs.items()}
    cfg = {m: dict(v["config"]) for m, v in s.items()}
    for m, want in (("all", None), ("oob", "oob")):
        if cfg[m].pop("predictive_membership", None) != want:
            raise SystemExit(f"the {m!r} run's summary.json has another predictive_membership")
    if cfg["all"] != cfg["oob"]:
        raise SystemExit("the two runs differ in more than predictive_membership")
    return {
        "config": cfg["all"],
        "n_replicates": s["all"]["n_replicates"],
        "results": {
            flux: {m: _block(s[m], flux) for m in ("all", "oob")}
            for flux in s["all"]["calibration"]
        },
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.membership_real", description=__doc__)
    p.add_argument("run_all", type=Path)
    p.add_argument("run_oob", type=Path)
    p.add_argument("--out", type=Path, default=None)
    p.add_argument("--note", default="", help="how the runs were made (command, machine, cost)")
    a = p.parse_args(argv)
    res = compare(a.run_all, a.run_oob)
    res = {
        "what": "held-out calibration and integrated predictive SD of two real-data runs that "
        "differ in predictive_membership only (all: the default, the paper's; oob: out-of-bag "
        "leaf members); coverage and CRPS: mean over replicates, each on its held-out 20 %",
        "note": a.note,
        **res,
    }
    out = a.out or Path(__file__).parent / "results" / f"membership-real-{dt.date.today()}.json"
    out.write_text(json.dumps(res, indent=1) + "\n")
    print(out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
