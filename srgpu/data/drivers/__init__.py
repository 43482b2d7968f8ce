"""Finding and reading gridded driver variables: sources, variable discovery, grid and CF units.

One module per step: :mod:`~srgpu.data.drivers.roles` (what each driver is),
:mod:`~srgpu.data.drivers.sources` (files, directories, globs), :mod:`~srgpu.data.drivers.grid`,
:mod:`~srgpu.data.drivers.discovery` (finding a role; its units through :mod:`srgpu.units`),
:mod:`~srgpu.data.drivers.time` (the monthly layout).

A *source* is a NetCDF file, a Zarr store or an in-memory :class:`xarray.Dataset`; a driver
argument may also be a directory (every ``*.nc``, ``*.nc4``, ``*.zarr`` in it) or a glob. Each
driver *role* (``tas``, ``pr``, ``hurs``, ``lai``, ``rsds``, ``par``, ``soc``, ``sftlf``,
``land_cover``, ``land_cover_fraction``) is found by an explicit override, else by CF
``standard_name``, else by a CMIP-style short name (:data:`ROLES`). Grids are checked
(regular, monotonic, identical across sources) and brought to ascending latitude and longitude
in [-180, 180). Units come from the CF ``units`` attribute and are converted to the internal
units of :data:`INTERNAL_UNITS`; a missing or unknown unit is a :class:`~srgpu.errors.UnitError`.

Monthly variables are laid out as ``(year, month, lat, lon)`` by :func:`monthly_layout`; a CF
climatology (12 calendar months) becomes one ``year``.
"""

from srgpu.data.drivers.discovery import (
    convert_units,
    describe_role,
    find_variable,
    resolve_overrides,
)
from srgpu.data.drivers.grid import check_same_grid, normalise_grid
from srgpu.data.drivers.roles import (
    PAR_STANDARD_NAME,
    PREDICTOR_ROLE_ALIASES,
    ROLES,
    Found,
    Role,
    Source,
    role,
)
from srgpu.data.drivers.sources import expand_sources, one_line, open_source, open_sources
from srgpu.data.drivers.time import Monthly, monthly_layout
from srgpu.units import INTERNAL_UNITS

__all__ = [
    "INTERNAL_UNITS",
    "PAR_STANDARD_NAME",
    "PREDICTOR_ROLE_ALIASES",
    "ROLES",
    "Found",
    "Monthly",
    "Role",
    "Source",
    "check_same_grid",
    "convert_units",
    "describe_role",
    "expand_sources",
    "find_variable",
    "monthly_layout",
    "normalise_grid",
    "one_line",
    "open_source",
    "open_sources",
    "resolve_overrides",
    "role",
]
