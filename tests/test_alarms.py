"""Alarms API: list/filter, acknowledge, close, to a case, the SSE stream; geofence CRUD."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import psycopg
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from spatial.db import libpq_url
from spatial.settings import DatabaseSettings, Settings
from tests.auth_support import bearer

LON, LAT = 120.4702, 33.2001
SQUARE = {
    "type": "Polygon",
    "coordinates": [
        [[120.46, 33.19], [120.47, 33.19], [120.47, 33.20], [120.46, 33.20], [120.46, 33.19]]
    ],
}


@pytest.fixture
def app_client(scratch_url: str) -> Iterator[TestClient]:
    """A client on a writable copy of the sample database."""
    settings = Settings(db=DatabaseSettings(url=scratch_url))
    with TestClient(create_app(settings), raise_server_exceptions=False) as c:
        yield c


def add_alarm(url: str, kind: str = "dumping", **kw: Any) -> int:
    """Insert an alarm row directly (as the pipeline would)."""
    with psycopg.connect(libpq_url(url)) as conn:
        vehicle = conn.execute("SELECT id, plate FROM city.fleet_vehicles ORDER BY id").fetchone()
        row = conn.execute(
            "INSERT INTO city.alarms (kind, title, vehicle_id, plate, started_at, details,"
            " dedupe_key, geom) VALUES (%s, %s, %s, %s, %s, %s, %s,"
            " ST_SetSRID(ST_MakePoint(%s, %s), 4490)) RETURNING id",
            (
                kind,
                kw.get("title", "疑似偷倒乱倒（长时间停车）"),
                vehicle[0],
                vehicle[1],
                kw.get("at", datetime.now(UTC) - timedelta(minutes=5)),
                orjson.dumps({"stopped_minutes": 12}).decode(),
                f"{kind}:{vehicle[0]}:{kw.get('key', '')}",
                kw.get("lon", LON),
                kw.get("lat", LAT),
            ),
        ).fetchone()
        return int(row[0])


def test_alarms_need_alarms_read(app_client: TestClient) -> None:
    assert app_client.get("/api/v1/alarms").status_code == 401
    for who in ("citizen", "inspector", "dispatcher"):
        response = app_client.get("/api/v1/alarms", headers=bearer(app_client, who))
        assert response.status_code == 403, who


def test_list_and_filter_alarms(app_client: TestClient, scratch_url: str) -> None:
    first = add_alarm(scratch_url, "dumping", key="a")
    add_alarm(scratch_url, "speeding", key="b", title="超速行驶")
    headers = bearer(app_client, "shiftlead")
    items = app_client.get("/api/v1/alarms", headers=headers).json()["items"]
    assert {a["kind"] for a in items} >= {"dumping", "speeding"}
    only = app_client.get("/api/v1/alarms?kind=dumping&active=true", headers=headers).json()
    assert [a["id"] for a in only["items"]] == [first]
    one = app_client.get(f"/api/v1/alarms/{first}", headers=headers).json()
    assert one["lon"] == pytest.approx(LON) and one["details"] == {"stopped_minutes": 12}
    bad = app_client.get("/api/v1/alarms?kind=nonsense", headers=headers)
    assert bad.status_code == 400 and bad.json()["errors"][0]["field"] == "kind"
    assert app_client.get("/api/v1/alarms/999999", headers=headers).status_code == 404


def test_acknowledge_then_close(app_client: TestClient, scratch_url: str) -> None:
    alarm = add_alarm(scratch_url)
    headers = bearer(app_client, "shiftlead")
    ack = app_client.post(
        f"/api/v1/alarms/{alarm}/acknowledge", json={"note": "已电话联系驾驶员"}, headers=headers
    )
    assert ack.status_code == 200 and ack.json()["state"] == "acknowledged"
    assert ack.json()["note"] == "已电话联系驾驶员"
    closed = app_client.post(f"/api/v1/alarms/{alarm}/close", headers=headers)
    assert closed.status_code == 200 and closed.json()["state"] == "closed"
    assert closed.json()["ended_at"] is not None
    again = app_client.post(f"/api/v1/alarms/{alarm}/acknowledge", headers=headers)
    assert again.status_code == 409


def test_an_alarm_becomes_a_case_once(app_client: TestClient, scratch_url: str) -> None:
    alarm = add_alarm(scratch_url)
    headers = bearer(app_client, "shiftlead")
    made = app_client.post(f"/api/v1/alarms/{alarm}/case", headers=headers)
    assert made.status_code == 201, made.text
    body = made.json()
    assert body["created"] and body["alarm"]["state"] == "cased"
    case_id = body["case_id"]
    with psycopg.connect(libpq_url(scratch_url)) as conn:
        source, class_code, stage = conn.execute(
            "SELECT source, class_code, stage FROM city.cases WHERE id = %s", (case_id,)
        ).fetchone()
    assert (source, class_code, stage) == ("fleet_alarm", "3209040381", "reported")
    again = app_client.post(f"/api/v1/alarms/{alarm}/case", headers=headers)
    assert again.status_code == 200 and again.json()["case_id"] == case_id


def test_making_a_case_needs_a_case_permission(app_client: TestClient, scratch_url: str) -> None:
    alarm = add_alarm(scratch_url)
    response = app_client.post(f"/api/v1/alarms/{alarm}/case", headers=bearer(app_client, "leader"))
    assert response.status_code == 403


def _events(lines: Iterator[str]) -> Iterator[tuple[str, dict[str, Any]]]:
    event = None
    for line in lines:
        if line.startswith("event: "):
            event = line[7:]
        elif line.startswith("data: ") and event:
            yield event, orjson.loads(line[6:])
            event = None


def test_the_stream_replays_after_the_last_event_id(
    app_client: TestClient, scratch_url: str
) -> None:
    first = add_alarm(scratch_url, key="1")
    second = add_alarm(scratch_url, "speeding", key="2")
    headers = {**bearer(app_client, "shiftlead"), "Last-Event-ID": str(first)}
    with app_client.stream("GET", "/api/v1/alarms/stream?limit=1", headers=headers) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        events = list(_events(response.iter_lines()))
    assert [(e, d["id"]) for e, d in events] == [("alarm", second)]


def test_the_stream_pushes_new_alarms_live(app_client: TestClient, scratch_url: str) -> None:
    connected = threading.Event()

    def later() -> None:
        connected.wait(30)
        add_alarm(scratch_url, "offline", key="live", title="终端离线")

    helper = threading.Thread(target=later)
    helper.start()
    headers = bearer(app_client, "shiftlead")
    url = "/api/v1/alarms/stream?limit=1&heartbeat=0.5&positions=true"
    events = []
    with app_client.stream("GET", url, headers=headers) as response:
        for line in response.iter_lines():
            connected.set()
            if line.startswith("data: ") and '"offline"' in line:
                events.append(orjson.loads(line[6:]))
    helper.join()
    assert [e["kind"] for e in events] == ["offline"]


def test_the_stream_needs_alarms_read(app_client: TestClient) -> None:
    response = app_client.get("/api/v1/alarms/stream", headers=bearer(app_client, "dispatcher"))
    assert response.status_code == 403


def fence(**kw: Any) -> dict[str, Any]:
    """A fence document."""
    return {"name": "测试禁区", "kind": "forbidden_zone", "geometry": SQUARE, **kw}


def test_fence_crud(app_client: TestClient) -> None:
    admin = bearer(app_client, "admin")
    reader = bearer(app_client, "shiftlead")
    made = app_client.post("/api/v1/geofences", json=fence(crs="gcj02"), headers=admin)
    assert made.status_code == 201, made.text
    fid = made.json()["id"]
    assert made.headers["content-crs"].endswith("/4490>")
    ring = made.json()["geometry"]["coordinates"][0][0]
    assert ring[0][0] != pytest.approx(120.46, abs=1e-5)  # converted from GCJ-02
    circle = fence(
        name="学校周边",
        kind="circle",
        radius_m=200,
        rule="enter",
        geometry={"type": "Point", "coordinates": [LON, LAT]},
    )
    assert app_client.post("/api/v1/geofences", json=circle, headers=admin).status_code == 201
    road = fence(
        name="禁行路段",
        kind="forbidden_road",
        width_m=30,
        geometry={"type": "LineString", "coordinates": [[120.46, 33.19], [120.47, 33.2]]},
        schedule={"windows": [{"days": [1, 2, 3, 4, 5], "start": "07:00", "end": "09:00"}]},
    )
    made_road = app_client.post("/api/v1/geofences", json=road, headers=admin)
    assert made_road.status_code == 201 and made_road.json()["properties"]["line"]
    listed = app_client.get("/api/v1/geofences?kind=forbidden_zone", headers=reader).json()
    assert fid in [f["id"] for f in listed["features"]]
    changed = app_client.put(
        f"/api/v1/geofences/{fid}", json=fence(name="改名禁区", dwell_s=30), headers=admin
    )
    assert changed.status_code == 200 and changed.json()["properties"]["name"] == "改名禁区"
    assert app_client.delete(f"/api/v1/geofences/{fid}", headers=admin).status_code == 204
    assert app_client.get(f"/api/v1/geofences/{fid}", headers=reader).status_code == 404


@pytest.mark.parametrize(
    ("doc", "field"),
    [
        (fence(kind="circle"), "geometry"),
        (fence(kind="circle", geometry={"type": "Point", "coordinates": [LON, LAT]}), "radius_m"),
        (
            fence(schedule={"windows": [{"start": "25:00", "end": "09:00"}]}),
            "schedule.windows[0].start",
        ),
        (fence(applicability={"vehicle_ids": ["x"]}), "applicability.vehicle_ids"),
        (fence(rule="outside"), "rule"),
    ],
)
def test_bad_fences_name_the_field(app_client: TestClient, doc: dict, field: str) -> None:
    response = app_client.post("/api/v1/geofences", json=doc, headers=bearer(app_client, "admin"))
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["field"] == field


def test_fences_are_written_with_layers_write_only(app_client: TestClient) -> None:
    response = app_client.post(
        "/api/v1/geofences", json=fence(), headers=bearer(app_client, "shiftlead")
    )
    assert response.status_code == 403


def test_mirrored_site_fences_are_edited_through_the_registry(
    app_client: TestClient, scratch_url: str
) -> None:
    import asyncio

    from layers.fleet.violations import sync_fleet_fences

    async def sync() -> None:
        async with await psycopg.AsyncConnection.connect(libpq_url(scratch_url)) as conn:
            await sync_fleet_fences(conn)
            await conn.commit()

    asyncio.run(sync())
    with psycopg.connect(libpq_url(scratch_url)) as conn:
        fid = conn.execute("SELECT id FROM city.geofences WHERE kind = 'site' LIMIT 1").fetchone()
    response = app_client.delete(f"/api/v1/geofences/{fid[0]}", headers=bearer(app_client, "admin"))
    assert response.status_code == 409


def test_alarms_are_an_ogc_layer_for_alarm_readers(
    app_client: TestClient, scratch_url: str
) -> None:
    alarm = add_alarm(scratch_url)
    url = "/ogc/collections/alarms/items?f=json"
    assert app_client.get(url).status_code == 401
    response = app_client.get(url, headers=bearer(app_client, "shiftlead"))
    assert response.status_code == 200, response.text
    assert [f["id"] for f in response.json()["features"]] == [alarm]
