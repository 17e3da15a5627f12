"""Batch import and export of the fleet registry (批量导入/导出) as CSV or XLSX.

One sheet per entity with a header row of column names (what the export writes, so an export
imports back). References are by business key: ``company_code``, ``site_code``,
``disposal_site_code``, ``plate``, ``route_code``; geometries are WKT (``geom_wkt``,
``gate_wkt``) in the import's CRS (stored in CGCS2000). Rows with a natural key (code, plate,
licence, terminal id, permit number) that already exists update it. Each row is written in its
own savepoint: bad rows are reported with row number and field, good rows are kept.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Final

import openpyxl
import psycopg
import shapely
from shapely.geometry import mapping

from layers.fleet.registry import (
    Entity,
    create_row,
    entity,
    geojson_to_storage,
    normalise_plate,
    update_row,
)
from spatial.crs import ClientCRS
from spatial.errors import CityError, FieldIssue, InvalidInput

NATURAL_KEYS: Final = {
    "companies": "code",
    "sites": "code",
    "vehicles": "plate",
    "drivers": "license_no",
    "terminals": "terminal_id",
    "permits": "permit_no",
    "routes": "code",
}
# reference column in files → (column, table, business key column)
REFERENCES: Final = {
    "company_code": ("company_id", "fleet_companies", "code"),
    "site_code": ("site_id", "fleet_sites", "code"),
    "disposal_site_code": ("disposal_site_id", "fleet_sites", "code"),
    "plate": ("vehicle_id", "fleet_vehicles", "plate"),
    "route_code": ("route_id", "fleet_routes", "code"),
}
INTS: Final = {"speed_limit_kmh"}
FLOATS: Final = {"load_capacity_kg", "corridor_m"}
BOOLS: Final = {"active", "sealed_capable"}
DATES: Final = {"valid_from", "valid_to", "installed_at"}
TRUE: Final = {"1", "true", "yes", "y", "是", "有", "√"}
FALSE: Final = {"0", "false", "no", "n", "否", "无", ""}
MAX_ROWS: Final = 50_000


@dataclass
class ImportReport:
    """What an import did: counts and the bad rows (row number = file line, header = 1)."""

    entity: str
    created: int = 0
    updated: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "entity": self.entity,
            "created": self.created,
            "updated": self.updated,
            "rejected": len(self.errors),
            "errors": self.errors,
        }


def read_table(data: bytes, filename: str) -> list[dict[str, Any]]:
    """Rows of a CSV (UTF-8, UTF-8 BOM or GBK) or the first sheet of an XLSX file."""
    if filename.lower().endswith((".xlsx", ".xlsm")):
        try:
            book = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
        except Exception as exc:  # noqa: BLE001 - openpyxl raises many kinds on bad files
            raise InvalidInput(
                "Not a readable XLSX file.", [FieldIssue("file", str(exc))]
            ) from None
        rows = list(book.worksheets[0].iter_rows(values_only=True))
        if not rows:
            return []
        header = [str(h).strip() if h is not None else "" for h in rows[0]]
        return [dict(zip(header, r, strict=False)) for r in rows[1 : MAX_ROWS + 1]]
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            text = data.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    else:
        raise InvalidInput("CSV must be UTF-8 or GBK.", [FieldIssue("file", "undecodable")])
    reader = csv.DictReader(io.StringIO(text))
    return [{(k or "").strip(): v for k, v in row.items()} for row in reader][:MAX_ROWS]


def _coerce(column: str, value: Any) -> Any:
    """Convert a cell to the column's type (ValueError on bad values)."""
    if isinstance(value, str):
        value = value.strip()
    if value is None or value == "":
        return None
    if column in BOOLS:
        text = str(value).strip().lower()
        if text not in TRUE | FALSE:
            raise ValueError(f"{value!r} is not yes/no")
        return text in TRUE
    if column in INTS:
        return int(float(value))
    if column in FLOATS:
        return float(value)
    if column in DATES:
        if isinstance(value, datetime):
            return value.date()
        if isinstance(value, date):
            return value
        return date.fromisoformat(str(value)[:10])
    if column == "plate":
        return normalise_plate(str(value))
    return str(value) if not isinstance(value, int | float) else str(value).removesuffix(".0")


async def _references(conn: psycopg.AsyncConnection) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for ref, (_col, table, key) in REFERENCES.items():
        cur = await conn.execute(f"SELECT {key}, id FROM city.{table}")  # noqa: S608 - constants
        out[ref] = {str(k): int(v) for k, v in await cur.fetchall()}
    return out


def _row_values(
    e: Entity, raw: dict[str, Any], refs: dict[str, dict[str, int]], crs: ClientCRS
) -> tuple[dict[str, Any], list[FieldIssue]]:
    values: dict[str, Any] = {}
    issues: list[FieldIssue] = []
    allowed = set(e.writable)
    for column, cell in raw.items():
        if not column:
            continue
        try:
            if column in REFERENCES and REFERENCES[column][0] in allowed:
                target = REFERENCES[column][0]
                key = _coerce(column, cell)
                if key is None:
                    values[target] = None
                elif key not in refs[column]:
                    issues.append(FieldIssue(column, f"unknown {column} {key!r}"))
                else:
                    values[target] = refs[column][key]
            elif column.endswith("_wkt") and column[:-4] in e.geometry_columns:
                values[column[:-4]] = _wkt(cell, crs, column)
            elif column in allowed:
                values[column] = _coerce(column, cell)
        except (ValueError, TypeError) as exc:
            issues.append(FieldIssue(column, str(exc)[:200]))
        except CityError as exc:
            issues.extend(exc.errors or [FieldIssue(column, exc.detail)])
    return values, issues


