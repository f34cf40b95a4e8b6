"""Convert Chinese map coordinates (GCJ-02 from Amap/Tencent, BD-09 from Baidu) to and from WGS84.

Chinese web maps publish longitude/latitude in obfuscated datums: **GCJ-02** (国测局坐标, "Mars
coordinates": Amap/高德, Tencent/腾讯, Apple Maps in China) shifts WGS84 by a smooth, non-linear offset of
typically 100-700 m; **BD-09** (百度坐标) applies a further rotation and shift to GCJ-02. Surveyed data from
the natural-resources bureau are in **CGCS2000**, which differs from WGS84 by centimetres and is treated
as WGS84 here. Everything the planner stores is WGS84 (EPSG:4326).

The forward transforms (WGS84 → GCJ-02 → BD-09) are the published closed formulas. The inverses are
computed by fixed-point iteration of the forward transform until it reproduces the input to 1e-10
degrees (about 0.01 mm), not by the usual one-step approximation (off by up to about 4 m).

China test (:func:`in_china`)
    GCJ-02 is defined only for China; outside it both transforms are the identity. The test is the
    rectangle longitude 72.004-137.8347 °E, latitude 0.8293-55.8271 °N, the one used by the reference
    implementations (e.g. ``eviltransform``). It is a rectangle, so it also covers neighbouring
    countries; that does not matter for Chinese input data, and rows outside China are rejected by
    the ingest readers before any transform.

All functions are vectorised over numpy arrays (scalars work too) and return float64 arrays.
"""

from __future__ import annotations

import enum

import numpy as np

from planning.errors import ParameterError
from planning.text import Text


#: The China rectangle (lon_min, lat_min, lon_max, lat_max), degrees; see the module docstring.
CHINA_BBOX: tuple[float, float, float, float] = (72.004, 0.8293, 137.8347, 55.8271)

# Krasovsky 1940 ellipsoid, as in the published GCJ-02 formula.
_A = 6378245.0
_EE = 0.00669342162296594323
_X_PI = np.pi * 3000.0 / 180.0
_INVERSE_TOL_DEG = 1e-10
_INVERSE_MAX_ITER = 30


class Datum(str, enum.Enum):
    """The coordinate system a longitude/latitude pair is written in."""

    WGS84 = "wgs84"
    GCJ02 = "gcj02"
    BD09 = "bd09"

    def label(self, lang: str = "zh") -> str:
        """Display name: "GCJ-02（高德/腾讯）" or "GCJ-02 (Amap/Tencent)"."""
        return _DATUM_LABELS[self.value].get(lang)


_DATUM_LABELS = {"wgs84": Text("WGS84/CGCS2000", "WGS84/CGCS2000"),
                 "gcj02": Text("GCJ-02（高德/腾讯）", "GCJ-02 (Amap/Tencent)"),
                 "bd09": Text("BD-09（百度）", "BD-09 (Baidu)")}


#: Accepted spellings of each datum (compared case-insensitively, spaces ignored).
DATUM_ALIASES: dict[Datum, tuple[str, ...]] = {
    Datum.WGS84: ("wgs84", "wgs-84", "wgs 84", "epsg:4326", "4326", "gps", "cgcs2000", "epsg:4490", "4490",
                  "2000", "国家2000", "天地图"),
    Datum.GCJ02: ("gcj02", "gcj-02", "gcj", "mars", "火星", "国测局", "amap", "gaode", "高德", "tencent", "腾讯"),
    Datum.BD09: ("bd09", "bd-09", "bd09ll", "baidu", "百度"),
}


def parse_datum(value: str | Datum) -> Datum:
    """The :class:`Datum` named by ``value`` (see :data:`DATUM_ALIASES`); CGCS2000 counts as WGS84.

    Raises :class:`~planning.errors.ParameterError` for an unknown name.
    """
    if isinstance(value, Datum):
        return value
    key = str(value).strip().lower().replace(" ", "")
    for datum, aliases in DATUM_ALIASES.items():
        if key in {a.replace(" ", "") for a in aliases}:
            return datum
    accepted = ", ".join(a for aliases in DATUM_ALIASES.values() for a in aliases[:3])
    raise ParameterError(f"无法识别的坐标系“{value}”，可用：{accepted}",
                         f"unknown coordinate system {value!r}; accepted: {accepted}")


def in_china(lon, lat) -> np.ndarray:
    """Boolean array: the point lies in :data:`CHINA_BBOX` (where GCJ-02 applies)."""
    lon, lat = np.asarray(lon, dtype=float), np.asarray(lat, dtype=float)
    lon_min, lat_min, lon_max, lat_max = CHINA_BBOX
    return (lon >= lon_min) & (lon <= lon_max) & (lat >= lat_min) & (lat <= lat_max)


