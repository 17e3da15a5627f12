"""The engine against PostGIS: evaluator parity, restart safety, fence edits picked up."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import psycopg
import pytest

from layers.fleet.violations import Pipeline
from spatial.db import libpq_url
from spatial.geofence.engine import Fix, to_lonlat, to_metres
from spatial.geofence.evaluate import Segments, SqlEvaluator, StrTreeEvaluator
from spatial.geofence.fences import load_fence_set
from spatial.geofence.schedule import TZ

T0 = datetime.combine(datetime.now(TZ).date() - timedelta(days=1), datetime.min.time(), TZ)


def _connect(url: str) -> Any:
    return psycopg.AsyncConnection.connect(libpq_url(url), autocommit=True)


def _zone(url: str, dwell_s: int = 0) -> tuple[int, float, float]:
    """A 200 m forbidden zone; returns its id and centre in metres."""
    x, y = (float(v[0]) for v in to_metres([120.47], [33.21]))
    with psycopg.connect(libpq_url(url)) as conn:
        row = conn.execute(
            "INSERT INTO city.geofences (name, kind, rule, dwell_s, hysteresis_m, geom) VALUES"
            " ('测试禁区', 'forbidden_zone', 'enter', %s, 10,"
            " ST_Multi(ST_Transform(ST_MakeEnvelope(%s, %s, %s, %s, 4528), 4490))) RETURNING id",
            (dwell_s, x - 100, y - 100, x + 100, y + 100),
        ).fetchone()
    return int(row[0]), x, y


def _vehicle(url: str) -> int:
    with psycopg.connect(libpq_url(url)) as conn:
        return int(conn.execute("SELECT min(id) FROM city.fleet_vehicles").fetchone()[0])


def _fix(vehicle: int, x: float, y: float, seconds: int) -> Fix:
    lon, lat = to_lonlat(x, y)
    return Fix(vehicle, T0 + timedelta(hours=10, seconds=seconds), lon, lat, 20.0)


def _alarms(url: str) -> list[tuple[str, bool]]:
    with psycopg.connect(libpq_url(url)) as conn:
        return [
            (r[0], r[1] is None)
            for r in conn.execute("SELECT kind, ended_at FROM city.alarms ORDER BY id")
        ]


def test_both_evaluators_agree(scratch_url: str) -> None:
    zone, x, y = _zone(scratch_url)
    rng = np.random.default_rng(7)

    async def run() -> tuple[Any, Any]:
        async with await _connect(scratch_url) as conn:
            await Pipeline().refresh(conn)  # mirrors sites and corridors
            fences = await load_fence_set(conn)
            n = 3000
            x0 = x + rng.uniform(-6000, 6000, n)
            y0 = y + rng.uniform(-6000, 6000, n)
            segs = Segments(x0, y0, x0 + rng.uniform(-800, 800, n), y0 + rng.uniform(-800, 800, n))
            a = StrTreeEvaluator.compute(fences, segs)
            b = await SqlEvaluator().facts(conn, fences, segs)
            return a, b

    a, b = asyncio.run(run())

    def rows(f: Any) -> set[tuple]:
        return set(zip(f.segment, f.fence, f.end_inner, f.end_outer, f.cross, strict=True))

    assert len(rows(a)) > 50
    assert rows(a) == rows(b)


@pytest.mark.parametrize("restart", [False, True])
def test_state_survives_a_restart(scratch_url: str, restart: bool) -> None:
    zone, x, y = _zone(scratch_url, dwell_s=60)
    vid = _vehicle(scratch_url)
    first = [_fix(vid, x - 500, y, 0), _fix(vid, x, y, 30)]  # inside, dwell not yet over
    second = [_fix(vid, x + 10, y, 60), _fix(vid, x + 20, y, 90), _fix(vid, x + 600, y, 120)]

    async def run() -> None:
        pipeline = Pipeline()
        async with await _connect(scratch_url) as conn:
            await pipeline.evaluate(conn, first)
            if restart:
                pipeline = Pipeline()
            await pipeline.evaluate(conn, second)

    asyncio.run(run())
    # entered at 30 s, confirmed at 90 s (dwell 60 s); leaving at 120 s awaits its own dwell
    assert _alarms(scratch_url) == [("forbidden_zone", True)]


def test_new_fences_are_picked_up_without_restart(scratch_url: str) -> None:
    vid = _vehicle(scratch_url)
    pipeline = Pipeline()
    x, y = (float(v[0]) for v in to_metres([120.47], [33.21]))

    async def feed(fixes: list[Fix]) -> None:
        async with await _connect(scratch_url) as conn:
            await pipeline.evaluate(conn, fixes)

    asyncio.run(feed([_fix(vid, x - 900, y, 0)]))
    _zone(scratch_url)
    asyncio.run(feed([_fix(vid, x + 900, y, 60)]))  # jumps across the new zone
    assert _alarms(scratch_url) == [("forbidden_zone", False)]
