"""Coordinate reference systems: client CRS parsing, GCJ-02/BD-09 and pyproj transforms.

All geometries are stored in CGCS2000 (EPSG:4490). Every function here takes and returns
coordinates in (lon, lat) / (easting, northing) order, whatever the EPSG axis order says.

CGCS2000 and WGS84 are treated as identical: the ellipsoids differ by about 0.1 mm and the
frames by a few centimetres, far below the accuracy of client data. PROJ itself uses a
"ballpark" (null) transformation between EPSG:4490 and EPSG:4326.

GCJ-02 ("Mars coordinates") is the obfuscated datum mandated for maps published in China;
BD-09 is Baidu's extra offset on top of GCJ-02. Both use the widely published formulas
(eviltransform / coordtransform). Outside the usual China bounding box GCJ-02 equals WGS84;
the BD-09 offset is applied everywhere, as in coordtransform.
"""

import functools
import math
from collections.abc import Callable
from enum import StrEnum
from typing import Final

import numpy as np
import numpy.typing as npt
from pyproj import Transformer

_Array = npt.NDArray[np.float64]
Coord = float | _Array
Pair = tuple[Coord, Coord]
_Arrays = tuple[_Array, _Array]

STORAGE_SRID: Final = 4490
SUPPORTED_SRIDS: Final = (4490, 4326, 3857, 4528)
CRS84_URI: Final = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
_EPSG_URI: Final = "http://www.opengis.net/def/crs/EPSG/0/"

# GCJ-02 parameters (Krasovsky 1940 ellipsoid) and the usual "out of China" box.
_GCJ_A: Final = 6378245.0
_GCJ_EE: Final = 0.00669342162296594323
_CHINA_LON: Final = (72.004, 137.8347)
_CHINA_LAT: Final = (0.8293, 55.8271)
# BD-09 parameters.
_X_PI: Final = math.pi * 3000.0 / 180.0
_BD_DLON: Final = 0.0065
_BD_DLAT: Final = 0.006
# Iterative inverses stop when the forward residual is below this (degrees).
_INV_TOL: Final = 1e-10
_INV_MAX_ITER: Final = 30


class ClientCRS(StrEnum):
    """Coordinate systems a client may send (always lon/lat order)."""

    CGCS2000 = "cgcs2000"
    WGS84 = "wgs84"
    GCJ02 = "gcj02"
    BD09 = "bd09"


_ALIASES: Final[dict[str, ClientCRS]] = {
    "cgcs2000": ClientCRS.CGCS2000,
    "4490": ClientCRS.CGCS2000,
    "EPSG:4490": ClientCRS.CGCS2000,
    "urn:ogc:def:crs:EPSG::4490": ClientCRS.CGCS2000,
    f"{_EPSG_URI}4490": ClientCRS.CGCS2000,
    "wgs84": ClientCRS.WGS84,
    "4326": ClientCRS.WGS84,
    "EPSG:4326": ClientCRS.WGS84,
    "urn:ogc:def:crs:EPSG::4326": ClientCRS.WGS84,
    f"{_EPSG_URI}4326": ClientCRS.WGS84,
    "CRS84": ClientCRS.WGS84,
    "urn:ogc:def:crs:OGC:1.3:CRS84": ClientCRS.WGS84,
    CRS84_URI: ClientCRS.WGS84,
    "gcj02": ClientCRS.GCJ02,
    "gcj-02": ClientCRS.GCJ02,
    "bd09": ClientCRS.BD09,
    "bd-09": ClientCRS.BD09,
}
_ALIAS_LOOKUP: Final = {alias.lower(): crs for alias, crs in _ALIASES.items()}


def parse_client_crs(value: str) -> ClientCRS:
    """Parse a client CRS name, EPSG code or OGC URI (case-insensitive)."""
    crs = _ALIAS_LOOKUP.get(str(value).strip().lower())
    if crs is None:
        accepted = ", ".join(_ALIASES)
        raise ValueError(f"unsupported CRS {value!r}; accepted (case-insensitive): {accepted}")
    return crs


def crs_uri(srid: int) -> str:
    """Return the OGC EPSG URI for an SRID, e.g. http://www.opengis.net/def/crs/EPSG/0/4490."""
    return f"{_EPSG_URI}{int(srid)}"


@functools.lru_cache(maxsize=64)
def transformer(src: int, dst: int) -> Transformer:
    """Return a cached, thread-safe lon/lat-ordered pyproj transformer between EPSG codes."""
    return Transformer.from_crs(src, dst, always_xy=True)


def transform(xs: Coord, ys: Coord, src: int, dst: int) -> Pair:
    """Transform scalars or numpy arrays between EPSG codes (x/lon first)."""
    return transformer(src, dst).transform(xs, ys)


