"""The vector tile service: renders MVT in PostGIS, caches by layer version, knows layer extents.

Tile statements run on their own small pool whose sessions set ``jit=off`` and
``max_parallel_workers_per_gather=0`` (JIT compilation and parallel Gather both add more than a
mid-size tile costs); a dedicated connection listens for ``city_layer_versions`` notifications.

A scoped layer (案卷) requested with a restricted data scope (数据范围) is rendered with the
scope's condition and cached apart from everyone else's tiles: the cache key carries a digest of
the scope (and, for an area scope, the versions of the street and community polygons), so a
tile is only ever served to principals that see exactly the same rows.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass

import psycopg
from psycopg import sql
from psycopg_pool import AsyncConnectionPool, PoolTimeout
from pydantic_settings import BaseSettings, SettingsConfigDict

from layers.registry import LayerSpec
from spatial.db import libpq_url
from spatial.errors import ConfigurationError, DatabaseUnavailable
from spatial.security.principal import EVERYTHING, DataScope
from spatial.security.scope import AREA_TABLES, scope_condition
from spatial.tilecache import NOTIFY_CHANNEL, LayerVersions, TileCache
from spatial.tiles_sql import (
    COLUMNS_QUERY,
    SCOPE_ALIAS,
    VERSIONS_QUERY,
    WARM_UP_QUERY,
    extent_query,
    mvt_params,
    mvt_query,
)
from spatial.tms import Bounds, TileGrid

log = logging.getLogger("cityops.tiles")


async def _warm_up(conn: psycopg.AsyncConnection) -> None:
    """Load PROJ in a new backend (its first ``ST_Transform`` costs ~150 ms), not in a tile."""
    await conn.execute(WARM_UP_QUERY)


class TileSettings(BaseSettings):
    """Vector tile settings (``CITY_TILES_`` prefix)."""

    model_config = SettingsConfigDict(env_prefix="CITY_TILES_", extra="ignore")

    cache_mb: float = 128.0
    version_ttl_s: float = 5.0
    listen: bool = True
    max_age_s: int = 30
    max_features: int = 50_000
    pool_size: int = 8
    statement_timeout_ms: int = 30_000


@dataclass(frozen=True)
class RenderedTile:
    """MVT bytes (empty when no feature) and the layer version they were rendered from."""

    data: bytes
    version: int | None
    cached: bool


class TileService:
    """Tiles, versions, columns and extents of the registry's layers."""

    def __init__(self, settings: TileSettings) -> None:
        self.settings = settings
        self.cache = TileCache(int(settings.cache_mb * 2**20))
        self.versions = LayerVersions(settings.version_ttl_s)
        self.pool: AsyncConnectionPool | None = None
        self._listener: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        self._columns: dict[tuple[str, str], dict[str, str]] | None = None
        self._extents: dict[str, tuple[int, Bounds | None]] = {}
        self._queries: dict[tuple[str, str], tuple[sql.Composed, str]] = {}

    async def start(self, url: str) -> None:
        """Open the pool (without waiting for the database) and start the listener."""
        options = (
            f"-c statement_timeout={self.settings.statement_timeout_ms} "
            "-c search_path=city,public -c jit=off -c max_parallel_workers_per_gather=0"
        )
        self.pool = AsyncConnectionPool(
            libpq_url(url),
            min_size=min(2, self.settings.pool_size),
            max_size=self.settings.pool_size,
            open=False,
            check=AsyncConnectionPool.check_connection,
            kwargs={"options": options, "autocommit": True},
            configure=_warm_up,
        )
        await self.pool.open(wait=False)
        if self.settings.listen:
            self._listener = asyncio.create_task(self._listen(libpq_url(url)))

    async def stop(self) -> None:
        """Stop the listener and close the pool."""
        if self._listener:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener
        if self.pool:
            await self.pool.close()

    @contextlib.asynccontextmanager
    async def connection(self) -> AsyncIterator[psycopg.AsyncConnection]:
        """A pooled connection; database trouble becomes a 503 problem."""
        if self.pool is None:
            raise DatabaseUnavailable("The tile service is not started.")
        try:
            async with self.pool.connection(timeout=10) as conn:
                yield conn
        except psycopg.errors.UndefinedTable as exc:
            raise ConfigurationError(
                "Vector tiles need migration 0003 (city.layer_versions): run `cityops db migrate`."
            ) from exc
        except psycopg.errors.QueryCanceled as exc:
            raise DatabaseUnavailable("The tile query was cancelled (statement timeout).") from exc
        except (psycopg.OperationalError, PoolTimeout) as exc:
            raise DatabaseUnavailable("The database cannot be reached.") from exc

    async def version(self, spec: LayerSpec) -> int | None:
        """The layer's current version (``None``: not change-tracked, so never cached)."""
        return await self.table_version(spec.table)

    async def table_version(self, table: str) -> int | None:
        """The current version of a table of ``city.layer_versions``."""
        if self.versions.stale:
            async with self._lock:
                if self.versions.stale:
                    async with self.connection() as conn:
                        rows = await (await conn.execute(VERSIONS_QUERY)).fetchall()
                    self.versions.load(rows)
        return self.versions.get(table)

    async def scope_tag(self, spec: LayerSpec, scope: DataScope) -> str | None:
        """Names the rows of ``spec`` that ``scope`` sees; ``None`` when it sees them all.

        A digest of the scope, plus the versions of the street and community polygons when the
        scope is spatial (a redrawn street boundary changes which cases it covers).
        """
        if scope_condition(spec, scope, SCOPE_ALIAS) is None:
            return None
        seed = repr(scope)
        if scope.areas and spec.scope is not None and spec.scope.area:
            seed += repr([await self.table_version(t) for t in AREA_TABLES])
        return hashlib.sha1(seed.encode()).hexdigest()[:10]

    async def columns(self, spec: LayerSpec) -> dict[str, str]:
        """Column name → PostgreSQL data type of the layer's table (read once)."""
        if self._columns is None:
            async with self.connection() as conn:
                cur = await conn.execute(COLUMNS_QUERY)
                found: dict[tuple[str, str], dict[str, str]] = {}
                for schema, table, column, kind in await cur.fetchall():
                    found.setdefault((schema, table), {})[column] = kind
            self._columns = found
        return self._columns.get((spec.schema, spec.table), {})

    async def properties(self, spec: LayerSpec) -> list[str]:
        """Tile properties: ``TileSpec.properties``, else pk, ``name`` and the queryables."""
        columns = await self.columns(spec)
        wanted = spec.tiles.properties or (spec.pk, "name", *spec.queryables)
        chosen = [c for c in dict.fromkeys(wanted) if c in columns and c != spec.geom]
        if missing := [c for c in spec.tiles.properties if c not in columns]:
            log.warning("layer %s: tile properties %s are not columns", spec.id, missing)
        return chosen

    async def extent(self, spec: LayerSpec, version: int | None) -> Bounds | None:
        """The layer's extent in its storage CRS (lon/lat), cached per version."""
        cached = self._extents.get(spec.table)
        if version is not None and cached and cached[0] >= version:
            return cached[1]
        async with self.connection() as conn:
            row = await (await conn.execute(extent_query(spec), {"layer": spec.table})).fetchone()
        assert row is not None  # noqa: S101 - an aggregate always returns one row
        found, *box = row
        bounds = None if box[0] is None else (box[0], box[1], box[2], box[3])
        if found is not None:
            self.versions.observe(spec.table, found)
            self._extents[spec.table] = (found, bounds)
        return bounds

    async def query(self, spec: LayerSpec, grid: TileGrid) -> tuple[sql.Composed, str]:
        """The tile statement of a layer and grid, and its fingerprint (part of the ETag)."""
        key = (spec.id, grid.id)
        if key not in self._queries:
            query = mvt_query(spec, grid, await self.properties(spec), self.settings.max_features)
            seed = repr(query)
            self._queries[key] = (query, hashlib.sha1(seed.encode()).hexdigest()[:8])
        return self._queries[key]

    async def scoped_query(self, spec: LayerSpec, grid: TileGrid, scope: DataScope) -> sql.Composed:
        """The tile statement limited to ``scope`` (the shared one when unrestricted)."""
        condition = scope_condition(spec, scope, SCOPE_ALIAS)
        if condition is None:
            return (await self.query(spec, grid))[0]
        limit = self.settings.max_features
        return mvt_query(spec, grid, await self.properties(spec), limit, condition)

    async def tile(
        self,
        spec: LayerSpec,
        grid: TileGrid,
        z: int,
        col: int,
        row: int,
        version: int | None,
        scope: DataScope = EVERYTHING,
    ) -> RenderedTile:
        """One tile, from the cache when its layer version is current, else from PostGIS.

        Tiles of a restricted ``scope`` are cached under the scope's tag, apart from the rest.
        """
        tag = await self.scope_tag(spec, scope)
        key = spec.table if tag is None else f"{spec.table}#{tag}"
        if version is not None:
            data = self.cache.get((key, version, grid.id, z, col, row))
            if data is not None:
                return RenderedTile(data, version, cached=True)
        query = await self.scoped_query(spec, grid, scope)
        params = mvt_params(spec, grid, z, col, row)
        async with self.connection() as conn:
            result = await (await conn.execute(query, params, binary=True)).fetchone()
        assert result is not None  # noqa: S101 - a SELECT without FROM returns one row
        found, data = result[0], bytes(result[1] or b"")
        if found is not None:
            self.versions.observe(spec.table, found)
            self.cache.put((key, found, grid.id, z, col, row), data)
        return RenderedTile(data, found, cached=False)

    async def _listen(self, url: str) -> None:
        """Apply version notifications as they arrive; reconnect with back-off."""
        delay = 1.0
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
                    await conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(NOTIFY_CHANNEL)))
                    self.versions.expire()
                    delay = 1.0
                    async for note in conn.notifies():
                        self.versions.notify(note.payload)
            except psycopg.Error as exc:
                log.warning("tile version listener: %s; retrying in %.0f s", exc, delay)
                self.versions.expire()
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)
