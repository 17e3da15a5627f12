"""``cityops audit``: verify the audit trail's hash chain, export it (日志导出)."""

from __future__ import annotations

import csv
import getpass
import json
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer

from spatial.errors import CityError

if TYPE_CHECKING:
    import psycopg

audit_app = typer.Typer(
    help="Audit trail (审计日志): verify the SM3 hash chain, export entries.",
    no_args_is_help=True,
)

EXIT_TAMPERED = 1
EXIT_USAGE = 2


def _url() -> str:
    from spatial.db import libpq_url
    from spatial.settings import DatabaseSettings

    return libpq_url(DatabaseSettings().resolved_url())


def _usage(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(EXIT_USAGE)


def _entries(count: int) -> str:
    return f"{count} entr{'y' if count == 1 else 'ies'}"


def _operator() -> str:
    """The operating-system user running the command."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def _when(value: str | None, flag: str) -> datetime | None:
    """ISO 8601 date or time; without an offset it is the server's local time."""
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        _usage(f"{flag} must be ISO 8601, e.g. 2026-12-01 or 2026-12-01T08:00+08:00")
    return parsed if parsed.tzinfo else parsed.astimezone()


@audit_app.command("verify")
def verify_cmd(
    expect_head: Annotated[
        str | None,
        typer.Option(
            "--expect-head",
            metavar="SEQ:HASH",
            help="a head printed by an earlier verify; it must still be in the log",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Recompute every hash and link; exit 0 when intact, 1 when tampered.

    Publish the printed head (e.g. in an external log); passing it back later with
    --expect-head also detects removal of the newest entries.
    """
    import psycopg

    from spatial.security.audit import parse_head, verify_sync

    try:
        expected = parse_head(expect_head) if expect_head else None
    except CityError as exc:
        _usage(str(exc))
    with psycopg.connect(_url(), autocommit=True) as conn:
        report = verify_sync(conn, expected)
    if as_json:
        typer.echo(json.dumps(report.as_dict(), ensure_ascii=False))
    elif report.ok:
        typer.echo(f"audit log intact: {_entries(report.count)}, head {report.head or '(empty)'}")
    else:
        typer.echo(
            f"audit log TAMPERED: first bad seq {report.first_bad_seq}: {report.reason}"
            f" ({_entries(report.count)}, head {report.head or '(empty)'})"
        )
    if not report.ok:
        raise typer.Exit(EXIT_TAMPERED)


@audit_app.command("export")
def export_cmd(
    out: Annotated[Path, typer.Option("--out", help="file to write", dir_okay=False)],
    since: Annotated[str | None, typer.Option(help="from this time on (ISO 8601)")] = None,
    until: Annotated[str | None, typer.Option(help="before this time (ISO 8601)")] = None,
    fmt: Annotated[str, typer.Option("--format", help="jsonl (exact) or csv")] = "jsonl",
) -> None:
    """Export entries in seq order; the export itself is recorded (audit.export)."""
    import psycopg

    from spatial.security.audit import AUDIT_EXPORT, record_sync, system_event

    if fmt not in ("jsonl", "csv"):
        _usage("--format must be jsonl or csv")
    start, end = _when(since, "--since"), _when(until, "--until")
    with psycopg.connect(_url()) as conn:  # one transaction: the export and its record
        count = _write(conn, out, fmt, start, end)
        record_sync(
            conn,
            system_event(
                AUDIT_EXPORT,
                actor=f"cli:{_operator()}",
                target_type="audit_log",
                detail={
                    "format": fmt,
                    "out": str(out.resolve()),
                    "since": start,
                    "until": end,
                    "rows": count,
                },
            ),
        )
    typer.echo(f"exported {_entries(count)} to {out}")


def _write(
    conn: psycopg.Connection, out: Path, fmt: str, since: datetime | None, until: datetime | None
) -> int:
    from spatial.security.audit import COLUMNS, CSV_HEADERS, csv_row, iter_entries_sync, jsonl_line

    count = 0
    entries = iter_entries_sync(conn, since=since, until=until)
    # utf-8-sig: spreadsheets (WPS, Excel) then read the Chinese headers correctly.
    with out.open("w", encoding="utf-8-sig" if fmt == "csv" else "utf-8", newline="") as fh:
        if fmt == "csv":
            writer = csv.writer(fh)
            writer.writerow([CSV_HEADERS[c] for c in COLUMNS])
            for entry in entries:
                writer.writerow(csv_row(entry))
                count += 1
        else:
            for entry in entries:
                fh.write(jsonl_line(entry))
                count += 1
    return count
