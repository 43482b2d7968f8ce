"""Bad configuration values and flags: exit 2 and one line naming the key, nothing written.

The corpus is in ``tests/badstores.py`` (:data:`BAD_TOML`, :data:`BAD_FLAGS`); the table every
value is checked against is :data:`srgpu.config.PARAMETERS`, from which the estimator's
``_parameter_constraints`` are derived.
"""

from __future__ import annotations

from numbers import Integral

import pytest
from typer.testing import CliRunner

from srgpu.cli import app
from srgpu.config import MAX_REPLICATES, PARAMETERS, EnsembleConfig, ForestConfig
from srgpu.errors import ConfigError
from tests.badinputs import write_good_files
from tests.badstores import BAD_FLAGS, BAD_TOML, one_error_line


def _nothing_written(out):
    assert not out.exists() or list(out.iterdir()) == []


@pytest.mark.parametrize("name,text,expect", BAD_TOML, ids=[c[0] for c in BAD_TOML])
def test_bad_toml_exit_2(name, text, expect, tmp_path):
    cfg = tmp_path / "run.toml"
    cfg.write_text(text)
    out = tmp_path / "out"
    result = CliRunner().invoke(
        app, ["ensemble", "--config", str(cfg), "--quiet", "--out", str(out)]
    )
    one_error_line(result, str(cfg), *expect)
    _nothing_written(out)


@pytest.mark.parametrize(
    "content", [None, b"\x00\xff\xfe binary \x89PNG\r\n"], ids=["directory", "binary"]
)
def test_config_not_a_text_file(content, tmp_path):
    cfg = tmp_path / "run.toml"
    if content is None:
        cfg.mkdir()
    else:
        cfg.write_bytes(content)
    out = tmp_path / "out"
    result = CliRunner().invoke(
        app, ["ensemble", "--config", str(cfg), "--quiet", "--out", str(out)]
    )
    one_error_line(result, str(cfg), "directory" if content is None else "UTF-8")
    _nothing_written(out)


@pytest.fixture(scope="module")
def good(tmp_path_factory):
    return write_good_files(tmp_path_factory.mktemp("good"))


@pytest.mark.parametrize("name,args,expect", BAD_FLAGS, ids=[c[0] for c in BAD_FLAGS])
def test_bad_flag_exit_2(name, args, expect, good, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    args = [a.format(out=out, srdb=good.srdb) for a in args]
    if args[0] == "ensemble":
        args += ["--quiet", "--out", str(out / "run")]
    elif args[0] == "select":
        args += ["--quiet", "--out", str(out / "select")]
    elif args[0] == "fetch":
        args += ["--cache", str(out / "cache")]
    result = CliRunner().invoke(app, args)
    one_error_line(result, *expect)
    assert list(out.iterdir()) == []  # nothing written, no store created
    assert not (tmp_path.parent / "escaped").exists()


@pytest.mark.parametrize(
    "kwargs",
    [
        {"replicates": True},
        {"replicates": 2.0},
        {"seed": -1},
        {"seed": "1"},
        {"batch_size": False},
        {"site_max_distance_km": float("nan")},
        {"train_fraction": 0},
        {"drivers": "a.nc"},
        {"forest": {"trees": 5}},
    ],
    ids=lambda k: "-".join(f"{a}={b!r}" for a, b in k.items()),
)
def test_config_objects_check_types(kwargs):
    """The same table applies when a config is built in Python (notebooks, the estimator)."""
    with pytest.raises(ConfigError) as info:
        EnsembleConfig(**kwargs)
    assert next(iter(kwargs)) in str(info.value)


@pytest.mark.parametrize(
    "kwargs", [{"trees": True}, {"bootstrap": "no"}, {"mtry": 0}, {"nodesize": 1.5}]
)
def test_forest_config_checks_types(kwargs):
    with pytest.raises(ConfigError):
        ForestConfig(**kwargs)


def test_int_for_float_is_a_float_and_hash_is_stable():
    a = EnsembleConfig(par_fraction=1, site_max_distance_km=50)
    assert isinstance(a.par_fraction, float) and a.hash() == EnsembleConfig(par_fraction=1.0).hash()


def test_estimator_constraints_come_from_the_table():
    from sklearn.utils._param_validation import Interval, StrOptions

    from srgpu.estimator import ESTIMATOR_PARAMETERS, SoilRespirationEnsemble

    cons = SoilRespirationEnsemble._parameter_constraints
    assert set(ESTIMATOR_PARAMETERS) <= set(cons)
    rep = cons["replicates"][0]
    assert isinstance(rep, Interval) and rep.type is Integral
    assert (rep.left, rep.right) == (1, MAX_REPLICATES) and cons["replicates"][-1] is None
    seed = cons["seed"][0]
    assert (seed.left, seed.right) == (PARAMETERS["seed"].low, PARAMETERS["seed"].high)
    sampling = cons["sampling"][0]
    assert isinstance(sampling, StrOptions) and sampling.options == set(
        PARAMETERS["sampling"].choices
    )


@pytest.mark.parametrize("kwargs", [{"replicates": True}, {"seed": -1}, {"batch_size": 0}])
def test_estimator_refuses_what_the_cli_refuses(kwargs, tmp_path):
    from sklearn.utils._param_validation import InvalidParameterError

    from srgpu.estimator import SoilRespirationEnsemble

    with pytest.raises((ConfigError, InvalidParameterError)):
        SoilRespirationEnsemble(**kwargs).fit(out=tmp_path / "out")
    assert not (tmp_path / "out").exists()