def _arrays(lon: Coord, lat: Coord) -> _Arrays:
    """Broadcast inputs to float64 arrays."""
    x, y = np.broadcast_arrays(np.asarray(lon, dtype=np.float64), np.asarray(lat, dtype=np.float64))
    return x, y


def _pack(x: _Array) -> Coord:
    """Return a float for 0-d results, the array otherwise."""
    return float(x) if x.ndim == 0 else x


def _outside(x: _Array, y: _Array) -> npt.NDArray[np.bool_]:
    """Boolean mask of points outside the GCJ-02 bounding box."""
    inside = (x >= _CHINA_LON[0]) & (x <= _CHINA_LON[1])
    inside &= (y >= _CHINA_LAT[0]) & (y <= _CHINA_LAT[1])
    return ~inside


def out_of_china(lon: Coord, lat: Coord) -> bool | npt.NDArray[np.bool_]:
    """Return True where a point is outside the GCJ-02 bounding box."""
    out = _outside(*_arrays(lon, lat))
    return bool(out) if out.ndim == 0 else out


def _in_china_only(convert: Callable[[_Array, _Array], _Arrays], lon: Coord, lat: Coord) -> Pair:
    """Apply ``convert`` to points inside China and pass the others through unchanged."""
    x, y = _arrays(lon, lat)
    inside = ~_outside(x, y)
    rx, ry = x.copy(), y.copy()
    rx[inside], ry[inside] = convert(x[inside], y[inside])
    return _pack(rx), _pack(ry)


def _gcj_dlat(x: _Array, y: _Array) -> _Array:
    """Raw GCJ-02 latitude offset in metres-like units (x, y relative to 105E, 35N)."""
    ret = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * np.sqrt(np.abs(x))
    ret += (20.0 * np.sin(6.0 * x * np.pi) + 20.0 * np.sin(2.0 * x * np.pi)) * 2.0 / 3.0
    ret += (20.0 * np.sin(y * np.pi) + 40.0 * np.sin(y / 3.0 * np.pi)) * 2.0 / 3.0
    ret += (160.0 * np.sin(y / 12.0 * np.pi) + 320.0 * np.sin(y * np.pi / 30.0)) * 2.0 / 3.0
    return ret


def _gcj_dlon(x: _Array, y: _Array) -> _Array:
    """Raw GCJ-02 longitude offset in metres-like units (x, y relative to 105E, 35N)."""
    ret = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * np.sqrt(np.abs(x))
    ret += (20.0 * np.sin(6.0 * x * np.pi) + 20.0 * np.sin(2.0 * x * np.pi)) * 2.0 / 3.0
    ret += (20.0 * np.sin(x * np.pi) + 40.0 * np.sin(x / 3.0 * np.pi)) * 2.0 / 3.0
    ret += (150.0 * np.sin(x / 12.0 * np.pi) + 300.0 * np.sin(x / 30.0 * np.pi)) * 2.0 / 3.0
    return ret


def _wgs_to_gcj_raw(lon: _Array, lat: _Array) -> _Arrays:
    """Apply the GCJ-02 offset without the out-of-China check."""
    dlat = _gcj_dlat(lon - 105.0, lat - 35.0)
    dlon = _gcj_dlon(lon - 105.0, lat - 35.0)
    rad = np.radians(lat)
    magic = 1.0 - _GCJ_EE * np.sin(rad) ** 2
    sqrt_magic = np.sqrt(magic)
    dlat = dlat * 180.0 / ((_GCJ_A * (1.0 - _GCJ_EE)) / (magic * sqrt_magic) * np.pi)
    dlon = dlon * 180.0 / (_GCJ_A / sqrt_magic * np.cos(rad) * np.pi)
    return lon + dlon, lat + dlat


def _invert(forward: Callable[..., _Arrays], x: _Array, y: _Array, guess: _Arrays) -> _Arrays:
    """Invert a near-identity forward mapping by fixed-point iteration from a guess."""
    gx, gy = (np.array(g, dtype=np.float64) for g in guess)
    for _ in range(_INV_MAX_ITER):
        fx, fy = forward(gx, gy)
        ex, ey = fx - x, fy - y
        gx, gy = gx - ex, gy - ey
        if not (np.any(np.abs(ex) >= _INV_TOL) or np.any(np.abs(ey) >= _INV_TOL)):
            break
    return gx, gy


def wgs84_to_gcj02(lon: Coord, lat: Coord) -> Pair:
    """Convert WGS84 to GCJ-02; identity outside China."""
    return _in_china_only(_wgs_to_gcj_raw, lon, lat)


