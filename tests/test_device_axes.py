"""Device x implementation as two axes per stage: ``[train]`` device x trainer, ``[predict]``
device x engine; the one pair table; the translation of the old keys (``backend``,
``train_on``, ``engine``, ``[forest] trainer``) in user files and in stores written before."""

from __future__ import annotations

import hashlib
import json
import shutil
import tomllib
import warnings
from pathlib import Path

import numpy as np
import pytest
import zarr

from srgpu.config import (
    DEVICES,
    STAGES,
    EnsembleConfig,
    ForestConfig,
    PredictConfig,
    TrainConfig,
    _toml_value,
    check_device_pair,
    translate_legacy,
)
from srgpu.errors import ConfigError, StoreError

PAIRS = [
    (stage, device, impl)
    for stage, table in STAGES.items()
    for impl in ("auto", *table.devices)
    for device in DEVICES
]


@pytest.mark.parametrize("stage,device,impl", PAIRS, ids=["-".join(p) for p in PAIRS])
def test_every_pair_is_checked_against_the_one_table(stage, device, impl):
    table = STAGES[stage]
    possible = "auto" in (device, impl) or device in table.devices[impl]
    cls = TrainConfig if stage == "train" else PredictConfig
    kwargs = {"device": device, table.implementation: impl}
    if possible:
        check_device_pair(stage, device, impl)
        cls(**kwargs)
        return
    with pytest.raises(ConfigError) as info:
        cls(**kwargs)
    msg = str(info.value)
    key = f"{stage}.{table.implementation}"
    assert f"{key} = {impl!r} with {stage}.device = {device!r}" in msg
    fits = [n for n, d in table.devices.items() if device in d]
    assert all(repr(n) in msg.split("allowed:")[1] for n in fits)  # what is allowed, named


def test_the_impossible_pairs_are_these():
    bad = {p for p in PAIRS if "auto" not in p[1:] and p[1] not in STAGES[p[0]].devices[p[2]]}
    assert bad == {
        ("train", "gpu", "numba"),
        ("train", "gpu", "numba-exact"),
        ("train", "gpu", "sklearn"),
        ("train", "cpu", "cuml"),
        ("predict", "gpu", "numba"),
        ("predict", "gpu", "sklearn"),
    }


@pytest.mark.parametrize(
    "train,resolved",
    [
        (TrainConfig(), ("cpu", "numba")),  # as the old train_on = "auto": the host's cores
        (TrainConfig(device="cpu"), ("cpu", "numba")),
        (TrainConfig(device="gpu"), ("gpu", "cuml")),
        (TrainConfig(trainer="cuml"), ("gpu", "cuml")),
        (TrainConfig(trainer="sklearn"), ("cpu", "sklearn")),
        (TrainConfig(device="cpu", trainer="numba-exact"), ("cpu", "numba-exact")),
    ],
)
def test_training_auto_resolves_without_a_probe(train, resolved):
    assert train.resolved == resolved


def test_cpu_trainer_for_work_on_the_host():
    assert TrainConfig(trainer="sklearn").cpu_trainer == "sklearn"
    assert TrainConfig(device="gpu").cpu_trainer == "numba"


@pytest.mark.parametrize(
    "predict,request_",
    [
        (PredictConfig(), "auto"),
        (PredictConfig(engine="numba"), "cpu"),
        (PredictConfig(engine="sklearn"), "cpu"),
        (PredictConfig(engine="nvforest"), "auto"),
        (PredictConfig(device="cpu", engine="nvforest"), "cpu"),
        (PredictConfig(device="gpu"), "gpu"),
    ],
)
def test_prediction_device_request(predict, request_):
    assert predict.device_request == request_


# ------------------------------------------------------------------ the old spelling
OLD_DEFAULTS = 'backend = "auto"\ntrain_on = "auto"\nengine = "auto"\n[forest]\ntrainer = "numba"\n'


