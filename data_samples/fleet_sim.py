"""A deterministic simulator of muck-truck days (渣土车一日) on the sample registry and roads.

Legal trucks shuttle 工地 → approved route → 消纳场 and back from 09:00: loading inside the site
(stationary, 30 s fixes), the site gate (plate camera + exit weighbridge), the route at 25 km/h
(fixes every 15–30 s, ±3 m GPS noise), the disposal gate (plate + entry weighbridge), unloading,
and the way back. Injected violations, one truck (or one gate event) each, carry their ground
truth — the alarm kinds that must be raised (``expected``) and the ones a realistic rendering of
the violation may raise as well (``tolerated``):

``off_corridor`` (a 300 m detour while loaded), ``forbidden_road`` (its route driven at 07:00,
inside a forbidden-road fence's 06:00–08:30 window), ``speeding`` (70 km/h), ``dumping`` (a
15-minute stop on the route while loaded), ``unsealed`` (lid open while loaded),
``unregistered`` (a 黑车 plate at a gate), ``unpermitted`` (a truck off the white list at its
gate), ``unapproved_disposal`` (unloading at another 消纳场), ``offline`` (two silent hours) and
``forbidden_zone`` (a fence jump: two fixes a minute apart on either side of a forbidden zone).

:func:`build_day` reads the registry (sync psycopg) and creates the simulation's own fences;
:func:`run_day` feeds the day through F1's ingest in chronological windows, records the gate
events and runs the periodic scan, as a live system would.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any, Final

import numpy as np
import psycopg
import shapely
from psycopg.types.json import Jsonb
from shapely import ops
from shapely.geometry import LineString, Point
from shapely.geometry.base import BaseGeometry

from spatial.db import libpq_url
from spatial.geofence.engine import to_lonlat, to_metres
from spatial.geofence.schedule import TZ

SEED: Final = 20260
LEGAL_KMH: Final = 25.0
FAST_KMH: Final = 70.0
UNREGISTERED_PLATE: Final = "苏J9Z999"
Point2 = tuple[float, float]


@dataclass(frozen=True)
class SimFix:
    """One simulated fix (CGCS2000)."""

    vehicle_id: int
    terminal_id: str
    time: datetime
    lon: float
    lat: float
    speed_kmh: float
    sealed: bool
    load_kg: float


@dataclass(frozen=True)
class SimGate:
    """One simulated gate event (plate camera or weighbridge)."""

    site_id: int
    plate: str
    direction: str
    source: str
    at: datetime
    weight_kg: float | None = None


@dataclass(frozen=True)
class Injection:
    """A violation put into the day, with the alarm kinds it must (and may) raise."""

    label: str
    vehicle_id: int | None
    plate: str
    expected: frozenset[str]
    tolerated: frozenset[str] = frozenset()


@dataclass
class SimDay:
    """A simulated day: fixes, gate events, ground truth, scan times."""

    day: date
    fixes: list[SimFix] = field(default_factory=list)
    gates: list[SimGate] = field(default_factory=list)
    injections: list[Injection] = field(default_factory=list)
    legal: list[int] = field(default_factory=list)
    trips: int = 0
    fence_ids: list[int] = field(default_factory=list)
    end: datetime | None = None

    def scan_times(self, every: timedelta = timedelta(minutes=15)) -> list[datetime]:
        """When the periodic scan runs (from 09:15, while legal trucks report)."""
        t = datetime.combine(self.day, time(9, 15), TZ)
        out = []
        while self.end and t <= self.end:
            out.append(t)
            t += every
        return out


@dataclass
class Truck:
    """A bound muck truck of the registry with its geometry in metres."""

    id: int
    plate: str
    terminal: str
    site: int
    disposal: int
    route: LineString
    whitelisted: bool


@dataclass
class Registry:
    """What the simulator reads: trucks and site polygons/centres in metres."""

    trucks: list[Truck]
    sites: dict[int, tuple[str, BaseGeometry]]


def _metric(geom: BaseGeometry) -> BaseGeometry:
    def fn(coords: np.ndarray) -> np.ndarray:
        x, y = to_metres(coords[:, 0], coords[:, 1])
        return np.stack([x, y], axis=1)

    return shapely.transform(geom, fn)


def read_registry(conn: psycopg.Connection, day: date) -> Registry:
    """Muck trucks with a binding and a route, and every site, in metres."""
    rows = conn.execute(
        """
        SELECT v.id, v.plate, t.terminal_id, b.site_id, b.disposal_site_id,
               ST_AsBinary(ST_LineMerge(r.geom)),
               EXISTS (SELECT 1 FROM city.fleet_whitelist(%(day)s) w
                       WHERE w.vehicle_id = v.id AND w.site_id = b.site_id)
               AND EXISTS (SELECT 1 FROM city.fleet_whitelist(%(day)s) w
                           WHERE w.vehicle_id = v.id AND w.site_id = b.disposal_site_id)
        FROM city.fleet_vehicles v
        JOIN city.fleet_terminals t ON t.vehicle_id = v.id AND t.active
        JOIN city.fleet_bindings b ON b.vehicle_id = v.id
             AND %(day)s BETWEEN b.valid_from AND b.valid_to
        JOIN city.fleet_routes r ON r.id = b.route_id
        WHERE v.kind = '渣土车' AND v.active AND v.sealed_capable
        ORDER BY v.id
        """,
        {"day": day},
    ).fetchall()
    trucks = []
    for vid, plate, terminal, site, disposal, wkb, ok in rows:
        line = _metric(shapely.from_wkb(bytes(wkb)))
        if isinstance(line, LineString):
            trucks.append(Truck(vid, plate, terminal, site, disposal, line, bool(ok)))
    sites = {
        sid: (kind, _metric(shapely.from_wkb(bytes(g))))
        for sid, kind, g in conn.execute(
            "SELECT id, kind, ST_AsBinary(geom) FROM city.fleet_sites WHERE active ORDER BY id"
        ).fetchall()
    }
    return Registry(trucks, sites)


@dataclass
class Clock:
    """Emits fixes for one truck along legs, advancing its own time."""

    truck: Truck
    rng: random.Random
    t: datetime
    out: list[SimFix]
    sealed: bool = True
    load: float = 0.0
    silent: tuple[datetime, datetime] | None = None

    def _emit(self, p: Point2, speed: float) -> None:
        if self.silent and self.silent[0] <= self.t < self.silent[1]:
            return
        nx, ny = self.rng.uniform(-3, 3), self.rng.uniform(-3, 3)
        lon, lat = to_lonlat(p[0] + nx, p[1] + ny)
        self.out.append(
            SimFix(
                self.truck.id, self.truck.terminal, self.t, lon, lat, speed, self.sealed, self.load
            )
        )

    def wait(self, p: Point2, minutes: float) -> None:
        """Stand still (speed 0) for ``minutes``, a fix every 30 s."""
        end = self.t + timedelta(minutes=minutes)
        while self.t < end:
            self._emit(p, 0.0)
            self.t += timedelta(seconds=30)

    def drive(self, line: LineString, kmh: float = LEGAL_KMH, gap: bool = False) -> None:
        """Drive along ``line`` at ``kmh``, a fix every 15–30 s (``gap``: one fix at each end)."""
        speed = kmh / 3.6
        if line.length < 1:
            return
        if gap:
            self._emit(line.coords[0], kmh)
            self.t += timedelta(seconds=line.length / speed)
            self._emit(line.coords[-1], kmh)
            self.t += timedelta(seconds=15)
            return
        pos = 0.0
        while pos < line.length:
            p = line.interpolate(pos)
            self._emit((p.x, p.y), kmh)
            step = self.rng.uniform(15, 30)
            self.t += timedelta(seconds=step)
            pos += step * speed


def _leg(*parts: Any) -> LineString:
    coords: list[Point2] = []
    for part in parts:
        pts = list(part.coords) if isinstance(part, LineString) else [part]
        for c in pts:
            if not coords or math.dist(coords[-1], c) > 0.5:
                coords.append((float(c[0]), float(c[1])))
    if len(coords) < 2:
        coords.append(coords[0])
    return LineString(coords)


def _sub(line: LineString, a: float, b: float) -> LineString:
    return ops.substring(line, a * line.length, b * line.length)


def _centre(reg: Registry, site_id: int) -> Point2:
    c = reg.sites[site_id][1].centroid
    return (c.x, c.y)


@dataclass
class Plan:
    """How one truck's first loaded leg (and day) deviate from the legal pattern."""

    loaded: Callable[[Truck], list[tuple[str, LineString]]] | None = None
    back: Callable[[Truck], list[tuple[str, LineString]]] | None = None
    start: time = time(9, 0)
    sealed: bool = True
    silent: tuple[time, time] | None = None
    disposal: int | None = None
    initial_wait: float = 0.0


