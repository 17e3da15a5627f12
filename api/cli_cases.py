"""``cityops cases …``: notification delivery, timers, exports."""

from __future__ import annotations

import asyncio
import json
from typing import Annotated, Any

import typer

cases_app = typer.Typer(help="Case workflow (案卷) utilities.", no_args_is_help=True)

HttpUrl = Annotated[
    str | None,
    typer.Option("--http-url", help="POST each SMS as JSON to this URL (default: record in DB)"),
]
Limit = Annotated[int, typer.Option("--limit", min=1, help="at most this many messages")]


def _gateway(http_url: str | None) -> Any:
    from layers.cases.notify import DatabaseGateway, HttpGateway

    return HttpGateway(http_url) if http_url else DatabaseGateway()


async def _connect() -> Any:
    import psycopg

    from spatial.db import libpq_url
    from spatial.settings import DatabaseSettings

    url = libpq_url(DatabaseSettings().resolved_url())
    return await psycopg.AsyncConnection.connect(
        url, autocommit=True, options="-c search_path=city,public"
    )


async def _deliver(http_url: str | None, limit: int) -> dict[str, Any]:
    from layers.cases.notify import deliver_pending

    conn = await _connect()
    async with conn:
        report = await deliver_pending(conn, _gateway(http_url), limit)
    return {**report.as_dict(), "errors": report.errors[:20]}


async def _timers(http_url: str | None, limit: int) -> dict[str, Any]:
    import importlib

    from layers.cases.notify import deliver_pending

    timers = importlib.import_module("layers.cases.timers")
    conn = await _connect()
    async with conn:
        scanned = await timers.scan(conn)
        report = await deliver_pending(conn, _gateway(http_url), limit)
    return {"scan": _summary(scanned), "delivery": report.as_dict(), "errors": report.errors[:20]}


def _summary(scanned: Any) -> Any:
    """A scan result as JSON: counts, and the number of cases found instead of the list."""
    import dataclasses

    if not dataclasses.is_dataclass(scanned) or isinstance(scanned, type):
        return scanned
    out = {f.name: getattr(scanned, f.name) for f in dataclasses.fields(scanned)}
    if isinstance(out.get("items"), list):
        out["items"] = len(out["items"])
    return out


@cases_app.command("notify")
def notify_command(http_url: HttpUrl = None, limit: Limit = 500) -> None:
    """Deliver pending business SMS (业务短信) through the database or an HTTP gateway."""
    out = asyncio.run(_deliver(http_url, limit))
    typer.echo(json.dumps(out, ensure_ascii=False))


@cases_app.command("timers")
def timers_command(http_url: HttpUrl = None, limit: Limit = 500) -> None:
    """Scan stage timers (即将超时/超时 reminders), then deliver the messages."""
    out = asyncio.run(_timers(http_url, limit))
    typer.echo(json.dumps(out, ensure_ascii=False, default=str))
