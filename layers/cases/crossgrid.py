"""Cross-grid reminder (跨网格智能提醒): an inspector reporting outside their own grids.

Dafeng gives each responsibility grid (责任网格) one inspector (``city.inspector_grids``). When
an inspector reports at a point covered by none of their grids, the field app shows a reminder
naming the grid the point lies in (if any) and its inspector. Users without grids (not
inspectors) get no reminder.
"""

from __future__ import annotations

from dataclasses import dataclass

import psycopg


@dataclass(frozen=True)
class CrossGrid:
    """The point lies outside the inspector's own grids."""

    grid_code: str | None
    grid_name: str | None
    grid_inspector: str | None
    own_grids: list[str]
    distance_m: float | None
    message: str


CROSS_GRID_SQL = """
WITH pt AS (SELECT ST_SetSRID(ST_MakePoint(%(lon)s, %(lat)s), 4490) AS geom),
own AS (
    SELECT g.code, g.geom FROM city.inspector_grids ig
      JOIN city.responsibility_grids g ON g.code = ig.grid_code
     WHERE ig.user_id = %(user)s
)
SELECT (SELECT array_agg(code ORDER BY code) FROM own),
       EXISTS (SELECT 1 FROM own, pt WHERE ST_Intersects(own.geom, pt.geom)),
       hit.code, hit.name, hit.inspector_name,
       (SELECT min(ST_Distance(own.geom::geography, pt.geom::geography)) FROM own, pt)
  FROM pt
  LEFT JOIN LATERAL (
        SELECT g.code, g.name, g.inspector_name FROM city.responsibility_grids g
         WHERE ST_Intersects(g.geom, pt.geom) ORDER BY g.code LIMIT 1) hit ON true
"""


def _message(grid_name: str | None, inspector: str | None, distance_m: float | None) -> str:
    where = (
        f"该位置属于「{grid_name}」（监督员{inspector}）"
        if grid_name
        else "该位置不在任何责任网格内"
    )
    away = f"，距您的责任网格约{round(distance_m)}米" if distance_m is not None else ""
    return f"跨网格上报：{where}，不在您的责任网格内{away}，请确认位置后再上报。"


async def cross_grid(
    conn: psycopg.AsyncConnection, user_id: int, lon: float, lat: float
) -> CrossGrid | None:
    """The reminder for an inspector's report at a CGCS2000 point, or None when none is due."""
    cur = await conn.execute(CROSS_GRID_SQL, {"user": user_id, "lon": lon, "lat": lat})
    row = await cur.fetchone()
    if row is None or not row[0] or row[1]:
        return None
    own, _inside, code, name, inspector, distance = row
    distance_m = round(float(distance), 1) if distance is not None else None
    return CrossGrid(
        grid_code=code,
        grid_name=name,
        grid_inspector=inspector,
        own_grids=list(own),
        distance_m=distance_m,
        message=_message(name, inspector, distance_m),
    )
