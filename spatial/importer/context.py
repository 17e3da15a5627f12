"""What the per-feature pipeline needs, gathered once per import."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

from layers.registry import LayerSpec
from spatial.importer.crs import SourceCRS, resolve_crs
from spatial.importer.fields import (
    check_required_columns,
    derivable,
    layer_defaults,
    map_fields,
    needed_columns,
)
from spatial.importer.options import ImportOptions, ImportReport
from spatial.importer.records import Source
from spatial.importer.reference import Reference, load_reference
from spatial.importer.schema import Column, table_columns


@dataclass
class Context:
    """Everything the per-feature pipeline needs."""

    spec: LayerSpec
    options: ImportOptions
    columns: dict[str, Column]
    mapping: dict[str, str]
    crs: SourceCRS
    ref: Reference
    defaults: dict[str, Any]
    needed: list[str] = field(default_factory=list)
    derived: set[str] = field(default_factory=set)


def build_context(
    conn: psycopg.Connection,
    spec: LayerSpec,
    source: Source,
    options: ImportOptions,
    path: Path,
    report: ImportReport,
) -> Context:
    """Inspect the table, map fields, resolve the CRS and load reference data."""
    columns = table_columns(conn, spec)
    mapping = map_fields(source, spec, columns, report.warnings)
    defaults = layer_defaults(spec, columns)
    check_required_columns(spec, columns, mapping, defaults, source, path)
    crs = resolve_crs(source, options, path, report.warnings)
    report.source_crs = crs.label
    ref = load_reference(conn, spec, columns, report.warnings)
    return Context(
        spec,
        options,
        columns,
        mapping,
        crs,
        ref,
        defaults,
        needed=needed_columns(spec, columns),
        derived=derivable(spec, columns),
    )
