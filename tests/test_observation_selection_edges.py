"""Known answers for the edges of the SRDB selection and of the vegetation bins.

Written for the mutants of :mod:`srgpu.data.observations` that survived the rest of the suite
(issue 21, deliver 4; ``tests/mutation/``). Every expected value is worked out by hand from the
documented rules (module docstring, :data:`QC_REASONS`, :data:`MAX_ANNUAL_FLUX`,
:func:`is_evergreen_broadleaf`), not read back from the code; error messages are checked in full
because the CLI prints exactly that one line.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from srgpu.data.observations import (
    is_evergreen_broadleaf,
    read_srdb,
    select_observations,
    srdb_veg_bins,
)
from srgpu.errors import InputError
from tests.test_observations import _frame

# -- optional filters ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("option", "column"),
    [
        ({"exclude_quality_flags": ["Q1"]}, "Quality_flag"),
        ({"exclude_duplicates": True}, "Duplicate_record"),
        ({"ecosystem_states": ["Natural"]}, "Ecosystem_state"),
    ],
)
def test_an_option_without_its_column_names_file_column_and_option(option, column):
    raw = _frame([{"Rs_annual": 500.0}]).drop(columns=[column], errors="ignore")
    with pytest.raises(InputError) as e:
        select_observations(raw, source="s.csv", **option)
    name = next(iter(option))
    assert str(e.value) == (
        f"s.csv: field '{column}': option {name} needs this column, which is absent or empty"
    )


def test_criteria_list_exactly_the_options_set():
    row = {"Rs_annual": 500.0, "Ecosystem_state": "Natural", "Quality_flag": "Q02"}
    raw = _frame([row, row])
    raw["Duplicate_record"] = [None, "1"]  # the second is a duplicate of the first
    untreated = ["ambient", "control", "none"]
    assert select_observations(raw).qc.criteria == {"untreated_manipulation": untreated}
    qc = select_observations(
        raw,
        years=(1982, 2012),
        exclude_quality_flags=["q1", "Q011"],
        exclude_duplicates=True,
        ecosystem_states=[" Natural", "UNMANAGED "],
    ).qc
    assert qc.criteria == {
        "untreated_manipulation": untreated,
        "years": [1982.0, 2012.0],
        "exclude_quality_flags": ["Q01", "Q11"],
        "exclude_duplicates": True,
        "ecosystem_states": ["natural", "unmanaged"],
    }
    assert qc.records["kept"] == 1 and qc.records["duplicate"] == 1
    assert qc.to_dict()["criteria"]["exclude_duplicates"] is True


# -- the implausible-flux check ------------------------------------------------------------------


def test_the_flux_limit_is_inclusive_and_checks_records_dropped_by_rh_ge_rs():
    # 10 000 g C m-2 yr-1 is the largest plausible value: kept, no error
    obs = select_observations(_frame([{"Rs_annual": 10_000.0, "Rh_annual": 9_999.0}]))
    assert obs.table["value"].tolist() == [10_000.0, 9_999.0]
    # a record dropped only by Rh >= Rs would be used but for that test: its units are checked
    raw = _frame([{"Rs_annual": 500.0}, {"Rs_annual": 12_000.0, "Rh_annual": 12_500.0}])
    with pytest.raises(InputError) as e:
        select_observations(raw, source="s.csv")
    assert str(e.value) == (
        "s.csv: field 'Rs_annual': implausible annual flux at row 1 (record 2); check the units "
        "(g C m-2 yr-1, not g CO2 or mg C) or remove the record (got '12000'); expected at most "
        "10000 g C m-2 yr-1"
    )
    # a record dropped for a treatment is not checked (SRDB has such values, all treated)
    raw = _frame([{"Rs_annual": 500.0}, {"Rs_annual": 40_997.0, "Manipulation": "Warmed"}])
    assert select_observations(raw).qc.records["manipulated"] == 1


# -- the tidy table ------------------------------------------------------------------------------


def test_table_carries_the_record_text_and_a_fresh_index():
    rows = [
        {"Rs_annual": 800.0, "Rh_annual": 400.0, "Site_ID": "S1", "Ecosystem_type": "Grassland"},
        {"Rs_annual": 700.0, "Study_number": np.nan, "Site_ID": "S2", "Biome": "Boreal"},
    ]
    raw = _frame(rows)
    raw["Species"] = ["Festuca rubra", None]
    raw["Ecosystem_state"] = ["Natural", "Managed"]
    raw["Quality_flag"] = [None, "Q10"]
    t = select_observations(raw).table
    # SR rows first (records 1, 2), then HR (record 1); the index numbers the rows 0..2
    assert t.index.tolist() == [0, 1, 2]
    assert t["record_id"].tolist() == [1.0, 2.0, 1.0]
    assert t["flux"].tolist() == ["SR", "SR", "HR"]
    assert t["site_id"].tolist() == ["S1", "S2", "S1"]
    assert t["ecosystem_type"].tolist() == ["Grassland", "Forest", "Grassland"]
    assert t["biome"].tolist() == ["Temperate", "Boreal", "Temperate"]
    assert t["leaf_habit"].tolist() == ["Deciduous"] * 3
    assert t["ecosystem_state"].tolist() == ["Natural", "Managed", "Natural"]
    assert t["species"].tolist() == ["Festuca rubra", pd.NA, "Festuca rubra"]
    assert t["quality_flag"].tolist() == [pd.NA, "Q10", pd.NA]
    # grassland -> bin 4, a (boreal, deciduous) forest -> bin 2
    assert t["veg_bin"].tolist() == [4, 2, 4]
    # the study number is an integer column that can be missing (SRDB leaves some empty)
    assert t["study"].dtype == "Int64"
    assert t["study"].tolist() == [7, pd.NA, 7]
    assert t.attrs["units"] == {
        "value": "g C m-2 yr-1",
        "lat": "degrees_north",
        "lon": "degrees_east",
    }


# -- evergreen broadleaf forests -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("species", "ebf"),
    [
        ("Pinus,Schima superba", False),  # first species Pinus, no space after the comma
        ("Pinus;Schima superba", False),
        ("Schima superba,Pinus massoniana", True),  # first species broadleaf
        ("Schima;Pinus", True),
        ("  PINUS   massoniana ", False),  # case and spaces do not matter
        (None, True),  # no species listed: a tropical evergreen forest is broadleaf
    ],
)
def test_first_listed_genus_decides_a_tropical_evergreen_forest(species, ebf):
    got = is_evergreen_broadleaf(
        ecosystem_type=pd.Series(["Forest"]),
        biome=pd.Series(["Tropical"]),
        leaf_habit=pd.Series(["Evergreen"]),
        species=pd.Series([species], dtype=object),
    )
    assert got.dtype == np.bool_ and got.tolist() == [ebf]


def test_veg_bins_are_int64_codes():
    raw = _frame([{"Ecosystem_type": t} for t in ("Forest", "Savanna", "Cropland", "Bog", None)])
    raw["Biome"] = ["Tropical", None, None, None, None]
    raw["Leaf_habit"] = ["Evergreen", None, None, None, None]
    bins = srdb_veg_bins(read_srdb(raw))
    assert bins.dtype == np.int64 and bins.tolist() == [1, 4, 5, 0, 0]
