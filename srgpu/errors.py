"""One exception family for every user-facing failure.

The CLI turns any :class:`SrgpuError` into one line on stderr and exit code 2. Each error names
the file, the field and the offending value where it knows them, so that a user can fix the input
without reading a traceback.
"""

from __future__ import annotations

from typing import Any


class SrgpuError(Exception):
    """Base class of all errors srgpu raises on purpose."""

    exit_code = 2

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


def _fmt(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


class InputError(SrgpuError):
    """Bad input data: names the file, the field, the value and what was expected."""

    def __init__(
        self,
        message: str = "",
        *,
        file: Any = None,
        field: str | None = None,
        value: Any = None,
        expected: str | None = None,
    ):
        self.file = None if file is None else str(file)
        self.field = field
        self.value = value
        self.expected = expected
        parts = []
        if self.file is not None:
            parts.append(self.file)
        if field is not None:
            parts.append(f"field {field!r}")
        head = ": ".join(parts)
        body = message
        if value is not None:
            body += f" (got {_fmt(value)})"
        if expected is not None:
            body += f"; expected {expected}"
        super().__init__(f"{head}: {body}" if head else body)


class UnitError(InputError):
    """A variable has missing, unknown or inconvertible CF units."""


class GridMismatch(InputError):
    """Grids that must agree (drivers, land cover, model output) do not."""


class ConfigError(SrgpuError):
    """An invalid configuration value (TOML file or CLI flag)."""


class StoreError(SrgpuError):
    """The output store is unusable: different config, unwritable, or corrupt."""


class BackendError(SrgpuError):
    """The requested device or implementation (e.g. ``--predict-device gpu``) is not usable here."""


class DownloadError(SrgpuError):
    """A download failed (no network, wrong hash)."""
