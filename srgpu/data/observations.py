"""SRDB observations: read the data table, select annual field SR and HR, count what is dropped.

Lu et al. 2021 (section 2.1) take annual soil respiration (``Rs_annual``) and heterotrophic
respiration (``Rh_annual``) from SRDB v5.0 under natural conditions (no experimental treatment),
and drop a record whose HR is not smaller than its SR. :func:`load_observations` reads an SRDB
data CSV (plain or gzip) and returns a tidy table with one row per (record, flux) plus a
:class:`QCReport` that accounts for every input record.

Accounting (see :class:`QCReport`): every input record has two *slots*, one per flux. Each slot
gets exactly one status, the first that applies in :data:`QC_REASONS` order, so the ``SR`` and
``HR`` columns of the report each sum to the number of input records and the ``kept`` counts are
the rows of the tidy table. The ``records`` column gives each record one fate: ``kept`` when at
least one of its slots is kept, otherwise the first reason of its reported slots (or
``not_reported`` when it reports neither flux).
"""

from __future__ import annotations

import gzip
import io
import re
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from srgpu.data.vegetation import VEG_BINS
from srgpu.errors import InputError

# -- columns -------------------------------------------------------------------------------------

REQUIRED_COLUMNS: tuple[str, ...] = (
    "Record_number",
    "Study_number",
    "Latitude",
    "Longitude",
    "Study_midyear",
    "Manipulation",
    "Rs_annual",
    "Rh_annual",
    "Ecosystem_type",
)
"""Columns the default selection and the vegetation bins cannot do without."""

OPTIONAL_COLUMNS: tuple[str, ...] = (
    "Site_ID",
    "Biome",
    "Leaf_habit",
    "Ecosystem_state",
    "Species",
    "Quality_flag",
    "Duplicate_record",
)
"""Columns read when present (missing ones become empty). ``Biome``, ``Leaf_habit`` and
``Species`` refine the evergreen-broadleaf bin; the last three feed the optional stricter
selections, which fail with :class:`InputError` if their column is absent."""

NUMERIC_COLUMNS: tuple[str, ...] = (
    "Record_number",
    "Study_number",
    "Latitude",
    "Longitude",
    "Study_midyear",
    "Rs_annual",
    "Rh_annual",
)

_NA_TOKENS = frozenset({"", "na", "nan", "n/a", "null", "none", "-"})
"""Spellings of a missing value accepted in numeric columns (compared after strip + lower)."""

FLUX_COLUMNS: dict[str, str] = {"SR": "Rs_annual", "HR": "Rh_annual"}
"""Flux name -> SRDB column (g C m-2 yr-1)."""

MAX_ANNUAL_FLUX = 10_000.0
"""Largest plausible annual flux (g C m-2 yr-1). A value above it in a record the selection
would otherwise use (kept, or dropped only by the Rh >= Rs test) is an :class:`InputError`
(most likely a unit error: g CO2, mg C), not a silent QC drop. The largest selected SR of SRDB
v5.0 and of the 2022 release is 8136; their 2 and 7 values above 10 000 (up to 40 997) are all
in records the selection drops for another reason (treatments)."""

YEAR_RANGE: tuple[float, float] = (1800.0, 2100.0)
"""Plausible ``Study_midyear`` values; any other year is an :class:`InputError`."""

UNTREATED_MANIPULATIONS: frozenset[str] = frozenset({"none", "control", "ambient"})
"""``Manipulation`` values (stripped, lower case) that count as untreated. A missing value also
counts as untreated (``None`` is SRDB's default). SRDB v5.0 only uses ``None`` (6579 records);
every other value (``Fertilized``, ``Warmed``, ``Grazing``, ``Managed``...) is a treatment."""

# -- QC reasons ----------------------------------------------------------------------------------

QC_REASONS: dict[str, str] = {
    "not_reported": "no value for this flux (not a loss)",
    "manipulated": "experimental manipulation/treatment (Manipulation is not None/Control)",
    "invalid_coordinates": "Latitude/Longitude missing or outside [-90, 90] x [-180, 180]",
    "missing_year": "Study_midyear missing",
    "outside_years": "Study_midyear outside the `years` option",
    "quality_flag": "Quality_flag holds one of the `exclude_quality_flags` option",
    "duplicate": "Duplicate_record set (option `exclude_duplicates`)",
    "ecosystem_state": "Ecosystem_state not in the `ecosystem_states` option",
    "nonpositive": "reported value is not a finite positive number",
    "rh_ge_rs": "Rh_annual >= Rs_annual where both are reported (whole record dropped)",
    "kept": "row of the tidy table",
}
"""Reasons in the order they are tested. Option reasons stay at zero unless the option is set."""

