"""Process every feature (geometry, attributes, derived columns, checks); collect issues."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from shapely import Geometry

from layers.registry import LayerSpec
from spatial.errors import FieldIssue, UnprocessableInput
from spatial.importer.checks import complete
from spatial.importer.context import Context
from spatial.importer.convert import coerce
from spatial.importer.crs import geoms_to_storage
from spatial.importer.derived import derive, derive_part
from spatial.importer.geometry import check_geometry
from spatial.importer.options import ImportReport
from spatial.importer.records import Record, Source

MAX_ERRORS: Final = 100


@dataclass
class Row:
    """A checked feature ready for COPY."""

    number: int
    values: dict[str, Any]


@dataclass
class Outcome:
    """The result of processing one feature."""

    row: dict[str, Any]
    issues: list[FieldIssue]
    repaired: bool = False


def process_all(source: Source, ctx: Context, report: ImportReport) -> list[Row]:
    """Process every feature; raise UnprocessableInput listing all problems."""
    geoms = geoms_to_storage([r.geometry for r in source.records], ctx.crs)
    rows: list[Row] = []
    issues: list[FieldIssue] = []
    failed = 0
    for record, geom in zip(source.records, geoms, strict=True):
        outcome = process_feature(record, geom, ctx)
        if outcome.repaired:
            report.repaired.append(record.number)
        if outcome.issues:
            failed += 1
            issues += outcome.issues
        else:
            rows.append(Row(record.number, outcome.row))
    if issues:
        raise feature_errors(report.file, ctx.spec, len(source.records), failed, issues)
    return rows


def feature_errors(
    file: str, spec: LayerSpec, total: int, failed: int, issues: list[FieldIssue]
) -> UnprocessableInput:
    """One error listing (up to MAX_ERRORS) per-feature issues."""
    shown = (
        f"; first {MAX_ERRORS} of {len(issues)} errors listed" if len(issues) > MAX_ERRORS else ""
    )
    return UnprocessableInput(
        f"{file}: {failed} of {total} features rejected{shown}; nothing was imported into "
        f"layer {spec.id}",
        errors=issues[:MAX_ERRORS],
    )


def process_feature(record: Record, geom: Geometry | None, ctx: Context) -> Outcome:
    """Check and complete one feature (geometry already in EPSG:4490)."""
    n = record.number
    if record.error is not None:
        shape, issues, repaired = None, [record.error], False
    else:
        shape, issues, repaired = check_geometry(geom, n, ctx)
    row, attr_issues = _attributes(record, ctx)
    issues += attr_issues
    if ctx.spec.table == "parts":
        issues += derive_part(row, n, ctx.ref)
    if shape is not None:
        issues += derive(row, shape, n, ctx)
    issues += complete(row, n, ctx, skip=ctx.derived if issues else set())
    row[ctx.spec.geom] = shape
    return Outcome(row=row, issues=issues, repaired=repaired)


def _attributes(record: Record, ctx: Context) -> tuple[dict[str, Any], list[FieldIssue]]:
    """Coerce mapped properties to column types."""
    row: dict[str, Any] = {}
    issues: list[FieldIssue] = []
    for name, column in ctx.mapping.items():
        try:
            row[column] = coerce(record.props.get(name), ctx.columns[column])
        except ValueError as exc:
            issues.append(FieldIssue(field=column, message=str(exc), feature=record.number))
    return row, issues
