"""Fence records (围栏管理): validation, create/replace/delete and GeoJSON output.

Geometry input by kind: ``polygon``/``forbidden_zone``/``site`` take a (Multi)Polygon,
``circle`` a Point and ``radius_m``, ``corridor``/``forbidden_road`` a (Multi)LineString and
``width_m`` (the stored fence is the line buffered by half the width in metres, the line kept
in ``line``). Everything is stored and returned in CGCS2000 (EPSG:4490). Fences mirrored from
fleet sites and approved routes (``site_id``/``route_id``) are edited through the registry.
"""

from __future__ import annotations

from typing import Any, Final

import psycopg
import shapely
from psycopg.types.json import Jsonb
from shapely.geometry import shape

from spatial.errors import Conflict, FieldIssue, NotFound, UnprocessableInput
from spatial.geofence.applicability import ApplicabilityError, parse_applicability
from spatial.geofence.fences import FENCE_KINDS, RULES
from spatial.geofence.schedule import ScheduleError, parse_schedule

AREA_KINDS: Final = ("polygon", "forbidden_zone", "site")
LINE_KINDS: Final = ("corridor", "forbidden_road")
GEOMETRY_TYPES: Final = {
    "polygon": ("Polygon", "MultiPolygon"),
    "forbidden_zone": ("Polygon", "MultiPolygon"),
    "site": ("Polygon", "MultiPolygon"),
    "circle": ("Point",),
    "corridor": ("LineString", "MultiLineString"),
    "forbidden_road": ("LineString", "MultiLineString"),
}

COLUMNS: Final = """
f.id, f.name, f.kind, f.rule, f.inside_max_minutes, f.speed_limit_kmh, f.radius_m, f.width_m,
f.hysteresis_m, f.dwell_s, f.schedule, f.applicability, f.site_id, f.site_kind, f.route_id,
f.active, f.created_at, f.updated_at, ST_AsGeoJSON(f.geom, 7)::json AS geometry,
ST_AsGeoJSON(f.line, 7)::json AS line
"""
GEOM_SQL: Final = """
CASE %(shape)s
  WHEN 'area' THEN ST_Multi(ST_CollectionExtract(ST_MakeValid(ST_GeomFromText(%(wkt)s, 4490)), 3))
  WHEN 'circle' THEN ST_Multi(ST_Transform(ST_Buffer(
      ST_Transform(ST_GeomFromText(%(wkt)s, 4490), 4528), %(radius)s, 32), 4490))
  ELSE ST_Multi(ST_Transform(ST_Buffer(
      ST_Transform(ST_GeomFromText(%(wkt)s, 4490), 4528), %(width)s / 2.0), 4490))
END
"""
LINE_SQL: Final = "CASE WHEN %(shape)s = 'line' THEN ST_Multi(ST_GeomFromText(%(wkt)s, 4490)) END"
FIELDS: Final = (
    "name",
    "kind",
    "rule",
    "inside_max_minutes",
    "speed_limit_kmh",
    "radius_m",
    "width_m",
    "hysteresis_m",
    "dwell_s",
    "schedule",
    "applicability",
    "active",
)


def _issue(field: str, message: str) -> UnprocessableInput:
    return UnprocessableInput(f"Invalid fence: {message}", [FieldIssue(field, message)])


def check(fence: dict[str, Any]) -> dict[str, Any]:
    """Validate a fence document (geometry already in CGCS2000 GeoJSON); SQL parameters."""
    kind = fence["kind"]
    if kind not in FENCE_KINDS:
        raise _issue("kind", f"one of {', '.join(FENCE_KINDS)}")
    if fence["rule"] not in RULES:
        raise _issue("rule", f"one of {', '.join(RULES)}")
    if fence["rule"] == "inside_max" and not fence.get("inside_max_minutes"):
        raise _issue("inside_max_minutes", "required for rule inside_max")
    if fence["rule"] == "outside" and kind != "corridor":
        raise _issue("rule", "'outside' applies to corridors")
    try:
        parse_schedule(fence.get("schedule"))
        parse_applicability(fence.get("applicability"))
    except (ScheduleError, ApplicabilityError) as exc:
        raise _issue(exc.field, exc.message) from None
    geom = shape(fence["geometry"])
    if geom.geom_type not in GEOMETRY_TYPES[kind]:
        wanted = " or ".join(GEOMETRY_TYPES[kind])
        raise _issue("geometry", f"a {kind} fence needs a {wanted}")
    if not (115 < geom.centroid.x < 125 and 30 < geom.centroid.y < 36):
        raise _issue("geometry", "outside the Dafeng area")
    shape_kind = "area" if kind in AREA_KINDS else "circle" if kind == "circle" else "line"
    if kind == "circle" and not (fence.get("radius_m") or 0) > 0:
        raise _issue("radius_m", "a circle needs radius_m > 0")
    if kind in LINE_KINDS and not (fence.get("width_m") or 0) > 0:
        raise _issue("width_m", f"a {kind} needs width_m > 0")
    if kind in AREA_KINDS and not geom.is_valid:
        geom = shapely.make_valid(geom)
    params = {k: fence.get(k) for k in FIELDS}
    params["schedule"] = Jsonb(fence.get("schedule") or {})
    params["applicability"] = Jsonb(fence.get("applicability") or {})
    params.update(
        shape=shape_kind,
        wkt=shapely.to_wkt(geom, rounding_precision=9),
        radius=fence.get("radius_m"),
        width=fence.get("width_m"),
    )
    return params


