"""Outbox and SMS gateways (业务短信); inspector positions, tracks and who is online."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any, TypeVar

import psycopg
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from layers.cases import notify, positions
from spatial.crs import ClientCRS, from_storage
from spatial.db import libpq_url
from spatial.settings import DatabaseSettings, Settings
from tests.auth_support import bearer

T = TypeVar("T")


def _run(url: str, work: Callable[[psycopg.AsyncConnection], Awaitable[T]]) -> T:
    async def main() -> T:
        conn = await psycopg.AsyncConnection.connect(
            libpq_url(url), autocommit=True, options="-c search_path=city,public"
        )
        async with conn:
            return await work(conn)

    return asyncio.run(main())


def _rows(url: str, query: str, args: Any = ()) -> list[tuple]:
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        return conn.execute(query, args).fetchall()


def _uid(url: str, username: str) -> int:
    return _rows(url, "SELECT id FROM city.users WHERE username = %s", (username,))[0][0]


@pytest.fixture(autouse=True)
def quiet_outbox(scratch_url: str) -> None:
    """Messages of the sample data are not these tests' business: park them."""
    with psycopg.connect(libpq_url(scratch_url), autocommit=True) as conn:
        conn.execute("UPDATE city.notifications SET state = 'failed' WHERE state = 'pending'")
        conn.execute("DELETE FROM city.sms_messages")
        conn.execute("DELETE FROM city.notifications")


class _Provider(BaseHTTPRequestHandler):
    status = 500
    received: list[dict[str, Any]] = []

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        length = int(self.headers["Content-Length"])
        type(self).received.append(json.loads(self.rfile.read(length)))
        self.send_response(self.status)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def provider() -> Iterator[tuple[str, type[_Provider]]]:
    handler = type("Provider", (_Provider,), {"received": [], "status": 500})
    server = HTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/sms", handler
    server.shutdown()
    server.server_close()


# ------------------------------------------------------------------------ outbox


def test_enqueue_dedupes_by_key(scratch_url: str) -> None:
    uid = _uid(scratch_url, "inspector")

    async def work(conn: psycopg.AsyncConnection) -> list[int | None]:
        args = {"kind": "task", "body": "核查任务", "recipient_user_id": uid, "dedupe_key": "k:1"}
        return [await notify.enqueue(conn, **args), await notify.enqueue(conn, **args)]

    first, second = _run(scratch_url, work)
    assert first is not None and second is None
    assert _rows(
        scratch_url, "SELECT count(*) FROM city.notifications WHERE dedupe_key = 'k:1'"
    ) == [(1,)]


def test_enqueue_joins_the_callers_transaction(scratch_url: str) -> None:
    async def work(conn: psycopg.AsyncConnection) -> None:
        with pytest.raises(RuntimeError):
            async with conn.transaction():
                await notify.enqueue(conn, kind="notice", body="x", dedupe_key="rolled-back")
                raise RuntimeError("business change failed")

    _run(scratch_url, work)
    assert _rows(
        scratch_url, "SELECT count(*) FROM city.notifications WHERE dedupe_key = 'rolled-back'"
    ) == [(0,)]


def test_database_gateway_records_masked_messages(scratch_url: str) -> None:
    uid = _uid(scratch_url, "inspector")
    ring = notify.default_keyring()
    phone = ring.decrypt(
        _rows(scratch_url, "SELECT phone_enc FROM city.users WHERE id = %s", (uid,))[0][0]
    )

    async def work(conn: psycopg.AsyncConnection) -> notify.DeliveryReport:
        await notify.enqueue(
            conn, kind="task", body="【城市运管】请核查案件", recipient_user_id=uid
        )
        await notify.enqueue(conn, kind="result", body="您反映的问题已受理", phone="13900001111")
        return await notify.deliver_pending(conn, notify.DatabaseGateway(), keyring=ring)

    report = _run(scratch_url, work)
    assert report.sent == 2 and report.failed == report.retried == 0
    sms = _rows(scratch_url, "SELECT phone_mask, body FROM city.sms_messages ORDER BY id")
    assert sms == [
        (phone[:3] + "****" + phone[-4:], "【城市运管】请核查案件"),
        ("139****1111", "您反映的问题已受理"),
    ]
    states = _rows(
        scratch_url, "SELECT state, attempts, sent_at IS NOT NULL FROM city.notifications"
    )
    assert states == [("sent", 1, True), ("sent", 1, True)]
    stored = _rows(
        scratch_url,
        "SELECT recipient_phone_enc FROM city.notifications WHERE recipient_user_id IS NULL",
    )
    assert stored[0][0].startswith("sm4gcm$")
    again = _run(scratch_url, lambda c: notify.deliver_pending(c, notify.DatabaseGateway()))
    assert again.sent == 0


