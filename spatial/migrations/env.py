"""Alembic environment: migrations for the ``city`` schema, run with a URL from the CLI."""

from __future__ import annotations

from alembic import context
from sqlalchemy import text

from spatial.db import make_engine
from spatial.models import SCHEMA, Base

IGNORED_TABLES = {"spatial_ref_sys"}


def include_object(
    obj: object, name: str | None, type_: str, reflected: bool, compare_to: object
) -> bool:
    """Only our schema's tables; PostGIS's own tables are not ours to migrate."""
    if type_ == "table":
        return name not in IGNORED_TABLES and getattr(obj, "schema", None) == SCHEMA
    return True


def run_migrations_online() -> None:
    """Run migrations in one transaction on the configured URL."""
    url = context.config.get_main_option("sqlalchemy.url")
    engine = make_engine(url)
    with engine.connect() as conn:
        conn.execute(text("CREATE EXTENSION IF NOT EXISTS postgis"))
        conn.execute(text(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}"))
        conn.commit()
        context.configure(
            connection=conn,
            target_metadata=Base.metadata,
            include_schemas=True,
            include_object=include_object,
            version_table_schema=SCHEMA,
        )
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


run_migrations_online()
