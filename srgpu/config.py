"""Frozen, validated configuration of an ensemble run; TOML in and out.

Every field that changes the science (data paths, predictor sets, forest settings, sampling,
seed, replicate count, batch size) is part of :class:`EnsembleConfig` and of its hash; runtime
choices that cannot change a number (output directory, number of Dask workers, scheduler
address) are not. The CLI builds the config from defaults, then a TOML file, then flags (a flag
wins), and stores the effective config in the output.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from srgpu.constants import DEFAULT_SEED
from srgpu.errors import ConfigError
from srgpu.filters import ObservationFilter
from srgpu.forest.engines import ENGINE_NAMES
from srgpu.schema import TRAINED_FLUXES

PREDICTOR_NAMES = (
    "MAT",
    "Prec",
    "RH",
    "LAI",
    "PAR",
    "SOC",
    "Prec_GS",
    "RH_GS",
    "LAI_GS",
    "PAR_GS",
)
"""The ten candidate predictors of Lu et al. 2021 (section 2.2)."""

PAPER_PREDICTORS: dict[str, tuple[str, ...]] = {
    "SR": ("MAT", "Prec", "RH", "RH_GS", "LAI_GS"),
    "HR": ("MAT", "Prec", "RH", "PAR", "RH_GS", "LAI_GS", "PAR_GS"),
}
"""The predictor sets the paper selected by complete combinatorial search."""

SAMPLING_SCHEMES = ("area", "equal")
PREDICTIVE_MODES = ("none", "moments", "quantiles")
"""What of each forest's predictive distribution (quantile regression forest) a run computes:
``"moments"`` (default): its conditional mean and SD per cell, pooled over replicates, and its
calibration on every replicate's held-out records (:mod:`srgpu.forest.predictive`);
``"quantiles"``: the same, and the exact median, MAD and quantiles of the distribution pooled
over all replicates (a cells x records weight array kept across batches:
:mod:`srgpu.run.predictive`); ``"none"``: only the replicate spread (docs/predictive.md)."""
BACKENDS = ("auto", "cpu", "gpu")
ENGINES = ENGINE_NAMES  # derived from the engine registry (srgpu.forest.engines)
TRAINERS = ("numba", "numba-exact", "sklearn")

DEMO_REPLICATES = 24
DEMO_TREES = 200

MAX_REPLICATES = 100_000
"""50 x the paper's 2000: more is refused before anything is allocated or written."""


