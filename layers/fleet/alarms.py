"""Alarms (报警): store engine signals with coalescing, acknowledge, close, turn into a case.

A condition alarm (off-corridor, speeding, dumping…) is one row from ``start`` to ``end``
(``ended_at`` NULL while it lasts). Rows are coalesced by ``dedupe_key`` (kind, vehicle,
fence): a second start while one is active is dropped (unique partial index), and a start
within ``COALESCE_WINDOW`` of the same alarm's end reopens it (``occurrences`` + 1) instead of
adding a row. A batch is stored set-based (one UPDATE for ends, one for reopens, one INSERT),
in as many rounds as a key has signals left after coalescing inside the batch. ``point``
signals (a fence jump, an unapproved disposal, a 黑车 at a gate) are rows that start and end
at once. Every INSERT statement NOTIFYs ``city_alarms`` (trigger of migration 0009).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any, Final

import h3
import orjson
import psycopg
from psycopg.types.json import Jsonb

from spatial.errors import Conflict, NotFound
from spatial.geofence.applicability import VehicleInfo
from spatial.geofence.engine import Signal
from spatial.geofence.schedule import TZ
from spatial.security.principal import EVERYTHING, Principal

COALESCE_WINDOW: Final = timedelta(minutes=5)
TITLES: Final[dict[str, str]] = {
    "fence_enter": "进入电子围栏",
    "fence_exit": "驶出电子围栏",
    "inside_too_long": "区域内停留超时",
    "off_corridor": "偏离核准路线",
    "forbidden_road": "禁行路段/时段行驶",
    "forbidden_zone": "进入禁行区域",
    "speeding": "超速行驶",
    "dumping": "疑似偷倒乱倒（长时间停车）",
    "unsealed": "未密闭运输",
    "unregistered": "未登记车辆进出场（黑车）",
    "unpermitted": "无准运手续车辆进出场",
    "unapproved_disposal": "非核准消纳场消纳",
    "offline": "终端离线",
}
OPEN_STATES: Final = ("open", "acknowledged")


def dedupe_key(kind: str, vehicle_id: int | None, fence_id: int | None, extra: str = "") -> str:
    """The coalescing key of an alarm."""
    return f"{kind}:{vehicle_id or ''}:{fence_id or ''}{extra}"


def h3_cell(lon: float, lat: float) -> int:
    """H3 resolution-9 cell as a signed bigint (as the other point layers store it)."""
    return int(h3.str_to_int(h3.latlng_to_cell(lat, lon, 9)))


def _key(s: Signal) -> str:
    extra = f":{s.at.isoformat()}" if s.phase == "point" else ""
    return dedupe_key(s.kind, s.vehicle_id, s.fence_id, extra)


def _params(s: Signal, vehicle: VehicleInfo | None) -> dict[str, Any]:
    site = s.details.get("site_id")
    return {
        "key": _key(s),
        "kind": s.kind,
        "title": TITLES.get(s.kind, s.kind),
        "vehicle": s.vehicle_id,
        "plate": vehicle.plate if vehicle else None,
        "company": vehicle.company_id if vehicle else None,
        "fence": s.fence_id,
        "site": site if isinstance(site, int) else None,
        "at": s.at,
        "ended": s.at if s.phase == "point" else None,
        "details": Jsonb(s.details),
        "received": s.received_at,
        "h3": h3_cell(s.lon, s.lat),
        "lon": s.lon,
        "lat": s.lat,
        "window": COALESCE_WINDOW,
    }


REOPEN_MANY_SQL = """
UPDATE city.alarms a SET ended_at = NULL, occurrences = a.occurrences + 1, updated_at = now()
FROM (
    SELECT DISTINCT ON (u.key) p.id, u.key
    FROM unnest(%(keys)s::text[], %(ats)s::timestamptz[]) AS u(key, at)
    JOIN city.alarms p ON p.dedupe_key = u.key AND p.ended_at >= u.at - %(window)s::interval
         AND p.ended_at <= u.at AND p.state IN ('open', 'acknowledged')
    WHERE NOT EXISTS (SELECT 1 FROM city.alarms q WHERE q.dedupe_key = u.key AND q.ended_at IS NULL)
    ORDER BY u.key, p.ended_at DESC
) r
WHERE a.id = r.id
RETURNING r.key
"""
INSERT_MANY_SQL = """
INSERT INTO city.alarms (kind, title, vehicle_id, plate, company_id, fence_id, site_id,
    started_at, ended_at, details, dedupe_key, received_at, h3, geom, occurrences)
SELECT kind, title, vehicle, plate, company, fence, site, at, ended, details::jsonb, key,
       coalesce(received, now()), h3, ST_SetSRID(ST_MakePoint(lon, lat), 4490), occurrences
