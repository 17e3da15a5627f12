"""Electronic manifests (电子联单): trips built from site fence events and gate weighbridges.

Leaving a 工地 (or 中转场) opens a manifest with the exit weighing (地磅, the nearest
``gate_events`` weighbridge row of that vehicle and site within ``WEIGH_WINDOW``) and the
approved binding/route; entering a 消纳场 (or 中转场) completes it with the entry weighing and the
reconciliation difference, or marks it ``unapproved`` when no valid binding allows that
disposal for that origin. Leaving a site again with a manifest still open breaks the earlier one
(``broken``: 未到达消纳场), as does a manifest open longer than ``OPEN_HOURS``
(:func:`expire`). Weighings that arrive after the fence event are filled by :func:`reconcile`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, timedelta
from typing import Any, Final

import psycopg

from spatial.geofence.applicability import VehicleInfo
from spatial.geofence.engine import FenceEvent, Signal
from spatial.geofence.fences import LOADING_SITES, UNLOADING_SITES, FenceSet
from spatial.geofence.schedule import TZ

WEIGH_WINDOW: Final = timedelta(minutes=20)
OPEN_HOURS: Final = 6
WEIGHT_TOLERANCE: Final = 0.05  # |exit − entry| above 5 % of the exit weight: 对账异常

_WEIGHT = """(
    SELECT g.weight_kg FROM city.gate_events g
    WHERE g.site_id = {site} AND g.vehicle_id = {vehicle} AND g.direction = '{direction}'
      AND g.source = 'weighbridge' AND g.weight_kg IS NOT NULL
      AND g.at BETWEEN {at} - %(window)s::interval AND {at} + %(window)s::interval
    ORDER BY abs(extract(epoch FROM g.at - {at})) LIMIT 1)"""

BREAK_SQL = """
UPDATE city.manifests SET state = 'broken', reason = '未到达消纳场即再次出场', updated_at = now()
WHERE vehicle_id = %(vehicle)s AND state = 'open' AND exit_at < %(at)s
"""
OPEN_SQL = f"""
INSERT INTO city.manifests (vehicle_id, company_id, site_id, binding_id, route_id, exit_at,
                            exit_weight_kg)
SELECT %(vehicle)s, %(company)s, %(site)s, b.id, b.route_id, %(at)s,
       {_WEIGHT.format(site="%(site)s", vehicle="%(vehicle)s", direction="out", at="%(at)s")}
FROM (SELECT 1) one
LEFT JOIN LATERAL (
    SELECT id, route_id FROM city.fleet_bindings
    WHERE vehicle_id = %(vehicle)s AND site_id = %(site)s
      AND %(day)s BETWEEN valid_from AND valid_to
    ORDER BY id LIMIT 1) b ON true
"""
COMPLETE_SQL = f"""
WITH m AS (
    SELECT id, site_id, exit_weight_kg FROM city.manifests
    WHERE vehicle_id = %(vehicle)s AND state = 'open' AND exit_at <= %(at)s
    ORDER BY exit_at DESC LIMIT 1 FOR UPDATE
), w AS (
    SELECT {_WEIGHT.format(site="%(site)s", vehicle="%(vehicle)s", direction="in", at="%(at)s")}
           AS kg
), ok AS (
    SELECT EXISTS (
        SELECT 1 FROM city.fleet_bindings b, m
        WHERE b.vehicle_id = %(vehicle)s AND b.site_id = m.site_id
          AND b.disposal_site_id = %(site)s AND %(day)s BETWEEN b.valid_from AND b.valid_to
    ) AS approved
)
UPDATE city.manifests t SET
    disposal_site_id = %(site)s, entry_at = %(at)s, entry_weight_kg = w.kg,
    weight_diff_kg = m.exit_weight_kg - w.kg,
    state = CASE WHEN ok.approved THEN 'complete' ELSE 'unapproved' END,
    reason = CASE WHEN ok.approved THEN NULL ELSE '非核准消纳场' END,
    updated_at = now()
FROM m, w, ok WHERE t.id = m.id
RETURNING t.id, t.state
"""


def _day(at: datetime) -> date:
    return at.astimezone(TZ).date()


COUNT_MANY_SQL = """
UPDATE city.manifests m SET alarms = m.alarms + u.n, off_route = m.off_route OR u.off,
       updated_at = now()
