"""SRDB filters in the config and on the command line, and the console lines about the
selection, the site join and clamped years (issue 18, deliver 4)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from typer.testing import CliRunner

from srgpu.cli import app
from srgpu.cli._inputs import apply_observation_flags, input_count_lines
from srgpu.config import EnsembleConfig
from srgpu.errors import ConfigError
from srgpu.filters import ObservationFilter, parse_years

SRDB = Path(__file__).resolve().parents[2] / "shared" / "data" / "srdb"


@pytest.mark.parametrize(
    ("text", "years"),
    [("1982-2012", (1982, 2012)), ("1982:2012", (1982, 2012)), (" 1990 ", (1990, 1990))],
)
def test_parse_years(text, years):
    assert parse_years(text) == years


@pytest.mark.parametrize("text", ["2012-1982", "82-12", "1982,2012", ""])
def test_parse_years_says_what_to_type(text):
    with pytest.raises(ConfigError, match="1982-2012"):
        parse_years(text)


def test_filters_round_trip_through_toml_and_leave_old_hashes_alone(tmp_path):
    plain = EnsembleConfig()
    assert "observations" not in plain.to_dict() and "[observations]" not in plain.to_toml()
    # an empty filter is no filter: same hash as a config made before the option existed
    assert plain.replace(observations=ObservationFilter()).hash() == plain.hash()
    cfg = apply_observation_flags(
        plain, years="1982-2012", exclude_quality_flags="Q10, Q11", ecosystem_states="Natural"
    )
    assert cfg.observations == ObservationFilter(
        years=(1982, 2012), exclude_quality_flags=("Q10", "Q11"), ecosystem_states=("Natural",)
    )
    assert cfg.hash() != plain.hash()
    path = tmp_path / "c.toml"
    path.write_text(cfg.to_toml())
    assert "[observations]" in path.read_text()
    back = EnsembleConfig.from_toml(path)
    assert back == cfg and back.hash() == cfg.hash()
    # a flag overrides the file's table, the rest of the table stays
    again = apply_observation_flags(back, years="1990-2000")
    assert again.observations.years == (1990, 2000)
    assert again.observations.exclude_quality_flags == ("Q10", "Q11")


def test_bad_observations_table(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text("[observations]\nyear = [1982, 2012]\n")
    with pytest.raises(ConfigError, match=r"unknown observations key\(s\) \['year'\]"):
        EnsembleConfig.from_toml(path)
    path.write_text("[observations]\nyears = [2012, 1982]\n")
    with pytest.raises(ConfigError, match="FIRST <= LAST"):
        EnsembleConfig.from_toml(path)


def test_console_lines():
    qc = {
        "observations": {
            "n_records": 10,
            "criteria": {},
            "reasons": {
                "not_reported": {"records": 1, "SR": 2, "HR": 5},
                "manipulated": {"records": 3, "SR": 3, "HR": 1},
                "outside_years": {"records": 0, "SR": 0, "HR": 0},
                "kept": {"records": 6, "SR": 5, "HR": 4},
            },
        },
        "sites": {
            "rows_in": 9,
            "own_cell": 6,
            "neighbour_cell": 2,
            "dropped_no_cell": 1,
            "dropped_no_year": 0,
            "years_clamped": 4,
        },
    }
    lines = input_count_lines(qc, years=np.arange(1982, 2013), climatology=False)
    assert lines == [
        "SRDB selection: 10 records, 6 kept (SR 5, HR 4); dropped: manipulated 3",
        "site join: 9 SR/HR rows; 6 in their own cell, 2 in the nearest valid cell, "
        "1 dropped (no valid cell nearby), 0 dropped (no year)",
        "record years: 4 rows outside the drivers' 1982-2012 joined the nearest driver year "
        "(--years FIRST-LAST drops them)",
    ]
    clim = input_count_lines(qc, years=np.array([2000]), climatology=True)
    assert "climatology" in clim[-1]


def test_demo_run_with_years_filter(tmp_path):
    args = ["ensemble", "--replicates", "1", "--trees", "3", "--batch-size", "1"]
    plain = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "a")])
    assert plain.exit_code == 0, plain.output
    assert "outside_years" not in plain.output
    assert "record years: 0 rows outside the drivers' 2001-2005" in plain.output
    res = CliRunner().invoke(app, [*args, "--years", "2002-2004", "--out", str(tmp_path / "b")])
    assert res.exit_code == 0, res.output
    line = next(ln for ln in res.output.splitlines() if ln.startswith("SRDB selection"))
    assert "outside_years" in line
    assert "(--years FIRST-LAST drops them)" not in res.output
    stored = xr.open_zarr(tmp_path / "b" / "ensemble.zarr", consolidated=False).attrs["config"]
    assert "[observations]\nyears = [2002, 2004]" in stored


@pytest.mark.skipif(not SRDB.is_dir(), reason="../shared/data/srdb absent")
def test_real_srdb_years_filter_counts():
    from srgpu.data.observations import load_observations

    cfg = apply_observation_flags(EnsembleConfig(), years="1982-2012")
    obs = load_observations(
        SRDB / "srdb-data_v5.0_20200511.csv.gz", **cfg.observations.selection_options()
    )
    assert (obs.n_sr, obs.n_hr) == (3303, 630)  # README: 3303 SR within 1 % of the paper's 3331
    lines = input_count_lines(
        {"observations": obs.qc.to_dict()}, years=np.array([1982, 2012]), climatology=False
    )
    assert "SR 3303" in lines[0] and "outside_years" in lines[0]
