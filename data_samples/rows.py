"""Row-building blocks shared by the sample tables: EWKB, H3, areas, grid lookup."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import h3
import numpy as np
import shapely
from pyproj import Geod
from shapely.geometry import MultiPolygon, Polygon

from data_samples.geography import Area

COUNTY = "320904"
COUNTY_NAME = "大丰区"
GEOD = Geod(ellps="GRS80")


@dataclass
class Table:
    """Rows for one table, in COPY column order; geometry columns as hex EWKB."""

    name: str
    columns: tuple[str, ...]
    rows: list[tuple[Any, ...]] = field(default_factory=list)


def ewkb(geom: shapely.Geometry) -> str:
    """Hex EWKB with SRID 4490 (what PostGIS parses fastest from COPY text)."""
    return shapely.to_wkb(shapely.set_srid(geom, 4490), hex=True, include_srid=True)


def ewkb_many(geoms: Sequence[shapely.Geometry] | np.ndarray) -> list[str]:
    """Vectorised :func:`ewkb`."""
    arr = shapely.set_srid(np.asarray(geoms, dtype=object), 4490)
    return list(shapely.to_wkb(arr, hex=True, include_srid=True))


def area_m2(geom: shapely.Geometry) -> float:
    """Geodesic area on the CGCS2000 ellipsoid."""
    return round(abs(GEOD.geometry_area_perimeter(geom)[0]), 1)


def h3_cells(lon: np.ndarray, lat: np.ndarray) -> list[int]:
    """H3 resolution-9 cells as signed 64-bit integers."""
    return [
        h3.str_to_int(h3.latlng_to_cell(float(y), float(x), 9))
        for x, y in zip(lon, lat, strict=True)
    ]


def multi(geom: shapely.Geometry) -> MultiPolygon:
    """Promote a polygon to a multipolygon."""
    return MultiPolygon([geom]) if isinstance(geom, Polygon) else geom


class GridLocator:
    """Find the unit grid containing points (STRtree over the cells)."""

    def __init__(self, grids: list[Area]) -> None:
        """Index the grid polygons."""
        self.codes = np.array([g.code for g in grids])
        self.community = np.array([g.parent for g in grids])
        self.tree = shapely.STRtree([g.cells[0].polygon for g in grids])

    def locate(self, lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
        """Index into ``codes`` per point, -1 when outside every grid."""
        points = shapely.points(lon, lat)
        pt_idx, grid_idx = self.tree.query(points, predicate="intersects")
        out = np.full(len(points), -1)
        first = np.unique(pt_idx, return_index=True)[1]
        out[pt_idx[first]] = grid_idx[first]
        return out