def _truck_day(
    truck: Truck, reg: Registry, sim: SimDay, rng: random.Random, plan: Plan, end: datetime
) -> None:
    start = datetime.combine(sim.day, plan.start, TZ) + timedelta(seconds=rng.randint(0, 240))
    silent = None
    if plan.silent:
        silent = (
            datetime.combine(sim.day, plan.silent[0], TZ),
            datetime.combine(sim.day, plan.silent[1], TZ),
        )
    clock = Clock(truck, rng, start, sim.fixes, silent=silent)
    site_c = _centre(reg, truck.site)
    clock.wait(site_c, plan.initial_wait)
    first = True
    while clock.t < end - timedelta(minutes=90) or first:
        clock.wait(site_c, rng.uniform(6, 10))  # loading (装车)
        weight = round(rng.uniform(28000, 32000), 0)
        route = truck.route
        disposal = plan.disposal if first and plan.disposal else truck.disposal
        sim.gates += [
            SimGate(truck.site, truck.plate, "out", "plate", clock.t),
            SimGate(truck.site, truck.plate, "out", "weighbridge", clock.t, weight),
        ]
        clock.load, clock.sealed = weight - 15000, plan.sealed or not first
        legs = plan.loaded(truck) if first and plan.loaded else [("legal", route)]
        clock.drive(_leg(site_c, route.coords[0]))
        for kind, line in legs:
            if kind == "stop":
                clock.wait(line.coords[0], 15)
            else:
                clock.drive(line, FAST_KMH if kind == "fast" else LEGAL_KMH, gap=kind == "gap")
        sim.gates += [
            SimGate(disposal, truck.plate, "in", "plate", clock.t),
            SimGate(
                disposal,
                truck.plate,
                "in",
                "weighbridge",
                clock.t,
                round(weight * rng.uniform(0.997, 1.003), 0),
            ),
        ]
        disposal_c = _centre(reg, disposal)
        clock.drive(_leg(legs[-1][1].coords[-1], disposal_c))
        clock.wait(disposal_c, rng.uniform(4, 6))  # unloading (卸料)
        clock.load, clock.sealed = 0.0, True
        sim.trips += 1
        back = plan.back(truck) if first and plan.back else [("legal", _reverse(route))]
        if disposal != truck.disposal:
            back = [("legal", _leg(disposal_c, route.coords[-1])), ("legal", _reverse(route))]
        clock.drive(_leg(disposal_c, back[0][1].coords[0]))
        for kind, line in back:
            clock.drive(line, gap=kind == "gap")
        clock.drive(_leg(route.coords[0], site_c))
        sim.gates.append(SimGate(truck.site, truck.plate, "in", "plate", clock.t))
        first = False
    clock.wait(site_c, max(0.0, (end - clock.t).total_seconds() / 60))


