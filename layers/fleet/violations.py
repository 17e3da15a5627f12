"""The violation pipeline (违规判定): F1's ingest hook running the geofence engine per batch.

Per accepted batch, inside the ingest transaction (F1's ``register_hook``): refresh the fence
set when ``geofences`` (or the fleet sites and routes it mirrors) changed, load the batch's
vehicle states, evaluate consecutive-fix segments against the fences (one vectorised STRtree
query, or one set-based PostGIS statement with ``SqlEvaluator``), run the vehicle monitor
(off-corridor, speeding by road grade, suspected dumping, unsealed, unapproved disposal), store
the alarms and manifests, and save the states. A transaction-scoped advisory lock serialises
evaluation across workers, so states never race.

Periodic checks (:func:`scan`): terminal offline (终端离线), 黑车/无准运 at site gates, manifest
weighings that arrived late and manifests open too long.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import orjson
import psycopg
import shapely
from psycopg_pool import AsyncConnectionPool

from layers.fleet import manifests
from layers.fleet.alarms import TITLES, apply_signals, dedupe_key
from spatial.geofence.applicability import Binding, VehicleInfo
from spatial.geofence.engine import Engine, Fix, Outcome, PairState
from spatial.geofence.evaluate import Evaluator, StrTreeEvaluator
from spatial.geofence.fences import FenceSet, layer_version, load_fence_set
from spatial.geofence.monitor import GRADE_LIMITS_KMH, Monitor, MonitorSettings, RoadIndex, Watch

log = logging.getLogger(__name__)
LOCK_KEY: Final = 0x46454E4345  # "FENCE": serialises evaluation across workers
SITE_HYSTERESIS_M: Final = 10.0
SITE_DWELL_S: Final = 120  # a stay this long makes a visit (passing through is no visit)
CORRIDOR_HYSTERESIS_M: Final = 15.0
CORRIDOR_DWELL_S: Final = 60

SYNC_SITES_SQL = """
INSERT INTO city.geofences AS g (name, kind, rule, site_id, site_kind, hysteresis_m, dwell_s,
                                 geom)
SELECT s.name, 'site', 'none', s.id, s.kind, %(h)s, %(dwell)s, ST_Multi(s.geom)
FROM city.fleet_sites s WHERE s.active
ON CONFLICT (site_id) DO UPDATE SET name = EXCLUDED.name, site_kind = EXCLUDED.site_kind,
    geom = EXCLUDED.geom, active = true
WHERE g.name <> EXCLUDED.name OR g.site_kind IS DISTINCT FROM EXCLUDED.site_kind
   OR NOT g.active OR NOT ST_Equals(g.geom, EXCLUDED.geom)
"""
SYNC_SITES_OFF_SQL = """
UPDATE city.geofences g SET active = false FROM city.fleet_sites s
WHERE g.site_id = s.id AND NOT s.active AND g.active
"""
SYNC_ROUTES_SQL = """
INSERT INTO city.geofences AS g (name, kind, rule, route_id, width_m, line, hysteresis_m,
                                 dwell_s, geom)
SELECT r.name || '（核准路线走廊）', 'corridor', 'outside', r.id, r.corridor_m, r.geom, %(h)s,
       %(dwell)s,
       ST_Multi(ST_Transform(ST_Buffer(ST_Transform(r.geom, 4528), r.corridor_m / 2), 4490))
FROM city.fleet_routes r
ON CONFLICT (route_id) DO UPDATE SET name = EXCLUDED.name, width_m = EXCLUDED.width_m,
    line = EXCLUDED.line, geom = EXCLUDED.geom
WHERE g.name <> EXCLUDED.name OR g.width_m IS DISTINCT FROM EXCLUDED.width_m
   OR NOT ST_Equals(g.line, EXCLUDED.line)
