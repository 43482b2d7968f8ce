"""SRDB reading, selection, QC accounting and vegetation bins."""

from __future__ import annotations

import gzip

import numpy as np
import pandas as pd
import pytest

from srgpu.data.observations import (
    QC_REASONS,
    REQUIRED_COLUMNS,
    load_observations,
    read_srdb,
    select_observations,
    srdb_veg_bins,
)
from srgpu.errors import InputError

NAN = np.nan


def _frame(rows: list[dict]) -> pd.DataFrame:
    base = {
        "Record_number": 0,
        "Study_number": 7,
        "Latitude": 45.0,
        "Longitude": 10.0,
        "Study_midyear": 2000.5,
        "Manipulation": "None",
        "Rs_annual": NAN,
        "Rh_annual": NAN,
        "Ecosystem_type": "Forest",
        "Biome": "Temperate",
        "Leaf_habit": "Deciduous",
        "Quality_flag": NAN,
    }
    return pd.DataFrame([{**base, "Record_number": i + 1, **r} for i, r in enumerate(rows)])


BADC = "invalid_coordinates"

# one record per line: (overrides, record fate, SR slot, HR slot)
CASES = [
    ({"Rs_annual": 800.0, "Rh_annual": 400.0}, "kept", "kept", "kept"),
    ({"Rs_annual": 800.0}, "kept", "kept", "not_reported"),
    ({"Rh_annual": 300.0}, "kept", "not_reported", "kept"),
    ({"Rs_annual": 500.0, "Rh_annual": 500.0}, "rh_ge_rs", "rh_ge_rs", "rh_ge_rs"),
    ({"Rs_annual": 500.0, "Manipulation": "Warmed"}, "manipulated", "manipulated", "not_reported"),
    ({"Rs_annual": 500.0, "Manipulation": " control "}, "kept", "kept", "not_reported"),
    ({"Rs_annual": 500.0, "Manipulation": NAN}, "kept", "kept", "not_reported"),
    ({"Rs_annual": 500.0, "Latitude": NAN}, BADC, BADC, "not_reported"),
    ({"Rs_annual": 500.0, "Longitude": 200.0}, BADC, BADC, "not_reported"),
    ({"Rs_annual": 500.0, "Study_midyear": NAN}, "missing_year", "missing_year", "not_reported"),
    ({"Rs_annual": -3.0, "Rh_annual": 100.0}, "nonpositive", "nonpositive", "rh_ge_rs"),
    ({"Rs_annual": 0.0}, "nonpositive", "nonpositive", "not_reported"),
    ({"Rs_annual": 600.0, "Rh_annual": 0.0}, "kept", "kept", "nonpositive"),
    ({}, "not_reported", "not_reported", "not_reported"),
]  # fmt: skip


def test_selection_statuses_and_accounting():
    raw = _frame([c[0] for c in CASES])
    obs = select_observations(raw, source="hand-made")
    qc = obs.qc
    for col, idx in (("records", 1), ("SR", 2), ("HR", 3)):
        expected = pd.Series([c[idx] for c in CASES]).value_counts()
        got = qc.to_frame()[col].drop("total")
        assert got[got > 0].sort_index().to_dict() == expected.sort_index().to_dict(), col
    frame = qc.to_frame()
    assert (frame.loc["total", ["records", "SR", "HR"]] == len(CASES)).all()
    assert obs.n_sr == qc.n_sr == 5
    assert obs.n_hr == qc.n_hr == 2
    sr_ids = obs.table.loc[obs.table["flux"] == "SR", "record_id"].tolist()
    assert sr_ids == [1.0, 2.0, 6.0, 7.0, 13.0]
    assert obs.table.loc[obs.table["flux"] == "HR", "value"].tolist() == [400.0, 300.0]


def test_table_columns_and_dtypes():
    obs = select_observations(_frame([{"Rs_annual": 800.0, "Rh_annual": 400.0}]))
    t = obs.table
    assert list(t.columns) == [
        "record_id", "study", "site_id", "lat", "lon", "year", "flux", "value",
        "ecosystem_type", "biome", "leaf_habit", "ecosystem_state", "species",
        "quality_flag", "veg_bin",
    ]  # fmt: skip
    assert t["value"].dtype == np.float64 and t["year"].dtype == np.float64
    assert t["veg_bin"].dtype == np.int64
    assert t["flux"].tolist() == ["SR", "HR"]
    assert t.attrs["units"]["value"] == "g C m-2 yr-1"