def _reverse(line: LineString) -> LineString:
    return LineString(list(line.coords)[::-1])


def _normal(line: LineString, frac: float) -> tuple[Point2, Point2, Point2]:
    """Point at ``frac``, unit tangent and unit normal there."""
    d = line.length * frac
    a, b = line.interpolate(max(0.0, d - 5)), line.interpolate(min(line.length, d + 5))
    tx, ty = b.x - a.x, b.y - a.y
    n = math.hypot(tx, ty) or 1.0
    p = line.interpolate(d)
    return (p.x, p.y), (tx / n, ty / n), (-ty / n, tx / n)


def _detour(line: LineString, side: float, offset: float = 300.0) -> list[tuple[str, LineString]]:
    (px, py), _, (nx, ny) = _normal(line, 0.5)
    a, b = _sub(line, 0.0, 0.4), _sub(line, 0.6, 1.0)
    pa, pb = a.coords[-1], b.coords[0]
    out1 = (pa[0] + side * offset * nx, pa[1] + side * offset * ny)
    out2 = (pb[0] + side * offset * nx, pb[1] + side * offset * ny)
    return [("legal", a), ("legal", _leg(pa, out1, out2, pb)), ("legal", b)]


def _clear_of_sites(reg: Registry, legs: list[tuple[str, LineString]], truck: Truck) -> bool:
    own = {truck.site, truck.disposal}
    middle = _leg(*[line for _, line in legs])
    core = _sub(middle, 0.15, 0.85)
    return not any(
        core.intersects(poly.buffer(30)) for sid, (_, poly) in reg.sites.items() if sid not in own
    )


