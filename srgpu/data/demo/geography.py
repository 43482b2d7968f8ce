"""Geography of the demo world (fixed, whatever the seed): grid, continents, mountains,
continentality."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import gaussian_filter

from srgpu.constants import EARTH_RADIUS_M


@dataclass(frozen=True)
class _Grid:
    lat: np.ndarray  # cell centres, ascending
    lon: np.ndarray
    lat_bnds: np.ndarray  # (n, 2)
    lon_bnds: np.ndarray
    resolution: float

    @classmethod
    def regular(cls, resolution: float) -> _Grid:
        ny, nx = round(180.0 / resolution), round(360.0 / resolution)
        lat_edges = np.linspace(-90.0, 90.0, ny + 1)
        lon_edges = np.linspace(-180.0, 180.0, nx + 1)
        return cls(
            lat=0.5 * (lat_edges[:-1] + lat_edges[1:]),
            lon=0.5 * (lon_edges[:-1] + lon_edges[1:]),
            lat_bnds=np.stack([lat_edges[:-1], lat_edges[1:]], axis=1),
            lon_bnds=np.stack([lon_edges[:-1], lon_edges[1:]], axis=1),
            resolution=float(resolution),
        )

    @property
    def shape(self) -> tuple[int, int]:
        return self.lat.size, self.lon.size

    def cell_area(self) -> np.ndarray:
        """Cell areas on a sphere of radius :data:`EARTH_RADIUS_M` (m2), shape (lat, lon)."""
        dsin = np.diff(np.sin(np.deg2rad(self.lat_bnds)), axis=1)[:, 0]
        dlon = np.deg2rad(np.diff(self.lon_bnds, axis=1)[:, 0])
        return EARTH_RADIUS_M**2 * dsin[:, None] * dlon[None, :]


# (lon, lat, semi-axis in lon, semi-axis in lat, rotation in degrees): crude continents.
_CONTINENTS: tuple[tuple[float, float, float, float, float], ...] = (
    (-100.0, 50.0, 34.0, 18.0, -8.0),  # North America
    (-95.0, 68.0, 26.0, 5.0, 0.0),  # Arctic Canada
    (-152.0, 64.0, 13.0, 6.0, 0.0),  # Alaska
    (-100.0, 25.0, 10.0, 9.0, -35.0),  # Mexico
    (-86.0, 12.0, 4.0, 7.0, -45.0),  # Central America
    (-42.0, 73.0, 12.0, 9.0, 0.0),  # Greenland
    (-60.0, -8.0, 19.0, 15.0, 0.0),  # South America, north
    (-66.0, -30.0, 8.0, 20.0, 8.0),  # South America, south
    (12.0, 50.0, 22.0, 9.0, 15.0),  # Europe
    (20.0, 64.0, 7.0, 8.0, 30.0),  # Scandinavia
    (-3.0, 40.0, 6.0, 4.0, 0.0),  # Iberia
    (-2.0, 54.0, 3.0, 4.0, 0.0),  # Britain
    (92.0, 54.0, 58.0, 16.0, 0.0),  # Siberia and Central Asia
    (100.0, 70.0, 45.0, 5.0, 0.0),  # Arctic Siberia
    (108.0, 33.0, 20.0, 12.0, 0.0),  # China
    (78.0, 21.0, 9.0, 11.0, 0.0),  # India
    (47.0, 24.0, 10.0, 9.0, -30.0),  # Arabia
    (102.0, 15.0, 7.0, 9.0, 0.0),  # Indochina
    (138.0, 37.0, 3.0, 6.0, 35.0),  # Japan
    (113.0, -1.0, 13.0, 4.0, -10.0),  # Indonesia
    (140.0, -5.0, 8.0, 4.0, 0.0),  # New Guinea
    (14.0, 16.0, 31.0, 18.0, 0.0),  # Africa, north
    (24.0, -10.0, 15.0, 24.0, 0.0),  # Africa, south
    (47.0, -19.0, 3.0, 7.0, 15.0),  # Madagascar
    (134.0, -25.0, 19.0, 12.0, 0.0),  # Australia
    (172.0, -42.0, 3.0, 6.0, 35.0),  # New Zealand
)
_ANTARCTIC_EDGE = -66.0  # land south of this latitude

# (lon, lat, semi-axis lon, semi-axis lat, height in km): Gaussian "mountains" (lapse 6.5 K/km).
_MOUNTAINS: tuple[tuple[float, float, float, float, float], ...] = (
    (88.0, 33.0, 12.0, 5.0, 4.0),  # Tibet
    (-112.0, 44.0, 6.0, 12.0, 1.6),  # Rockies
    (-69.0, -20.0, 3.0, 16.0, 3.0),  # Andes
    (-42.0, 73.0, 9.0, 7.0, 2.2),  # Greenland
    (0.0, -90.0, 720.0, 22.0, 2.6),  # Antarctica (wide in lon: all longitudes)
    (37.0, 2.0, 6.0, 9.0, 1.2),  # East African highlands
)

# Rain blobs (lon, lat, semi-axis lon, semi-axis lat, log factor): east coasts, monsoons.
_RAIN: tuple[tuple[float, float, float, float, float], ...] = (
    (-82.0, 36.0, 14.0, 10.0, 0.7),  # eastern North America
    (115.0, 30.0, 14.0, 10.0, 0.9),  # East Asian monsoon
    (138.0, 37.0, 6.0, 6.0, 0.6),  # Japan
    (80.0, 22.0, 10.0, 8.0, 0.5),  # Indian monsoon
    (0.0, 50.0, 14.0, 8.0, 0.3),  # western Europe
    (-47.0, -22.0, 8.0, 8.0, 0.5),  # southeast Brazil
    (-125.0, 50.0, 5.0, 8.0, 0.5),  # Pacific Northwest
    (150.0, -30.0, 5.0, 8.0, 0.4),  # eastern Australia
)

# Wetland blobs (lon, lat, semi-axes): Hudson Bay lowlands, West Siberian lowland.
_WETLANDS: tuple[tuple[float, float, float, float], ...] = (
    (-88.0, 55.0, 6.0, 3.5),
    (75.0, 61.0, 9.0, 4.0),
)

# Crop belts (lon, lat, semi-axes): US Midwest, Europe, North China plain, India, Pampas.
_CROP_BELTS: tuple[tuple[float, float, float, float], ...] = (
    (-93.0, 42.0, 8.0, 4.0),
    (14.0, 50.0, 9.0, 4.0),
    (116.0, 35.0, 6.0, 4.0),
    (79.0, 24.0, 7.0, 6.0),
    (-62.0, -34.0, 6.0, 4.0),
    (35.0, 50.0, 9.0, 3.0),
)


def _ellipse_distance(
    lon: np.ndarray,
    lat: np.ndarray,
    c_lon: float,
    c_lat: float,
    a: float,
    b: float,
    rot: float = 0.0,
) -> np.ndarray:
    """Normalised distance from an ellipse's centre (1 on its edge), longitudes wrapped."""
    dx = (lon - c_lon + 180.0) % 360.0 - 180.0
    dy = lat - c_lat
    t = np.deg2rad(rot)
    u = dx * np.cos(t) + dy * np.sin(t)
    v = -dx * np.sin(t) + dy * np.cos(t)
    return np.sqrt((u / a) ** 2 + (v / b) ** 2)


