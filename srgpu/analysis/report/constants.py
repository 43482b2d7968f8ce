"""Fluxes, colours and section titles of the report."""

from __future__ import annotations

FLUX_NAMES = {
    "SR": "soil respiration (SR)",
    "HR": "heterotrophic respiration (HR)",
    "AR": "autotrophic (root) respiration (AR = SR - HR)",
}
FLUX_UNITS = "g C m$^{-2}$ yr$^{-1}$"
TOTAL_UNITS = "Pg C yr$^{-1}$"
COLORS = {"SR": "#8c510a", "HR": "#01665e", "AR": "#762a83"}
OCEAN = "#dde6ee"  # NaN outside land
OTHER_LAND = "#bdbdbd"  # land outside the prediction domain
DPI = 96

SECTIONS = (
    ("overview", "Overview"),
    ("maps", "Global maps"),
    ("uncertainty", "Uncertainty: replicate spread and predictive distribution"),
    ("latitude", "Latitudinal profiles"),
    ("annual", "Global totals per year"),
    ("validation", "Validation"),
    ("global", "Global totals against ecosystem models"),
    ("scores", "Model scores"),
    ("run", "Run configuration and QC"),
)
"""Section ids and titles of the report, in order (the ids are the HTML anchors)."""
