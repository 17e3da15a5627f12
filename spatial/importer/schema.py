"""The target table's columns as the database defines them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import psycopg

from layers.registry import LayerSpec
from spatial.errors import ConfigurationError

TYPE_KINDS: Final[dict[str, str]] = {
    "character varying": "str",
    "text": "str",
    "character": "str",
    "integer": "int",
    "bigint": "int",
    "smallint": "int",
    "double precision": "float",
    "real": "float",
    "numeric": "float",
    "date": "date",
    "timestamp with time zone": "datetime",
    "timestamp without time zone": "datetime",
    "boolean": "bool",
}


@dataclass(frozen=True)
class Column:
    """A target table column as the database defines it."""

    name: str
    data_type: str
    nullable: bool
    has_default: bool
    max_length: int | None

    @property
    def kind(self) -> str:
        """``str``, ``int``, ``float``, ``date``, ``datetime``, ``bool`` or ``other``."""
        return TYPE_KINDS.get(self.data_type, "other")


def table_columns(conn: psycopg.Connection, spec: LayerSpec) -> dict[str, Column]:
    """Columns of the layer's table from ``information_schema``."""
    rows = conn.execute(
        "SELECT column_name, data_type, is_nullable = 'YES', "
        "column_default IS NOT NULL OR is_identity = 'YES', character_maximum_length "
        "FROM information_schema.columns WHERE table_schema = %s AND table_name = %s "
        "ORDER BY ordinal_position",
        (spec.schema, spec.table),
    ).fetchall()
    if not rows:
        raise ConfigurationError(
            f"table {spec.qualified_table} does not exist; run `cityops db upgrade` first"
        )
    return {r[0]: Column(*r) for r in rows}
