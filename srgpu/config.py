"""Frozen, validated configuration of an ensemble run; TOML in and out.

Every field that changes the science (data paths, predictor sets, forest settings, sampling,
seed, replicate count, batch size) is part of :class:`EnsembleConfig` and of its hash; runtime
choices that cannot change a number (output directory, number of Dask workers, scheduler
address) are not. The CLI builds the config from defaults, then a TOML file, then flags (a flag
wins), and stores the effective config in the output.

Device and implementation are two axes, for each stage: ``[train]`` ``device`` x ``trainer``
(:class:`TrainConfig`) and ``[predict]`` ``device`` x ``engine`` (:class:`PredictConfig`); which
implementation runs on which device is one table, :data:`STAGES`. Configs in the old spelling
(``backend``, ``train_on``, ``engine``, ``[forest] trainer``) are translated by
:func:`translate_legacy`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import re
import tomllib
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from srgpu.constants import DEFAULT_SEED
from srgpu.errors import ConfigError
from srgpu.filters import ObservationFilter
from srgpu.forest.engines import AUTO_ENGINE, ENGINE_NAMES
from srgpu.forest.engines import ENGINES as ENGINE_REGISTRY
from srgpu.forest.trainers import AUTO_TRAINER, TRAINER_NAMES
from srgpu.forest.trainers import TRAINERS as TRAINER_REGISTRY
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
PREDICTIVE_MEMBERSHIPS = ("all", "inbag", "oob")
"""Leaf membership of the predictive distribution (``predictive_membership``;
:mod:`srgpu.forest.predictive`): ``"all"`` (default; every training record of the replicate
dropped down the tree: quantregForest's, the paper's), ``"inbag"`` (the tree's bootstrap rows
with their counts: quantile-forest's) or ``"oob"`` (the tree's out-of-bag records only, trees
whose leaf holds none skipped: "honest" leaves, calibrated on the demo world)."""
DEVICES = ("auto", "cpu", "gpu")
"""The devices of ``train.device`` and ``predict.device``."""
ENGINES = ENGINE_NAMES  # derived from the engine registry (srgpu.forest.engines)
TRAINERS = TRAINER_NAMES  # derived from the trainer registry (srgpu.forest.trainers)

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
    "batch_size": Param(int, 1, 10_000),
    "tile_rows": Param(int, 1, 100_000_000),
    "predictive": Param(str, choices=PREDICTIVE_MODES),
    "predictive_membership": Param(str, choices=PREDICTIVE_MEMBERSHIPS),
    "par_fraction": Param(float, 0.0, 1.0, closed="right"),
    "site_max_distance_km": Param(float, 0.0, 20_100.0),
    # -- ForestConfig ([forest] in TOML)
    "forest.trees": Param(int, 1, 100_000),
    "forest.nodesize": Param(int, 1, 1_000_000),
    "forest.mtry": Param(int, 1, nullable=True),  # above p it is capped at p (mtry_for)
    "forest.bootstrap": Param(bool),
    # -- TrainConfig and PredictConfig ([train], [predict]): device x implementation
    "train.device": Param(str, choices=DEVICES),
    "train.trainer": Param(str, choices=TRAINERS),
    "predict.device": Param(str, choices=DEVICES),
    "predict.engine": Param(str, choices=ENGINES),
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
    flag = FLAGS.get(name, "--" + name.split(".")[-1].replace("_", "-"))
    table = name.split(".")[0]
    key = name if table in TABLES else name.split(".")[-1]  # as written in TOML
    return PARAMETERS[name].check(key, value, source=source or flag)


FLAGS = {
    "train.device": "--train-device",
    "predict.device": "--predict-device",
    "predictive_membership": "--membership",
}
"""Command-line flags not spelt ``--`` + the key's last part."""


# --------------------------------------------------------------------- device x implementation
@dataclass(frozen=True)
class Stage:
    """The implementations of one stage (training or prediction), the devices each runs on,
    and what ``"auto"`` means on each device."""

    implementation: str  # the key naming the implementation in the stage's table
    devices: Mapping[str, tuple[str, ...]]
    auto: Mapping[str, str]


STAGES: dict[str, Stage] = {
    "train": Stage("trainer", {n: e.devices for n, e in TRAINER_REGISTRY.items()}, AUTO_TRAINER),
    "predict": Stage("engine", {n: e.devices for n, e in ENGINE_REGISTRY.items()}, AUTO_ENGINE),
}
"""Which implementation runs on which device, for both stages: derived from the trainer
registry (:mod:`srgpu.forest.trainers`) and the engine registry (:mod:`srgpu.forest.engines`).
The one place where a ``(device, implementation)`` pair is checked (:func:`check_device_pair`)."""


