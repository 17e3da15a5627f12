"""Batch geocoding: JSON or CSV rows in, one result per row; a bad row never fails the batch."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel

from geocoder.forward import Result, geocode
from geocoder.index import GeoIndex
from geocoder.normalize import validate_query
from geocoder.schemas import Candidate, candidate
from spatial.crs import ClientCRS
from spatial.errors import FieldIssue, InvalidInput

MAX_ROWS = 10_000
Q_COLUMNS = ("q", "query", "address", "地址", "standard_address")
ID_COLUMNS = ("id", "编号", "序号")
CSV_FIELDS = (
    "index", "id", "q", "status", "score", "level", "code", "standard_address",
    "lon", "lat", "crs", "unit_grid", "community", "street", "error",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Row:
    """One input row: an optional caller id and the query (any JSON value, checked later)."""

    id: str | None
    q: Any


class RowError(BaseModel):
    """Why a row failed."""

    field: str
    message: str


class BatchItem(BaseModel):
    """The result of one row."""

    index: int
    id: str | None = None
    q: str | None = None
    status: Literal["ok", "no_match", "error"]
    result: Candidate | None = None
    errors: list[RowError] = []


class BatchResponse(BaseModel):
    """Per-row results; points in ``crs``."""

    crs: ClientCRS
    total: int
    matched: int
    no_match: int
    failed: int
    items: list[BatchItem]


def _too_many(n: int) -> None:
    if n > MAX_ROWS:
        msg = f"has {n:,} rows; at most {MAX_ROWS:,} are accepted per batch"
        raise InvalidInput("Too many rows.", [FieldIssue("body", msg)])


def parse_json(body: bytes) -> list[Row]:
    """``["q", …]``, ``[{"id": …, "q": …}, …]`` or ``{"rows": [...]}``."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidInput("The body is not valid JSON.", [FieldIssue("body", str(exc))]) from None
    items = data.get("rows") if isinstance(data, dict) else data
    if not isinstance(items, list):
        msg = 'must be a JSON array of queries or {"rows": [...]}'
        raise InvalidInput("The body has no rows.", [FieldIssue("body", msg)])
    _too_many(len(items))
    rows = []
    for item in items:
        if isinstance(item, dict):
            ident = item.get("id")
            rows.append(Row(None if ident is None else str(ident), item.get("q")))
        else:
            rows.append(Row(None, item))
    return rows


def _decode(body: bytes) -> str:
    try:
        return body.decode("utf-8-sig")
    except UnicodeDecodeError:
        return body.decode("gb18030", errors="replace")  # Excel's Chinese CSV


def parse_csv(body: bytes) -> list[Row]:
    """A CSV with a ``q``/``address``/``地址`` column (and optional ``id``), or one column."""
    records = list(csv.reader(io.StringIO(_decode(body))))
    if not records:
        raise InvalidInput("The CSV is empty.", [FieldIssue("body", "has no rows")])
    header = [h.strip().lower() for h in records[0]]
    q_col = next((header.index(c) for c in Q_COLUMNS if c in header), None)
    id_col = next((header.index(c) for c in ID_COLUMNS if c in header), None)
    if q_col is None:
        if len(header) > 1:
            msg = f"needs a column named one of {', '.join(Q_COLUMNS)}"
            raise InvalidInput("The CSV has no query column.", [FieldIssue("body", msg)])
        q_col, data = 0, records
    else:
        data = records[1:]
    _too_many(len(data))
    return [
        Row(
            r[id_col] if id_col is not None and id_col < len(r) else None,
            r[q_col] if q_col < len(r) else None,
        )
        for r in data
    ]


def run(ix: GeoIndex, rows: list[Row]) -> list[tuple[Row, Result | None, list[FieldIssue]]]:
    """Geocode every row (top candidate only); collect per-row input errors."""
    out: list[tuple[Row, Result | None, list[FieldIssue]]] = []
    for i, row in enumerate(rows):
        field = f"rows[{i}].q"
        try:
            if not isinstance(row.q, str):
                raise InvalidInput("", [FieldIssue(field, "must be a string")])
            out.append((row, geocode(ix, validate_query(row.q, field), limit=1), []))
        except InvalidInput as exc:
            out.append((row, None, exc.errors))
    return out


def response(
    ix: GeoIndex, done: list[tuple[Row, Result | None, list[FieldIssue]]], crs: ClientCRS
) -> BatchResponse:
    """Assemble the per-row response."""
    items = []
    for i, (row, result, issues) in enumerate(done):
        q = row.q if isinstance(row.q, str) else None
        if issues:
            errors = [RowError(field=e.field, message=e.message) for e in issues]
            items.append(BatchItem(index=i, id=row.id, q=q, status="error", errors=errors))
        elif result is None or not result.matches:
            items.append(BatchItem(index=i, id=row.id, q=q, status="no_match"))
        else:
            best = candidate(ix, result.matches[0], result, crs)
            items.append(BatchItem(index=i, id=row.id, q=q, status="ok", result=best))
    count = {s: sum(1 for it in items if it.status == s) for s in ("ok", "no_match", "error")}
    return BatchResponse(
        crs=crs, total=len(items), matched=count["ok"], no_match=count["no_match"],
        failed=count["error"], items=items,
    )  # fmt: skip


def to_csv(resp: BatchResponse) -> str:
    """The batch response as CSV (UTF-8 with BOM, so Excel reads the Chinese)."""
    buf = io.StringIO()
    buf.write("\ufeff")
    writer = csv.writer(buf)
    writer.writerow(CSV_FIELDS)
    for it in resp.items:
        r = it.result
        writer.writerow(
            [
                it.index, it.id or "", it.q or "", it.status,
                r.score if r else "", r.level.value if r else "", (r.code or "") if r else "",
                r.standard_address if r else "", r.point.lon if r else "", r.point.lat if r else "",
                resp.crs.value, (r.unit_grid or "") if r else "",
                (r.community.code if r and r.community else ""),
                (r.street.code if r and r.street else ""),
                "; ".join(f"{e.field}: {e.message}" for e in it.errors),
            ]
        )  # fmt: skip
    return buf.getvalue()
