"""Similar cases (相似案卷智能分析): possible duplicates of a report, found and ranked in PostGIS.

A case is similar when it has the same category and class code (大小类), lies within
``radius_m`` (案件发生范围) and is either still open or was reported within ``window_days``
of ``at`` (案件发生时间); merged cases are left out (their master is listed instead).

The search runs on the GiST index of ``city.cases.geom``: ``ST_DWithin`` on the CGCS2000
geometry with a radius in degrees of longitude at the point's latitude (a slight
over-estimate, so nothing is missed), then the exact ``ST_Distance`` on the geography.

Ranking: the same component (部件 ``part_code``) first, then ``score`` (0–1): 0.6 × nearness
(1 − distance/radius) + 0.4 × recency (1 − time gap/window, floored at 0), + 1 for the same
component. Defaults (50 m, 7 days) come from the rules ``similar_radius_m`` and
``similar_window_days`` of the class's workflow definition, else the built-in defaults.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg

from layers.cases.dispatch import TERMINAL_STAGES

DEFAULT_RADIUS_M = 50.0
DEFAULT_WINDOW_DAYS = 7
MAX_RADIUS_M = 5000.0
METRES_PER_DEGREE_LAT = 110_574.0
METRES_PER_DEGREE_LON_EQUATOR = 111_320.0


@dataclass(frozen=True)
class SimilarCase:
    """A possible duplicate of a report."""

    id: int
    case_no: str
    stage: str
    status: str
    distance_m: float
    reported_at: datetime
    same_part: bool
    score: float


def degree_radius(radius_m: float, lat: float) -> float:
    """A radius in degrees covering ``radius_m`` metres in every direction at ``lat``."""
    cos_lat = max(math.cos(math.radians(lat)), 0.01)
    return 1.01 * radius_m / min(METRES_PER_DEGREE_LAT, METRES_PER_DEGREE_LON_EQUATOR * cos_lat)


SETTINGS_SQL = """
WITH w AS (
    SELECT coalesce(
        (SELECT t.workflow_code FROM city.case_type_workflows t
          WHERE t.category = %(category)s
            AND (t.major_code IS NULL OR t.major_code = %(major)s)
            AND (t.minor_code IS NULL OR t.minor_code = %(minor)s)
          ORDER BY t.minor_code IS NULL, t.major_code IS NULL LIMIT 1),
        (SELECT d.code FROM city.workflow_definitions d WHERE d.is_default
          ORDER BY d.code LIMIT 1)) AS code
)
SELECT city.workflow_rule(w.code, 'similar_radius_m', %(radius)s::numeric),
       city.workflow_rule(w.code, 'similar_window_days', %(window)s::numeric)
  FROM w
"""


def _number(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) and number > 0 else None


async def settings(
    conn: psycopg.AsyncConnection, category: str, class_code: str
) -> tuple[float, int]:
    """The (radius_m, window_days) for a class: its workflow's rules, else the defaults."""
    args = {
        "category": category,
        "major": class_code[6:8],
        "minor": class_code[8:10],
        "radius": DEFAULT_RADIUS_M,
        "window": DEFAULT_WINDOW_DAYS,
    }
    cur = await conn.execute(SETTINGS_SQL, args)
    row = await cur.fetchone()
    radius = _number(row[0]) if row else None
    window = _number(row[1]) if row else None
    return (radius or DEFAULT_RADIUS_M, int(window) if window else DEFAULT_WINDOW_DAYS)


