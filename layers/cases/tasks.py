"""An inspector's field tasks (任务管理): 核实 verify, 核查 check, 补采 supplement.

A task is the inspector's when it is assigned to them, or — while unassigned — when it lies
in one of their responsibility grids (责任网格; the task's grid may be the responsibility
grid itself or a unit grid inside it).
"""

from __future__ import annotations

from typing import Any, Final

import psycopg

from spatial.crs import ClientCRS, from_storage

TASK_KINDS: Final = {"verify": "核实", "check": "核查", "supplement": "补采"}

TASKS_SQL = """
WITH mine AS (SELECT grid_code FROM city.inspector_grids WHERE user_id = %(u)s)
SELECT t.id, t.kind, t.state, t.case_id, t.assignee_user_id, t.grid_code, t.requirement,
       t.due_at, t.created_at, c.case_no, c.category, c.class_code, c.description,
       c.location_desc, c.road_name, c.stage, c.status, c.part_code, c.version,
       ST_X(c.geom) AS lon, ST_Y(c.geom) AS lat,
       (SELECT count(*) FROM city.case_media m WHERE m.case_id = c.id) AS media_count
FROM city.case_tasks t
JOIN city.cases c ON c.id = t.case_id
WHERE t.state = 'open'
  AND (t.assignee_user_id = %(u)s
       OR (t.assignee_user_id IS NULL
           AND (t.grid_code IN (SELECT grid_code FROM mine)
                OR EXISTS (SELECT 1 FROM city.unit_grids g
                           WHERE g.code = t.grid_code
                             AND g.responsibility_grid_code IN (SELECT grid_code FROM mine)))))
ORDER BY t.due_at NULLS LAST, t.id
LIMIT %(n)s
"""


async def inspector_tasks(
    conn: psycopg.AsyncConnection, user_id: int, crs: ClientCRS = ClientCRS.CGCS2000, limit=200
) -> list[dict[str, Any]]:
    """Open tasks of an inspector with the case summary; locations in ``crs``."""
    cur = await conn.execute(TASKS_SQL, {"u": user_id, "n": limit})
    names = [c.name for c in cur.description or []]
    out = []
    for row in await cur.fetchall():
        item = dict(zip(names, row, strict=True))
        lon, lat = from_storage(item.pop("lon"), item.pop("lat"), crs)
        item["kind_name"] = TASK_KINDS.get(item["kind"], item["kind"])
        item["location"] = {"lon": round(float(lon), 8), "lat": round(float(lat), 8), "crs": crs}
        out.append(item)
    return out