# -- vegetation bins -----------------------------------------------------------------------------

ECOSYSTEM_TYPE_TO_BIN: dict[str, int] = {
    "forest": 2,
    "plantation": 2,
    "shrubland": 3,
    "tundra": 3,
    "desert": 3,
    "savanna": 4,
    "grassland": 4,
    "steppe": 4,
    "meadow": 4,
    "pasture": 4,
    "agriculture": 5,
    "cropland": 5,
    "orchard": 5,
    # no bin: the site table fills these from the land-cover map
    "wetland": 0,
    "peatland": 0,
    "bog": 0,
    "swamp": 0,
    "marsh": 0,
    "waterlogged depression": 0,
    "salt pan": 0,
    "bare": 0,
    "urban": 0,
    "urban lawn": 0,
    "turfgrass": 0,
    "mixed": 0,
}
"""``Ecosystem_type`` (stripped, lower case) -> vegetation bin
(:data:`srgpu.data.vegetation.VEG_BINS`).
Any other value, or a missing one, gives bin 0. Forest and plantation records go to bin 1
(evergreen broadleaf forest) instead of 2 when :func:`is_evergreen_broadleaf` holds."""

EBF_BIOMES: frozenset[str] = frozenset({"tropical", "subtropical"})
"""Biomes in which an evergreen forest counts as broadleaf (unless its species is a conifer)."""

CONIFER_GENERA: frozenset[str] = frozenset(
    {
        "abies",
        "agathis",
        "araucaria",
        "cedrus",
        "chamaecyparis",
        "cryptomeria",
        "cunninghamia",
        "cupressus",
        "fitzroya",
        "juniperus",
        "larix",
        "picea",
        "pinus",
        "platycladus",
        "podocarpus",
        "pseudotsuga",
        "sequoia",
        "taxodium",
        "thuja",
        "tsuga",
    }
)
"""Genera whose evergreen forests are needleleaf: a tropical/subtropical evergreen forest whose
first listed species is one of these (e.g. *Pinus massoniana*, *Cunninghamia lanceolata*) is
bin 2, as a land-cover map would class it (evergreen needleleaf)."""


# -- reading -------------------------------------------------------------------------------------


def read_srdb(source: str | Path | pd.DataFrame) -> pd.DataFrame:
    """Read and validate an SRDB data table (``srdb-data.csv``, plain or gzip).

    Returns a DataFrame with the :data:`REQUIRED_COLUMNS` and the :data:`OPTIONAL_COLUMNS`
    (all-missing when absent from the file), one row per input record, in file order. Numeric
    columns are float64; text columns are stripped strings (missing = NA); ``Manipulation``
    keeps SRDB's literal ``None``.

    Raises :class:`InputError` for an unreadable, empty or non-CSV file, a row with more fields
    than the header, a missing required column (naming it), a non-numeric or infinite value in
    a numeric column (naming the file line); for a file also a duplicated ``Record_number`` and
    a ``Study_midyear`` outside :data:`YEAR_RANGE`.
    """
    if isinstance(source, pd.DataFrame):
        return _validate(source, file="<DataFrame>", line_offset=0)
    path = Path(source)
    raw = _read_csv(path)
    table = _validate(raw, file=path, line_offset=2)
    _check_records(table, raw=raw, file=path, line_offset=2)
    return table


