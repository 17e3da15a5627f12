"""Benchmark OGC API items and vector tiles: cityops vs tipg vs stock pygeoapi, one run.

All three servers read the same PostGIS database (the full Dafeng sample: 138,662 components)
and run with 2 uvicorn workers, one server at a time; wrk sends ``Connection: close`` so load
spreads over both workers (peer-baseline pitfall 1). Usage::

    make run   # once, to have the local cluster with the full sample (Ctrl-C after start)
    .venv/bin/python bench/ogc.py [--seconds 10] [--servers cityops,tipg,tipg-4326,pygeoapi]
"""

from __future__ import annotations

import argparse
import random
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager

import _servers
import _wrk
import morecantile
import psycopg

from spatial.db import libpq_url
from spatial.settings import DatabaseSettings

SEED = 42
TARGET = (950, 1100)
COUNT_IN_BOX = "SELECT count(*) FROM city.parts WHERE geom && ST_MakeEnvelope(%s,%s,%s,%s,4490)"
Server = Callable[[str, int], AbstractContextManager[str]]


def bboxes(url: str, n: int = 50) -> list[tuple[float, float, float, float]]:
    """``n`` seeded bboxes holding about 1,000 components each."""
    rng = random.Random(SEED)
    out = []
    with psycopg.connect(libpq_url(url)) as conn:
        while len(out) < n:
            x, y = rng.uniform(120.45, 120.51), rng.uniform(33.175, 33.225)
            lo, hi = 0.0005, 0.01
            for _ in range(12):
                half = (lo + hi) / 2
                box = (x - half, y - half, x + half, y + half)
                count = conn.execute(COUNT_IN_BOX, box).fetchone()[0]
                if TARGET[0] <= count <= TARGET[1]:
                    out.append(tuple(round(v, 6) for v in box))
                    break
                lo, hi = (half, hi) if count < TARGET[0] else (lo, half)
    return out


def tiles(zoom: int, n: int = 50) -> list[morecantile.Tile]:
    """Seeded WebMercatorQuad tiles over the district seat (all of them at z14)."""
    tms = morecantile.tms.get("WebMercatorQuad")
    every = list(tms.tiles(120.45, 33.175, 120.51, 33.225, [zoom]))
    return every if zoom <= 14 else random.Random(SEED + zoom).sample(every, min(n, len(every)))


ITEM_PATHS = {
    "cityops": "/ogc/collections/parts/items?f=json&limit=1000&bbox={}",
    "cityops-nocache": "/ogc/collections/parts/items?f=json&limit=1000&bbox={}",
    "tipg": "/collections/city.parts/items?f=geojson&limit=1000&bbox={}",
    "tipg-4326": "/collections/bench.parts/items?f=geojson&limit=1000&bbox={}",
    "pygeoapi": "/collections/parts/items?f=json&limit=1000&bbox={}",
}
TILE_PATHS = {
    "cityops": "/tiles/parts/{z}/{x}/{y}.mvt",
    "cityops-nocache": "/tiles/parts/{z}/{x}/{y}.mvt",
    "tipg": "/collections/city.parts/tiles/WebMercatorQuad/{z}/{x}/{y}",
    "tipg-4326": "/collections/bench.parts/tiles/WebMercatorQuad/{z}/{x}/{y}",
}
SERVERS: dict[str, Server] = {
    "cityops": _servers.cityops,
    "cityops-nocache": _servers.cityops_nocache,  # tile cache off
    "tipg": _servers.tipg,  # the same city.parts table (EPSG:4490, all 19 columns)
    "tipg-4326": _servers.tipg,  # its best case: bench.parts, a 4326 copy with 10 columns
    "pygeoapi": _servers.pygeoapi,  # stock PostgreSQL provider on bench.parts
}


def measure(
    name: str,
    url: str,
    port: int,
    boxes: list,
    zooms: list[int],
    seconds: int,
) -> Iterator[tuple[str, int, _wrk.Result]]:
    """Run every scenario against one server."""
    with SERVERS[name](url, port) as base:
        items = [ITEM_PATHS[name].format(",".join(map(str, b))) for b in boxes]
        for clients in (1, 8, 32):
            yield "items", clients, _wrk.run(base, items, clients, seconds)
        if name in TILE_PATHS:
            for z in zooms:
                paths = [TILE_PATHS[name].format(z=t.z, x=t.x, y=t.y) for t in tiles(z)]
                yield f"tiles z{z}", 8, _wrk.run(base, paths, 8, seconds)


def main() -> None:
    """Measure each server in turn and print a table with ratios to cityops."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument(
        "--servers",
        default=",".join(SERVERS),
        help="comma-separated subset; cityops is always measured",
    )
    args = parser.parse_args()
    url = DatabaseSettings().resolved_url()
    _servers.parts_4326(url)
    boxes = bboxes(url)
    wanted = {"cityops", *args.servers.split(",")}
    names = [n for n in SERVERS if n in wanted]
    results = {
        n: {
            (s, c): r
            for s, c, r in measure(n, url, 8090 + k, boxes, [14, 15, 16, 17], args.seconds)
        }
        for k, n in enumerate(names)
    }
    print(
        f"{'scenario':<12}{'c':>4}  "
        + "".join(f"{n + ' req/s':>16}{'p50':>8}{'p95':>8}" for n in names)
        + "  ratios (cityops / peer)"
    )
    for key in results["cityops"]:
        row = f"{key[0]:<12}{key[1]:>4}  "
        ratios = []
        for n in names:
            r = results[n].get(key)
            row += f"{r.rps:>16.1f}{r.p50:>8.1f}{r.p95:>8.1f}" if r else f"{'-':>16}{'':>16}"
            if r and n != "cityops":
                ratios.append(f"{n} {results['cityops'][key].rps / r.rps:.2f}x")
        print(row + "  " + ", ".join(ratios))


if __name__ == "__main__":
    main()
