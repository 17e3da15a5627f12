"""Dafeng's fleet registry (渣土全链条 + 环卫): sites, companies, trucks, permits, routes.

Deterministic (seeded), the same for every size (the registry is small): 33 construction
sites (工地), 5 disposal sites (消纳场), 2 transfer yards (中转场), 3 car parks (停车场);
9 muck transport companies and 1 sanitation company; 157 muck trucks (渣土车) with terminals,
48 garbage trucks (垃圾车) and 12 sanitation vehicles (环卫车), one driver each; permits
(three sites' 出土许可 and eight trucks' 准运 expired); one binding per muck truck
(site ↔ company ↔ truck ↔ nearest disposal site ↔ route) and one approved route per
site/disposal pair. Sites are ~120 m squares beside sample roads (city.roads).

Routes follow roads simply, not by shortest path: site gate → nearest point of the site's road
→ along that road (``substring``) to its end nearer the disposal site → disposal gate.
Every vehicle gets one current fix (telemetry + latest position) at its site or car park.
Loading is skipped when the registry already has vehicles.
"""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta
from typing import Final

import h3
import psycopg
import shapely
from shapely import ops
from shapely.geometry import LineString, MultiLineString, MultiPolygon, Point, box

from spatial.db import libpq_url

SEED: Final = 320904
N_SITES: Final = 33
N_DISPOSAL: Final = 5
N_YARDS: Final = 2
N_PARKS: Final = 3
N_MUCK: Final = 157
N_GARBAGE: Final = 48
N_SANITATION: Final = 12
COMPANIES: Final = (
    "大丰区鑫源土方运输有限公司",
    "大丰区恒通渣土运输有限公司",
    "盐城市丰盛建筑垃圾清运有限公司",
    "大丰区顺达运输有限公司",
    "大丰区海港土石方工程有限公司",
    "大丰区宏远物流运输有限公司",
    "大丰区永安渣土清运有限公司",
    "大丰区新丰土方运输有限公司",
    "大丰区城建运输有限公司",
)
SANITATION: Final = "大丰区环境卫生管理所"
DEG_LAT_M: Final = 111_000.0
DEG_LON_M: Final = 93_000.0  # at 33.2°N
PLATE_LETTERS: Final = "ABCDEFGHJKLMNPQRSTUVWXYZ"


def _square(center: Point, half_m: float) -> MultiPolygon:
    dx, dy = half_m / DEG_LON_M, half_m / DEG_LAT_M
    return MultiPolygon([box(center.x - dx, center.y - dy, center.x + dx, center.y + dy)])


def _ewkt(geom: shapely.Geometry) -> str:
    return f"SRID=4490;{shapely.to_wkt(geom, rounding_precision=7)}"


def _roads(conn: psycopg.Connection) -> list[tuple[str, str, LineString]]:
    rows = conn.execute(
        "SELECT code, name, ST_AsBinary(ST_GeometryN(geom, 1)) FROM city.roads"
        " WHERE ST_Length(geom::geography) > 300 ORDER BY code"
    ).fetchall()
    return [(c, n, shapely.from_wkb(bytes(g))) for c, n, g in rows]


def _site_specs(rng: random.Random, roads: list[tuple[str, str, LineString]]) -> list[dict]:
    kinds = (
        ["工地"] * N_SITES + ["消纳场"] * N_DISPOSAL + ["中转场"] * N_YARDS + ["停车场"] * N_PARKS
    )
    order = list(range(len(roads)))
    rng.shuffle(order)
    picked = [roads[order[k % len(order)]] for k in range(len(kinds))]
    specs = []
    counters: dict[str, int] = {}
    for kind, (_code, road_name, line) in zip(kinds, picked, strict=True):
        counters[kind] = counters.get(kind, 0) + 1
        n = counters[kind]
        at = line.interpolate(rng.uniform(0.1, 0.9), normalized=True)
        side = 1 if rng.random() < 0.5 else -1
        center = Point(at.x + side * 150 / DEG_LON_M, at.y + side * 150 / DEG_LAT_M)
        half = 200.0 if kind == "消纳场" else 60.0
        prefix = {"工地": "GD", "消纳场": "XN", "中转场": "ZZ", "停车场": "TC"}[kind]
        label = {"工地": "项目工地", "消纳场": "消纳场", "中转场": "中转调配场", "停车场": "停车场"}
        specs.append(
            {
                "code": f"{prefix}{n:03d}",
                "name": f"{road_name}{label[kind]}{n}号"
                if kind != "工地"
                else f"{road_name}{label[kind]}",
                "kind": kind,
                "geom": _square(center, half),
                "gate": Point(at.x + side * 90 / DEG_LON_M, at.y + side * 90 / DEG_LAT_M),
                "road": line,
                "road_name": road_name,
            }
        )
    return specs