"""
VERSIONS_SQL = """
SELECT layer, version FROM city.layer_versions
WHERE layer IN ('geofences', 'fleet_sites', 'fleet_routes')
"""
VEHICLES_SQL = """
SELECT v.id, v.kind, v.company_id, v.plate, v.speed_limit_kmh, v.sealed_capable,
       coalesce(array_agg(b.site_id ORDER BY b.id) FILTER (WHERE b.id IS NOT NULL), '{}'),
       coalesce(array_agg(b.disposal_site_id ORDER BY b.id) FILTER (WHERE b.id IS NOT NULL), '{}'),
       coalesce(array_agg(b.route_id ORDER BY b.id) FILTER (WHERE b.id IS NOT NULL), '{}'),
       coalesce(array_agg(b.valid_from ORDER BY b.id) FILTER (WHERE b.id IS NOT NULL), '{}'),
       coalesce(array_agg(b.valid_to ORDER BY b.id) FILTER (WHERE b.id IS NOT NULL), '{}')
FROM city.fleet_vehicles v LEFT JOIN city.fleet_bindings b ON b.vehicle_id = v.id
GROUP BY v.id
"""
ROADS_SQL = "SELECT grade, ST_AsBinary(ST_Transform(geom, 4528)) FROM city.roads"
WATCH_SQL = """
SELECT vehicle_id, last_time, last_lon, last_lat, state FROM city.vehicle_watch
WHERE vehicle_id = ANY(%s)
"""
STATE_SQL = """
SELECT vehicle_id, fence_id, inside, since, pending_since, last_fix_time, alarmed
FROM city.geofence_state WHERE vehicle_id = ANY(%s)
"""
DROP_STATE_SQL = "DELETE FROM city.geofence_state WHERE vehicle_id = ANY(%s)"
SAVE_STATE_SQL = """
INSERT INTO city.geofence_state (vehicle_id, fence_id, inside, since, pending_since,
                                 last_fix_time, alarmed)
SELECT u.* FROM unnest(%(v)s::int[], %(f)s::int[], %(inside)s::bool[], %(since)s::timestamptz[],
                       %(pending)s::timestamptz[], %(last)s::timestamptz[], %(alarmed)s::bool[])
     AS u(v, f, inside, since, pending, last, alarmed)
JOIN city.geofences g ON g.id = u.f
"""
SAVE_WATCH_SQL = """
INSERT INTO city.vehicle_watch (vehicle_id, last_time, last_lon, last_lat, state, updated_at)
SELECT v, t, x, y, s::jsonb, now()
FROM unnest(%s::int[], %s::timestamptz[], %s::float8[], %s::float8[], %s::text[])
     AS u(v, t, x, y, s)
ON CONFLICT (vehicle_id) DO UPDATE SET last_time = EXCLUDED.last_time,
    last_lon = EXCLUDED.last_lon, last_lat = EXCLUDED.last_lat, state = EXCLUDED.state,
    updated_at = now()
