"""The columns each published layer's table really holds, checked against the registry.

Columns and types come from the PostgreSQL catalog; a queryable the table lacks is an error.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Final

import psycopg

from layers.registry import LayerRegistry, LayerSpec
from spatial.errors import ConfigurationError

log = logging.getLogger("cityops.features")

# Bookkeeping columns that are not attributes of the data standard.
INTERNAL_COLUMNS: Final = frozenset({"h3", "idempotency_key", "reporter_user_id"})
# Ciphertext (SM4) and blind indexes of personal fields are never published; masks are.
INTERNAL_SUFFIXES: Final = ("_enc", "_bidx")


def is_internal(column: str) -> bool:
    """True for bookkeeping and protected columns that no layer publishes."""
    return column in INTERNAL_COLUMNS or column.endswith(INTERNAL_SUFFIXES)


GEOMETRY_TYPES: Final = frozenset({"geometry", "geography"})

EXTENT_SQL: Final = (
    "SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e)"
    " FROM (SELECT ST_EstimatedExtent(%s, %s, %s)::box2d e) s"
)
CATALOG_SQL: Final = """
SELECT n.nspname, c.relname, a.attname, format_type(a.atttypid, NULL)
FROM pg_attribute a
JOIN pg_class c ON c.oid = a.attrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = ANY(%s) AND c.relname = ANY(%s) AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY n.nspname, c.relname, a.attnum
"""

_JSON_TYPES: Final[dict[str, dict[str, str]]] = {
    "integer": {"type": "integer"},
    "bigint": {"type": "integer"},
    "smallint": {"type": "integer"},
    "numeric": {"type": "number"},
    "double precision": {"type": "number"},
    "real": {"type": "number"},
    "boolean": {"type": "boolean"},
    "date": {"type": "string", "format": "date"},
    "timestamp with time zone": {"type": "string", "format": "date-time"},
    "timestamp without time zone": {"type": "string", "format": "date-time"},
}


@dataclass(frozen=True)
class LayerColumns:
    """A layer with its table's property columns (name → SQL type), in table order."""

    spec: LayerSpec
    columns: Mapping[str, str]
    extent: tuple[float, float, float, float] | None = None  # lon/lat, from table statistics

    @property
    def properties(self) -> tuple[str, ...]:
        """Every published property (all non-geometry, non-internal columns)."""
        return tuple(self.columns)

    @property
    def queryables(self) -> tuple[str, ...]:
        """Properties usable in filters and ``sortby``: the registry's, plus the time column."""
        extra = (self.spec.temporal,) if self.spec.temporal else ()
        return tuple(dict.fromkeys((*self.spec.queryables, *extra)))

    @property
    def pk_type(self) -> str:
        """SQL type of the feature id column."""
        return self.columns.get(self.spec.pk, "text")

    def json_schema(self, name: str) -> dict[str, str]:
        """JSON Schema type of one property."""
        return dict(_JSON_TYPES.get(self.columns.get(name, ""), {"type": "string"}))


def build_catalog(
    registry: LayerRegistry, rows: Iterable[tuple[str, str, str, str]]
) -> dict[str, LayerColumns]:
    """Check the catalog rows against the registry; ``ConfigurationError`` on drift.

    A layer whose table is missing (database not migrated) is left out.
    """
    tables: dict[tuple[str, str], dict[str, str]] = {}
    for schema, table, column, sql_type in rows:
        tables.setdefault((schema, table), {})[column] = sql_type
    catalog: dict[str, LayerColumns] = {}
    for spec in registry:
        cols = tables.get((spec.schema, spec.table))
        if cols is None:
            log.warning("layer %s: table %s is missing", spec.id, spec.qualified_table)
            continue
        needed = {spec.pk, spec.geom, *spec.queryables, *filter(None, [spec.temporal])}
        missing = sorted(needed - set(cols))
        if missing:
            raise ConfigurationError(
                f"layer {spec.id!r}: table {spec.qualified_table} lacks {', '.join(missing)}"
            )
        if cols[spec.geom] not in GEOMETRY_TYPES:
            raise ConfigurationError(f"layer {spec.id!r}: {spec.geom} is not a geometry")
        props = {
            name: t for name, t in cols.items() if t not in GEOMETRY_TYPES and not is_internal(name)
        }
        catalog[spec.id] = LayerColumns(spec, props)
    return catalog


def _catalog_args(registry: LayerRegistry) -> tuple[list[str], list[str]]:
    specs = list(registry)
    return sorted({s.schema for s in specs}), sorted({s.table for s in specs})


def load_catalog_sync(
    url: str, registry: LayerRegistry, timeout_s: float
) -> dict[str, LayerColumns]:
    """Read the catalog (and each layer's estimated extent) at app start-up."""
    with psycopg.connect(url, connect_timeout=max(1, int(timeout_s)), autocommit=True) as conn:
        rows = conn.execute(CATALOG_SQL, _catalog_args(registry)).fetchall()
        catalog = build_catalog(registry, rows)
        for layer_id, cols in catalog.items():
            spec = cols.spec
            box = conn.execute(EXTENT_SQL, (spec.schema, spec.table, spec.geom)).fetchone()
            if box is not None and None not in box and spec.srid in (4326, 4490):
                catalog[layer_id] = replace(cols, extent=tuple(float(v) for v in box))  # type: ignore[arg-type]
    return catalog


async def load_catalog(
    conn: psycopg.AsyncConnection, registry: LayerRegistry
) -> dict[str, LayerColumns]:
    """Read the catalog on a pooled connection."""
    cur = await conn.execute(CATALOG_SQL, _catalog_args(registry))
    return build_catalog(registry, await cur.fetchall())


def fallback_catalog(registry: LayerRegistry) -> dict[str, LayerColumns]:
    """Registry-only stand-in while the database is unreachable (queryables only)."""
    out = {}
    for spec in registry:
        names = dict.fromkeys((spec.pk, *spec.queryables, *filter(None, [spec.temporal])))
        out[spec.id] = LayerColumns(spec, {n: "text" for n in names})
    return out
