"""Tracks (轨迹): query and playback, mileage, stops and planned-vs-actual route comparison.

Everything is computed by PostGIS over ``telemetry_fixes`` (partition pruning by the period):
the track is ``ST_MakeLine`` of XYM points (M = epoch seconds, so playback times survive
simplification) simplified by ``ST_Simplify`` with half a screen pixel at the requested zoom;
mileage is the geodesic length of the unsimplified line; stops are runs of consecutive fixes
each within ``radius_m`` of the previous one (and not moving faster than 5 km/h) lasting at
least ``min_minutes``; route comparison measures each fix's geodesic distance to the approved
route.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, Final

import psycopg

from spatial.crs import ClientCRS, client_coords, track_geometry
from spatial.errors import FieldIssue, InvalidInput, NotFound, UnprocessableInput

MAX_PERIOD: Final = timedelta(days=7)
STOP_SPEED_KMH: Final = 5.0


def tolerance_for_zoom(zoom: float | None) -> float:
    """Half a 256-px tile pixel at ``zoom``, in degrees (0 = no simplification)."""
    if zoom is None:
        return 0.0
    return 360.0 / (256.0 * 2.0**zoom) / 2.0


def check_period(start: datetime, end: datetime) -> None:
    """Refuse reversed or over-long periods."""
    if end <= start:
        raise InvalidInput("Empty period.", [FieldIssue("to", "must be after from")])
    if end - start > MAX_PERIOD:
        raise InvalidInput("Period too long.", [FieldIssue("to", "at most 7 days per query")])


async def _vehicle(conn: psycopg.AsyncConnection, vehicle_id: int) -> tuple[str, str]:
    cur = await conn.execute(
        "SELECT plate, kind FROM city.fleet_vehicles WHERE id = %s", (vehicle_id,)
    )
    row = await cur.fetchone()
    if row is None:
        raise NotFound(f"No vehicle {vehicle_id}.")
    return row[0], row[1]


TRACK_SQL = """
WITH f AS (
    SELECT device_time, geom, speed_kmh FROM city.telemetry_fixes
    WHERE vehicle_id = %(v)s AND device_time >= %(start)s AND device_time < %(end)s
), line AS (
    SELECT ST_MakeLine(ST_MakePointM(ST_X(geom), ST_Y(geom), extract(epoch FROM device_time))
                       ORDER BY device_time) AS g,
           ST_Length(ST_MakeLine(geom ORDER BY device_time)::geography) AS mileage_m,
           count(*) AS n, min(device_time) AS first, max(device_time) AS last,
           max(speed_kmh) AS max_speed
    FROM f
), simple AS (
    SELECT CASE WHEN %(tol)s > 0 AND n > 2 THEN ST_Simplify(g, %(tol)s, true) ELSE g END AS g
    FROM line
)
SELECT line.n, line.mileage_m, line.first, line.last, line.max_speed,
       array_agg(ST_X(d.geom) ORDER BY d.path), array_agg(ST_Y(d.geom) ORDER BY d.path),
       array_agg(ST_M(d.geom) ORDER BY d.path)
FROM line, simple LEFT JOIN LATERAL ST_DumpPoints(simple.g) d ON true
GROUP BY line.n, line.mileage_m, line.first, line.last, line.max_speed
"""


def _coords(xs: list[float], ys: list[float], crs: ClientCRS) -> list[list[float]]:
    return client_coords(xs, ys, crs, decimals=7)


async def track(
    conn: psycopg.AsyncConnection,
    vehicle_id: int,
    start: datetime,
    end: datetime,
    zoom: float | None = None,
    crs: ClientCRS = ClientCRS.CGCS2000,
) -> dict[str, Any]:
    """GeoJSON Feature: the (simplified) track with playback times and mileage."""
    check_period(start, end)
    plate, kind = await _vehicle(conn, vehicle_id)
    tol = tolerance_for_zoom(zoom)
    cur = await conn.execute(TRACK_SQL, {"v": vehicle_id, "start": start, "end": end, "tol": tol})
    row = await cur.fetchone()
    n, mileage, first, last, max_speed, xs, ys, ms = row or (0, 0, None, None, None, [], [], [])
    xs, ys, ms = ([v for v in arr if v is not None] if arr else [] for arr in (xs, ys, ms))
    coords = _coords(xs, ys, crs)
    geometry = track_geometry(coords)
    return {
        "type": "Feature",
        "id": vehicle_id,
        "geometry": geometry,
        "properties": {
            "vehicle_id": vehicle_id,
            "plate": plate,
            "vehicle_kind": kind,
            "from": start.isoformat(),
            "to": end.isoformat(),
            "fixes": int(n or 0),
            "vertices": len(coords),
            "tolerance_deg": tol,
            "mileage_m": round(float(mileage or 0.0), 1),
            "first_fix": first.isoformat() if first else None,
            "last_fix": last.isoformat() if last else None,
            "max_speed_kmh": max_speed,
            "times": [datetime.fromtimestamp(m, UTC).isoformat() for m in ms],
            "crs": crs.value,
        },
    }


STOPS_SQL = """
WITH f AS (
    SELECT device_time, geom, speed_kmh,
           lag(geom) OVER (ORDER BY device_time) AS prev
    FROM city.telemetry_fixes
    WHERE vehicle_id = %(v)s AND device_time >= %(start)s AND device_time < %(end)s
), marked AS (
    SELECT *, CASE WHEN prev IS NOT NULL
                    AND ST_DWithin(geom::geography, prev::geography, %(r)s)
                    AND coalesce(speed_kmh, 0) <= %(moving)s THEN 0 ELSE 1 END AS brk
    FROM f
), runs AS (
    SELECT *, sum(brk) OVER (ORDER BY device_time) AS run FROM marked
)
SELECT min(device_time) AS start, max(device_time) AS "end", count(*) AS fixes,
       ST_X(ST_Centroid(ST_Collect(geom))) AS x, ST_Y(ST_Centroid(ST_Collect(geom))) AS y
