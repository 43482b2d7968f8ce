"""Mutation testing of the modules that make srgpu's numbers (issue 21, deliver 4).

Runs mutmut 3 on one module at a time in a scratch copy of the working tree (the repository's
own files are never modified), restricted to the functions that make the numbers and to the
tests about them, then writes the module's counts into ``tests/mutation/results.json``.

    python tests/mutation/run.py stats            # one module
    python tests/mutation/run.py all              # every module in MODULES
    python tests/mutation/run.py --list           # the modules, their functions and tests
    python tests/mutation/run.py stats --survivors   # print the surviving mutants' diffs

Equivalent mutants (a mutation that cannot change any result) are listed with the reason in
``tests/mutation/equivalent.json``; they are counted as ``equivalent``, not as survivors.

The numba kernels are mutated as plain Python: the scratch copy drops the ``@njit`` decorators
of the functions named in ``strip_njit`` (mutmut does not mutate decorated functions)
and the run sets ``NUMBA_DISABLE_JIT=1``; the tests about the leaf sum use small forests so the
interpreted kernel finishes quickly.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
RESULTS = REPO / "tests" / "mutation" / "results.json"
EQUIVALENT = REPO / "tests" / "mutation" / "equivalent.json"

_NO_PREFETCH = (
    "\n\ndef _prefetch(arr, idx):  # mutation run: the intrinsic has no plain-Python form\n"
    "    return None\n"
)
"""Appended to the scratch copy of ``predictive_kernels.py``: its ``_prefetch`` (a cache hint,
no effect on results) is an LLVM intrinsic that cannot run with ``NUMBA_DISABLE_JIT=1``."""

_WEIGHT_KERNELS = (
    "build_tables",
    "apply_rows",
    "_scatter",
    "_scatter_oob",
    "_add_leaf",
    "_row_weights",
    "quantiles_of_weights",
    "mad_of_weights",
    "_compact_and_clear",
)
"""The kernels of ``predictive_kernels.py`` that make the numbers of the pooled weights,
quantiles and MAD: the leaf tables, the records' leaves, the weight scatters (all or in-bag
members; out-of-bag members), the leaf's adds they share (``_add_leaf``: its chunks of members,
the tagged offset) and the choice between them, the weighted quantiles and MAD, the scalar
compaction. Not mutated: the AVX-512 compaction (``srgpu/forest/vector_compact.py``), an LLVM
intrinsic that cannot run as Python (``tests/test_vector_compact.py`` compares it with the
scalar one where it compiles).
Left out (the 2-core machine's time): the tile walks and the parallel drivers (``_tile_leaf``,
``_tile_all_leaves``, ``summary_kernel``, ``accumulate_kernel``,
``leaf_values_kernel``, ``moments_kernel``, ``_walk_tile2``), which reuse the engine's
mutated-and-tested walk."""

# entry -> the module's key, mutant-name patterns (fnmatch) and test files. The entry is the file
# to mutate, or any unique label with the file in "file" (two modules of one file: the fused walk
# and the other kernels of srgpu/forest/predictive_kernels.py). Optional: "pytest_args" (a
# narrower test selection), "strip_njit" (kernels mutated as plain Python), "env", "append" (text
# added to the scratch copy of the file, e.g. a plain-Python stand-in for a numba intrinsic),
# "timeout" (mutmut's timeout constant and multiplier; default 20 s and 10).
MODULES: dict[str, dict] = {
    "srgpu/run/stats.py": {
        "key": "stats",
        "patterns": ["srgpu.run.stats.*"],
        "tests": [
            "tests/test_stats.py",
            "tests/test_known_answers.py",
            "tests/test_mutation_kills.py",
        ],
    },
    "srgpu/run/sampling.py": {
        "key": "sampling",
        "patterns": ["srgpu.run.sampling.*"],
        "tests": ["tests/test_sampling.py", "tests/test_mutation_kills.py"],
    },
    "srgpu/grid.py": {
        "key": "grid_cell_area",
        # cell areas and bounds on the sphere (moved here from srgpu/run/stats.py)
        "patterns": ["srgpu.grid.*"],
        "tests": [
            "tests/test_stats.py",
            "tests/test_grid_areas.py",
            "tests/test_mutation_kills.py",
        ],
    },
    "srgpu/data/predictors.py": {
        "key": "predictors",
        # the kernels (the rest is file finding, static fields and error messages: static_fields
        # alone has ~400 mutants, too many for the 2-core machine this was measured on)
        "patterns": [
            "srgpu.data.predictors.x_annual_mean*",
            "srgpu.data.predictors.x_annual_sum*",
            "srgpu.data.predictors.x_growing_season*",
            "srgpu.data.predictors.x_gs_sum*",
            "srgpu.data.predictors.x_gs_mean*",
            "srgpu.data.predictors.x_cell_area*",
        ],
        "tests": [
            "tests/test_predictors.py",
            "tests/test_known_answers.py",
            "tests/test_mutation_kills.py",
        ],
        # the real 0.5-degree grids take ~1 min a mutant; the demo world covers the kernels
        "pytest_args": ["-k", "not real"],
    },
    "srgpu/data/predictors.py#static": {
        "key": "predictors_static_fields",
        "file": "srgpu/data/predictors.py",
        # land fraction, vegetation bins, bin shares and domain from the land-cover inputs, on
        # hand-made 2 x 3 grids (the pipeline's tests reach it through build_predictors too,
        # seconds a mutant: left out)
        "patterns": ["srgpu.data.predictors.x_static_fields*"],
        "tests": ["tests/test_static_fields_kills.py"],
    },
    "srgpu/data/observations.py": {
        "key": "observations_selection",
        "patterns": [
            "srgpu.data.observations.x_select_observations*",
            "srgpu.data.observations.x__flag_codes*",
            "srgpu.data.observations.x__canon_flag*",
            "srgpu.data.observations.x_srdb_veg_bins*",
            "srgpu.data.observations.x_is_evergreen_broadleaf*",
        ],
        "tests": [
            "tests/test_observations.py",
            "tests/test_observation_selection_edges.py",
            "tests/test_mutation_kills.py",
        ],
    },
    "srgpu/units.py": {
        "key": "units_conversion_factor",
        "patterns": ["srgpu.units.x_conversion_factor*", "srgpu.units.x__unit_tokens*"],
        "tests": ["tests/test_compare_models.py", "tests/test_mutation_kills.py"],
    },
    "srgpu/analysis/compare/scores.py": {
        "key": "compare_totals",
        "patterns": [
            "srgpu.analysis.compare.scores.x__weights*",
            "srgpu.analysis.compare.scores.x__ens_totals*",
            "srgpu.analysis.compare.scores.x_global_totals*",
            "srgpu.analysis.compare.scores.x__native_total*",
        ],
        "tests": [
            "tests/test_compare_scores.py",
            "tests/test_compare_totals_edges.py",
            "tests/test_known_answers.py",
            "tests/test_mutation_kills.py",
        ],
    },
    "srgpu/analysis/compare/models.py": {
        "key": "model_output_reader",
        "patterns": [
            "srgpu.analysis.compare.models.x_days_in_year*",
            "srgpu.analysis.compare.models.x_annualise*",
            "srgpu.analysis.compare.models.x_spherical_cell_area*",
            "srgpu.analysis.compare.models.x__area_and_land*",
            "srgpu.analysis.compare.models.x_soil_fluxes*",
        ],
        "tests": [
            "tests/test_compare_models.py",
            "tests/test_model_reader_edges.py",
            "tests/test_known_answers.py",
            "tests/test_mutation_kills.py",
        ],
        # the fast tests about the reader only: the comparison's totals, the demo pipeline and
        # the ensemble draws (4-16 s each) made the first run take ~17 s a mutant
        "pytest_args": [
            "-k",
            "not ensemble_draws and not compare_totals and not comparison_totals"
            " and not pipeline_predictors and not growing_season and not native_totals"
            " and not areacella_is_used",
        ],
    },
    "srgpu/forest/numba_engine.py": {
        "key": "forest_leaf_sum",
        # the walk (_walk), the scalar partition
        # and the scalar kernel (_predict_tile: a tile's body, _load_tile / _tile_setup: its
        # state, shared with the predictive kernels); the AVX-512 partition
        # (srgpu/forest/vector_split.py) and its kernel _predict_kernel_avx512 cannot run as
        # Python, so they are not mutated here
        "patterns": [
            "srgpu.forest.numba_engine.x__walk*",
            "srgpu.forest.numba_engine.x_partition_rows*",
            "srgpu.forest.numba_engine.x__predict_tile*",
            "srgpu.forest.numba_engine.x__load_tile*",
            "srgpu.forest.numba_engine.x__tile_setup*",
            "srgpu.forest.numba_engine.x__predict_kernel__mutmut*",
        ],
        "tests": ["tests/test_leaf_sum.py"],
        "strip_njit": [
            *("partition_rows", "_walk", "_load_tile", "_tile_setup"),
            *("_predict_tile", "_predict_kernel"),
        ],
        "env": {"NUMBA_DISABLE_JIT": "1"},
    },
    "srgpu/calibration.py": {
        "key": "calibration",
        "patterns": ["srgpu.calibration.*"],
        "tests": ["tests/test_calibration.py", "tests/test_calibration_edges.py"],
        # the demo world's held-out calibration trains 10 forests of 500 trees (minutes a
        # mutant); the known answers on small distributions cover every function
        "pytest_args": ["-k", "not demo"],
    },
    "srgpu/run/predictive.py": {
        "key": "predictive_pooling",
        # the whole run stage: predictive_batch/predictive_rows on a tiny hand-built batch
        # (2 forests of 6 trees a flux, 4 cells x 3 years), the pooling over replicates and
        # batches, the order statistics, the memory check and the summary block
        "patterns": ["srgpu.run.predictive.*"],
        "tests": ["tests/test_predictive_pooling.py", "tests/test_predictive_batch_kills.py"],
    },
    "srgpu/forest/fused.py": {
        "key": "fused_forests",
        # the fused walk's Python side: fuse() lays the leaf-moment tables out, predict_moments
        # prepares the rows and calls the kernel
        "patterns": ["srgpu.forest.fused.*"],
        "tests": ["tests/test_fused_walk_kills.py"],
        "env": {"NUMBA_DISABLE_JIT": "1"},
    },
    "srgpu/forest/predictive_kernels.py#fused": {
        "key": "fused_walk",
        "file": "srgpu/forest/predictive_kernels.py",
        # the walk that gives the forest mean and the two predictive moments, mutated as plain
        # Python (the tile loader it shares is the engine's, mutated with forest_leaf_sum)
        "patterns": [
            "srgpu.forest.predictive_kernels.x__walk_tile3*",
            "srgpu.forest.predictive_kernels.x_fused_kernel*",
            "srgpu.forest.predictive_kernels.x__fused_tile*",
        ],
        "tests": ["tests/test_fused_walk_kills.py"],
        "strip_njit": ["_walk_tile3", "_fused_tile", "fused_kernel"],
        "env": {"NUMBA_DISABLE_JIT": "1"},
        "append": _NO_PREFETCH,
    },
    "srgpu/forest/predictive.py": {
        "key": "predictive_forest",
        # the quantile regression forest's Python side: leaf tables, moments, summaries, weight
        # accumulation, quantregForest's samples, held-out calibration (kernels compiled)
        "patterns": ["srgpu.forest.predictive.*"],
        "tests": [
            "tests/test_predictive.py",
            "tests/test_predictive_kills.py",
            "tests/test_predictive_kernels_kills.py",
        ],
    },
    "srgpu/forest/predictive_kernels.py#weights": {
        "key": "predictive_kernels",
        "file": "srgpu/forest/predictive_kernels.py",
        # the kernels that make the quantiles and MAD: leaf tables, leaves, weight scatter,
        # weighted quantiles and MAD (mutated as plain Python, on the tiny forests)
        "patterns": [f"srgpu.forest.predictive_kernels.x_{name}*" for name in _WEIGHT_KERNELS],
        "tests": ["tests/test_predictive_kernels_kills.py", "tests/test_predictive_kills.py"],
        "strip_njit": list(_WEIGHT_KERNELS),
        "env": {"NUMBA_DISABLE_JIT": "1"},
        "append": _NO_PREFETCH,
        # interpreted, every test that reaches the kernels costs each of their mutants its run
        # time (~10 CPU s for tests/test_predictive.py and test_predictive_kills.py: 19 s a
        # mutant on the loaded 2-core machine, over 2 hours for the 429 mutants); the focused
        # kill tests (sklearn-grown forests of 48 records and 12 + 7 trees, leaves by sklearn's
        # apply, weights by brute force) and the by-hand quantile cases take ~1.5 CPU s
        "pytest_args": [
            "-k",
            "kernels_kills or summary_of_weights or linear_rule or levels_at_the_ends",
        ],
        # (constant, multiplier): a mutant's tests get (their time + 3 s) x 4 wall seconds (the
        # default 20 s x 10 let each endless-loop mutant of the MAD walk run 200 s)
        "timeout": (3.0, 4.0),
    },
}

KILLED = {1, 3, -24, 24, 36, 152, 255, -11, -9, 37}  # test failure, segfault, timeout...
SURVIVED = {0, 5}  # tests pass (0) or no test ran (5)


def _key_to_file(key: str) -> str:
    """The MODULES entry of the module ``key``."""
    for f, spec in MODULES.items():
        if spec["key"] == key:
            return f
    raise SystemExit(f"unknown module {key!r}; known: {[s['key'] for s in MODULES.values()]}")


def _tracked_files() -> list[str]:
    out = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return [line for line in out.splitlines() if line]


def _strip_njit(path: Path, names: list[str]) -> None:
    text = path.read_text()
    for name in names:
        text, n = re.subn(rf"@njit\([^)]*\)\n(def {name}\()", r"\1", text)
        if n != 1:
            raise SystemExit(f"could not drop @njit of {name} in {path}")
    path.write_text(text)


def _setup(workdir: Path, file: str, spec: dict) -> None:
    if workdir.exists():
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True)
    for rel in _tracked_files():
        if rel.startswith(("srgpu/", "tests/")) or rel == "pyproject.toml":
            dst = workdir / rel
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / rel, dst)
    if spec.get("strip_njit"):
        _strip_njit(workdir / file, spec["strip_njit"])
    if spec.get("append"):
        with open(workdir / file, "a") as fh:
            fh.write(spec["append"])
    # tests find the real data at <repo>/../shared/data; mutmut runs them from workdir/mutants
    shared = REPO.parent / "shared"
    if shared.exists():
        (workdir / "shared").symlink_to(shared)
    _write_config(workdir, file, spec)


def _write_config(workdir: Path, file: str, spec: dict) -> None:
    """The scratch copy's pyproject.toml with a [tool.mutmut] section for this module."""
    base = (REPO / "pyproject.toml").read_text()
    cfg = "\n".join(
        [
            "",
            "[tool.mutmut]",
            'source_paths = ["srgpu"]',
            f'only_mutate = ["{file}"]',
            "pytest_add_cli_args_test_selection = "
            + json.dumps([t for t in spec["tests"] if (REPO / t).exists()]),
            "pytest_add_cli_args = "
            + json.dumps(
                ["-p", "no:cacheprovider", "-q", "-m", "not gpu and not slow"]
                + spec.get("pytest_args", [])
            ),
            "use_git_change_detection = false",
            # fork each mutant's worker from a clean server, not from the process that ran the
            # tests once (its numba/OpenMP threads can deadlock a forked child)
            'process_isolation = "forkserver"',
            f"timeout_multiplier = {spec.get('timeout', (20.0, 10.0))[1]}",
            f"timeout_constant = {spec.get('timeout', (20.0, 10.0))[0]}",
            "",
        ]
    )
    (workdir / "pyproject.toml").write_text(base + cfg)