def test_qc_report_renders():
    qc = select_observations(_frame([c[0] for c in CASES])).qc
    d = qc.to_dict()
    assert d["n_records"] == len(CASES)
    assert sum(v["records"] for v in d["reasons"].values()) == len(CASES)
    md = qc.to_markdown()
    assert "| rh_ge_rs | 1 | 1 | 2 |" in md
    assert "outside_years" not in md  # unset option left out
    assert "outside_years" in qc.to_markdown(skip_zero_options=False)
    assert qc.to_rich().row_count == len(QC_REASONS) - 4 + 1


def test_options():
    rows = [
        {"Rs_annual": 500.0, "Study_midyear": 1981.5},
        {"Rs_annual": 500.0, "Study_midyear": 1982.0},
        {"Rs_annual": 500.0, "Study_midyear": 2012.5},
        {"Rs_annual": 500.0, "Study_midyear": 2013.0},
        {"Rs_annual": 500.0, "Quality_flag": "Q1"},
        {"Rs_annual": 500.0, "Quality_flag": "Q03, Q11"},
        {"Rs_annual": 500.0, "Quality_flag": "Q10"},
    ]
    raw = _frame(rows)
    assert select_observations(raw, years=(1982, 2012)).qc.sr["outside_years"] == 2
    qc = select_observations(raw, exclude_quality_flags=["Q01", "Q11"]).qc
    assert qc.sr["quality_flag"] == 2 and qc.criteria["exclude_quality_flags"] == ["Q01", "Q11"]
    raw["Ecosystem_state"] = ["Natural", "natural ", "Managed", None, "Unmanaged", "x", "x"]
    qc = select_observations(raw, ecosystem_states=["Natural", "Unmanaged"]).qc
    assert qc.sr["kept"] == 3 and qc.sr["ecosystem_state"] == 4
    with pytest.raises(InputError, match="Duplicate_record"):
        select_observations(raw, exclude_duplicates=True)
    raw["Duplicate_record"] = [None, "12", None, None, None, None, None]
    assert select_observations(raw, exclude_duplicates=True).qc.records["duplicate"] == 1


BIN_CASES = [
    # Ecosystem_type, Biome, Leaf_habit, Species, bin
    ("Forest", "Tropical", "Evergreen", "Mix", 1),
    ("Forest ", "Subtropical", "Evergreen", "Castanopsis kawakamii", 1),
    ("Forest", "Subtropical", "Evergreen", "Pinus massoniana; Schima superba", 2),
    ("forest", "Subtropical", "Evergreen", "Cunninghamia lanceolata", 2),
    ("Forest", "Temperate", "Evergreen", "Quercus ilex", 2),
    ("Forest", "Tropical", "Deciduous", None, 2),
    ("Plantation", "Tropical", "Evergreen", "Hevea brasiliensis", 1),
    ("Plantation", "Temperate", "Deciduous", "Populus", 2),
    ("Shrubland", "Mediterranean", "Evergreen", None, 3),
    (" Desert", "Temperate", None, None, 3),
    ("Tundra", "Arctic", "Deciduous", None, 3),
    ("Savanna", "Tropical", "Mixed", None, 4),
    ("Grassland", "Temperate", None, None, 4),
    ("Steppe", None, None, None, 4),
    ("Meadow", None, None, None, 4),
    ("Pasture", None, None, None, 4),
    ("Agriculture", "Tropical", "Evergreen", None, 5),
    ("Orchard", None, None, None, 5),
    ("Wetland", "Boreal", "Evergreen", None, 0),
    ("Urban lawn", None, None, None, 0),
    ("Bare", None, None, None, 0),
    (None, "Tropical", "Evergreen", None, 0),
    ("Something new", None, None, None, 0),
]


def test_veg_bins_table():
    raw = pd.DataFrame(
        [dict(Ecosystem_type=e, Biome=b, Leaf_habit=lh, Species=s) for e, b, lh, s, _ in BIN_CASES]
    )
    for c in REQUIRED_COLUMNS:
        if c not in raw:
            raw[c] = 1.0 if c != "Manipulation" else "None"
    bins = srdb_veg_bins(read_srdb(raw))
    assert bins.tolist() == [c[-1] for c in BIN_CASES]


# -- reading and its errors -------------------------------------------------------------------


def _write(tmp_path, text: str, name="srdb.csv", gz=False):
    path = tmp_path / name
    data = text.encode()
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


HEADER = ",".join(REQUIRED_COLUMNS)
GOOD = (
    HEADER + "\n1,7,45.5,10.0,2001.5,None,800,400,Forest\n2,7,45.5,10.0,2002.5,None,,NA,Grassland\n"
)


