"""WFS 2.0 key-value parameters: case-insensitive names, typed and checked."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from api.wfs.errors import wfs_error
from layers.registry import LayerRegistry, LayerSpec

PREFIX = "city"
SUPPORTED_SRIDS = (4490, 4326, 3857, 4528)
GEOJSON_FORMATS = {"application/json", "json", "geojson", "application/geo+json"}
GML_FORMATS = {
    "application/gml+xml; version=3.2",
    "text/xml; subtype=gml/3.2",
    "gml32",
    "application/gml+xml",
}
MAX_COUNT = 10_000
DEFAULT_COUNT = 1_000


def kvp(query: Mapping[str, str]) -> dict[str, str]:
    """Upper-case parameter names, as WFS KVP names are case-insensitive."""
    return {k.upper(): v for k, v in query.items()}


@dataclass(frozen=True)
class Srs:
    """A requested CRS and whether its coordinates are written latitude first."""

    srid: int
    lat_first: bool

    @property
    def urn(self) -> str:
        """The URN form used in GML ``srsName``."""
        return f"urn:ogc:def:crs:EPSG::{self.srid}"


def parse_srs(value: str | None, param: str = "SRSNAME") -> Srs:
    """Accept URN, OGC URI, ``EPSG:n`` and CRS84; EPSG geographic URNs are lat/lon."""
    if not value:
        return Srs(4490, True)
    text = value.strip()
    if text.upper().endswith("CRS84"):
        return Srs(4326, False)
    digits = text.rsplit(":", 1)[-1].rsplit("/", 1)[-1]
    if not digits.isdigit() or int(digits) not in SUPPORTED_SRIDS:
        raise wfs_error(
            "InvalidParameterValue",
            param,
            f"unsupported CRS {value!r}; use one of "
            + ", ".join(f"urn:ogc:def:crs:EPSG::{s}" for s in SUPPORTED_SRIDS),
        )
    srid = int(digits)
    legacy = text.upper().startswith("EPSG:")  # "EPSG:4326" is lon/lat by WFS 1.x habit
    return Srs(srid, srid in (4490, 4326) and not legacy)


def feature_type(registry: LayerRegistry, name: str | None) -> LayerSpec:
    """Resolve ``city:parts`` or ``parts`` to a layer."""
    if not name:
        raise wfs_error("MissingParameterValue", "TYPENAMES", "TYPENAMES is required")
    layer_id = name.split(":", 1)[-1].strip()
    if layer_id not in registry.ids():
        raise wfs_error("InvalidParameterValue", "TYPENAMES", f"unknown feature type {name!r}")
    return registry.get(layer_id)


def parse_int(value: str | None, param: str, default: int, low: int, high: int) -> int:
    """A bounded integer parameter."""
    if value is None or value == "":
        return default
    try:
        number = int(value)
    except ValueError:
        raise wfs_error("InvalidParameterValue", param, f"{param} must be an integer") from None
    if not low <= number <= high:
        raise wfs_error("InvalidParameterValue", param, f"{param} must be in {low}..{high}")
    return number


@dataclass(frozen=True)
class Bbox:
    """A BBOX filter in a given CRS, stored as x/y (lon/lat) order."""

    minx: float
    miny: float
    maxx: float
    maxy: float
    srid: int


def parse_bbox(value: str | None, default_srs: Srs) -> Bbox | None:
    """``minx,miny,maxx,maxy[,crs]``; lat/lon CRSs give latitude first."""
    if not value:
        return None
    parts = [p.strip() for p in value.split(",")]
    if len(parts) not in (4, 5):
        raise wfs_error("InvalidParameterValue", "BBOX", "BBOX needs 4 numbers and optional CRS")
    try:
        a, b, c, d = (float(p) for p in parts[:4])
    except ValueError:
        raise wfs_error("InvalidParameterValue", "BBOX", "BBOX values must be numbers") from None
    if not all(math.isfinite(v) for v in (a, b, c, d)):
        raise wfs_error("InvalidParameterValue", "BBOX", "BBOX values must be finite")
    srs = parse_srs(parts[4], "BBOX") if len(parts) == 5 else default_srs
    box = Bbox(b, a, d, c, srs.srid) if srs.lat_first else Bbox(a, b, c, d, srs.srid)
    if box.minx > box.maxx or box.miny > box.maxy:
        raise wfs_error("InvalidParameterValue", "BBOX", "BBOX minimum exceeds maximum")
    return box


def output_format(value: str | None) -> str:
    """``gml`` or ``geojson``."""
    if not value:
        return "gml"
    text = value.strip().lower()
    if text in GEOJSON_FORMATS:
        return "geojson"
    if text in GML_FORMATS or "gml" in text:
        return "gml"
    raise wfs_error(
        "InvalidParameterValue",
        "OUTPUTFORMAT",
        "use application/gml+xml; version=3.2 or application/json",
    )
