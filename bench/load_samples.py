"""Benchmark: loading components with COPY (our loader) vs SQLAlchemy ORM inserts (the peer).

Both load the same generated rows into the same empty, migrated database in one run, so the
ratio is what matters. Usage (the local cluster must be up: ``cityops db up``)::

    .venv/bin/python bench/load_samples.py [--rows 20000]
"""

from __future__ import annotations

import argparse
import time
import uuid

import psycopg
from sqlalchemy.orm import Session

from data_samples.generate import PART_COLUMNS, build
from data_samples.load import copy_table
from spatial.db import drop_database, ensure_database, libpq_url, make_engine
from spatial.migrate import upgrade
from spatial.models import Part
from spatial.settings import DatabaseSettings


def _database(server_url: str) -> str:
    from sqlalchemy.engine import make_url

    name = f"cityops_bench_{uuid.uuid4().hex[:6]}"
    return make_url(server_url).set(database=name).render_as_string(hide_password=False)


def _prepare(url: str) -> list[tuple]:
    """Migrate, load the reference tables and grids; return component rows to load."""
    data = build("full")
    with psycopg.connect(libpq_url(url)) as conn, conn.cursor() as cur:
        for table in data.tables:
            if table.name != "parts":
                copy_table(cur, "city", table.name, table.columns, table.rows)
    return data.table("parts").rows


def _truncate(url: str) -> None:
    with psycopg.connect(libpq_url(url)) as conn:
        conn.execute("TRUNCATE city.parts CASCADE")


def time_copy(url: str, rows: list[tuple]) -> float:
    """Seconds to COPY ``rows``."""
    started = time.perf_counter()
    with psycopg.connect(libpq_url(url)) as conn, conn.cursor() as cur:
        copy_table(cur, "city", "parts", PART_COLUMNS, rows)
    return time.perf_counter() - started


def time_orm(url: str, rows: list[tuple]) -> float:
    """Seconds to insert ``rows`` as ORM objects in one session (``add_all`` + commit)."""
    engine = make_engine(url)
    started = time.perf_counter()
    with Session(engine) as session:
        session.add_all(Part(**dict(zip(PART_COLUMNS, row, strict=True))) for row in rows)
        session.commit()
    elapsed = time.perf_counter() - started
    engine.dispose()
    return elapsed


def main() -> None:
    """Run both loaders on the same rows and print the ratio."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=20_000)
    args = parser.parse_args()
    url = _database(DatabaseSettings().resolved_url())
    ensure_database(url)
    try:
        upgrade(url)
        rows = _prepare(url)[: args.rows]
        copy_s = time_copy(url, rows)
        _truncate(url)
        orm_s = time_orm(url, rows)
    finally:
        drop_database(url)
    print(f"rows                 {len(rows):>10,}")
    print(f"COPY (cityops)       {copy_s:>9.2f} s  {len(rows) / copy_s:>10,.0f} rows/s")
    print(f"ORM add_all (peer)   {orm_s:>9.2f} s  {len(rows) / orm_s:>10,.0f} rows/s")
    print(f"ratio ORM / COPY     {orm_s / copy_s:>9.1f}x")


if __name__ == "__main__":
    main()