@pytest.mark.parametrize("gz", [False, True])
def test_read_plain_and_gzip(tmp_path, gz):
    raw = read_srdb(_write(tmp_path, GOOD, name="x.dat", gz=gz))
    assert raw["Rs_annual"].tolist()[0] == 800.0 and np.isnan(raw["Rh_annual"].iloc[1])
    assert raw["Manipulation"].tolist() == ["None", "None"]
    assert raw["Biome"].isna().all()  # optional column absent -> missing
    obs = load_observations(_write(tmp_path, GOOD, gz=gz))
    assert (obs.n_sr, obs.n_hr) == (1, 1)


@pytest.mark.parametrize(
    ("content", "match"),
    [
        ("", "empty file"),
        ("   \n\n", "empty file"),
        (HEADER.replace(",Rh_annual", "") + "\n", "'Rh_annual'.*required column missing"),
        (HEADER + "\n", "no records"),
        (GOOD + "3,7,45.5,10.0,2003.5,None,12x,,Forest\n", r"'Rs_annual'.*line 4.*'12x'"),
        (GOOD.replace("45.5,10.0,2002.5", "45.5,ten,2002.5"), r"'Longitude'.*line 3.*'ten'"),
        ('{"json": [1, 2]}', "'Record_number'.*required column missing"),
        (HEADER + '\n1,"unclosed\n', "CSV|'Record_number'|non-numeric"),
    ],
)
def test_read_errors(tmp_path, content, match):
    path = _write(tmp_path, content)
    with pytest.raises(InputError, match=match) as err:
        read_srdb(path)
    assert str(path) in str(err.value)


def test_read_binary_and_missing(tmp_path):
    path = tmp_path / "bin.csv"
    path.write_bytes(bytes(range(256)) * 4)
    with pytest.raises(InputError, match="not a text"):
        read_srdb(path)
    with pytest.raises(InputError, match="cannot read"):
        read_srdb(tmp_path / "absent.csv")
    bad_gz = tmp_path / "bad.csv.gz"
    bad_gz.write_bytes(b"\x1f\x8b" + b"junk" * 10)
    with pytest.raises(InputError, match="gzip"):
        read_srdb(bad_gz)


# -- the real SRDB ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def v5_raw(srdb_v5_path):
    return read_srdb(srdb_v5_path)


def test_real_v5_counts(v5_raw):
    assert len(v5_raw) == 10366
    obs = select_observations(v5_raw, source="v5.0")
    assert (obs.n_sr, obs.n_hr) == (3761, 750)
    qc = obs.qc.to_frame()
    assert (qc.loc["total", ["records", "SR", "HR"]] == 10366).all()
    assert qc.loc["manipulated"].tolist()[:3] == [1874, 1804, 278]
    assert qc.loc["rh_ge_rs"].tolist()[:3] == [16, 16, 16]
    assert qc.loc["kept", "records"] == 3822
    t = obs.table
    assert t["lat"].between(-90, 90).all() and (t["value"] > 0).all()
    assert t.groupby("flux")["veg_bin"].value_counts().loc["SR"].sort_index().tolist() == [
        180, 431, 2168, 264, 446, 272,
    ]  # fmt: skip


def test_real_v5_options(v5_raw):
    obs = select_observations(v5_raw, years=(1982, 2012))
    assert (obs.n_sr, obs.n_hr) == (3303, 630)
    obs = select_observations(v5_raw, exclude_quality_flags=[f"Q{i}" for i in range(10, 17)])
    assert (obs.n_sr, obs.n_hr) == (3460, 725)


@pytest.mark.parametrize(
    ("record", "veg_bin"),
    [
        (2, 2),  # boreal deciduous forest, Manitoba
        (41, 5),  # agriculture, Triticum aestivum
        (78, 1),  # tropical evergreen forest
        (102, 0),  # wetland
        (578, 2),  # tropical forest, leaf habit Mixed (Pinus massoniana first)
        (4045, 3),  # arctic tundra, Svalbard
        (7401, 1),  # subtropical evergreen Eucalyptus globulus plantation
        (7331, 1),  # "Forest " (trailing space), tropical evergreen, Manaus
        (8413, 3),  # Ecosystem_type " Desert" (leading space)
    ],
)
def test_real_v5_bins(v5_raw, record, veg_bin):
    bins = srdb_veg_bins(v5_raw)
    assert bins[v5_raw["Record_number"].to_numpy() == record].tolist() == [veg_bin]


def test_real_2022_counts(srdb_v5_path):
    path = srdb_v5_path.with_name("srdb-data_20221009.csv.gz")
    if not path.exists():
        pytest.skip("2022 SRDB release absent")
    obs = load_observations(path)
    assert obs.qc.n_records == 12272
    assert (obs.n_sr, obs.n_hr) == (4179, 878)
