"""Live alarm and position stream (实时推送) as Server-Sent Events.

Each stream holds one PostgreSQL connection that ``LISTEN``s on ``city_alarms`` (the row
trigger of migration 0009 NOTIFYs on every insert, from any worker or process). A notification
only wakes the stream: alarms are read by id (``id > last sent``, within the caller's data
scope), so a resumed stream (``Last-Event-ID``) replays what it missed and nothing is lost while
a query runs. Between alarms the stream sends latest vehicle positions that changed
(``event: position``, when asked and permitted) and a heartbeat comment every
``heartbeat_s`` seconds so proxies keep the connection open.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

import orjson
import psycopg
from psycopg import sql

from layers.fleet.alarms import ALARM_COLUMNS

CHANNEL: Final = "city_alarms"
REPLAY_LIMIT: Final = 500


@dataclass(frozen=True)
class StreamOptions:
    """What one client asked for."""

    last_id: int | None = None
    positions: bool = False
    heartbeat_s: float = 15.0
    limit: int | None = None  # close after this many alarm events (tests, polling clients)
    max_seconds: float | None = None


def sse(event: str | None, data: Any, event_id: int | None = None) -> bytes:
    """One SSE frame."""
    head = f"event: {event}\n" if event else ""
    if event_id is not None:
        head += f"id: {event_id}\n"
    return head.encode() + b"data: " + orjson.dumps(data) + b"\n\n"


def _alarm_query(scope: sql.Composable | None) -> sql.Composed:
    where = sql.SQL(" AND {}").format(scope) if scope is not None else sql.SQL("")
    return sql.SQL("SELECT {} FROM city.alarms a WHERE a.id > %s{} ORDER BY a.id LIMIT %s").format(
        sql.SQL(ALARM_COLUMNS), where
    )


POSITIONS_SQL = """
SELECT vehicle_id, plate, vehicle_kind, device_time, speed_kmh, heading, sealed,
       ST_X(geom) AS lon, ST_Y(geom) AS lat
FROM city.vehicle_latest WHERE received_at > %s ORDER BY received_at LIMIT 2000
"""


async def _dicts(conn: psycopg.AsyncConnection, query: Any, args: Any) -> list[dict[str, Any]]:
    cur = await conn.execute(query, args)
    names = [c.name for c in cur.description or []]
    return [dict(zip(names, r, strict=True)) for r in await cur.fetchall()]


async def stream(
    conninfo: str,
    scope: sql.Composable | None,
    options: StreamOptions,
    disconnected: Callable[[], Awaitable[bool]],
) -> AsyncIterator[bytes]:
    """The SSE byte stream of one client."""
    query = _alarm_query(scope)
    sent = 0
    started = time.monotonic()
    async with await psycopg.AsyncConnection.connect(conninfo, autocommit=True) as conn:
        await conn.execute(f"LISTEN {CHANNEL}")
        last_id = options.last_id
        if last_id is None:
            cur = await conn.execute("SELECT coalesce(max(id), 0) FROM city.alarms")
            row = await cur.fetchone()
            last_id = int(row[0]) if row else 0
        since = datetime.now(UTC)
        yield b"retry: 3000\n\n"
        while True:
            for alarm in await _dicts(conn, query, (last_id, REPLAY_LIMIT)):
                last_id = alarm["id"]
                yield sse("alarm", alarm, alarm["id"])
                sent += 1
                if options.limit is not None and sent >= options.limit:
                    return
            if options.positions:
                now = datetime.now(UTC)
                moved = await _dicts(conn, POSITIONS_SQL, (since,))
                since = now
                if moved:
                    yield sse("position", moved)
            if options.max_seconds is not None and time.monotonic() - started > options.max_seconds:
                return
            if await disconnected():
                return
            woke = False
            async for _ in conn.notifies(timeout=options.heartbeat_s, stop_after=1):
                woke = True
            if not woke:
                yield b": heartbeat\n\n"