def check_device_pair(
    stage: str, device: str, implementation: str, *, source: str = "config"
) -> None:
    """A :class:`ConfigError` when ``implementation`` cannot run on ``device`` in ``stage``
    (``"train"`` or ``"predict"``), naming both keys, their values and what is allowed.
    ``"auto"`` on either side always fits: it is chosen to fit the other."""
    table = STAGES[stage]
    if device == "auto" or implementation == "auto":
        return
    runs_on = table.devices[implementation]
    if device in runs_on:
        return
    fits = ["auto", *(n for n, d in table.devices.items() if device in d)]
    key = f"{stage}.{table.implementation}"
    raise ConfigError(
        f"{source}: {key} = {implementation!r} with {stage}.device = {device!r}: "
        f"{implementation!r} runs on {' or '.join(runs_on)} only; allowed: {key} = "
        f"{' or '.join(repr(n) for n in fits)} with {stage}.device = {device!r}, or "
        f"{stage}.device = {' or '.join(repr(d) for d in ('auto', *runs_on))} with "
        f"{key} = {implementation!r}"
    )


@dataclass(frozen=True)
class TrainConfig:
    """Where and by what the replicate forests are grown (``[train]`` in TOML).

    ``device``: ``"auto"``, ``"cpu"`` or ``"gpu"``; ``trainer``: an implementation of
    :data:`srgpu.forest.trainers.TRAINERS` or ``"auto"``:

    * ``"numba"``: srgpu's own grower (:mod:`srgpu.forest.numba_train`): the rules of
      scikit-learn's trees, several times faster; on predictors with ties between distinct rows
      the same trees up to rounding;
    * ``"numba-exact"``: the same grower replaying scikit-learn's sort on tied predictors: its
      trees bit for bit, barely faster than scikit-learn there;
    * ``"sklearn"``: ``DecisionTreeRegressor``, the reference;
    * ``"cuml"``: cuML on the GPU (:mod:`srgpu.forest.cuml_train`; statistically, not bitwise,
      equal to the CPU trainers).

    ``"auto"`` never probes the machine: the device is the trainer's (the CPU when the trainer
    is ``"auto"`` too: the training tables have a few thousand rows and cuML's speed on them is
    unmeasured), and the trainer is ``"numba"`` on the CPU, ``"cuml"`` on the GPU. The pair is
    checked by :func:`check_device_pair`.
    """

    device: str = "auto"
    trainer: str = "auto"

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            PARAMETERS[f"train.{f.name}"].check(
                f"train.{f.name}", getattr(self, f.name), source="config"
            )
        check_device_pair("train", self.device, self.trainer)

    @property
    def resolved(self) -> tuple[str, str]:
        """``(device, trainer)`` with ``"auto"`` resolved (see the class docstring)."""
        device = self.device
        if device == "auto":
            device = "cpu" if self.trainer == "auto" else STAGES["train"].devices[self.trainer][0]
        trainer = STAGES["train"].auto[device] if self.trainer == "auto" else self.trainer
        return device, trainer

    @property
    def cpu_trainer(self) -> str:
        """The trainer for work that always grows on the host's cores (the predictor
        selection): the resolved trainer when it runs on the CPU, else the CPU's ``"auto"``."""
        trainer = self.resolved[1]
        return trainer if "cpu" in STAGES["train"].devices[trainer] else STAGES["train"].auto["cpu"]


@dataclass(frozen=True)
class PredictConfig:
    """Where and by what the forests predict the grid (``[predict]`` in TOML).

    ``device``: ``"auto"``, ``"cpu"`` or ``"gpu"``; ``engine``: an inference engine of
    :data:`srgpu.forest.engines.ENGINES` (``"numba"``, ``"sklearn"``, ``"nvforest"``) or
    ``"auto"`` (numba on the CPU, nvForest on the GPU). ``device = "auto"`` probes the machine
    (:func:`srgpu.backend.resolve_backend`): the GPU when one is usable, unless the engine runs
    on the CPU only. The prediction device is also the Dask cluster's (:mod:`srgpu.run.cluster`).
    The pair is checked by :func:`check_device_pair`.
    """

    device: str = "auto"
    engine: str = "auto"

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            PARAMETERS[f"predict.{f.name}"].check(
                f"predict.{f.name}", getattr(self, f.name), source="config"
            )
        check_device_pair("predict", self.device, self.engine)

    @property
    def device_request(self) -> str:
        """``device``, or the engine's one device when ``device`` is ``"auto"`` and the engine
        runs on one device only (``"auto"`` otherwise: the machine decides)."""
        if self.device == "auto" and self.engine != "auto":
            runs_on = STAGES["predict"].devices[self.engine]
            if len(runs_on) == 1:
                return runs_on[0]
        return self.device