def test_failing_http_gateway_retries_and_records_the_error(
    scratch_url: str, provider: tuple[str, type[_Provider]]
) -> None:
    url, handler = provider
    uid = _uid(scratch_url, "inspector")
    gateway = notify.HttpGateway(url, timeout_s=5)
    _run(
        scratch_url, lambda c: notify.enqueue(c, kind="overdue", body="超时", recipient_user_id=uid)
    )
    for attempt in range(1, notify.MAX_ATTEMPTS + 1):
        report = _run(scratch_url, lambda c: notify.deliver_pending(c, gateway))
        state, attempts, error = _rows(
            scratch_url, "SELECT state, attempts, last_error FROM city.notifications"
        )[0]
        assert attempts == attempt and "HTTP 500" in error
        assert state == ("failed" if attempt == notify.MAX_ATTEMPTS else "pending")
    assert report.failed == 1
    assert len(handler.received) == notify.MAX_ATTEMPTS
    assert handler.received[0]["body"] == "超时" and handler.received[0]["phone"].isdigit()
    assert _rows(scratch_url, "SELECT count(*) FROM city.sms_messages") == [(0,)]


def test_http_gateway_success_and_unreachable(
    scratch_url: str, provider: tuple[str, type[_Provider]]
) -> None:
    url, handler = provider
    handler.status = 200
    _run(
        scratch_url,
        lambda c: notify.enqueue(c, kind="notice", body="今日提示", phone="13812345678"),
    )
    report = _run(scratch_url, lambda c: notify.deliver_pending(c, notify.HttpGateway(url)))
    assert report.sent == 1 and handler.received[0]["phone"] == "13812345678"
    assert _rows(scratch_url, "SELECT phone_mask FROM city.sms_messages") == [("138****5678",)]
    _run(
        scratch_url, lambda c: notify.enqueue(c, kind="notice", body="第二条", phone="13812345678")
    )
    dead = notify.HttpGateway("http://127.0.0.1:9/sms", timeout_s=2)
    report = _run(scratch_url, lambda c: notify.deliver_pending(c, dead))
    assert report.retried == 1
    error = _rows(scratch_url, "SELECT last_error FROM city.notifications WHERE state = 'pending'")
    assert "unreachable" in error[0][0]
    handler.status = 400  # refused by the provider: permanent
    report = _run(scratch_url, lambda c: notify.deliver_pending(c, notify.HttpGateway(url)))
    assert report.failed == 1


def test_my_notifications(scratch_url: str) -> None:
    uid = _uid(scratch_url, "inspector")
    _run(
        scratch_url,
        lambda c: notify.enqueue(c, kind="task", body="核实任务", recipient_user_id=uid),
    )
    with TestClient(
        create_app(Settings(db=DatabaseSettings(url=scratch_url))), raise_server_exceptions=False
    ) as client:
        mine = client.get("/api/v1/notifications/mine", headers=bearer(client, "inspector"))
        assert mine.status_code == 200
        assert [(n["kind"], n["kind_name"], n["body"]) for n in mine.json()] == [
            ("task", "任务通知", "核实任务")
        ]
        other = client.get("/api/v1/notifications/mine", headers=bearer(client, "citizen"))
        assert other.json() == []


# ------------------------------------------------------------------------ positions


def _grid_point(url: str) -> tuple[float, float]:
    return _rows(
        url,
        "SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(geom) p"
        " FROM city.responsibility_grids ORDER BY code LIMIT 1) s",
    )[0]


