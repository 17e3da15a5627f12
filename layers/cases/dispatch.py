"""Smart dispatch (案件智能派遣) and smart allocation (案件智能分配).

Rules are data: ``city.dispatch_rules`` is the supervision manual (监督指挥手册): category +
major (+ minor, NULL = the whole major) + optional street or responsibility grid → department,
time limit (处置时限) and standard (处置标准). ``city.case_dispatch_rules(c)`` (migration 0007)
matches and ranks them in SQL: lowest ``priority`` first, then the most specific (grid 4 +
street 2 + minor class 1), then the oldest rule.

``recommend`` lists the matching departments in that order (one entry per department), then
the class catalogue's 主管部门 when no rule names it. ``automatic_department`` is the top
recommendation when its rule is marked automatic (自动派遣) and no equally ranked rule names
another department. ``next_staff`` picks the idle acceptor or dispatcher: the on-duty roster
member with the fewest open cases assigned (``cases.assignee_user_id`` in a non-terminal
stage), then the longest since the last assignment (never-assigned first), then the lowest seat.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import psycopg

from spatial.errors import NotFound

TERMINAL_STAGES = ("closed", "rejected", "not_registered", "cancelled", "voided", "merged")


@dataclass(frozen=True)
class Recommendation:
    """A recommended department: from a rule, or the catalogue when ``rule_id`` is None."""

    department_code: str
    department_name: str
    time_limit_hours: int | None
    standard: str | None
    automatic: bool
    rule_id: int | None


RULES_SQL = """
SELECT r.rule_id, r.department_code, d.name, r.time_limit_hours, r.standard, r.automatic,
       r.priority, r.specificity
  FROM city.cases c
 CROSS JOIN LATERAL city.case_dispatch_rules(c) r
  JOIN city.departments d ON d.code = r.department_code
 WHERE c.id = %s
 ORDER BY r.rank
"""

CATALOGUE_SQL = """
SELECT d.code, d.name, k.disposal_hours
  FROM city.cases c
  JOIN (SELECT '部件' AS category, major_code, minor_code, department, disposal_hours
          FROM city.component_classes
        UNION ALL
        SELECT '事件', major_code, minor_code, department, disposal_hours
          FROM city.event_classes) k
    ON k.category = c.category AND k.major_code = c.major_code AND k.minor_code = c.minor_code
  JOIN city.departments d ON d.name = k.department
 WHERE c.id = %s
"""


async def _ensure_case(conn: psycopg.AsyncConnection, case_id: int) -> None:
    cur = await conn.execute("SELECT 1 FROM city.cases WHERE id = %s", (case_id,))
    if await cur.fetchone() is None:
        raise NotFound(f"No case {case_id}.")


async def _ranked_rules(conn: psycopg.AsyncConnection, case_id: int) -> list[tuple]:
    cur = await conn.execute(RULES_SQL, (case_id,))
    return list(await cur.fetchall())


async def recommend(conn: psycopg.AsyncConnection, case_id: int) -> list[Recommendation]:
    """Departments recommended for a case, best first (推荐派遣); 404 for an unknown case."""
    await _ensure_case(conn, case_id)
    out: list[Recommendation] = []
    seen: set[str] = set()
    for rule_id, code, name, hours, standard, automatic, _prio, _spec in await _ranked_rules(
        conn, case_id
    ):
        if code not in seen:
            seen.add(code)
            out.append(Recommendation(code, name, hours, standard, automatic, rule_id))
    cur = await conn.execute(CATALOGUE_SQL, (case_id,))
    row = await cur.fetchone()
    if row is not None and row[0] not in seen:
        out.append(Recommendation(row[0], row[1], row[2], None, False, None))
    return out


async def automatic_department(
    conn: psycopg.AsyncConnection, case_id: int
) -> Recommendation | None:
    """The department the system robot dispatches to (自动派遣), or None to leave it to people."""
    await _ensure_case(conn, case_id)
    rules = await _ranked_rules(conn, case_id)
    if not rules:
        return None
    rule_id, code, name, hours, standard, automatic, prio, spec = rules[0]
    if not automatic:
        return None
    if any(r[1] != code and (r[6], r[7]) == (prio, spec) for r in rules[1:]):
        return None  # two equally ranked departments: not clearly defined
    return Recommendation(code, name, hours, standard, True, rule_id)


NEXT_STAFF_SQL = """
SELECT r.user_id
  FROM city.staff_roster r
  JOIN city.users u ON u.id = r.user_id AND u.status = 'active'
 WHERE r.duty = %(duty)s AND r.on_duty
 ORDER BY (SELECT count(*) FROM city.cases c
            WHERE c.assignee_user_id = r.user_id AND NOT c.stage = ANY(%(terminal)s)),
          r.last_assigned_at NULLS FIRST, r.seat_no, r.user_id
 LIMIT 1
 FOR UPDATE OF r SKIP LOCKED
"""


async def next_staff(
    conn: psycopg.AsyncConnection, duty: Literal["accept", "dispatch"]
) -> int | None:
    """The user who takes the next case for ``duty`` (round robin among the idle); None if nobody.

    Marks the pick (``last_assigned_at``); runs in the caller's transaction when there is one.
    """
    async with conn.transaction():
        cur = await conn.execute(NEXT_STAFF_SQL, {"duty": duty, "terminal": list(TERMINAL_STAGES)})
        row = await cur.fetchone()
        if row is None:
            return None
        await conn.execute(
            "UPDATE city.staff_roster SET last_assigned_at = clock_timestamp()"
            " WHERE user_id = %s AND duty = %s",
            (row[0], duty),
        )
    return int(row[0])