# ---------------------------------------------------------------------------------------- GCJ-02
def _gcj_delta(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """GCJ-02 minus WGS84 at a WGS84 point, degrees (the published formula)."""
    x, y = lon - 105.0, lat - 35.0
    d = 20.0 * np.sin(6.0 * x * np.pi) + 20.0 * np.sin(2.0 * x * np.pi)
    dlat = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * np.sqrt(np.abs(x))
    dlat += (d + 20.0 * np.sin(y * np.pi) + 40.0 * np.sin(y / 3.0 * np.pi)
             + 160.0 * np.sin(y / 12.0 * np.pi) + 320.0 * np.sin(y * np.pi / 30.0)) * 2.0 / 3.0
    dlon = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * np.sqrt(np.abs(x))
    dlon += (d + 20.0 * np.sin(x * np.pi) + 40.0 * np.sin(x / 3.0 * np.pi)
             + 150.0 * np.sin(x / 12.0 * np.pi) + 300.0 * np.sin(x / 30.0 * np.pi)) * 2.0 / 3.0
    rad = lat / 180.0 * np.pi
    magic = 1.0 - _EE * np.sin(rad) ** 2
    sqrt_magic = np.sqrt(magic)
    dlat = dlat * 180.0 / ((_A * (1.0 - _EE)) / (magic * sqrt_magic) * np.pi)
    dlon = dlon * 180.0 / (_A / sqrt_magic * np.cos(rad) * np.pi)
    return dlon, dlat


def _arrays(lon, lat) -> tuple[np.ndarray, np.ndarray]:
    lon, lat = np.broadcast_arrays(np.asarray(lon, dtype=np.float64), np.asarray(lat, dtype=np.float64))
    return lon.copy(), lat.copy()


def wgs84_to_gcj02(lon, lat) -> tuple[np.ndarray, np.ndarray]:
    """WGS84 longitude/latitude (degrees) to GCJ-02 (degrees); identity outside :data:`CHINA_BBOX`."""
    lon, lat = _arrays(lon, lat)
    inside = in_china(lon, lat)
    dlon, dlat = _gcj_delta(lon[inside], lat[inside])
    lon[inside] += dlon
    lat[inside] += dlat
    return lon, lat


def _invert(forward, lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Solve forward(x) = (lon, lat) by fixed-point iteration (the forward map is near-identity)."""
    x_lon, x_lat = lon.copy(), lat.copy()
    for _ in range(_INVERSE_MAX_ITER):
        f_lon, f_lat = forward(x_lon, x_lat)
        err_lon, err_lat = f_lon - lon, f_lat - lat
        x_lon -= err_lon
        x_lat -= err_lat
        worst = np.nanmax(np.abs(np.concatenate([err_lon.ravel(), err_lat.ravel()])), initial=0.0)
        if worst < _INVERSE_TOL_DEG:
            break
    return x_lon, x_lat


def gcj02_to_wgs84(lon, lat) -> tuple[np.ndarray, np.ndarray]:
    """GCJ-02 longitude/latitude (degrees) to WGS84 (degrees), exact to < 0.01 m by iteration.

    Identity for points outside :data:`CHINA_BBOX`.
    """
    lon, lat = _arrays(lon, lat)
    inside = in_china(lon, lat)
    lon[inside], lat[inside] = _invert(wgs84_to_gcj02, lon[inside], lat[inside])
    return lon, lat


# ---------------------------------------------------------------------------------------- BD-09
def gcj02_to_bd09(lon, lat) -> tuple[np.ndarray, np.ndarray]:
    """GCJ-02 longitude/latitude (degrees) to BD-09 (degrees); identity outside :data:`CHINA_BBOX`."""
    lon, lat = _arrays(lon, lat)
    inside = in_china(lon, lat)
    x, y = lon[inside], lat[inside]
    z = np.hypot(x, y) + 0.00002 * np.sin(y * _X_PI)
    theta = np.arctan2(y, x) + 0.000003 * np.cos(x * _X_PI)
    lon[inside] = z * np.cos(theta) + 0.0065
    lat[inside] = z * np.sin(theta) + 0.006
    return lon, lat


def bd09_to_gcj02(lon, lat) -> tuple[np.ndarray, np.ndarray]:
    """BD-09 longitude/latitude (degrees) to GCJ-02 (degrees), exact by iteration of the forward formula."""
    lon, lat = _arrays(lon, lat)
    inside = in_china(lon, lat)
    lon[inside], lat[inside] = _invert(gcj02_to_bd09, lon[inside], lat[inside])
    return lon, lat


def wgs84_to_bd09(lon, lat) -> tuple[np.ndarray, np.ndarray]:
    """WGS84 longitude/latitude (degrees) to BD-09 (degrees)."""
    return gcj02_to_bd09(*wgs84_to_gcj02(lon, lat))


def bd09_to_wgs84(lon, lat) -> tuple[np.ndarray, np.ndarray]:
    """BD-09 longitude/latitude (degrees) to WGS84 (degrees), exact by iteration."""
    return gcj02_to_wgs84(*bd09_to_gcj02(lon, lat))


def to_wgs84(lon, lat, datum: str | Datum) -> tuple[np.ndarray, np.ndarray]:
    """Longitude/latitude written in ``datum`` (see :func:`parse_datum`) to WGS84 degrees."""
    datum = parse_datum(datum)
    if datum is Datum.GCJ02:
        return gcj02_to_wgs84(lon, lat)
    if datum is Datum.BD09:
        return bd09_to_wgs84(lon, lat)
    return _arrays(lon, lat)


def from_wgs84(lon, lat, datum: str | Datum) -> tuple[np.ndarray, np.ndarray]:
    """WGS84 longitude/latitude (degrees) to ``datum``: the inverse of :func:`to_wgs84`."""
    datum = parse_datum(datum)
    if datum is Datum.GCJ02:
        return wgs84_to_gcj02(lon, lat)
    if datum is Datum.BD09:
        return wgs84_to_bd09(lon, lat)
    return _arrays(lon, lat)


