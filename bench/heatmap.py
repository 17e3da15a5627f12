"""Benchmark H3 heatmaps: 1M synthetic points, res 9, cityops vs two peers in the same run.

A throwaway PostGIS cluster gets one table of 1,000,000 points (EPSG:4490) around Dafeng with
their stored res-9 ``h3`` cell (as the point layers have), a GiST and an ``h3`` index. Timed,
in process on one connection (no HTTP), each to a finished response body or result:

- ``cityops res9``: :func:`spatial.heatmap.aggregate` + :func:`spatial.heatmap.geojson`;
- ``cityops res9 bbox+time``: the same inside a bbox and a time window;
- ``cityops res7``: the SQL roll-up to parents (bit arithmetic on the stored cell);
- ``cityops res9 counts``: the aggregate alone (``geometry=false`` answers);
- ``peer h3-py``: fetch every point, index it client-side with h3-py, count;
- ``peer snap-grid``: PostGIS ``ST_SnapToGrid`` square-grid counts (0.003°, about a res-9
  cell), counts only — no hexagons.

Usage (about a minute; 2 cores)::

    .venv/bin/python bench/heatmap.py [--points 1000000] [--runs 15]
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import h3
import numpy as np
import psycopg

from layers.registry import LayerSpec
from spatial.cluster import Cluster
from spatial.heatmap import HeatmapQuery, aggregate, cells_of, geojson

SEED = 7
T0 = datetime(2025, 1, 1, tzinfo=UTC)
SPEC = LayerSpec(
    id="bench", table="bench_points", title="bench", geometry_type="POINT", pk="id", temporal="t"
)
DDL = """
CREATE EXTENSION IF NOT EXISTS postgis;
CREATE SCHEMA IF NOT EXISTS city;
CREATE TABLE city.bench_points (
    id bigserial PRIMARY KEY, t timestamptz NOT NULL, h3 bigint, geom geometry(Point, 4490) NOT NULL
);
"""
INDEXES = """
CREATE INDEX ON city.bench_points USING gist (geom);
CREATE INDEX ON city.bench_points (h3);
CREATE INDEX ON city.bench_points (t);
"""
SNAP = (
    "SELECT array_agg(g), array_agg(n) FROM (SELECT ST_SnapToGrid(geom, 0.003) AS g, count(*) AS n "
    "FROM city.bench_points GROUP BY 1) s"
)
BBOX = (120.35, 33.05, 120.6, 33.3)


def synthetic(n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Seeded lon, lat, seconds-after-T0: town clusters plus a uniform spread over the district."""
    rng = np.random.default_rng(SEED)
    towns = np.array([[120.47, 33.20], [120.60, 33.25], [120.35, 33.10], [120.70, 33.05]])
    k = int(n * 0.8)
    which = rng.integers(0, len(towns), k)
    lon = np.concatenate(
        [towns[which, 0] + rng.normal(0, 0.04, k), rng.uniform(120.2, 120.9, n - k)]
    )
    lat = np.concatenate([towns[which, 1] + rng.normal(0, 0.03, k), rng.uniform(32.9, 33.5, n - k)])
    return lon, lat, rng.uniform(0, 365 * 86400, n)


def load(url: str, n: int) -> None:
    """Create and fill the table with COPY, index and analyse it."""
    lon, lat, secs = synthetic(n)
    lon, lat = np.round(lon, 7), np.round(lat, 7)  # as stored, so the cells match
    cells = cells_of(lon, lat, 9)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(DDL)
        with conn.cursor().copy("COPY city.bench_points (t, h3, geom) FROM STDIN") as copy:
            for start in range(0, n, 100_000):
                buf = io.StringIO()
                for x, y, s, c in zip(
                    lon[start : start + 100_000].tolist(),
                    lat[start : start + 100_000].tolist(),
                    secs[start : start + 100_000].tolist(),
                    cells[start : start + 100_000].tolist(),
                    strict=True,
                ):
                    when = (T0 + timedelta(seconds=s)).isoformat()
                    buf.write(f"{when}\t{c}\tSRID=4490;POINT({x:.7f} {y:.7f})\n")
                copy.write(buf.getvalue())
        conn.execute(INDEXES)
        conn.execute("VACUUM ANALYZE city.bench_points")


async def timed(fn: Callable[[], Awaitable[object]], runs: int) -> list[float]:
    """Milliseconds of ``runs`` calls after one warm-up."""
    await fn()
    out = []
    for _ in range(runs):
        start = time.perf_counter()
        await fn()
        out.append((time.perf_counter() - start) * 1000)
    return out


async def run(url: str, runs: int) -> dict[str, list[float]]:
    """Time every contender on one connection (jit off, as the tile pool runs)."""
    conn = await psycopg.AsyncConnection.connect(url, autocommit=True)
    await conn.execute("SET jit = off")
    full = HeatmapQuery(SPEC, 9)
    window = HeatmapQuery(SPEC, 9, BBOX, T0 + timedelta(days=30), T0 + timedelta(days=300))

    async def body(q: HeatmapQuery) -> bytes:
        return geojson(await aggregate(conn, q), {"layer": "bench"})

    async def client_side() -> dict[int, int]:
        cur = await conn.execute(
            "SELECT array_agg(ST_X(geom)), array_agg(ST_Y(geom)) FROM city.bench_points",
            binary=True,
        )
        xs, ys = await cur.fetchone()  # type: ignore[misc]
        cells, counts = np.unique(cells_of(np.asarray(xs), np.asarray(ys), 9), return_counts=True)
        return dict(zip(cells.tolist(), counts.tolist(), strict=True))

    async def snap() -> object:
        return await (await conn.execute(SNAP, binary=True)).fetchone()

    contenders: dict[str, Callable[[], Awaitable[object]]] = {
        "cityops res9": lambda: body(full),
        "cityops res9 bbox+time": lambda: body(window),
        "cityops res7": lambda: body(HeatmapQuery(SPEC, 7)),
        "cityops res9 counts": lambda: aggregate(conn, full),
        "peer h3-py": client_side,
        "peer snap-grid": snap,
    }
    results = {}
    for name, fn in contenders.items():
        results[name] = await timed(
            fn, runs if not name.startswith("peer h3") else max(3, runs // 3)
        )
    heat = await aggregate(conn, full)
    ref = await client_side()
    assert heat.as_dict() == {h3.int_to_str(c): n for c, n in ref.items()}  # noqa: S101
    print(f"res-9 cells: {heat.cells.size:,}, points: {heat.total:,}")
    await conn.close()
    return results


def report(results: dict[str, list[float]]) -> None:
    """p50/p95 per contender and the ratio of each peer to cityops res 9."""
    p50 = {k: statistics.median(v) for k, v in results.items()}
    for name, values in results.items():
        p95 = float(np.percentile(values, 95))
        print(f"{name:24s} p50 {p50[name]:8.1f} ms   p95 {p95:8.1f} ms   n={len(values)}")
    print(f"load average during the run: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    base = p50["cityops res9"]
    for peer in ("peer h3-py", "peer snap-grid"):
        print(f"{peer} / cityops res9 (p50): {p50[peer] / base:.2f}x")


def main() -> None:
    """Start a throwaway cluster, load, measure, report, clean up."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="cityops-bench-heatmap-"))
    root.chmod(0o755)
    cluster = Cluster(root / "data")
    cluster.ensure_running(fast=True)
    try:
        start = time.perf_counter()
        load(cluster.url(), args.points)
        print(f"loaded {args.points:,} points in {time.perf_counter() - start:.1f} s")
        report(asyncio.run(run(cluster.url(), args.runs)))
    finally:
        cluster.destroy()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
