"""Electronic manifests (电子联单): built from site fence events and weighbridges, flagged,
reconciled, listed and summarised (daily trips per company, disposal share by street)."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterator
from datetime import datetime, time, timedelta
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from data_samples.fleet_sim import Plan, SimDay, _truck_day, read_registry, run_day
from layers.fleet import manifests
from layers.fleet.ingest import HookRegistry
from layers.fleet.registry import record_gate_event
from layers.fleet.violations import Pipeline
from spatial.db import libpq_url
from spatial.geofence.engine import FenceEvent
from spatial.geofence.schedule import TZ
from spatial.settings import DatabaseSettings, Settings
from tests.auth_support import bearer

DAY = datetime.now(TZ).date() - timedelta(days=1)


def _connect(url: str) -> Any:
    return psycopg.AsyncConnection.connect(libpq_url(url), autocommit=True)


def one_trip(url: str) -> tuple[SimDay, int]:
    """One legal truck, one trip 工地 → 消纳场 → back, fed through the ingest."""
    with psycopg.connect(libpq_url(url)) as conn:
        reg = read_registry(conn, DAY)
    truck = next(t for t in reg.trucks if t.whitelisted and t.route.length > 1500)
    sim = SimDay(DAY)
    start = datetime.combine(DAY, time(9, 0), TZ)
    sim.end = start + timedelta(minutes=20)
    _truck_day(truck, reg, sim, random.Random(1), Plan(), sim.end)
    sim.fixes.sort(key=lambda f: f.time)
    sim.gates.sort(key=lambda g: g.at)

    async def run() -> None:
        async with await _connect(url) as conn:
            await run_day(conn, sim, hooks=HookRegistry([Pipeline()]))

    asyncio.run(run())
    return sim, truck.id


def manifest_rows(url: str, vehicle: int) -> list[dict[str, Any]]:
    """The vehicle's manifests in exit order."""
    with psycopg.connect(libpq_url(url)) as conn:
        cur = conn.execute(
            "SELECT * FROM city.manifests WHERE vehicle_id = %s ORDER BY exit_at, id", (vehicle,)
        )
        names = [c.name for c in cur.description or []]
        return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]


def test_a_legal_trip_is_a_complete_reconciled_manifest(scratch_url: str) -> None:
    _, vehicle = one_trip(scratch_url)
    rows = manifest_rows(scratch_url, vehicle)
    assert [r["state"] for r in rows] == ["complete"]
    m = rows[0]
    assert m["binding_id"] and m["route_id"] and m["disposal_site_id"]
    assert m["exit_weight_kg"] > 25000 and abs(m["weight_diff_kg"]) < 0.01 * m["exit_weight_kg"]
    assert m["entry_at"] > m["exit_at"] and not m["off_route"] and m["alarms"] == 0


async def _site_fences(url: str) -> Any:
    async with await _connect(url) as conn:
        cache = await Pipeline().refresh(conn)
    return cache


def test_a_second_exit_breaks_the_open_manifest_and_old_ones_expire(scratch_url: str) -> None:
    cache = asyncio.run(_site_fences(scratch_url))
    vehicle = next(v for v in cache.vehicles.values() if v.bindings)
    site = next(f for f in cache.fences.fences if f.site_id == vehicle.bindings[0].site_id)
    t = datetime.combine(DAY, time(10, 0), TZ)
    events = [
        FenceEvent(vehicle.id, site.id, "exit", t, 120.47, 33.2),
        FenceEvent(vehicle.id, site.id, "exit", t + timedelta(hours=1), 120.47, 33.2),
    ]

    async def run() -> None:
        async with await _connect(scratch_url) as conn:
            await manifests.apply(conn, events, [], cache.fences, cache.vehicles)
            await manifests.expire(conn, t + timedelta(hours=8))

    asyncio.run(run())
    rows = manifest_rows(scratch_url, vehicle.id)
    assert [(r["state"], r["reason"]) for r in rows] == [
        ("broken", "未到达消纳场即再次出场"),
        ("broken", "超时未到达消纳场"),
    ]


