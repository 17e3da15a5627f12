"""Timers (计时管理): a case's stage clock, and the scan that warns before and after deadlines.

All arithmetic is in SQL (migration 0007): ``city.case_stage_limit`` (the stage's limit),
``city.case_timer`` (green → yellow at the workflow rule ``timer_yellow_ratio``, default 0.8 of
the stage's working time → red past the deadline; NULL when untimed, terminal or 挂账) and
``city.work_seconds``. The deadline is ``cases.stage_deadline`` (set by the workflow engine on
every stage change, extensions included), else computed from ``stage_started_at``.

``scan`` enqueues one notification per case, stage visit and colour: kind ``expiring``
(yellow, 即将超时) or ``overdue`` (red, 已超时), dedupe key ``{kind}:{case_id}:{stage}:{version}``
for the current assignee; without an assignee every active user of the case's department is
told (key suffixed ``:{user_id}``), else the on-duty centre staff (staff_roster).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

import psycopg

from layers.cases import notify
from layers.cases.definitions import LIVE
from spatial.errors import NotFound

LOCAL_TZ = ZoneInfo("Asia/Shanghai")


@dataclass(frozen=True)
class TimerStatus:
    """The clock of a case's current stage."""

    case_id: int
    stage: str
    status: str
    on_hold: bool
    started_at: datetime
    deadline: datetime | None
    limit_minutes: int | None
    calendar: str | None
    elapsed_minutes: int | None
    remaining_minutes: int | None
    timer: str | None
    overdue: bool


TIMER_SQL = """
WITH c AS (SELECT * FROM city.cases WHERE id = %(id)s),
t AS (
    SELECT c.id, c.stage, c.status, c.on_hold, c.stage_started_at, l.limit_minutes, l.calendar,
           CASE WHEN l.limit_minutes IS NULL THEN NULL
                ELSE coalesce(c.stage_deadline,
                              city.case_stage_deadline(c, c.stage, c.stage_started_at)) END
               AS deadline,
           city.case_timer(c, %(at)s) AS timer
      FROM c CROSS JOIN LATERAL city.case_stage_limit(c, c.stage) l
)
SELECT id, stage, status, on_hold, stage_started_at, deadline, limit_minutes, calendar,
       CASE WHEN calendar = 'natural'
            THEN trunc(extract(epoch FROM %(at)s - stage_started_at) / 60)
            WHEN calendar IS NOT NULL THEN city.work_minutes(stage_started_at, %(at)s) END,
       CASE WHEN calendar = 'natural' THEN trunc(extract(epoch FROM deadline - %(at)s) / 60)
            WHEN calendar IS NOT NULL THEN city.work_minutes(%(at)s, deadline) END,
       timer
  FROM t
"""


async def _now(conn: psycopg.AsyncConnection) -> datetime:
    cur = await conn.execute("SELECT now()")
    row = await cur.fetchone()
    return row[0]  # type: ignore[index]


async def timer_status(
    conn: psycopg.AsyncConnection, case_id: int, at: datetime | None = None
) -> TimerStatus:
    """The timer of a case at ``at`` (default now); 404 for an unknown case."""
    at = at or await _now(conn)
    cur = await conn.execute(TIMER_SQL, {"id": case_id, "at": at})
    row = await cur.fetchone()
    if row is None:
        raise NotFound(f"No case {case_id}.")
    elapsed = int(row[8]) if row[8] is not None else None
    remaining = int(row[9]) if row[9] is not None else None
    return TimerStatus(
        case_id=row[0],
        stage=row[1],
        status=row[2],
        on_hold=row[3],
        started_at=row[4],
        deadline=row[5],
        limit_minutes=row[6],
        calendar=row[7],
        elapsed_minutes=elapsed,
        remaining_minutes=remaining,
        timer=row[10],
        overdue=row[10] == "red",
    )


@dataclass(frozen=True)
class ScanItem:
    """A case found by the scan."""

    case_id: int
    case_no: str
    stage: str
    timer: str
    deadline: datetime | None


@dataclass
class ScanResult:
    """What one scan found and enqueued."""

    at: datetime
    expiring: int = 0
    overdue: int = 0
    notifications: int = 0
    items: list[ScanItem] = field(default_factory=list)


SCAN_SQL = """
SELECT c.id, c.case_no, c.stage, c.status, c.version, t.timer, c.assignee_user_id,
       c.department_code,
       coalesce(c.stage_deadline, city.case_stage_deadline(c, c.stage, c.stage_started_at))
  FROM city.cases c
 CROSS JOIN LATERAL (SELECT city.case_timer(c, %(at)s) AS timer) t
 WHERE c.stage = ANY(%(timed)s) AND NOT c.on_hold AND t.timer IN ('yellow', 'red')
 ORDER BY c.stage_deadline NULLS LAST, c.id
"""
TIMED_STAGES = list(LIVE)  # the stages a timer runs in
DEPARTMENT_USERS_SQL = (
    "SELECT id FROM city.users WHERE department_code = %s AND status = 'active' ORDER BY id"
)
ROSTER_SQL = (
    "SELECT DISTINCT r.user_id FROM city.staff_roster r JOIN city.users u ON u.id = r.user_id"
    " WHERE r.on_duty AND u.status = 'active' ORDER BY r.user_id"
)


async def _ids(conn: psycopg.AsyncConnection, query: str, args: tuple = ()) -> list[int]:
    cur = await conn.execute(query, args)
    return [int(r[0]) for r in await cur.fetchall()]


async def recipients(
    conn: psycopg.AsyncConnection, assignee: int | None, department: str | None
) -> list[int]:
    """Who is warned: the assignee, else the department's users, else the on-duty centre."""
    if assignee is not None:
        return [assignee]
    if department is not None:
        users = await _ids(conn, DEPARTMENT_USERS_SQL, (department,))
        if users:
            return users
    return await _ids(conn, ROSTER_SQL)


def _body(kind: str, case_no: str, status: str, deadline: datetime | None) -> str:
    due = deadline.astimezone(LOCAL_TZ).strftime("%Y-%m-%d %H:%M") if deadline else "—"
    if kind == "overdue":
        return f"案卷{case_no}（{status}）已超时，截止时间{due}，请尽快办理。"
    return f"案卷{case_no}（{status}）即将超时，截止时间{due}，请及时办理。"


async def scan(conn: psycopg.AsyncConnection, at: datetime | None = None) -> ScanResult:
    """Find expiring (yellow) and overdue (red) cases and enqueue their notifications."""
    at = at or await _now(conn)
    result = ScanResult(at=at)
    async with conn.transaction():
        cur = await conn.execute(SCAN_SQL, {"at": at, "timed": TIMED_STAGES})
        rows = await cur.fetchall()
        for case_id, case_no, stage, status, version, timer, assignee, dept, deadline in rows:
            kind = "overdue" if timer == "red" else "expiring"
            result.items.append(ScanItem(case_id, case_no, stage, timer, deadline))
            if kind == "overdue":
                result.overdue += 1
            else:
                result.expiring += 1
            key = f"{kind}:{case_id}:{stage}:{version}"
            users = await recipients(conn, assignee, dept)
            for user in users:
                made = await notify.enqueue(
                    conn,
                    kind=kind,
                    body=_body(kind, case_no, status, deadline),
                    case_id=case_id,
                    recipient_user_id=user,
                    dedupe_key=key if assignee is not None else f"{key}:{user}",
                )
                result.notifications += made is not None
    return result