def _wkt(cell: Any, crs: ClientCRS, column: str) -> dict[str, Any] | None:
    if cell is None or str(cell).strip() == "":
        return None
    try:
        geom = shapely.from_wkt(str(cell))
    except shapely.errors.ShapelyError as exc:
        raise ValueError(f"bad WKT: {exc}") from None
    return geojson_to_storage(mapping(geom), crs, column)


async def import_rows(
    conn: psycopg.AsyncConnection,
    name: str,
    rows: list[dict[str, Any]],
    crs: ClientCRS = ClientCRS.CGCS2000,
) -> ImportReport:
    """Create or update one entity's rows; bad rows are reported, good rows kept."""
    e = entity(name)
    report = ImportReport(name)
    refs = await _references(conn)
    natural = NATURAL_KEYS.get(name)
    for number, raw in enumerate(rows, start=2):
        values, issues = _row_values(e, raw, refs, crs)
        if not issues:
            try:
                await _store(conn, e, natural, values, report)
            except CityError as exc:
                issues = exc.errors or [FieldIssue("row", exc.detail)]
        for issue in issues:
            report.errors.append({"row": number, "field": issue.field, "message": issue.message})
    return report


async def _store(
    conn: psycopg.AsyncConnection,
    e: Entity,
    natural: str | None,
    values: dict[str, Any],
    report: ImportReport,
) -> None:
    key = None
    if natural and values.get(natural) is not None:
        cur = await conn.execute(
            f"SELECT {e.key} FROM city.{e.table} WHERE {natural} = %s",  # noqa: S608 - constants
            (values[natural],),
        )
        row = await cur.fetchone()
        key = row[0] if row else None
    if key is None:
        await create_row(conn, e, values)
        report.created += 1
    else:
        await update_row(conn, e, key, values)
        report.updated += 1


EXPORT_SQL: Final = {
    "companies": "SELECT code, name, credit_code, kind, contact, phone, address"
    " FROM city.fleet_companies ORDER BY id",
    "sites": "SELECT s.code, s.name, s.kind, s.address, s.street_code, c.code AS company_code,"
    " s.contact, s.phone, s.active, ST_AsText(s.geom) AS geom_wkt, ST_AsText(s.gate) AS gate_wkt"
    " FROM city.fleet_sites s LEFT JOIN city.fleet_companies c ON c.id = s.company_id"
    " ORDER BY s.id",
    "vehicles": "SELECT v.plate, v.kind, c.code AS company_code, v.sealed_capable,"
    " v.speed_limit_kmh, v.load_capacity_kg, v.active FROM city.fleet_vehicles v"
    " LEFT JOIN city.fleet_companies c ON c.id = v.company_id ORDER BY v.id",
    "drivers": "SELECT d.name, d.license_no, d.phone, c.code AS company_code, v.plate"
    " FROM city.fleet_drivers d LEFT JOIN city.fleet_companies c ON c.id = d.company_id"
    " LEFT JOIN city.fleet_vehicles v ON v.id = d.vehicle_id ORDER BY d.id",
    "terminals": "SELECT t.terminal_id, v.plate, t.sim, t.model, t.active, t.installed_at"
    " FROM city.fleet_terminals t LEFT JOIN city.fleet_vehicles v ON v.id = t.vehicle_id"
    " ORDER BY t.terminal_id",
    "permits": "SELECT p.permit_no, p.kind, s.code AS site_code, c.code AS company_code,"
    " v.plate, p.valid_from, p.valid_to, p.issued_by, p.note FROM city.fleet_permits p"
    " LEFT JOIN city.fleet_sites s ON s.id = p.site_id"
    " LEFT JOIN city.fleet_companies c ON c.id = p.company_id"
    " LEFT JOIN city.fleet_vehicles v ON v.id = p.vehicle_id ORDER BY p.id",
    "routes": "SELECT code, name, corridor_m, ST_AsText(geom) AS geom_wkt FROM city.fleet_routes"
    " ORDER BY id",
    "bindings": "SELECT s.code AS site_code, c.code AS company_code, v.plate,"
    " d.code AS disposal_site_code, r.code AS route_code, b.valid_from, b.valid_to, b.note"
    " FROM city.fleet_bindings b JOIN city.fleet_sites s ON s.id = b.site_id"
    " JOIN city.fleet_companies c ON c.id = b.company_id"
    " JOIN city.fleet_vehicles v ON v.id = b.vehicle_id"
    " JOIN city.fleet_sites d ON d.id = b.disposal_site_id"
    " LEFT JOIN city.fleet_routes r ON r.id = b.route_id ORDER BY b.id",
}


async def export_rows(
    conn: psycopg.AsyncConnection, name: str
) -> tuple[list[str], list[tuple[Any, ...]]]:
    """Header and rows of one entity in the import format (geometries as CGCS2000 WKT)."""
    entity(name)
    cur = await conn.execute(EXPORT_SQL[name])
    return [c.name for c in cur.description or []], list(await cur.fetchall())


def to_csv(header: list[str], rows: list[tuple[Any, ...]]) -> bytes:
    """UTF-8 CSV with a BOM (opens correctly in Excel)."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    writer.writerows(["" if v is None else v for v in row] for row in rows)
    return out.getvalue().encode("utf-8-sig")


def to_xlsx(name: str, header: list[str], rows: list[tuple[Any, ...]]) -> bytes:
    """One-sheet XLSX."""
    book = openpyxl.Workbook(write_only=True)
    sheet = book.create_sheet(name)
    sheet.append(header)
    for row in rows:
        sheet.append(list(row))
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
