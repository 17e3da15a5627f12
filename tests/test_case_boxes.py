"""Case boxes (案件箱): membership per role and data scope, search, filters, 422s.

Read-only over the shared sample database (its small case history); expectations by SQL.
"""

from __future__ import annotations

import psycopg
import pytest
from fastapi.testclient import TestClient

from spatial.db import libpq_url
from tests.auth_support import bearer

BOXES = "/api/v1/case-boxes"


def _sql(db_url: str, query: str, *args: object) -> list[tuple]:
    with psycopg.connect(libpq_url(db_url)) as conn:
        return conn.execute(query, args).fetchall()


def _boxes(client: TestClient, who: str) -> dict[str, int]:
    r = client.get(BOXES, headers=bearer(client, who))
    assert r.status_code == 200, r.text
    return {b["code"]: b["count"] for b in r.json()}


def _page(client: TestClient, who: str, box: str, **params: object) -> dict:
    r = client.get(f"{BOXES}/{box}/cases", params=params, headers=bearer(client, who))
    assert r.status_code == 200, r.text
    return r.json()


def test_boxes_follow_the_position(client: TestClient) -> None:
    acceptor, dispatcher = _boxes(client, "acceptor"), _boxes(client, "dispatcher")
    handler, citizen = _boxes(client, "handler"), _boxes(client, "citizen")
    assert {"reported", "self_handled", "rejected", "to_register"} <= set(acceptor)
    assert "to_dispatch" not in acceptor and "to_dispatch" in dispatcher
    assert "handling" in handler and "reported" not in handler
    assert set(citizen) == {"closed", "mine", "all"}
    assert "mine" in _boxes(client, "inspector")


def test_counts_match_sql(client: TestClient, db_url: str) -> None:
    counts = _boxes(client, "shiftlead")
    expected = {
        "reported": "stage = 'reported'",
        "to_register": "stage IN ('accepted', 'verifying')",
        "to_dispatch": "stage IN ('registered', 'returned')",
        "handling": "stage = 'dispatched'",
        "to_check": "stage = 'handled'",
        "closed": "stage = 'closed'",
        "on_hold": "on_hold",
        "supervised": "supervised",
        "all": "TRUE",
    }
    for box, where in expected.items():
        n = _sql(db_url, f"SELECT count(*) FROM city.cases WHERE {where}")[0][0]  # noqa: S608
        assert counts[box] == n > 0, box
    pending = _sql(
        db_url,
        "SELECT count(DISTINCT case_id) FROM city.case_requests WHERE state = 'pending'"
        " AND kind = 'extension'",
    )[0][0]
    assert counts["extension_requests"] == pending > 0


def test_handler_sees_only_its_department(client: TestClient, db_url: str) -> None:
    page = _page(client, "handler", "all", limit=500)
    assert page["items"] and {r["department_code"] for r in page["items"]} == {"D004"}
    n = _sql(db_url, "SELECT count(*) FROM city.cases WHERE department_code = 'D004'")[0][0]
    assert page["numberMatched"] == n
    handling = _page(client, "handler", "handling", limit=500)
    assert all(r["department_code"] == "D004" for r in handling["items"])


def test_street_office_handler_sees_its_department_cases_in_handling(client: TestClient) -> None:
    page = _page(client, "street", "handling", limit=500)
    assert all(r["department_code"] == "S001" for r in page["items"])


def test_citizen_sees_only_own_reports(client: TestClient, db_url: str) -> None:
    me = _sql(db_url, "SELECT id FROM city.users WHERE username = 'citizen'")[0][0]
    own = _sql(db_url, "SELECT count(*) FROM city.cases WHERE reporter_user_id = %s", me)[0][0]
    page = _page(client, "citizen", "all", limit=500)
    assert page["numberMatched"] == own > 0
    ids = {r["id"] for r in page["items"]}
    assert ids == {
        r[0] for r in _sql(db_url, "SELECT id FROM city.cases WHERE reporter_user_id = %s", me)
    }
    assert _page(client, "citizen", "mine")["numberMatched"] == own


