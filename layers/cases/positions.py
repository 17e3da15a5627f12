"""Inspector positions (位置定位): batched fixes from the field app, tracks and who is online.

A batch keeps its good fixes and names each bad one with a reason: no time zone, more than
five minutes in the future, outside China, or an impossible jump from the previous good fix
(faster than :data:`MAX_SPEED_MS` after allowing for both fixes' accuracy). A fix already
stored for the same device time is a duplicate (retries are harmless).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import psycopg
from pydantic import BaseModel, Field, field_validator

from spatial.crs import (
    ClientCRS,
    client_coords,
    out_of_china,
    parse_client_crs,
    to_storage,
    track_geometry,
)

FUTURE_TOLERANCE: Final = timedelta(minutes=5)
MAX_SPEED_MS: Final = 50.0  # 180 km/h: beyond any inspector on foot, bike or car
MAX_FIXES: Final = 1000
MAX_TRACK_POINTS: Final = 50_000
EARTH_RADIUS_M: Final = 6_371_008.8


class Fix(BaseModel):
    """One position fix (lon/lat order) with the device's clock time."""

    lon: float
    lat: float
    device_time: datetime
    accuracy_m: float | None = Field(default=None, ge=0, le=100_000)
    crs: str | None = Field(default=None, description="overrides the batch's crs")

    @field_validator("crs")
    @classmethod
    def _known_crs(cls, value: str | None) -> str | None:
        return None if value is None else parse_client_crs(value).value


class PositionBatch(BaseModel):
    """Fixes collected since the last upload."""

    crs: str = Field(default="wgs84", description="CGCS2000|WGS84|GCJ02|BD09 (GPS: wgs84)")
    fixes: list[Fix] = Field(min_length=1, max_length=MAX_FIXES)

    @field_validator("crs")
    @classmethod
    def _known_crs(cls, value: str) -> str:
        return parse_client_crs(value).value


@dataclass
class UploadResult:
    """Accepted, duplicate and rejected fixes (rejected by index with a reason)."""

    accepted: int = 0
    duplicates: int = 0
    rejected: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class _Point:
    index: int
    lon: float
    lat: float
    at: datetime
    accuracy: float