def _results(workdir: Path, file: str, spec: dict) -> dict[str, int]:
    import fnmatch

    meta = json.loads((workdir / "mutants" / (file + ".meta")).read_text())
    codes = meta["exit_code_by_key"]
    equivalent = (
        json.loads(EQUIVALENT.read_text()).get(spec["key"], {}) if EQUIVALENT.exists() else {}
    )
    counts = {"killed": 0, "survived": 0, "equivalent": 0, "not_run": 0}
    survivors = []
    for name, code in sorted(codes.items()):
        if not any(fnmatch.fnmatch(name, p) for p in spec["patterns"]):
            continue
        short = name.split(".")[-1]
        if code is None:
            counts["not_run"] += 1
        elif code in SURVIVED or code == 33:
            if short in equivalent:
                counts["equivalent"] += 1
            else:
                counts["survived"] += 1
                survivors.append(name)
        else:
            counts["killed"] += 1
    counts["survivors"] = survivors
    return counts


def _refresh_tests(workdir: Path) -> None:
    """Copy the current tests into an existing mutation workdir (for --rerun-survivors)."""
    for rel in _tracked_files():
        if rel.startswith("tests/"):
            for root in (workdir, workdir / "mutants"):
                dst = root / rel
                dst.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(REPO / rel, dst)
    stats_file = workdir / "mutants" / "mutmut-stats.json"
    if stats_file.exists():
        stats_file.unlink()  # new tests: collect again which tests reach which function