def _insert_fence(
    conn: psycopg.Connection, name: str, kind: str, geom: BaseGeometry, **cols: Any
) -> int:
    def fn(coords: np.ndarray) -> np.ndarray:
        lon, lat = zip(*(to_lonlat(float(x), float(y)) for x, y in coords), strict=True)
        return np.stack([np.array(lon), np.array(lat)], axis=1)

    wkt = shapely.to_wkt(shapely.transform(geom, fn), rounding_precision=8)
    names = ["name", "kind", "geom", *cols]
    values = ["%s", "%s", "ST_Multi(ST_GeomFromText(%s, 4490))", *["%s"] * len(cols)]
    args = [name, kind, wkt, *(Jsonb(v) if isinstance(v, dict) else v for v in cols.values())]
    row = conn.execute(
        f"INSERT INTO city.geofences ({', '.join(names)}) VALUES ({', '.join(values)}) "
        "RETURNING id",
        args,
    ).fetchone()
    assert row is not None
    return int(row[0])


MUCK_ONLY: Final = {"vehicle_kinds": ["渣土车"]}


def build_day(
    url: str, day: date, legal: int = 10, seed: int = SEED, end: time = time(13, 0)
) -> SimDay:
    """Simulate ``day``: ``legal`` legal trucks plus one truck/gate event per violation."""
    rng = random.Random(seed)
    sim = SimDay(day)
    finish = datetime.combine(day, end, TZ)
    sim.end = finish
    with psycopg.connect(libpq_url(url)) as conn:
        reg = read_registry(conn, day)
        good = [t for t in reg.trucks if t.whitelisted and t.route.length > 1500]
        blocked = [t for t in reg.trucks if not t.whitelisted]
        pool = list(good)
        rng.shuffle(pool)
        plans: list[tuple[Truck, Plan, Injection | None]] = []

        def take(ok: Callable[[Truck], bool] = lambda _t: True) -> Truck:
            for t in pool:
                if ok(t):
                    pool.remove(t)
                    return t
            raise RuntimeError("the sample registry has too few suitable trucks")

        def inject(
            label: str,
            truck: Truck,
            plan: Plan,
            expected: set[str],
            tolerated: frozenset[str] = frozenset(),
        ) -> None:
            plans.append(
                (
                    truck,
                    plan,
                    Injection(
                        label, truck.id, truck.plate, frozenset(expected), frozenset(tolerated)
                    ),
                )
            )

        def detour_ok(t: Truck) -> bool:
            return any(_clear_of_sites(reg, _detour(t.route, s), t) for s in (1, -1))

        t = take(detour_ok)
        side = 1 if _clear_of_sites(reg, _detour(t.route, 1), t) else -1
        inject(
            "off_corridor",
            t,
            Plan(loaded=lambda tr, s=side: _detour(tr.route, s)),
            {"off_corridor"},
        )
        t = take()
        inject(
            "speeding",
            t,
            Plan(
                loaded=lambda tr: [
                    ("legal", _sub(tr.route, 0, 0.2)),
                    ("fast", _sub(tr.route, 0.2, 0.8)),
                    ("legal", _sub(tr.route, 0.8, 1)),
                ]
            ),
            {"speeding"},
        )

        def stop_ok(tr: Truck) -> bool:
            p = Point(_normal(tr.route, 0.5)[0])
            return not any(p.distance(poly) < 60 for _, poly in reg.sites.values())

        t = take(stop_ok)
        inject(
            "dumping",
            t,
            Plan(
                loaded=lambda tr: [
                    ("legal", _sub(tr.route, 0, 0.5)),
                    ("stop", _sub(tr.route, 0.5, 1)),
                    ("legal", _sub(tr.route, 0.5, 1)),
                ]
            ),
            {"dumping"},
        )
        inject("unsealed", take(), Plan(sealed=False), {"unsealed"})
        offline = Plan(silent=(time(9, 30), time(11, 30)), initial_wait=160)
        inject("offline", take(), offline, {"offline"})
        t = take()
        other = min(
            (sid for sid, (kind, _) in reg.sites.items() if kind == "消纳场" and sid != t.disposal),
            key=lambda sid: Point(_centre(reg, sid)).distance(Point(t.route.coords[0])),
        )
        gate = Point(_centre(reg, other))
        inject(
            "unapproved_disposal",
            t,
            Plan(
                loaded=lambda tr, g=gate: [("legal", _leg(tr.route.coords[0], (g.x, g.y)))],
                disposal=other,
            ),
            {"unapproved_disposal"},
            {"off_corridor", "unpermitted"},
        )
        # forbidden road: the middle of a route, closed to muck trucks 06:00-08:30
        t = take()
        road = _sub(t.route, 0.3, 0.7).buffer(20)
        sim.fence_ids.append(
            _insert_fence(
                conn,
                "模拟禁行路段（早高峰）",
                "forbidden_road",
                road,
                rule="enter",
                width_m=40.0,
                hysteresis_m=5.0,
                applicability=MUCK_ONLY,
                schedule={"windows": [{"start": "06:00", "end": "08:30"}]},
            )
        )
        inject("forbidden_road", t, Plan(start=time(7, 0)), {"forbidden_road"})
        # fence jump: two fixes a minute apart on either side of a forbidden zone
        t, zone, back = _jump_truck(reg, pool, plans, take)
        sim.fence_ids.append(
            _insert_fence(
                conn, "模拟禁入区域", "forbidden_zone", zone, rule="enter", applicability=MUCK_ONLY
            )
        )
        inject("forbidden_zone", t, Plan(back=lambda _tr, b=back: b), {"forbidden_zone"})
        for _ in range(legal):
            tr = take()
            plans.append((tr, Plan(), None))
            sim.legal.append(tr.id)
        conn.commit()
    for truck, plan, injection in plans:
        _truck_day(truck, reg, sim, rng, plan, finish)
        if injection:
            sim.injections.append(injection)
    at = datetime.combine(day, time(10, 0), TZ)
    some_site = reg.trucks[0].site
    sim.gates.append(SimGate(some_site, UNREGISTERED_PLATE, "in", "plate", at))
    sim.injections.append(
        Injection("unregistered", None, UNREGISTERED_PLATE, frozenset({"unregistered"}))
    )
    if blocked:
        b = blocked[0]
        sim.gates.append(SimGate(b.site, b.plate, "in", "plate", at + timedelta(minutes=5)))
        sim.injections.append(Injection("unpermitted", b.id, b.plate, frozenset({"unpermitted"})))
    sim.fixes.sort(key=lambda f: (f.time, f.vehicle_id))
    sim.gates.sort(key=lambda g: g.at)
    return sim


