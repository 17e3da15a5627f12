"""Telemetry ingest: conversion, deduplication, late fixes, quarantine, partitions, HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from layers.fleet.ingest import HookRegistry, IngestResult, StoredFix, ingest
from layers.fleet.telemetry import parse_many
from spatial.crs import ClientCRS, to_storage
from spatial.settings import DatabaseSettings, Settings
from tests.fleet_support import (
    api_key,
    clear_vehicle,
    drive,
    fix,
    query,
    recent,
    run_db,
    terminal_of,
)


def _ingest(url: str, items: list, hooks: HookRegistry | None = None) -> IngestResult:
    fixes, rejected = parse_many(items)

    async def work(conn: psycopg.AsyncConnection) -> IngestResult:
        return await ingest(conn, fixes, rejected=rejected, hooks=hooks or HookRegistry())

    return run_db(url, work)


def test_gcj02_is_converted_to_cgcs2000(scratch_url: str) -> None:
    terminal = terminal_of(scratch_url, 1)
    at = recent(5)
    result = _ingest(scratch_url, [fix(terminal, at, 120.47, 33.2, crs="gcj02")])
    assert result.accepted == 1
    [(x, y, crs)] = query(
        scratch_url,
        "SELECT ST_X(geom), ST_Y(geom), src_crs FROM city.telemetry_fixes"
        " WHERE vehicle_id = 1 AND device_time = %s",
        at,
    )
    ex, ey = to_storage(120.47, 33.2, ClientCRS.GCJ02)
    assert crs == "gcj02" and abs(x - ex) < 1e-7 and abs(y - ey) < 1e-7
    assert abs(x - 120.47) > 1e-4  # the GCJ-02 offset (hundreds of metres) was removed


def test_duplicates_are_dropped_and_counted(scratch_url: str) -> None:
    items = drive(terminal_of(scratch_url, 2), recent(30), 10)
    first = _ingest(scratch_url, items + items[:2])
    assert first.accepted == 10 and first.duplicates == 2
    again = _ingest(scratch_url, items[:5])
    assert again.accepted == 0 and again.duplicates == 5 and again.rejected == {}
    assert query(scratch_url, "SELECT count(*) FROM city.fix_quarantine")[0][0] == 0


def test_out_of_order_fixes_are_stored_and_latest_not_regressed(scratch_url: str) -> None:
    terminal = terminal_of(scratch_url, 3)
    clear_vehicle(scratch_url, 3)
    items = drive(terminal, recent(20), 6)
    assert _ingest(scratch_url, list(reversed(items[3:]))).accepted == 3
    newest = items[-1]["device_time"]
    late = _ingest(scratch_url, list(reversed(items[:3])))
    assert late.accepted == 3 and late.late == 3
    [(count,)] = query(
        scratch_url,
        "SELECT count(*) FROM city.telemetry_fixes WHERE vehicle_id = 3 AND device_time >= %s",
        datetime.fromisoformat(items[0]["device_time"]),
    )
    assert count == 6
    [(latest,)] = query(
        scratch_url, "SELECT device_time FROM city.vehicle_latest WHERE vehicle_id = 3"
    )
    assert latest == datetime.fromisoformat(newest)


def test_bad_fixes_are_quarantined_and_valid_ones_kept(scratch_url: str) -> None:
    terminal = terminal_of(scratch_url, 4)
    start = recent(40)
    items = drive(terminal, start, 8)
    jump = fix(terminal, start + timedelta(seconds=70), 121.3, 33.18)  # ~80 km in 10 s
    future = fix(terminal, datetime.now(UTC) + timedelta(hours=2), 120.45, 33.18)
    unknown = fix("NO-SUCH-TERMINAL", start, 120.45, 33.18)
    malformed = {"terminal_id": terminal, "device_time": "yesterday", "lon": 120.4, "lat": 33.1}
    nowhere = fix(terminal, start + timedelta(seconds=5), 0.0, 0.0)
    result = _ingest(scratch_url, [*items, jump, future, unknown, malformed, nowhere])
    assert result.accepted == 8
    assert result.rejected == {
        "speed_jump": 1,
        "future_time": 1,
        "unknown_terminal": 1,
        "malformed": 1,
        "bad_coordinates": 1,
    }
    reasons = dict(
        query(scratch_url, "SELECT reason, count(*) FROM city.fix_quarantine GROUP BY 1")
    )
    assert reasons == result.rejected
    [(payload,)] = query(
        scratch_url, "SELECT payload FROM city.fix_quarantine WHERE reason = 'malformed'"
    )
    assert "yesterday" in payload


def test_fix_after_a_jump_is_checked_against_the_fix_before_it(scratch_url: str) -> None:
    terminal = terminal_of(scratch_url, 5)
    items = drive(terminal, recent(50), 5)
    items[2] = fix(terminal, datetime.fromisoformat(items[2]["device_time"]), 120.9, 33.5)
    result = _ingest(scratch_url, items)
    assert result.accepted == 4 and result.rejected == {"speed_jump": 1}


def test_daily_partitions_are_created_and_strays_go_to_the_default(scratch_url: str) -> None:
    terminal = terminal_of(scratch_url, 6)
    day_ago = recent(60 * 26)
    old = recent(60 * 24 * 60)  # 60 days: outside the partition window
    result = _ingest(scratch_url, [*drive(terminal, day_ago, 3), *drive(terminal, old, 2)])
    assert result.accepted == 5
    rows = dict(
        query(
            scratch_url,
            "SELECT tableoid::regclass::text, count(*) FROM city.telemetry_fixes"
            " WHERE vehicle_id = 6 AND device_time < now() - interval '20 hours' GROUP BY 1",
        )
    )
    local_day = (day_ago + timedelta(hours=8)).strftime("%Y%m%d")
    assert rows[f"city_fixes.telemetry_fixes_{local_day}"] == 3
    assert rows["city_fixes.telemetry_fixes_default"] == 2


def test_hooks_see_accepted_fixes_and_a_failing_hook_loses_nothing(scratch_url: str) -> None:
    seen: list[StoredFix] = []
    hooks = HookRegistry()

    @hooks.register
    async def good(conn: psycopg.AsyncConnection, accepted: list[StoredFix]) -> None:
        seen.extend(accepted)

    @hooks.register
    async def bad(conn: psycopg.AsyncConnection, accepted: list[StoredFix]) -> None:
        await conn.execute("SELECT 1/0")

    clear_vehicle(scratch_url, 7)
    items = drive(terminal_of(scratch_url, 7), recent(15), 4)
    result = _ingest(scratch_url, items, hooks)
    assert result.accepted == 4 and result.hook_errors == 1
    assert [f.vehicle_id for f in seen] == [7] * 4
    assert seen[0].device_time < seen[-1].device_time
    assert (
        query(
            scratch_url,
            "SELECT count(*) FROM city.telemetry_fixes WHERE vehicle_id = 7 AND device_time >= %s",
            recent(16),
        )[0][0]
        == 4
    )


@pytest.fixture
def app_client(scratch_url: str) -> Iterator[TestClient]:
    settings = Settings(db=DatabaseSettings(url=scratch_url))
    with TestClient(create_app(settings), raise_server_exceptions=False) as c:
        yield c


def test_http_batch_ingest_with_a_terminal_key(app_client: TestClient, scratch_url: str) -> None:
    key = api_key(scratch_url, ["telemetry:write"])
    terminal = terminal_of(scratch_url, 8)
    body = {"fixes": [*drive(terminal, recent(10), 5, crs="wgs84"), {"lon": "bad"}]}
    response = app_client.post("/api/v1/telemetry", json=body, headers={"X-API-Key": key})
    assert response.status_code == 200, response.text
    assert response.json()["accepted"] == 5 and response.json()["rejected"] == {"malformed": 1}
    anonymous = app_client.post("/api/v1/telemetry", json=body)
    assert anonymous.status_code == 401
