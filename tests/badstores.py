"""A corpus of damaged output directories and bad configurations (no data is committed).

:data:`PARTIAL_DAMAGE`: a run of 3 batches stopped after 2, then damaged between runs (chunks
deleted, flipped, truncated; progress fields edited; metadata deleted; links planted). Each
case says what the rerun of the same command must do: ``"repair"`` (exit 0, and the store is
bit for bit the uninterrupted one: replicate rows are pure functions of the seed) or
``"refuse"`` (exit 2, one line holding ``expect``, the store never marked complete; the line's
suggested fix, ``--overwrite``, then works).

:data:`COMPLETE_DAMAGE`: the same for a complete store (``summary.json`` deleted or corrupt,
attributes lost, a row chunk flipped, a gridded result damaged).

:data:`BAD_TOML` / :data:`BAD_FLAGS`: configuration values and flags of the wrong type or out
of range; each must be refused with exit 2 and one line naming the key, before anything is
written.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

FLAGS = ("--replicates", "3", "--trees", "5", "--batch-size", "1")
"""The run of the store corpus: the demo world, 3 replicates in 3 batches."""


@dataclass(frozen=True)
class StoreDamage:
    """One damage done to ``OUT`` between runs. ``outcome``: ``"repair"`` or ``"refuse"``;
    ``expect``: substrings of the one-line error (refuse) or of a notice (repair)."""

    name: str
    damage: Callable[[Path], None]
    outcome: str
    expect: tuple[str, ...]


def _slot(out: Path) -> str:
    return json.loads((out / "progress.json").read_text())["moments_slot"]


def _chunk(out: Path, rel: str) -> Path:
    rel = rel.replace("{slot}", _slot(out)) if "{slot}" in rel else rel
    path = out / rel
    assert path.is_file(), path
    return path


def delete(rel: str):
    def damage(out: Path) -> None:
        _chunk(out, rel).unlink()

    return damage


def flip(rel: str, *, at: int = 12, n: int = 8):
    def damage(out: Path) -> None:
        path = _chunk(out, rel)
        data = bytearray(path.read_bytes())
        for i in range(at, min(at + n, len(data))):
            data[i] ^= 0xFF
        path.write_bytes(bytes(data))

    return damage


def truncate(rel: str):
    def damage(out: Path) -> None:
        path = _chunk(out, rel)
        path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])

    return damage


def progress_edit(**changes):
    def damage(out: Path) -> None:
        path = out / "progress.json"
        record = json.loads(path.read_text())
        record.update(changes)
        path.write_text(json.dumps(record))

    return damage


def progress_text(text: str):
    def damage(out: Path) -> None:
        (out / "progress.json").write_text(text)

    return damage


def remove_tree(rel: str):
    def damage(out: Path) -> None:
        shutil.rmtree(out / rel)

    return damage


def link_inside(rel: str):
    """Replace a directory of the store by a symbolic link to a copy of it elsewhere."""

    def damage(out: Path) -> None:
        target = out / rel
        elsewhere = out.parent / f"elsewhere-{target.name}"
        shutil.copytree(target, elsewhere)
        shutil.rmtree(target)
        target.symlink_to(elsewhere, target_is_directory=True)

    return damage


def grow_array(variable: str, axis: int, by: int):
    """Edit an array's metadata: one axis ``by`` longer (the chunks stay)."""

    def damage(out: Path) -> None:
        meta = out / "ensemble.zarr" / variable / "zarr.json"
        data = json.loads(meta.read_text())
        data["shape"][axis] += by
        meta.write_text(json.dumps(data))

    return damage


def drop_attrs(variable: str):
    def damage(out: Path) -> None:
        meta = out / "ensemble.zarr" / variable / "zarr.json"
        data = json.loads(meta.read_text())
        data["attributes"] = {}
        meta.write_text(json.dumps(data))
        consolidated = out / "ensemble.zarr" / "zarr.json"
        root = json.loads(consolidated.read_text())
        meta_c = root.get("consolidated_metadata", {}).get("metadata", {})
        if variable in meta_c:
            meta_c[variable]["attributes"] = {}
        consolidated.write_text(json.dumps(root))

    return damage


