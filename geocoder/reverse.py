"""Reverse geocoding: containing areas, nearest plate/POI/road, and a human description.

Two sources give the same answer. The in-memory index (``geocoder.trees``, the default) needs
no database round trip. PostGIS (``source=postgis``) is authoritative and always fresh: KNN
(``<->`` on the GiST indexes) finds the nearest plates, POIs and roads within a radius
(``ST_DWithin``), the few nearest by planar degrees re-ordered by geodesic distance (a degree of
longitude is shorter than one of latitude); ``ST_Covers`` finds the district, unit grid (with
its responsibility grid, community and street) and compound.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import psycopg
from pydantic import BaseModel, Field

from geocoder.index import GeoIndex
from geocoder.schemas import Point, Ref, point_out
from spatial.crs import ClientCRS

M_PER_DEG_LAT = 110_574.0
DIRECTIONS = ("北", "东北", "东", "东南", "南", "西南", "西", "西北")

REVERSE_SQL = """
WITH p AS (SELECT ST_SetSRID(ST_MakePoint(%(lon)s, %(lat)s), 4490) AS g)
SELECT d.code, d.name,
       u.code, rg.code, rg.name, rg.inspector_name, c.code, c.name, s.code, s.name,
       cp.code, cp.name,
       a.code, a.kind, a.base_name || a.number || a.suffix, a.standard_address, a.x, a.y, a.dist,
       poi.code, poi.name, poi.category, poi.x, poi.y, poi.dist,
       rd.code, rd.name, rd.x, rd.y, rd.dist
FROM p
LEFT JOIN LATERAL (SELECT code, name FROM districts WHERE ST_Covers(geom, p.g) LIMIT 1) d ON true
LEFT JOIN LATERAL (
  SELECT code, responsibility_grid_code, community_code, street_code FROM unit_grids
   WHERE ST_Covers(geom, p.g) ORDER BY code LIMIT 1) u ON true
LEFT JOIN responsibility_grids rg ON rg.code = u.responsibility_grid_code
LEFT JOIN communities c ON c.code = u.community_code
LEFT JOIN streets s ON s.code = u.street_code
LEFT JOIN LATERAL (
  SELECT code, name FROM compounds WHERE ST_Covers(geom, p.g) ORDER BY code LIMIT 1) cp ON true
LEFT JOIN LATERAL (
  SELECT k.*, ST_X(k.geom) x, ST_Y(k.geom) y,
         ST_Distance(k.geom::geography, p.g::geography) dist
    FROM (SELECT code, kind, base_name, number, suffix, standard_address, geom FROM addresses
           WHERE ST_DWithin(geom, p.g, %(deg)s) ORDER BY geom <-> p.g LIMIT 4) k
   ORDER BY dist, code LIMIT 1) a ON true
LEFT JOIN LATERAL (
  SELECT k.*, ST_X(k.geom) x, ST_Y(k.geom) y,
         ST_Distance(k.geom::geography, p.g::geography) dist
    FROM (SELECT code, name, category, geom FROM pois
           WHERE ST_DWithin(geom, p.g, %(deg)s) ORDER BY geom <-> p.g LIMIT 4) k
   ORDER BY dist, code LIMIT 1) poi ON true
LEFT JOIN LATERAL (
  SELECT k.code, k.name, ST_X(f) x, ST_Y(f) y,
         ST_Distance(k.geom::geography, p.g::geography) dist
    FROM (SELECT code, name, geom FROM roads
           WHERE ST_DWithin(geom, p.g, %(deg)s) ORDER BY geom <-> p.g LIMIT 3) k,
         ST_ClosestPoint(k.geom, p.g) f
   ORDER BY dist, code LIMIT 1) rd ON true