FROM unnest(%s::int[], %s::int[], %s::bool[]) AS u(vehicle, n, off)
WHERE m.vehicle_id = u.vehicle AND m.state = 'open'
"""


async def apply(
    conn: psycopg.AsyncConnection,
    events: Sequence[FenceEvent],
    signals: Sequence[Signal],
    fences: FenceSet,
    vehicles: dict[int, VehicleInfo],
) -> int:
    """Open/complete manifests from site events (in time order), then count trip alarms."""
    changed = 0
    for e in sorted(events, key=lambda e: e.at):
        n = fences.by_id.get(e.fence_id)
        fence = fences.fences[n] if n is not None else None
        if fence is None or fence.kind != "site" or fence.site_id is None:
            continue
        vehicle = vehicles.get(e.vehicle_id)
        params = {
            "vehicle": e.vehicle_id,
            "company": vehicle.company_id if vehicle else None,
            "site": fence.site_id,
            "at": e.at,
            "day": _day(e.at),
            "window": WEIGH_WINDOW,
        }
        if e.kind == "enter" and fence.site_kind in UNLOADING_SITES:
            cur = await conn.execute(COMPLETE_SQL, params)
            changed += len(await cur.fetchall())
        if e.kind == "exit" and fence.site_kind in LOADING_SITES:
            await conn.execute(BREAK_SQL, params)
            await conn.execute(OPEN_SQL, params)
            changed += 1
    counts: dict[int, list[Any]] = {}
    for s in signals:
        if s.phase in ("start", "point"):
            c = counts.setdefault(s.vehicle_id, [0, False])
            c[0] += 1
            c[1] = c[1] or s.kind == "off_corridor"
    if counts:
        vids = list(counts)
        await conn.execute(
            COUNT_MANY_SQL, (vids, [counts[v][0] for v in vids], [counts[v][1] for v in vids])
        )
    return changed


RECONCILE_SQL = f"""
UPDATE city.manifests m SET
    exit_weight_kg = coalesce(m.exit_weight_kg, {
    _WEIGHT.format(site="m.site_id", vehicle="m.vehicle_id", direction="out", at="m.exit_at")
}),
    entry_weight_kg = coalesce(m.entry_weight_kg, {
    _WEIGHT.format(
        site="m.disposal_site_id", vehicle="m.vehicle_id", direction="in", at="m.entry_at"
    )
}),
    updated_at = now()
WHERE m.exit_at >= %(since)s AND (m.exit_weight_kg IS NULL
      OR (m.entry_at IS NOT NULL AND m.entry_weight_kg IS NULL))
"""
DIFF_SQL = """
UPDATE city.manifests SET weight_diff_kg = exit_weight_kg - entry_weight_kg
WHERE exit_at >= %(since)s AND weight_diff_kg IS DISTINCT FROM exit_weight_kg - entry_weight_kg
"""
EXPIRE_SQL = """
UPDATE city.manifests SET state = 'broken', reason = '超时未到达消纳场', updated_at = now()
WHERE state = 'open' AND exit_at < %(now)s - make_interval(hours => %(hours)s)
"""


async def reconcile(conn: psycopg.AsyncConnection, since: datetime) -> int:
    """Fill weighings that arrived late and recompute the differences."""
    cur = await conn.execute(RECONCILE_SQL, {"since": since, "window": WEIGH_WINDOW})
    await conn.execute(DIFF_SQL, {"since": since})
    return cur.rowcount


async def expire(conn: psycopg.AsyncConnection, now: datetime, hours: int = OPEN_HOURS) -> int:
    """Break manifests open for longer than ``hours`` (超时未到达消纳场)."""
    cur = await conn.execute(EXPIRE_SQL, {"now": now, "hours": hours})
    return cur.rowcount


MANIFEST_COLUMNS = """
m.id, m.state, m.reason, m.vehicle_id, v.plate, m.company_id, c.name AS company,
m.site_id, s.name AS site, m.disposal_site_id, d.name AS disposal_site, m.binding_id,
m.route_id, m.exit_at, m.exit_weight_kg, m.entry_at, m.entry_weight_kg, m.weight_diff_kg,
(m.weight_diff_kg IS NOT NULL AND abs(m.weight_diff_kg) > %(tolerance)s * m.exit_weight_kg)
    AS weight_mismatch,