PARTIAL_DAMAGE: tuple[StoreDamage, ...] = (
    StoreDamage(
        "map_chunk_deleted",
        delete("ensemble.zarr/SR_replicate_map/c/0/0"),
        "repair",
        ("SR_replicate_map", "c/0/0", "recomputing batch 0"),
    ),
    StoreDamage(
        "map_chunk_bytes_flipped",
        flip("ensemble.zarr/HR_replicate_map/c/1/0"),
        "repair",
        ("HR_replicate_map", "c/1/0", "damaged"),
    ),
    StoreDamage(
        "validation_chunk_truncated",
        truncate("ensemble.zarr/validation/c/0/0/0"),
        "repair",
        ("validation", "c/0/0/0"),
    ),
    StoreDamage(
        "done_flag_chunk_deleted",
        delete("ensemble.zarr/replicate_done/c/1"),
        "repair",
        ("replicate_done", "c/1"),
    ),
    StoreDamage(
        "total_chunk_flipped",
        flip("ensemble.zarr/AR_replicate_total/c/0/0", at=9, n=3),
        "repair",
        ("AR_replicate_total", "c/0/0"),
    ),
    StoreDamage(
        "moments_chunk_deleted",
        delete("work.zarr/{slot}_SR_mean/c/0"),
        "refuse",
        ("work.zarr/", "_SR_mean chunk c/0", "--overwrite"),
    ),
    StoreDamage(
        "moments_chunk_flipped",
        flip("work.zarr/{slot}_HR_m2/c/0"),
        "refuse",
        ("_HR_m2 chunk c/0", "damaged", "--overwrite"),
    ),
    StoreDamage(
        "batches_done_edited_upward",
        progress_edit(batches_done=3),
        "refuse",
        ("progress.json", "replicates_done", "--overwrite"),
    ),
    StoreDamage(
        "batches_done_beyond_the_run",
        progress_edit(batches_done=9, replicates_done=9),
        "refuse",
        ("progress.json", "batches_done 9", "--overwrite"),
    ),
    StoreDamage(
        "complete_on_a_partial_store",
        progress_edit(complete=True),
        "refuse",
        ("progress.json", "complete with 2 of 3", "--overwrite"),
    ),
    StoreDamage(
        "progress_field_not_an_integer",
        progress_edit(batches_done="2"),
        "refuse",
        ("progress.json", "'batches_done'", "--overwrite"),
    ),
    StoreDamage(
        "progress_field_a_float",
        progress_edit(replicates_done=2.5),
        "refuse",
        ("progress.json", "'replicates_done'", "--overwrite"),
    ),
    StoreDamage(
        "progress_slot_unknown",
        progress_edit(moments_slot="c"),
        "refuse",
        ("progress.json", "'moments_slot'", "--overwrite"),
    ),
    StoreDamage(
        "progress_inputs_missing",
        progress_edit(inputs=None),
        "refuse",
        ("progress.json", "'inputs'", "--overwrite"),
    ),
    StoreDamage(
        "progress_not_json",
        progress_text('{"config_hash": "abc", "batches'),
        "refuse",
        ("progress.json", "unreadable", "--overwrite"),
    ),
    StoreDamage(
        "progress_a_list",
        progress_text("[1, 2, 3]"),
        "refuse",
        ("progress.json", "not a JSON object", "--overwrite"),
    ),
    StoreDamage(
        "store_deleted",
        remove_tree("ensemble.zarr"),
        "refuse",
        ("ensemble.zarr", "--overwrite"),
    ),
    StoreDamage(
        "work_store_deleted",
        remove_tree("work.zarr"),
        "refuse",
        ("work.zarr", "missing", "--overwrite"),
    ),
    StoreDamage(
        "array_metadata_deleted",
        delete("ensemble.zarr/SR_replicate_map/zarr.json"),
        "refuse",
        ("SR_replicate_map", "--overwrite"),
    ),
    StoreDamage(
        "array_metadata_corrupt",
        truncate("ensemble.zarr/validation/zarr.json"),
        "refuse",
        ("validation", "--overwrite"),
    ),
    StoreDamage(
        "array_cells_edited",
        grow_array("SR_replicate_map", 1, 5),
        "refuse",
        ("SR_replicate_map", "shape", "--overwrite"),
    ),
    StoreDamage(
        "array_replicates_edited",
        grow_array("validation", 0, 2),
        "refuse",
        ("validation", "shape", "--overwrite"),
    ),
    StoreDamage(
        "link_planted_inside_the_store",
        link_inside("ensemble.zarr/SR_replicate_map/c"),
        "refuse",
        ("symbolic link", "SR_replicate_map", "--overwrite"),
    ),
    StoreDamage(
        "work_store_replaced_by_a_link",
        link_inside("work.zarr"),
        "refuse",
        ("work.zarr", "symbolic link", "--overwrite"),
    ),
)


