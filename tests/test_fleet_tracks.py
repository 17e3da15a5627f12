"""Tracks: simplification by zoom, mileage, stops, planned-vs-actual, the HTTP routes."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import psycopg
import pytest
import shapely
from fastapi.testclient import TestClient

from api.app import create_app
from layers.fleet import tracks
from layers.fleet.ingest import HookRegistry, ingest
from layers.fleet.telemetry import parse_many
from spatial.settings import DatabaseSettings, Settings
from tests.auth_support import bearer
from tests.fleet_support import clear_vehicle, fix, query, recent, run_db, terminal_of

VEHICLE = 1


def _store(url: str, items: list) -> None:
    fixes, rejected = parse_many(items)

    async def work(conn: psycopg.AsyncConnection) -> None:
        result = await ingest(conn, fixes, rejected=rejected, hooks=HookRegistry())
        assert result.accepted == len(items), result

    run_db(url, work)


def _zigzag(terminal: str, start, n: int = 120) -> list:
    """Eastwards with a 3 m zigzag (GPS noise) every 20 s: ≈ 9.3 km, 17 km/h."""
    return [
        fix(
            terminal,
            start + timedelta(seconds=20 * k),
            120.40 + 0.0008 * k,
            33.18 + (0.00003 if k % 2 else 0.0),
            speed_kmh=17.0,
        )
        for k in range(n)
    ]


@pytest.fixture
def driven(scratch_url: str):
    """Vehicle 1 drove 40 minutes east, then stood still 12 minutes."""
    clear_vehicle(scratch_url, VEHICLE)
    terminal = terminal_of(scratch_url, VEHICLE)
    start = recent(90)
    items = _zigzag(terminal, start)
    end = start + timedelta(seconds=20 * 120)
    items += [
        fix(terminal, end + timedelta(seconds=30 * k), 120.40 + 0.0008 * 120, 33.18, speed_kmh=0.0)
        for k in range(25)
    ]
    _store(scratch_url, items)
    return scratch_url, start, end + timedelta(minutes=13)


def _track(url: str, start, end, zoom):
    return run_db(url, lambda c: tracks.track(c, VEHICLE, start, end, zoom))


def test_track_is_simplified_by_zoom(driven) -> None:
    url, start, end = driven
    raw = _track(url, start, end, None)
    coarse = _track(url, start, end, 11)
    fine = _track(url, start, end, 19)
    n = raw["properties"]["fixes"]
    assert n == 145 and raw["properties"]["vertices"] == n
    assert coarse["properties"]["vertices"] < 10 < fine["properties"]["vertices"]
    assert len(coarse["properties"]["times"]) == coarse["properties"]["vertices"]
    assert coarse["properties"]["times"][0] == start.isoformat()


def test_mileage_is_geodesic_length(driven) -> None:
    url, start, end = driven
    props = _track(url, start, end, 14)["properties"]
    line = shapely.LineString([(120.40, 33.18), (120.40 + 0.0008 * 119, 33.18)])
    assert props["mileage_m"] == pytest.approx(line.length * 93_300, rel=0.02)


def test_stops_are_found(driven) -> None:
    url, start, end = driven
    found = run_db(url, lambda c: tracks.stops(c, VEHICLE, start, end, min_minutes=10))
    assert len(found) == 1
    assert found[0]["minutes"] >= 12 and found[0]["lon"] == pytest.approx(120.496, abs=1e-3)
    assert run_db(url, lambda c: tracks.stops(c, VEHICLE, start, end, min_minutes=20)) == []


def test_planned_vs_actual(scratch_url: str) -> None:
    clear_vehicle(scratch_url, VEHICLE)
    [(route_id, wkt)] = query(
        scratch_url,
        "SELECT r.id, ST_AsText(ST_GeometryN(r.geom, 1)) FROM city.fleet_routes r"
        " JOIN city.fleet_bindings b ON b.route_id = r.id WHERE b.vehicle_id = %s",
        VEHICLE,
    )
    line = shapely.from_wkt(wkt)
    terminal = terminal_of(scratch_url, VEHICLE)
    start = recent(60)
    on_route = [line.interpolate(k / 10, normalized=True) for k in range(10)]
    items = [
        fix(terminal, start + timedelta(seconds=60 * k), p.x, p.y, crs="cgcs2000")
        for k, p in enumerate(on_route)
    ]
    off = shapely.Point(on_route[-1].x + 0.01, on_route[-1].y + 0.01)  # ≈ 1.4 km away
    items += [
        fix(terminal, start + timedelta(seconds=600 + 60 * k), off.x, off.y) for k in range(2)
    ]
    _store(scratch_url, items)
    end = start + timedelta(minutes=20)
    result = run_db(scratch_url, lambda c: tracks.route_compare(c, VEHICLE, start, end))
    assert result["route_id"] == route_id and result["fixes"] == 12
    assert result["within_corridor"] == 10 and result["share_within"] == pytest.approx(
        10 / 12, abs=1e-4
    )
    assert 500 < result["max_deviation_m"] < 2000
    assert result["off_route_from"] == (start + timedelta(seconds=600)).isoformat()


@pytest.fixture
def app_client(scratch_url: str) -> Iterator[TestClient]:
    settings = Settings(db=DatabaseSettings(url=scratch_url))
    with TestClient(create_app(settings), raise_server_exceptions=False) as c:
        yield c


def test_track_routes(app_client: TestClient, driven) -> None:
    _url, start, end = driven
    headers = bearer(app_client, "leader")
    params = {"from": start.isoformat(), "to": end.isoformat(), "zoom": 12, "crs": "gcj02"}
    r = app_client.get(f"/api/v1/fleet/vehicles/{VEHICLE}/track", params=params, headers=headers)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["geometry"]["type"] == "LineString" and body["properties"]["crs"] == "gcj02"
    assert body["geometry"]["coordinates"][0][0] > 120.40 + 1e-4  # shifted into GCJ-02
    stops = app_client.get(
        f"/api/v1/fleet/vehicles/{VEHICLE}/stops", params=params, headers=headers
    )
    assert stops.status_code == 200 and len(stops.json()) == 1
    compare = app_client.get(
        f"/api/v1/fleet/vehicles/{VEHICLE}/route-compare",
        params={"from": params["from"], "to": params["to"]},
        headers=headers,
    )
    assert compare.status_code == 200, compare.text
    reversed_ = {"from": params["to"], "to": params["from"]}
    bad = app_client.get(
        f"/api/v1/fleet/vehicles/{VEHICLE}/track", params=reversed_, headers=headers
    )
    assert bad.status_code == 400
    missing = app_client.get("/api/v1/fleet/vehicles/99999/track", params=params, headers=headers)
    assert missing.status_code == 404
    dispatcher = app_client.get(
        f"/api/v1/fleet/vehicles/{VEHICLE}/track",
        params=params,
        headers=bearer(app_client, "dispatcher"),
    )
    assert dispatcher.status_code == 403