@pytest.mark.parametrize(
    "old,train,predict",
    [
        (OLD_DEFAULTS, TrainConfig(), PredictConfig()),  # old defaults: the new defaults
        ('backend = "gpu"\n', TrainConfig(), PredictConfig(device="gpu")),
        ('engine = "sklearn"\n', TrainConfig(), PredictConfig(engine="sklearn")),
        ('train_on = "cpu"\n', TrainConfig(device="cpu"), PredictConfig()),
        # old GPU training was cuML whatever [forest] trainer said
        ('train_on = "gpu"\n[forest]\ntrainer = "sklearn"\n', TrainConfig(device="gpu"), None),
        ('[forest]\ntrainer = "numba-exact"\n', TrainConfig(trainer="numba-exact"), None),
        ('[forest]\ntrainer = "sklearn"\ntrees = 7\n', TrainConfig(trainer="sklearn"), None),
    ],
)
def test_old_keys_in_a_user_file_are_translated_with_one_note(old, train, predict, tmp_path):
    path = tmp_path / "old.toml"
    path.write_text(old)
    notes: list[str] = []
    cfg = EnsembleConfig.from_toml(path, notice=notes.append)
    assert cfg.train == train and cfg.predict == (predict or PredictConfig())
    assert len(notes) == 1 and "\n" not in notes[0]
    assert notes[0].startswith(f"{path}: old setting(s) ") and "write the new names" in notes[0]
    if "trees = 7" in old:
        assert cfg.forest == ForestConfig(trees=7)  # the rest of [forest] is kept
    with pytest.warns(FutureWarning, match="old setting"):  # without a notice: a warning
        assert EnsembleConfig.from_toml(path) == cfg


def test_a_new_file_gives_no_note(tmp_path):
    path = tmp_path / "new.toml"
    path.write_text(EnsembleConfig(train=TrainConfig(trainer="sklearn")).to_toml())
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        cfg = EnsembleConfig.from_toml(path, notice=lambda line: pytest.fail(line))
    assert cfg.train.trainer == "sklearn"


def test_old_default_config_is_the_new_default_config():
    cfg = EnsembleConfig(replicates=4, forest=ForestConfig(trees=200))
    old = _old_spelling(tomllib.loads(cfg.to_toml()))
    assert "train" not in old and old["forest"]["trainer"] == "numba"
    assert EnsembleConfig.from_dict(old) == cfg
    assert EnsembleConfig.from_dict(old).hash() == cfg.hash()


def test_translation_leaves_new_configs_alone_and_refuses_both_spellings():
    new = {"train": {"device": "cpu"}, "forest": {"trees": 3}}
    assert translate_legacy(new) == (new, [])
    with pytest.raises(ConfigError, match=r"train_on \(old spelling\) and train\.device"):
        translate_legacy({"train_on": "cpu", "train": {"device": "gpu"}})


# ------------------------------------------------------------------ stores written before
def _old_spelling(new: dict) -> dict:
    """A config mapping as the code before the [train]/[predict] tables wrote it (its
    ``to_dict``: ``backend``, ``train_on``, ``engine`` flat, ``trainer`` in ``[forest]``)."""
    old = {k: v for k, v in new.items() if k not in ("train", "predict")}
    train, predict = new["train"], new["predict"]
    old["backend"], old["engine"] = predict["device"], predict["engine"]
    old["train_on"] = train["device"]
    trainer = "numba" if train["trainer"] == "auto" else train["trainer"]  # the old default
    old["forest"] = {**new["forest"], "trainer": trainer}
    return old


def _old_toml(old: dict) -> str:
    flat = [f"{k} = {_toml_value(v)}" for k, v in old.items() if not isinstance(v, dict)]
    tables = [
        f"\n[{k}]\n" + "\n".join(f"{a} = {_toml_value(b)}" for a, b in v.items())
        for k, v in old.items()
        if isinstance(v, dict) and v
    ]
    return "\n".join(flat) + "\n" + "\n".join(tables) + "\n"


def _rewrite_as_old(out: Path) -> str:
    """Rewrite a store of this code as the old code wrote it: the ``config`` attribute in the old
    keys, and the old config's hash in the store, ``progress.json`` and ``summary.json``."""
    group = zarr.open_group(str(out / "ensemble.zarr"), mode="r+")
    old = _old_spelling(tomllib.loads(group.attrs["config"]))
    old_hash = hashlib.sha256(
        json.dumps(old, sort_keys=True, separators=(",", ":")).encode()
    ).hexdigest()
    group.attrs.update({"config": _old_toml(old), "config_hash": old_hash})
    for name in ("progress.json", "summary.json"):
        path = out / name
        if path.exists():
            data = json.loads(path.read_text())
            data["config_hash"] = old_hash
            if "config" in data:
                data["config"] = old
            path.write_text(json.dumps(data))
    return old_hash