m.off_route, m.alarms
"""
MANIFEST_FROM = """
FROM city.manifests m
JOIN city.fleet_vehicles v ON v.id = m.vehicle_id
LEFT JOIN city.fleet_companies c ON c.id = m.company_id
JOIN city.fleet_sites s ON s.id = m.site_id
LEFT JOIN city.fleet_sites d ON d.id = m.disposal_site_id
"""

DAILY_TRIPS_SQL = """
SELECT (m.exit_at AT TIME ZONE 'Asia/Shanghai')::date AS day, m.company_id,
       coalesce(c.name, '未知企业') AS company, count(*) AS trips,
       count(*) FILTER (WHERE m.state = 'complete') AS complete,
       count(*) FILTER (WHERE m.state = 'open') AS open,
       count(*) FILTER (WHERE m.state = 'broken') AS broken,
       count(*) FILTER (WHERE m.state = 'unapproved') AS unapproved,
       coalesce(sum(coalesce(m.entry_weight_kg, m.exit_weight_kg)), 0) AS weight_kg
FROM city.manifests m LEFT JOIN city.fleet_companies c ON c.id = m.company_id
WHERE m.exit_at >= %(start)s AND m.exit_at < %(end)s
GROUP BY 1, 2, 3 ORDER BY 1, 4 DESC, 3
"""
DISPOSAL_SHARE_SQL = """
WITH t AS (
    SELECT coalesce(d.street_code, (
               SELECT st.code FROM city.streets st
               WHERE ST_Intersects(st.geom, ST_PointOnSurface(d.geom)) LIMIT 1)) AS street_code,
           coalesce(m.entry_weight_kg, m.exit_weight_kg, 0) AS kg
    FROM city.manifests m JOIN city.fleet_sites d ON d.id = m.disposal_site_id
    WHERE m.entry_at >= %(start)s AND m.entry_at < %(end)s
      AND m.state IN ('complete', 'unapproved')
)
SELECT t.street_code, coalesce(st.name, '区外/未知') AS street, count(*) AS trips,
       sum(t.kg) AS weight_kg,
       round((sum(t.kg) / nullif(sum(sum(t.kg)) OVER (), 0))::numeric, 4)::float8 AS share
FROM t LEFT JOIN city.streets st ON st.code = t.street_code
GROUP BY t.street_code, st.name ORDER BY weight_kg DESC, street
"""


async def _dicts(conn: psycopg.AsyncConnection, query: str, args: Any) -> list[dict[str, Any]]:
    cur = await conn.execute(query, args)
    names = [c.name for c in cur.description or []]
    return [dict(zip(names, r, strict=True)) for r in await cur.fetchall()]


async def list_manifests(
    conn: psycopg.AsyncConnection,
    *,
    state: str | None = None,
    vehicle_id: int | None = None,
    company_id: int | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[dict[str, Any]]:
    """Manifests, newest first, filtered."""
    where = ["TRUE"]
    args: dict[str, Any] = {"tolerance": WEIGHT_TOLERANCE, "limit": limit, "offset": offset}
    for column, name, value in (
        ("m.state", "state", state),
        ("m.vehicle_id", "vehicle", vehicle_id),
        ("m.company_id", "company", company_id),
    ):
        if value is not None:
            where.append(f"{column} = %({name})s")
            args[name] = value
    if start is not None:
        where.append("m.exit_at >= %(start)s")
        args["start"] = start
    if end is not None:
        where.append("m.exit_at < %(end)s")
        args["end"] = end
    query = (
        f"SELECT {MANIFEST_COLUMNS} {MANIFEST_FROM} WHERE {' AND '.join(where)} "
        "ORDER BY m.exit_at DESC, m.id DESC LIMIT %(limit)s OFFSET %(offset)s"
    )
    return await _dicts(conn, query, args)


async def stats(conn: psycopg.AsyncConnection, start: datetime, end: datetime) -> dict[str, Any]:
    """每日运输趟数 per company and 消纳量占比 by street (disposal site's area)."""
    args = {"start": start, "end": end}
    return {
        "daily_trips": await _dicts(conn, DAILY_TRIPS_SQL, args),
        "disposal_share": await _dicts(conn, DISPOSAL_SHARE_SQL, args),
    }