def run_module(
    entry: str, *, workdir_root: Path, jobs: int, show: bool, rerun: bool = False
) -> dict:
    spec = MODULES[entry]
    file = spec.get("file", entry)
    workdir = workdir_root / spec["key"]
    patterns = spec["patterns"]
    if rerun:  # killed mutants stay killed when tests are added: run the others again
        _refresh_tests(workdir)
        _write_config(workdir, file, spec)
        patterns = _results(workdir, file, spec)["survivors"] or patterns
    else:
        _setup(workdir, file, spec)
    env = dict(os.environ)
    env.update(spec.get("env", {}))
    env.pop("PYTHONPATH", None)
    mutmut = [sys.executable, "-m", "mutmut"]
    t0 = time.monotonic()
    proc = subprocess.run(
        [*mutmut, "run", "--max-children", str(jobs), *patterns],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
    )
    seconds = time.monotonic() - t0
    (workdir / "mutmut-run.log").write_text(proc.stdout + proc.stderr)
    if not (workdir / "mutants" / (file + ".meta")).exists():
        print(proc.stdout[-4000:], proc.stderr[-4000:])
        raise SystemExit(f"mutmut produced no results for {file} (log: {workdir}/mutmut-run.log)")
    counts = _results(workdir, file, spec)
    counts["seconds"] = round(seconds)
    if show:
        for name in counts["survivors"]:
            print(mutant_diff(workdir, file, name))
    return counts


