"""The ``cityops`` command line: database, sample data, import and the server."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from api.cli_audit import audit_app
from api.cli_cases import cases_app
from api.cli_fleet import fleet_app
from api.cli_identity import keys_app, users_app, users_demo
from api.cli_redis import redis_app
from spatial.errors import CityError

app = typer.Typer(
    help="cityops — 大丰区城市运行管理服务平台 spatial server.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(
    help="Database: start the local cluster, migrate, report.", no_args_is_help=True
)
samples_app = typer.Typer(help="Deterministic Dafeng sample data.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(samples_app, name="samples")
app.add_typer(redis_app, name="redis")
app.add_typer(audit_app, name="audit")
app.add_typer(keys_app, name="keys")
app.add_typer(users_app, name="users")
app.add_typer(cases_app, name="cases")
app.add_typer(fleet_app, name="fleet")

LOCAL_DB_NAME = "cityops"


def _url() -> str:
    from spatial.settings import DatabaseSettings

    return DatabaseSettings().resolved_url()


def _fail(error: CityError) -> None:
    typer.echo(f"error: {error}", err=True)
    for issue in error.errors[:50]:
        where = f"feature {issue.feature}: " if issue.feature is not None else ""
        typer.echo(f"  - {where}{issue.field}: {issue.message}", err=True)
    raise typer.Exit(2)


@db_app.command("up")
def db_up() -> None:
    """Start the project-local PostGIS cluster under var/pg (unless DATABASE_URL is set)."""
    from spatial.cluster import Cluster
    from spatial.db import ensure_database
    from spatial.settings import LOCAL_CLUSTER_DIR, LOCAL_URL_FILE

    if os.environ.get("DATABASE_URL"):
        ensure_database(os.environ["DATABASE_URL"])
        typer.echo("Using DATABASE_URL; no local cluster started.")
        return
    cluster = Cluster(LOCAL_CLUSTER_DIR)
    cluster.ensure_running()
    url = cluster.url(LOCAL_DB_NAME)
    ensure_database(url)
    LOCAL_URL_FILE.write_text(url + "\n")
    typer.echo(f"PostGIS cluster ready: {url}")


@db_app.command("down")
def db_down() -> None:
    """Stop the project-local cluster."""
    from spatial.cluster import Cluster
    from spatial.settings import LOCAL_CLUSTER_DIR

    cluster = Cluster(LOCAL_CLUSTER_DIR)
    if cluster.initialised() and cluster._live_port():
        cluster.stop()
        typer.echo("Stopped.")


@db_app.command("migrate")
def db_migrate(revision: str = "head") -> None:
    """Apply Alembic migrations."""
    from spatial.migrate import upgrade

    upgrade(_url(), revision)
    typer.echo(f"Database migrated to {revision}.")


@db_app.command("status")
def db_status(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Row counts per layer and components per major class."""
    from layers.base import default_registry
    from spatial.status import database_status

    status = database_status(_url(), default_registry())
    if as_json:
        typer.echo(json.dumps(status, ensure_ascii=False))
        return
    for layer, count in status["layers"].items():
        typer.echo(f"{layer:<22}{count:>10,}")
    typer.echo(
        "parts by major: " + ", ".join(f"{k}={v:,}" for k, v in status["parts_by_major"].items())
    )


@samples_app.command("load")
def samples_load(
    size: Annotated[str, typer.Option(help="small (tests) or full (the tender's counts)")] = "full",
    if_empty: Annotated[bool, typer.Option("--if-empty", help="skip when data exists")] = False,
) -> None:
    """Generate and load the Dafeng sample data (replaces existing sample tables)."""
    from data_samples.load import is_empty, load

    if size not in ("small", "full"):
        typer.echo("error: --size must be small or full", err=True)
        raise typer.Exit(2)
    url = _url()
    if if_empty and not is_empty(url):
        typer.echo("Sample data already loaded; skipping (drop --if-empty to reload).")
        return
    load(url, size)  # type: ignore[arg-type]
    users_demo(if_empty=False)  # the demo users of the README, with this sample
    from data_samples.modules import load_module_samples

    for table, rows in load_module_samples(url, size).items():
        typer.echo(f"  {table:<22} {rows:>8,} rows")


@samples_app.command("basemaps")
def samples_basemaps(
    directory: Annotated[
        Path | None, typer.Option("--dir", help="output directory (default CITY_BASEMAP_DIR)")
    ] = None,
    resolution: Annotated[
        float | None, typer.Option(help="degrees per pixel (default CITY_BASEMAP_RESOLUTION)")
    ] = None,
    if_missing: Annotated[
        bool, typer.Option("--if-missing", help="skip when every basemap exists")
    ] = False,
) -> None:
    """Render the light and dark Dafeng basemaps from the base layers into COGs."""
    from data_samples.basemap import build_basemaps, missing_basemaps
    from spatial.settings import BasemapSettings

    settings = BasemapSettings()
    target = directory or settings.dir
    if if_missing and not missing_basemaps(target):
        typer.echo(f"Basemaps already in {target}; skipping (drop --if-missing to rebuild).")
        return
    if resolution is not None and not 0 < resolution <= 0.01:
        typer.echo("error: --resolution must be in (0, 0.01] degrees", err=True)
        raise typer.Exit(2)
    build_basemaps(_url(), target, resolution or settings.resolution)


@app.command("import")
def import_cmd(
    file: Annotated[Path, typer.Argument(help="Shapefile, GeoJSON, GPKG, CSV (or .zip)")],
    layer: Annotated[str, typer.Option(help="target layer id, e.g. parts, roads, pois")],
    crs: Annotated[str | None, typer.Option(help="source CRS when the file lacks one")] = None,
    encoding: Annotated[str | None, typer.Option(help="attribute encoding, e.g. GBK")] = None,
    invalid: Annotated[str, typer.Option(help="repair or reject invalid geometries")] = "repair",
    mode: Annotated[str, typer.Option(help="append or replace the layer's rows")] = "append",
    sublayer: Annotated[str | None, typer.Option(help="layer inside a GPKG")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Import a vector file into a layer: all features or none."""
    from spatial.importer import ImportOptions, import_file

    options = ImportOptions(
        layer=layer,
        source_crs=crs,
        encoding=encoding,
        invalid=_choice(invalid, ("repair", "reject"), "--invalid"),
        mode=_choice(mode, ("append", "replace"), "--mode"),
        sublayer=sublayer,
    )
    try:
        report = import_file(_url(), file, options)
    except CityError as exc:
        _fail(exc)
        return
    typer.echo(json.dumps(report.as_dict(), ensure_ascii=False) if as_json else report.summary())


def _choice(value: str, allowed: tuple[str, ...], flag: str) -> Any:
    if value not in allowed:
        typer.echo(f"error: {flag} must be one of {', '.join(allowed)}", err=True)
        raise typer.Exit(2)
    return value


@app.command("serve")
def serve(
    host: str = "127.0.0.1",
    port: Annotated[int, typer.Option(envvar="PORT")] = 8000,
    workers: int = 1,
) -> None:
    """Serve the API (uvicorn)."""
    import uvicorn

    _url()  # fail fast with a clear message when no database is configured
    os.environ.setdefault("CITY_FLEET_BACKGROUND", "true")  # MQTT telemetry + fleet scans
    typer.echo(f"cityops on http://{host}:{port}  (OpenAPI: http://{host}:{port}/docs)")
    uvicorn.run(
        "api.app:create_app", host=host, port=port, workers=workers, factory=True, log_level="info"
    )


def main() -> None:
    """Entry point that turns configuration errors into a clear message."""
    try:
        app()
    except CityError as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(2)
