"""Run an import: read the file, check every feature, then write all or nothing."""

from __future__ import annotations

from pathlib import Path

import psycopg

from layers.base import default_registry
from layers.registry import LayerRegistry
from spatial.db import libpq_url
from spatial.errors import DatabaseUnavailable, FieldIssue, InvalidInput
from spatial.importer.context import build_context
from spatial.importer.features import process_all
from spatial.importer.options import ImportOptions, ImportReport, check_options
from spatial.importer.sources import read_source
from spatial.importer.writer import check_keys, write


def import_file(
    url: str, path: Path | str, options: ImportOptions, registry: LayerRegistry | None = None
) -> ImportReport:
    """Import ``path`` into ``options.layer`` in one transaction; raise InvalidInput on errors."""
    path = Path(path)
    check_options(options)
    spec = (registry if registry is not None else default_registry()).get(options.layer)
    source = read_source(path, options)
    if not source.records:
        issue = FieldIssue(field="file", message="file has no features")
        raise InvalidInput(f"{path.name}: file has no features", errors=[issue])
    report = ImportReport(
        layer=spec.id,
        file=path.name,
        driver=source.driver,
        features_read=len(source.records),
        encoding=source.encoding,
        warnings=list(source.warnings),
        mode=options.mode,
    )
    with _connect(url) as conn:
        ctx = build_context(conn, spec, source, options, path, report)
        rows = process_all(source, ctx, report)
        check_keys(conn, ctx, rows, path)
        report.deleted = write(conn, spec, rows, options.mode, path)
    report.features_loaded = len(rows)
    return report


def _connect(url: str) -> psycopg.Connection:
    """Autocommit connection (the write opens its own transaction)."""
    try:
        return psycopg.connect(libpq_url(url), autocommit=True)
    except psycopg.OperationalError as exc:
        raise DatabaseUnavailable(f"cannot connect to the database: {exc}") from exc