FROM runs GROUP BY run
HAVING max(device_time) - min(device_time) >= make_interval(mins => %(minutes)s)
ORDER BY 1
"""


async def stops(
    conn: psycopg.AsyncConnection,
    vehicle_id: int,
    start: datetime,
    end: datetime,
    *,
    min_minutes: int = 5,
    radius_m: float = 50.0,
    crs: ClientCRS = ClientCRS.CGCS2000,
) -> list[dict[str, Any]]:
    """Stops (停留点): dwell of at least ``min_minutes`` within ``radius_m``."""
    check_period(start, end)
    await _vehicle(conn, vehicle_id)
    params = {
        "v": vehicle_id,
        "start": start,
        "end": end,
        "r": radius_m,
        "minutes": min_minutes,
        "moving": STOP_SPEED_KMH,
    }
    cur = await conn.execute(STOPS_SQL, params)
    out = []
    for first, last, fixes, x, y in await cur.fetchall():
        (lon, lat) = _coords([x], [y], crs)[0]
        out.append(
            {
                "start": first.isoformat(),
                "end": last.isoformat(),
                "minutes": round((last - first).total_seconds() / 60.0, 1),
                "fixes": fixes,
                "lon": lon,
                "lat": lat,
                "crs": crs.value,
            }
        )
    return out


ROUTE_FOR_VEHICLE = """
SELECT route_id FROM city.fleet_bindings
WHERE vehicle_id = %s AND route_id IS NOT NULL
  AND valid_from <= (%s::timestamptz AT TIME ZONE 'Asia/Shanghai')::date
  AND valid_to >= (%s::timestamptz AT TIME ZONE 'Asia/Shanghai')::date
ORDER BY valid_from DESC, id DESC LIMIT 1
"""

COMPARE_SQL = """
WITH r AS (
    SELECT id, code, name, corridor_m, geom::geography AS g FROM city.fleet_routes WHERE id = %(r)s
), f AS (
    SELECT device_time, ST_Distance(t.geom::geography, r.g) AS d, r.corridor_m
    FROM city.telemetry_fixes t, r
    WHERE t.vehicle_id = %(v)s AND t.device_time >= %(start)s AND t.device_time < %(end)s
)
SELECT r.id, r.code, r.name, r.corridor_m, count(f.d),
       count(f.d) FILTER (WHERE f.d <= f.corridor_m), max(f.d),
       (array_agg(f.device_time ORDER BY f.d DESC))[1],
       min(f.device_time) FILTER (WHERE f.d > f.corridor_m),
       max(f.device_time) FILTER (WHERE f.d > f.corridor_m)
FROM r LEFT JOIN f ON true
GROUP BY r.id, r.code, r.name, r.corridor_m
"""


async def route_compare(
    conn: psycopg.AsyncConnection,
    vehicle_id: int,
    start: datetime,
    end: datetime,
    route_id: int | None = None,
) -> dict[str, Any]:
    """Planned vs actual: share of fixes inside the approved route corridor, max deviation."""
    check_period(start, end)
    plate, _kind = await _vehicle(conn, vehicle_id)
    if route_id is None:
        cur = await conn.execute(ROUTE_FOR_VEHICLE, (vehicle_id, end, start))
        row = await cur.fetchone()
        if row is None:
            raise UnprocessableInput(
                "No approved route for this vehicle in the period.",
                [FieldIssue("route_id", "no binding with a route; pass route_id")],
            )
        route_id = int(row[0])
    params = {"r": route_id, "v": vehicle_id, "start": start, "end": end}
    row = await (await conn.execute(COMPARE_SQL, params)).fetchone()
    if row is None:
        raise NotFound(f"No route {route_id}.")
    rid, code, name, corridor, fixes, inside, max_dev, max_at, off_first, off_last = row
    return {
        "vehicle_id": vehicle_id,
        "plate": plate,
        "route_id": rid,
        "route_code": code,
        "route_name": name,
        "corridor_m": corridor,
        "fixes": fixes,
        "within_corridor": inside,
        "share_within": round(inside / fixes, 4) if fixes else None,
        "max_deviation_m": None if max_dev is None else round(float(max_dev), 1),
        "max_deviation_at": max_at.isoformat() if max_at else None,
        "off_route_from": off_first.isoformat() if off_first else None,
        "off_route_to": off_last.isoformat() if off_last else None,
    }
