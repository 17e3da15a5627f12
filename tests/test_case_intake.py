"""Case intake (问题上报 / 案件登记): sources by principal, idempotency, validation, location."""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from layers.cases import intake
from layers.cases.media import MediaStore
from spatial.crs import ClientCRS, from_storage
from spatial.db import libpq_url
from spatial.security.principal import Principal
from spatial.security.sm4 import Keyring
from spatial.settings import DatabaseSettings, Settings
from tests.auth_support import bearer

JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x11" * 200
CLASS = "3209040102"  # 事件 市容环境/暴露垃圾


@pytest.fixture
def app_client(scratch_url: str, tmp_path) -> Iterator[TestClient]:
    with TestClient(
        create_app(Settings(db=DatabaseSettings(url=scratch_url))),
        raise_server_exceptions=False,
    ) as c:
        c.app.state.media_store = MediaStore(tmp_path / "media")
        yield c


def _sql(url: str, query: str, args: Any = ()) -> list[tuple]:
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        cur = conn.execute(query, args)
        return cur.fetchall() if cur.description else []


def _own_point(url: str) -> tuple[float, float]:
    """A point inside the demo inspector's first responsibility grid (CGCS2000)."""
    rows = _sql(
        url,
        "SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(r.geom) p"
        " FROM city.responsibility_grids r JOIN city.inspector_grids g ON g.grid_code = r.code"
        " JOIN city.users u ON u.id = g.user_id WHERE u.username = 'inspector'"
        " ORDER BY r.code LIMIT 1) s",
    )
    return rows[0]


def _foreign_point(url: str) -> tuple[float, float, str]:
    """A point in a responsibility grid that is not the demo inspector's."""
    rows = _sql(
        url,
        "SELECT ST_X(p), ST_Y(p), code FROM (SELECT ST_PointOnSurface(r.geom) p, r.code"
        " FROM city.responsibility_grids r WHERE r.code NOT IN (SELECT grid_code FROM"
        " city.inspector_grids) ORDER BY r.code DESC LIMIT 1) s",
    )
    return rows[0]


def _report(url: str, source: str = "inspector", **extra: Any) -> dict[str, Any]:
    lon, lat = _own_point(url)
    body = {
        "source": source,
        "category": "事件",
        "class_code": CLASS,
        "description": "路边暴露垃圾一堆",
        "location": {"lon": lon, "lat": lat, "crs": "cgcs2000"},
    }
    return {**body, **extra}


def _post(client: TestClient, who: dict[str, str], body: dict[str, Any], **headers: str) -> Any:
    return client.post("/api/v1/cases", json=body, headers={**who, **headers})


def _api_key(client: TestClient, scopes: list[str]) -> dict[str, str]:
    r = client.post(
        "/api/v1/api-keys",
        json={"name": "视频智能识别平台", "scopes": scopes},
        headers=bearer(client, "admin"),
    )
    assert r.status_code == 201, r.text
    return {"X-API-Key": r.json()["key"]}


def _issues(response: Any) -> set[str]:
    return {e["field"] for e in response.json().get("errors", [])}


# ------------------------------------------------------------------------ sources by caller

ALLOWED = {
    "inspector": ["inspector", "special_check"],
    "citizen": ["public"],
    "acceptor": ["hotline_12345", "higher_platform", "leader", "other_bureau", "public"],
    "shiftlead": ["leader", "hotline_12345"],
}
REFUSED = {
    "inspector": ["public", "hotline_12345", "video_ai"],
    "citizen": ["inspector", "hotline_12345", "sensor"],
    "acceptor": ["inspector", "video_ai"],
    "shiftlead": ["self_handled", "fleet_alarm"],
    "dispatcher": ["hotline_12345", "inspector"],
    "handler": ["inspector", "public"],
}


@pytest.mark.parametrize("who", sorted(set(ALLOWED) | set(REFUSED)))
def test_sources_by_principal(app_client: TestClient, scratch_url: str, who: str) -> None:
    headers = bearer(app_client, who)
    for source in ALLOWED.get(who, []):
        r = _post(app_client, headers, _report(scratch_url, source))
        assert r.status_code == 201, (who, source, r.text)
        case = r.json()["case"]
        assert case["source"] == source and case["stage"] == "reported"
        assert case["status"] == "待受理" and case["source_class"] in ("主动发现", "被动发现")
    for source in REFUSED.get(who, []):
        r = _post(app_client, headers, _report(scratch_url, source))
        assert r.status_code == 403, (who, source, r.text)
        assert r.headers["content-type"] == "application/problem+json"


