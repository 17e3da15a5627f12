"""Benchmark the case engine: report→close lifecycles/s and similar-case (去重) query latency.

Runs on a throwaway PostGIS cluster (a temporary directory, deleted afterwards) migrated and
loaded with the small core sample, the demo users, the dispatch rules and ``--cases`` history
cases (100,000 by default; ``--full`` for 1,000,000). Then, in one run:

(a) N workers each drive full lifecycles through the real engine — intake ``report_case``
    then ``perform`` accept, register, dispatch, feedback, check, close as the system robot —
    against a peer doing the same state changes as plain SQL UPDATE + INSERT (no engine);
(b) ``find_similar`` at the places of random existing cases, p50/p95, against the same
    query with index scans turned off (``enable_indexscan/bitmapscan = off``).

Ratios are printed (engine / peer). Usage::

    .venv/bin/python bench/cases.py [--cases 100000] [--full] [--seconds 20] [--workers 4]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import shutil
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg

from data_samples.case_history import END, Plan, load_cases
from data_samples.case_rules import load_case_rules
from data_samples.demo_users import load_demo_users
from data_samples.load import load
from spatial.cluster import Cluster
from spatial.db import ensure_database, libpq_url
from spatial.migrate import upgrade
from spatial.security.keystore import KeyStore

SEED = 7
STEPS = (
    ("accept", {}),
    ("register", {}),
    ("dispatch", {"department_code": "D004"}),
    ("feedback", {"opinion": "已处置完毕", "media": ["0" * 64]}),
    ("check", {"result": True}),
    ("close", {"opinion": "同意结案"}),
)
PEER_STEPS = (
    ("accept", "reported", "accepted", "待立案"),
    ("register", "accepted", "registered", "待派遣"),
    ("dispatch", "registered", "dispatched", "处置中"),
    ("feedback", "dispatched", "handled", "待核查"),
    ("check", "handled", "checked", "待结案"),
    ("close", "checked", "closed", "结案"),
)


def prepare(root: Path, cases: int) -> str:
    """Start a cluster in ``root``, migrate and load; return the database URL."""
    cluster = Cluster(root / "data")
    cluster.ensure_running(fast=True)
    url = cluster.url("bench_cases")
    ensure_database(url)
    upgrade(url)
    load(url, "small", progress=lambda _m: None)
    load_demo_users(url, KeyStore.ensure(root / "keys"), 1000)
    load_case_rules(url)
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:  # the feedback photo's blob
        conn.execute(
            "INSERT INTO city.media_blobs (sha256, mime, size_bytes) VALUES (%s, 'image/jpeg', 1)",
            ("0" * 64,),
        )
    started = time.perf_counter()
    counts = load_cases(url, Plan(cases=cases, days=max(365, cases // 100), end=END))
    print(f"loaded {counts} in {time.perf_counter() - started:.1f} s")
    return url


async def engine_lifecycle(conn: psycopg.AsyncConnection, point: tuple[float, float]) -> None:
    """One report→close through intake and the workflow engine."""
    from layers.cases.actions import SYSTEM_ROBOT, perform
    from layers.cases.intake import CaseReport, report_case

    report = CaseReport(
        source="video_ai",
        category="事件",
        class_code="3209040102",
        description="暴露垃圾：基准测试",
        location={"lon": point[0], "lat": point[1]},
    )
    result = await report_case(conn, SYSTEM_ROBOT, report)
    case_id = int(result.case["id"])
    for action, payload in STEPS:
        await perform(conn, SYSTEM_ROBOT, case_id, action, payload, expected_version=None)


async def peer_lifecycle(conn: psycopg.AsyncConnection, point: tuple[float, float]) -> None:
    """The same state changes as plain SQL, no engine (one transaction per step)."""
    async with conn.transaction():
        cur = await conn.execute(
            "INSERT INTO city.cases (case_no, source, category, class_code, description, stage,"
            " status, geom) VALUES ('P' || nextval('city.cases_id_seq'), 'video_ai', '事件',"
            " '3209040102', '暴露垃圾：基准测试', 'reported', '待受理',"
            " ST_SetSRID(ST_MakePoint(%s, %s), 4490)) RETURNING id",
            point,
        )
        case_id = (await cur.fetchone())[0]
        await _peer_history(conn, case_id, "report", None, "reported", 1)
    for version, (action, frm, to, status) in enumerate(PEER_STEPS, start=2):
        async with conn.transaction():
            await conn.execute(
                "UPDATE city.cases SET stage = %s, status = %s, version = %s,"
                " stage_started_at = now(), updated_at = now() WHERE id = %s AND stage = %s",
                (to, status, version, case_id, frm),
            )
            await _peer_history(conn, case_id, action, frm, to, version)


async def _peer_history(
    conn: psycopg.AsyncConnection, case_id: int, action: str, frm: str | None, to: str, v: int
) -> None:
    await conn.execute(
        "INSERT INTO city.case_history (case_id, action, action_name, from_stage, to_stage,"
        " version, actor_name) VALUES (%s, %s, %s, %s, %s, %s, '系统机器人')",
        (case_id, action, action, frm, to, v),
    )


async def throughput(
    url: str,
    fn: Callable[[psycopg.AsyncConnection, tuple[float, float]], Awaitable[None]],
    points: list[tuple[float, float]],
    workers: int,
    seconds: float,
) -> float:
    """Lifecycles per second over ``seconds`` with ``workers`` connections."""
    done = 0
    deadline = time.perf_counter() + seconds

    async def worker(k: int) -> None:
        nonlocal done
        rng = random.Random(SEED + k)
        async with await psycopg.AsyncConnection.connect(libpq_url(url), autocommit=True) as c:
            await c.execute("SET search_path = city, public")
            while time.perf_counter() < deadline:
                await fn(c, rng.choice(points))
                done += 1

    started = time.perf_counter()
    await asyncio.gather(*(worker(k) for k in range(workers)))
    return done / (time.perf_counter() - started)


async def similar_latency(
    url: str, probes: list[tuple[Any, ...]], no_index: bool
) -> tuple[float, float]:
    """p50/p95 (ms) of find_similar at the probes; ``no_index`` turns index scans off."""
    from layers.cases.similar import find_similar

    times = []
    async with await psycopg.AsyncConnection.connect(libpq_url(url), autocommit=True) as conn:
        await conn.execute("SET search_path = city, public")
        if no_index:
            await conn.execute("SET enable_indexscan = off")
            await conn.execute("SET enable_bitmapscan = off")
        for category, class_code, lon, lat, at in probes:
            started = time.perf_counter()
            await find_similar(
                conn, category=category, class_code=class_code, lon=lon, lat=lat, at=at
            )
            times.append((time.perf_counter() - started) * 1000)
    times.sort()
    return times[len(times) // 2], times[int(len(times) * 0.95)]


def sample_points(url: str, n: int) -> tuple[list[tuple[float, float]], list[tuple[Any, ...]]]:
    """Seeded points of existing cases and similar-case probes (class, place, time)."""
    with psycopg.connect(libpq_url(url)) as conn:
        conn.execute("SELECT setseed(0.42)")
        rows = conn.execute(
            "SELECT category, class_code, ST_X(geom), ST_Y(geom), reported_at FROM city.cases"
            " ORDER BY random() LIMIT %s",
            (n,),
        ).fetchall()
    return [(r[2], r[3]) for r in rows], [tuple(r) for r in rows]


def main() -> None:
    """Prepare, measure, print."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=100_000)
    parser.add_argument("--full", action="store_true", help="1,000,000 history cases")
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--probes", type=int, default=300)
    args = parser.parse_args()
    cases = 1_000_000 if args.full else args.cases
    root = Path(tempfile.mkdtemp(prefix="cityops-bench-cases-"))
    root.chmod(0o755)
    try:
        url = prepare(root, cases)
        points, probes = sample_points(url, args.probes)
        engine = asyncio.run(throughput(url, engine_lifecycle, points, args.workers, args.seconds))
        peer = asyncio.run(throughput(url, peer_lifecycle, points, args.workers, args.seconds))
        fast = asyncio.run(similar_latency(url, probes, no_index=False))
        slow = asyncio.run(similar_latency(url, probes[:50], no_index=True))  # ~1 s each
        print(f"{datetime.now(UTC):%Y-%m-%d}  {cases:,} history cases, {args.workers} workers")
        print(
            f"lifecycles/s  engine {engine:8.1f}   peer (plain SQL) {peer:8.1f}"
            f"   ratio {engine / peer:.2f}x"
        )
        print(
            f"similar p50/p95 ms  indexed {fast[0]:.2f}/{fast[1]:.2f}"
            f"   no index {slow[0]:.2f}/{slow[1]:.2f}   p95 ratio {slow[1] / fast[1]:.1f}x"
        )
    finally:
        Cluster(root / "data").destroy()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