def distance_m(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    """Great-circle distance (haversine) in metres."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(math.sqrt(min(1.0, a)))


def _convert(index: int, fix: Fix, crs: str, now: datetime) -> _Point | str:
    """Storage point or the reason the fix is refused."""
    if fix.device_time.tzinfo is None:
        return "device_time has no time zone (send ISO 8601 with an offset)"
    if fix.device_time > now + FUTURE_TOLERANCE:
        return f"device_time {fix.device_time.isoformat()} is in the future"
    if not (math.isfinite(fix.lon) and math.isfinite(fix.lat)) or out_of_china(fix.lon, fix.lat):
        return "position outside China (lon/lat swapped?)"
    lon, lat = to_storage(fix.lon, fix.lat, ClientCRS(fix.crs or crs))
    return _Point(index, float(lon), float(lat), fix.device_time, fix.accuracy_m or 0.0)


def _jump(prev: _Point, cur: _Point) -> str | None:
    seconds = abs((cur.at - prev.at).total_seconds())
    metres = distance_m(prev.lon, prev.lat, cur.lon, cur.lat)
    slack = prev.accuracy + cur.accuracy
    if metres - slack > MAX_SPEED_MS * max(seconds, 1.0):
        return f"impossible jump: {metres:.0f} m in {seconds:.0f} s from the previous fix"
    return None


async def _previous(conn: psycopg.AsyncConnection, user_id: int, before: datetime) -> _Point | None:
    cur = await conn.execute(
        "SELECT ST_X(geom), ST_Y(geom), device_time, COALESCE(accuracy_m, 0)"
        " FROM city.inspector_positions WHERE user_id = %s AND device_time <= %s"
        " ORDER BY device_time DESC LIMIT 1",
        (user_id, before),
    )
    row = await cur.fetchone()
    return _Point(-1, row[0], row[1], row[2], row[3]) if row else None


async def upload_positions(
    conn: psycopg.AsyncConnection, user_id: int, batch: PositionBatch, now: datetime | None = None
) -> UploadResult:
    """Store the good fixes of ``batch`` (dedup by device time); report the bad ones."""
    now = now or datetime.now(UTC)
    result, good = UploadResult(), []
    for i, fix in enumerate(batch.fixes):
        point = _convert(i, fix, batch.crs, now)
        if isinstance(point, str):
            result.rejected.append({"index": i, "reason": point})
        else:
            good.append(point)
    good.sort(key=lambda p: (p.at, p.index))
    kept: list[_Point] = []
    prev = await _previous(conn, user_id, good[0].at) if good else None
    for point in good:
        reason = _jump(prev, point) if prev is not None else None
        if reason:
            result.rejected.append({"index": point.index, "reason": reason})
            continue
        kept.append(point)
        prev = point
    result.rejected.sort(key=lambda r: r["index"])
    if kept:
        cur = await conn.execute(
            "INSERT INTO city.inspector_positions (user_id, device_time, accuracy_m, geom)"
            " SELECT %s, t, NULLIF(a, 'NaN'::float8), ST_SetSRID(ST_MakePoint(x, y), 4490)"
            " FROM unnest(%s::timestamptz[], %s::float8[], %s::float8[], %s::float8[])"
            " AS f(t, a, x, y) ON CONFLICT (user_id, device_time) DO NOTHING RETURNING id",
            (
                user_id,
                [p.at for p in kept],
                [batch.fixes[p.index].accuracy_m or math.nan for p in kept],
                [p.lon for p in kept],
                [p.lat for p in kept],
            ),
        )
        result.accepted = len(await cur.fetchall())
        result.duplicates = len(kept) - result.accepted
    return result


def _coords(xs: list[float], ys: list[float], crs: ClientCRS) -> list[list[float]]:
    return client_coords(xs, ys, crs, decimals=8)


async def track(
    conn: psycopg.AsyncConnection,
    user_id: int,
    start: datetime,
    end: datetime,
    crs: ClientCRS = ClientCRS.CGCS2000,
) -> dict[str, Any]:
    """The inspector's track in ``[start, end]`` as a GeoJSON Feature (LineString in ``crs``)."""
    cur = await conn.execute(
        "SELECT ST_X(geom), ST_Y(geom), device_time FROM city.inspector_positions"
        " WHERE user_id = %s AND device_time BETWEEN %s AND %s ORDER BY device_time LIMIT %s",
        (user_id, start, end, MAX_TRACK_POINTS),
    )
    rows = await cur.fetchall()
    coords = _coords([r[0] for r in rows], [r[1] for r in rows], crs)
    geometry = track_geometry(coords)
    return {
        "type": "Feature",
        "geometry": geometry,
        "properties": {
            "user_id": user_id,
            "crs": crs.value,
            "from": start.isoformat(),
            "to": end.isoformat(),
            "count": len(rows),
            "times": [r[2].isoformat() for r in rows],
            "length_m": round(_length(rows), 1),
        },
    }


def _length(rows: list[Any]) -> float:
    return sum(distance_m(a[0], a[1], b[0], b[1]) for a, b in zip(rows, rows[1:], strict=False))


ONLINE_SQL = """
SELECT DISTINCT ON (p.user_id) p.user_id, u.username, u.display_name, u.staff_code,
       p.device_time, p.received_at, p.accuracy_m, ST_X(p.geom) AS x, ST_Y(p.geom) AS y,
       ARRAY(SELECT grid_code FROM city.inspector_grids g WHERE g.user_id = p.user_id
             ORDER BY grid_code) AS grids
FROM city.inspector_positions p JOIN city.users u ON u.id = p.user_id
WHERE p.device_time >= now() - make_interval(mins => %s) AND p.device_time <= now() + '5 min'
ORDER BY p.user_id, p.device_time DESC
"""


async def online(
    conn: psycopg.AsyncConnection, minutes: int = 10, crs: ClientCRS = ClientCRS.CGCS2000
) -> dict[str, Any]:
    """Inspectors with a fix in the last ``minutes`` (在线监督员), as GeoJSON points."""
    cur = await conn.execute(ONLINE_SQL, (minutes,))
    names = [c.name for c in cur.description or []]
    rows = [dict(zip(names, r, strict=True)) for r in await cur.fetchall()]
    coords = _coords([r.pop("x") for r in rows], [r.pop("y") for r in rows], crs)
    return {
        "type": "FeatureCollection",
        "coordinate_system": crs.value,
        "minutes": minutes,
        "features": [
            {
                "type": "Feature",
                "id": r["user_id"],
                "geometry": {"type": "Point", "coordinates": c},
                "properties": {
                    **r,
                    "device_time": r["device_time"].isoformat(),
                    "received_at": r["received_at"].isoformat(),
                },
            }
            for r, c in zip(rows, coords, strict=True)
        ],
    }