def test_inspector_sees_its_grids(client: TestClient, db_url: str) -> None:
    grids = {
        r[0]
        for r in _sql(
            db_url,
            "SELECT grid_code FROM city.inspector_grids g"
            " JOIN city.users u ON u.id = g.user_id"
            " WHERE u.username = 'inspector'",
        )
    }
    page = _page(client, "inspector", "all", limit=500)
    assert page["items"]
    assert {r["responsibility_grid_code"] for r in page["items"]} <= grids | {None}


def test_fuzzy_search_by_part_of_the_task_number(client: TestClient, db_url: str) -> None:
    case_no = _sql(db_url, "SELECT case_no FROM city.cases ORDER BY id DESC LIMIT 1")[0][0]
    part = case_no[4:11]
    page = _page(client, "dispatcher", "all", q=part, limit=500)
    assert case_no in {r["case_no"] for r in page["items"]}
    assert all(part in r["case_no"] for r in page["items"])
    n = _sql(db_url, "SELECT count(*) FROM city.cases WHERE case_no LIKE %s", f"%{part}%")[0][0]
    assert page["numberMatched"] == n
    assert _page(client, "dispatcher", "all", q="%")["numberMatched"] == 0


def test_filters(client: TestClient, db_url: str) -> None:
    closed = _page(client, "leader", "all", stage="closed", category="事件", limit=100)
    assert all(r["stage"] == "closed" and r["category"] == "事件" for r in closed["items"])
    n = _sql(
        db_url, "SELECT count(*) FROM city.cases WHERE stage = 'closed' AND category = '事件'"
    )[0][0]
    assert closed["numberMatched"] == n
    window = _page(
        client, "leader", "all", reported_from="2026-11-01", reported_to="2026-11-10", limit=500
    )
    assert window["items"]
    assert all("2026-10-31" <= r["reported_at"][:10] <= "2026-11-10" for r in window["items"])
    several = _page(client, "leader", "all", status="待受理,待派遣", limit=500)
    assert {r["status"] for r in several["items"]} == {"待受理", "待派遣"}
    red = _page(client, "leader", "all", timer="red", limit=500)
    assert all(r["timer"] == "red" for r in red["items"])
    overdue = _page(client, "leader", "overdue", limit=500)
    assert (
        overdue["numberMatched"] == _page(client, "leader", "all", overdue="true")["numberMatched"]
    )


def test_rows_carry_cgcs2000_points_and_other_crs_on_request(client: TestClient) -> None:
    page = _page(client, "leader", "handling", limit=1)
    row = page["items"][0]
    assert page["crs"] == "EPSG:4490" and 120 < row["lon"] < 121 and 32 < row["lat"] < 34
    gcj = _page(client, "leader", "handling", limit=1, crs="gcj02")["items"][0]
    assert gcj["id"] == row["id"] and gcj["lon"] != row["lon"]


def test_sort_and_paging(client: TestClient) -> None:
    first = _page(client, "leader", "all", sort="case_no", limit=5)
    second = _page(client, "leader", "all", sort="case_no", limit=5, offset=5)
    nos = [r["case_no"] for r in first["items"] + second["items"]]
    assert nos == sorted(nos) and len(set(nos)) == 10


@pytest.mark.parametrize(
    ("who", "path", "params", "field"),
    [
        ("leader", "nosuchbox", {}, "box"),
        ("handler", "reported", {}, "box"),
        ("leader", "all", {"colour": "red"}, "colour"),
        ("leader", "all", {"timer": "blue"}, "timer"),
        ("leader", "all", {"reported_from": "yesterday"}, "reported_from"),
        ("leader", "all", {"sort": "-secret"}, "sort"),
        ("leader", "all", {"overdue": "maybe"}, "overdue"),
    ],
)
def test_bad_input_is_422_naming_the_field(
    client: TestClient, who: str, path: str, params: dict, field: str
) -> None:
    r = client.get(f"{BOXES}/{path}/cases", params=params, headers=bearer(client, who))
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["errors"][0]["field"] == field


def test_anonymous_and_no_permission(client: TestClient) -> None:
    assert client.get(BOXES).status_code == 401
    assert client.get(BOXES, headers=bearer(client, "admin")).status_code == 403