def _read_csv(path: Path) -> pd.DataFrame:
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except OSError as exc:
        raise InputError(f"cannot read SRDB file: {exc.strerror or exc}", file=path) from None
    if data[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError) as exc:
            raise InputError(f"corrupt gzip file: {exc}", file=path) from None
    if not data.strip():
        raise InputError("empty file", file=path, expected="an SRDB data CSV")
    if b"\x00" in data:
        raise InputError("not a text (CSV) file", file=path, expected="an SRDB data CSV")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        try:
            text = data.decode("latin-1") if b"\x00" not in data else None
        except UnicodeDecodeError:  # pragma: no cover - latin-1 decodes any byte
            text = None
        if text is None:
            raise InputError(
                "not a text (CSV) file", file=path, expected="an SRDB data CSV"
            ) from None
    wanted = set(REQUIRED_COLUMNS) | set(OPTIONAL_COLUMNS)
    try:
        # every column is parsed (no usecols) so that a row with more fields than the
        # header is an error naming its line, not silently cut
        frame = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)
        frame = frame.rename(columns=lambda c: str(c).strip())
        return frame[[c for c in frame.columns if c in wanted]]
    except pd.errors.EmptyDataError:
        raise InputError("empty file", file=path, expected="an SRDB data CSV") from None
    except (pd.errors.ParserError, ValueError) as exc:
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(f"not a valid CSV file: {msg}", file=path) from None


def _validate(frame: pd.DataFrame, *, file: Any, line_offset: int) -> pd.DataFrame:
    frame = frame.rename(columns=lambda c: str(c).strip())
    for name in REQUIRED_COLUMNS:
        if name not in frame.columns:
            raise InputError(
                "required column missing", file=file, field=name, expected="an SRDB data table"
            )
    if len(frame) == 0:
        raise InputError("no records", file=file, expected="an SRDB data table with rows")
    out = {}
    for name in REQUIRED_COLUMNS + OPTIONAL_COLUMNS:
        if name not in frame.columns:
            out[name] = pd.Series(pd.NA, index=frame.index, dtype="string")
        elif name in NUMERIC_COLUMNS:
            out[name] = _to_float(frame[name], file=file, field=name, line_offset=line_offset)
        else:
            out[name] = _to_text(frame[name])
    return pd.DataFrame(out).reset_index(drop=True)


def _where(pos: int, line_offset: int) -> str:
    return f"line {pos + line_offset}" if line_offset else f"row {pos}"


def _check_records(table: pd.DataFrame, *, raw: pd.DataFrame, file: Any, line_offset: int) -> None:
    """Record-level checks that make the whole table unusable (see docs/reliability.md):
    a duplicated ``Record_number`` and a ``Study_midyear`` outside :data:`YEAR_RANGE`."""
    ids = table["Record_number"]
    dup = ids.notna() & ids.duplicated(keep=False)
    if dup.any():
        rows = np.flatnonzero(dup.to_numpy())
        first = rows[ids.iloc[rows] == ids.iloc[rows[0]]]
        raise InputError(
            f"duplicated record at {_where(int(first[0]), line_offset)} and "
            f"{_where(int(first[1]), line_offset)}",
            file=file,
            field="Record_number",
            value=str(raw["Record_number"].iloc[int(first[1])]).strip(),
            expected="one row per record (unique Record_number)",
        )
    year = table["Study_midyear"]
    lo, hi = YEAR_RANGE
    bad = year.notna() & ~year.between(lo, hi)
    if bad.any():
        pos = int(np.flatnonzero(bad.to_numpy())[0])
        raise InputError(
            f"implausible year at {_where(pos, line_offset)}",
            file=file,
            field="Study_midyear",
            value=str(raw["Study_midyear"].iloc[pos]).strip(),
            expected=f"a year in [{lo:.0f}, {hi:.0f}] or an empty cell",
        )


def _to_float(col: pd.Series, *, file: Any, field: str, line_offset: int) -> pd.Series:
    if pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col):
        values = col.astype("float64")
    else:
        text = col.astype("string").str.strip()
        missing = text.isna() | text.str.lower().isin(_NA_TOKENS)
        values = pd.to_numeric(text.where(~missing), errors="coerce").astype("float64")
        bad = values.isna() & ~missing
        if bad.any():
            pos = int(np.flatnonzero(bad.to_numpy())[0])
            raise InputError(
                f"non-numeric value at {_where(pos, line_offset)}",
                file=file,
                field=field,
                value=str(col.iloc[pos]),
                expected="a number or an empty cell",
            )
    infinite = np.isinf(values.to_numpy())
    if infinite.any():  # "inf" parses as a number but is no measurement
        pos = int(np.flatnonzero(infinite)[0])
        raise InputError(
            f"infinite value at {_where(pos, line_offset)}",
            file=file,
            field=field,
            value=str(col.iloc[pos]).strip(),
            expected="a finite number or an empty cell",
        )
    return values


