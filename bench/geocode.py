"""Benchmark: the geocoder over HTTP against a naive PostGIS baseline on the same data, one run.

Starts the app (``--workers`` uvicorn processes on free loopback ports) against the local
cluster (the full sample), then at N concurrent clients measures forward geocoding (p50/p95,
top-1 accuracy on perturbed queries), suggest and reverse geocoding (req/s), the server's CPU per
request, and the app's cheapest route as the HTTP floor. The baseline is the naive way with
PostGIS alone: pg_trgm ``<->``/``similarity()`` over names for forward, KNN ``<->`` and
``ST_Contains`` for reverse, issued with the same concurrency over psycopg async connections.

Usage (local cluster up and migrated: ``cityops db up && cityops db migrate``)::

    .venv/bin/python bench/geocode.py [--requests 4000] [--seconds 60] [--concurrency 8]
                                      [--workers 2] [--client raw|httpx]

``--client raw`` (default) is a minimal asyncio HTTP/1.1 keep-alive client; on a 2-core machine
httpx spends more CPU per request than the server does, so it measures itself (see
docs/benchmarks.md). Everything runs on 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from psycopg_pool import AsyncConnectionPool

from geocoder.forward import geocode
from geocoder.loader import load_index_from_url
from geocoder.quality import Probe, fetch_truth, forward_probes
from spatial.cluster import free_port
from spatial.db import libpq_url
from spatial.settings import DatabaseSettings

Point = tuple[float, float]
FROM = {"from": "cgcs2000"}

NAIVE_FORWARD = """
SELECT code FROM (
  (SELECT code, standard_address AS name FROM city.addresses
    ORDER BY standard_address <-> %(q)s LIMIT 10)
  UNION ALL (SELECT code, name FROM city.pois ORDER BY name <-> %(q)s LIMIT 10)
  UNION ALL (SELECT code, name FROM city.compounds ORDER BY similarity(name, %(q)s) DESC LIMIT 3)
  UNION ALL (SELECT code, name FROM city.roads ORDER BY similarity(name, %(q)s) DESC LIMIT 3)
  UNION ALL (SELECT code, name FROM city.communities ORDER BY similarity(name, %(q)s) DESC LIMIT 3)
) c ORDER BY similarity(name, %(q)s) DESC, code LIMIT 1
"""
NAIVE_REVERSE = """
SELECT (SELECT code FROM city.addresses ORDER BY geom <-> ST_SetSRID(ST_MakePoint(%(lon)s, %(lat)s), 4490) LIMIT 1),
       (SELECT code FROM city.pois ORDER BY geom <-> ST_SetSRID(ST_MakePoint(%(lon)s, %(lat)s), 4490) LIMIT 1),
       (SELECT code FROM city.roads ORDER BY geom <-> ST_SetSRID(ST_MakePoint(%(lon)s, %(lat)s), 4490) LIMIT 1),
       (SELECT code FROM city.unit_grids
         WHERE ST_Contains(geom, ST_SetSRID(ST_MakePoint(%(lon)s, %(lat)s), 4490)) LIMIT 1)
"""  # noqa: E501


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class Stats:
    """Latencies of one phase, its wall time and the server's CPU time."""

    name: str
    latencies: list[float]
    seconds: float
    correct: int = 0
    judged: int = 0
    server_cpu: float | None = None

    def line(self) -> str:
        """p50, p95, req/s (and accuracy when judged)."""
        lat = sorted(self.latencies)
        p50, p95 = lat[len(lat) // 2] * 1000, lat[int(len(lat) * 0.95)] * 1000
        acc = f"  top-1 {self.correct / self.judged:6.1%}" if self.judged else ""
        rps = len(lat) / self.seconds
        times = f"p50 {p50:6.2f} ms  p95 {p95:6.2f} ms  {rps:6.0f} req/s"
        cpu = (
            f"  server CPU {self.server_cpu * 1000 / len(lat):4.2f} ms/req"
            if self.server_cpu
            else ""
        )
        return f"{self.name:<30} n={len(lat):>5}  {times}{cpu}{acc}"

    @property
    def p95(self) -> float:
        """95th percentile, seconds."""
        return sorted(self.latencies)[int(len(self.latencies) * 0.95)]

    @property
    def rps(self) -> float:
        """Requests per second over the phase."""
        return len(self.latencies) / self.seconds


async def run_phase(
    name: str,
    jobs: list[Any],
    call: Callable[[Any], Awaitable[bool | None]],
    conc: int,
    secs: float,
) -> Stats:
    """Run ``call`` over ``jobs`` with ``conc`` workers, stopping after ``secs``."""
    stats = Stats(name, [], 0.0)
    it = iter(jobs)
    deadline = time.perf_counter() + secs

    async def worker() -> None:
        for job in it:
            if time.perf_counter() > deadline:
                return
            started = time.perf_counter()
            ok = await call(job)
            stats.latencies.append(time.perf_counter() - started)
            if ok is not None:
                stats.judged += 1
                stats.correct += bool(ok)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(conc)))
    stats.seconds = time.perf_counter() - started
    return stats