def _fixes(lon: float, lat: float, start: datetime, n: int, step_s: int = 10) -> list[dict]:
    return [
        {
            "lon": lon + i * 0.0001,
            "lat": lat,
            "device_time": (start + timedelta(seconds=i * step_s)).isoformat(),
            "accuracy_m": 5,
        }
        for i in range(n)
    ]


@pytest.fixture
def app_client(scratch_url: str) -> Iterator[TestClient]:
    with TestClient(
        create_app(Settings(db=DatabaseSettings(url=scratch_url))), raise_server_exceptions=False
    ) as c:
        yield c


def test_positions_dedup_and_bad_fixes_kept_apart(app_client: TestClient, scratch_url: str) -> None:
    lon, lat = _grid_point(scratch_url)
    start = datetime.now(UTC) - timedelta(minutes=5)
    fixes = _fixes(lon, lat, start, 5)
    fixes.insert(
        2,
        {"lon": lon + 0.5, "lat": lat, "device_time": (start + timedelta(seconds=15)).isoformat()},
    )
    fixes.append(
        {
            "lon": lon,
            "lat": lat,
            "device_time": (datetime.now(UTC) + timedelta(hours=1)).isoformat(),
        }
    )
    fixes.append({"lon": lat, "lat": lon, "device_time": start.isoformat()})  # swapped
    fixes.append({"lon": lon, "lat": lat, "device_time": "2026-01-01T08:00:00"})  # no offset
    who = bearer(app_client, "inspector")
    body = {"crs": "cgcs2000", "fixes": fixes}
    r = app_client.post("/api/v1/inspectors/positions", json=body, headers=who)
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["accepted"] == 5 and out["duplicates"] == 0
    reasons = {x["index"]: x["reason"] for x in out["rejected"]}
    assert set(reasons) == {2, 6, 7, 8}
    assert "jump" in reasons[2] and "future" in reasons[6]
    assert "China" in reasons[7] and "time zone" in reasons[8]
    again = app_client.post("/api/v1/inspectors/positions", json=body, headers=who).json()
    assert again["accepted"] == 0 and again["duplicates"] == 5
    uid = _uid(scratch_url, "inspector")
    assert _rows(
        scratch_url, "SELECT count(*) FROM city.inspector_positions WHERE user_id = %s", (uid,)
    ) == [(5,)]


def test_positions_need_telemetry_write(app_client: TestClient, scratch_url: str) -> None:
    lon, lat = _grid_point(scratch_url)
    body = {"fixes": _fixes(lon, lat, datetime.now(UTC), 1)}
    assert app_client.post("/api/v1/inspectors/positions", json=body).status_code == 401
    r = app_client.post(
        "/api/v1/inspectors/positions", json=body, headers=bearer(app_client, "citizen")
    )
    assert r.status_code == 403
    r = app_client.post(
        "/api/v1/inspectors/positions",
        json={"crs": "mars", **body},
        headers=bearer(app_client, "inspector"),
    )
    assert r.status_code == 400 and r.json()["errors"][0]["field"].endswith("crs")


def test_gcj02_fixes_and_the_track(app_client: TestClient, scratch_url: str) -> None:
    lon, lat = _grid_point(scratch_url)
    start = datetime.now(UTC) - timedelta(minutes=30)
    fixes = _fixes(lon, lat, start, 4)
    for f in fixes:
        x, y = from_storage(f["lon"], f["lat"], ClientCRS.GCJ02)
        f["lon"], f["lat"] = float(x), float(y)
    who = bearer(app_client, "inspector")
    r = app_client.post(
        "/api/v1/inspectors/positions", json={"crs": "gcj02", "fixes": fixes}, headers=who
    )
    assert r.json()["accepted"] == 4, r.text
    uid = _uid(scratch_url, "inspector")
    params = {
        "from": (start - timedelta(minutes=1)).isoformat(),
        "to": datetime.now(UTC).isoformat(),
    }
    track = app_client.get(
        f"/api/v1/inspectors/{uid}/track",
        params={**params, "crs": "cgcs2000"},
        headers=bearer(app_client, "shiftlead"),
    )
    assert track.status_code == 200, track.text
    feature = track.json()
    assert feature["geometry"]["type"] == "LineString"
    coords = feature["geometry"]["coordinates"]
    assert len(coords) == 4 and feature["properties"]["count"] == 4
    assert abs(coords[0][0] - lon) < 1e-5 and abs(coords[0][1] - lat) < 1e-5
    assert 25 < feature["properties"]["length_m"] < 35  # 3 steps of 0.0001° at 33° N
    gcj = app_client.get(
        f"/api/v1/inspectors/{uid}/track", params={**params, "crs": "gcj02"}, headers=who
    ).json()
    assert abs(gcj["geometry"]["coordinates"][0][0] - fixes[0]["lon"]) < 1e-6
    assert (
        app_client.get(
            f"/api/v1/inspectors/{uid}/track", headers=bearer(app_client, "citizen")
        ).status_code
        == 403
    )
    assert (
        app_client.get(
            f"/api/v1/inspectors/{uid}/track", headers=bearer(app_client, "handler")
        ).status_code
        == 403
    )
    bad = app_client.get(
        f"/api/v1/inspectors/{uid}/track",
        params={"from": params["to"], "to": params["from"]},
        headers=who,
    )
    assert bad.status_code == 400