def test_machine_sources_need_an_api_key(app_client: TestClient, scratch_url: str) -> None:
    key = _api_key(app_client, ["cases:report"])
    for source in ("video_ai", "vehicle_ai", "sensor", "fleet_alarm"):
        r = _post(app_client, key, _report(scratch_url, source))
        assert r.status_code == 201, (source, r.text)
        assert r.json()["case"]["source_class"] == "智能发现"
        assert r.json()["case"]["reporter_user_id"] is None
    assert _post(app_client, key, _report(scratch_url, "public")).status_code == 403
    reader = _api_key(app_client, ["cases:read"])
    assert _post(app_client, reader, _report(scratch_url, "video_ai")).status_code == 403


def test_anonymous_and_unknown_source(app_client: TestClient, scratch_url: str) -> None:
    assert _post(app_client, {}, _report(scratch_url)).status_code == 401
    r = _post(app_client, bearer(app_client, "inspector"), _report(scratch_url, "carrier_pigeon"))
    assert r.status_code == 422 and "source" in _issues(r)


# ------------------------------------------------------------------------ the stored case


def test_report_is_located_numbered_and_recorded(app_client: TestClient, scratch_url: str) -> None:
    r = _post(app_client, bearer(app_client, "inspector"), _report(scratch_url, road_name="幸福路"))
    assert r.status_code == 201, r.text
    out = r.json()
    case = out["case"]
    assert out["replayed"] is False and out["cross_grid"] is None
    assert isinstance(out["similar"], list)
    assert len(case["case_no"]) == 14 and case["case_no"].isdigit()
    assert case["workflow_code"] == "gbt30428_8" and case["class_name"] == "市容环境/暴露垃圾"
    grid = _sql(
        scratch_url,
        "SELECT g.grid_code FROM city.inspector_grids g JOIN city.users u ON u.id = g.user_id"
        " WHERE u.username = 'inspector' ORDER BY g.grid_code LIMIT 1",
    )[0][0]
    assert case["responsibility_grid_code"] == grid
    assert case["grid_code"] and case["street_code"] and case["community_code"]
    located = _sql(
        scratch_url,
        "SELECT u.street_code FROM city.unit_grids u JOIN city.cases c"
        " ON ST_Intersects(u.geom, c.geom) WHERE c.id = %s",
        (case["id"],),
    )
    assert located[0][0] == case["street_code"]
    rows = _sql(
        scratch_url,
        "SELECT action, action_name, from_stage, to_stage, version, details->>'request_sha256'"
        " FROM city.case_history WHERE case_id = %s",
        (case["id"],),
    )
    assert len(rows) == 1 and rows[0][:5] == ("report", "上报", None, "reported", 1)
    assert len(rows[0][5]) == 64
    h3cell = _sql(scratch_url, "SELECT h3 FROM city.cases WHERE id = %s", (case["id"],))[0][0]
    assert h3cell is not None


def test_arrival_notice_goes_to_the_assigned_acceptor(
    app_client: TestClient, scratch_url: str
) -> None:
    case = _post(app_client, bearer(app_client, "inspector"), _report(scratch_url)).json()["case"]
    rows = _sql(
        scratch_url,
        "SELECT recipient_user_id, kind, state FROM city.notifications WHERE case_id = %s",
        (case["id"],),
    )
    if case["assignee_user_id"] is None:  # no acceptor on duty in this sample
        assert rows == []
    else:
        assert rows == [(case["assignee_user_id"], "arrival", "pending")]


def test_major_minor_codes_default_to_the_county(app_client: TestClient, scratch_url: str) -> None:
    body = _report(scratch_url, major_code="01", minor_code="02")
    del body["class_code"]
    r = _post(app_client, bearer(app_client, "inspector"), body)
    assert r.status_code == 201, r.text
    assert r.json()["case"]["class_code"] == CLASS


def test_unknown_class_is_422_naming_class_code(app_client: TestClient, scratch_url: str) -> None:
    r = _post(
        app_client, bearer(app_client, "inspector"), _report(scratch_url, class_code="3209049999")
    )
    assert r.status_code == 422 and "class_code" in _issues(r)
    r = _post(
        app_client,
        bearer(app_client, "inspector"),
        _report(scratch_url, category="部件", class_code=CLASS[:6] + "9999"),
    )
    assert r.status_code == 422 and "class_code" in _issues(r)


