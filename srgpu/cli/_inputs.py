"""Console helpers of ``srgpu ensemble`` about its inputs: the SRDB filter flags (``--years`` and
friends) and the lines that say what the selection and the site join did with the records."""

from __future__ import annotations

from typing import Any

from srgpu.config import EnsembleConfig
from srgpu.errors import ConfigError
from srgpu.filters import ObservationFilter, parse_years


def apply_observation_flags(
    cfg: EnsembleConfig,
    *,
    years: str | None = None,
    exclude_quality_flags: str | None = None,
    exclude_duplicates: bool | None = None,
    ecosystem_states: str | None = None,
) -> EnsembleConfig:
    """``cfg`` with the SRDB filter flags applied over its ``[observations]`` table (a flag wins;
    comma-separated lists)."""
    base = cfg.observations or ObservationFilter()
    changes: dict[str, Any] = {}
    if years is not None:
        changes["years"] = parse_years(years)
    if exclude_quality_flags is not None:
        changes["exclude_quality_flags"] = _split(exclude_quality_flags)
    if exclude_duplicates is not None:
        changes["exclude_duplicates"] = exclude_duplicates
    if ecosystem_states is not None:
        changes["ecosystem_states"] = _split(ecosystem_states)
    if not changes:
        return cfg
    merged = ObservationFilter(**{**base.__dict__, **changes})
    return cfg.replace(observations=None if merged.is_empty else merged)


def _split(text: str) -> tuple[str, ...]:
    return tuple(s.strip() for s in text.split(",") if s.strip())


def input_count_lines(qc: dict[str, Any], *, years: Any, climatology: bool) -> list[str]:
    """Plain lines: the SRDB selection (records kept, dropped by reason), the join of the
    records to the grid (own cell, neighbour, dropped) and the record years clamped to the
    driver period. ``qc`` is ``Inputs.qc``."""
    obs = qc.get("observations", {})
    reasons = obs.get("reasons", {})
    kept = reasons.get("kept", {})
    drops = [
        f"{r} {c['records']}"
        for r, c in reasons.items()
        if r not in ("kept", "not_reported") and c.get("records")
    ]
    lines = [
        f"SRDB selection: {obs.get('n_records', 0)} records, {kept.get('records', 0)} kept "
        f"(SR {kept.get('SR', 0)}, HR {kept.get('HR', 0)})"
        + (f"; dropped: {', '.join(drops)}" if drops else "")
    ]
    s = qc.get("sites", {})
    if s:
        lines.append(
            f"site join: {s.get('rows_in', 0)} SR/HR rows; {s.get('own_cell', 0)} in their own "
            f"cell, {s.get('neighbour_cell', 0)} in the nearest valid cell, "
            f"{s.get('dropped_no_cell', 0)} dropped (no valid cell nearby), "
            f"{s.get('dropped_no_year', 0)} dropped (no year)"
        )
        first, last = int(years[0]), int(years[-1])
        if climatology:
            lines.append(
                "record years: the drivers are a climatology: every record joins its one period "
                "whatever its year"
            )
        else:
            hint = (
                "" if obs.get("criteria", {}).get("years") else " (--years FIRST-LAST drops them)"
            )
            lines.append(
                f"record years: {s.get('years_clamped', 0)} rows outside the drivers' "
                f"{first}-{last} joined the nearest driver year{hint}"
            )
    return lines


def print_input_counts(inputs: Any, *, console: Any) -> None:
    """Print :func:`input_count_lines` of prepared ``inputs``."""
    climatology = bool(int(inputs.predictors.attrs.get("climatology", 0)))
    for line in input_count_lines(inputs.qc, years=inputs.years, climatology=climatology):
        console.print(line, markup=False, highlight=False, soft_wrap=True)


def check_same_config(cfg: EnsembleConfig, *, out: Any, overwrite: bool) -> None:
    """Before any work: an existing store in ``out`` made with another config is a
    :class:`ConfigError` naming the settings that changed and what to type."""
    from pathlib import Path

    from srgpu.config_diff import describe_config_diff, replicates_change, stored_config

    if overwrite:
        return
    old = stored_config(Path(out) / "ensemble.zarr")
    if old is None:
        return
    counts = replicates_change(old, cfg)
    if counts is not None:  # more replicates: the store extends the run (srgpu.run.extend)
        if counts[1] > counts[0]:
            return
        raise ConfigError(
            f"{Path(out) / 'ensemble.zarr'}: holds a run of {counts[0]} replicates; "
            f"--replicates {counts[1]} is fewer (a run can only be extended): add --overwrite "
            "to replace it, or use another --out"
        )
    changed = describe_config_diff(old, cfg)
    if changed:
        raise ConfigError(
            f"{Path(out) / 'ensemble.zarr'}: was written with a different config ({changed}); "
            f"rerun with the old settings to resume it, or add --overwrite to replace it, or "
            f"use another --out"
        )


