"""Benchmark: telemetry ingest + geofence evaluation vs a naive per-fix PostGIS baseline, one run.

Sets up a project-local throwaway PostGIS cluster (``spatial.cluster``, deleted afterwards;
``--server-url`` uses an existing server instead, in a temporary database), migrates it, loads
the small Dafeng sample and the fleet registry, adds bench vehicles up to ``--vehicles`` (500)
and random fences up to ``--fences`` (1,000: polygons, circles, corridors and forbidden roads,
a third with an ``enter`` rule, some with schedules), then drives every vehicle on a seeded
random walk (30 km/h, a fix every 15 s) and measures, in the same run:

- **ours**: batches of ``--batch`` fixes through F1's ``ingest`` with the geofence pipeline as its
  post-ingest hook (fixes stored, latest positions, segment evaluation with the in-memory STRtree,
  states, alarms, manifests — one transaction per batch, committed): fixes/s end to end;
- **ours-sql**: the same with the set-based PostGIS evaluator (one ``unnest`` ⋈ GiST statement);
- **naive**: per fix, one INSERT and one ``ST_Contains`` query against ``geofences``, state kept in
  Python and an alarm INSERT on each entry (one transaction per ``--batch`` fixes);
- **detection latency**: for every alarm, the wall time from its batch's receipt (handed to
  ``ingest``) to the commit that makes the alarm row visible: p50/p95.

Usage::

    .venv/bin/python bench/fleet.py [--fixes 60000] [--batch 5000] [--naive-fixes 4000]
                                    [--server-url postgresql://postgres@127.0.0.1:55432/]
"""

from __future__ import annotations

import argparse
import asyncio
import math
import random
import shutil
import statistics
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import psycopg
import shapely

from data_samples.fleet import load_fleet
from data_samples.load import load
from layers.fleet.ingest import HookRegistry, ingest
from layers.fleet.telemetry import Fix
from layers.fleet.violations import Pipeline
from spatial.cluster import Cluster
from spatial.db import drop_database, ensure_database, libpq_url
from spatial.geofence.engine import to_lonlat, to_metres
from spatial.geofence.evaluate import SqlEvaluator, StrTreeEvaluator
from spatial.geofence.schedule import TZ
from spatial.migrate import upgrade

SEED = 20261125
LON = (120.40, 120.56)
LAT = (33.14, 33.26)
STEP_S = 15
KMH = 30.0


@contextmanager
def database(server_url: str | None) -> Iterator[str]:
    """A migrated database with the small sample and the fleet registry."""
    root = None
    cluster = None
    if server_url is None:
        root = Path(tempfile.mkdtemp(prefix="cityops-bench-fleet-"))
        root.chmod(0o755)
        cluster = Cluster(root / "data")
        cluster.ensure_running()
        server_url = cluster.url()
    url = server_url.rsplit("/", 1)[0] + f"/bench_fleet_{uuid.uuid4().hex[:8]}"
    try:
        ensure_database(url)
        upgrade(url)
        load(url, "small", progress=lambda _m: None)
        load_fleet(url, "small")
        yield url
    finally:
        drop_database(url)
        if cluster is not None and root is not None:
            cluster.destroy()
            shutil.rmtree(root, ignore_errors=True)


def add_vehicles(url: str, total: int) -> list[str]:
    """Bench trucks (with terminals) up to ``total`` vehicles; every terminal id."""
    with psycopg.connect(libpq_url(url)) as conn:
        have = conn.execute("SELECT count(*) FROM city.fleet_vehicles").fetchone()[0]
        company = conn.execute("SELECT min(id) FROM city.fleet_companies").fetchone()[0]
        for n in range(have, total):
            vid = conn.execute(
                "INSERT INTO city.fleet_vehicles (plate, kind, company_id, sealed_capable)"
                " VALUES (%s, '渣土车', %s, true) RETURNING id",
                (f"苏JB{n:05d}", company),
            ).fetchone()[0]
            conn.execute(
                "INSERT INTO city.fleet_terminals (terminal_id, vehicle_id) VALUES (%s, %s)",
                (f"B{n:06d}", vid),
            )
        return [r[0] for r in conn.execute("SELECT terminal_id FROM city.fleet_terminals")]