def _in_blobs(lon: np.ndarray, lat: np.ndarray, blobs: tuple[tuple[float, ...], ...]) -> np.ndarray:
    inside = np.zeros(np.broadcast(lon, lat).shape, dtype=bool)
    for c_lon, c_lat, a, b, *rot in blobs:
        inside |= _ellipse_distance(lon, lat, c_lon, c_lat, a, b, rot[0] if rot else 0.0) < 1.0
    return inside


def _land_fraction(grid: _Grid) -> np.ndarray:
    """Land share of each cell (0-1) from sub-cell samples of the continent ellipses."""
    sub = 4 if grid.resolution > 1.0 else 2
    offsets = (np.arange(sub) + 0.5) / sub - 0.5
    lat_s = (grid.lat[:, None] + offsets[None, :] * grid.resolution).ravel()
    lon_s = (grid.lon[:, None] + offsets[None, :] * grid.resolution).ravel()
    lon2, lat2 = np.meshgrid(lon_s, lat_s)
    inside = _in_blobs(lon2, lat2, _CONTINENTS) | (lat2 < _ANTARCTIC_EDGE)
    ny, nx = grid.shape
    return inside.reshape(ny, sub, nx, sub).mean(axis=(1, 3))


@dataclass(frozen=True)
class _Geography:
    grid: _Grid
    land: np.ndarray  # land fraction 0-1 (lat, lon)
    is_land: np.ndarray  # land > 0

    def lonlat(self) -> tuple[np.ndarray, np.ndarray]:
        return np.meshgrid(self.grid.lon, self.grid.lat)

    def height_km(self) -> np.ndarray:
        lon, lat = self.lonlat()
        h = np.zeros(self.grid.shape)
        for c_lon, c_lat, a, b, top in _MOUNTAINS:
            h += top * np.exp(-(_ellipse_distance(lon, lat, c_lon, c_lat, a, b) ** 2))
        return h

    def continentality(self) -> np.ndarray:
        """Land share smoothed over about 12 degrees (0 open ocean .. 1 deep interior)."""
        sigma = 12.0 / self.grid.resolution
        return np.clip(gaussian_filter(self.land, sigma=sigma, mode=("nearest", "wrap")), 0.0, 1.0)