class RawClient:
    """A minimal HTTP/1.1 keep-alive client: ``conc`` connections spread over the ports."""

    def __init__(self, ports: list[int], conc: int) -> None:
        """Remember where the servers are."""
        self.ports, self.conc = ports, conc
        self.free: asyncio.Queue = asyncio.Queue()

    async def open(self) -> None:
        """Open the connections, round-robin over the servers."""
        for k in range(self.conc):
            port = self.ports[k % len(self.ports)]
            self.free.put_nowait(await asyncio.open_connection("127.0.0.1", port))

    async def get(self, path: str) -> tuple[int, bytes]:
        """GET ``path``; returns (status, body)."""
        reader, writer = await self.free.get()
        try:
            writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head.split(b" ", 2)[1])
            length = next(
                int(line.split(b":")[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length")
            )
            return status, await reader.readexactly(length)
        finally:
            self.free.put_nowait((reader, writer))

    async def close(self) -> None:
        """Close every connection."""
        while not self.free.empty():
            _reader, writer = self.free.get_nowait()
            writer.close()


class HttpxClient:
    """The same interface over httpx.AsyncClient (one per server)."""

    def __init__(self, ports: list[int], conc: int) -> None:
        """Configure the pools."""
        import httpx

        per = max(1, conc // len(ports))
        limits = httpx.Limits(max_connections=per, max_keepalive_connections=per)
        self.clients = [
            httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", limits=limits) for port in ports
        ]
        self.turn = 0

    async def open(self) -> None:
        """Nothing to open ahead."""

    async def get(self, path: str) -> tuple[int, bytes]:
        """GET ``path`` from the next server."""
        self.turn = (self.turn + 1) % len(self.clients)
        r = await self.clients[self.turn].get(path)
        return r.status_code, r.content

    async def close(self) -> None:
        """Close the pools."""
        for client in self.clients:
            await client.aclose()


def start_servers(url: str, count: int) -> list[tuple[subprocess.Popen, int]]:
    """Start ``count`` single-process uvicorn servers on free loopback ports.

    Not ``uvicorn --workers N``: its pre-bound socket loses TCP_NODELAY, so every keep-alive
    request waits ~40 ms for a delayed ACK (Kludex/uvicorn#3149). Separate processes on separate
    ports, with the client spreading its connections, behave like N workers behind a balancer.
    """
    servers = []
    port = 18700
    for _ in range(count):
        port = free_port(port + 1)
        cmd = [sys.executable, "-m", "uvicorn", "api.app:create_app", "--factory", "--port"]
        cmd += [str(port), "--host", "127.0.0.1", "--log-level", "warning", "--no-access-log"]
        env = {**os.environ, "DATABASE_URL": url}
        root = Path(__file__).resolve().parent.parent
        servers.append((subprocess.Popen(cmd, env=env, cwd=root), port))
    deadline = time.monotonic() + 180
    for proc, port in servers:
        while True:
            try:
                index = f"http://127.0.0.1:{port}/api/v1/geocode/index"
                with urllib.request.urlopen(index, timeout=5):  # noqa: S310 - loopback only
                    break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    for p, _ in servers:
                        p.terminate()
                    raise RuntimeError("a server did not start") from None
                time.sleep(0.5)
    return servers


def q(path: str, **params: object) -> str:
    """A path with its query string."""
    return f"{path}?{urllib.parse.urlencode(params)}"


Call = Callable[[Any], Awaitable[bool | None]]


async def bench(args: argparse.Namespace) -> None:
    """Run every phase, interleaved in rounds, and print the report."""
    url = DatabaseSettings().resolved_url()
    truth = fetch_truth(libpq_url(url))
    probes = forward_probes(truth, plates=2400, pois=800, named=800, seed=args.seed)
    rng = random.Random(args.seed)
    probes = (probes * (args.requests // len(probes) + 1))[: args.requests]
    rng.shuffle(probes)
    plates = rng.sample(truth.plates, min(len(truth.plates), args.requests))
    points = [(r[9] + rng.uniform(-3e-4, 3e-4), r[10] + rng.uniform(-3e-4, 3e-4)) for r in plates]
    prefixes = [p.query[: rng.randint(1, max(1, min(6, len(p.query))))] for p in probes]

    ix = await load_index_from_url(url)
    times = []
    for p in probes[:2000]:
        started = time.perf_counter()
        geocode(ix, p.query, 5)
        times.append(time.perf_counter() - started)
    engine = Stats("engine forward (in-process)", times, sum(times))

    servers = start_servers(url, args.workers)
    client = (HttpxClient if args.client == "httpx" else RawClient)(
        [p for _, p in servers], args.concurrency
    )
    pool = AsyncConnectionPool(libpq_url(url), min_size=args.concurrency, open=False)
    await client.open()
    await pool.open(wait=True)

    async def http(path: str, **params: object) -> bytes:
        status, body = await client.get(q(path, **params))
        return body if status == 200 else b"{}"

    async def forward(p: Probe) -> bool:
        cands = json.loads(await http("/api/v1/geocode", q=p.query, limit=5)).get("candidates")
        return bool(cands) and cands[0]["code"] == p.expected

    async def sql(query: str, params: dict[str, object]) -> tuple | None:
        async with pool.connection() as conn:
            return await (await conn.execute(query, params)).fetchone()

    async def naive_forward(p: Probe) -> bool:
        row = await sql(NAIVE_FORWARD, {"q": p.query})
        return row is not None and row[0] == p.expected

    async def suggest(text: str) -> None:
        await http("/api/v1/geocode/suggest", q=text)

    async def reverse(pt: Point) -> None:
        await http("/api/v1/reverse", lon=pt[0], lat=pt[1])

    async def reverse_pg(pt: Point) -> None:
        await http("/api/v1/reverse", lon=pt[0], lat=pt[1], source="postgis")

    async def floor(pt: Point) -> None:  # the app's cheapest route: no database, no index
        await http("/api/v1/crs/convert", lon=pt[0], lat=pt[1], to="wgs84", **FROM)

    async def naive_reverse(pt: Point) -> None:
        await sql(NAIVE_REVERSE, {"lon": pt[0], "lat": pt[1]})

    kind = args.client
    phases: list[tuple[str, list[Any], Call, bool]] = [
        (f"HTTP forward ({kind})", probes, forward, True),
        (f"HTTP suggest ({kind})", prefixes, suggest, True),
        (f"HTTP reverse ({kind})", points, reverse, True),
        ("HTTP reverse source=postgis", points, reverse_pg, True),
        ("HTTP floor: /crs/convert", points, floor, True),
        ("naive SQL forward (trgm)", probes, naive_forward, False),
        ("naive SQL reverse (KNN)", points, naive_reverse, False),
    ]
    stats = {name: Stats(name, [], 0.0) for name, *_ in phases}
    try:
        for name, jobs, call, _ in phases:  # warm-up: JIT-free Python, but caches and plans
            await run_phase(name, jobs[:200], call, args.concurrency, args.seconds)
        for r in range(args.rounds):  # interleaved, so outside load hits every phase alike
            for name, jobs, call, tracked in phases:
                before = sum(cpu_seconds(proc.pid) for proc, _ in servers)
                part = await run_phase(
                    name, jobs[r :: args.rounds], call, args.concurrency, args.seconds / args.rounds
                )
                total = stats[name]
                total.latencies += part.latencies
                total.seconds += part.seconds
                total.correct += part.correct
                total.judged += part.judged
                if tracked:
                    used = sum(cpu_seconds(proc.pid) for proc, _ in servers) - before
                    total.server_cpu = (total.server_cpu or 0.0) + used
    finally:
        await client.close()
        await pool.close()
        for proc, _ in servers:
            proc.terminate()
            proc.wait(timeout=30)
    report(args, engine, list(stats.values()))


def report(args: argparse.Namespace, engine: Stats, s: list[Stats]) -> None:
    """Print every phase, the ratios and the targets."""
    fwd, sug, rev, rev_pg, floor, naive_fwd, naive_rev = s
    print(
        f"\n{args.concurrency} concurrent clients, {args.workers} server process(es), "
        f"{os.cpu_count()} cores, {args.rounds} interleaved rounds, "
        f"load average {os.getloadavg()[0]:.1f} at the end (other processes included)"
    )
    for stats in (engine, *s):
        print("  " + stats.line())
    print(
        f"\nforward p95: ours {fwd.p95 * 1000:.1f} ms vs naive {naive_fwd.p95 * 1000:.1f} ms "
        f"(ratio {naive_fwd.p95 / fwd.p95:.1f}); top-1 {fwd.correct / fwd.judged:.1%} vs "
        f"{naive_fwd.correct / naive_fwd.judged:.1%}"
    )
    print(
        f"reverse: {rev.rps:.0f} req/s = {rev.rps / floor.rps:.0%} of the app's HTTP floor "
        f"({floor.rps:.0f} req/s, no database, no index); source=postgis {rev_pg.rps:.0f} req/s; "
        f"naive SQL without HTTP {naive_rev.rps:.0f} q/s (ratio {rev.rps / naive_rev.rps:.2f})"
    )
    print(
        f"targets: reverse ≥ 800 req/s: {'met' if rev.rps >= 800 else 'NOT met'}; "
        f"forward p95 ≤ 50 ms: {'met' if fwd.p95 <= 0.05 else 'NOT met'}; "
        f"suggest p95 < 30 ms: {'met' if sug.p95 < 0.03 else 'NOT met'}"
    )


def main() -> None:
    """Parse arguments and run."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=4000, help="per phase")
    parser.add_argument("--seconds", type=float, default=60.0, help="time cap per phase")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument(
        "--workers", type=int, default=2, help="server processes (one uvicorn each, own port)"
    )
    parser.add_argument("--client", choices=("raw", "httpx"), default="raw")
    parser.add_argument("--rounds", type=int, default=4, help="interleaved rounds per phase")
    parser.add_argument("--seed", type=int, default=320904)
    asyncio.run(bench(parser.parse_args()))


if __name__ == "__main__":
    main()