SIMILAR_SQL = """
WITH q AS (SELECT ST_SetSRID(ST_MakePoint(%(lon)s, %(lat)s), 4490) AS pt)
SELECT c.id, c.case_no, c.stage, c.status, d.metres, c.reported_at,
       coalesce(c.part_code = %(part)s, false) AS same_part,
       0.6 * (1 - d.metres / %(radius)s)
       + 0.4 * greatest(0, 1 - abs(extract(epoch FROM %(at)s - c.reported_at))
                               / (greatest(%(window)s::int, 1) * 86400.0))
       + CASE WHEN c.part_code = %(part)s THEN 1 ELSE 0 END AS score
  FROM q
  JOIN city.cases c ON ST_DWithin(c.geom, q.pt, %(degrees)s)
 CROSS JOIN LATERAL (SELECT ST_Distance(c.geom::geography, q.pt::geography) AS metres) d
 WHERE c.category = %(category)s
   AND c.class_code = %(class_code)s
   AND c.stage <> 'merged'
   AND (NOT c.stage = ANY(%(terminal)s)
        OR c.reported_at >= %(at)s - make_interval(days => %(window)s::int))
   AND (%(exclude)s::bigint IS NULL OR c.id <> %(exclude)s::bigint)
   AND d.metres <= %(radius)s
 ORDER BY same_part DESC, score DESC, d.metres, c.id
 LIMIT %(limit)s
"""


def similar_query(
    *,
    category: str,
    class_code: str,
    lon: float,
    lat: float,
    at: datetime,
    part_code: str | None,
    exclude_id: int | None,
    radius_m: float,
    window_days: int,
    limit: int,
) -> tuple[str, dict[str, Any]]:
    """The SQL and its parameters (exposed for EXPLAIN in tests)."""
    args = {
        "lon": lon,
        "lat": lat,
        "part": part_code,
        "radius": float(radius_m),
        "at": at,
        "window": int(window_days),
        "degrees": degree_radius(radius_m, lat),
        "category": category,
        "class_code": class_code,
        "terminal": list(TERMINAL_STAGES),
        "exclude": exclude_id,
        "limit": limit,
    }
    return SIMILAR_SQL, args


async def find_similar(
    conn: psycopg.AsyncConnection,
    *,
    category: str,
    class_code: str,
    lon: float,
    lat: float,
    at: datetime,
    part_code: str | None = None,
    exclude_id: int | None = None,
    radius_m: float | None = None,
    window_days: int | None = None,
    limit: int = 10,
) -> list[SimilarCase]:
    """Open or recent cases of the same class near a CGCS2000 point, best match first."""
    if radius_m is None or window_days is None:
        default_radius, default_window = await settings(conn, category, class_code)
        radius_m = default_radius if radius_m is None else radius_m
        window_days = default_window if window_days is None else window_days
    radius_m = min(max(float(radius_m), 1.0), MAX_RADIUS_M)
    query, args = similar_query(
        category=category,
        class_code=class_code,
        lon=lon,
        lat=lat,
        at=at,
        part_code=part_code,
        exclude_id=exclude_id,
        radius_m=radius_m,
        window_days=max(int(window_days), 0),
        limit=limit,
    )
    cur = await conn.execute(query, args)
    return [
        SimilarCase(
            id=r[0],
            case_no=r[1],
            stage=r[2],
            status=r[3],
            distance_m=round(float(r[4]), 2),
            reported_at=r[5],
            same_part=bool(r[6]),
            score=round(float(r[7]), 4),
        )
        for r in await cur.fetchall()
    ]


async def similar_to_case(
    conn: psycopg.AsyncConnection,
    case_id: int,
    *,
    radius_m: float | None = None,
    window_days: int | None = None,
    limit: int = 10,
) -> list[SimilarCase] | None:
    """Cases similar to an existing case (itself excluded); None for an unknown case."""
    cur = await conn.execute(
        "SELECT category, class_code, ST_X(geom), ST_Y(geom), reported_at, part_code"
        " FROM city.cases WHERE id = %s",
        (case_id,),
    )
    row = await cur.fetchone()
    if row is None:
        return None
    return await find_similar(
        conn,
        category=row[0],
        class_code=row[1],
        lon=row[2],
        lat=row[3],
        at=row[4],
        part_code=row[5],
        exclude_id=case_id,
        radius_m=radius_m,
        window_days=window_days,
        limit=limit,
    )
