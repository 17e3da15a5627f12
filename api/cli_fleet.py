"""``cityops fleet …``: the MQTT consumer, the local broker, registry import/export."""

from __future__ import annotations

import asyncio
import json
import os
import signal
from pathlib import Path
from typing import Annotated

import typer

fleet_app = typer.Typer(help="Fleet and telemetry (车辆监管).", no_args_is_help=True)
broker_app = typer.Typer(help="Project-local Mosquitto under var/mosquitto.", no_args_is_help=True)
fleet_app.add_typer(broker_app, name="broker")

ENTITIES = (
    "companies",
    "sites",
    "vehicles",
    "drivers",
    "terminals",
    "permits",
    "routes",
    "bindings",
)


def _db_url() -> str:
    from spatial.settings import Settings

    return Settings().db.resolved_url()


@broker_app.command("up")
def broker_up() -> None:
    """Start the project-local mosquitto (unless MQTT_URL is set) and remember its URL."""
    from layers.fleet.broker import LOCAL_DIR, LOCAL_URL_FILE, LocalBroker

    if os.environ.get("MQTT_URL"):
        typer.echo("Using MQTT_URL; no local broker started.")
        return
    url = LocalBroker(LOCAL_DIR).ensure_running()
    LOCAL_URL_FILE.parent.mkdir(parents=True, exist_ok=True)
    LOCAL_URL_FILE.write_text(url + "\n")
    typer.echo(f"MQTT broker ready: {url}")


@broker_app.command("down")
def broker_down() -> None:
    """Stop the project-local mosquitto and forget its URL."""
    from layers.fleet.broker import LOCAL_DIR, LOCAL_URL_FILE, LocalBroker

    LocalBroker(LOCAL_DIR).stop()
    LOCAL_URL_FILE.unlink(missing_ok=True)
    typer.echo("Stopped.")


@fleet_app.command("mqtt")
def mqtt(
    broker: Annotated[str | None, typer.Option(help="mqtt://host:port (MQTT_URL)")] = None,
    client_id: Annotated[str, typer.Option(help="persistent session id")] = "",
    batch_size: int = 2000,
    batch_seconds: float = 0.5,
) -> None:
    """Run the telemetry consumer (cityops/telemetry/+) until SIGINT/SIGTERM."""
    from layers.fleet.broker import broker_url
    from layers.fleet.mqtt import CLIENT_ID, TelemetryConsumer

    consumer = TelemetryConsumer(
        _db_url(),
        broker or broker_url(),
        client_id=client_id or CLIENT_ID,
        batch_size=batch_size,
        batch_seconds=batch_seconds,
    )

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        stats = await consumer.run(stop)
        typer.echo(json.dumps(stats.as_dict(), ensure_ascii=False))

    typer.echo(f"Consuming {consumer.topic} from {consumer.host}:{consumer.port} …")
    asyncio.run(main())


@fleet_app.command("import")
def import_(
    entity: Annotated[str, typer.Argument(help=", ".join(ENTITIES))],
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False)],
    crs: Annotated[str, typer.Option(help="cgcs2000, wgs84, gcj02, bd09")] = "cgcs2000",
) -> None:
    """Import a CSV/XLSX of one registry entity; prints the report (bad rows with fields)."""
    import psycopg

    from layers.fleet.imports import import_rows, read_table
    from spatial.crs import parse_client_crs
    from spatial.db import libpq_url

    rows = read_table(file.read_bytes(), file.name)

    async def main() -> dict:
        url = libpq_url(_db_url())
        async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
            report = await import_rows(conn, entity, rows, parse_client_crs(crs))
        return report.as_dict()

    report = asyncio.run(main())
    typer.echo(json.dumps(report, ensure_ascii=False, indent=1))
    if report["rejected"]:
        raise typer.Exit(1)


@fleet_app.command("export")
def export(
    entity: Annotated[str, typer.Argument(help=", ".join(ENTITIES))],
    out: Annotated[Path, typer.Option("--out", help=".csv or .xlsx")],
) -> None:
    """Export one registry entity in the import format."""
    import psycopg

    from layers.fleet.imports import export_rows, to_csv, to_xlsx
    from spatial.db import libpq_url

    async def main() -> tuple[list[str], list[tuple]]:
        url = libpq_url(_db_url())
        async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
            return await export_rows(conn, entity)

    header, rows = asyncio.run(main())
    data = to_xlsx(entity, header, rows) if out.suffix == ".xlsx" else to_csv(header, rows)
    out.write_bytes(data)
    typer.echo(f"{len(rows)} rows → {out}")
