"""Engines and pools: SQLAlchemy 2 over psycopg 3 (CLI, loaders); a psycopg async pool (API)."""

from __future__ import annotations

from psycopg_pool import AsyncConnectionPool
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url

DRIVER = "postgresql+psycopg"


def sqlalchemy_url(url: str) -> str:
    """Normalise ``postgresql://`` / ``postgres://`` URLs to the psycopg 3 dialect."""
    parsed = make_url(url)
    if parsed.drivername in {"postgresql", "postgres", "postgresql+psycopg2"}:
        parsed = parsed.set(drivername=DRIVER)
    return parsed.render_as_string(hide_password=False)


def libpq_url(url: str) -> str:
    """Return the plain libpq form of a URL (for psycopg.connect and command-line tools)."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def make_engine(url: str, **kwargs: object) -> Engine:
    """Create a synchronous engine."""
    return create_engine(sqlalchemy_url(url), pool_pre_ping=True, **kwargs)  # type: ignore[arg-type]


def make_pool(
    url: str, max_size: int = 10, statement_timeout_ms: int = 30_000
) -> AsyncConnectionPool:
    """Create the API's async connection pool (opened by the app lifespan)."""
    options = f"-c statement_timeout={statement_timeout_ms} -c search_path=city,public"
    return AsyncConnectionPool(
        libpq_url(url),
        check=AsyncConnectionPool.check_connection,
        min_size=1,
        max_size=max_size,
        open=False,
        kwargs={"options": options, "autocommit": True},
    )


def _on_maintenance_db(url: str, statement: str, check: str | None = None) -> None:
    """Run ``statement`` (formatted with the database name) on the server's ``postgres`` db."""
    target = make_url(sqlalchemy_url(url))
    admin = make_engine(
        target.set(database="postgres").render_as_string(hide_password=False),
        isolation_level="AUTOCOMMIT",
    )
    try:
        with admin.connect() as conn:
            if check and conn.scalar(text(check), {"n": target.database}):
                return
            conn.exec_driver_sql(statement.format(name=target.database))
    finally:
        admin.dispose()


def ensure_database(url: str) -> None:
    """Create the database named in ``url`` when the server lacks it."""
    _on_maintenance_db(
        url, 'CREATE DATABASE "{name}"', check="SELECT 1 FROM pg_database WHERE datname = :n"
    )


def drop_database(url: str) -> None:
    """Drop the database named in ``url`` (throwaway test databases)."""
    _on_maintenance_db(url, 'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
