"""Which settings differ between two run configs: :func:`config_diff`.

Used to say *what* changed when a run's output holds a different config than the command asks
for (the store otherwise names only the two hashes).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from srgpu.config import EnsembleConfig

__all__ = [
    "config_diff",
    "describe_config_diff",
    "replicates_change",
    "stored_config",
    "stored_config_text",
]


def _flatten(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(_flatten(value, prefix=f"{name}."))
        else:
            out[name] = value
    return out


def config_diff(a: EnsembleConfig, b: EnsembleConfig) -> dict[str, tuple[Any, Any]]:
    """``{dotted key: (value in a, value in b)}`` for every setting that differs, in sorted
    order (``forest.trees``, ``predictors.SR``, ``observations.years``, ...). A setting absent
    on one side (an unset optional) is ``None`` there. Equal configs give ``{}``."""
    fa, fb = _flatten(a.to_dict()), _flatten(b.to_dict())
    for side in (fa, fb):  # left out of to_dict at its default (the hash), but not unset
        side.setdefault("predictive_membership", "all")
    out: dict[str, tuple[Any, Any]] = {}
    for key in sorted(set(fa) | set(fb)):
        va, vb = fa.get(key), fb.get(key)
        if va != vb:
            out[key] = (va, vb)
    return out


def _show(value: Any) -> str:
    if value is None:
        return "unset"
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value) if value else "none"
    return str(value)


def describe_config_diff(old: EnsembleConfig, new: EnsembleConfig) -> str:
    """One line: ``replicates 32 -> 40; forest.trees 500 -> 200``."""
    return "; ".join(
        f"{key} {_show(va)} -> {_show(vb)}" for key, (va, vb) in config_diff(old, new).items()
    )


def replicates_change(old: EnsembleConfig, new: EnsembleConfig) -> tuple[int, int] | None:
    """``(old count, new count)`` of replicates when ``replicates`` is the only setting that
    differs and the counts differ (an extension, or a smaller run); ``None`` otherwise."""
    if set(config_diff(old, new)) != {"replicates"}:
        return None
    if old.n_replicates == new.n_replicates:
        return None
    return old.n_replicates, new.n_replicates


def stored_config_text(store_path: Any) -> str | None:
    """The TOML text of an ensemble store's ``config`` attribute as written (a store written
    before the ``[train]``/``[predict]`` tables has the old keys), or ``None`` when there is
    none or it cannot be read (the store's own checks report that)."""
    import warnings
    from pathlib import Path

    import zarr

    path = Path(store_path)
    if not (path / "zarr.json").exists():
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            text = zarr.open_group(str(path), mode="r").attrs.get("config")
    except Exception:  # noqa: BLE001 - unreadable: let the store's own checks speak
        return None
    return text if isinstance(text, str) and text else None


def stored_config(store_path: Any) -> EnsembleConfig | None:
    """The config stored in an ensemble store's ``config`` attribute, in the current spelling
    (old keys are translated), or ``None`` when there is none or it cannot be read (the
    store's own checks report that)."""
    import tomllib

    text = stored_config_text(store_path)
    if text is None:
        return None
    try:
        return EnsembleConfig.from_dict(tomllib.loads(text))
    except Exception:  # noqa: BLE001 - unreadable: let the store's own checks speak
        return None
