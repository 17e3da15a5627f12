"""The tile matrix sets of ``/wmts`` and ``/raster``, and what WMTS capabilities say of them.

The sets themselves (``WebMercatorQuad`` and the geographic ``CGCS2000Quad`` in EPSG:4490) are
defined once, in ``spatial/tms.py``, and shared with the vector tiles. EPSG:4490's axis order is
latitude, longitude, so its WMTS ``TopLeftCorner`` is ``90 -180``. WMTS publishes levels
0–``MAX_ZOOM`` of both sets.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import morecantile
from morecantile.defaults import TileMatrixSets

from spatial.tms import CGCS2000_QUAD, WEB_MERCATOR_QUAD, tile_grids

WEB_MERCATOR_ID = WEB_MERCATOR_QUAD
CGCS2000_ID = CGCS2000_QUAD
MAX_ZOOM = 20


@dataclass(frozen=True)
class TmsInfo:
    """What WMTS capabilities say about a tile matrix set beyond morecantile's model."""

    id: str
    supported_crs: str
    epsg: int
    well_known_scale_set: str | None = None
    title: str = ""


TMS_INFO: dict[str, TmsInfo] = {
    WEB_MERCATOR_ID: TmsInfo(
        WEB_MERCATOR_ID,
        "urn:ogc:def:crs:EPSG::3857",
        3857,
        "urn:ogc:def:wkss:OGC:1.0:GoogleMapsCompatible",
        "Google Maps Compatible (EPSG:3857)",
    ),
    CGCS2000_ID: TmsInfo(
        CGCS2000_ID,
        "urn:ogc:def:crs:EPSG::4490",
        4490,
        None,
        "CGCS2000 geographic quad (EPSG:4490, 2 × 1 tiles at level 0, like WorldCRS84Quad)",
    ),
}


@cache
def get_tms(tms_id: str) -> morecantile.TileMatrixSet:
    """A supported tile matrix set by id (``KeyError`` when unknown)."""
    if tms_id not in TMS_INFO:
        raise KeyError(tms_id)
    return tile_grids()[tms_id].tms


@cache
def supported_tms() -> TileMatrixSets:
    """Both tile matrix sets, for titiler's factory."""
    return TileMatrixSets({tms_id: get_tms(tms_id) for tms_id in TMS_INFO})