"""
END_OFFLINE_SQL = """
UPDATE city.alarms a SET ended_at = u.t, updated_at = now()
FROM unnest(%s::text[], %s::timestamptz[]) AS u(k, t)
WHERE a.dedupe_key = u.k AND a.ended_at IS NULL
"""


@dataclass
class _Cache:
    """Per-database caches: fences, mirrored layer versions, vehicles, roads."""

    fences: FenceSet = field(default_factory=lambda: FenceSet([], -1))
    synced: dict[str, int] = field(default_factory=dict)
    vehicles: dict[int, VehicleInfo] = field(default_factory=dict)
    vehicles_at: float = -1e18
    roads: RoadIndex | None = None


def _vehicle(row: tuple[Any, ...]) -> VehicleInfo:
    bindings = tuple(Binding(s, d, r, f, t) for s, d, r, f, t in zip(*row[6:11], strict=True))
    return VehicleInfo(
        id=row[0],
        kind=row[1],
        company_id=row[2],
        plate=row[3],
        speed_limit_kmh=float(row[4]) if row[4] else None,
        sealed_capable=bool(row[5]),
        bindings=bindings,
        route_ids=frozenset(b.route_id for b in bindings if b.route_id is not None),
    )


def _db_key(conn: psycopg.AsyncConnection) -> str:
    info = conn.info
    return f"{info.host}:{info.port}/{info.dbname}"


async def sync_fleet_fences(conn: psycopg.AsyncConnection) -> None:
    """Mirror fleet sites (site fences) and approved routes (corridor fences) into geofences."""
    await conn.execute(SYNC_SITES_SQL, {"h": SITE_HYSTERESIS_M, "dwell": SITE_DWELL_S})
    await conn.execute(SYNC_SITES_OFF_SQL)
    await conn.execute(SYNC_ROUTES_SQL, {"h": CORRIDOR_HYSTERESIS_M, "dwell": CORRIDOR_DWELL_S})


@dataclass
class Pipeline:
    """The ingest hook: ``await pipeline(conn, stored_fixes)``."""

    evaluator: Evaluator = field(default_factory=StrTreeEvaluator)
    monitor: MonitorSettings = field(default_factory=MonitorSettings)
    vehicle_ttl_s: float = 30.0
    _caches: dict[str, _Cache] = field(default_factory=dict, repr=False)

    async def __call__(self, conn: psycopg.AsyncConnection, fixes: Sequence[Any]) -> None:
        """F1's hook signature: accepted ``StoredFix`` rows of one batch."""
        await self.evaluate(
            conn,
            [
                Fix(f.vehicle_id, f.device_time, f.lon, f.lat, f.speed_kmh, None, f.sealed)
                for f in fixes
            ],
        )

    def invalidate(self) -> None:
        """Forget every cache (after registry edits in tests or imports)."""
        self._caches.clear()

    async def refresh(self, conn: psycopg.AsyncConnection) -> _Cache:
        """Sync mirrored fences and reload what changed."""
        cache = self._caches.setdefault(_db_key(conn), _Cache())
        cur = await conn.execute(VERSIONS_SQL)
        versions = dict(await cur.fetchall())
        mirrored = {k: versions.get(k, 0) for k in ("fleet_sites", "fleet_routes")}
        if mirrored != cache.synced:
            await sync_fleet_fences(conn)
            cache.synced = mirrored
            versions["geofences"] = await layer_version(conn)
        if versions.get("geofences", 0) != cache.fences.version:
            cache.fences = await load_fence_set(conn)
        if time.monotonic() - cache.vehicles_at > self.vehicle_ttl_s:
            cur = await conn.execute(VEHICLES_SQL)
            cache.vehicles = {r[0]: _vehicle(r) for r in await cur.fetchall()}
            cache.vehicles_at = time.monotonic()
        if cache.roads is None:
            cur = await conn.execute(ROADS_SQL)
            grades = [
                (GRADE_LIMITS_KMH.get(g, 30.0), shapely.from_wkb(bytes(w)))
                for g, w in await cur.fetchall()
            ]
            cache.roads = RoadIndex([g for _, g in grades], [lim for lim, _ in grades])
        return cache

    async def evaluate(self, conn: psycopg.AsyncConnection, fixes: list[Fix]) -> Outcome:
        """Run one batch (inside the caller's transaction, or a new one)."""
        if not fixes:
            return Outcome()
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(%s)", (LOCK_KEY,))
            cache = await self.refresh(conn)
            vehicles = sorted({f.vehicle_id for f in fixes})
            last, watches = await _load_watches(conn, vehicles)
            states, before = await _load_states(conn, vehicles)
            monitor = Monitor(cache.roads or RoadIndex([], []), self.monitor, watches)
            engine = Engine(cache.fences, (monitor,))
            accepted = engine.accept(fixes, last)
            if not accepted:
                return Outcome()
            segments, prevs = engine.segments(accepted, last)
            facts = await self.evaluator.facts(conn, cache.fences, segments)
            outcome = engine.run(accepted, segments, prevs, facts, states, cache.vehicles)
            await apply_signals(conn, outcome.signals, cache.vehicles)
            await manifests.apply(
                conn, outcome.events, outcome.signals, cache.fences, cache.vehicles
            )
            await _end_offline(conn, accepted)
            await _save(conn, outcome, states, before, monitor.watches)
            return outcome


