"""Dafeng's supervision manual (监督指挥手册) as dispatch rules, and the duty roster.

Derived from the class catalogues (deterministic, no randomness):

- one rule per minor class (部件 and 事件): its 主管部门 (matched by name to
  ``city.departments``), 处置时限 = the catalogue's disposal hours and a handling standard;
  manhole covers (井盖) and street lights (路灯) are dispatched automatically (自动派遣);
- one rule per major class (minor NULL) to the department handling most of its minors, as
  the second recommendation and the fallback for classes added later;
- street overrides (属地管理): the street-order classes (街面秩序) the 城市管理局 handles go
  to the street office inside 丰华街道, 大中街道 and 开发区;
- the roster (案件智能分配): acceptor and shift leader take reports, dispatcher and shift
  leader dispatch.

The working calendar and the default stage limits are seeded by migration 0007. Loading is
safe to repeat: rules are written only when the table is empty; roster rows are upserted.
"""

from __future__ import annotations

from collections import Counter
from typing import Final

import psycopg

from data_samples.demo_users import STREET_OFFICES
from spatial.db import libpq_url

AUTOMATIC_NAME_PARTS: Final = ("井盖", "路灯")
CITY_MANAGEMENT: Final = "D001"  # 大丰区城市管理局
STREET_ORDER_MAJOR: Final = "04"  # 事件 04 街面秩序
STREET_ORDER_MINORS: Final = ("01", "03", "04", "06", "80", "81")
ROSTER: Final = (
    ("acceptor", "accept", 1),
    ("shiftlead", "accept", 2),
    ("dispatcher", "dispatch", 1),
    ("shiftlead", "dispatch", 2),
)
CATALOGUE_SQL = """
SELECT '部件', k.major_code, k.minor_code, k.minor_name, d.code, d.name, k.disposal_hours
  FROM city.component_classes k JOIN city.departments d ON d.name = k.department
UNION ALL
SELECT '事件', k.major_code, k.minor_code, k.minor_name, d.code, d.name, k.disposal_hours
  FROM city.event_classes k JOIN city.departments d ON d.name = k.department
 ORDER BY 1, 2, 3
"""
RULE_COLUMNS: Final = (
    "category",
    "major_code",
    "minor_code",
    "street_code",
    "department_code",
    "time_limit_hours",
    "standard",
    "automatic",
    "priority",
)
Rule = tuple[str, str, str | None, str | None, str, int | None, str, bool, int]


def _standard(minor_name: str, department: str, hours: int) -> str:
    return f"{minor_name}：由{department}在{hours}个工作小时内处置完毕，恢复原状并上传处置后照片。"


def build_rules(catalogue: list[tuple]) -> list[Rule]:
    """The manual's rules from the catalogue rows (category, major, minor, name, dept…)."""
    rules: list[Rule] = []
    by_major: dict[tuple[str, str], Counter[str]] = {}
    for category, major, minor, name, code, dept_name, hours in catalogue:
        automatic = category == "部件" and any(p in name for p in AUTOMATIC_NAME_PARTS)
        standard = _standard(name, dept_name, hours)
        rules.append((category, major, minor, None, code, hours, standard, automatic, 100))
        by_major.setdefault((category, major), Counter())[code] += 1
    for (category, major), counts in sorted(by_major.items()):
        code = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[0][0]
        rules.append((category, major, None, None, code, None, "按大类主管部门处置。", False, 100))
    for category, major, minor, name, code, _dept, hours in catalogue:
        if category != "事件" or major != STREET_ORDER_MAJOR or minor not in STREET_ORDER_MINORS:
            continue
        if code != CITY_MANAGEMENT:
            continue
        for office, street in sorted(STREET_OFFICES.items()):
            standard = f"{name}：属地街道在{hours}个工作小时内劝导整改，拒不整改的移交执法。"
            rules.append((category, major, minor, street, office, hours, standard, False, 100))
    return rules


def _load_rules(conn: psycopg.Connection) -> int:
    if conn.execute("SELECT EXISTS (SELECT 1 FROM city.dispatch_rules)").fetchone()[0]:  # type: ignore[index]
        return 0
    rules = build_rules(conn.execute(CATALOGUE_SQL).fetchall())
    with conn.cursor().copy(
        f"COPY city.dispatch_rules ({', '.join(RULE_COLUMNS)}) FROM STDIN"
    ) as copy:
        for rule in rules:
            copy.write_row(rule)
    return len(rules)


def _load_roster(conn: psycopg.Connection) -> int:
    written = 0
    for username, duty, seat in ROSTER:
        cur = conn.execute(
            "INSERT INTO city.staff_roster (user_id, duty, seat_no, on_duty)"
            " SELECT id, %s, %s, true FROM city.users WHERE username = %s"
            " ON CONFLICT (user_id, duty) DO UPDATE SET seat_no = EXCLUDED.seat_no",
            (duty, seat, username),
        )
        written += cur.rowcount
    return written


def load_case_rules(url: str) -> dict[str, int]:
    """Write the dispatch rules and the roster; returns row counts."""
    with psycopg.connect(libpq_url(url)) as conn:
        rules = _load_rules(conn)
        roster = _load_roster(conn)
    return {"dispatch_rules": rules, "staff_roster": roster}