def add_fences(url: str, total: int, rng: random.Random) -> int:
    """Random fences up to ``total`` (counting the mirrored sites and routes)."""
    with psycopg.connect(libpq_url(url)) as conn:
        have = conn.execute(
            "SELECT (SELECT count(*) FROM city.fleet_sites)"
            " + (SELECT count(*) FROM city.fleet_routes)"
        ).fetchone()[0]
        rows = []
        for n in range(max(0, total - have)):
            x, y = (float(v[0]) for v in to_metres([rng.uniform(*LON)], [rng.uniform(*LAT)]))
            pick = rng.random()
            rule = "enter" if rng.random() < 0.33 else "none"
            schedule = '{"windows": [{"start": "07:00", "end": "09:00"}]}' if n % 7 == 0 else "{}"
            if pick < 0.55:
                half = rng.uniform(50, 200)
                geom = shapely.box(x - half, y - half, x + half, y + half)
                kind = "forbidden_zone" if rule == "enter" else "polygon"
            elif pick < 0.8:
                geom = shapely.Point(x, y).buffer(rng.uniform(50, 300))
                kind = "circle"
            else:
                a = rng.uniform(0, math.pi)
                length = rng.uniform(1000, 3000)
                line = shapely.LineString(
                    [(x, y), (x + length * math.cos(a), y + length * math.sin(a))]
                )
                geom = line.buffer(20)
                kind = "forbidden_road" if rule == "enter" else "polygon"
            rows.append((f"B{n}", kind, rule, schedule, shapely.to_wkt(geom, rounding_precision=2)))
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO city.geofences (name, kind, rule, schedule, geom) VALUES"
                " (%s, %s, %s, %s::jsonb, ST_Multi(ST_Transform(ST_GeomFromText(%s, 4528), 4490)))",
                rows,
            )
        return have + len(rows)


def walks(terminals: list[str], n_fixes: int, start: datetime, rng: random.Random) -> list[Fix]:
    """Seeded random walks, a fix every 15 s for every vehicle, in time order."""
    state = []
    for _ in terminals:
        x, y = (float(v[0]) for v in to_metres([rng.uniform(*LON)], [rng.uniform(*LAT)]))
        state.append([x, y, rng.uniform(0, 2 * math.pi)])
    x_lo, y_lo = (float(v[0]) for v in to_metres([LON[0]], [LAT[0]]))
    x_hi, y_hi = (float(v[0]) for v in to_metres([LON[1]], [LAT[1]]))
    out: list[Fix] = []
    step = KMH / 3.6 * STEP_S
    tick = 0
    while len(out) < n_fixes:
        at = start + timedelta(seconds=STEP_S * tick)
        for terminal, s in zip(terminals, state, strict=True):
            s[2] += rng.gauss(0, 0.3)
            s[0] += step * math.cos(s[2])
            s[1] += step * math.sin(s[2])
            if not (x_lo < s[0] < x_hi and y_lo < s[1] < y_hi):
                s[2] += math.pi
                s[0] = min(max(s[0], x_lo), x_hi)
                s[1] = min(max(s[1], y_lo), y_hi)
            lon, lat = to_lonlat(s[0], s[1])
            out.append(Fix(terminal, at, lon, lat, "cgcs2000", KMH, 0, True, 20000.0))
        tick += 1
    return out[:n_fixes]


@dataclass
class Run:
    """One measured phase."""

    name: str
    fixes: int
    seconds: float
    alarms: int
    latencies: list[float]

    @property
    def rate(self) -> float:
        """Fixes per second."""
        return self.fixes / self.seconds

    def line(self) -> str:
        """Human summary."""
        text = (
            f"{self.name:9s} {self.fixes:7d} fixes {self.seconds:7.2f} s {self.rate:9.0f} fixes/s"
        )
        text += f"  alarms {self.alarms}"
        if self.latencies:
            lat = sorted(self.latencies)
            p50 = statistics.median(lat)
            p95 = lat[min(len(lat) - 1, int(0.95 * len(lat)))]
            text += f"  detection p50 {p50 * 1000:.0f} ms p95 {p95 * 1000:.0f} ms"
        return text


async def _count(conn: psycopg.AsyncConnection) -> int:
    cur = await conn.execute("SELECT count(*) FROM city.alarms")
    row = await cur.fetchone()
    return int(row[0]) if row else 0


async def ours(url: str, fixes: list[Fix], batch: int, pipeline: Pipeline, name: str) -> Run:
    """Batches through F1's ingest with the pipeline as its hook."""
    hooks = HookRegistry([pipeline])
    latencies: list[float] = []
    async with await psycopg.AsyncConnection.connect(libpq_url(url), autocommit=True) as conn:
        await pipeline.refresh(conn)  # caches warm, as in a running server
        before = await _count(conn)
        started = time.perf_counter()
        for k in range(0, len(fixes), batch):
            received = time.perf_counter()
            n_before = await _count(conn)
            await ingest(conn, fixes[k : k + batch], source="bench", hooks=hooks)
            committed = time.perf_counter()
            latencies += [committed - received] * (await _count(conn) - n_before)
        seconds = time.perf_counter() - started
        # the two count queries per batch are bench bookkeeping: measured and taken out
        t = time.perf_counter()
        for _ in range(len(range(0, len(fixes), batch))):
            await _count(conn)
        seconds -= 2 * (time.perf_counter() - t)
        alarms = await _count(conn) - before
    return Run(name, len(fixes), seconds, alarms, latencies)


