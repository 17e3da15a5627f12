"""Telemetry ingest: check, deduplicate, convert and store a batch of fixes in one transaction.

Per batch, whatever its size, the database sees three statements and no per-fix query:

1. one look-up: terminal → vehicle, the vehicle's latest fix and, for late batches, the stored
   fix just before the batch (the reference of the implied-speed check);
2. ``city.ensure_fix_partition(day)`` for days not seen before by this process (autocommit);
3. one write (data-modifying CTEs over ``unnest`` arrays): fixes ``ON CONFLICT DO NOTHING``
   (the primary key (vehicle_id, device_time) drops duplicates), ``vehicle_latest`` upserted
   only when newer (late fixes never regress it), rejected fixes into ``fix_quarantine``.

GCJ-02/BD-09 coordinates are converted to CGCS2000 with numpy. Post-ingest hooks
(:func:`register_hook`, e.g. F2's geofence engine) are awaited **inside the batch transaction,
after the write**, each in its own savepoint: a failing hook is logged and counted, its own
writes are rolled back, and the fixes are still committed.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, Final

import h3
import numpy as np
import psycopg

from layers.fleet.telemetry import (
    BEIJING,
    FIX_CRS,
    MAX_FUTURE,
    Fix,
    Rejected,
    haversine_m,
    is_jump,
)
from spatial.crs import to_storage

log = logging.getLogger(__name__)

PARTITION_WINDOW_DAYS: Final = 31  # older fixes go to the default partition (strays)
_KNOWN_PARTITIONS: set[tuple[str, date]] = set()


@dataclass(frozen=True, slots=True)
class StoredFix:
    """An accepted fix as stored (CGCS2000 lon/lat)."""

    vehicle_id: int
    terminal_id: str
    device_time: datetime
    lon: float
    lat: float
    speed_kmh: float | None
    heading: int | None
    sealed: bool | None
    load_kg: float | None


Hook = Callable[[psycopg.AsyncConnection, list[StoredFix]], Awaitable[None]]


@dataclass
class HookRegistry:
    """Post-ingest hooks, awaited in order inside the batch transaction."""

    hooks: list[Hook] = field(default_factory=list)

    def register(self, hook: Hook) -> Hook:
        """Add a hook (idempotent); usable as a decorator."""
        if hook not in self.hooks:
            self.hooks.append(hook)
        return hook

    def unregister(self, hook: Hook) -> None:
        """Remove a hook if present."""
        if hook in self.hooks:
            self.hooks.remove(hook)


HOOKS: Final = HookRegistry()
register_hook = HOOKS.register
unregister_hook = HOOKS.unregister


@dataclass
class IngestResult:
    """Counts of one batch."""

    received: int = 0
    accepted: int = 0
    duplicates: int = 0
    late: int = 0  # accepted but older than the vehicle's latest fix
    rejected: dict[str, int] = field(default_factory=dict)
    hook_errors: int = 0
    # the stored fixes, sorted by vehicle and device time; filled only when hooks are registered
    accepted_fixes: list[StoredFix] = field(default_factory=list, repr=False)

    def as_dict(self) -> dict[str, Any]:
        """JSON form (without the fixes)."""
        return {
            "received": self.received,
            "accepted": self.accepted,
            "duplicates": self.duplicates,
            "late": self.late,
            "rejected": dict(self.rejected),
            "hook_errors": self.hook_errors,
        }


@dataclass
class _Reference:
    """What the look-up returns for one terminal."""

    vehicle_id: int
    latest: datetime | None
    prev_time: datetime | None
    prev_lon: float | None
    prev_lat: float | None


LOOKUP_SQL = """
SELECT u.terminal_id, t.vehicle_id, l.device_time,
       CASE WHEN l.device_time < u.first_time THEN l.device_time ELSE p.device_time END,
       CASE WHEN l.device_time < u.first_time THEN ST_X(l.geom) ELSE p.x END,
       CASE WHEN l.device_time < u.first_time THEN ST_Y(l.geom) ELSE p.y END
