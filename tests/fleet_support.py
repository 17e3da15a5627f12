"""Helpers for the fleet tests: async connections, fixes near the sample sites, API keys."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import psycopg

from spatial.db import libpq_url

T = TypeVar("T")


def run_db(url: str, work: Callable[[psycopg.AsyncConnection], Awaitable[T]]) -> T:
    """Run ``work(conn)`` on a fresh autocommit async connection."""

    async def main() -> T:
        async with await psycopg.AsyncConnection.connect(libpq_url(url), autocommit=True) as c:
            return await work(c)

    return asyncio.run(main())


def query(url: str, sql: str, *args: Any) -> list[tuple]:
    """Rows of a synchronous query."""
    with psycopg.connect(libpq_url(url)) as conn:
        return conn.execute(sql, args).fetchall()


def terminal_of(url: str, vehicle_id: int) -> str:
    """The terminal id of a sample vehicle."""
    return query(
        url, "SELECT terminal_id FROM city.fleet_terminals WHERE vehicle_id = %s", vehicle_id
    )[0][0]


def fix(terminal: str, at: datetime, lon: float, lat: float, **extra: Any) -> dict[str, Any]:
    """One fix as a terminal sends it."""
    return {"terminal_id": terminal, "device_time": at.isoformat(), "lon": lon, "lat": lat, **extra}


def drive(
    terminal: str,
    start: datetime,
    n: int,
    lon: float = 120.45,
    lat: float = 33.18,
    step_s: int = 20,
    step_deg: float = 0.001,
    **extra: Any,
) -> list[dict[str, Any]]:
    """``n`` fixes eastwards, ``step_deg`` (≈ 93 m) every ``step_s`` seconds (≈ 17 km/h)."""
    return [
        fix(
            terminal,
            start + timedelta(seconds=step_s * k),
            lon + step_deg * k,
            lat,
            **{"speed_kmh": 17.0, **extra},
        )
        for k in range(n)
    ]


def recent(minutes: int = 60) -> datetime:
    """A time ``minutes`` ago (UTC, whole seconds)."""
    return datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=minutes)


def api_key(url: str, scopes: list[str]) -> str:
    """A fresh API key on the database ``url`` (same key directory as the app)."""
    from spatial.security.accounts import Accounts
    from spatial.security.keystore import KeyStore
    from spatial.settings import SecuritySettings

    settings = SecuritySettings()
    accounts = Accounts(KeyStore.ensure(settings.key_dir), settings)

    async def work(conn: psycopg.AsyncConnection) -> str:
        return (await accounts.create_api_key(conn, "fleet-test", scopes, "pytest"))[1]

    return run_db(url, work)


def clear_vehicle(url: str, vehicle_id: int) -> None:
    """Forget a sample vehicle's fixes and latest position (tests start from nothing)."""
    with psycopg.connect(libpq_url(url)) as conn:
        conn.execute("DELETE FROM city.telemetry_fixes WHERE vehicle_id = %s", (vehicle_id,))
        conn.execute("DELETE FROM city.vehicle_latest WHERE vehicle_id = %s", (vehicle_id,))