def _route(site: dict, disposal: dict) -> MultiLineString:
    """Site gate → its road → along the road to the end nearer the disposal site → gate."""
    road: LineString = site["road"]
    start = road.project(site["gate"])
    ends = (0.0, road.length)
    target = min(ends, key=lambda s: road.interpolate(s).distance(disposal["gate"]))
    part = ops.substring(road, start, target)
    coords = [site["gate"].coords[0], *part.coords, disposal["gate"].coords[0]]
    return MultiLineString([LineString(coords)])


def _plate(rng: random.Random, used: set[str]) -> str:
    while True:
        tail = "".join(rng.choice("0123456789" + PLATE_LETTERS[:6]) for _ in range(4))
        plate = f"苏J{rng.choice(PLATE_LETTERS)}{tail}"
        if plate not in used:
            used.add(plate)
            return plate


def load_fleet(url: str, size: str) -> dict[str, int]:
    """Load the registry and one current fix per vehicle (skipped when already loaded)."""
    del size  # the registry is the same for every size
    rng = random.Random(SEED)
    with psycopg.connect(libpq_url(url)) as conn:
        if conn.execute("SELECT count(*) FROM city.fleet_vehicles").fetchone()[0]:
            return {}
        roads = _roads(conn)
        if not roads:
            return {}
        return _load(conn, rng, roads)