def _feature(row: dict[str, Any]) -> dict[str, Any]:
    props = {k: v for k, v in row.items() if k not in ("geometry", "id")}
    return {"type": "Feature", "id": row["id"], "geometry": row["geometry"], "properties": props}


async def _rows(conn: psycopg.AsyncConnection, query: str, args: Any) -> list[dict[str, Any]]:
    cur = await conn.execute(query, args)
    names = [c.name for c in cur.description or []]
    return [dict(zip(names, r, strict=True)) for r in await cur.fetchall()]


async def list_fences(
    conn: psycopg.AsyncConnection,
    kind: str | None = None,
    active: bool | None = None,
    limit: int = 1000,
    offset: int = 0,
) -> dict[str, Any]:
    """Fences as a GeoJSON FeatureCollection (CGCS2000)."""
    rows = await _rows(
        conn,
        f"SELECT {COLUMNS} FROM city.geofences f"
        " WHERE (%(kind)s::text IS NULL OR f.kind = %(kind)s)"
        " AND (%(active)s::bool IS NULL OR f.active = %(active)s)"
        " ORDER BY f.id LIMIT %(limit)s OFFSET %(offset)s",
        {"kind": kind, "active": active, "limit": limit, "offset": offset},
    )
    return {"type": "FeatureCollection", "features": [_feature(r) for r in rows]}


async def get_fence(conn: psycopg.AsyncConnection, fence_id: int) -> dict[str, Any]:
    """One fence as a GeoJSON Feature."""
    rows = await _rows(conn, f"SELECT {COLUMNS} FROM city.geofences f WHERE f.id = %s", (fence_id,))
    if not rows:
        raise NotFound(f"No fence {fence_id}.")
    return _feature(rows[0])


async def create_fence(conn: psycopg.AsyncConnection, fence: dict[str, Any]) -> dict[str, Any]:
    """Insert a fence; returns it."""
    params = check(fence)
    names = ", ".join(FIELDS)
    values = ", ".join(f"%({k})s" for k in FIELDS)
    cur = await conn.execute(
        f"INSERT INTO city.geofences ({names}, geom, line) "
        f"VALUES ({values}, {GEOM_SQL}, {LINE_SQL}) RETURNING id",
        params,
    )
    row = await cur.fetchone()
    assert row is not None
    return await get_fence(conn, int(row[0]))


async def _mirrored(conn: psycopg.AsyncConnection, fence_id: int) -> None:
    cur = await conn.execute(
        "SELECT site_id IS NOT NULL OR route_id IS NOT NULL FROM city.geofences WHERE id = %s",
        (fence_id,),
    )
    row = await cur.fetchone()
    if row is None:
        raise NotFound(f"No fence {fence_id}.")
    if row[0]:
        raise Conflict(
            "This fence mirrors a fleet site or approved route; edit the site or route instead.",
            [FieldIssue("id", "mirrored from fleet_sites/fleet_routes")],
        )


async def replace_fence(
    conn: psycopg.AsyncConnection, fence_id: int, fence: dict[str, Any]
) -> dict[str, Any]:
    """Replace every field of a fence."""
    params = check(fence)
    async with conn.transaction():
        await _mirrored(conn, fence_id)
        sets = ", ".join(f"{k} = %({k})s" for k in FIELDS)
        await conn.execute(
            f"UPDATE city.geofences SET {sets}, geom = {GEOM_SQL}, line = {LINE_SQL}, "
            "updated_at = now() WHERE id = %(id)s",
            {**params, "id": fence_id},
        )
    return await get_fence(conn, fence_id)


async def delete_fence(conn: psycopg.AsyncConnection, fence_id: int) -> None:
    """Delete a fence (its states go with it; its alarms keep their history)."""
    async with conn.transaction():
        await _mirrored(conn, fence_id)
        await conn.execute("DELETE FROM city.geofences WHERE id = %s", (fence_id,))
