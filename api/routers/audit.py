"""``/api/v1/audit``: search, verify and export the audit trail (审计日志), for auditors only.

Every route needs ``audit:read`` (held by the auditor, never by the administrator: separation
of duties), and every read of the log is itself recorded (``audit.read``, ``audit.export``).
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from typing import Annotated, Any

import psycopg
from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel

from api.deps import get_conn
from api.security.policy import require
from spatial.errors import FieldIssue, InvalidInput
from spatial.security import audit
from spatial.security.principal import Principal

Auditor = Annotated[Principal, Depends(require("audit:read"))]
Conn = Annotated[psycopg.AsyncConnection, Depends(get_conn)]
MAX_PAGE = 1000
MAX_EXPORT = 100_000
NO_STORE = "no-store"  # audit entries are sensitive: never in shared or browser caches


class AuditEntry(BaseModel):
    """One audit entry (hashes in hex)."""

    seq: int
    at: datetime
    actor: str
    actor_id: int | None = None
    actor_kind: str | None = None
    positions: list[str] | None = None
    ip: str | None = None
    user_agent: str | None = None
    action: str
    target_type: str | None = None
    target_id: str | None = None
    method: str | None = None
    path: str | None = None
    status: int | None = None
    detail: Any = None
    before: Any = None
    after: Any = None
    prev_hash: str
    hash: str


class AuditPage(BaseModel):
    """A page of entries, newest first."""

    items: list[AuditEntry]
    limit: int
    offset: int
    next_offset: int | None = None


class AuditVerification(BaseModel):
    """The outcome of a chain check; publish ``head`` to detect later truncation."""

    ok: bool
    count: int
    head_seq: int | None = None
    head_hash: str | None = None
    head: str | None = None
    first_bad_seq: int | None = None
    reason: str | None = None


def _check_range(since: datetime | None, until: datetime | None) -> None:
    if since and until and since >= until:
        raise InvalidInput("since must be before until.", [FieldIssue("since", "after until")])


async def _record_read(
    conn: psycopg.AsyncConnection,
    request: Request,
    principal: Principal,
    action: str,
    detail: dict[str, Any],
) -> None:
    event = audit.event_from_request(
        request, principal, action, target_type="audit_log", status=200, detail=detail
    )
    await audit.record(conn, event)


def audit_router() -> APIRouter:
    """Build the audit router."""
    router = APIRouter(prefix="/api/v1/audit", tags=["审计 (audit)"])

    @router.get("", response_model=AuditPage, operation_id="searchAudit")
    async def search_audit(
        request: Request,
        response: Response,
        principal: Auditor,
        conn: Conn,
        actor: str | None = None,
        action: Annotated[str | None, Query(description="exact, or a prefix: auth.*")] = None,
        target_type: str | None = None,
        target_id: str | None = None,
        since: Annotated[datetime | None, Query(description="from (inclusive)")] = None,
        until: Annotated[datetime | None, Query(description="to (exclusive)")] = None,
        limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
        offset: Annotated[int, Query(ge=0)] = 0,
    ) -> AuditPage:
        """Search the audit trail, newest first."""
        _check_range(since, until)
        filters = {
            "actor": actor,
            "action": action,
            "target_type": target_type,
            "target_id": target_id,
            "since": since,
            "until": until,
        }
        rows = await audit.search(conn, **filters, limit=limit + 1, offset=offset)
        more, rows = len(rows) > limit, rows[:limit]
        given = {k: v for k, v in filters.items() if v is not None}
        detail = {"op": "search", **given, "limit": limit, "offset": offset, "rows": len(rows)}
        await _record_read(conn, request, principal, audit.AUDIT_READ, detail)
        response.headers["Cache-Control"] = NO_STORE
        return AuditPage(
            items=[AuditEntry(**row) for row in rows],
            limit=limit,
            offset=offset,
            next_offset=offset + limit if more else None,
        )

    @router.get("/verify", response_model=AuditVerification, operation_id="verifyAudit")
    async def verify_audit(
        request: Request,
        response: Response,
        principal: Auditor,
        conn: Conn,
        expect_head: Annotated[
            str | None, Query(description="SEQ:HASH published earlier (detects truncation)")
        ] = None,
    ) -> AuditVerification:
        """Recompute the SM3 hash chain: altered, deleted or forged entries are reported."""
        expected = audit.parse_head(expect_head) if expect_head else None
        report = await audit.verify(conn, expected)
        detail = {"op": "verify", "ok": report.ok, "head": report.head}
        if expect_head:
            detail["expect_head"] = expect_head
        await _record_read(conn, request, principal, audit.AUDIT_READ, detail)
        response.headers["Cache-Control"] = NO_STORE
        return AuditVerification(**report.as_dict())

    @router.get(
        "/export",
        operation_id="exportAudit",
        response_class=Response,
        responses={200: {"content": {"text/csv": {}}, "description": "CSV, UTF-8 with BOM"}},
    )
    async def export_audit(
        request: Request,
        principal: Auditor,
        conn: Conn,
        since: Annotated[datetime | None, Query(description="from (inclusive)")] = None,
        until: Annotated[datetime | None, Query(description="to (exclusive)")] = None,
        limit: Annotated[int, Query(ge=1, le=MAX_EXPORT)] = 10_000,
        after_seq: Annotated[int | None, Query(ge=0, description="only seq > after_seq")] = None,
    ) -> Response:
        """Export entries in seq order as CSV (日志导出); page on with ``after_seq``."""
        _check_range(since, until)
        rows = await audit.search(
            conn,
            since=since,
            until=until,
            after_seq=after_seq,
            limit=limit,
            newest_first=False,
        )
        detail = {
            "op": "export",
            "since": since,
            "until": until,
            "after_seq": after_seq,
            "rows": len(rows),
        }
        await _record_read(conn, request, principal, audit.AUDIT_EXPORT, detail)
        buffer = io.StringIO()
        buffer.write("\ufeff")  # BOM: spreadsheets then read the Chinese headers as UTF-8
        writer = csv.writer(buffer)
        writer.writerow([audit.CSV_HEADERS[c] for c in audit.COLUMNS])
        writer.writerows(audit.csv_row(row) for row in rows)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        headers = {
            "Content-Disposition": f'attachment; filename="audit-{stamp}.csv"',
            "X-Audit-Rows": str(len(rows)),
            "Cache-Control": NO_STORE,
        }
        if rows:
            headers["X-Audit-Last-Seq"] = str(rows[-1]["seq"])
        return Response(buffer.getvalue(), media_type="text/csv; charset=utf-8", headers=headers)

    return router
