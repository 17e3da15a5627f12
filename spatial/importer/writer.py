"""Write checked rows: key checks, then DELETE (replace mode) and COPY in one transaction."""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Final

import psycopg
import shapely
from psycopg import sql
from shapely import Geometry

from layers.registry import LayerSpec
from spatial.errors import FieldIssue, UnprocessableInput
from spatial.importer.context import Context
from spatial.importer.features import Row, feature_errors
from spatial.importer.options import STORAGE_SRID


def check_keys(conn: psycopg.Connection, ctx: Context, rows: list[Row], path: Path) -> None:
    """Duplicate primary keys and unknown foreign keys, named per feature."""
    issues = _duplicate_keys(conn, ctx, rows) + _foreign_key_issues(conn, ctx.spec, rows)
    issues.sort(key=lambda i: i.feature or 0)
    if issues:
        failed = len({i.feature for i in issues})
        raise feature_errors(path.name, ctx.spec, len(rows), failed, issues)


def _duplicate_keys(conn: psycopg.Connection, ctx: Context, rows: list[Row]) -> list[FieldIssue]:
    """Primary keys repeated in the file or (when appending) already in the table."""
    pk = ctx.spec.pk
    seen: dict[Any, int] = {}
    issues: list[FieldIssue] = []
    for row in rows:
        key = row.values.get(pk)
        if key is None:
            continue
        if key in seen:
            issues.append(
                FieldIssue(
                    field=pk,
                    feature=row.number,
                    message=(f"duplicate {pk} {key} (also feature {seen[key]})"),
                )
            )
        seen.setdefault(key, row.number)
    if ctx.options.mode == "append" and seen:
        issues += _existing_keys(conn, ctx.spec, seen)
    return issues


def _existing_keys(
    conn: psycopg.Connection, spec: LayerSpec, keys: dict[Any, int]
) -> list[FieldIssue]:
    """Issues for keys the table already holds."""
    query = sql.SQL("SELECT {pk} FROM {table} WHERE {pk} = ANY(%s)").format(
        pk=sql.Identifier(spec.pk), table=sql.Identifier(spec.schema, spec.table)
    )
    found = sorted(r[0] for r in conn.execute(query, (list(keys),)).fetchall())
    return [
        FieldIssue(
            field=spec.pk,
            feature=keys[k],
            message=(f"duplicate {spec.pk} {k}: already in {spec.qualified_table}"),
        )
        for k in found
    ]


FOREIGN_KEYS_SQL: Final = """
SELECT a.attname, rn.nspname, rc.relname, ra.attname
FROM pg_constraint c
JOIN pg_class t ON t.oid = c.conrelid
JOIN pg_namespace n ON n.oid = t.relnamespace
JOIN pg_class rc ON rc.oid = c.confrelid
JOIN pg_namespace rn ON rn.oid = rc.relnamespace
JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1]
JOIN pg_attribute ra ON ra.attrelid = c.confrelid AND ra.attnum = c.confkey[1]
WHERE c.contype = 'f' AND n.nspname = %s AND t.relname = %s AND cardinality(c.conkey) = 1
ORDER BY a.attnum
"""


def _foreign_key_issues(
    conn: psycopg.Connection, spec: LayerSpec, rows: list[Row]
) -> list[FieldIssue]:
    """Values of single-column foreign keys that the referenced table lacks."""
    issues: list[FieldIssue] = []
    for column, schema, table, ref_column in conn.execute(
        FOREIGN_KEYS_SQL, (spec.schema, spec.table)
    ).fetchall():
        values = {r.values[column] for r in rows if r.values.get(column) is not None}
        if not values:
            continue
        query = sql.SQL("SELECT {c} FROM {t} WHERE {c} = ANY(%s)").format(
            c=sql.Identifier(ref_column), t=sql.Identifier(schema, table)
        )
        known = {r[0] for r in conn.execute(query, (list(values),)).fetchall()}
        issues += [
            FieldIssue(
                field=column,
                feature=r.number,
                message=(f"unknown {column} {r.values[column]}: not in {schema}.{table}"),
            )
            for r in rows
            if r.values.get(column) is not None and r.values[column] not in known
        ]
    return issues


def ewkb_hex(geom: Geometry) -> str:
    """Hex EWKB with SRID 4490, as COPY text expects."""
    return shapely.to_wkb(shapely.set_srid(geom, STORAGE_SRID), hex=True, include_srid=True)


def _groups(rows: list[Row], geom: str) -> Iterable[tuple[tuple[str, ...], list[Row]]]:
    """Rows grouped by their non-null columns (so database defaults apply to the rest)."""
    groups: dict[tuple[str, ...], list[Row]] = {}
    for row in rows:
        columns = tuple(c for c, v in row.values.items() if v is not None or c == geom)
        groups.setdefault(columns, []).append(row)
    return groups.items()


def write(conn: psycopg.Connection, spec: LayerSpec, rows: list[Row], mode: str, path: Path) -> int:
    """Delete (replace mode) and COPY in one transaction; returns the rows deleted."""
    deleted = 0
    try:
        with conn.transaction(), conn.cursor() as cur:
            if mode == "replace":
                cur.execute(
                    sql.SQL("DELETE FROM {}").format(sql.Identifier(spec.schema, spec.table))
                )
                deleted = cur.rowcount
            for columns, group in _groups(rows, spec.geom):
                _copy(cur, spec, columns, group, path)
    except psycopg.errors.IntegrityError as exc:
        if mode == "replace" and "delete" in (exc.diag.message_primary or ""):
            raise UnprocessableInput(
                f"cannot replace layer {spec.id}: its rows are still referenced "
                f"({exc.diag.message_detail}); nothing was changed"
            ) from exc
        raise
    return deleted


def _copy(
    cur: psycopg.Cursor, spec: LayerSpec, columns: tuple[str, ...], group: list[Row], path: Path
) -> None:
    """COPY one group of rows; database errors name the feature."""
    stmt = sql.SQL("COPY {} ({}) FROM STDIN").format(
        sql.Identifier(spec.schema, spec.table), sql.SQL(", ").join(map(sql.Identifier, columns))
    )
    try:
        with cur.copy(stmt) as copy:
            for row in group:
                copy.write_row(
                    [ewkb_hex(row.values[c]) if c == spec.geom else row.values[c] for c in columns]
                )
    except (psycopg.errors.IntegrityError, psycopg.errors.DataError) as exc:
        issue = database_issue(exc, [r.number for r in group], spec)
        which = f"feature {issue.feature}" if issue.feature else "the import"
        raise UnprocessableInput(
            f"{path.name}: the database rejected {which}: {issue.message}; "
            f"nothing was imported into layer {spec.id}",
            errors=[issue],
        ) from exc


def database_issue(exc: psycopg.Error, numbers: list[int], spec: LayerSpec) -> FieldIssue:
    """Turn a constraint/data error raised during COPY into a field issue."""
    diag = exc.diag
    line = re.search(r"line (\d+)", diag.context or "")
    feature = (
        numbers[int(line.group(1)) - 1] if line and int(line.group(1)) <= len(numbers) else None
    )
    key = re.search(r"Key \(([^)]+)\)=\(([^)]*)\)", diag.message_detail or "")
    column = diag.column_name or (key.group(1) if key else None) or diag.constraint_name or "row"
    message = "; ".join(x for x in (diag.message_primary, diag.message_detail) if x)
    if isinstance(exc, psycopg.errors.UniqueViolation) and key:
        message = f"duplicate {key.group(1)} {key.group(2)}: already in {spec.qualified_table}"
    return FieldIssue(field=column, message=message or str(exc), feature=feature)