NAIVE_TABLE = """
CREATE TABLE IF NOT EXISTS public.bench_naive_fixes (
    terminal_id text, device_time timestamptz, speed_kmh real, geom geometry(Point, 4490),
    PRIMARY KEY (terminal_id, device_time))
"""


async def naive(url: str, fixes: list[Fix], batch: int) -> Run:
    """Per fix: INSERT, ST_Contains against every fence (GiST), alarm INSERT on entry."""
    inside: dict[str, set[int]] = {}
    alarms = 0
    async with await psycopg.AsyncConnection.connect(libpq_url(url), autocommit=True) as conn:
        await conn.execute(NAIVE_TABLE)
        vehicle = {
            t: v
            for t, v in await (
                await conn.execute("SELECT terminal_id, vehicle_id FROM city.fleet_terminals")
            ).fetchall()
        }
        started = time.perf_counter()
        for k in range(0, len(fixes), batch):
            async with conn.transaction():
                for f in fixes[k : k + batch]:
                    point = (f.lon, f.lat)
                    await conn.execute(
                        "INSERT INTO public.bench_naive_fixes VALUES (%s, %s, %s,"
                        " ST_SetSRID(ST_MakePoint(%s, %s), 4490))",
                        (f.terminal_id, f.device_time, f.speed_kmh, *point),
                    )
                    cur = await conn.execute(
                        "SELECT id, rule FROM city.geofences WHERE active AND"
                        " ST_Contains(geom, ST_SetSRID(ST_MakePoint(%s, %s), 4490))",
                        point,
                    )
                    now = {fid for fid, rule in await cur.fetchall() if rule == "enter"}
                    for fid in now - inside.get(f.terminal_id, set()):
                        alarms += 1
                        await conn.execute(
                            "INSERT INTO city.alarms (kind, title, vehicle_id, fence_id,"
                            " started_at, ended_at, geom) VALUES ('fence_enter', 'naive', %s, %s,"
                            " %s, %s, ST_SetSRID(ST_MakePoint(%s, %s), 4490))",
                            (vehicle.get(f.terminal_id), fid, f.device_time, f.device_time, *point),
                        )
                    inside[f.terminal_id] = now
        seconds = time.perf_counter() - started
    return Run("naive", len(fixes), seconds, alarms, [])


def main() -> None:
    """Run every phase once and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--fixes", type=int, default=60_000)
    parser.add_argument("--batch", type=int, default=5000)
    parser.add_argument("--naive-fixes", type=int, default=4000)
    parser.add_argument("--vehicles", type=int, default=500)
    parser.add_argument("--fences", type=int, default=1000)
    parser.add_argument("--server-url", default=None, help="use this server, not a new cluster")
    parser.add_argument("--skip-sql", action="store_true", help="skip the SQL-evaluator phase")
    args = parser.parse_args()
    rng = random.Random(SEED)
    with database(args.server_url) as url:
        terminals = add_vehicles(url, args.vehicles)
        fences = add_fences(url, args.fences, rng)
        day = datetime.combine(datetime.now(TZ).date() - timedelta(days=1), datetime.min.time(), TZ)
        print(f"{len(terminals)} vehicles, {fences} fences, batches of {args.batch} fixes")
        runs = []
        extra = 0 if args.skip_sql else args.fixes // 2
        fixes = walks(terminals, args.fixes + extra, day + timedelta(hours=10), rng)
        pipeline = Pipeline(StrTreeEvaluator())
        runs.append(asyncio.run(ours(url, fixes[: args.fixes], args.batch, pipeline, "ours")))
        if not args.skip_sql:  # the same walks go on, evaluated by PostGIS
            pipeline = Pipeline(SqlEvaluator())
            more = fixes[args.fixes :]
            runs.append(asyncio.run(ours(url, more, args.batch, pipeline, "ours-sql")))
        sample = walks(terminals, args.naive_fixes, day + timedelta(hours=18), rng)
        runs.append(asyncio.run(naive(url, sample, args.batch)))
        for run in runs:
            print(run.line())
        print(f"ratio ours/naive: {runs[0].rate / runs[-1].rate:.1f}x")
        if not args.skip_sql:
            print(f"ratio ours-sql/naive: {runs[1].rate / runs[-1].rate:.1f}x")


if __name__ == "__main__":
    main()