def test_point_outside_the_district_is_422_naming_location(
    app_client: TestClient, scratch_url: str
) -> None:
    body = _report(scratch_url, location={"lon": 118.78, "lat": 32.04, "crs": "wgs84"})
    r = _post(app_client, bearer(app_client, "inspector"), body)
    assert r.status_code == 422 and "location" in _issues(r)
    body = _report(scratch_url, location={"lon": 2.35, "lat": 48.85, "crs": "wgs84"})
    r = _post(app_client, bearer(app_client, "inspector"), body)
    assert r.status_code == 422 and "location" in _issues(r)
    body = _report(scratch_url)
    del body["location"]
    r = _post(app_client, bearer(app_client, "inspector"), body)
    assert r.status_code == 400 and "location" in _issues(r)


@pytest.mark.parametrize("crs", [ClientCRS.GCJ02, ClientCRS.BD09, ClientCRS.WGS84])
def test_client_crs_is_stored_in_cgcs2000(
    app_client: TestClient, scratch_url: str, crs: ClientCRS
) -> None:
    lon, lat = _own_point(scratch_url)
    x, y = from_storage(lon, lat, crs)
    body = _report(scratch_url, location={"lon": float(x), "lat": float(y), "crs": crs.value})
    r = _post(app_client, bearer(app_client, "inspector"), body)
    assert r.status_code == 201, r.text
    metres = _sql(
        scratch_url,
        "SELECT ST_Distance(geom::geography, ST_SetSRID(ST_MakePoint(%s, %s), 4490)::geography)"
        " FROM city.cases WHERE id = %s",
        (lon, lat, r.json()["case"]["id"]),
    )[0][0]
    assert metres < 1.0


def test_part_code_gives_the_location(app_client: TestClient, scratch_url: str) -> None:
    code, cls, lon, lat = _sql(
        scratch_url,
        "SELECT p.code, p.class_code, ST_X(p.geom), ST_Y(p.geom) FROM city.parts p"
        " JOIN city.districts d ON ST_Intersects(d.geom, p.geom) ORDER BY p.code LIMIT 1",
    )[0]
    body = _report(scratch_url, category="部件", class_code=cls, part_code=code)
    del body["location"]
    r = _post(app_client, bearer(app_client, "inspector"), body)
    assert r.status_code == 201, r.text
    loc = r.json()["case"]["location"]
    assert abs(loc["lon"] - lon) < 1e-7 and abs(loc["lat"] - lat) < 1e-7
    assert r.json()["case"]["part_code"] == code


def test_cross_grid_reminder_outside_own_grid(app_client: TestClient, scratch_url: str) -> None:
    lon, lat, grid = _foreign_point(scratch_url)
    body = _report(scratch_url, location={"lon": lon, "lat": lat})
    r = _post(app_client, bearer(app_client, "inspector"), body)
    assert r.status_code == 201, r.text
    hint = r.json()["cross_grid"]
    assert hint is not None and hint["grid_code"] == grid and "跨网格" in hint["message"]
    r = _post(app_client, bearer(app_client, "acceptor"), {**body, "source": "hotline_12345"})
    assert r.status_code == 201 and r.json()["cross_grid"] is None


def test_similar_cases_are_shown(app_client: TestClient, scratch_url: str) -> None:
    first = _post(app_client, bearer(app_client, "inspector"), _report(scratch_url)).json()
    second = _post(app_client, bearer(app_client, "citizen"), _report(scratch_url, "public"))
    assert second.status_code == 201
    ids = [s["id"] for s in second.json()["similar"]]
    assert first["case"]["id"] in ids


# ------------------------------------------------------------------------ idempotency


def test_replay_returns_the_original_case(app_client: TestClient, scratch_url: str) -> None:
    key = f"app-{uuid.uuid4().hex}"
    who = bearer(app_client, "inspector")
    first = _post(app_client, who, _report(scratch_url, idempotency_key=key))
    again = _post(app_client, who, _report(scratch_url, idempotency_key=key))
    assert first.status_code == 201 and again.status_code == 200
    assert again.json()["replayed"] is True
    assert again.json()["case"]["id"] == first.json()["case"]["id"]
    header = _post(app_client, who, _report(scratch_url), **{"Idempotency-Key": key})
    assert header.status_code == 200 and header.json()["case"]["id"] == first.json()["case"]["id"]
    count = _sql(
        scratch_url, "SELECT count(*) FROM city.cases WHERE idempotency_key LIKE %s", (f"%{key}",)
    )
    assert count[0][0] == 1