# --------------------------------------------------------------------------- the one table
@dataclass(frozen=True)
class Param:
    """Type and range of one config value or command-line flag.

    ``kind``: ``int`` (a bool is refused), ``float`` (an int is accepted; NaN and infinities
    are refused), ``bool`` (only true/false), ``str``. ``low``/``high`` bound numbers
    (``closed``: which ends are included: ``"both"``, ``"left"``, ``"right"``,
    ``"neither"``); ``choices`` lists the allowed strings; ``pattern`` is a regular expression
    a string must match in full; ``nullable``: ``None`` (unset) is allowed.
    """

    kind: type
    low: float | None = None
    high: float | None = None
    closed: str = "both"
    choices: tuple[str, ...] | None = None
    pattern: str | None = None
    nullable: bool = False
    help: str = ""

    def describe(self) -> str:
        """What is expected, in words (used in error messages)."""
        if self.choices is not None:
            text = "one of " + ", ".join(repr(c) for c in self.choices)
        elif self.kind in (int, float):
            name = "an integer" if self.kind is int else "a finite number"
            lo = "" if self.low is None else ("[" if self.closed in ("both", "left") else "(")
            hi = "" if self.high is None else ("]" if self.closed in ("both", "right") else ")")
            if self.low is not None and self.high is not None:
                text = f"{name} in {lo}{self.low:g}, {self.high:g}{hi}"
            elif self.low is not None:
                text = f"{name} {'>=' if lo == '[' else '>'} {self.low:g}"
            elif self.high is not None:
                text = f"{name} {'<=' if hi == ']' else '<'} {self.high:g}"
            else:
                text = name
        elif self.kind is bool:
            text = "true or false"
        else:
            text = self.help or "a non-empty string"
        return text + (" or unset" if self.nullable else "")

    def check(self, name: str, value: Any, *, source: str = "config") -> Any:
        """``value`` (a float for a float parameter) or a :class:`ConfigError` naming ``name``,
        the value and what is expected."""
        if value is None and self.nullable:
            return None
        ok = False
        if self.kind is bool:
            ok = isinstance(value, bool)
        elif self.kind is int:
            ok = isinstance(value, int) and not isinstance(value, bool)
        elif self.kind is float:
            ok = isinstance(value, (int, float)) and not isinstance(value, bool)
            ok = ok and math.isfinite(value)
        elif self.kind is str:
            ok = isinstance(value, str) and value.strip() != ""
            if ok and self.pattern is not None:
                ok = re.fullmatch(self.pattern, value) is not None
        if ok and self.choices is not None:
            ok = value in self.choices
        if ok and self.kind in (int, float):
            lo_in = self.closed in ("both", "left")
            hi_in = self.closed in ("both", "right")
            if self.low is not None:
                ok = value >= self.low if lo_in else value > self.low
            if ok and self.high is not None:
                ok = value <= self.high if hi_in else value < self.high
        if not ok:
            shown = repr(value)
            shown = shown if len(shown) <= 60 else shown[:57] + "..."
            raise ConfigError(f"{source}: {name} = {shown}: expected {self.describe()}")
        return float(value) if self.kind is float else value


PARAMETERS: dict[str, Param] = {
    # -- EnsembleConfig (the science: part of the config hash)
    "srdb": Param(str, nullable=True, help="a path"),
    "vegetation": Param(str, nullable=True, help="a path"),
    "replicates": Param(int, 1, MAX_REPLICATES, nullable=True),
    "seed": Param(int, 0, None),
    "sampling": Param(str, choices=SAMPLING_SCHEMES),
    "train_fraction": Param(float, 0.0, 1.0, closed="neither"),
    "backend": Param(str, choices=BACKENDS),
    "train_on": Param(str, choices=BACKENDS),
    "engine": Param(str, choices=ENGINES),
    "batch_size": Param(int, 1, 10_000),
    "tile_rows": Param(int, 1, 100_000_000),
    "predictive": Param(str, choices=PREDICTIVE_MODES),
    "par_fraction": Param(float, 0.0, 1.0, closed="right"),
    "site_max_distance_km": Param(float, 0.0, 20_100.0),
    # -- ForestConfig ([forest] in TOML)
    "forest.trees": Param(int, 1, 100_000),
    "forest.nodesize": Param(int, 1, 1_000_000),
    "forest.mtry": Param(int, 1, nullable=True),  # above p it is capped at p (mtry_for)
    "forest.bootstrap": Param(bool),
    "forest.trainer": Param(str, choices=TRAINERS),
    # -- runtime flags (not part of the hash)
    "workers": Param(int, 0, 4096, nullable=True),
    "scheduler": Param(
        str,
        nullable=True,
        pattern=r"(?:(?:tcp|tls|ucx|ws|wss|inproc)://)?[A-Za-z0-9._\-\[\]:%/]+",
        help="a Dask scheduler address such as tcp://host:8786",
    ),
    "fetch.version": Param(
        str,
        pattern=r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}",
        help="a version name of letters, digits, '.', '_' and '-' (no path)",
    ),
    "select.folds": Param(int, 2, 100),
    "select.repeats": Param(int, 1, 10_000),
    "select.trees": Param(int, 1, 100_000),
    "select.threads": Param(int, 1, 4096, nullable=True),
    "explain.replicates": Param(int, 1, MAX_REPLICATES),
    "explain.repeats": Param(int, 1, 10_000),
    "explain.points": Param(int, 2, 10_000),
    "explain.rows": Param(int, 1, 10_000_000),
}
"""Every config value and command-line flag with its type and range, in one place: the config
(TOML and flags) is checked against it when an :class:`EnsembleConfig` is built, the CLI checks
its other flags with :func:`check_param`, and :mod:`srgpu.estimator` derives its scikit-learn
``_parameter_constraints`` from it."""