def _jump_truck(
    reg: Registry, pool: list[Truck], plans: list[Any], take: Callable[..., Truck]
) -> tuple[Truck, BaseGeometry, list]:
    """A truck whose empty way back skips across a forbidden zone nobody else passes."""
    others = []
    for tr, plan, _ in plans:
        others.append(tr.route)
        if plan.loaded:
            others += [line for _, line in plan.loaded(tr)]
    for truck in list(pool):
        back = _reverse(truck.route)
        for side in (1, -1):
            (px, py), (tx, ty), (nx, ny) = _normal(back, 0.5)
            zx, zy = px + side * 500 * nx, py + side * 500 * ny
            zone = shapely.box(zx - 60, zy - 60, zx + 60, zy + 60)
            p1 = (zx - 350 * tx, zy - 350 * ty)
            p2 = (zx + 350 * tx, zy + 350 * ty)
            a, b = _sub(back, 0, 0.4), _sub(back, 0.6, 1)
            legs = [
                ("legal", a),
                ("legal", _leg(a.coords[-1], p1)),
                ("gap", _leg(p1, p2)),
                ("legal", _leg(p2, b.coords[0])),
                ("legal", b),
            ]
            clear = zone.buffer(150)
            if any(r.intersects(clear) for r in others + [t.route for t in pool]):
                continue
            if any(clear.intersects(poly) for _, poly in reg.sites.values()):
                continue
            return take(lambda t, tr=truck: t is tr), zone, legs
    raise RuntimeError("no room for a forbidden zone off every route")


