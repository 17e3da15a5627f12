"""Per-app OGC state shared by the fast path and the pygeoapi provider.

pygeoapi builds providers from its configuration dict, so the provider finds its app's
context through the id written into that configuration (``CONTEXTS``, weakly held).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import psycopg
from psycopg_pool import PoolTimeout

from layers.registry import LayerRegistry
from spatial.errors import CityError, DatabaseUnavailable, NotFound
from spatial.features_catalog import LayerColumns, fallback_catalog, load_catalog
from spatial.settings import Settings

log = logging.getLogger("cityops.ogc")
T = TypeVar("T")
ConnFactory = Callable[[], Any]  # returns an async context manager yielding a connection


@dataclass(eq=False)
class OgcContext:
    """The registry, the checked column catalog and the way back to the app's pool and loop."""

    registry: LayerRegistry
    settings: Settings
    catalog: dict[str, LayerColumns] | None = None
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    loop: asyncio.AbstractEventLoop | None = None
    connection: ConnFactory | None = None  # set by the lifespan: ``pool.connection``
    pygeoapi: Any = None  # the mounted pygeoapi ``API`` (templates, config)
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def describe(self, layer_id: str) -> LayerColumns:
        """Columns for OpenAPI and the queryables: the real catalog, else the registry's."""
        spec = self.registry.get(layer_id)
        if self.catalog and spec.id in self.catalog:
            return self.catalog[spec.id]
        return fallback_catalog(self.registry)[spec.id]

    async def layer(self, conn: psycopg.AsyncConnection, layer_id: str) -> LayerColumns:
        """The checked columns of a layer; reads the catalog once when start-up could not."""
        spec = self.registry.get(layer_id)
        if self.catalog is None or spec.id not in self.catalog:
            async with self._lock:
                if self.catalog is None or spec.id not in self.catalog:
                    self.catalog = await load_catalog(conn, self.registry)
        if spec.id not in self.catalog:
            raise NotFound(f"Collection '{layer_id}' has no table in the database yet.")
        return self.catalog[spec.id]

    def run(self, work: Callable[[psycopg.AsyncConnection], Awaitable[T]]) -> T:
        """Run ``work`` on a pooled connection from a worker thread (the pygeoapi provider)."""
        if self.loop is None or self.connection is None:
            raise CityError("The OGC service has not started.")
        connection = self.connection

        async def call() -> T:
            try:
                async with connection() as conn:
                    return await work(conn)
            except (psycopg.OperationalError, PoolTimeout) as exc:
                raise DatabaseUnavailable("The database cannot be reached.") from exc

        db = self.settings.db
        timeout = db.statement_timeout_ms / 1000 + db.connect_timeout_s + 5
        future = asyncio.run_coroutine_threadsafe(call(), self.loop)
        try:
            return future.result(timeout=timeout)
        except TimeoutError:
            future.cancel()
            raise DatabaseUnavailable("The database did not answer in time.") from None


CONTEXTS: weakref.WeakValueDictionary[str, OgcContext] = weakref.WeakValueDictionary()


def register(ctx: OgcContext) -> OgcContext:
    """Make ``ctx`` findable by the provider."""
    CONTEXTS[ctx.id] = ctx
    return ctx


def context(context_id: str) -> OgcContext:
    """The context a provider definition names."""
    try:
        return CONTEXTS[context_id]
    except KeyError:
        raise CityError("OGC context not found (app shut down?)") from None
