"""Tile matrix sets of the vector tiles: ``WebMercatorQuad`` and the geographic ``CGCS2000Quad``.

Zoom levels of a layer's ``TileSpec`` are WebMercatorQuad levels. ``CGCS2000Quad`` is built like
OGC's ``WorldCRS84Quad`` (2 × 1 tiles at level 0) but in EPSG:4490, so its level ``z`` has the
cell size of WebMercatorQuad level ``z + 1`` at the equator: a layer published at Web Mercator
levels 13–20 is published at CGCS2000Quad levels 12–19 (``zoom_offset = -1``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache

import morecantile
from morecantile.models import TileMatrix
from pyproj import CRS

from layers.registry import TileSpec

Bounds = tuple[float, float, float, float]
"""``(xmin, ymin, xmax, ymax)`` in x/y (easting/longitude first) order."""

CGCS2000_QUAD = "CGCS2000Quad"
WEB_MERCATOR_QUAD = "WebMercatorQuad"


@dataclass(frozen=True)
class TileGrid:
    """A tile matrix set plus what the SQL needs: its SRID and its zoom offset."""

    tms: morecantile.TileMatrixSet
    srid: int
    zoom_offset: int = 0

    @property
    def id(self) -> str:
        """The tile matrix set identifier."""
        return str(self.tms.id)

    @property
    def crs(self) -> str:
        """The CRS URI of the tile matrix set."""
        return str(self.tms.crs.srs)

    @property
    def uri(self) -> str | None:
        """The OGC register URI, for registered sets only."""
        return str(self.tms.uri) if self.tms.uri else None

    def zoom_range(self, tiles: TileSpec) -> range:
        """Tile matrices in which a layer with ``tiles`` is published."""
        low = max(tiles.minzoom + self.zoom_offset, self.tms.minzoom)
        high = min(tiles.maxzoom + self.zoom_offset, self.tms.maxzoom)
        return range(low, high + 1)

    def matrix(self, z: int) -> TileMatrix:
        """The tile matrix of level ``z`` (caller checks the range)."""
        return self.tms.matrix(z)

    def bounds(self, z: int, col: int, row: int, margin: float = 0.0) -> Bounds:
        """Tile bounds in the grid's CRS, grown by ``margin`` tile widths on every side."""
        box = self.tms.xy_bounds(morecantile.Tile(x=col, y=row, z=z))
        dx, dy = (box.right - box.left) * margin, (box.top - box.bottom) * margin
        return box.left - dx, box.bottom - dy, box.right + dx, box.top + dy

    def tile_limits(self, z: int, lonlat: Bounds, margin: float) -> tuple[int, int, int, int]:
        """``(min_col, min_row, max_col, max_row)`` of the tiles touching ``lonlat`` (+margin)."""
        matrix = self.matrix(z)
        origin = self.tms.xy_bounds(morecantile.Tile(x=0, y=0, z=z))
        width, height = origin.right - origin.left, origin.top - origin.bottom
        west, south = self.tms.xy(lonlat[0], lonlat[1])
        east, north = self.tms.xy(lonlat[2], lonlat[3])

        def col(x: float) -> int:
            return min(max(math.floor((x - origin.left) / width), 0), matrix.matrixWidth - 1)

        def row(y: float) -> int:
            return min(max(math.floor((origin.top - y) / height), 0), matrix.matrixHeight - 1)

        return (
            col(west - margin * width),
            row(north + margin * height),
            col(east + margin * width),
            row(south - margin * height),
        )


def _cgcs2000_quad() -> morecantile.TileMatrixSet:
    return morecantile.TileMatrixSet.custom(
        [-180.0, -90.0, 180.0, 90.0],
        CRS.from_epsg(4490),
        matrix_scale=[2, 1],
        minzoom=0,
        maxzoom=21,
        id=CGCS2000_QUAD,
        title="CGCS2000 geographic quad (2 × 1 tiles at level 0, like WorldCRS84Quad)",
        description="Geographic tiling in CGCS2000 (EPSG:4490), latitude/longitude axis order; "
        "level z has the cell size of WebMercatorQuad level z + 1 at the equator.",
        orderedAxes=["Lat", "Lon"],
    )


@cache
def tile_grids() -> dict[str, TileGrid]:
    """The supported tile matrix sets by id (built once; immutable)."""
    return {
        WEB_MERCATOR_QUAD: TileGrid(morecantile.tms.get(WEB_MERCATOR_QUAD), srid=3857),
        CGCS2000_QUAD: TileGrid(_cgcs2000_quad(), srid=4490, zoom_offset=-1),
    }