def test_an_unbound_disposal_site_makes_the_manifest_unapproved(scratch_url: str) -> None:
    cache = asyncio.run(_site_fences(scratch_url))
    vehicle = next(v for v in cache.vehicles.values() if v.bindings)
    binding = vehicle.bindings[0]
    site = next(f for f in cache.fences.fences if f.site_id == binding.site_id)
    other = next(
        f
        for f in cache.fences.fences
        if f.site_kind == "消纳场" and f.site_id != binding.disposal_site_id
    )
    t = datetime.combine(DAY, time(11, 0), TZ)
    events = [
        FenceEvent(vehicle.id, site.id, "exit", t, 120.47, 33.2),
        FenceEvent(vehicle.id, other.id, "enter", t + timedelta(minutes=20), 120.47, 33.2),
    ]

    async def run() -> None:
        async with await _connect(scratch_url) as conn:
            await manifests.apply(conn, events, [], cache.fences, cache.vehicles)

    asyncio.run(run())
    rows = manifest_rows(scratch_url, vehicle.id)
    assert [(r["state"], r["disposal_site_id"]) for r in rows] == [("unapproved", other.site_id)]


def test_late_weighings_are_reconciled(scratch_url: str) -> None:
    cache = asyncio.run(_site_fences(scratch_url))
    vehicle = next(v for v in cache.vehicles.values() if v.bindings)
    binding = vehicle.bindings[0]
    site = next(f for f in cache.fences.fences if f.site_id == binding.site_id)
    disposal = next(f for f in cache.fences.fences if f.site_id == binding.disposal_site_id)
    t = datetime.combine(DAY, time(12, 0), TZ)

    async def run() -> None:
        async with await _connect(scratch_url) as conn:
            events = [
                FenceEvent(vehicle.id, site.id, "exit", t, 120.47, 33.2),
                FenceEvent(vehicle.id, disposal.id, "enter", t + timedelta(minutes=25), 0, 0),
            ]
            await manifests.apply(conn, events, [], cache.fences, cache.vehicles)
            for site_id, direction, at, kg in (
                (site.site_id, "out", t + timedelta(minutes=1), 30000.0),
                (disposal.site_id, "in", t + timedelta(minutes=26), 29900.0),
            ):
                await record_gate_event(
                    conn,
                    site_id=site_id,
                    plate=str(vehicle.plate),
                    direction=direction,
                    source="weighbridge",
                    at=at,
                    weight_kg=kg,
                )
            await manifests.reconcile(conn, t - timedelta(hours=1))

    asyncio.run(run())
    (m,) = manifest_rows(scratch_url, vehicle.id)
    assert (m["state"], m["exit_weight_kg"], m["entry_weight_kg"], m["weight_diff_kg"]) == (
        "complete",
        30000.0,
        29900.0,
        100.0,
    )


@pytest.fixture
def app_client(scratch_url: str) -> Iterator[TestClient]:
    """A client on a writable copy of the sample database."""
    with TestClient(create_app(Settings(db=DatabaseSettings(url=scratch_url)))) as c:
        yield c


def test_manifests_api_lists_and_summarises(app_client: TestClient, scratch_url: str) -> None:
    _, vehicle = one_trip(scratch_url)
    headers = bearer(app_client, "shiftlead")
    listed = app_client.get(f"/api/v1/manifests?vehicle_id={vehicle}", headers=headers).json()
    (m,) = listed["items"]
    assert m["state"] == "complete" and m["plate"] and m["company"] and m["disposal_site"]
    assert m["weight_mismatch"] is False
    day = datetime.combine(DAY, time(0), TZ).isoformat()
    stats = app_client.get("/api/v1/manifests/stats", params={"from": day}, headers=headers)
    assert stats.status_code == 200, stats.text
    body = stats.json()
    (trips,) = body["daily_trips"]
    assert trips["trips"] == trips["complete"] == 1 and trips["company"] == m["company"]
    (share,) = body["disposal_share"]
    assert share["share"] == 1.0 and share["trips"] == 1
    bad = app_client.get("/api/v1/manifests?state=lost", headers=headers)
    assert bad.status_code == 400
    assert (
        app_client.get("/api/v1/manifests", headers=bearer(app_client, "handler")).status_code
        == 403
    )