TINY = EnsembleConfig(
    replicates=2,
    batch_size=1,
    forest=ForestConfig(trees=5),
    train=TrainConfig(trainer="sklearn"),
    predict=PredictConfig(engine="sklearn"),
)


@pytest.fixture(scope="module")
def tiny_inputs():
    from srgpu.data.inputs import prepare_inputs

    return prepare_inputs(TINY)


@pytest.fixture(scope="module")
def fresh_run(tmp_path_factory, tiny_inputs):
    from srgpu.run.ensemble import run_ensemble

    out = tmp_path_factory.mktemp("fresh") / "run"
    summary = run_ensemble(TINY, out=out, inputs=tiny_inputs)
    return out, summary


def _arrays(out: Path) -> dict[str, np.ndarray]:
    group = zarr.open_group(str(out / "ensemble.zarr"), mode="r")
    return {name: np.asarray(group[name][...]) for name in group.array_keys()}


def test_old_store_opens_with_the_translated_config(fresh_run, tmp_path):
    from srgpu.config_diff import stored_config
    from srgpu.results import open_run

    out = tmp_path / "old"
    shutil.copytree(fresh_run[0], out)
    old_hash = _rewrite_as_old(out)
    assert 'train_on = "auto"' in zarr.open_group(str(out / "ensemble.zarr")).attrs["config"]
    assert old_hash != TINY.hash()
    run = open_run(out)
    assert run.config == TINY and run.config.train.trainer == "sklearn"
    assert stored_config(out / "ensemble.zarr") == TINY


def test_complete_old_store_reopens_unchanged(fresh_run, tiny_inputs, tmp_path):
    """Rerunning the same run on a store the old code finished: the store and summary are
    kept as they are (no rebuild), the summary's numbers come back."""
    from srgpu.run.ensemble import run_ensemble

    out = tmp_path / "old"
    shutil.copytree(fresh_run[0], out)
    old_hash = _rewrite_as_old(out)
    before = (out / "summary.json").read_text()
    notes: list[str] = []
    summary = run_ensemble(TINY, out=out, inputs=tiny_inputs, on_notice=notes.append)
    assert notes == [] and (out / "summary.json").read_text() == before
    assert summary["config_hash"] == old_hash
    assert summary["fluxes"] == json.loads(json.dumps(fresh_run[1]["fluxes"]))


def test_partial_old_store_resumes_to_the_same_arrays(fresh_run, tiny_inputs, tmp_path):
    from srgpu.run.ensemble import run_ensemble

    out = tmp_path / "old"
    first = run_ensemble(TINY, out=out, inputs=tiny_inputs, max_batches=1)
    assert first == {"complete": False, "batches_done": 1, "batches": 2}
    _rewrite_as_old(out)
    notes: list[str] = []
    summary = run_ensemble(TINY, out=out, inputs=tiny_inputs, on_notice=notes.append)
    assert any("resuming" in n for n in notes)
    assert summary["config_hash"] == TINY.hash()  # the summary is written by the new code
    fresh, resumed = _arrays(fresh_run[0]), _arrays(out)
    assert fresh.keys() == resumed.keys()
    for name, values in fresh.items():
        assert np.array_equal(values, resumed[name], equal_nan=values.dtype.kind == "f"), name


def test_old_store_with_another_config_names_the_change(fresh_run, tiny_inputs, tmp_path):
    from srgpu.run.ensemble import run_ensemble

    out = tmp_path / "old"
    shutil.copytree(fresh_run[0], out)
    _rewrite_as_old(out)
    other = TINY.replace(train=TrainConfig(trainer="numba"))
    with pytest.raises(StoreError, match=r"different config \(train\.trainer sklearn -> numba\)"):
        run_ensemble(other, out=out, inputs=tiny_inputs)


def test_readme_stage_tables_are_the_defaults():
    """The README's ``[train]``/``[predict]`` block parses and states the defaults."""
    text = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    block = text.split("```toml\n[train]", 1)[1].split("```", 1)[0]
    cfg = EnsembleConfig.from_dict(tomllib.loads("[train]" + block))
    assert (cfg.train, cfg.predict) == (TrainConfig(), PredictConfig())
    for table in STAGES.values():
        line = next(ln for ln in block.splitlines() if ln.startswith(table.implementation))
        assert all(name in line for name in ("auto", *table.devices)), line
