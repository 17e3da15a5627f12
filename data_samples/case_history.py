"""A realistic year of cases across every state (案卷历史样例), loaded with COPY.

Interpretation of the tender's figures: the platform produces about 100 case records a day
(信息量估算: 每日产生的事案件业务数据约100条), so ``full`` is 100 cases a day for 365 days
(36,500 cases); the old 数字城管 reported 5,389 cases last year with 立案率 100 %, read here as
the cases that go through 立案 → 派遣 → 处置 (5,389 of the 36,500); the others never reach 立案:
mostly 自行处置 on the spot (88 %), then 不受理, 不立案, 销案 and duplicates (合并). ``small``
is the same year at about 4 cases a day (1,500 cases, 221 of them filed) for tests.

The year ends at a fixed instant (``END``, 2026-11-20 17:30 Beijing time) so tests are stable.
Cases still running at that instant stay in their stage; the latest cases are forced into
every open and terminal stage, with pending 延期/回退/作废 requests, 挂账 and 督办. Places come
from the loaded core sample (door plates for 事件, components for 部件) with grid,
responsibility grid and street set consistently; departments from the class catalogues.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime, timedelta, timezone
from typing import Any

import psycopg
from psycopg import sql

from data_samples.case_history_timeline import (
    ACTION_NAMES,
    FALLBACK_LIMITS,
    STATUS,
    Actor,
    CaseClass,
    CaseRow,
    Generator,
    Place,
    Plan,
    World,
)
from spatial.db import libpq_url

CST = timezone(timedelta(hours=8))
END = datetime(2026, 11, 20, 17, 30, tzinfo=CST)
SEED = 3209046
PLANS = {
    "small": Plan(cases=1_500, days=365, end=END, tail_per_stage=5),
    "full": Plan(cases=36_500, days=365, end=END, tail_per_stage=25),
}
COUNTY = "320904"

EVENT_SQL = """
SELECT a.grid_code, u.responsibility_grid_code, u.street_code, ST_X(a.geom), ST_Y(a.geom),
       a.h3, a.standard_address, CASE WHEN a.road_code IS NOT NULL THEN a.base_name END
FROM city.addresses a JOIN city.unit_grids u ON u.code = a.grid_code ORDER BY a.code
"""
PART_SQL = """
SELECT p.grid_code, u.responsibility_grid_code, u.street_code, ST_X(p.geom), ST_Y(p.geom),
       p.h3, coalesce(p.location_desc, p.name), NULL, p.code, p.class_code