@functools.lru_cache(maxsize=4)
def _functions(path: Path) -> dict[str, str]:
    """Source of every function of mutmut's mutated module (original and mutants)."""
    lines = path.read_text().splitlines()
    starts = [i for i, line in enumerate(lines) if re.match(r"\s*def x", line)]
    funcs = {}
    for k, i in enumerate(starts):
        end = starts[k + 1] if k + 1 < len(starts) else len(lines)
        name = re.match(r"\s*def (\w+)", lines[i]).group(1)
        funcs[name] = "\n".join(lines[i:end])
    return funcs


def mutant_diff(workdir: Path, file: str, name: str) -> str:
    """The diff of one mutant against the original function (read from mutmut's mutated copy
    of the module, faster than ``mutmut show``)."""
    import difflib

    funcs = _functions(workdir / "mutants" / file)
    short = name.split(".")[-1]
    orig = short.rsplit("__mutmut_", 1)[0] + "__mutmut_orig"
    a, b = funcs[orig].splitlines(), funcs[short].splitlines()
    body = [
        line
        for line in difflib.unified_diff(a, b, lineterm="", n=0)
        if line[:1] in "+-" and not line.startswith(("+++", "---"))
    ]
    return f"# {name}\n" + "\n".join(body[:6])


def _commit() -> str:
    return subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=REPO, check=True, capture_output=True, text=True
    ).stdout.strip()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("module", nargs="*", help="module keys, or 'all'")
    ap.add_argument("--list", action="store_true")
    ap.add_argument("--survivors", action="store_true", help="print surviving mutants")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "srgpu-mutation")
    ap.add_argument("--no-save", action="store_true", help="do not update results.json")
    ap.add_argument(
        "--collect", action="store_true", help="only recount the modules' existing workdirs"
    )
    ap.add_argument(
        "--rerun-survivors",
        action="store_true",
        help="reuse the module's workdir: copy the current tests in, run only its survivors",
    )
    args = ap.parse_args(argv)
    if args.list or not args.module:
        for f, spec in MODULES.items():
            where = spec.get("file", f)
            print(f"{spec['key']:24s} {where}\n    {spec['patterns']}\n    {spec['tests']}")
        return 0
    files = list(MODULES) if args.module == ["all"] else [_key_to_file(k) for k in args.module]
    done = [MODULES[f]["key"] for f in files]
    import mutmut

    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {"modules": {}}
    for entry in files:
        file = MODULES[entry].get("file", entry)
        if args.collect:  # counts from the workdir's last run, timings kept
            spec = MODULES[entry]
            counts = _results(args.workdir / spec["key"], file, spec)
            old = results["modules"].get(spec["key"], {})
            results["modules"][spec["key"]] = {
                **old,
                "file": file,
                "killed": counts["killed"],
                "survived": counts["survived"],
                "equivalent": counts["equivalent"],
                "not_run": counts["not_run"],
            }
            print(spec["key"], results["modules"][spec["key"]], counts["survivors"])
            if args.survivors:  # their diffs, from the workdir's mutated copy
                for name in counts["survivors"]:
                    print(mutant_diff(args.workdir / spec["key"], file, name))
            continue
        counts = run_module(
            entry,
            workdir_root=args.workdir,
            jobs=args.jobs,
            show=args.survivors,
            rerun=args.rerun_survivors,
        )
        key = MODULES[entry]["key"]
        print(
            f"{key}: killed {counts['killed']}, survived {counts['survived']}, "
            f"equivalent {counts['equivalent']}, not run {counts['not_run']} "
            f"({counts['seconds']} s)"
        )
        for name in counts["survivors"]:
            print("   survivor", name)
        entry = {
            "file": file,
            "killed": counts["killed"],
            "survived": counts["survived"],
            "equivalent": counts["equivalent"],
            "not_run": counts["not_run"],
            "seconds": counts["seconds"],
            "runs_seconds": [counts["seconds"]],
            "commit": _commit(),  # HEAD when the counts were taken (tests from the work tree)
        }
        if args.rerun_survivors and key in results["modules"]:
            # seconds: the first run plus each rerun of the survivors, in order
            old = results["modules"][key]
            runs = [*old.get("runs_seconds", [old["seconds"]]), counts["seconds"]]
            entry.update(seconds=sum(runs), runs_seconds=runs)
        results["modules"][key] = entry
    results.update(tool="mutmut", version=mutmut.__version__, commit=_commit())
    if not args.no_save:
        if RESULTS.exists():  # another run may have written other modules meanwhile
            latest = json.loads(RESULTS.read_text())["modules"]
            results["modules"] = {**latest, **{k: results["modules"][k] for k in done}}
        RESULTS.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
