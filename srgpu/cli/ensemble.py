"""``srgpu ensemble``: run (or resume) the replicate random-forest ensemble."""

from __future__ import annotations

import contextlib
import dataclasses
import signal
import sys
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import (
    Progress,
)
from rich.table import Table

from srgpu.cli._common import console, handle_errors
from srgpu.cli._inputs import (
    FLAG_EXAMPLES,
    apply_observation_flags,
    check_same_config,
    clear_old_outputs,
    prepare_with_hints,
    print_input_counts,
    refuse_extra_arguments,
)
from srgpu.config import (
    PARAMETERS,
    TRAINED_FLUXES,
    EnsembleConfig,
    ForestConfig,
    check_param,
)
from srgpu.constants import PAPER_TOTALS_PG
from srgpu.errors import ConfigError


def _parse_pairs(values: list[str] | None, flag: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for v in values or []:
        if "=" not in v:
            raise ConfigError(f"{flag} {v!r}: expected {FLAG_EXAMPLES.get(flag, 'NAME=VALUE')}")
        k, val = v.split("=", 1)
        out[k.strip()] = val.strip()
    return out


def build_config(
    *,
    config_file: Path | None,
    srdb: str | None = None,
    drivers: list[str] | None = None,
    vegetation: str | None = None,
    replicates: int | None = None,
    trees: int | None = None,
    seed: int | None = None,
    sampling: str | None = None,
    predictors: list[str] | None = None,
    variables: list[str] | None = None,
    device: str | None = None,
    train_device: str | None = None,
    predict_device: str | None = None,
    trainer: str | None = None,
    engine: str | None = None,
    batch_size: int | None = None,
    predictive: str | None = None,
    membership: str | None = None,
    backend: str | None = None,
    train_on: str | None = None,
    notice=None,
) -> EnsembleConfig:
    """Defaults, then the TOML file, then the flags (a flag wins).

    ``device`` sets both stages' devices, ``train_device``/``predict_device`` one stage's (they
    win over ``device``). ``backend`` and ``train_on`` are the deprecated spellings of
    ``predict_device`` and ``train_device``; ``notice`` receives the one-line deprecation notes
    (of these flags and of old keys in the TOML file; default: standard error)."""
    if notice is None:

        def notice(line: str) -> None:
            print(f"srgpu: {line}", file=sys.stderr)

    cfg = EnsembleConfig.from_toml(config_file, notice=notice) if config_file else EnsembleConfig()
    for old, new, value in (
        ("--backend", "--predict-device", backend),
        ("--train-on", "--train-device", train_on),
    ):
        if value is None:
            continue
        notice(f"{old} is deprecated: use {new} (or --device for both stages)")
        if (predict_device if old == "--backend" else train_device) is not None:
            raise ConfigError(f"{old} and {new}: give only {new}")
    predict_device = predict_device if backend is None else backend
    train_device = train_device if train_on is None else train_on
    changes: dict = {}
    if srdb is not None:
        changes["srdb"] = srdb
    if drivers:
        changes["drivers"] = tuple(drivers)
    if vegetation is not None:
        changes["vegetation"] = vegetation
    for name, value in (
        ("replicates", replicates),
        ("seed", seed),
        ("sampling", sampling),
        ("batch_size", batch_size),
        ("predictive", predictive),
        ("predictive_membership", membership),
    ):
        if value is not None:
            changes[name] = check_param(name, value)  # names the flag in the message
    if predictors:
        merged = dict(cfg.predictors)
        for flux, names in _parse_pairs(predictors, "--predictors").items():
            if flux not in TRAINED_FLUXES:
                raise ConfigError(f"--predictors {flux}=...: unknown flux; expected SR or HR")
            merged[flux] = tuple(n.strip() for n in names.split(",") if n.strip())
        changes["predictors"] = tuple(sorted(merged.items()))
    if variables:
        merged_vars = dict(cfg.variables)
        merged_vars.update(_parse_pairs(variables, "--var"))
        changes["variables"] = tuple(sorted(merged_vars.items()))
    if device is not None:
        PARAMETERS["train.device"].check("device", device, source="--device")  # both stages
    stages = {
        "train": {"device": device if train_device is None else train_device, "trainer": trainer},
        "predict": {
            "device": device if predict_device is None else predict_device,
            "engine": engine,
        },
    }
    for stage, flags in stages.items():
        flags = {k: v for k, v in flags.items() if v is not None}
        for key, value in flags.items():
            check_param(f"{stage}.{key}", value)  # names the flag in the message
        if flags:
            changes[stage] = dataclasses.replace(getattr(cfg, stage), **flags)
    forest = cfg.forest
    if trees is not None:
        check_param("forest.trees", trees)
    if trees is not None:
        forest = ForestConfig(**{**forest.__dict__, "trees": trees})
    elif cfg.is_demo and (srdb is None and not drivers) and config_file is None:
        from srgpu.config import DEMO_TREES

        forest = ForestConfig(**{**forest.__dict__, "trees": DEMO_TREES})
    changes["forest"] = forest
    return cfg.replace(**changes)


def _num(value, fmt: str = ".2f") -> str:
    """A number of the summary, or "n/a" where it is undefined (null: e.g. an SD of one
    replicate)."""
    return "n/a" if value is None else format(value, fmt)


class Interrupted(BaseException):
    """SIGTERM, turned into an exception so that the run stops like on Ctrl-C."""


@contextlib.contextmanager
def _sigterm_raises():
    """While the run goes on, SIGTERM raises :class:`Interrupted` (the default would kill the
    process without a word); the previous handler comes back afterwards."""

    def handler(signum, frame):
        raise Interrupted()

    try:
        previous = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread (e.g. a test runner thread): leave it alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _interrupted_line(out: Path, cfg: EnsembleConfig) -> str:
    from srgpu.run.batch import batch_specs
    from srgpu.run.store import EnsembleStore

    total = len(batch_specs(cfg.n_replicates, cfg.batch_size))
    try:
        done = EnsembleStore(out).batches_done
    except Exception:  # noqa: BLE001 - the line must come out whatever the store holds
        done = 0
    return f"srgpu: interrupted after {done} of {total} batches; rerun the same command to resume"


def print_summary(summary: dict) -> None:
    """A readable table of the totals, uncertainty, ratios and validation."""
    truth = summary.get("demo_truth_pg_per_yr")
    t = Table(
        title="Global totals (Pg C / yr): spread of the total across replicates, and the "
        "per-cell SD/MAD integrated over area (intSD, intMAD)"
    )
    for col in ("flux", "mean", "sd", "median", "MAD", "q2.5", "q97.5", "intSD", "intMAD"):
        t.add_column(col, justify="right")
    t.add_column("truth" if truth else "paper", justify="right")
    for f in ("SR", "HR", "AR"):
        s = summary["fluxes"][f]
        tot = s["total_pg_per_yr"]
        ref = truth.get(f) if truth else PAPER_TOTALS_PG[f]
        t.add_row(
            f,
            *(_num(tot[k]) for k in ("mean", "sd", "median", "mad", "q025", "q975")),
            _num(s["integrated_sd_pg_per_yr"]),
            _num(s["integrated_mad_pg_per_yr"]),
            "-" if ref is None else f"{ref:.2f}",
        )
    console.print(t)
    r = summary["ratios"]
    console.print(
        f"AR/SR = {_num(r['AR/SR'], '.3f')}   HR/SR = {_num(r['HR/SR'], '.3f')}   "
        "(paper AR/SR 0.41)"
    )
    v = Table(title="Validation on held-out records (mean ± sd over replicates)")
    for col in ("flux", "records", "R²", "RMSE (g C m-2 yr-1)", "r"):
        v.add_column(col, justify="right")
    for f in TRAINED_FLUXES:
        val = summary["validation"][f]
        v.add_row(
            f,
            str(summary["counts"][f]),
            f"{_num(val['r2']['mean'])} ± {_num(val['r2']['sd'])}",
            # g C m-2 yr-1: whole grams
            f"{_num(val['rmse']['mean'], '.0f')} ± {_num(val['rmse']['sd'], '.0f')}",
            f"{_num(val['r']['mean'])} ± {_num(val['r']['sd'])}",
        )
    console.print(v)
    print_predictive(summary)


def print_predictive(summary: dict) -> None:
    """The predictive distribution's integrated SD beside the replicate spread, and the
    held-out coverage of both bands (when the run computed them)."""
    cal = summary.get("calibration")
    if not cal:
        return
    spread = summary.get("calibration_spread") or {}
    membership = next(iter(cal.values())).get("membership", "all")
    p = Table(
        title="Predictive distribution (quantile regression forest, leaf membership "
        f"{membership}) vs replicate spread, integrated per-cell SD (Pg C yr-1); held-out "
        "coverage of central intervals"
        + ("; spread band: the replicate-spread band's, 50/90/95 %" if spread else "")
    )
    # predictive = "quantiles": the exact MAD too (null with "moments")
    mad = any(
        summary["fluxes"][f]["predictive"].get("integrated_mad_pg_per_yr") is not None for f in cal
    )
    cols = (
        "flux",
        "predictive SD",
        *(("MAD / x1.4826",) if mad else ()),
        "replicate SD",
        "50 %",
        "90 %",
        "95 %",
        "CRPS",
    )
    for col in (*cols, "spread band") if spread else cols:
        p.add_column(col, justify="right")
    for f, c in cal.items():
        s = summary["fluxes"][f]
        pred = s["predictive"]
        cov = c["coverage"]
        mad_cell = (
            f"{_num(pred['integrated_mad_pg_per_yr'])} / "
            f"{_num(pred['integrated_mad_scaled_pg_per_yr'])}"
        )
        row = [
            f,
            _num(pred["integrated_sd_pg_per_yr"]),
            *((mad_cell,) if mad else ()),
            _num(s["integrated_sd_pg_per_yr"]),
            *(f"{100 * cov[k]['mean']:.0f} %" for k in ("0.5", "0.9", "0.95")),
            f"{_num(c['crps']['mean'], '.0f')} g C m-2 yr-1",
        ]
        if spread:
            sc = spread[f]["coverage"]
            row.append(
                "/".join(f"{100 * sc[k]['mean']:.0f}" for k in ("0.5", "0.9", "0.95")) + " %"
            )
        p.add_row(*row)
    console.print(p)


@contextlib.contextmanager
def _progress(total: int, *, enabled: bool):
    """A rich progress bar with replicates per second; yields the ensemble's batch callback
    (``None`` when disabled)."""
    if not enabled:
        yield None
        return
    from srgpu.cli._progress import bar_columns

    with Progress(*bar_columns("replicates"), console=console, transient=False) as progress:
        task = progress.add_task("ensemble", total=total, rate="")
        t0 = time.perf_counter()
        first: list[int] = []  # first replicate of this run (a resumed run starts later)

        def on_batch(res, done, _total):
            first[:] = first or [res.spec.start]
            rate = (done - first[0]) / max(time.perf_counter() - t0, 1e-9)
            progress.update(task, completed=done, rate=f"{rate:.2f} rep/s")

        yield on_batch


def register(app: typer.Typer) -> None:
    @app.command()
    @handle_errors
    def ensemble(
        extra: Annotated[list[str] | None, typer.Argument(hidden=True)] = None,
        srdb: Annotated[str | None, typer.Option(help="SRDB-format CSV (plain or gzip).")] = None,
        drivers: Annotated[
            list[str] | None,
            typer.Option(help="Driver files (CF NetCDF/Zarr), a directory or a glob; repeatable."),
        ] = None,
        vegetation: Annotated[
            str | None, typer.Option(help="IGBP land-cover map (majority class or fractions).")
        ] = None,
        config: Annotated[Path | None, typer.Option(help="TOML config; flags override it.")] = None,
        replicates: Annotated[
            int | None, typer.Option(help="Replicate models (paper: 2000).")
        ] = None,
        trees: Annotated[int | None, typer.Option(help="Trees per forest (paper: 500).")] = None,
        seed: Annotated[int | None, typer.Option(help="Master seed.")] = None,
        sampling: Annotated[str | None, typer.Option(help="area (paper) or equal.")] = None,
        predictors: Annotated[
            list[str] | None,
            typer.Option(help="FLUX=NAME,NAME,... e.g. SR=MAT,Prec,Prec_GS; repeatable."),
        ] = None,
        var: Annotated[
            list[str] | None, typer.Option(help="ROLE=VARIABLE override of driver names.")
        ] = None,
        device: Annotated[
            str | None,
            typer.Option(help="Device of both stages, training and prediction: auto, cpu or gpu."),
        ] = None,
        train_device: Annotated[
            str | None, typer.Option(help="Training device: auto (the CPU), cpu or gpu.")
        ] = None,
        predict_device: Annotated[
            str | None,
            typer.Option(help="Prediction device: auto (the GPU when usable), cpu or gpu."),
        ] = None,
        trainer: Annotated[
            str | None,
            typer.Option(
                help="Training implementation: auto (numba on cpu, cuml on gpu), numba (fast), "
                "numba-exact (scikit-learn's trees bit for bit on tied predictors, slower), "
                "sklearn (reference) or cuml (GPU)."
            ),
        ] = None,
        engine: Annotated[
            str | None,
            typer.Option(
                help="Prediction implementation: auto (numba on cpu, nvforest on gpu), numba, "
                "sklearn or nvforest."
            ),
        ] = None,
        backend: Annotated[
            str | None, typer.Option(hidden=True, help="Deprecated: --predict-device.")
        ] = None,
        train_on: Annotated[
            str | None, typer.Option(hidden=True, help="Deprecated: --train-device.")
        ] = None,
        batch_size: Annotated[int | None, typer.Option(help="Replicates per batch.")] = None,
        predictive: Annotated[
            str | None,
            typer.Option(
                help="Predictive distribution of each forest (the paper's uncertainty): "
                "moments (default: mean, SD, calibration), quantiles (also the exact pooled "
                "median, MAD and quantiles per cell; memory: cells x records x 16 bytes per "
                "flux) or none."
            ),
        ] = None,
        membership: Annotated[
            str | None,
            typer.Option(
                help="Leaf membership of the predictive distribution: all (default: every "
                "training record of the replicate, quantregForest's, the paper's), inbag (each "
                "tree's bootstrap rows) or oob (each tree's out-of-bag records only: honest "
                "leaves, calibrated intervals; CPU trainers)."
            ),
        ] = None,
        out: Annotated[Path, typer.Option(help="Output directory.")] = Path("srgpu-out"),
        workers: Annotated[
            int | None, typer.Option(help="Start a local Dask cluster with N workers.")
        ] = None,
        scheduler: Annotated[
            str | None, typer.Option(help="Address of an existing Dask scheduler.")
        ] = None,
        overwrite: Annotated[bool, typer.Option(help="Replace an existing store.")] = False,
        quiet: Annotated[bool, typer.Option(help="No progress bar or tables.")] = False,
        years: Annotated[
            str | None,
            typer.Option(help="Keep SRDB records of these years, e.g. 1982-2012 (the paper's)."),
        ] = None,
        exclude_quality_flags: Annotated[
            str | None, typer.Option(help="Drop SRDB records with these Quality_flag codes (a,b).")
        ] = None,
        exclude_duplicates: Annotated[
            bool | None, typer.Option(help="Drop SRDB records marked Duplicate_record.")
        ] = None,
        ecosystem_states: Annotated[
            str | None, typer.Option(help="Keep only these SRDB Ecosystem_state values (a,b).")
        ] = None,
    ) -> None:
        """Train and predict the replicate ensemble; write OUT/ensemble.zarr and OUT/summary.json.

        With no arguments, runs the embedded synthetic demo world and prints the totals next to
        the demo's known truth.
        """
        from srgpu.provenance import record_inputs
        from srgpu.run.ensemble import run_ensemble

        refuse_extra_arguments(extra)
        cfg = build_config(
            config_file=config,
            srdb=srdb,
            drivers=drivers,
            vegetation=vegetation,
            replicates=replicates,
            trees=trees,
            seed=seed,
            sampling=sampling,
            predictors=predictors,
            variables=var,
            device=device,
            train_device=train_device,
            predict_device=predict_device,
            trainer=trainer,
            engine=engine,
            batch_size=batch_size,
            predictive=predictive,
            membership=membership,
            backend=backend,
            train_on=train_on,
        )
        cfg = apply_observation_flags(
            cfg,
            years=years,
            exclude_quality_flags=exclude_quality_flags,
            exclude_duplicates=exclude_duplicates,
            ecosystem_states=ecosystem_states,
        )
        if not quiet:
            src = (
                "embedded demo world"
                if cfg.is_demo
                else f"{cfg.srdb} + {len(cfg.drivers)} driver path(s)"
            )
            console.print(
                f"srgpu ensemble: {src}; {cfg.n_replicates} replicates x {cfg.forest.trees} trees; "
                f"sampling={cfg.sampling}; out={out}"
            )
        check_param("workers", workers)
        check_param("scheduler", scheduler)

        def notice(line: str) -> None:
            print(f"srgpu: {' '.join(line.split())}", file=sys.stderr)

        check_same_config(cfg, out=out, overwrite=overwrite)
        try:
            with _sigterm_raises():
                inputs = prepare_with_hints(cfg, predictors_flag=predictors)
                if not quiet:
                    print_input_counts(inputs, console=console)
                clear_old_outputs(out, overwrite=overwrite, console=None if quiet else console)
                with _progress(cfg.n_replicates, enabled=not quiet) as on_batch:
                    summary = run_ensemble(
                        cfg,
                        out=out,
                        overwrite=overwrite,
                        workers=workers,
                        scheduler=scheduler,
                        inputs=inputs,
                        on_batch=on_batch,
                        on_notice=notice,
                    )
        except (KeyboardInterrupt, Interrupted) as exc:
            import logging

            # zarr's event-loop thread may still hold a read that the interpreter's shutdown
            # cancels; asyncio would log it as a traceback after our one line
            logging.getLogger("asyncio").setLevel(logging.CRITICAL)
            print(_interrupted_line(out, cfg), file=sys.stderr)
            code = 143 if isinstance(exc, Interrupted) else 130  # 128 + the signal's number
            raise typer.Exit(code=code) from None
        record_inputs(cfg, out)  # lets explain find the inputs from any directory
        if not quiet:
            print_summary(summary)
            console.print(f"wrote {out / 'ensemble.zarr'} and {out / 'summary.json'}")