FROM unnest(%s::text[], %s::timestamptz[]) AS u(terminal_id, first_time)
JOIN city.fleet_terminals t ON t.terminal_id = u.terminal_id AND t.active
JOIN city.fleet_vehicles v ON v.id = t.vehicle_id
LEFT JOIN city.vehicle_latest l ON l.vehicle_id = t.vehicle_id
LEFT JOIN LATERAL (
    SELECT f.device_time, ST_X(f.geom) AS x, ST_Y(f.geom) AS y
    FROM city.telemetry_fixes f
    WHERE f.vehicle_id = t.vehicle_id AND f.device_time < u.first_time
      AND f.device_time >= u.first_time - interval '1 day'
    ORDER BY f.device_time DESC LIMIT 1
) p ON l.device_time >= u.first_time
"""

WRITE_SQL = """
WITH rows AS MATERIALIZED (
    SELECT i, vehicle_id, to_timestamp(0) + us * interval '1 microsecond' AS device_time,
           terminal_id, x, y, speed_kmh, heading, sealed, load_kg, src_crs, h3
    FROM unnest(%(i)s::int[], %(vehicle)s::int[], %(us)s::int8[], %(terminal)s::text[],
                %(x)s::float8[], %(y)s::float8[], %(speed)s::real[], %(heading)s::int2[],
                %(sealed)s::bool[], %(load)s::real[], %(crs)s::text[], %(h3)s::int8[])
         AS u(i, vehicle_id, us, terminal_id, x, y, speed_kmh, heading, sealed, load_kg,
              src_crs, h3)
), ins AS (
    INSERT INTO city.telemetry_fixes
        (vehicle_id, device_time, terminal_id, speed_kmh, heading, sealed, load_kg, src_crs, geom)
    SELECT vehicle_id, device_time, terminal_id, speed_kmh, heading, sealed, load_kg, src_crs,
           ST_SetSRID(ST_MakePoint(x, y), 4490)
    FROM rows
    ON CONFLICT DO NOTHING
    RETURNING vehicle_id, device_time
), stored AS MATERIALIZED (
    SELECT r.* FROM rows r JOIN ins USING (vehicle_id, device_time)
), latest AS (
    INSERT INTO city.vehicle_latest AS l
        (vehicle_id, plate, vehicle_kind, company_id, terminal_id, device_time, received_at,
         speed_kmh, heading, sealed, load_kg, h3, geom)
    SELECT DISTINCT ON (s.vehicle_id) s.vehicle_id, v.plate, v.kind, v.company_id,
           s.terminal_id, s.device_time, now(), s.speed_kmh, s.heading, s.sealed, s.load_kg,
           s.h3, ST_SetSRID(ST_MakePoint(s.x, s.y), 4490)
    FROM stored s JOIN city.fleet_vehicles v ON v.id = s.vehicle_id
    ORDER BY s.vehicle_id, s.device_time DESC
    ON CONFLICT (vehicle_id) DO UPDATE SET
        plate = EXCLUDED.plate, vehicle_kind = EXCLUDED.vehicle_kind,
        company_id = EXCLUDED.company_id, terminal_id = EXCLUDED.terminal_id,
        device_time = EXCLUDED.device_time, received_at = EXCLUDED.received_at,
        speed_kmh = EXCLUDED.speed_kmh, heading = EXCLUDED.heading, sealed = EXCLUDED.sealed,
        load_kg = EXCLUDED.load_kg, h3 = EXCLUDED.h3, geom = EXCLUDED.geom
    WHERE l.device_time < EXCLUDED.device_time
    RETURNING 1
), quarantined AS (
    INSERT INTO city.fix_quarantine (source, terminal_id, reason, detail, payload)
    SELECT %(source)s, q.terminal_id, q.reason, left(q.detail, 300), q.payload
    FROM unnest(%(q_terminal)s::text[], %(q_reason)s::text[], %(q_detail)s::text[],
                %(q_payload)s::text[]) AS q(terminal_id, reason, detail, payload)
    RETURNING 1
)
SELECT i FROM stored
"""


def _storage_coordinates(fixes: Sequence[Fix]) -> tuple[np.ndarray, np.ndarray]:
    """Vectorised conversion of every fix to CGCS2000 lon/lat."""
    x = np.fromiter((f.lon for f in fixes), np.float64, len(fixes))
    y = np.fromiter((f.lat for f in fixes), np.float64, len(fixes))
    crs = np.array([f.crs for f in fixes])
    for name in ("gcj02", "bd09"):
        mask = crs == name
        if mask.any():
            x[mask], y[mask] = to_storage(x[mask], y[mask], FIX_CRS[name])
    return x, y


async def _lookup(conn: psycopg.AsyncConnection, fixes: Sequence[Fix]) -> dict[str, _Reference]:
    """One query: vehicle and jump-check reference of every terminal in the batch."""
    first: dict[str, datetime] = {}
    for f in fixes:
        if f.terminal_id not in first or f.device_time < first[f.terminal_id]:
            first[f.terminal_id] = f.device_time
    cur = await conn.execute(LOOKUP_SQL, (list(first), list(first.values())))
    return {
        row[0]: _Reference(row[1], row[2], row[3], row[4], row[5]) for row in await cur.fetchall()
    }


def _jumps(
    vehicle: np.ndarray,
    micros: np.ndarray,
    x: np.ndarray,
    y: np.ndarray,
    refs: dict[int, _Reference],
) -> np.ndarray:
    """Boolean mask of fixes (sorted by vehicle, time) that jump from the last accepted fix."""
    n = len(vehicle)
    px, py, pt = np.roll(x, 1), np.roll(y, 1), np.roll(micros, 1).astype(np.float64)
    first = np.ones(n, dtype=bool)
    first[1:] = vehicle[1:] != vehicle[:-1]
    for k in np.flatnonzero(first):
        ref = refs[int(vehicle[k])]
        if ref.prev_time is None:
            px[k] = np.nan
        else:
            px[k], py[k] = ref.prev_lon, ref.prev_lat
            pt[k] = (ref.prev_time - datetime(1970, 1, 1, tzinfo=UTC)) / timedelta(microseconds=1)
    seconds = (micros - pt) / 1e6
    with np.errstate(invalid="ignore"):
        flagged = is_jump(haversine_m(px, py, x, y), seconds) & ~np.isnan(px)
    if not flagged.any():
        return flagged
    # Sequential pass for vehicles with a flag: compare with the last *accepted* fix, so the
    # fix after a jump is checked against the fix before it.
    out = np.zeros(n, dtype=bool)
    for vid in np.unique(vehicle[flagged]):
        idx = np.flatnonzero(vehicle == vid)
        k0 = idx[0]
        last = None if np.isnan(px[k0]) else (px[k0], py[k0], pt[k0])
        for k in idx:
            if last is not None:
                d = haversine_m(*map(np.asarray, (last[0], last[1], x[k], y[k])))
                if is_jump(d, np.asarray((micros[k] - last[2]) / 1e6)):
                    out[k] = True
                    continue
            last = (x[k], y[k], float(micros[k]))
    return out


async def ensure_partitions(conn: psycopg.AsyncConnection, days: set[date]) -> None:
    """Create missing daily partitions (recent days only; older fixes land in the default)."""
    info = conn.info
    db = f"{info.host}:{info.port}/{info.dbname}"
    today = datetime.now(BEIJING).date()
    wanted = {
        d
        for d in days
        if (db, d) not in _KNOWN_PARTITIONS
        and today - timedelta(days=PARTITION_WINDOW_DAYS) <= d <= today + timedelta(days=1)
    }
    if not wanted:
        return
    await conn.execute(
        "SELECT city.ensure_fix_partition(d) FROM unnest(%s::date[]) AS d ORDER BY d",
        (sorted(wanted),),
    )
    if conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE:
        _KNOWN_PARTITIONS.update((db, d) for d in wanted)


def _h3_cells(x: np.ndarray, y: np.ndarray) -> list[int]:
    cell = h3.latlng_to_cell
    return [h3.str_to_int(cell(float(b), float(a), 9)) for a, b in zip(x, y, strict=True)]


def _dedupe(fixes: Sequence[Fix], result: IngestResult) -> list[Fix]:
    seen: set[tuple[str, datetime]] = set()
    out: list[Fix] = []
    for f in fixes:
        key = (f.terminal_id, f.device_time)
        if key in seen:
            result.duplicates += 1
        else:
            seen.add(key)
            out.append(f)
    return out


def _screen(
    fixes: Sequence[Fix],
    refs: dict[str, _Reference],
    now: datetime,
    rejected: list[Rejected],
) -> list[Fix]:
    """Drop future-dated fixes and fixes of unknown terminals (recorded in ``rejected``)."""
    limit = now + MAX_FUTURE
    kept: list[Fix] = []
    for f in fixes:
        if f.device_time > limit:
            detail = f"device_time {f.device_time.isoformat()} is ahead of server time"
            rejected.append(Rejected("future_time", detail, f.terminal_id, _repr(f)))
        elif f.terminal_id not in refs:
            detail = f"terminal {f.terminal_id} is not registered to a vehicle"
            rejected.append(Rejected("unknown_terminal", detail, f.terminal_id, _repr(f)))
        else:
            kept.append(f)
    return kept


def _repr(f: Fix) -> str:
    return (
        f'{{"terminal_id": "{f.terminal_id}", "device_time": "{f.device_time.isoformat()}", '
        f'"lon": {f.lon}, "lat": {f.lat}, "crs": "{f.crs}", "speed_kmh": {f.speed_kmh}}}'
    )


async def ingest(
    conn: psycopg.AsyncConnection,
    fixes: Sequence[Fix],
    *,
    rejected: Sequence[Rejected] = (),
    source: str = "http",
    now: datetime | None = None,
    hooks: HookRegistry | None = None,
) -> IngestResult:
    """Store a batch of fixes; ``rejected`` (parse failures) are quarantined with it.

    ``conn`` is an autocommit connection; the batch is one transaction (hooks included).
    Returns the counts (and, when hooks are registered, the accepted fixes).
    """
    hooks = HOOKS if hooks is None else hooks
    now = now or datetime.now(UTC)
    result = IngestResult(received=len(fixes) + len(rejected))
    bad = list(rejected)
    unique = _dedupe(fixes, result)
    refs = await _lookup(conn, unique) if unique else {}
    good = _screen(unique, refs, now, bad)
    rows = _prepare(good, refs, bad, result)
    if rows:
        await ensure_partitions(conn, {t.astimezone(BEIJING).date() for t in rows["_times"]})
    async with conn.transaction():
        stored = await _write(conn, rows, bad, source)
        result.duplicates += len(rows.get("i", ())) - len(stored)
        result.accepted = len(stored)
        if stored:
            result.late = _late(rows, stored, refs)
        if hooks.hooks and stored:
            result.accepted_fixes = _stored(rows, stored)
            result.hook_errors = await _run_hooks(conn, hooks, result.accepted_fixes)
    result.rejected = dict(Counter(r.reason for r in bad))
    return result


def _late(rows: dict[str, Any], stored: list[int], refs: dict[str, _Reference]) -> int:
    """Accepted fixes older than their vehicle's latest fix before the batch."""
    latest = {r.vehicle_id: r.latest for r in refs.values() if r.latest is not None}
    times, vehicles = rows["_times"], rows["vehicle"]
    return sum(1 for i in stored if (t := latest.get(vehicles[i])) and times[i] < t)