LEGACY_KEYS = {
    "backend": "predict.device",
    "engine": "predict.engine",
    "train_on": "train.device",
    "forest.trainer": "train.trainer",
}
"""Keys of configs written before the ``[train]``/``[predict]`` tables, and their new names."""


def translate_legacy(data: Mapping[str, Any], *, source: str = "config") -> tuple[dict, list]:
    """A config mapping in the old spelling as one in the new: ``(new mapping, old keys
    found)``. The one translation of old keys (:data:`LEGACY_KEYS`), used for user TOML files
    and for stored run configs alike.

    ``backend`` becomes ``predict.device``, ``engine`` ``predict.engine``, ``train_on``
    ``train.device`` and ``[forest] trainer`` ``train.trainer``, with the same behaviour: old
    ``train_on = "gpu"`` grew with cuML whatever the trainer said, so it becomes ``device =
    "gpu"`` with trainer ``"auto"`` (cuML on the GPU); old ``trainer = "numba"``, the old default,
    becomes ``"auto"`` (numba on the CPU), so that a run written with the old defaults has the
    new defaults' config. A key given in both spellings is a :class:`ConfigError`.
    """
    out = dict(data)
    forest = out.get("forest")
    old_trainer = None
    found: list[str] = []
    if isinstance(forest, Mapping) and "trainer" in forest:
        forest = dict(forest)
        old_trainer = forest.pop("trainer")
        out["forest"] = forest
        found.append("forest.trainer")
    moved: dict[str, dict[str, Any]] = {"train": {}, "predict": {}}
    for old in ("backend", "engine", "train_on"):
        if old in out:
            found.append(old)
            table, key = LEGACY_KEYS[old].split(".")
            moved[table][key] = out.pop(old)
    if old_trainer is not None:
        moved["train"]["trainer"] = old_trainer
    if not found:
        return out, found
    if moved["train"].get("device") == "gpu":
        moved["train"]["trainer"] = "auto"
    if moved["train"].get("trainer") == "numba":
        moved["train"]["trainer"] = "auto"
    for table, values in moved.items():
        if not values:
            continue
        given = out.get(table, {})
        if not isinstance(given, Mapping):
            raise ConfigError(f"{source}: {table} = {given!r}: expected a table [{table}]")
        both = sorted(k for k in values if k in given)
        if both:
            olds = [k for k, v in LEGACY_KEYS.items() if v in {f"{table}.{b}" for b in both}]
            raise ConfigError(
                f"{source}: {', '.join(olds)} (old spelling) and "
                f"{', '.join(f'{table}.{b}' for b in both)} are both given; keep only the "
                f"[{table}] table"
            )
        out[table] = {**values, **given}
    return out, found


def legacy_note(source: str, found: list[str]) -> str:
    """The one-line deprecation note for a user file with old keys."""
    return (
        f"{source}: old setting(s) {', '.join(found)} read as "
        f"{', '.join(LEGACY_KEYS[k] for k in found)} (the [train] and [predict] tables); "
        "write the new names"
    )


@dataclass(frozen=True)
class ForestConfig:
    """Random-forest settings. Defaults are those of quantregForest 1.3-7 / randomForest.

    ``nodesize``: randomForest never splits a node holding at most ``nodesize`` (bootstrap) rows
    (``regTree.c``: a child with ``nodepop <= nodeSize`` is marked terminal). srgpu maps it to
    scikit-learn's ``min_samples_split = nodesize + 1`` on an explicit bootstrap sample whose
    duplicated rows are real rows, so that the count includes duplicates as randomForest's does
    (see :mod:`srgpu.forest.train`). ``mtry=None`` means ``max(floor(p / 3), 1)``.

    Who grows the trees, and where, is :class:`TrainConfig` (``[train]``).
    """

    trees: int = 500
    nodesize: int = 5
    mtry: int | None = None
    bootstrap: bool = True

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


