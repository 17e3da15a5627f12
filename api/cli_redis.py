"""``cityops redis up|down``: the project-local Redis that holds the shared rate limits."""

from __future__ import annotations

import os

import typer

redis_app = typer.Typer(
    help="Redis for rate limits: start or stop the project-local server.", no_args_is_help=True
)


@redis_app.command("up")
def redis_up() -> None:
    """Start the project-local redis-server under var/redis (unless REDIS_URL is set)."""
    from spatial.redisd import LocalRedis
    from spatial.settings import LOCAL_REDIS_DIR, LOCAL_REDIS_URL_FILE

    if os.environ.get("REDIS_URL") or os.environ.get("CITY_LIMITS_REDIS_URL"):
        typer.echo("Using REDIS_URL; no local Redis started.")
        return
    url = LocalRedis(LOCAL_REDIS_DIR).ensure_running()
    LOCAL_REDIS_URL_FILE.parent.mkdir(parents=True, exist_ok=True)
    LOCAL_REDIS_URL_FILE.write_text(url + "\n")
    typer.echo(f"Redis ready: {url}")


@redis_app.command("down")
def redis_down() -> None:
    """Stop the project-local redis-server and forget its URL."""
    from spatial.redisd import LocalRedis
    from spatial.settings import LOCAL_REDIS_DIR, LOCAL_REDIS_URL_FILE

    server = LocalRedis(LOCAL_REDIS_DIR)
    if server.running():
        server.stop()
        typer.echo("Stopped.")
    LOCAL_REDIS_URL_FILE.unlink(missing_ok=True)