def test_same_key_of_another_caller_is_another_case(
    app_client: TestClient, scratch_url: str
) -> None:
    key = f"app-{uuid.uuid4().hex}"
    a = _post(
        app_client, bearer(app_client, "inspector"), _report(scratch_url, idempotency_key=key)
    )
    b = _post(
        app_client,
        bearer(app_client, "citizen"),
        _report(scratch_url, "public", idempotency_key=key),
    )
    assert a.status_code == b.status_code == 201
    assert a.json()["case"]["id"] != b.json()["case"]["id"]


def test_conflicting_replay_is_409(app_client: TestClient, scratch_url: str) -> None:
    key = f"app-{uuid.uuid4().hex}"
    who = bearer(app_client, "inspector")
    assert _post(app_client, who, _report(scratch_url, idempotency_key=key)).status_code == 201
    r = _post(app_client, who, _report(scratch_url, idempotency_key=key, description="另一件事"))
    assert r.status_code == 409 and "idempotency_key" in _issues(r)
    r = _post(
        app_client, who, _report(scratch_url, idempotency_key=key), **{"Idempotency-Key": key + "x"}
    )
    assert r.status_code == 400


def test_concurrent_posts_with_one_key_make_one_case(
    app_client: TestClient, scratch_url: str
) -> None:
    key = f"app-{uuid.uuid4().hex}"
    who = bearer(app_client, "inspector")
    body = _report(scratch_url, idempotency_key=key)
    with ThreadPoolExecutor(4) as pool:
        responses = list(pool.map(lambda _: _post(app_client, who, body), range(4)))
    assert sorted(r.status_code for r in responses) == [200, 200, 200, 201]
    assert len({r.json()["case"]["id"] for r in responses}) == 1


def test_concurrent_report_case_calls_make_one_case(scratch_url: str) -> None:
    uid = _sql(scratch_url, "SELECT id FROM city.users WHERE username = 'inspector'")[0][0]
    principal = Principal(
        kind="user",
        id=uid,
        name="inspector",
        display_name="朱华",
        positions=("inspector",),
        permissions=frozenset({"cases:report", "cases:read", "telemetry:write"}),
    )
    report = intake.CaseReport(**_report(scratch_url, idempotency_key=f"k-{uuid.uuid4().hex}"))

    async def one() -> intake.ReportResult:
        conn = await psycopg.AsyncConnection.connect(
            libpq_url(scratch_url), autocommit=True, options="-c search_path=city,public"
        )
        async with conn:
            return await intake.report_case(conn, principal, report, keyring=Keyring.generate())

    async def both() -> list[intake.ReportResult]:
        return list(await asyncio.gather(one(), one(), one()))

    results = asyncio.run(both())
    assert len({r.case["id"] for r in results}) == 1
    assert sorted(r.replayed for r in results) == [False, True, True]


# ------------------------------------------------------------------------ self-handled


def _upload(client: TestClient, who: dict[str, str], data: bytes) -> str:
    r = client.post("/api/v1/media", files={"file": ("p.jpg", data, "image/jpeg")}, headers=who)
    assert r.status_code == 201, r.text
    return r.json()["sha256"]


def test_self_handled_needs_before_and_after(app_client: TestClient, scratch_url: str) -> None:
    who = bearer(app_client, "inspector")
    before = _upload(app_client, who, JPEG + b"before")
    after = _upload(app_client, who, JPEG + b"after")
    only_before = _report(scratch_url, "self_handled", media=[{"sha256": before, "kind": "before"}])
    r = _post(app_client, who, only_before)
    assert r.status_code == 422 and "media" in _issues(r)
    media = [{"sha256": before, "kind": "before"}, {"sha256": after, "kind": "after"}]
    r = _post(app_client, who, _report(scratch_url, "self_handled", media=media, safety_issue=True))
    assert r.status_code == 201, r.text
    case = r.json()["case"]
    assert case["self_handled"] is True and case["stage"] == "reported"
    assert case["safety_issue"] is True
    assert sorted(m["kind"] for m in case["media"]) == ["after", "before"]


