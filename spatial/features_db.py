"""Run the feature statements: GeoJSON text comes back as raw bytes, never parsed."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import errors
from psycopg.abc import Buffer
from psycopg.adapt import Loader

from spatial.errors import DatabaseUnavailable, FieldIssue, InvalidInput
from spatial.features_catalog import LayerColumns
from spatial.features_crs import OgcCrs
from spatial.features_sql import FeatureQuery, Statement, estimate_sql, item_sql, items_sql
from spatial.security.principal import EVERYTHING, DataScope

log = logging.getLogger("cityops.features")


class _RawText(Loader):
    """Load ``text`` as the UTF-8 bytes PostgreSQL sent (no decode, no copy into str)."""

    def load(self, data: Buffer) -> bytes:
        return bytes(data)


@dataclass(frozen=True)
class Page:
    """One items page: the features joined by commas, and the counts."""

    features: bytes
    returned: int
    matched: int | None


async def _run(cur: psycopg.AsyncCursor[Any], statement: Statement) -> None:
    """Execute; database complaints about the client's values become 400 problems."""
    query, params = statement
    try:
        await cur.execute(query, params)
    except (errors.DataError, errors.UndefinedFunction, errors.DatatypeMismatch) as exc:
        message = exc.diag.message_primary or type(exc).__name__
        raise InvalidInput(
            f"The filter cannot be applied: {message}", [FieldIssue("filter", message)]
        ) from None
    except errors.InternalError_ as exc:  # PostGIS/GEOS refusing a geometry
        log.warning("PostGIS rejected a feature query: %s", exc)
        message = exc.diag.message_primary or "geometry error"
        raise InvalidInput(
            f"Invalid geometry: {message}", [FieldIssue("filter", message)]
        ) from None
    except errors.QueryCanceled:
        raise DatabaseUnavailable("The query took too long; narrow bbox or filter.") from None


async def fetch_page(conn: psycopg.AsyncConnection, q: FeatureQuery, cap: int) -> Page:
    """Fetch one page; above ``cap`` matches an ``estimate`` layer reports the planner's rows."""
    async with conn.cursor() as cur:
        cur.adapters.register_loader("text", _RawText)
        await _run(cur, items_sql(q, cap))
        row = await cur.fetchone()
    assert row is not None  # noqa: S101 - the statement always returns one row
    features, returned, matched = row
    if q.cols.spec.count == "estimate" and matched is not None and matched > cap:
        matched = max(matched, await estimate(conn, q))
    return Page(features or b"", int(returned), matched)


async def estimate(conn: psycopg.AsyncConnection, q: FeatureQuery) -> int:
    """The planner's row estimate (``EXPLAIN``; reads no rows)."""
    async with conn.cursor() as cur:
        await _run(cur, estimate_sql(q))
        row = await cur.fetchone()
    assert row is not None  # noqa: S101 - EXPLAIN always returns its plan
    return int(row[0][0]["Plan"]["Plan Rows"])


async def fetch_feature(
    conn: psycopg.AsyncConnection,
    cols: LayerColumns,
    fid: str,
    crs: OgcCrs,
    scope: DataScope = EVERYTHING,
) -> bytes | None:
    """One Feature's GeoJSON bytes, or None (also when outside ``scope``)."""
    if cols.pk_type in ("integer", "bigint", "smallint") and not fid.isdigit():
        return None
    async with conn.cursor() as cur:
        cur.adapters.register_loader("text", _RawText)
        try:
            await _run(cur, item_sql(cols, crs, fid, scope))
        except InvalidInput:
            return None  # an id that cannot be of the key's type names no feature
        row = await cur.fetchone()
    return None if row is None else row[0]