def _load(
    conn: psycopg.Connection, rng: random.Random, roads: list[tuple[str, str, LineString]]
) -> dict[str, int]:
    today = datetime.now(UTC).date()
    year_start, year_end = date(today.year, 1, 1), date(today.year, 12, 31)
    companies = [*COMPANIES, SANITATION]
    company_ids = []
    for i, name in enumerate(companies, start=1):
        kind = "环卫企业" if name == SANITATION else "运输企业"
        row = conn.execute(
            "INSERT INTO city.fleet_companies (code, name, kind, credit_code, contact, phone)"
            " VALUES (%s, %s, %s, %s, %s, %s) RETURNING id",
            (f"QY{i:03d}", name, kind, f"91320982MA{i:08d}", f"联系人{i}", f"0515-8{i:07d}"),
        ).fetchone()
        company_ids.append(row[0])
    specs = _site_specs(rng, roads)
    site_ids = []
    for k, s in enumerate(specs):
        owner = company_ids[k % len(COMPANIES)] if s["kind"] == "停车场" else None
        row = conn.execute(
            "INSERT INTO city.fleet_sites (code, name, kind, address, company_id, geom, gate)"
            " VALUES (%s, %s, %s, %s, %s, ST_GeomFromEWKT(%s), ST_GeomFromEWKT(%s)) RETURNING id",
            (
                s["code"],
                s["name"],
                s["kind"],
                f"大丰区{s['road_name']}旁",
                owner,
                _ewkt(s["geom"]),
                _ewkt(s["gate"]),
            ),
        ).fetchone()
        site_ids.append(row[0])
        s["id"] = row[0]
    conn.execute(
        "UPDATE city.fleet_sites f SET street_code = st.code FROM city.streets st"
        " WHERE ST_Contains(st.geom, ST_Centroid(f.geom))"
    )
    sites = [s for s in specs if s["kind"] == "工地"]
    disposals = [s for s in specs if s["kind"] == "消纳场"]
    parks = [s for s in specs if s["kind"] == "停车场"]
    counts = {"fleet_companies": len(companies), "fleet_sites": len(specs)}
    # permits: 出土 (3 expired), 处置, company 运输
    permits = []
    for k, s in enumerate(sites):
        expired = k in (4, 17, 29)
        valid_to = today - timedelta(days=10) if expired else year_end
        permits.append(
            (f"CT{today.year}{k + 1:04d}", "出土许可", s["id"], None, None, year_start, valid_to)
        )
    for k, s in enumerate(disposals):
        permits.append(
            (f"CZ{today.year}{k + 1:04d}", "处置许可", s["id"], None, None, year_start, year_end)
        )
    for k, cid in enumerate(company_ids[: len(COMPANIES)]):
        permits.append(
            (f"YS{today.year}{k + 1:04d}", "运输许可", None, cid, None, year_start, year_end)
        )
    # routes: one per site → nearest disposal site
    route_of: dict[int, tuple[int, int]] = {}
    for k, s in enumerate(sites):
        d = min(disposals, key=lambda x: x["gate"].distance(s["gate"]))
        row = conn.execute(
            "INSERT INTO city.fleet_routes (code, name, corridor_m, geom)"
            " VALUES (%s, %s, %s, ST_GeomFromEWKT(%s)) RETURNING id",
            (f"LX{k + 1:03d}", f"{s['name']}—{d['name']}", 100.0, _ewkt(_route(s, d))),
        ).fetchone()
        route_of[s["id"]] = (row[0], d["id"])
    counts["fleet_routes"] = len(sites)
    # vehicles, terminals, drivers, bindings, fixes
    used: set[str] = set()
    vehicles = []
    for n in range(N_MUCK):
        vehicles.append(("渣土车", company_ids[n % len(COMPANIES)], True, 50, 25000.0))
    for _ in range(N_GARBAGE):
        vehicles.append(("垃圾车", company_ids[-1], True, 60, 8000.0))
    for _ in range(N_SANITATION):
        vehicles.append(("环卫车", company_ids[-1], False, 40, 5000.0))
    bindings = []
    fixes = []
    now = datetime.now(UTC).replace(microsecond=0)
    for n, (kind, cid, sealed, limit, capacity) in enumerate(vehicles, start=1):
        plate = _plate(rng, used)
        vid = conn.execute(
            "INSERT INTO city.fleet_vehicles (plate, kind, company_id, sealed_capable,"
            " speed_limit_kmh, load_capacity_kg) VALUES (%s, %s, %s, %s, %s, %s) RETURNING id",
            (plate, kind, cid, sealed, limit, capacity),
        ).fetchone()[0]
        terminal = f"T{320904000000 + n}"
        conn.execute(
            "INSERT INTO city.fleet_terminals (terminal_id, vehicle_id, sim, model, installed_at)"
            " VALUES (%s, %s, %s, %s, %s)",
            (terminal, vid, f"1440{n:09d}", "JT808-G4", year_start),
        )
        conn.execute(
            "INSERT INTO city.fleet_drivers (name, license_no, phone, company_id, vehicle_id)"
            " VALUES (%s, %s, %s, %s, %s)",
            (f"驾驶员{n:03d}", f"320982{n:012d}", f"139{n:08d}", cid, vid),
        )
        home = parks[n % len(parks)]
        if kind == "渣土车":
            site = sites[(n - 1) % len(sites)]
            home = site
            route_id, disposal_id = route_of[site["id"]]
            bindings.append((site["id"], cid, vid, disposal_id, route_id, year_start, year_end))
            expired = n in (7, 23, 41, 58, 77, 96, 120, 149)
            valid_to = today - timedelta(days=5) if expired else year_end
            permits.append(
                (f"ZY{today.year}{n:05d}", "运输许可", None, cid, vid, year_start, valid_to)
            )
        c = home["geom"].centroid
        x = c.x + rng.uniform(-40, 40) / DEG_LON_M
        y = c.y + rng.uniform(-40, 40) / DEG_LAT_M
        at = now - timedelta(seconds=rng.randint(15, 600))
        fixes.append((vid, plate, kind, cid, terminal, at, x, y))
    conn.cursor().executemany(
        "INSERT INTO city.fleet_permits (permit_no, kind, site_id, company_id, vehicle_id,"
        " valid_from, valid_to, issued_by) VALUES (%s, %s, %s, %s, %s, %s, %s, '大丰区城市管理局')",
        permits,
    )
    conn.cursor().executemany(
        "INSERT INTO city.fleet_bindings (site_id, company_id, vehicle_id, disposal_site_id,"
        " route_id, valid_from, valid_to) VALUES (%s, %s, %s, %s, %s, %s, %s)",
        bindings,
    )
    _fixes(conn, fixes)
    counts |= {
        "fleet_vehicles": len(vehicles),
        "fleet_terminals": len(vehicles),
        "fleet_drivers": len(vehicles),
        "fleet_permits": len(permits),
        "fleet_bindings": len(bindings),
        "vehicle_latest": len(fixes),
    }
    return counts


def _fixes(conn: psycopg.Connection, fixes: list[tuple]) -> None:
    days = sorted({(f[5] + timedelta(hours=8)).date() for f in fixes})
    for day in days:
        conn.execute("SELECT city.ensure_fix_partition(%s)", (day,))
    conn.cursor().executemany(
        "INSERT INTO city.telemetry_fixes (vehicle_id, device_time, terminal_id, speed_kmh,"
        " heading, sealed, src_crs, geom) VALUES (%s, %s, %s, 0, 0, true, 'cgcs2000',"
        " ST_SetSRID(ST_MakePoint(%s, %s), 4490))",
        [(f[0], f[5], f[4], f[6], f[7]) for f in fixes],
    )
    conn.cursor().executemany(
        "INSERT INTO city.vehicle_latest (vehicle_id, plate, vehicle_kind, company_id,"
        " terminal_id, device_time, speed_kmh, heading, sealed, h3, geom)"
        " VALUES (%s, %s, %s, %s, %s, %s, 0, 0, true, %s, ST_SetSRID(ST_MakePoint(%s, %s), 4490))",
        [(*f[:6], h3.str_to_int(h3.latlng_to_cell(f[7], f[6], 9)), f[6], f[7]) for f in fixes],
    )