def check_param(name: str, value: Any, *, source: str | None = None) -> Any:
    """Check ``value`` against ``PARAMETERS[name]``; ``source`` names the origin in the
    message (default: the flag, e.g. ``--folds``)."""
    flag = "--" + name.split(".")[-1].replace("_", "-")
    key = name if name.startswith("forest.") else name.split(".")[-1]  # as written in TOML
    return PARAMETERS[name].check(key, value, source=source or flag)


@dataclass(frozen=True)
class ForestConfig:
    """Random-forest settings. Defaults are those of quantregForest 1.3-7 / randomForest.

    ``nodesize``: randomForest never splits a node holding at most ``nodesize`` (bootstrap) rows
    (``regTree.c``: a child with ``nodepop <= nodeSize`` is marked terminal). srgpu maps it to
    scikit-learn's ``min_samples_split = nodesize + 1`` on an explicit bootstrap sample whose
    duplicated rows are real rows, so that the count includes duplicates as randomForest's does
    (see :mod:`srgpu.forest.train`). ``mtry=None`` means ``max(floor(p / 3), 1)``.

    ``trainer``: who grows the trees on CPU: ``"numba"`` (srgpu's own grower,
    :mod:`srgpu.forest.numba_train`, the default: the same rules, several times faster; on
    predictors with ties between distinct rows the same trees up to rounding),
    ``"numba-exact"`` (the same grower replaying scikit-learn's sort on tied predictors: its
    trees bit for bit, barely faster than scikit-learn there) or ``"sklearn"``
    (``DecisionTreeRegressor``, the reference). GPU training (``train_on = "gpu"``)
    uses cuML whatever this says.
    """

    trees: int = 500
    nodesize: int = 5
    mtry: int | None = None
    bootstrap: bool = True
    trainer: str = "numba"

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            PARAMETERS[f"forest.{f.name}"].check(
                f"forest.{f.name}", getattr(self, f.name), source="config"
            )

    def mtry_for(self, n_features: int) -> int:
        """randomForest's default for regression: ``max(floor(p / 3), 1)``, capped at p."""
        if self.mtry is not None:
            return min(self.mtry, n_features)
        return max(n_features // 3, 1)


@dataclass(frozen=True)
class EnsembleConfig:
    """Everything that determines the numbers of an ensemble run.

    ``srdb``/``drivers``/``vegetation`` unset means the embedded synthetic demo world
    (:mod:`srgpu.data.demo`). ``replicates`` and forest ``trees`` unset take the paper's values
    (2000, 500) with real data and small demo values without.
    """

    srdb: str | None = None
    drivers: tuple[str, ...] = ()
    vegetation: str | None = None
    variables: tuple[tuple[str, str], ...] = ()
    predictors: tuple[tuple[str, tuple[str, ...]], ...] = tuple(PAPER_PREDICTORS.items())
    replicates: int | None = None
    seed: int = DEFAULT_SEED
    sampling: str = "area"
    train_fraction: float = 0.8
    forest: ForestConfig = field(default_factory=ForestConfig)
    backend: str = "auto"
    train_on: str = "auto"
    engine: str = "auto"
    batch_size: int = 8
    tile_rows: int = 200_000
    par_fraction: float = 0.48
    site_max_distance_km: float = 50.0
    predictive: str = "moments"
    observations: ObservationFilter | None = None  # SRDB filters (srgpu.filters); None: none

    def __post_init__(self) -> None:
        for name, param in PARAMETERS.items():
            if name in self.__dataclass_fields__:
                value = param.check(name, getattr(self, name), source="config")
                object.__setattr__(self, name, value)  # an int given for a float: a float
        if not isinstance(self.forest, ForestConfig):
            raise ConfigError(f"config: forest = {self.forest!r}: expected a [forest] table")
        for name in ("drivers", "variables", "predictors"):
            if isinstance(getattr(self, name), (str, bytes)) or not isinstance(
                getattr(self, name), (tuple, list)
            ):
                raise ConfigError(f"config: {name} = {getattr(self, name)!r}: expected a list")
        for d in self.drivers:
            if not isinstance(d, str) or not d.strip():
                raise ConfigError(f"config: drivers: {d!r}: expected a non-empty path string")
        for pair in self.variables:
            if (
                not isinstance(pair, tuple)
                or len(pair) != 2
                or not all(isinstance(x, str) and x.strip() for x in pair)
            ):
                raise ConfigError(f'config: variables: {pair!r}: expected ROLE = "VARIABLE"')
        for pair in self.predictors:
            if (
                not isinstance(pair, tuple)
                or len(pair) != 2
                or not isinstance(pair[0], str)
                or isinstance(pair[1], str)
                or not isinstance(pair[1], (tuple, list))
                or not all(isinstance(x, str) for x in pair[1])
            ):
                raise ConfigError(f'config: predictors: {pair!r}: expected FLUX = ["NAME", ...]')
        preds = dict(self.predictors)
        # canonical order (TRAINED_FLUXES order, variables sorted) so equal configs compare equal
        object.__setattr__(
            self,
            "predictors",
            tuple((f, tuple(preds[f])) for f in TRAINED_FLUXES if f in preds)
            + tuple((f, tuple(v)) for f, v in preds.items() if f not in TRAINED_FLUXES),
        )
        object.__setattr__(self, "variables", tuple(sorted(dict(self.variables).items())))
        object.__setattr__(self, "drivers", tuple(self.drivers))
        for flux in TRAINED_FLUXES:
            if flux not in preds:
                raise ConfigError(f"predictors: no predictor set for flux {flux}")
        for flux, names in preds.items():
            if flux not in TRAINED_FLUXES:
                raise ConfigError(
                    f"predictors: unknown flux {flux!r}; expected one of {TRAINED_FLUXES}"
                )
            if not names:
                raise ConfigError(f"predictors: empty predictor set for {flux}")
            bad = [n for n in names if n not in PREDICTOR_NAMES]
            if bad:
                raise ConfigError(
                    f"predictors: unknown predictor(s) {bad} for {flux}; "
                    f"expected names from {PREDICTOR_NAMES}"
                )
            if len(set(names)) != len(names):
                raise ConfigError(f"predictors: duplicated predictor in {flux}: {names}")

    # -- derived values -------------------------------------------------------------------
    @property
    def is_demo(self) -> bool:
        return self.srdb is None and not self.drivers

    @property
    def n_replicates(self) -> int:
        if self.replicates is not None:
            return self.replicates
        return DEMO_REPLICATES if self.is_demo else 2000

    def predictors_for(self, flux: str) -> tuple[str, ...]:
        return dict(self.predictors)[flux]

    @property
    def variable_overrides(self) -> dict[str, str]:
        return dict(self.variables)

    def replace(self, **changes: Any) -> EnsembleConfig:
        return dataclasses.replace(self, **changes)

    # -- serialisation --------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["drivers"] = list(self.drivers)
        d["variables"] = dict(self.variables)
        d["predictors"] = {k: list(v) for k, v in self.predictors}
        d["forest"] = {k: v for k, v in d["forest"].items() if v is not None}
        d["observations"] = (
            None
            if self.observations is None or self.observations.is_empty
            else self.observations.to_dict()
        )
        return {k: v for k, v in d.items() if v is not None}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, source: str = "config") -> EnsembleConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(
                f"{source}: unknown key(s) {unknown}; expected some of {sorted(known)}"
            )
        kw: dict[str, Any] = dict(data)
        for name, value in kw.items():  # scalars: type and range from the one table
            if name in PARAMETERS:
                kw[name] = PARAMETERS[name].check(name, value, source=source)
        if "drivers" in kw:
            drivers = kw["drivers"]
            if isinstance(drivers, str):
                drivers = [drivers]
            if not isinstance(drivers, list) or not all(
                isinstance(d, str) and d.strip() for d in drivers
            ):
                raise ConfigError(
                    f"{source}: drivers = {drivers!r}: expected a path or a list of paths"
                )
            kw["drivers"] = tuple(drivers)
        for table in ("variables", "predictors", "forest"):
            if table in kw and not isinstance(kw[table], Mapping):
                raise ConfigError(f"{source}: {table} = {kw[table]!r}: expected a table [{table}]")
        if "variables" in kw:
            for role, var in kw["variables"].items():
                if not isinstance(var, str) or not var.strip():
                    raise ConfigError(
                        f"{source}: variables.{role} = {var!r}: expected a variable name"
                    )
            kw["variables"] = tuple(sorted(dict(kw["variables"]).items()))
        if "predictors" in kw:
            for flux, names in kw["predictors"].items():
                if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
                    raise ConfigError(
                        f"{source}: predictors.{flux} = {names!r}: expected a list of "
                        "predictor names"
                    )
            merged = dict(PAPER_PREDICTORS)
            merged.update({k: tuple(v) for k, v in dict(kw["predictors"]).items()})
            kw["predictors"] = tuple(sorted(merged.items()))
        if "observations" in kw:
            kw["observations"] = ObservationFilter.from_dict(
                dict(kw["observations"]), source=source
            )
        if "forest" in kw:
            fdata = dict(kw["forest"])
            fknown = {f.name for f in dataclasses.fields(ForestConfig)}
            bad = sorted(set(fdata) - fknown)
            if bad:
                raise ConfigError(f"{source}: unknown forest key(s) {bad}")
            for name, value in fdata.items():
                fdata[name] = PARAMETERS[f"forest.{name}"].check(
                    f"forest.{name}", value, source=source
                )
            kw["forest"] = ForestConfig(**fdata)
        try:
            return cls(**kw)
        except TypeError as exc:  # wrong types that dataclasses let through
            raise ConfigError(f"{source}: {exc}") from None

    def to_toml(self) -> str:
        """Serialise to TOML (flat keys, then ``[forest]``, ``[predictors]``, ``[variables]``)."""
        d = self.to_dict()
        tables = {
            k: d.pop(k) for k in ("forest", "predictors", "variables", "observations") if k in d
        }
        lines = [f"{k} = {_toml_value(v)}" for k, v in d.items()]
        for name, table in tables.items():
            if table:
                lines.append("")
                lines.append(f"[{name}]")
                lines.extend(f"{k} = {_toml_value(v)}" for k, v in table.items())
        return "\n".join(lines) + "\n"

    @classmethod
    def from_toml(cls, path: str | Path) -> EnsembleConfig:
        path = Path(path)
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"{path}: config file not found") from None
        except IsADirectoryError:
            raise ConfigError(f"{path}: is a directory; expected a TOML config file") from None
        except UnicodeDecodeError:
            raise ConfigError(f"{path}: not a UTF-8 text file; expected a TOML config") from None
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read the config: {exc.strerror or exc}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: not valid TOML: {exc}") from None
        return cls.from_dict(data, source=str(path))

    def hash(self) -> str:
        """sha256 of the canonical JSON of the config: equal hashes, equal numbers."""
        blob = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    raise TypeError(f"cannot write {type(v).__name__} to TOML")
