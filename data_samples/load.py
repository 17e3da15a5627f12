"""Load a generated sample set into PostGIS with COPY, in one transaction."""

from __future__ import annotations

import time
from collections.abc import Callable

import psycopg
from psycopg import sql

from data_samples.generate import SampleData, Size, build
from spatial.db import libpq_url
from spatial.models import SCHEMA

Progress = Callable[[str], None]


def is_empty(url: str) -> bool:
    """True when the database holds no components yet."""
    with psycopg.connect(libpq_url(url)) as conn:
        return conn.execute(
            sql.SQL("SELECT NOT EXISTS (SELECT 1 FROM {}.parts)").format(sql.Identifier(SCHEMA))
        ).fetchone()[0]


def copy_table(
    cur: psycopg.Cursor,
    schema: str,
    name: str,
    columns: tuple[str, ...],
    rows: list[tuple[object, ...]],
) -> None:
    """COPY rows into one table."""
    stmt = sql.SQL("COPY {}.{} ({}) FROM STDIN").format(
        sql.Identifier(schema),
        sql.Identifier(name),
        sql.SQL(", ").join(map(sql.Identifier, columns)),
    )
    with cur.copy(stmt) as copy:
        for row in rows:
            copy.write_row(row)


def write(url: str, data: SampleData, progress: Progress = print) -> dict[str, int]:
    """Replace the sample tables' contents with ``data`` (all or nothing)."""
    names = [t.name for t in data.tables]
    with psycopg.connect(libpq_url(url)) as conn, conn.cursor() as cur:
        targets = sql.SQL(", ").join(sql.Identifier(SCHEMA, n) for n in [*names, "cases"])
        cur.execute(sql.SQL("TRUNCATE {} CASCADE").format(targets))
        for table in data.tables:
            started = time.perf_counter()
            copy_table(cur, SCHEMA, table.name, table.columns, table.rows)
            progress(
                f"  {table.name:<22} {len(table.rows):>8,} rows  "
                f"{time.perf_counter() - started:5.1f} s"
            )
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        conn.execute("ANALYZE")
    return data.counts()


def load(url: str, size: Size, progress: Progress = print) -> dict[str, int]:
    """Generate and load ``size`` sample data; returns rows per table."""
    started = time.perf_counter()
    progress(f"Generating Dafeng sample data ({size}) …")
    data = build(size)
    progress(f"  generated in {time.perf_counter() - started:.1f} s; loading with COPY …")
    counts = write(url, data, progress)
    progress(f"Loaded {sum(counts.values()):,} rows in {time.perf_counter() - started:.1f} s")
    return counts
