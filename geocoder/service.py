"""The geocoder's state on ``app.state``: the index, built in the background, kept fresh.

The index is built when the app starts (requests that arrive earlier wait for it) and rebuilt
when the geocoding tables change: every ``refresh_s`` seconds the service reads the tables'
cumulative insert/update/delete counters from ``pg_stat_user_tables`` (one cheap query) and
rebuilds when they moved. ``POST /api/v1/geocode/index`` rebuilds at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import psycopg
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from geocoder.index import GeoIndex, build_index
from geocoder.loader import load_rows
from spatial.errors import DatabaseUnavailable

log = logging.getLogger("cityops.geocoder")
TABLES = (
    "districts", "streets", "communities", "unit_grids", "responsibility_grids",
    "roads", "compounds", "addresses", "pois",
)  # fmt: skip
CHANGES_SQL = """
SELECT coalesce(sum(n_tup_ins + n_tup_upd + n_tup_del), 0)::bigint FROM pg_stat_user_tables
 WHERE schemaname = 'city' AND relname = ANY(%s)
"""


class GeocoderService:
    """Owns the in-memory index; requests await the first build, later ones read it."""

    def __init__(
        self, pool: AsyncConnectionPool, timeout_s: float = 5.0, refresh_s: float = 30.0
    ) -> None:
        """Bind to the app's pool (nothing is loaded yet)."""
        self._pool = pool
        self._timeout_s = timeout_s
        self._refresh_s = refresh_s
        self._index: GeoIndex | None = None
        self._changes: int | None = None
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Build the index in the background, then watch the tables for changes."""
        self._task = asyncio.create_task(self._run(), name="geocoder-index")

    async def close(self) -> None:
        """Stop the background task."""
        if self._task is not None and not self._task.done():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def index(self) -> GeoIndex:
        """The index, built on first use when the background build has not finished."""
        if self._index is None:
            async with self._lock:
                if self._index is None:
                    self._index = await self._load()
        return self._index

    async def rebuild(self) -> GeoIndex:
        """Build a fresh index from the database and swap it in."""
        async with self._lock:
            self._index = await self._load()
        return self._index

    async def refresh_if_changed(self) -> bool:
        """Rebuild when the geocoding tables changed since the last build; True if rebuilt."""
        if self._index is None or self._changes is None:
            return False
        async with self._pool.connection(timeout=self._timeout_s) as conn:
            row = await (await conn.execute(CHANGES_SQL, (list(TABLES),))).fetchone()
        if row is None or row[0] == self._changes:
            return False
        log.info("geocoding tables changed; rebuilding the index")
        await self.rebuild()
        return True

    async def _run(self) -> None:
        try:
            await self.index()
        except DatabaseUnavailable:
            log.warning("geocoder index not built at startup: database unavailable")
        while True:
            await asyncio.sleep(self._refresh_s)
            try:
                await self.refresh_if_changed()
            except (DatabaseUnavailable, psycopg.Error, PoolTimeout) as exc:
                log.warning("geocoder index refresh skipped: %s", exc)

    async def _load(self) -> GeoIndex:
        try:
            async with self._pool.connection(timeout=self._timeout_s) as conn:
                row = await (await conn.execute(CHANGES_SQL, (list(TABLES),))).fetchone()
                rows = await load_rows(conn)
        except (psycopg.OperationalError, PoolTimeout) as exc:
            raise DatabaseUnavailable("The geocoding index cannot be loaded.") from exc
        ix = await asyncio.to_thread(build_index, rows)  # the connection is back in the pool
        self._changes = row[0] if row else None
        log.info("geocoder index built in %.2f s: %s", ix.build_seconds, ix.counts())
        return ix
