"""Driver roles: what each driver is, how it is found (CF standard names, CMIP short names), and
the two records of a found variable (:class:`Source`, :class:`Found`)."""

from __future__ import annotations

from dataclasses import dataclass

import xarray as xr


@dataclass(frozen=True)
class Role:
    """A driver role: how to find the variable and whether it has a monthly time axis."""

    name: str
    description: str
    standard_names: tuple[str, ...]
    short_names: tuple[str, ...]
    monthly: bool


ROLES: tuple[Role, ...] = (
    Role(
        "tas",
        "near-surface air temperature",
        ("air_temperature",),
        ("tas", "t2m", "tmp", "tair"),
        True,
    ),
    Role(
        "pr",
        "precipitation",
        (
            "precipitation_flux",
            "precipitation_amount",
            "lwe_precipitation_rate",
            "lwe_thickness_of_precipitation_amount",
        ),
        ("pr", "tp", "pre", "precip", "prec"),
        True,
    ),
    Role("hurs", "relative humidity", ("relative_humidity",), ("hurs", "rh", "relhum"), True),
    Role("lai", "leaf area index", ("leaf_area_index",), ("lai",), True),
    Role(
        "par",
        "photosynthetically active radiation",
        ("surface_downwelling_photosynthetic_radiative_flux_in_air",),
        ("par",),
        True,
    ),
    Role(
        "rsds",
        "surface downwelling shortwave radiation",
        ("surface_downwelling_shortwave_flux_in_air",),
        ("rsds", "ssrd", "swdown", "srad"),
        True,
    ),
    Role(
        "soc",
        "soil organic carbon (0-30 cm)",
        ("soil_mass_content_of_carbon", "soil_carbon_content"),
        ("soc", "csoil", "orgc"),
        False,
    ),
    Role("sftlf", "land area fraction", ("land_area_fraction",), ("sftlf", "landfrac"), False),
    Role("land_cover", "IGBP land-cover class", (), ("land_cover_on_land", "land_cover"), False),
    Role(
        "land_cover_fraction",
        "IGBP land-cover class fractions",
        (),
        ("land_cover_fraction",),
        False,
    ),
)
"""Every role with its CF standard names and short names (matched case-insensitively)."""


PREDICTOR_ROLE_ALIASES: dict[str, str] = {
    "MAT": "tas",
    "Prec": "pr",
    "Prec_GS": "pr",
    "RH": "hurs",
    "RH_GS": "hurs",
    "LAI": "lai",
    "LAI_GS": "lai",
    "PAR": "rsds",
    "PAR_GS": "rsds",
    "SOC": "soc",
}
"""Predictor names accepted as override keys, and the role they name (``PAR`` names ``par`` when
the variable's ``standard_name`` is the PAR one, else shortwave ``rsds``)."""

PAR_STANDARD_NAME = "surface_downwelling_photosynthetic_radiative_flux_in_air"


def role(name: str) -> Role:
    """The :class:`Role` called ``name``."""
    for r in ROLES:
        if r.name == name:
            return r
    raise KeyError(name)


@dataclass(frozen=True)
class Source:
    """An opened source: ``label`` names it in errors (file path or ``<dataset N>``)."""

    label: str
    ds: xr.Dataset


@dataclass(frozen=True)
class Found:
    """A variable found for a role: the source label, the variable name and its data."""

    role: str
    label: str
    name: str
    da: xr.DataArray
