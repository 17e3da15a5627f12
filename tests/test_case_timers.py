"""Working-time arithmetic, stage limits, timer colours and the expiry scan (计时管理)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import psycopg
import pytest

from layers.cases import timers
from spatial.db import libpq_url
from tests.case_support import auth, case_client, insert_case, user_id

T = TypeVar("T")
CST = ZoneInfo("Asia/Shanghai")
GARBAGE = "3209040102"  # 事件 暴露垃圾: 环境卫生管理处 D004, 2 h in the catalogue


def local(text: str) -> datetime:
    """A Beijing-time moment from ``YYYY-MM-DD HH:MM``."""
    return datetime.fromisoformat(text).replace(tzinfo=CST)


def scalar(url: str, query: str, args: Any = ()) -> Any:
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        row = conn.execute(query, args).fetchone()
    assert row is not None
    return row[0]


def execute(url: str, query: str, args: Any = ()) -> None:
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        conn.execute(query, args)


def arun(url: str, fn: Callable[[psycopg.AsyncConnection], Awaitable[T]]) -> T:
    async def main() -> T:
        async with await psycopg.AsyncConnection.connect(libpq_url(url), autocommit=True) as conn:
            return await fn(conn)

    return asyncio.run(main())


@pytest.mark.parametrize(
    ("start", "minutes", "expected"),
    [
        ("2026-03-02 09:00", 30, "2026-03-02 09:30"),  # plain morning
        ("2026-03-02 07:00", 10, "2026-03-02 08:40"),  # before opening
        ("2026-03-02 11:50", 20, "2026-03-02 13:40"),  # across lunch
        ("2026-03-02 12:30", 30, "2026-03-02 14:00"),  # starting at lunch
        ("2026-03-02 11:30", 30, "2026-03-02 12:00"),  # ends exactly at noon
        ("2026-03-06 17:20", 20, "2026-03-09 08:40"),  # Friday evening → Monday
        ("2026-03-02 19:00", 30, "2026-03-03 09:00"),  # evening → next morning
        ("2026-03-07 10:00", 30, "2026-03-09 09:00"),  # Saturday → Monday
        ("2026-03-02 09:00", 450, "2026-03-03 09:00"),  # a whole working day (7.5 h)
        ("2026-09-24 17:00", 60, "2026-09-28 09:00"),  # 中秋 Fri 25 – Sun 27
        ("2026-09-30 17:00", 60, "2026-10-08 09:00"),  # 国庆 1–7 October
        ("2026-02-13 17:00", 60, "2026-02-14 09:00"),  # 调休 Saturday 14 February
        ("2026-10-09 17:00", 60, "2026-10-10 09:00"),  # 调休 Saturday 10 October
        ("2026-03-02 09:00", 0, "2026-03-02 09:00"),  # nothing to add
    ],
)
def test_work_add(db_url: str, start: str, minutes: int, expected: str) -> None:
    got = scalar(db_url, "SELECT city.work_add(%s, %s)", (local(start), minutes))
    assert got == local(expected)


@pytest.mark.parametrize(
    ("a", "b", "minutes"),
    [
        ("2026-03-02 08:00", "2026-03-03 09:00", 480),
        ("2026-03-06 17:00", "2026-03-09 09:00", 60),
        ("2026-02-13 08:30", "2026-02-24 08:30", 2 * 450),  # Fri + 调休 Sat, then 春节
        ("2026-03-03 09:00", "2026-03-02 08:00", -480),
        ("2026-03-07 09:00", "2026-03-07 17:00", 0),
    ],
)
def test_work_minutes(db_url: str, a: str, b: str, minutes: int) -> None:
    assert scalar(db_url, "SELECT city.work_minutes(%s, %s)", (local(a), local(b))) == minutes


def test_work_minutes_inverts_work_add(db_url: str) -> None:
    start = local("2026-04-30 10:17")
    for minutes in (1, 59, 200, 451, 3000, 12000):
        got = scalar(
            db_url, "SELECT city.work_minutes(%s, city.work_add(%s, %s))", (start, start, minutes)
        )
        assert got == minutes


def test_calendar_edit_changes_arithmetic(scratch_url: str) -> None:
    execute(scratch_url, "INSERT INTO city.work_calendar VALUES ('2026-03-03', false, '测试')")
    got = scalar(scratch_url, "SELECT city.work_add(%s, 30)", (local("2026-03-02 17:30"),))
    assert got == local("2026-03-04 09:00")


def _dispatched(url: str, started: str, **extra: Any) -> int:
    case_id = insert_case(url, "dispatched", class_code=GARBAGE, department="D004")
    sets = {"stage_started_at": local(started), "stage_deadline": None, **extra}
    columns = ", ".join(f"{k} = %({k})s" for k in sets)
    execute(url, f"UPDATE city.cases SET {columns} WHERE id = %(id)s", {**sets, "id": case_id})
    return case_id


def timer(url: str, case_id: int, at: str) -> str | None:
    return scalar(
        url, "SELECT city.case_timer(c, %s) FROM city.cases c WHERE id = %s", (local(at), case_id)
    )


def deadline(url: str, case_id: int, stage: str = "dispatched") -> datetime:
    return scalar(
        url,
        "SELECT city.case_stage_deadline(c, %s, c.stage_started_at) FROM city.cases c"
        " WHERE id = %s",
        (stage, case_id),
    )


def test_colours(scratch_url: str) -> None:
    case_id = _dispatched(scratch_url, "2026-03-02 09:00")  # 2 working hours → 11:00
    assert deadline(scratch_url, case_id) == local("2026-03-02 11:00")
    assert timer(scratch_url, case_id, "2026-03-02 10:00") == "green"
    assert timer(scratch_url, case_id, "2026-03-02 10:40") == "yellow"  # 83 % elapsed
    assert timer(scratch_url, case_id, "2026-03-02 11:00") == "red"
    overdue = "SELECT city.case_overdue(c, %s) FROM city.cases c WHERE id = %s"
    assert scalar(scratch_url, overdue, (local("2026-03-02 11:30"), case_id)) is True
    assert scalar(scratch_url, overdue, (local("2026-03-02 10:30"), case_id)) is False


def test_colours_follow_the_stored_deadline_and_ratio(scratch_url: str) -> None:
    case_id = _dispatched(
        scratch_url, "2026-03-02 09:00", stage_deadline=local("2026-03-02 14:30")
    )  # extended (缓办) to 4 working hours
    assert timer(scratch_url, case_id, "2026-03-02 11:30") == "green"
    assert timer(scratch_url, case_id, "2026-03-02 14:00") == "yellow"
    execute(
        scratch_url,
        "UPDATE city.workflow_definitions SET definition = jsonb_set(definition, '{rules}',"
        " coalesce(definition->'rules', '{}') || '{\"timer_yellow_ratio\": 0.5}')",
    )
    assert timer(scratch_url, case_id, "2026-03-02 11:30") == "yellow"


def test_untimed_cases(scratch_url: str) -> None:
    held = _dispatched(scratch_url, "2026-03-02 09:00", on_hold=True)
    assert timer(scratch_url, held, "2026-03-09 09:00") is None
    closed = insert_case(scratch_url, "closed")
    assert timer(scratch_url, closed, "2026-03-09 09:00") is None


def test_default_stage_limits(scratch_url: str) -> None:
    case_id = _dispatched(scratch_url, "2026-03-02 11:45")
    assert deadline(scratch_url, case_id, "reported") == local("2026-03-02 13:45")  # 30 min
    assert deadline(scratch_url, case_id, "verifying") == local("2026-03-02 15:15")  # 2 h
    assert deadline(scratch_url, case_id, "checked") == local("2026-03-02 14:15")  # 1 h
    assert deadline(scratch_url, case_id, "closed") is None


def test_natural_calendar_limit(scratch_url: str) -> None:
    execute(
        scratch_url,
        "UPDATE city.stage_time_limits SET calendar = 'natural', limit_minutes = 1440"
        " WHERE stage = 'reported'",
    )
    case_id = _dispatched(scratch_url, "2026-03-06 17:00")
    assert deadline(scratch_url, case_id, "reported") == local("2026-03-07 17:00")


def test_dispatched_limit_catalogue_versus_rule(scratch_url: str) -> None:
    case_id = _dispatched(scratch_url, "2026-03-02 09:00")
    execute(
        scratch_url,
        "DELETE FROM city.dispatch_rules WHERE category = '事件' AND major_code = '01'",
    )
    assert deadline(scratch_url, case_id) == local("2026-03-02 11:00")  # catalogue: 2 h
    execute(
        scratch_url,
        "INSERT INTO city.dispatch_rules (category, major_code, minor_code, department_code,"
        " time_limit_hours, automatic, priority) VALUES ('事件', '01', '02', 'D004', 4, false,"
        " 100), ('事件', '01', NULL, 'D001', 1, false, 10)",
    )
    # the rule of the case's department wins over the better-ranked rule of another department
    assert deadline(scratch_url, case_id) == local("2026-03-02 14:30")  # rule: 4 h
    execute(scratch_url, "UPDATE city.cases SET department_code = NULL WHERE id = %s", (case_id,))
    assert deadline(scratch_url, case_id) == local("2026-03-02 10:00")  # best rule: 1 h
    execute(scratch_url, "UPDATE city.dispatch_rules SET time_limit_hours = NULL")
    assert deadline(scratch_url, case_id) == local("2026-03-02 11:00")  # back to the catalogue


def test_timer_status_and_api(scratch_url: str) -> None:
    case_id = _dispatched(scratch_url, "2026-03-02 09:00")
    status = arun(scratch_url, lambda c: timers.timer_status(c, case_id, local("2026-03-02 10:40")))
    assert status.timer == "yellow" and status.limit_minutes == 120
    assert status.elapsed_minutes == 100 and status.remaining_minutes == 20
    with case_client(scratch_url) as client:
        url = f"/api/v1/cases/{case_id}/timer"
        got = client.get(
            url, params={"at": "2026-03-02T11:30:00+08:00"}, headers=auth(client, "dispatcher")
        )
        assert got.status_code == 200, got.text
        assert got.json()["timer"] == "red" and got.json()["overdue"] is True
        assert (
            client.get(
                "/api/v1/cases/999999999/timer", headers=auth(client, "dispatcher")
            ).status_code
            == 404
        )
        assert client.get(url).status_code == 401


def _notifications(url: str, case_id: int) -> list[tuple]:
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        return conn.execute(
            "SELECT kind, recipient_user_id, dedupe_key FROM city.notifications"
            " WHERE case_id = %s ORDER BY id",
            (case_id,),
        ).fetchall()


def test_scan_enqueues_once(scratch_url: str) -> None:
    late = _dispatched(scratch_url, "2026-03-02 09:00")
    handler = user_id(scratch_url, "handler")
    result = arun(scratch_url, lambda c: timers.scan(c, local("2026-03-02 11:30")))
    assert late in {i.case_id for i in result.items if i.timer == "red"}
    rows = _notifications(scratch_url, late)
    assert ("overdue", handler, f"overdue:{late}:dispatched:1:{handler}") in rows
    again = arun(scratch_url, lambda c: timers.scan(c, local("2026-03-02 11:40")))
    assert again.overdue >= 1
    assert _notifications(scratch_url, late) == rows  # deduplicated


def test_scan_warns_the_assignee_before_the_deadline(scratch_url: str) -> None:
    handler = user_id(scratch_url, "handler")
    soon = _dispatched(scratch_url, "2026-03-02 09:00", assignee_user_id=handler)
    result = arun(scratch_url, lambda c: timers.scan(c, local("2026-03-02 10:45")))
    assert soon in {i.case_id for i in result.items if i.timer == "yellow"}
    assert _notifications(scratch_url, soon) == [
        ("expiring", handler, f"expiring:{soon}:dispatched:1")
    ]