def _gcj_to_wgs_raw(lon: _Array, lat: _Array) -> _Arrays:
    """Invert the GCJ-02 offset iteratively, starting from the GCJ-02 point itself."""
    return _invert(_wgs_to_gcj_raw, lon, lat, (lon, lat))


def gcj02_to_wgs84(lon: Coord, lat: Coord) -> Pair:
    """Convert GCJ-02 to WGS84 by iterative inversion (residual < 1e-10 degree)."""
    return _in_china_only(_gcj_to_wgs_raw, lon, lat)


def _gcj_to_bd_raw(lon: _Array, lat: _Array) -> _Arrays:
    """Baidu's published GCJ-02 -> BD-09 formula."""
    z = np.hypot(lon, lat) + 0.00002 * np.sin(lat * _X_PI)
    theta = np.arctan2(lat, lon) + 0.000003 * np.cos(lon * _X_PI)
    return z * np.cos(theta) + _BD_DLON, z * np.sin(theta) + _BD_DLAT


def _bd_to_gcj_approx(lon: _Array, lat: _Array) -> _Arrays:
    """Widely published closed-form BD-09 -> GCJ-02 approximation (~1e-6 degree)."""
    x, y = lon - _BD_DLON, lat - _BD_DLAT
    z = np.hypot(x, y) - 0.00002 * np.sin(y * _X_PI)
    theta = np.arctan2(y, x) - 0.000003 * np.cos(x * _X_PI)
    return z * np.cos(theta), z * np.sin(theta)


def gcj02_to_bd09(lon: Coord, lat: Coord) -> Pair:
    """Convert GCJ-02 to BD-09."""
    bx, by = _gcj_to_bd_raw(*_arrays(lon, lat))
    return _pack(bx), _pack(by)


def bd09_to_gcj02(lon: Coord, lat: Coord) -> Pair:
    """Convert BD-09 to GCJ-02: closed form refined to an exact inverse of gcj02_to_bd09."""
    x, y = _arrays(lon, lat)
    gx, gy = _invert(_gcj_to_bd_raw, x, y, _bd_to_gcj_approx(x, y))
    return _pack(gx), _pack(gy)


def wgs84_to_bd09(lon: Coord, lat: Coord) -> Pair:
    """Convert WGS84 to BD-09 (via GCJ-02)."""
    return gcj02_to_bd09(*wgs84_to_gcj02(lon, lat))


def bd09_to_wgs84(lon: Coord, lat: Coord) -> Pair:
    """Convert BD-09 to WGS84 (via GCJ-02)."""
    return gcj02_to_wgs84(*bd09_to_gcj02(lon, lat))


def _identity(lon: Coord, lat: Coord) -> Pair:
    """Return the coordinates unchanged (as float/array)."""
    x, y = _arrays(lon, lat)
    return _pack(x.copy()), _pack(y.copy())


_TO_STORAGE: Final[dict[ClientCRS, Callable[[Coord, Coord], Pair]]] = {
    ClientCRS.CGCS2000: _identity,
    ClientCRS.WGS84: _identity,
    ClientCRS.GCJ02: gcj02_to_wgs84,
    ClientCRS.BD09: bd09_to_wgs84,
}
_FROM_STORAGE: Final[dict[ClientCRS, Callable[[Coord, Coord], Pair]]] = {
    ClientCRS.CGCS2000: _identity,
    ClientCRS.WGS84: _identity,
    ClientCRS.GCJ02: wgs84_to_gcj02,
    ClientCRS.BD09: wgs84_to_bd09,
}


def to_storage(lon: Coord, lat: Coord, crs: ClientCRS) -> Pair:
    """Convert client lon/lat in ``crs`` to storage CGCS2000 lon/lat."""
    return _TO_STORAGE[ClientCRS(crs)](lon, lat)


def from_storage(lon: Coord, lat: Coord, crs: ClientCRS) -> Pair:
    """Convert storage CGCS2000 lon/lat to client lon/lat in ``crs``."""
    return _FROM_STORAGE[ClientCRS(crs)](lon, lat)


def client_coords(
    xs: list[float], ys: list[float], crs: ClientCRS, decimals: int
) -> list[list[float]]:
    """Storage lon/lat lists → ``[[lon, lat], …]`` in ``crs``, rounded to ``decimals``."""
    if not xs:
        return []
    x, y = from_storage(np.asarray(xs), np.asarray(ys), crs)
    return np.round(np.column_stack([np.atleast_1d(x), np.atleast_1d(y)]), decimals).tolist()


def track_geometry(coords: list[list[float]]) -> dict[str, object] | None:
    """A track as GeoJSON: a LineString, a Point for a single fix, None for none."""
    if len(coords) >= 2:
        return {"type": "LineString", "coordinates": coords}
    return {"type": "Point", "coordinates": coords[0]} if coords else None