def _to_text(col: pd.Series) -> pd.Series:
    text = col.astype("string").str.strip()
    return text.mask(text == "")


def _norm(col: pd.Series) -> pd.Series:
    """Stripped, lower-case, single-spaced text (missing stays NA)."""
    return col.astype("string").str.strip().str.lower().str.replace(r"\s+", " ", regex=True)


# -- vegetation bins -----------------------------------------------------------------------------


def is_evergreen_broadleaf(
    *, ecosystem_type: pd.Series, biome: pd.Series, leaf_habit: pd.Series, species: pd.Series
) -> np.ndarray:
    """Records counted as evergreen broadleaf forest (bin 1).

    Forest or plantation, ``Leaf_habit`` Evergreen, ``Biome`` Tropical or Subtropical, and a
    first-listed species whose genus is not in :data:`CONIFER_GENERA`. Temperate, Mediterranean
    and boreal evergreen forests stay in bin 2: in SRDB they are mostly needleleaf (Picea, Pinus,
    Pseudotsuga, Tsuga).
    """
    genus = _norm(species).str.split(r"[;,]", regex=True).str[0].str.strip().str.split(" ").str[0]
    return (
        _norm(ecosystem_type).isin(["forest", "plantation"])
        & (_norm(leaf_habit) == "evergreen")
        & _norm(biome).isin(EBF_BIOMES)
        & ~genus.isin(CONIFER_GENERA).fillna(False)
    ).to_numpy(dtype=bool, na_value=False)


def srdb_veg_bins(frame: pd.DataFrame) -> np.ndarray:
    """Vegetation bin (0..5) of each record of an SRDB table (as returned by :func:`read_srdb`).

    :data:`ECOSYSTEM_TYPE_TO_BIN` on the stripped, lower-case ``Ecosystem_type``, then bin 1 for
    evergreen broadleaf forests (:func:`is_evergreen_broadleaf`). 0 = no bin from SRDB fields.
    """
    bins = (
        _norm(frame["Ecosystem_type"])
        .map(ECOSYSTEM_TYPE_TO_BIN)
        .fillna(0)
        .to_numpy(dtype=np.int64, na_value=0)
    )
    ebf = is_evergreen_broadleaf(
        ecosystem_type=frame["Ecosystem_type"],
        biome=frame["Biome"],
        leaf_habit=frame["Leaf_habit"],
        species=frame["Species"],
    )
    bins = np.where(ebf, 1, bins).astype(np.int64)
    assert set(np.unique(bins).tolist()) <= {0, *VEG_BINS}
    return bins