def test_media_must_exist_and_suit_its_kind(app_client: TestClient, scratch_url: str) -> None:
    who = bearer(app_client, "inspector")
    photo = _upload(app_client, who, JPEG + b"near")
    missing = hashlib.sha256(b"never uploaded").hexdigest()
    body = _report(
        scratch_url,
        media=[{"sha256": photo, "kind": "audio"}, {"sha256": missing, "kind": "near"}],
    )
    r = _post(app_client, who, body)
    assert r.status_code == 422
    assert _issues(r) == {"media[0].kind", "media[1].sha256"}


# ------------------------------------------------------------------------ personal data


def test_reporter_fields_are_encrypted_and_masked(app_client: TestClient, scratch_url: str) -> None:
    body = _report(
        scratch_url, "hotline_12345", reporter_name="王小明", reporter_phone="13912345678"
    )
    r = _post(app_client, bearer(app_client, "acceptor"), body)
    assert r.status_code == 201, r.text
    case = r.json()["case"]
    assert case["reporter_name"] == "王**" and case["reporter_phone"] == "139****5678"
    assert "13912345678" not in r.text and "王小明" not in r.text
    name_enc, phone_enc, bidx = _sql(
        scratch_url,
        "SELECT reporter_name_enc, reporter_phone_enc, reporter_phone_bidx FROM city.cases"
        " WHERE id = %s",
        (case["id"],),
    )[0]
    ring = app_client.app.state.accounts.keys.keyring
    assert ring.decrypt(name_enc) == "王小明" and ring.decrypt(phone_enc) == "13912345678"
    assert bidx == ring.blind_index("139 1234 5678")
    mine = app_client.get("/api/v1/cases/mine", headers=bearer(app_client, "acceptor"))
    assert mine.status_code == 200 and "13912345678" not in mine.text
    assert mine.json()[0]["reporter_phone"] == "139****5678"


def test_my_reports_lists_only_my_cases(app_client: TestClient, scratch_url: str) -> None:
    a = _post(app_client, bearer(app_client, "inspector"), _report(scratch_url)).json()
    b = _post(app_client, bearer(app_client, "citizen"), _report(scratch_url, "public")).json()
    mine = app_client.get("/api/v1/cases/mine", headers=bearer(app_client, "citizen")).json()
    ids = {c["id"] for c in mine}
    assert b["case"]["id"] in ids and a["case"]["id"] not in ids
    assert app_client.get("/api/v1/cases/mine").status_code == 401


def test_field_app_routes_refuse_anonymous_and_never_fail(
    app_client: TestClient, scratch_url: str
) -> None:
    routes = [
        ("POST", "/api/v1/cases"),
        ("GET", "/api/v1/cases/mine"),
        ("POST", "/api/v1/media"),
        ("GET", "/api/v1/media/" + "0" * 64),
        ("POST", "/api/v1/cases/1/media"),
        ("GET", "/api/v1/tasks/mine"),
        ("POST", "/api/v1/inspectors/positions"),
        ("GET", "/api/v1/inspectors/1/track"),
        ("GET", "/api/v1/inspectors/online"),
        ("GET", "/api/v1/notifications/mine"),
    ]
    citizen = bearer(app_client, "citizen")
    for method, path in routes:
        kwargs: dict[str, Any] = {"json": {}} if method == "POST" else {}
        assert app_client.request(method, path, **kwargs).status_code == 401, path
        status = app_client.request(method, path, headers=citizen, **kwargs).status_code
        assert status < 500, (path, status)


def test_system_robot_reports_machine_sources(scratch_url: str) -> None:
    from layers.cases.actions import SYSTEM_ROBOT

    report = intake.CaseReport(
        **_report(scratch_url, "fleet_alarm", idempotency_key="alarm-000001")
    )

    async def run() -> tuple[intake.ReportResult, intake.ReportResult]:
        conn = await psycopg.AsyncConnection.connect(
            libpq_url(scratch_url), autocommit=True, options="-c search_path=city,public"
        )
        async with conn:
            ring = Keyring.generate()
            first = await intake.report_case(conn, SYSTEM_ROBOT, report, keyring=ring)
            again = await intake.report_case(conn, SYSTEM_ROBOT, report, keyring=ring)
            return first, again

    first, again = asyncio.run(run())
    assert first.case["source"] == "fleet_alarm" and first.case["reporter_user_id"] is None
    assert again.replayed and again.case["id"] == first.case["id"]
    actor = _sql(
        scratch_url,
        "SELECT actor_name, actor_user_id FROM city.case_history WHERE case_id = %s",
        (first.case["id"],),
    )
    assert actor == [("系统机器人", None)]