TABLES: dict[str, type] = {"forest": ForestConfig, "train": TrainConfig, "predict": PredictConfig}
"""The tables of :class:`EnsembleConfig` that are dataclasses of scalar settings."""


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
    train: TrainConfig = field(default_factory=TrainConfig)
    predict: PredictConfig = field(default_factory=PredictConfig)
    batch_size: int = 8
    tile_rows: int = 200_000
    par_fraction: float = 0.48
    site_max_distance_km: float = 50.0
    predictive: str = "moments"
    predictive_membership: str = "all"
    observations: ObservationFilter | None = None  # SRDB filters (srgpu.filters); None: none

    def __post_init__(self) -> None:
        for name, param in PARAMETERS.items():
            if name in self.__dataclass_fields__:
                value = param.check(name, getattr(self, name), source="config")
                object.__setattr__(self, name, value)  # an int given for a float: a float
        for name, cls in TABLES.items():
            if not isinstance(getattr(self, name), cls):
                value = getattr(self, name)
                raise ConfigError(f"config: {name} = {value!r}: expected a [{name}] table")
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
        self._check_membership()
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

    def _check_membership(self) -> None:
        """``predictive_membership`` against the settings it needs: a predictive distribution,
        and for ``"inbag"``/``"oob"`` bootstrap counts that srgpu can replay (its own CPU
        trainers; cuML draws its bootstrap inside) and, for ``"oob"``, a bootstrap at all."""
        m = self.predictive_membership
        if m == "all":
            return
        if self.predictive == "none":
            raise ConfigError(
                f"config: predictive_membership = {m!r} with predictive = 'none': there is no "
                "predictive distribution to compute; set predictive = 'moments' or "
                "'quantiles', or drop predictive_membership"
            )
        if m == "oob" and not self.forest.bootstrap:
            raise ConfigError(
                "config: predictive_membership = 'oob' with forest.bootstrap = false: without "
                "a bootstrap no training record is out of bag; set forest.bootstrap = true or "
                "predictive_membership = 'all'"
            )
        if self.train.resolved[1] == "cuml":
            raise ConfigError(
                f"config: predictive_membership = {m!r} with train.trainer = 'cuml' (train.device "
                f"= {self.train.device!r}): cuML draws each tree's bootstrap inside and srgpu "
                "cannot replay it; use a CPU trainer (train.device = 'cpu') or "
                "predictive_membership = 'all'"
            )

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
        if self.predictive_membership == "all":
            # the default is left out: a config written before the key keeps its hash
            d["predictive_membership"] = None
        return {k: v for k, v in d.items() if v is not None}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, source: str = "config") -> EnsembleConfig:
        """The config of a mapping (a parsed TOML file, a stored run's config); keys of the old
        spelling are translated (:func:`translate_legacy`)."""
        data, _ = translate_legacy(data, source=source)
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
        for table in ("variables", "predictors", *TABLES):
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
        for table, table_cls in TABLES.items():
            if table not in kw:
                continue
            fdata = dict(kw[table])
            fknown = {f.name for f in dataclasses.fields(table_cls)}
            bad = sorted(set(fdata) - fknown)
            if bad:
                raise ConfigError(f"{source}: unknown {table} key(s) {bad}")
            for name, value in fdata.items():
                fdata[name] = PARAMETERS[f"{table}.{name}"].check(
                    f"{table}.{name}", value, source=source
                )
            if table in STAGES:  # the pair, named with this source
                impl = STAGES[table].implementation
                check_device_pair(
                    table, fdata.get("device", "auto"), fdata.get(impl, "auto"), source=source
                )
            kw[table] = table_cls(**fdata)
        try:
            return cls(**kw)
        except TypeError as exc:  # wrong types that dataclasses let through
            raise ConfigError(f"{source}: {exc}") from None

    def to_toml(self) -> str:
        """Serialise to TOML (flat keys, then ``[forest]``, ``[train]``, ``[predict]``,
        ``[predictors]``, ``[variables]``, ``[observations]``)."""
        d = self.to_dict()
        tables = {
            k: d.pop(k) for k in (*TABLES, "predictors", "variables", "observations") if k in d
        }
        lines = [f"{k} = {_toml_value(v)}" for k, v in d.items()]
        for name, table in tables.items():
            if table:
                lines.append("")
                lines.append(f"[{name}]")
                lines.extend(f"{k} = {_toml_value(v)}" for k, v in table.items())
        return "\n".join(lines) + "\n"

    @classmethod
    def from_toml(
        cls, path: str | Path, *, notice: Callable[[str], None] | None = None
    ) -> EnsembleConfig:
        """The config of a user's TOML file. Old keys (``backend``, ``train_on``, ``engine``,
        ``[forest] trainer``) are read as their new names with a one-line note, given to
        ``notice`` (default: a ``FutureWarning``)."""
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
        _, found = translate_legacy(data, source=str(path))
        if found:
            note = legacy_note(str(path), found)
            if notice is None:
                warnings.warn(note, FutureWarning, stacklevel=2)
            else:
                notice(note)
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
