"""Smart dispatch (推荐/自动派遣), round-robin allocation (案件智能分配) and the rules API."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import psycopg
import pytest

from api.security.policy import api_operations
from data_samples.case_rules import build_rules
from layers.cases import dispatch
from spatial.db import libpq_url
from tests.case_support import auth, case_client, insert_case, user_id

T = TypeVar("T")
SHOP_FRONT = "3209040404"  # 事件 街面秩序 店外经营: 城市管理局, street offices by street
GARBAGE = "3209040102"  # 事件 暴露垃圾: 环境卫生管理处 D004
WATER_COVER = "3209040101"  # 部件 上水井盖: 自来水公司 D011, automatic


def execute(url: str, query: str, args: Any = ()) -> None:
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        conn.execute(query, args)


def arun(url: str, fn: Callable[[psycopg.AsyncConnection], Awaitable[T]]) -> T:
    async def main() -> T:
        async with await psycopg.AsyncConnection.connect(libpq_url(url), autocommit=True) as conn:
            return await fn(conn)

    return asyncio.run(main())


def departments(url: str, case_id: int) -> list[str]:
    return [r.department_code for r in arun(url, lambda c: dispatch.recommend(c, case_id))]


def add_rule(url: str, **fields: Any) -> None:
    row = {"minor_code": None, "street_code": None, "grid_code": None, "priority": 100}
    row |= {"automatic": False, "time_limit_hours": None, **fields}
    names = ", ".join(row)
    values = ", ".join(f"%({n})s" for n in row)
    execute(url, f"INSERT INTO city.dispatch_rules ({names}) VALUES ({values})", row)


def test_sample_manual_covers_every_class(db_url: str) -> None:
    with psycopg.connect(libpq_url(db_url)) as conn:
        missing = conn.execute(
            "SELECT count(*) FROM (SELECT '事件' c, major_code, minor_code FROM city.event_classes"
            " UNION ALL SELECT '部件', major_code, minor_code FROM city.component_classes) k"
            " WHERE NOT EXISTS (SELECT 1 FROM city.dispatch_rules r WHERE r.category = k.c"
            " AND r.major_code = k.major_code AND r.minor_code = k.minor_code)"
        ).fetchone()
        automatic = conn.execute(
            "SELECT count(*) FROM city.dispatch_rules WHERE automatic"
        ).fetchone()
    assert missing == (0,)
    assert automatic is not None and automatic[0] >= 10


def test_build_rules_is_deterministic() -> None:
    catalogue = [
        ("部件", "01", "01", "上水井盖", "D011", "大丰区自来水公司", 2),
        ("部件", "01", "02", "污水井盖", "D003", "大丰区市政设施管理处", 2),
        ("部件", "01", "03", "雨水井盖", "D003", "大丰区市政设施管理处", 2),
        ("事件", "04", "04", "店外经营", "D001", "大丰区城市管理局", 4),
    ]
    rules = build_rules(catalogue)
    assert rules == build_rules(catalogue)
    major = [r for r in rules if r[0] == "部件" and r[2] is None]
    assert [r[4] for r in major] == ["D003"]  # the department of most minors
    assert all(r[7] for r in rules if r[0] == "部件" and r[2] is not None)
    assert {r[3] for r in rules if r[3]} == {"320904001", "320904002", "320904400"}


def test_recommendations_street_override_first(scratch_url: str) -> None:
    case_id = insert_case(scratch_url, "registered", class_code=SHOP_FRONT)
    execute(
        scratch_url, "UPDATE city.cases SET street_code = '320904001' WHERE id = %s", (case_id,)
    )
    assert departments(scratch_url, case_id) == ["S001", "D001"]
    execute(
        scratch_url, "UPDATE city.cases SET street_code = '320904002' WHERE id = %s", (case_id,)
    )
    assert departments(scratch_url, case_id) == ["S002", "D001"]


def test_street_found_from_the_geometry(scratch_url: str) -> None:
    case_id = insert_case(scratch_url, "registered", class_code=SHOP_FRONT)
    execute(scratch_url, "UPDATE city.cases SET street_code = NULL WHERE id = %s", (case_id,))
    assert departments(scratch_url, case_id)[0] == "S001"  # the demo grid lies in 丰华街道


def test_grid_rule_beats_street_and_priority_beats_specificity(scratch_url: str) -> None:
    case_id = insert_case(scratch_url, "registered", class_code=SHOP_FRONT)
    grid = arun(
        scratch_url,
        lambda c: _fetch(
            c, "SELECT responsibility_grid_code FROM city.cases WHERE id = %s", case_id
        ),
    )
    add_rule(scratch_url, category="事件", major_code="04", grid_code=grid, department_code="T004")
    assert departments(scratch_url, case_id)[:2] == ["T004", "S001"]
    add_rule(scratch_url, category="事件", major_code="04", department_code="D002", priority=5)
    assert departments(scratch_url, case_id)[0] == "D002"


async def _fetch(conn: psycopg.AsyncConnection, query: str, *args: Any) -> Any:
    cur = await conn.execute(query, args)
    row = await cur.fetchone()
    return row[0] if row else None


def test_catalogue_fallback_and_unknown_case(scratch_url: str) -> None:
    case_id = insert_case(scratch_url, "registered", class_code=GARBAGE)
    execute(scratch_url, "DELETE FROM city.dispatch_rules WHERE category = '事件'")
    recs = arun(scratch_url, lambda c: dispatch.recommend(c, case_id))
    assert [(r.department_code, r.rule_id, r.time_limit_hours) for r in recs] == [("D004", None, 2)]
    assert recs[0].department_name == "大丰区环境卫生管理处"
    with pytest.raises(Exception, match="No case"):
        arun(scratch_url, lambda c: dispatch.recommend(c, 987654321))


def test_automatic_department(scratch_url: str) -> None:
    cover = insert_case(scratch_url, "registered", category="部件", class_code=WATER_COVER)
    auto = arun(scratch_url, lambda c: dispatch.automatic_department(c, cover))
    assert auto is not None and auto.department_code == "D011" and auto.automatic
    garbage = insert_case(scratch_url, "registered", class_code=GARBAGE)
    assert arun(scratch_url, lambda c: dispatch.automatic_department(c, garbage)) is None
    # an equally ranked rule naming another department makes it ambiguous
    add_rule(scratch_url, category="部件", major_code="01", minor_code="01", department_code="D003")
    assert arun(scratch_url, lambda c: dispatch.automatic_department(c, cover)) is None


def _roster(url: str) -> dict[str, int]:
    ids = {name: user_id(url, name) for name in ("acceptor", "shiftlead", "dispatcher")}
    execute(url, "DELETE FROM city.staff_roster WHERE duty = 'accept'")
    execute(
        url,
        "UPDATE city.cases SET assignee_user_id = NULL WHERE assignee_user_id = ANY(%s)",
        (list(ids.values()),),
    )
    for seat, name in enumerate(("acceptor", "shiftlead", "dispatcher"), start=1):
        execute(
            url,
            "INSERT INTO city.staff_roster (user_id, duty, seat_no, on_duty)"
            " VALUES (%s, 'accept', %s, true)",
            (ids[name], seat),
        )
    return ids


def test_round_robin_is_fair(scratch_url: str) -> None:
    ids = _roster(scratch_url)
    picks = [arun(scratch_url, lambda c: dispatch.next_staff(c, "accept")) for _ in range(7)]
    order = [ids["acceptor"], ids["shiftlead"], ids["dispatcher"]]
    assert picks == [*order, *order, order[0]]
    assert max(Counter(picks).values()) - min(Counter(picks).values()) <= 1


def test_round_robin_skips_off_duty_and_busy(scratch_url: str) -> None:
    ids = _roster(scratch_url)
    execute(
        scratch_url,
        "UPDATE city.staff_roster SET on_duty = false WHERE user_id = %s AND duty = 'accept'",
        (ids["acceptor"],),
    )
    busy = insert_case(scratch_url, "reported")
    execute(
        scratch_url,
        "UPDATE city.cases SET assignee_user_id = %s WHERE id = %s",
        (ids["shiftlead"], busy),
    )
    picks = [arun(scratch_url, lambda c: dispatch.next_staff(c, "accept")) for _ in range(3)]
    assert picks == [ids["dispatcher"]] * 3  # the idle one while shiftlead holds a case
    execute(scratch_url, "UPDATE city.staff_roster SET on_duty = false")
    assert arun(scratch_url, lambda c: dispatch.next_staff(c, "accept")) is None


def test_round_robin_skips_locked_seat(scratch_url: str) -> None:
    ids = _roster(scratch_url)
    with psycopg.connect(libpq_url(scratch_url)) as other:
        other.execute(
            "SELECT 1 FROM city.staff_roster WHERE user_id = %s AND duty = 'accept' FOR UPDATE",
            (ids["acceptor"],),
        )
        got = arun(scratch_url, lambda c: dispatch.next_staff(c, "accept"))
        other.rollback()
    assert got == ids["shiftlead"]


# --- API -----------------------------------------------------------------------------------


def test_recommendations_api(scratch_url: str) -> None:
    case_id = insert_case(scratch_url, "registered", category="部件", class_code=WATER_COVER)
    with case_client(scratch_url) as client:
        url = f"/api/v1/cases/{case_id}/dispatch-recommendations"
        got = client.get(url, headers=auth(client, "dispatcher"))
        assert got.status_code == 200, got.text
        body = got.json()
        assert body["recommendations"][0]["department_code"] == "D011"
        assert body["automatic"]["department_code"] == "D011"
        assert client.get(url, headers=auth(client, "inspector")).status_code == 403
        missing = "/api/v1/cases/987654321/dispatch-recommendations"
        assert client.get(missing, headers=auth(client, "dispatcher")).status_code == 404


RULE = {
    "category": "事件",
    "major_code": "01",
    "minor_code": "02",
    "department_code": "D004",
    "time_limit_hours": 3,
    "standard": "当日清理",
}


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"department_code": "NOPE"}, "department_code"),
        ({"minor_code": "77"}, "minor_code"),
        ({"major_code": "77", "minor_code": None}, "major_code"),
        ({"street_code": "320904999"}, "street_code"),
        ({"grid_code": "32090400199999"}, "grid_code"),
    ],
)
def test_rule_validation(scratch_url: str, change: dict, field: str) -> None:
    with case_client(scratch_url) as client:
        got = client.post(
            "/api/v1/dispatch-rules", json=RULE | change, headers=auth(client, "admin")
        )
    assert got.status_code == 422, got.text
    assert field in [e["field"] for e in got.json()["errors"]]


def test_rule_crud(scratch_url: str) -> None:
    with case_client(scratch_url) as client:
        admin = auth(client, "admin")
        made = client.post("/api/v1/dispatch-rules", json=RULE, headers=admin)
        assert made.status_code == 201, made.text
        rule_id = made.json()["id"]
        assert made.json()["department_name"] == "大丰区环境卫生管理处"
        changed = client.put(
            f"/api/v1/dispatch-rules/{rule_id}", json=RULE | {"automatic": True}, headers=admin
        )
        assert changed.status_code == 200 and changed.json()["automatic"] is True
        listed = client.get(
            "/api/v1/dispatch-rules",
            params={"category": "事件", "major_code": "01"},
            headers=auth(client, "dispatcher"),
        )
        assert rule_id in [r["id"] for r in listed.json()]
        denied = client.post(
            "/api/v1/dispatch-rules", json=RULE, headers=auth(client, "dispatcher")
        )
        assert denied.status_code == 403
        gone = client.delete(f"/api/v1/dispatch-rules/{rule_id}", headers=admin)
        assert gone.status_code == 204
        reader = auth(client, "dispatcher")
        assert client.get(f"/api/v1/dispatch-rules/{rule_id}", headers=reader).status_code == 404


def test_calendar_api(scratch_url: str) -> None:
    with case_client(scratch_url) as client:
        reader = auth(client, "dispatcher")
        holiday = client.get("/api/v1/work-calendar/2026-10-01", headers=reader).json()
        assert holiday["is_workday"] is False and holiday["source"] == "calendar"
        assert holiday["note"] == "国庆节" and holiday["periods"] == []
        monday = client.get("/api/v1/work-calendar/2026-03-02", headers=reader).json()
        assert monday["source"] == "weekday" and len(monday["periods"]) == 2
        put = client.put(
            "/api/v1/work-calendar/2026-03-02",
            json={"is_workday": False, "note": "停工"},
            headers=auth(client, "admin"),
        )
        assert put.status_code == 200 and put.json()["is_workday"] is False
        year = client.get("/api/v1/work-calendar", params={"year": 2026}, headers=reader)
        assert "2026-03-02" in [d["day"] for d in year.json()]
        refused = client.put(
            "/api/v1/work-calendar/2026-03-03", json={"is_workday": False}, headers=reader
        )
        assert refused.status_code == 403


def test_stage_limits_api(scratch_url: str) -> None:
    with case_client(scratch_url) as client:
        admin = auth(client, "admin")
        limits = client.get("/api/v1/stage-time-limits", headers=auth(client, "dispatcher")).json()
        assert {x["stage"] for x in limits} >= {"reported", "verifying", "checked"}
        extra = {"category": "事件", "major_code": "01", "stage": "dispatched", "limit_minutes": 90}
        put = client.put("/api/v1/stage-time-limits", json=[*limits, extra], headers=admin)
        assert put.status_code == 200, put.text
        assert len(put.json()) == len(limits) + 1
        bad = client.put("/api/v1/stage-time-limits", json=[*limits, extra, extra], headers=admin)
        assert bad.status_code == 422
        unknown = client.put(
            "/api/v1/stage-time-limits",
            json=[{"stage": "closed", "limit_minutes": 5}],
            headers=admin,
        )
        assert unknown.status_code in (400, 422)


def test_roster_api(scratch_url: str) -> None:
    with case_client(scratch_url) as client:
        admin = auth(client, "admin")
        roster = client.get("/api/v1/staff-roster", headers=auth(client, "dispatcher")).json()
        assert {r["username"] for r in roster} >= {"acceptor", "dispatcher", "shiftlead"}
        body = [
            {"user_id": r["user_id"], "duty": r["duty"], "seat_no": r["seat_no"], "on_duty": False}
            for r in roster
        ]
        put = client.put("/api/v1/staff-roster", json=body[:1], headers=admin)
        assert put.status_code == 200, put.text
        assert len(put.json()) == 1 and put.json()[0]["on_duty"] is False
        bad = client.put(
            "/api/v1/staff-roster",
            json=[{"user_id": 987654321, "duty": "accept", "seat_no": 1}],
            headers=admin,
        )
        assert bad.status_code == 422
        assert bad.json()["errors"][0]["field"] == "[0].user_id"


MY_PATHS = (
    "/api/v1/cases/{case_id}/dispatch-recommendations",
    "/api/v1/cases/{case_id}/similar",
    "/api/v1/cases/similar",
    "/api/v1/cases/cross-grid",
    "/api/v1/cases/{case_id}/timer",
    "/api/v1/dispatch-rules",
    "/api/v1/dispatch-rules/{rule_id}",
    "/api/v1/work-calendar",
    "/api/v1/work-calendar/{day}",
    "/api/v1/stage-time-limits",
    "/api/v1/staff-roster",
)


def test_policies_of_my_routes(client: Any) -> None:
    citizen = auth(client, "citizen")
    seen = 0
    for op in api_operations(client.app.routes):
        path = op.path
        if path not in MY_PATHS:
            continue
        url = path.replace("{case_id}", "1").replace("{rule_id}", "1")
        url = url.replace("{day}", "2026-10-01")
        for method in op.methods:
            seen += 1
            body = {"json": {}} if method in ("POST", "PUT") else {}
            anonymous = client.request(method, url, **body)
            assert anonymous.status_code == 401, (method, path)
            as_citizen = client.request(method, url, headers=citizen, **body)
            assert as_citizen.status_code != 500, (method, path)
            if method in ("POST", "PUT", "DELETE") or "dispatch-recommendations" in path:
                assert as_citizen.status_code == 403, (method, path)
    assert seen >= 15