FROM unnest(%(kind)s::text[], %(title)s::text[], %(vehicle)s::int[], %(plate)s::text[],
            %(company)s::int[], %(fence)s::int[], %(site)s::int[], %(at)s::timestamptz[],
            %(ended)s::timestamptz[], %(details)s::text[], %(key)s::text[],
            %(received)s::timestamptz[], %(h3)s::int8[], %(lon)s::float8[], %(lat)s::float8[],
            %(occurrences)s::int[])
     AS u(kind, title, vehicle, plate, company, fence, site, at, ended, details, key, received,
          h3, lon, lat, occurrences)
ORDER BY at
ON CONFLICT (dedupe_key) WHERE ended_at IS NULL DO NOTHING
"""
END_MANY_SQL = """
UPDATE city.alarms a SET ended_at = greatest(u.at, a.started_at), updated_at = now()
FROM unnest(%s::text[], %s::timestamptz[]) AS u(key, at)
WHERE a.dedupe_key = u.key AND a.ended_at IS NULL
"""
COLUMNS: Final = (
    "kind",
    "title",
    "vehicle",
    "plate",
    "company",
    "fence",
    "site",
    "at",
    "ended",
    "details",
    "key",
    "received",
    "h3",
    "lon",
    "lat",
    "occurrences",
)


async def _set_based(
    conn: psycopg.AsyncConnection,
    signals: list[Signal],
    vehicles: dict[int, VehicleInfo],
    merged: dict[str, int],
) -> None:
    """At most one signal per key: at most three statements."""
    ends = [s for s in signals if s.phase == "end"]
    if ends:
        await conn.execute(END_MANY_SQL, ([_key(s) for s in ends], [s.at for s in ends]))
    starts = [s for s in signals if s.phase == "start"]
    reopened: set[str] = set()
    if starts:
        cur = await conn.execute(
            REOPEN_MANY_SQL,
            {
                "keys": [_key(s) for s in starts],
                "ats": [s.at for s in starts],
                "window": COALESCE_WINDOW,
            },
        )
        reopened = {r[0] for r in await cur.fetchall()}
    new = [s for s in signals if s.phase != "end" and _key(s) not in reopened]
    if not new:
        return
    cols: dict[str, list[Any]] = {c: [] for c in COLUMNS}
    for s in new:
        p = _params(s, vehicles.get(s.vehicle_id))
        p["details"] = orjson.dumps(s.details, default=str).decode()
        p["occurrences"] = 1 + merged.get(p["key"], 0)
        for c in COLUMNS:
            cols[c].append(p[c])
    await conn.execute(INSERT_MANY_SQL, cols)


def _coalesce(signals: list[Signal]) -> tuple[list[Signal], dict[str, int]]:
    """Merge an end and the next start of the same key within ``COALESCE_WINDOW``."""
    by_key: dict[str, list[Signal]] = {}
    merged: dict[str, int] = {}
    for s in signals:
        key = _key(s)
        seq = by_key.setdefault(key, [])
        if s.phase == "start" and seq and seq[-1].phase == "end":
            if s.at - seq[-1].at <= COALESCE_WINDOW:
                seq.pop()
                merged[key] = merged.get(key, 0) + 1
                continue
        seq.append(s)
    return [s for seq in by_key.values() for s in seq], merged


async def apply_signals(
    conn: psycopg.AsyncConnection,
    signals: Sequence[Signal],
    vehicles: dict[int, VehicleInfo] | None = None,
) -> int:
    """Store signals set-based, in rounds: round n holds the n-th signal of every key."""
    if not signals:
        return 0
    vehicles = vehicles or {}
    ordered = sorted(signals, key=lambda s: (s.at, s.phase != "end"))
    kept, merged = _coalesce(ordered)
    rounds: list[list[Signal]] = []
    seen: dict[str, int] = {}
    for s in sorted(kept, key=lambda s: (s.at, s.phase != "end")):
        key = _key(s)
        n = seen.get(key, 0)
        seen[key] = n + 1
        if n == len(rounds):
            rounds.append([])
        rounds[n].append(s)
    for batch in rounds:
        await _set_based(conn, batch, vehicles, merged)
    return len(signals)


ALARM_COLUMNS = """
a.id, a.kind, a.title, a.state, a.vehicle_id, a.plate, a.company_id, a.fence_id, a.site_id,
a.started_at, a.ended_at, a.details, a.occurrences, a.received_at, a.detected_at,
a.acknowledged_at, a.closed_at, a.note, a.case_id, ST_X(a.geom) AS lon, ST_Y(a.geom) AS lat
"""


async def rows(conn: psycopg.AsyncConnection, query: str, args: Any = ()) -> list[dict[str, Any]]:
    """Fetch rows as dicts."""
    cur = await conn.execute(query, args)
    names = [c.name for c in cur.description or []]
    return [dict(zip(names, r, strict=True)) for r in await cur.fetchall()]


async def get_alarm(conn: psycopg.AsyncConnection, alarm_id: int, lock: bool = False) -> dict:
    """One alarm or ``NotFound``."""
    tail = " FOR UPDATE" if lock else ""
    found = await rows(
        conn, f"SELECT {ALARM_COLUMNS} FROM city.alarms a WHERE a.id = %s{tail}", (alarm_id,)
    )
    if not found:
        raise NotFound(f"No alarm {alarm_id}.")
    return found[0]


async def acknowledge(
    conn: psycopg.AsyncConnection, alarm_id: int, user_id: int | None, note: str | None = None
) -> dict[str, Any]:
    """Mark an open alarm as acknowledged (已确认); idempotent."""
    async with conn.transaction():
        alarm = await get_alarm(conn, alarm_id, lock=True)
        if alarm["state"] == "acknowledged":
            return alarm
        if alarm["state"] != "open":
            raise Conflict(
                f"Alarm {alarm_id} is {alarm['state']}; only open alarms are acknowledged."
            )
        await conn.execute(
            "UPDATE city.alarms SET state = 'acknowledged', acknowledged_at = now(), "
            "acknowledged_by = %s, note = coalesce(%s, note), updated_at = now() WHERE id = %s",
            (user_id, note, alarm_id),
        )
        return await get_alarm(conn, alarm_id)


async def close(
    conn: psycopg.AsyncConnection, alarm_id: int, user_id: int | None, note: str | None = None
) -> dict[str, Any]:
    """Close an alarm (已关闭); idempotent; a cased alarm stays cased."""
    async with conn.transaction():
        alarm = await get_alarm(conn, alarm_id, lock=True)
        if alarm["state"] in ("closed", "cased"):
            return alarm
        await conn.execute(
            "UPDATE city.alarms SET state = 'closed', closed_at = now(), closed_by = %s, "
            "ended_at = coalesce(ended_at, now()), note = coalesce(%s, note), updated_at = now() "
            "WHERE id = %s",
            (user_id, note, alarm_id),
        )
        return await get_alarm(conn, alarm_id)


# ------------------------------------------------------------------------------- to a case

COUNTY: Final = "320904"
CASE_CLASSES: Final[dict[str, str]] = {
    "unsealed": COUNTY + "0380",  # 施工管理 / 渣土车未密闭运输
    "dumping": COUNTY + "0381",  # 施工管理 / 渣土车违规倾倒
}
DEFAULT_CASE_CLASS: Final = COUNTY + "0382"  # 施工管理 / 渣土车无证运输 (违规运输)
FLEET_REPORTER: Final = Principal(
    kind="api_key",
    id=0,
    name="system:fleet_alarm",
    display_name="车辆监管报警",
    permissions=frozenset({"cases:report"}),
    scope=EVERYTHING,
    via="system",
)
"""The alarm subsystem as a machine reporter (source ``fleet_alarm``, 智能发现)."""


def describe(alarm: dict[str, Any], actor: Principal) -> str:
    """The case description of an alarm."""
    who = alarm.get("plate") or "未知车辆"
    when = alarm["started_at"].astimezone(TZ).strftime("%Y-%m-%d %H:%M")
    extra = "，".join(f"{k}={v}" for k, v in sorted((alarm.get("details") or {}).items()))
    text = f"【车辆监管报警】{who} {alarm['title']}（{when}起）"
    if extra:
        text += f"；{extra}"
    return f"{text}。由{actor.display_name}转为案卷（报警编号 {alarm['id']}）。"[:2000]


async def to_case(
    conn: psycopg.AsyncConnection,
    alarm_id: int,
    actor: Principal,
    *,
    class_code: str | None = None,
    description: str | None = None,
) -> dict[str, Any]:
    """Turn an alarm into a case (转案卷) through the intake, once; returns alarm and case."""
    from layers.cases.intake import CaseReport, ReportLocation, report_case

    async with conn.transaction():
        alarm = await get_alarm(conn, alarm_id, lock=True)
        if alarm["case_id"] is not None:
            return {"alarm": alarm, "case_id": alarm["case_id"], "created": False}
        report = CaseReport(
            source="fleet_alarm",
            category="事件",
            class_code=class_code or CASE_CLASSES.get(alarm["kind"], DEFAULT_CASE_CLASS),
            description=description or describe(alarm, actor),
            location=ReportLocation(lon=alarm["lon"], lat=alarm["lat"], crs="cgcs2000"),
            location_desc=str(alarm["title"])[:200],
            idempotency_key=f"fleet-alarm-{alarm_id}",
        )
        result = await report_case(conn, FLEET_REPORTER, report)
        case_id = int(result.case["id"])
        await conn.execute(
            "UPDATE city.alarms SET state = 'cased', case_id = %s, updated_at = now() "
            "WHERE id = %s",
            (case_id, alarm_id),
        )
        return {
            "alarm": await get_alarm(conn, alarm_id),
            "case_id": case_id,
            "case": result.case,
            "created": not result.replayed,
        }