# -- QC report -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class QCReport:
    """Counts of what the selection kept and dropped, by reason.

    ``records[r]``: input records whose fate is reason *r*; ``sr[r]``/``hr[r]``: record slots of
    that flux with status *r*. Each of the three columns sums to ``n_records``; ``sr["kept"]`` and
    ``hr["kept"]`` are the SR and HR rows of the tidy table.
    """

    source: str
    n_records: int
    records: dict[str, int]
    sr: dict[str, int]
    hr: dict[str, int]
    criteria: dict[str, Any] = field(default_factory=dict)

    @property
    def n_sr(self) -> int:
        return self.sr["kept"]

    @property
    def n_hr(self) -> int:
        return self.hr["kept"]

    def to_frame(self) -> pd.DataFrame:
        """One row per reason (in test order): ``records``, ``SR``, ``HR``, ``description``;
        plus a ``total`` row."""
        frame = pd.DataFrame(
            {
                "records": pd.Series(self.records),
                "SR": pd.Series(self.sr),
                "HR": pd.Series(self.hr),
            }
        ).reindex(list(QC_REASONS))
        frame = frame.astype("int64")
        frame["description"] = pd.Series(QC_REASONS)
        frame.loc["total"] = [*frame[["records", "SR", "HR"]].sum().tolist(), "input records"]
        frame.index.name = "reason"
        return frame

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form: source, n_records, criteria and per-reason counts."""
        return {
            "source": self.source,
            "n_records": self.n_records,
            "criteria": dict(self.criteria),
            "reasons": {
                r: {"records": self.records[r], "SR": self.sr[r], "HR": self.hr[r]}
                for r in QC_REASONS
            },
        }

    def _rows(self, *, skip_zero_options: bool) -> Iterable[tuple[str, int, int, int, str]]:
        optional = {"outside_years", "quality_flag", "duplicate", "ecosystem_state"}
        for r, text in QC_REASONS.items():
            counts = (self.records[r], self.sr[r], self.hr[r])
            if skip_zero_options and r in optional and not any(counts):
                continue
            yield (r, *counts, text)

    def to_markdown(self, *, skip_zero_options: bool = True) -> str:
        """A markdown table (reasons of unset options left out by default)."""
        lines = [
            "| reason | records | SR | HR | meaning |",
            "|---|---:|---:|---:|---|",
        ]
        for r, n, s, h, text in self._rows(skip_zero_options=skip_zero_options):
            lines.append(f"| {r} | {n} | {s} | {h} | {text} |")
        lines.append(f"| **total** | {self.n_records} | {self.n_records} | {self.n_records} | |")
        return "\n".join(lines)

    def to_rich(self, *, skip_zero_options: bool = True):
        """A :class:`rich.table.Table` of the same content as :meth:`to_markdown`."""
        from rich.table import Table

        table = Table(title=f"SRDB selection: {self.source}")
        table.add_column("reason")
        for name in ("records", "SR", "HR"):
            table.add_column(name, justify="right")
        table.add_column("meaning")
        for r, n, s, h, text in self._rows(skip_zero_options=skip_zero_options):
            table.add_row(r, str(n), str(s), str(h), text)
        total = str(self.n_records)
        table.add_row("total", total, total, total, "")
        return table


@dataclass(frozen=True)
class Observations:
    """The tidy observation table and the QC report of its selection.

    ``table`` columns: ``record_id`` (float64, SRDB ``Record_number``; v5.0 has 3905.1/3905.2),
    ``study`` (Int64), ``site_id``, ``lat``, ``lon``, ``year`` (float64, ``Study_midyear``),
    ``flux`` ("SR"/"HR"), ``value`` (float64, g C m-2 yr-1), ``ecosystem_type``, ``biome``,
    ``leaf_habit``, ``ecosystem_state``, ``species``, ``quality_flag`` (stripped SRDB text),
    ``veg_bin`` (int64, 0..5; 0 = no bin from SRDB fields). SR rows first, then HR, each in
    file order.
    """

    table: pd.DataFrame
    qc: QCReport

    @property
    def n_sr(self) -> int:
        return int((self.table["flux"] == "SR").sum())

    @property
    def n_hr(self) -> int:
        return int((self.table["flux"] == "HR").sum())


# -- selection -----------------------------------------------------------------------------------

_TEXT_OUT = {
    "Site_ID": "site_id",
    "Ecosystem_type": "ecosystem_type",
    "Biome": "biome",
    "Leaf_habit": "leaf_habit",
    "Ecosystem_state": "ecosystem_state",
    "Species": "species",
    "Quality_flag": "quality_flag",
}


def _flag_codes(col: pd.Series) -> pd.Series:
    """Quality flags of each record as a set of canonical codes ("Q1" -> "Q01", "Q01, Q11")."""

    def parse(text: Any) -> frozenset[str]:
        if pd.isna(text):
            return frozenset()
        return frozenset(_canon_flag(t) for t in re.split(r"[,;\s]+", str(text)) if t)

    return col.map(parse)


def _canon_flag(code: str) -> str:
    m = re.fullmatch(r"[Qq]0*(\d+)", code.strip())
    if not m:
        return code.strip().upper()
    n = int(m.group(1))
    return "Q0" if n == 0 else f"Q{n:02d}"


def _require(raw: pd.DataFrame, column: str, *, source: str, option: str) -> None:
    if raw[column].isna().all():
        raise InputError(
            f"option {option} needs this column, which is absent or empty",
            file=source,
            field=column,
        )


def select_observations(
    raw: pd.DataFrame,
    *,
    source: str = "<DataFrame>",
    years: tuple[float, float] | None = None,
    exclude_quality_flags: Collection[str] = (),
    exclude_duplicates: bool = False,
    ecosystem_states: Collection[str] | None = None,
    line_offset: int = 0,
) -> Observations:
    """Select annual field SR and HR under natural conditions (Lu et al. 2021, section 2.1).

    Default (the paper's stated criteria): untreated records (:data:`UNTREATED_MANIPULATIONS`),
    valid coordinates, a ``Study_midyear``, a finite positive flux, and not ``Rh_annual >=
    Rs_annual`` where both are reported (the whole record goes). One record gives an SR row, an HR
    row, or both.

    Stricter, documented options (all off by default): ``years=(first, last)`` keeps
    ``first <= Study_midyear < last + 1`` (e.g. ``(1982, 2012)``, the paper's driver period);
    ``exclude_quality_flags`` drops records carrying any of these ``Quality_flag`` codes
    (``"Q1"`` and ``"Q01"`` are the same code); ``exclude_duplicates`` drops records with
    ``Duplicate_record`` set; ``ecosystem_states`` keeps only these ``Ecosystem_state`` values
    (case-insensitive, e.g. ``("Natural", "Unmanaged")``).

    A selected value above :data:`MAX_ANNUAL_FLUX` is an :class:`InputError`; ``line_offset``
    (2 for a CSV file: header + 1-based) turns row positions into file lines in its message.
    """
    raw = _validate(raw, file=source, line_offset=line_offset)
    n = len(raw)
    criteria: dict[str, Any] = {"untreated_manipulation": sorted(UNTREATED_MANIPULATIONS)}

    manip = _norm(raw["Manipulation"])
    # record-level drop masks, in QC_REASONS order
    record_drops: dict[str, np.ndarray] = {
        "manipulated": (manip.notna() & ~manip.isin(UNTREATED_MANIPULATIONS)).to_numpy(
            dtype=bool, na_value=False
        ),
        "invalid_coordinates": ~(
            raw["Latitude"].between(-90, 90) & raw["Longitude"].between(-180, 180)
        ).to_numpy(),
        "missing_year": raw["Study_midyear"].isna().to_numpy(),
    }
    zeros = np.zeros(n, dtype=bool)
    if years is not None:
        first, last = (float(y) for y in years)
        if not first <= last:
            raise InputError("years must be (first, last) with first <= last", value=years)
        year = raw["Study_midyear"]
        record_drops["outside_years"] = (
            year.notna() & ~((year >= first) & (year < last + 1))
        ).to_numpy()
        criteria["years"] = [first, last]
    else:
        record_drops["outside_years"] = zeros
    if exclude_quality_flags:
        _require(raw, "Quality_flag", source=source, option="exclude_quality_flags")
        excluded = frozenset(_canon_flag(c) for c in exclude_quality_flags)
        codes = _flag_codes(raw["Quality_flag"])
        record_drops["quality_flag"] = codes.map(lambda s: bool(s & excluded)).to_numpy(bool)
        criteria["exclude_quality_flags"] = sorted(excluded)
    else:
        record_drops["quality_flag"] = zeros
    if exclude_duplicates:
        _require(raw, "Duplicate_record", source=source, option="exclude_duplicates")
        record_drops["duplicate"] = raw["Duplicate_record"].notna().to_numpy()
        criteria["exclude_duplicates"] = True
    else:
        record_drops["duplicate"] = zeros
    if ecosystem_states is not None:
        _require(raw, "Ecosystem_state", source=source, option="ecosystem_states")
        states = {s.strip().lower() for s in ecosystem_states}
        ok = _norm(raw["Ecosystem_state"]).isin(states).to_numpy(dtype=bool, na_value=False)
        record_drops["ecosystem_state"] = ~ok
        criteria["ecosystem_states"] = sorted(states)
    else:
        record_drops["ecosystem_state"] = zeros

    rs = raw["Rs_annual"].to_numpy()
    rh = raw["Rh_annual"].to_numpy()
    inconsistent = np.isfinite(rs) & np.isfinite(rh) & (rh >= rs)

    # slot status per flux
    status: dict[str, np.ndarray] = {}
    for flux, values in (("SR", rs), ("HR", rh)):
        slot = np.full(n, "", dtype=object)
        reported = ~np.isnan(values)
        slot[~reported] = "not_reported"
        for reason, mask in record_drops.items():
            slot[(slot == "") & mask] = reason
        slot[(slot == "") & ~(np.isfinite(values) & (values > 0))] = "nonpositive"
        slot[(slot == "") & inconsistent] = "rh_ge_rs"
        slot[slot == ""] = "kept"
        status[flux] = slot
        absurd = np.isin(slot, ["kept", "rh_ge_rs"]) & (values > MAX_ANNUAL_FLUX)
        if absurd.any():
            pos = int(np.flatnonzero(absurd)[0])
            raise InputError(
                f"implausible annual flux at {_where(pos, line_offset)} (record "
                f"{raw['Record_number'].iloc[pos]:g}); check the units (g C m-2 yr-1, not "
                "g CO2 or mg C) or remove the record",
                file=source,
                field=FLUX_COLUMNS[flux],
                value=f"{values[pos]:g}",
                expected=f"at most {MAX_ANNUAL_FLUX:g} g C m-2 yr-1",
            )

    order = {r: i for i, r in enumerate(QC_REASONS)}
    rank = np.vectorize(order.__getitem__, otypes=[np.int64])
    sr_rank, hr_rank = rank(status["SR"]), rank(status["HR"])
    nr = order["not_reported"]
    # a record's fate: kept if any slot kept, else the first reason among its reported slots
    sr_rank_r = np.where(sr_rank == nr, len(order), sr_rank)
    hr_rank_r = np.where(hr_rank == nr, len(order), hr_rank)
    fate_rank = np.minimum(sr_rank_r, hr_rank_r)
    kept_any = (status["SR"] == "kept") | (status["HR"] == "kept")
    fate_rank = np.where(kept_any, order["kept"], fate_rank)
    fate_rank = np.where(fate_rank == len(order), nr, fate_rank)
    reasons = list(QC_REASONS)
    fate = np.array(reasons, dtype=object)[fate_rank]

    def counts(values: np.ndarray) -> dict[str, int]:
        return {r: int(np.count_nonzero(values == r)) for r in reasons}

    qc = QCReport(
        source=str(source),
        n_records=n,
        records=counts(fate),
        sr=counts(status["SR"]),
        hr=counts(status["HR"]),
        criteria=criteria,
    )

    bins = srdb_veg_bins(raw)
    parts = []
    for flux, column in FLUX_COLUMNS.items():
        keep = status[flux] == "kept"
        sub = raw.loc[keep]
        part = pd.DataFrame(
            {
                "record_id": sub["Record_number"].astype("float64"),
                "study": sub["Study_number"].round().astype("Int64"),
                "site_id": sub["Site_ID"],
                "lat": sub["Latitude"].astype("float64"),
                "lon": sub["Longitude"].astype("float64"),
                "year": sub["Study_midyear"].astype("float64"),
                "flux": flux,
                "value": sub[column].astype("float64"),
            }
        )
        for src, dst in _TEXT_OUT.items():
            if dst != "site_id":
                part[dst] = sub[src]
        part["veg_bin"] = bins[keep]
        parts.append(part)
    table = pd.concat(parts, ignore_index=True)
    table["flux"] = table["flux"].astype("string")
    table["veg_bin"] = table["veg_bin"].astype("int64")
    table.attrs["units"] = {"value": "g C m-2 yr-1", "lat": "degrees_north", "lon": "degrees_east"}
    return Observations(table=table, qc=qc)


def load_observations(path: str | Path, **options: Any) -> Observations:
    """:func:`read_srdb` then :func:`select_observations` (``options`` are passed on).

    A file from which the selection keeps no record at all is an :class:`InputError` that
    names the most frequent reasons (e.g. every latitude out of range).
    """
    source = "<DataFrame>" if isinstance(path, pd.DataFrame) else str(path)
    obs = select_observations(read_srdb(path), source=source, line_offset=2, **options)
    if obs.n_sr == 0 and obs.n_hr == 0:
        lost = {
            r: n
            for r, n in sorted(obs.qc.records.items(), key=lambda kv: -kv[1])
            if n and r != "kept"
        }
        top = ", ".join(f"{n} {r}" for r, n in list(lost.items())[:3])
        raise InputError(
            f"no record passes the selection ({obs.qc.n_records} records: {top})",
            file=source,
            field="Rs_annual/Rh_annual",
            expected="untreated records with coordinates, a year and a positive flux "
            "(see docs/observations.md)",
        )
    return obs