COMPLETE_DAMAGE: tuple[StoreDamage, ...] = (
    StoreDamage(
        "summary_deleted",
        lambda out: (out / "summary.json").unlink(),
        "repair",
        ("rebuilt summary.json",),
    ),
    StoreDamage(
        "summary_corrupt",
        lambda out: (out / "summary.json").write_text('{"fluxes": {"SR": '),
        "repair",
        ("rebuilt summary.json",),
    ),
    StoreDamage(
        "final_attributes_lost",
        drop_attrs("AR_median"),
        "repair",
        ("restored the attributes of AR_median",),
    ),
    StoreDamage(
        "row_chunk_flipped_after_completion",
        flip("ensemble.zarr/SR_replicate_map/c/2/0"),
        "repair",
        ("SR_replicate_map", "c/2/0", "recomputing batch 2"),
    ),
    StoreDamage(
        "gridded_result_damaged",
        flip("ensemble.zarr/SR_mean/c/0/0/0"),
        "refuse",
        ("SR_mean", "damaged", "--overwrite"),
    ),
    StoreDamage(
        "total_chunk_deleted_after_completion",
        delete("ensemble.zarr/HR_replicate_total/c/1/0"),
        "repair",
        ("HR_replicate_total", "recomputing batch 1"),
    ),
    StoreDamage(
        "complete_flag_with_missing_batches",
        progress_edit(batches_done=2, replicates_done=2),
        "refuse",
        ("progress.json", "complete with 2 of 3", "--overwrite"),
    ),
)


# ------------------------------------------------------------------------ configurations
BAD_TOML: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("forest_not_a_table", "forest = 3\n", ("forest", "table")),
    ("trees_a_string", '[forest]\ntrees = "5"\n', ("trees", "'5'", "integer")),
    ("seed_a_string", 'seed = "abc"\n', ("seed", "'abc'")),
    ("replicates_a_float", "replicates = 2.7\n", ("replicates", "2.7", "integer")),
    ("replicates_a_bool", "replicates = true\n", ("replicates", "True", "integer")),
    ("bootstrap_a_string", '[forest]\nbootstrap = "no"\n', ("bootstrap", "'no'", "true or false")),
    ("bootstrap_an_int", "[forest]\nbootstrap = 1\n", ("bootstrap", "true or false")),
    ("distance_nan", "site_max_distance_km = nan\n", ("site_max_distance_km", "nan")),
    ("distance_inf", "site_max_distance_km = inf\n", ("site_max_distance_km", "inf")),
    ("distance_negative", "site_max_distance_km = -5.0\n", ("site_max_distance_km", "-5.0")),
    ("seed_negative", "seed = -1\n", ("seed", "-1", ">= 0")),
    ("replicates_huge", "replicates = 1000000000\n", ("replicates", "1000000000")),
    ("batch_size_zero", "batch_size = 0\n", ("batch_size", "0")),
    ("train_fraction_one", "train_fraction = 1.0\n", ("train_fraction", "1.0")),
    ("par_fraction_string", 'par_fraction = "half"\n', ("par_fraction", "'half'")),
    ("tile_rows_float", "tile_rows = 1e5\n", ("tile_rows", "100000.0")),
    ("sampling_unknown", 'sampling = "random"\n', ("sampling", "'random'", "'area'")),
    ("sampling_a_number", "sampling = 3\n", ("sampling", "3")),
    ("engine_a_list", '[predict]\nengine = ["numba"]\n', ("predict.engine", "['numba']")),
    ("device_unknown", '[train]\ndevice = "tpu"\n', ("train.device", "'tpu'", "'gpu'")),
    ("train_not_a_table", 'train = "gpu"\n', ("train", "table")),
    (
        "pair_sklearn_on_gpu",
        '[train]\ndevice = "gpu"\ntrainer = "sklearn"\n',
        ("train.trainer = 'sklearn'", "train.device = 'gpu'", "'cuml'"),
    ),
    (
        "pair_numba_engine_on_gpu",
        '[predict]\ndevice = "gpu"\nengine = "numba"\n',
        ("predict.engine = 'numba'", "predict.device = 'gpu'", "'nvforest'"),
    ),
    (
        "old_and_new_spelling",
        'engine = "numba"\n[predict]\nengine = "sklearn"\n',
        ("engine (old spelling)", "predict.engine", "[predict]"),
    ),
    ("drivers_a_number", "drivers = 5\n", ("drivers", "5")),
    ("drivers_list_of_numbers", "drivers = [1, 2]\n", ("drivers", "[1, 2]")),
    ("srdb_a_number", "srdb = 3\n", ("srdb", "3")),
    ("srdb_empty", 'srdb = ""\n', ("srdb", "''")),
    ("predictors_not_a_table", 'predictors = "MAT"\n', ("predictors", "table")),
    ("predictor_set_a_string", '[predictors]\nSR = "MAT"\n', ("predictors.SR", "'MAT'")),
    ("variables_value_a_number", "[variables]\ntas = 3\n", ("variables.tas", "3")),
    ("mtry_not_integer", "[forest]\nmtry = 2.5\n", ("mtry", "2.5")),
    ("trainer_unknown", '[train]\ntrainer = "xgboost"\n', ("train.trainer", "'xgboost'")),
    ("nodesize_zero", "[forest]\nnodesize = 0\n", ("nodesize", "0")),
    ("unknown_key", "replicate = 3\n", ("unknown key", "replicate")),
    ("not_toml", "replicates = = 3\n", ("not valid TOML",)),
)
"""(name, TOML text, substrings of the one-line error)."""