FROM city.parts p JOIN city.unit_grids u ON u.code = p.grid_code
WHERE p.county_code = %s ORDER BY p.code
"""
CLASS_SQL = """
SELECT %s, major_code, minor_code, minor_name, d.code, disposal_hours
FROM city.{} c LEFT JOIN city.departments d ON d.name = c.department
ORDER BY major_code, minor_code
"""
CASE_COLUMNS = (
    "id",
    "case_no",
    "source",
    "category",
    "class_code",
    "part_code",
    "description",
    "location_desc",
    "road_name",
    "status",
    "stage",
    "version",
    "self_handled",
    "on_hold",
    "supervised",
    "rework_count",
    "return_count",
    "extension_count",
    "extension_minutes",
    "merged_into",
    "grid_code",
    "responsibility_grid_code",
    "street_code",
    "department_code",
    "assignee_user_id",
    "reporter_user_id",
    "reporter_name_mask",
    "reporter_phone_mask",
    "reported_at",
    "accepted_at",
    "registered_at",
    "dispatched_at",
    "handled_at",
    "closed_at",
    "stage_started_at",
    "stage_deadline",
    "handle_deadline",
    "updated_at",
    "h3",
    "geom",
)
HISTORY_COLUMNS = (
    "case_id",
    "action",
    "action_name",
    "from_stage",
    "to_stage",
    "version",
    "actor_user_id",
    "actor_name",
    "actor_position",
    "department_code",
    "opinion",
    "opinion_type",
    "reason",
    "details",
    "created_at",
)
REQUEST_COLUMNS = (
    "case_id",
    "kind",
    "state",
    "minutes",
    "reason",
    "requested_by",
    "decided_by",
    "opinion",
    "created_at",
    "decided_at",
)
SUPERVISION_COLUMNS = (
    "case_id",
    "days",
    "reason",
    "opinion",
    "created_by",
    "created_at",
    "reply",
    "replied_by",
    "replied_at",
)
DEMO_STAFF = {  # demo username → (key in World.staff, position)
    "acceptor": ("acceptor", "acceptor"),
    "dispatcher": ("dispatcher", "dispatcher"),
    "shiftlead": ("shift_leader", "shift_leader"),
    "leader": ("leader", "leader"),
}


def _places(conn: psycopg.Connection, query: str, args: tuple[Any, ...] = ()) -> list[Place]:
    return [Place(*row) for row in conn.execute(query, args).fetchall()]


def _classes(conn: psycopg.Connection, category: str, table: str) -> list[CaseClass]:
    rows = conn.execute(sql.SQL(CLASS_SQL).format(sql.Identifier(table)), (category,)).fetchall()
    return [
        CaseClass(cat, f"{COUNTY}{major}{minor}", name, dept or "D001", int(hours))
        for cat, major, minor, name, dept, hours in rows
    ]


def _staff(conn: psycopg.Connection) -> dict[str, Actor]:
    staff = {
        "acceptor": Actor(None, "受理员", "acceptor", "C001"),
        "dispatcher": Actor(None, "派遣员", "dispatcher", "C001"),
        "shift_leader": Actor(None, "值班长", "shift_leader", "C001"),
        "leader": Actor(None, "领导", "leader", "D001"),
    }
    users = conn.execute(
        "SELECT u.id, u.username, u.display_name, u.department_code, p.position_code"
        " FROM city.users u JOIN city.user_positions p ON p.user_id = u.id ORDER BY u.id"
    ).fetchall()
    for uid, username, display, dept, position in users:
        if username in DEMO_STAFF:
            key, pos = DEMO_STAFF[username]
            staff[key] = Actor(uid, display, pos, dept)
        elif position == "handler" and dept and not dept.startswith("S"):
            staff.setdefault(f"handler:{dept}", Actor(uid, display, "handler", dept))
    return staff


def read_world(conn: psycopg.Connection) -> World:
    """Places, classes, inspectors and staff from the loaded core sample and demo users."""
    inspectors: dict[str, tuple[str, int | None]] = {
        code: (name, None)
        for code, name in conn.execute(
            "SELECT code, inspector_name FROM city.responsibility_grids ORDER BY code"
        ).fetchall()
    }
    for grid, uid, name in conn.execute(
        "SELECT g.grid_code, u.id, u.display_name FROM city.inspector_grids g"
        " JOIN city.users u ON u.id = g.user_id ORDER BY g.grid_code, u.id"
    ).fetchall():
        inspectors[grid] = (name, uid)
    components = {c.class_code: c for c in _classes(conn, "部件", "component_classes")}
    parts = [p for p in _places(conn, PART_SQL, (COUNTY,)) if p.part_class in components]
    citizen = conn.execute("SELECT id FROM city.users WHERE username = 'citizen'").fetchone()
    return World(
        events=_places(conn, EVENT_SQL),
        parts=parts,
        event_classes=_classes(conn, "事件", "event_classes"),
        component_classes=components,
        inspectors=inspectors,
        staff=_staff(conn),
        citizen_id=citizen[0] if citizen else None,
    )


def _fallback_deadline(case: CaseRow, started: datetime) -> datetime | None:
    stage = case.stage
    if stage == "dispatched":
        return started + timedelta(hours=case.klass.disposal_hours)
    minutes = FALLBACK_LIMITS.get(stage)
    return started + timedelta(minutes=minutes) if minutes else None


def _assignee(case: CaseRow, world: World) -> int | None:
    stage, staff = case.stage, world.staff
    if stage in ("reported", "accepted", "verifying", "checked"):
        return staff["acceptor"].user_id
    if stage in ("registered", "returned"):
        return staff["dispatcher"].user_id
    if stage == "dispatched":
        actor = staff.get(f"handler:{case.department_code}")
        return actor.user_id if actor else None
    if stage == "handled":
        grid = case.place.responsibility_grid_code or ""
        return world.inspectors.get(grid, ("", None))[1]
    return None


def case_row(case: CaseRow, case_id: int, ids: list[int], world: World) -> tuple[Any, ...]:
    """One COPY row of city.cases (``ids``: case id by generator index)."""
    p, last = case.place, case.steps[-1]
    dispatched = case.last("dispatch") if case.department_code else None
    handle_deadline = (
        dispatched + timedelta(hours=case.klass.disposal_hours, minutes=case.extension_minutes)
        if dispatched
        else None
    )
    supervised = case.stage == "dispatched" and any(s.reply is None for s in case.supervisions)
    return (
        case_id,
        case.case_no,
        case.source,
        case.klass.category,
        case.klass.class_code,
        p.part_code,
        case.description,
        p.location_desc,
        p.road_name,
        STATUS[case.stage],
        case.stage,
        len(case.steps),
        case.source == "self_handled",
        case.on_hold,
        supervised,
        case.rework_count,
        case.return_count,
        case.extension_count,
        case.extension_minutes,
        ids[case.merged_into] if case.merged_into is not None else None,
        p.grid_code,
        p.responsibility_grid_code,
        p.street_code,
        case.department_code,
        _assignee(case, world),
        case.reporter_user_id,
        case.reporter_name_mask,
        case.reporter_phone_mask,
        case.reported_at,
        case.first("accept"),
        case.first("register"),
        dispatched,
        case.last("feedback") if case.stage in ("handled", "checked", "closed") else None,
        case.last("close") if case.stage == "closed" else None,
        last.at,
        _fallback_deadline(case, last.at),
        handle_deadline,
        last.at,
        p.h3,
        f"SRID=4490;POINT({p.lon} {p.lat})",
    )


def history_rows(case: CaseRow, case_id: int) -> Iterable[tuple[Any, ...]]:
    """COPY rows of city.case_history, version 1 … n."""
    for version, s in enumerate(case.steps, start=1):
        a = s.actor
        details = json.dumps(s.details, ensure_ascii=False) if s.details else None
        yield (
            case_id,
            s.action,
            ACTION_NAMES[s.action],
            s.from_stage,
            s.to_stage,
            version,
            a.user_id,
            a.name,
            a.position,
            a.department_code,
            s.opinion,
            s.opinion_type,
            s.reason,
            details,
            s.at,
        )


def _copy(cur: psycopg.Cursor, table: str, columns: tuple[str, ...], rows: Iterable) -> int:
    stmt = sql.SQL("COPY city.{} ({}) FROM STDIN").format(
        sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, columns))
    )
    n = 0
    with cur.copy(stmt) as copy:
        for row in rows:
            copy.write_row(row)
            n += 1
    return n


def write_cases(conn: psycopg.Connection, cases: list[CaseRow], world: World) -> dict[str, int]:
    """COPY the cases, their history, requests and supervisions (in the caller's transaction)."""
    cur = conn.cursor()
    start = cur.execute("SELECT coalesce(max(id), 0) FROM city.cases").fetchone()[0]
    ids = [start + 1 + c.index for c in cases]
    counts = {
        "cases": _copy(
            cur, "cases", CASE_COLUMNS, (case_row(c, ids[c.index], ids, world) for c in cases)
        ),
        "case_history": _copy(
            cur,
            "case_history",
            HISTORY_COLUMNS,
            (row for c in cases for row in history_rows(c, ids[c.index])),
        ),
        "case_requests": _copy(
            cur,
            "case_requests",
            REQUEST_COLUMNS,
            (
                (ids[c.index], r.kind, r.state, r.minutes, r.reason, r.requested_by)
                + (r.decided_by, "同意" if r.decided_at else None, r.at, r.decided_at)
                for c in cases
                for r in c.requests
            ),
        ),
        "supervisions": _copy(
            cur,
            "supervisions",
            SUPERVISION_COLUMNS,
            (
                (ids[c.index], s.days, s.reason, "请尽快处置", s.by, s.at)
                + (s.reply, s.replied_by, s.replied_at)
                for c in cases
                for s in c.supervisions
            ),
        ),
    }
    cur.execute("SELECT setval(pg_get_serial_sequence('city.cases', 'id'), %s)", (ids[-1],))
    _real_deadlines(cur)
    return counts


def _real_deadlines(cur: psycopg.Cursor) -> None:
    """Recompute open cases' stage deadlines with the rules' working-time function, if any."""
    exists = cur.execute(
        "SELECT to_regprocedure('city.case_stage_deadline(city.cases, text, timestamptz)')"
    ).fetchone()[0]
    if exists:
        cur.execute(
            "UPDATE city.cases c SET stage_deadline ="
            " city.case_stage_deadline(c, c.stage, c.stage_started_at)"
            " WHERE c.stage_deadline IS NOT NULL"
        )


def generate(conn: psycopg.Connection, plan: Plan, seed: int = SEED) -> tuple[World, list]:
    """Read the world and generate ``plan`` (deterministic for one database content)."""
    world = read_world(conn)
    return world, Generator(world, plan, seed).build()


def load_cases(url: str, plan: Plan, seed: int = SEED) -> dict[str, int]:
    """Generate and COPY ``plan`` into the database at ``url`` (one transaction)."""
    with psycopg.connect(libpq_url(url)) as conn:
        world, cases = generate(conn, plan, seed)
        counts = write_cases(conn, cases, world)
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        conn.execute("ANALYZE city.cases")
        conn.execute("ANALYZE city.case_history")
    return counts


def load_case_history(url: str, size: str) -> dict[str, int]:
    """Load the sample year of cases: ``small`` (~1,500) or ``full`` (~36,500)."""
    return load_cases(url, PLANS["full" if size == "full" else "small"])
