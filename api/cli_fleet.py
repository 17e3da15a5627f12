"""``cityops fleet …``: the MQTT consumer, registry import/export, simulator."""

from __future__ import annotations

import typer

fleet_app = typer.Typer(help="Fleet and telemetry (车辆监管).", no_args_is_help=True)
