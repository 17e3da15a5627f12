"""Request dependencies: the connection pool and the layer registry from ``app.state``."""

from __future__ import annotations

from collections.abc import AsyncIterator

import psycopg
from fastapi import Request
from psycopg_pool import PoolTimeout

from layers.registry import LayerRegistry
from spatial.errors import DatabaseUnavailable


async def get_conn(request: Request) -> AsyncIterator[psycopg.AsyncConnection]:
    """A pooled async connection (autocommit, ``search_path=city,public``)."""
    pool = request.app.state.pool
    try:
        async with pool.connection(timeout=request.app.state.settings.db.connect_timeout_s) as conn:
            yield conn
    except (psycopg.OperationalError, PoolTimeout) as exc:
        raise DatabaseUnavailable("The database cannot be reached.") from exc


def get_registry(request: Request) -> LayerRegistry:
    """The app's layer registry."""
    return request.app.state.registry