def _prepare(
    fixes: list[Fix], refs: dict[str, _Reference], bad: list[Rejected], result: IngestResult
) -> dict[str, Any]:
    """Sort, convert and jump-check; returns the column arrays of the write statement."""
    if not fixes:
        return {}
    vehicle = np.fromiter((refs[f.terminal_id].vehicle_id for f in fixes), np.int64, len(fixes))
    micros = np.fromiter((f.micros for f in fixes), np.int64, len(fixes))
    order = np.lexsort((micros, vehicle))
    fixes = [fixes[k] for k in order]
    vehicle, micros = vehicle[order], micros[order]
    # the same vehicle at the same time from two terminals (re-fitted truck): keep one
    same = np.zeros(len(fixes), dtype=bool)
    same[1:] = (vehicle[1:] == vehicle[:-1]) & (micros[1:] == micros[:-1])
    x, y = _storage_coordinates(fixes)
    by_vehicle = {r.vehicle_id: r for r in refs.values()}
    jumps = _jumps(vehicle, micros, x, y, by_vehicle) & ~same
    for k in np.flatnonzero(jumps):
        f = fixes[k]
        detail = f"implied speed from the previous fix above limit at {f.device_time.isoformat()}"
        bad.append(Rejected("speed_jump", detail, f.terminal_id, _repr(f)))
    result.duplicates += int(same.sum())
    keep = ~(jumps | same)
    kept = [f for f, k in zip(fixes, keep, strict=True) if k]
    x, y, vehicle, micros = x[keep], y[keep], vehicle[keep], micros[keep]
    return {
        "i": list(range(len(kept))),
        "vehicle": vehicle.tolist(),
        "us": micros.tolist(),
        "terminal": [f.terminal_id for f in kept],
        "x": x.tolist(),
        "y": y.tolist(),
        "speed": [f.speed_kmh for f in kept],
        "heading": [f.heading for f in kept],
        "sealed": [f.sealed for f in kept],
        "load": [f.load_kg for f in kept],
        "crs": [f.crs for f in kept],
        "h3": _h3_cells(x, y),
        "_times": [f.device_time for f in kept],
    }


