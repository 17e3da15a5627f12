"""CRSs of OGC API – Features Part 2: URIs, axis order and the domain a bbox must lie in.

Coordinates travel in the axis order of the CRS's definition: ``EPSG:4326``, ``EPSG:4490``
and ``EPSG:4528`` (CGCS2000 / 3-degree Gauss-Krüger zone 40, northing first) are flipped
relative to PostGIS's x/y; ``CRS84`` and ``EPSG:3857`` are not.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Final

from pyproj import CRS, Transformer

from spatial.crs import CRS84_URI, crs_uri

STORAGE_SRID: Final = 4490
WORLD: Final = (-180.0, -90.0, 180.0, 90.0)
MERCATOR_MAX: Final = 20037508.342789244


@dataclass(frozen=True)
class OgcCrs:
    """A CRS the service accepts for ``crs``, ``bbox-crs`` and ``filter-crs``."""

    uri: str
    srid: int  # the PostGIS SRID (CRS84 is SRID 4326 with lon/lat order)
    latlon: bool  # axis order is (north, east): flip against PostGIS x/y
    decimals: int  # ST_AsGeoJSON precision: ~1 mm either way
    domain: tuple[float, float, float, float]  # x/y (east/north) bounds of valid coordinates

    @property
    def curie(self) -> str:
        """``EPSG:4490`` / ``OGC:CRS84``."""
        return "OGC:CRS84" if self.uri == CRS84_URI else f"EPSG:{self.srid}"


@functools.cache
def _area_of_use_xy(srid: int) -> tuple[float, float, float, float]:
    """The EPSG area of use of a projected CRS, in its own easting/northing."""
    crs = CRS.from_epsg(srid)
    area = crs.area_of_use
    if area is None:  # pragma: no cover - every supported projected CRS has one
        return (-math.inf, -math.inf, math.inf, math.inf)
    to_xy = Transformer.from_crs(4326, crs, always_xy=True)
    return to_xy.transform_bounds(area.west, area.south, area.east, area.north, densify_pts=21)


CRS84: Final = OgcCrs(CRS84_URI, 4326, False, 8, WORLD)
SUPPORTED: Final[tuple[OgcCrs, ...]] = (
    CRS84,
    OgcCrs(crs_uri(4490), 4490, True, 8, WORLD),
    OgcCrs(crs_uri(4326), 4326, True, 8, WORLD),
    OgcCrs(
        crs_uri(3857), 3857, False, 3, (-MERCATOR_MAX, -MERCATOR_MAX, MERCATOR_MAX, MERCATOR_MAX)
    ),
    OgcCrs(crs_uri(4528), 4528, True, 3, _area_of_use_xy(4528)),
)
SUPPORTED_URIS: Final = tuple(c.uri for c in SUPPORTED)
_LOOKUP: Final = {
    **{c.uri.lower(): c for c in SUPPORTED},
    **{c.curie.lower(): c for c in SUPPORTED},
    **{f"[{c.curie.lower()}]": c for c in SUPPORTED},
    "urn:ogc:def:crs:ogc:1.3:crs84": CRS84,
    "urn:ogc:def:crs:ogc::crs84": CRS84,
    **{f"urn:ogc:def:crs:epsg::{c.srid}": c for c in SUPPORTED[1:]},
}


def parse_crs(value: str) -> OgcCrs:
    """Parse a CRS URI (or ``EPSG:n`` / ``[EPSG:n]`` / URN); ``ValueError`` when unsupported."""
    crs = _LOOKUP.get(value.strip().lower())
    if crs is None:
        raise ValueError(f"unsupported CRS {value!r}; supported: {', '.join(SUPPORTED_URIS)}")
    return crs


def same_datum(srid_a: int, srid_b: int) -> bool:
    """True when no transformation is needed: equal SRIDs, or CGCS2000 vs WGS 84 lon/lat.

    PROJ itself uses a null ("ballpark") transformation between EPSG:4490 and EPSG:4326,
    so skipping ``ST_Transform`` changes no coordinate and saves a PROJ call per row.
    """
    return srid_a == srid_b or {srid_a, srid_b} == {4326, 4490}


def to_xy(x: float, y: float, crs: OgcCrs) -> tuple[float, float]:
    """A coordinate pair in the CRS's axis order, as PostGIS x/y."""
    return (y, x) if crs.latlon else (x, y)


def parse_bbox(value: str) -> tuple[float, ...]:
    """Parse ``minx,miny,maxx,maxy`` (or the 6-number 3D form) into floats."""
    parts = [p.strip() for p in value.split(",")]
    if len(parts) not in (4, 6):
        raise ValueError("bbox needs 4 numbers (or 6 with heights)")
    try:
        numbers = tuple(float(p) for p in parts)
    except ValueError:
        raise ValueError("bbox values must be numbers") from None
    if not all(math.isfinite(n) for n in numbers):
        raise ValueError("bbox values must be finite numbers")
    return numbers if len(numbers) == 4 else (*numbers[0:2], *numbers[3:5])


def bbox_xy(numbers: tuple[float, ...], crs: OgcCrs) -> tuple[float, float, float, float]:
    """The bbox as x/y bounds in ``crs``; ``ValueError`` when inverted or outside the domain."""
    x1, y1 = to_xy(numbers[0], numbers[1], crs)
    x2, y2 = to_xy(numbers[2], numbers[3], crs)
    if x1 > x2 or y1 > y2:
        raise ValueError("bbox lower corner must not exceed the upper corner")
    dx1, dy1, dx2, dy2 = crs.domain
    if x1 < dx1 or y1 < dy1 or x2 > dx2 or y2 > dy2:
        raise ValueError(f"bbox lies outside the domain of {crs.curie}")
    return x1, y1, x2, y2