async def _load_watches(
    conn: psycopg.AsyncConnection, vehicles: list[int]
) -> tuple[dict[int, Fix], dict[int, Watch]]:
    cur = await conn.execute(WATCH_SQL, (vehicles,))
    last: dict[int, Fix] = {}
    watches: dict[int, Watch] = {}
    for vid, t, lon, lat, state in await cur.fetchall():
        last[vid] = Fix(vid, t, lon, lat)
        watches[vid] = Watch.from_json(state)
    return last, watches


Snapshot = dict[int, frozenset[tuple[Any, ...]]]


def _snapshot(states: dict[int, PairState]) -> frozenset[tuple[Any, ...]]:
    return frozenset(
        (fid, st.inside, st.since, st.pending_since, st.alarmed)
        for fid, st in states.items()
        if not st.idle
    )


async def _load_states(
    conn: psycopg.AsyncConnection, vehicles: list[int]
) -> tuple[dict[int, dict[int, PairState]], Snapshot]:
    cur = await conn.execute(STATE_SQL, (vehicles,))
    out: dict[int, dict[int, PairState]] = {}
    for vid, fid, inside, since, pending, last, alarmed in await cur.fetchall():
        out.setdefault(vid, {})[fid] = PairState(inside, since, pending, last, alarmed)
    return out, {vid: _snapshot(st) for vid, st in out.items()}


async def _end_offline(conn: psycopg.AsyncConnection, fixes: list[Fix]) -> None:
    first: dict[int, datetime] = {}
    for f in fixes:
        first.setdefault(f.vehicle_id, f.time)
    keys = [dedupe_key("offline", v, None) for v in first]
    await conn.execute(END_OFFLINE_SQL, (keys, list(first.values())))


async def _save(
    conn: psycopg.AsyncConnection,
    outcome: Outcome,
    states: dict[int, dict[int, PairState]],
    before: Snapshot,
    watches: dict[int, Watch],
) -> None:
    """Rewrite the fence states of vehicles whose states changed; upsert every watch."""
    vehicles = sorted(outcome.last)
    changed = [v for v in vehicles if _snapshot(states.get(v, {})) != before.get(v, frozenset())]
    if changed:
        rows: dict[str, list[Any]] = {
            k: [] for k in ("v", "f", "inside", "since", "pending", "last", "alarmed")
        }
        for vid in changed:
            for fid, st in states.get(vid, {}).items():
                if st.idle:
                    continue
                for key, value in zip(
                    rows,
                    (vid, fid, st.inside, st.since, st.pending_since, st.last_fix_time, st.alarmed),
                    strict=True,
                ):
                    rows[key].append(value)
        await conn.execute(DROP_STATE_SQL, (changed,))
        await conn.execute(SAVE_STATE_SQL, rows)
    last = [outcome.last[v] for v in vehicles]
    await conn.execute(
        SAVE_WATCH_SQL,
        (
            vehicles,
            [f.time for f in last],
            [f.lon for f in last],
            [f.lat for f in last],
            [orjson.dumps(watches.get(v, Watch()).to_json()).decode() for v in vehicles],
        ),
    )


# ------------------------------------------------------------------------- periodic checks

