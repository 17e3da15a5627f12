"""A simulated truck day through F1's ingest: every injected violation is detected, no legal
trip raises an alarm, legal trips become complete manifests."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import psycopg
import pytest

from data_samples.fleet_sim import SimDay, build_day, run_day
from layers.fleet.ingest import HookRegistry
from layers.fleet.violations import Pipeline
from spatial.db import drop_database, libpq_url
from spatial.geofence.schedule import TZ
from tests.conftest import _clone


@pytest.fixture(scope="module")
def sim_url(pg_server: str, sample_template: str) -> Iterator[str]:
    """A writable copy of the sample database for the whole module."""
    url = _clone(pg_server, sample_template, f"cityops_fleetsim_{uuid.uuid4().hex[:8]}")
    yield url
    drop_database(url)


async def _run(url: str, sim: SimDay) -> dict[str, int]:
    async with await psycopg.AsyncConnection.connect(libpq_url(url), autocommit=True) as conn:
        return await run_day(conn, sim, hooks=HookRegistry([Pipeline()]))


@pytest.fixture(scope="module")
def day(sim_url: str) -> tuple[SimDay, dict[str, int]]:
    """Yesterday (Asia/Shanghai), simulated and fed through the ingest."""
    sim = build_day(sim_url, datetime.now(TZ).date() - timedelta(days=1), legal=8)
    return sim, asyncio.run(_run(sim_url, sim))


def _alarms(url: str) -> list[dict[str, Any]]:
    with psycopg.connect(libpq_url(url)) as conn:
        cur = conn.execute(
            "SELECT id, kind, vehicle_id, plate, started_at, ended_at, details FROM city.alarms"
        )
        names = [c.name for c in cur.description or []]
        return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]


def test_the_day_is_fed_completely(day: tuple[SimDay, dict[str, int]]) -> None:
    sim, counts = day
    assert counts["accepted"] == counts["fixes"] == len(sim.fixes)
    assert counts["hook_errors"] == 0
    assert sim.trips > len(sim.legal)
    assert counts["scans"] > 4


@pytest.mark.parametrize(
    "label",
    [
        "off_corridor",
        "speeding",
        "dumping",
        "unsealed",
        "offline",
        "unapproved_disposal",
        "forbidden_road",
        "forbidden_zone",
        "unregistered",
        "unpermitted",
    ],
)
def test_every_injected_violation_is_detected(
    day: tuple[SimDay, dict[str, int]], sim_url: str, label: str
) -> None:
    sim, _ = day
    injection = next(i for i in sim.injections if i.label == label)
    mine = [
        a
        for a in _alarms(sim_url)
        if (injection.vehicle_id is not None and a["vehicle_id"] == injection.vehicle_id)
        or a["plate"] == injection.plate
    ]
    kinds = {a["kind"] for a in mine}
    assert injection.expected <= kinds, (label, kinds)
    assert kinds <= injection.expected | injection.tolerated, (label, kinds)


def test_the_fence_jump_is_found_between_two_fixes(
    day: tuple[SimDay, dict[str, int]], sim_url: str
) -> None:
    jumps = [a for a in _alarms(sim_url) if a["kind"] == "forbidden_zone"]
    assert jumps and all(a["details"].get("between_fixes") for a in jumps)


def test_no_legal_trip_raises_an_alarm(day: tuple[SimDay, dict[str, int]], sim_url: str) -> None:
    sim, _ = day
    legal = set(sim.legal)
    assert [a for a in _alarms(sim_url) if a["vehicle_id"] in legal] == []


def test_legal_trips_become_complete_reconciled_manifests(
    day: tuple[SimDay, dict[str, int]], sim_url: str
) -> None:
    sim, _ = day
    with psycopg.connect(libpq_url(sim_url)) as conn:
        rows = conn.execute(
            "SELECT state, exit_weight_kg, entry_weight_kg, weight_diff_kg FROM city.manifests"
            " WHERE vehicle_id = ANY(%s) AND entry_at IS NOT NULL",
            (sim.legal,),
        ).fetchall()
    assert len(rows) >= len(sim.legal)
    assert {r[0] for r in rows} == {"complete"}
    assert all(r[1] and r[2] and abs(r[3]) <= 0.01 * r[1] for r in rows)


def test_the_unapproved_disposal_marks_its_manifest(
    day: tuple[SimDay, dict[str, int]], sim_url: str
) -> None:
    sim, _ = day
    truck = next(i for i in sim.injections if i.label == "unapproved_disposal").vehicle_id
    with psycopg.connect(libpq_url(sim_url)) as conn:
        states = [
            r[0]
            for r in conn.execute(
                "SELECT state FROM city.manifests WHERE vehicle_id = %s ORDER BY exit_at", (truck,)
            )
        ]
    assert states[0] == "unapproved"