async def _write(
    conn: psycopg.AsyncConnection, rows: dict[str, Any], bad: list[Rejected], source: str
) -> list[int]:
    """The single write statement; returns the input indices actually stored."""
    quarantine = [r for r in bad if r.reason != "duplicate"]
    if not rows and not quarantine:
        return []
    empty: dict[str, list[Any]] = {
        k: [] for k in ("i", "vehicle", "us", "terminal", "x", "y", "speed", "heading")
    }
    empty.update({k: [] for k in ("sealed", "load", "crs", "h3")})
    params = {k: v for k, v in (rows or empty).items() if not k.startswith("_")}
    params.update(
        source=source,
        q_terminal=[r.terminal_id for r in quarantine],
        q_reason=[r.reason for r in quarantine],
        q_detail=[r.detail for r in quarantine],
        q_payload=[r.payload for r in quarantine],
    )
    cur = await conn.execute(
        WRITE_SQL, {k: _pg_array(v) if isinstance(v, list) else v for k, v in params.items()}
    )
    return sorted(row[0] for row in await cur.fetchall())


def _pg_item(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, int | float):
        return repr(value)
    text = str(value).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{text}"'


def _pg_array(values: list[Any]) -> str:
    """A PostgreSQL array literal: one string per column is far cheaper to send than a list."""
    if (
        values
        and None not in values
        and isinstance(values[0], int | float)
        and not isinstance(values[0], bool)
    ):
        return "{" + ",".join(map(str, values)) + "}"
    return "{" + ",".join(map(_pg_item, values)) + "}"


def _stored(rows: dict[str, Any], stored: list[int]) -> list[StoredFix]:
    return [
        StoredFix(
            vehicle_id=rows["vehicle"][i],
            terminal_id=rows["terminal"][i],
            device_time=rows["_times"][i],
            lon=rows["x"][i],
            lat=rows["y"][i],
            speed_kmh=rows["speed"][i],
            heading=rows["heading"][i],
            sealed=rows["sealed"][i],
            load_kg=rows["load"][i],
        )
        for i in stored
    ]


async def _run_hooks(
    conn: psycopg.AsyncConnection, hooks: HookRegistry, accepted: list[StoredFix]
) -> int:
    """Await every hook in its own savepoint; count (and log) the failures."""
    errors = 0
    for hook in list(hooks.hooks):
        try:
            async with conn.transaction():
                await hook(conn, accepted)
        except Exception:  # noqa: BLE001 - a hook must never lose the batch
            errors += 1
            log.exception("post-ingest hook %r failed; fixes kept", hook)
    return errors
