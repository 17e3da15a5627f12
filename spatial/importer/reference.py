"""Reference data from the database: district boundary, unit grids, communities, classes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

import numpy as np
import psycopg
import shapely
from pyproj import CRS, Transformer
from shapely import Geometry

from layers.registry import LayerSpec
from spatial.importer.crs import Coords
from spatial.importer.options import STORAGE_SRID
from spatial.importer.schema import Column

DISTRICT_TOLERANCE_M: Final = 2000.0


@dataclass
class AreaIndex:
    """Polygons with their codes and parent codes, for point-in-polygon lookups."""

    codes: list[str]
    parents: list[str]
    tree: shapely.STRtree
    parent_of: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        """Index parents by code."""
        self.parent_of = dict(zip(self.codes, self.parents, strict=True))

    def locate(self, geom: Geometry) -> int | None:
        """Index of the polygon (lowest code) that contains ``geom``'s representative point."""
        point = geom if geom.geom_type == "Point" else geom.representative_point()
        hits = self.tree.query(point, predicate="intersects")
        return min(hits, key=lambda i: self.codes[i]) if len(hits) else None


@dataclass
class Reference:
    """Reference data from the database needed to check and complete features."""

    district_code: str = ""
    district_name: str = ""
    district: Geometry | None = None
    grids: AreaIndex | None = None
    communities: AreaIndex | None = None
    classes: dict[tuple[str, str], str] = field(default_factory=dict)
    street_names: dict[str, str] = field(default_factory=dict)


def _areas(conn: psycopg.Connection, query: str) -> AreaIndex:
    """Build an index from ``code, parent, wkb`` rows."""
    rows = conn.execute(query).fetchall()
    return AreaIndex(
        codes=[r[0] for r in rows],
        parents=[r[1] for r in rows],
        tree=shapely.STRtree(shapely.from_wkb([bytes(r[2]) for r in rows])),
    )


def load_reference(
    conn: psycopg.Connection, spec: LayerSpec, columns: dict[str, Column], warnings: list[str]
) -> Reference:
    """Load the district, grids, communities and class catalogue the layer needs."""
    ref = Reference()
    _load_district(conn, ref, warnings)
    if spec.locate_grid:
        ref.grids = _areas(
            conn, "SELECT code, community_code, ST_AsBinary(geom) FROM city.unit_grids"
        )
        ref.street_names = dict(conn.execute("SELECT code, name FROM city.streets").fetchall())
    if not spec.is_point and ({"community_code", "street_code"} & set(columns)):
        ref.communities = _areas(
            conn, "SELECT code, street_code, ST_AsBinary(geom) FROM city.communities"
        )
    if spec.table == "parts":
        rows = conn.execute(
            "SELECT major_code, minor_code, department FROM city.component_classes"
        ).fetchall()
        ref.classes = {(r[0], r[1]): r[2] for r in rows}
    return ref


def _load_district(conn: psycopg.Connection, ref: Reference, warnings: list[str]) -> None:
    """The district boundary buffered by the tolerance, prepared for intersects."""
    rows = conn.execute(
        "SELECT code, name, ST_AsBinary(geom) FROM city.districts ORDER BY code"
    ).fetchall()
    if not rows:
        warnings.append("no district boundary in city.districts; district check skipped")
        return
    ref.district_code, ref.district_name = rows[0][0], rows[0][1]
    shape = shapely.union_all(shapely.from_wkb([bytes(r[2]) for r in rows]))
    ref.district = buffer_metres(shape, DISTRICT_TOLERANCE_M)
    shapely.prepare(ref.district)


def buffer_metres(geom: Geometry, metres: float) -> Geometry:
    """Buffer a lon/lat geometry by metres in a local azimuthal equidistant projection."""
    centre = geom.centroid
    local = CRS.from_proj4(f"+proj=aeqd +lat_0={centre.y} +lon_0={centre.x} +ellps=GRS80")
    there = Transformer.from_crs(STORAGE_SRID, local, always_xy=True)
    back = Transformer.from_crs(local, STORAGE_SRID, always_xy=True)

    def fwd(c: Coords) -> Coords:
        return np.column_stack(there.transform(c[:, 0], c[:, 1]))

    def inv(c: Coords) -> Coords:
        return np.column_stack(back.transform(c[:, 0], c[:, 1]))

    return shapely.transform(shapely.transform(geom, fwd).buffer(metres), inv)