FLAG_EXAMPLES = {
    "--predictors": "FLUX=NAME,NAME,... (e.g. --predictors SR=MAT,Prec --predictors HR=MAT,Prec)",
    "--var": "ROLE=VARIABLE (e.g. --var tas=t2m)",
}
"""What a NAME=VALUE flag looks like, for its error message."""


def refuse_extra_arguments(extra: list[str] | None) -> None:
    """Words after a flag's value that no flag took: almost always a second file after one
    ``--drivers``. A :class:`ConfigError` saying to repeat the flag."""
    if not extra:
        return
    files = " ".join(f"--drivers {e}" for e in extra)
    raise ConfigError(
        f"unexpected argument(s) {' '.join(extra)}: a flag takes one value; repeat it for each "
        f"file, e.g. {files}"
    )


def prepare_with_hints(cfg: EnsembleConfig, *, predictors_flag: list[str] | None) -> Any:
    """:func:`srgpu.data.inputs.prepare_inputs`, with a missing predictor's error saying which
    flux's set asks for it, and when that is the paper's default set nobody typed."""
    from srgpu.config import PAPER_PREDICTORS, TRAINED_FLUXES
    from srgpu.data.inputs import prepare_inputs
    from srgpu.errors import InputError

    try:
        return prepare_inputs(cfg)
    except InputError as exc:
        name = exc.field
        users = [f for f in TRAINED_FLUXES if name in cfg.predictors_for(f)]
        if not users or type(exc) is not InputError:
            raise
        given = {p.split("=", 1)[0].strip() for p in predictors_flag or [] if "=" in p}
        notes = []
        for flux in users:
            if flux in given:
                notes.append(f"{name} is in your --predictors {flux}=... set")
            else:
                default = ",".join(PAPER_PREDICTORS[flux])
                base = name.removesuffix("_GS")  # RH and RH_GS come from one driver
                keep = ",".join(
                    n for n in cfg.predictors_for(flux) if n.removesuffix("_GS") != base
                )
                notes.append(
                    f"{name} is in {flux}'s default (paper) set {default}, used because no "
                    f"--predictors {flux}=... was given; e.g. --predictors {flux}={keep}"
                )
        raise InputError(
            _body(exc),
            file=exc.file,
            field=exc.field,
            value=exc.value,
            expected=f"{exc.expected}. " + "; ".join(notes) if exc.expected else "; ".join(notes),
        ) from None


def _body(exc: Any) -> str:
    """The message part of an :class:`InputError` (without file, field, value, expected)."""
    text = str(exc)
    head = ": ".join(
        p for p in (exc.file, None if exc.field is None else f"field {exc.field!r}") if p
    )
    if head and text.startswith(head + ": "):
        text = text[len(head) + 2 :]
    if exc.expected is not None:
        text = text.rsplit(f"; expected {exc.expected}", 1)[0]
    if exc.value is not None:
        text = text.rsplit(" (got ", 1)[0]
    return text


_STORE_FILES = {"ensemble.zarr", "progress.json", "summary.json", "work.zarr"}


def clear_old_outputs(out: Any, *, overwrite: bool, console: Any = None) -> tuple[list, list]:
    """With ``--overwrite``: remove what srgpu's other commands wrote into ``out`` for the old
    run (``explain.nc`` and its figures, ``inputs.json``, ``report/``, ``compare/``; a folder
    only when it holds the file srgpu writes there) so that nothing stale sits beside the new
    store, and name what is left. Returns ``(removed, left)`` names; prints one line each."""
    import shutil
    from pathlib import Path

    out = Path(out)
    if not overwrite or not out.is_dir():
        return [], []
    from srgpu.results import derived_outputs

    removed: list[str] = []
    for name in derived_outputs(out):
        if name.endswith("/"):
            shutil.rmtree(out / name.rstrip("/"))
        else:
            (out / name).unlink()
        removed.append(name)
    p = out / "inputs.json"
    if p.is_file() and not p.is_symlink():
        p.unlink()
        removed.append(p.name)
    left = sorted(
        p.name + ("/" if p.is_dir() else "")
        for p in out.iterdir()
        if p.name not in _STORE_FILES and not p.name.startswith(".")
    )
    if console is not None:
        if removed:
            console.print(
                f"--overwrite: removed the old run's {', '.join(removed)}",
                markup=False,
                highlight=False,
                soft_wrap=True,
            )
        if left:
            console.print(
                f"--overwrite: left in {out} (not srgpu's): {', '.join(left)}",
                markup=False,
                highlight=False,
                soft_wrap=True,
            )
    return removed, left