def telemetry_fixes(fixes: list[SimFix]) -> list[Any]:
    """As F1's ``layers.fleet.telemetry.Fix`` (CGCS2000)."""
    from layers.fleet.telemetry import Fix

    return [
        Fix(f.terminal_id, f.time, f.lon, f.lat, "cgcs2000", f.speed_kmh, None, f.sealed, f.load_kg)
        for f in fixes
    ]


def windows(
    sim: SimDay, minutes: int = 5
) -> Iterator[tuple[datetime, list[SimFix], list[SimGate]]]:
    """Chronological windows: (window end, its fixes, its gate events)."""
    if not sim.fixes:
        return
    step = timedelta(minutes=minutes)
    t = sim.fixes[0].time.replace(second=0, microsecond=0)
    fi = gi = 0
    while fi < len(sim.fixes) or gi < len(sim.gates):
        t += step
        fixes, gates = [], []
        while fi < len(sim.fixes) and sim.fixes[fi].time < t:
            fixes.append(sim.fixes[fi])
            fi += 1
        while gi < len(sim.gates) and sim.gates[gi].at < t:
            gates.append(sim.gates[gi])
            gi += 1
        yield t, fixes, gates


async def run_day(conn: psycopg.AsyncConnection, sim: SimDay, hooks: Any = None) -> dict[str, int]:
    """Feed the day: gate events, then fixes through F1's ingest, scans at the scan times."""
    from layers.fleet import violations
    from layers.fleet.ingest import ingest
    from layers.fleet.registry import record_gate_event

    scans = sim.scan_times()
    counts = {"fixes": 0, "accepted": 0, "gates": 0, "scans": 0, "hook_errors": 0}
    for until, fixes, gates in windows(sim):
        for g in gates:
            await record_gate_event(
                conn,
                site_id=g.site_id,
                plate=g.plate,
                direction=g.direction,
                source=g.source,
                at=g.at,
                weight_kg=g.weight_kg,
            )
        counts["gates"] += len(gates)
        if fixes:
            result = await ingest(conn, telemetry_fixes(fixes), source="sim", hooks=hooks)
            counts["fixes"] += len(fixes)
            counts["accepted"] += result.accepted
            counts["hook_errors"] += result.hook_errors
        while scans and scans[0] <= until:
            await violations.scan(conn, now=scans.pop(0))
            counts["scans"] += 1
    await violations.scan(conn, now=sim.end)
    return counts