"""


class Nearby(BaseModel):
    """A nearby plate, POI or road: distance, bearing and a human description."""

    code: str
    name: str
    kind: str
    standard_address: str | None = None
    distance_m: float
    bearing: str | None = Field(description="direction of the point as seen from the feature")
    description: str = Field(description="e.g. 幸福小区3栋东侧约20米")
    point: Point = Field(description="the feature's point (for a road: its closest point)")


class ResponsibilityGrid(Ref):
    """A responsibility grid and its inspector (监督员)."""

    inspector: str | None = None


class ReverseResponse(BaseModel):
    """Where a point is: containing areas and the nearest plate, POI and road."""

    input: Point
    input_crs: ClientCRS
    crs: ClientCRS = Field(description="CRS of every point in this response")
    inside_district: bool
    description: str
    district: Ref | None = None
    street: Ref | None = None
    community: Ref | None = None
    unit_grid: str | None = None
    responsibility_grid: ResponsibilityGrid | None = None
    compound: Ref | None = None
    plate: Nearby | None = None
    poi: Nearby | None = None
    road: Nearby | None = None


def bearing(from_lon: float, from_lat: float, to_lon: float, to_lat: float) -> str:
    """8-wind direction of ``to`` seen from ``from`` (local equirectangular)."""
    dx = (to_lon - from_lon) * math.cos(math.radians(from_lat))
    dy = to_lat - from_lat
    angle = math.degrees(math.atan2(dx, dy)) % 360
    return DIRECTIONS[int((angle + 22.5) // 45) % 8]


def distance_text(metres: float) -> str:
    """约20米 / 约150米 / 约1.2公里."""
    if metres < 100:
        return f"约{max(5, 5 * round(metres / 5))}米"
    if metres < 1000:
        return f"约{10 * round(metres / 10)}米"
    return f"约{metres / 1000:.1f}公里"


def describe(name: str, direction: str | None, metres: float) -> str:
    """``幸福小区3栋东侧约20米``; just the name within 5 m."""
    if metres < 5 or direction is None:
        return name
    return f"{name}{direction}侧{distance_text(metres)}"


@dataclass(slots=True)
class Feature:
    """A nearby feature as found (storage coordinates)."""

    code: str
    name: str
    kind: str
    address: str | None
    lon: float
    lat: float
    distance_m: float


@dataclass(slots=True)
class Found:
    """What is at and near a point, before formatting."""

    district: Ref | None = None
    unit_grid: str | None = None
    responsibility: ResponsibilityGrid | None = None
    community: Ref | None = None
    street: Ref | None = None
    compound: Ref | None = None
    plate: Feature | None = None
    poi: Feature | None = None
    road: Feature | None = None


def _nearby(f: Feature, q: tuple[float, float], crs: ClientCRS) -> Nearby:
    way = bearing(f.lon, f.lat, *q) if f.distance_m >= 5 else None
    return Nearby(
        code=f.code, name=f.name, kind=f.kind, standard_address=f.address,
        distance_m=round(f.distance_m, 1), bearing=way,
        description=describe(f.name, way, f.distance_m), point=point_out(f.lon, f.lat, crs),
    )  # fmt: skip


def assemble(
    found: Found, lon: float, lat: float, input_point: Point, input_crs: ClientCRS, crs: ClientCRS
) -> ReverseResponse:
    """The response for a storage point, whichever source found the features."""
    q = (lon, lat)
    out = ReverseResponse(
        input=input_point, input_crs=input_crs, crs=crs, inside_district=found.district is not None,
        description="", district=found.district, street=found.street, community=found.community,
        unit_grid=found.unit_grid, responsibility_grid=found.responsibility,
        compound=found.compound,
        plate=_nearby(found.plate, q, crs) if found.plate else None,
        poi=_nearby(found.poi, q, crs) if found.poi else None,
        road=_nearby(found.road, q, crs) if found.road else None,
    )  # fmt: skip
    out.description = _summary(out)
    return out


def degrees_for(radius_m: float, lat: float) -> float:
    """A degree radius that covers ``radius_m`` in every direction at ``lat``."""
    return radius_m / (M_PER_DEG_LAT * max(math.cos(math.radians(lat)), 0.1))


def _ref(code: str | None, name: str | None) -> Ref | None:
    return Ref(code=code, name=name) if code else None


async def found_in_postgis(
    conn: psycopg.AsyncConnection, lon: float, lat: float, radius_m: float
) -> Found:
    """One round trip to PostGIS (the authoritative, always-fresh path)."""
    args = {"lon": lon, "lat": lat, "deg": degrees_for(radius_m, lat)}
    row = await (await conn.execute(REVERSE_SQL, args)).fetchone()
    assert row is not None  # noqa: S101 - a LEFT JOIN from one row always yields one row
    found = Found(
        district=_ref(row[0], row[1]), unit_grid=row[2],
        responsibility=ResponsibilityGrid(code=row[3], name=row[4], inspector=row[5])
        if row[3] else None,
        community=_ref(row[6], row[7]), street=_ref(row[8], row[9]),
        compound=_ref(row[10], row[11]),
    )  # fmt: skip
    if row[12] and row[18] <= radius_m:
        kind = "door" if row[13] == "门牌" else "building"
        found.plate = Feature(row[12], row[14], kind, row[15], *row[16:19])
    if row[19] and row[24] <= radius_m:
        found.poi = Feature(row[19], row[20], "poi", None, *row[22:25])
    if row[25] and row[29] <= radius_m:
        found.road = Feature(row[25], row[26], "road", None, *row[27:30])
    return found


def found_in_memory(ix: GeoIndex, lon: float, lat: float, radius_m: float) -> Found:
    """The same answer from the in-memory index (no database round trip)."""
    trees = ix.trees
    assert trees is not None  # noqa: S101 - build_index always builds the trees
    at = trees.point(lon, lat)
    found = Found()
    district = trees.covering("district", at)
    found.district = _ref(district, ix.name_of(district))
    grid = trees.covering("grid", at)
    if grid:
        found.unit_grid = grid
        place = ix.places.get(grid)
        if place is not None:
            found.community = _ref(place.community, ix.name_of(place.community))
            found.street = _ref(place.street, ix.name_of(place.street))
        resp = ix.grid_responsibility.get(grid)
        if resp:
            name, inspector = ix.responsibility.get(resp, (None, None))
            found.responsibility = ResponsibilityGrid(code=resp, name=name, inspector=inspector)
    compound = trees.covering("compound", at)
    found.compound = _ref(compound, ix.name_of(compound))
    for kind in ("plate", "poi", "road"):
        hit = trees.nearest(kind, at, radius_m)
        if hit is None:
            continue
        p = ix.places[hit.code]
        address = p.address if kind == "plate" else None
        x, y = (hit.lon, hit.lat) if kind == "road" else (p.lon, p.lat)
        feature = Feature(hit.code, p.name, p.kind, address, x, y, hit.distance_m)
        setattr(found, kind, feature)
    return found


def _summary(out: ReverseResponse) -> str:
    """One line: compound, then the nearest plate (or road, or area)."""
    near = out.plate or out.road or out.poi
    if near is not None:
        text = near.description
        if out.compound and out.compound.name and not text.startswith(out.compound.name):
            text = f"{out.compound.name}内，{text}"
        return text
    if out.community and out.community.name:
        return f"{out.street.name if out.street else ''}{out.community.name}内"
    return "本区范围内" if out.inside_district else "不在本区范围内"
