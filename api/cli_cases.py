"""``cityops cases …``: notification delivery, timers, exports."""

from __future__ import annotations

import typer

cases_app = typer.Typer(help="Case workflow (案卷) utilities.", no_args_is_help=True)