BAD_FLAGS: tuple[tuple[str, tuple[str, ...], tuple[str, ...]], ...] = (
    ("seed_negative", ("ensemble", "--seed", "-1"), ("seed", "-1")),
    ("scheduler_garbage", ("ensemble", "--scheduler", "not an address"), ("scheduler",)),
    ("replicates_huge", ("ensemble", "--replicates", "1000000000"), ("replicates", "100000")),
    ("replicates_zero", ("ensemble", "--replicates", "0"), ("replicates", "0")),
    ("workers_negative", ("ensemble", "--workers", "-2"), ("workers", "-2")),
    ("batch_size_zero", ("ensemble", "--batch-size", "0"), ("batch_size", "0")),
    ("trees_zero", ("ensemble", "--trees", "0"), ("trees", "0")),
    ("sampling_unknown", ("ensemble", "--sampling", "random"), ("sampling", "'random'")),
    ("device_unknown", ("ensemble", "--device", "tpu"), ("--device", "'tpu'")),
    ("train_device_unknown", ("ensemble", "--train-device", "tpu"), ("--train-device", "'tpu'")),
    ("trainer_unknown", ("ensemble", "--trainer", "xgboost"), ("--trainer", "'xgboost'")),
    ("engine_unknown", ("ensemble", "--engine", "onnx"), ("--engine", "'onnx'")),
    (
        "pair_sklearn_on_gpu",
        ("ensemble", "--trainer", "sklearn", "--train-device", "gpu"),
        ("train.trainer = 'sklearn'", "train.device = 'gpu'"),
    ),
    (
        "pair_numba_engine_on_gpu",
        ("ensemble", "--engine", "numba", "--device", "gpu"),
        ("predict.engine = 'numba'", "predict.device = 'gpu'"),
    ),
    ("select_one_fold", ("select", "--folds", "1"), ("--folds", "folds = 1")),
    ("select_zero_repeats", ("select", "--repeats", "0"), ("--repeats", "repeats = 0")),
    ("explain_negative_rows", ("explain", "{out}", "--rows", "-5"), ("--rows", "rows = -5")),
    ("explain_one_point", ("explain", "{out}", "--points", "1"), ("--points", "points = 1")),
    (
        "fetch_version_escapes",
        ("fetch", "srdb", "--from", "{srdb}", "--version", "x/../../escaped"),
        ("--version", "x/../../escaped"),
    ),
)
"""(name, CLI arguments, substrings of the one-line error); ``{out}`` is a directory and
``{srdb}`` a valid SRDB file."""


def one_error_line(result, *expect: str) -> str:
    """Assert a CLI result failed as srgpu promises (exit 2, one ``srgpu: error:`` line on
    stderr, no traceback) and that the line holds every ``expect`` text; return the line."""
    err = result.stderr
    assert result.exit_code == 2, (result.exit_code, err, result.exception)
    assert "Traceback" not in result.output + err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("srgpu: error: "), lines[0]
    for text in expect:
        assert text in lines[0], (text, lines[0])
    return lines[0]