OFFLINE_SQL = """
INSERT INTO city.alarms (kind, title, vehicle_id, plate, company_id, started_at, details,
                         dedupe_key, geom)
SELECT 'offline', %(title)s, w.vehicle_id, v.plate, v.company_id, w.last_time,
       jsonb_build_object('last_fix', w.last_time),
       'offline:' || w.vehicle_id || ':', ST_SetSRID(ST_MakePoint(w.last_lon, w.last_lat), 4490)
FROM city.vehicle_watch w JOIN city.fleet_vehicles v ON v.id = w.vehicle_id AND v.active
WHERE w.last_time < %(now)s - make_interval(mins => %(minutes)s)
  AND w.last_time >= %(now)s - make_interval(hours => %(hours)s)
ON CONFLICT (dedupe_key) WHERE ended_at IS NULL DO NOTHING
"""
GATE_SQL = """
INSERT INTO city.alarms (kind, title, vehicle_id, plate, company_id, site_id, started_at,
                         ended_at, details, dedupe_key, received_at, geom)
SELECT DISTINCT ON (g.plate, g.site_id, g.direction)
       CASE WHEN g.vehicle_id IS NULL THEN 'unregistered' ELSE 'unpermitted' END,
       CASE WHEN g.vehicle_id IS NULL THEN %(t_unregistered)s ELSE %(t_unpermitted)s END,
       g.vehicle_id, g.plate, v.company_id, g.site_id, g.at, g.at,
       jsonb_build_object('gate_event_id', g.id, 'site', s.name, 'site_kind', s.kind,
                          'direction', g.direction, 'source', g.source),
       'gate:' || g.plate || ':' || g.site_id, g.received_at,
       coalesce(s.gate, ST_PointOnSurface(s.geom))
FROM city.gate_events g
JOIN city.fleet_sites s ON s.id = g.site_id
LEFT JOIN city.fleet_vehicles v ON v.id = g.vehicle_id
WHERE g.at >= %(since)s AND (g.vehicle_id IS NULL OR NOT g.whitelisted)
  AND NOT EXISTS (
      SELECT 1 FROM city.alarms a
      WHERE a.dedupe_key = 'gate:' || g.plate || ':' || g.site_id
        AND a.started_at BETWEEN g.at - %(window)s::interval AND g.at + %(window)s::interval)
ORDER BY g.plate, g.site_id, g.direction, g.at
"""
GATE_WINDOW: Final = timedelta(minutes=30)


async def check_offline(
    conn: psycopg.AsyncConnection, now: datetime, minutes: int = 10, hours: int = 24
) -> int:
    """Terminal offline: no evaluated fix for ``minutes`` (vehicles seen within ``hours``).

    Reads ``vehicle_watch`` (the engine's last fix per vehicle, in device time), so the check
    follows the data's own clock (replays, simulations) rather than the receipt time.
    """
    cur = await conn.execute(
        OFFLINE_SQL, {"title": TITLES["offline"], "now": now, "minutes": minutes, "hours": hours}
    )
    return cur.rowcount


async def check_gates(conn: psycopg.AsyncConnection, since: datetime) -> int:
    """黑车 (unregistered plate) and 无准运 (not whitelisted) vehicles at site gates."""
    cur = await conn.execute(
        GATE_SQL,
        {
            "since": since,
            "window": GATE_WINDOW,
            "t_unregistered": TITLES["unregistered"],
            "t_unpermitted": TITLES["unpermitted"],
        },
    )
    return cur.rowcount


async def scan(conn: psycopg.AsyncConnection, now: datetime | None = None) -> dict[str, int]:
    """Every periodic check once; returns counts by check."""
    now = now or datetime.now(UTC)
    since = now - timedelta(days=1)
    async with conn.transaction():
        return {
            "offline": await check_offline(conn, now),
            "gates": await check_gates(conn, since),
            "weighings": await manifests.reconcile(conn, since),
            "expired_manifests": await manifests.expire(conn, now),
        }


async def scan_forever(pool: AsyncConnectionPool, interval_s: float = 60.0) -> None:
    """Run :func:`scan` every ``interval_s`` seconds (an app lifespan task)."""
    while True:
        try:
            async with pool.connection() as conn:
                await scan(conn)
        except Exception:  # noqa: BLE001 - keep scanning after a transient failure
            log.exception("fleet violation scan failed")
        await asyncio.sleep(interval_s)


_INSTALLED: dict[str, Pipeline] = {}


def install(pipeline: Pipeline | None = None) -> Pipeline:
    """Register the pipeline as F1's post-ingest hook (idempotent); returns it."""
    from layers.fleet.ingest import register_hook

    if "hook" not in _INSTALLED:
        _INSTALLED["hook"] = pipeline or Pipeline()
        register_hook(_INSTALLED["hook"])
    return _INSTALLED["hook"]