def test_online_inspectors(app_client: TestClient, scratch_url: str) -> None:
    lon, lat = _grid_point(scratch_url)
    uid = _uid(scratch_url, "inspector")
    old = datetime.now(UTC) - timedelta(hours=2)
    batch = positions.PositionBatch(crs="cgcs2000", fixes=_fixes(lon, lat, old, 1))
    _run(scratch_url, lambda c: positions.upload_positions(c, uid, batch))
    leader = bearer(app_client, "leader")
    assert app_client.get("/api/v1/inspectors/online", headers=leader).json()["features"] == []
    fresh = _fixes(lon, lat, datetime.now(UTC) - timedelta(minutes=1), 1)
    app_client.post(
        "/api/v1/inspectors/positions",
        json={"crs": "cgcs2000", "fixes": fresh},
        headers=bearer(app_client, "inspector"),
    )
    online = app_client.get("/api/v1/inspectors/online", params={"minutes": 5}, headers=leader)
    assert online.status_code == 200
    features = online.json()["features"]
    assert [f["properties"]["username"] for f in features] == ["inspector"]
    assert features[0]["properties"]["grids"]
    assert (
        app_client.get(
            "/api/v1/inspectors/online", headers=bearer(app_client, "inspector")
        ).status_code
        == 403
    )


# ------------------------------------------------------------------------ tasks


def test_tasks_of_the_inspector(app_client: TestClient, scratch_url: str) -> None:
    from tests.case_support import insert_case, inspector_grid

    grid = inspector_grid(scratch_url)
    uid = _uid(scratch_url, "inspector")
    assigned = insert_case(scratch_url, "verifying")
    in_grid = insert_case(scratch_url, "handled")
    elsewhere = _rows(
        scratch_url,
        "SELECT code FROM city.responsibility_grids WHERE code NOT IN"
        " (SELECT grid_code FROM city.inspector_grids) ORDER BY code LIMIT 1",
    )[0][0]
    other = insert_case(scratch_url, "handled", grid=elsewhere)
    with psycopg.connect(libpq_url(scratch_url), autocommit=True) as conn:
        conn.execute(
            "INSERT INTO city.case_tasks (case_id, kind, state, assignee_user_id, grid_code,"
            " requirement) VALUES (%s, 'verify', 'open', %s, %s, '请核实'),"
            " (%s, 'check', 'open', NULL, %s, '请核查'), (%s, 'check', 'open', NULL, %s, 'x'),"
            " (%s, 'check', 'done', %s, %s, 'x')",
            (assigned, uid, grid, in_grid, grid, other, elsewhere, other, uid, elsewhere),
        )
    r = app_client.get(
        "/api/v1/tasks/mine", params={"crs": "gcj02"}, headers=bearer(app_client, "inspector")
    )
    assert r.status_code == 200, r.text
    tasks = r.json()
    assert sorted((t["case_id"], t["kind_name"]) for t in tasks) == sorted(
        [(assigned, "核实"), (in_grid, "核查")]
    )
    assert tasks[0]["location"]["crs"] == "gcj02" and tasks[0]["case_no"]
    assert app_client.get("/api/v1/tasks/mine", headers=bearer(app_client, "citizen")).json() == []
