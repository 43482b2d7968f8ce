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
BACKENDS = ("auto", "cpu", "gpu")
ENGINES = ENGINE_NAMES  # derived from the engine registry (srgpu.forest.engines)
TRAINERS = ("numba", "sklearn")

DEMO_REPLICATES = 24
DEMO_TREES = 200


@dataclass(frozen=True)
class ForestConfig:
    """Random-forest settings. Defaults are those of quantregForest 1.3-7 / randomForest.

    ``nodesize``: randomForest never splits a node holding at most ``nodesize`` (bootstrap) rows
    (``regTree.c``: a child with ``nodepop <= nodeSize`` is marked terminal). srgpu maps it to
    scikit-learn's ``min_samples_split = nodesize + 1`` on an explicit bootstrap sample whose
    duplicated rows are real rows, so that the count includes duplicates as randomForest's does
    (see :mod:`srgpu.forest.train`). ``mtry=None`` means ``max(floor(p / 3), 1)``.

    ``trainer``: who grows the trees on CPU: ``"numba"`` (srgpu's own grower,
    :mod:`srgpu.forest.numba_train`, the default: the same rules, several times faster) or
    ``"sklearn"`` (``DecisionTreeRegressor``, the reference). GPU training (``train_on = "gpu"``)
    uses cuML whatever this says.
    """

    trees: int = 500
    nodesize: int = 5
    mtry: int | None = None
    bootstrap: bool = True
    trainer: str = "numba"

    def __post_init__(self) -> None:
        if self.trees < 1:
            raise ConfigError(f"forest.trees must be >= 1, got {self.trees}")
        if self.nodesize < 1:
            raise ConfigError(f"forest.nodesize must be >= 1, got {self.nodesize}")
        if self.mtry is not None and self.mtry < 1:
            raise ConfigError(f"forest.mtry must be >= 1 or unset, got {self.mtry}")
        if self.trainer not in TRAINERS:
            raise ConfigError(f"forest.trainer must be one of {TRAINERS}, got {self.trainer!r}")

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
    observations: ObservationFilter | None = None  # SRDB filters (srgpu.filters); None: none

    def __post_init__(self) -> None:
        if self.sampling not in SAMPLING_SCHEMES:
            raise ConfigError(f"sampling must be one of {SAMPLING_SCHEMES}, got {self.sampling!r}")
        for name, allowed in (("backend", BACKENDS), ("train_on", BACKENDS), ("engine", ENGINES)):
            if getattr(self, name) not in allowed:
                raise ConfigError(f"{name} must be one of {allowed}, got {getattr(self, name)!r}")
        if self.replicates is not None and self.replicates < 1:
            raise ConfigError(f"replicates must be >= 1, got {self.replicates}")
        if not 0.0 < self.train_fraction < 1.0:
            raise ConfigError(f"train_fraction must be in (0, 1), got {self.train_fraction}")
        if self.batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1, got {self.batch_size}")
        if self.tile_rows < 1:
            raise ConfigError(f"tile_rows must be >= 1, got {self.tile_rows}")
        if not 0.0 < self.par_fraction <= 1.0:
            raise ConfigError(f"par_fraction must be in (0, 1], got {self.par_fraction}")
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
        if "drivers" in kw:
            drivers = kw["drivers"]
            kw["drivers"] = (drivers,) if isinstance(drivers, str) else tuple(drivers)
        if "variables" in kw:
            kw["variables"] = tuple(sorted(dict(kw["variables"]).items()))
        if "predictors" in kw:
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
            data = tomllib.loads(path.read_text())
        except FileNotFoundError:
            raise ConfigError(f"{path}: config file not found") from None
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
