"""Case boxes (案件箱), search, filters and exports (Excel, Word, PDF, zip of PDFs)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Annotated, Any

import psycopg
from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from api.deps import get_conn
from api.routers.crs import parse_crs
from api.security.policy import require
from layers.cases import boxes as bx
from layers.cases.exports import (
    check_rows,
    check_zip,
    photo_digests,
    read_photos,
    render_xlsx,
    zip_sheets,
)
from layers.cases.media import media_store_of
from layers.cases.sheets import load_sheets, render_docx, render_pdf
from layers.registry import LayerSpec
from spatial.security.principal import Principal

Conn = Annotated[psycopg.AsyncConnection, Depends(get_conn)]
Reader = Annotated[Principal, Depends(require("cases:read"))]
RESERVED = frozenset({"q", "limit", "offset", "sort", "crs", "box", "photos", "watermark"})
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
BEIJING = timezone(timedelta(hours=8))


class BoxInfo(BaseModel):
    """A box the caller sees, with its case count and filterable fields."""

    code: str
    name: str
    count: int
    filters: list[str]


class BoxPage(BaseModel):
    """One page of a box; lon/lat in ``crs`` (CGCS2000 unless asked otherwise)."""

    box: str
    name: str
    crs: str
    numberMatched: int  # noqa: N815 - OGC-style member name
    limit: int
    offset: int
    items: list[dict[str, Any]]


class ZipRequest(BaseModel):
    """Cases to download as PDF sheets (批量下载)."""

    ids: list[int] = Field(min_length=1)
    watermark: bool = True
    photos: bool = True


def _spec(request: Request) -> LayerSpec:
    return request.app.state.registry.get("cases")


def _filters(request: Request) -> dict[str, str]:
    return {k: v for k, v in request.query_params.items() if k not in RESERVED}


def watermark_text(principal: Principal) -> str:
    """User name and date (Beijing)."""
    return f"{principal.name} {datetime.now(BEIJING):%Y-%m-%d}"


def _download(data: bytes, media_type: str, name: str) -> Response:
    headers = {"Content-Disposition": f'attachment; filename="{name}"'}
    return Response(data, media_type=media_type, headers=headers)


def case_boxes_router() -> APIRouter:
    """Build the router."""
    router = APIRouter(prefix="/api/v1", tags=["案件箱 (case boxes)"])
    add_box_routes(router)
    add_export_routes(router)
    return router


def add_box_routes(router: APIRouter) -> None:
    """The caller's boxes and their pages."""

    @router.get("/case-boxes", response_model=list[BoxInfo], operation_id="listCaseBoxes")
    async def case_boxes(request: Request, conn: Conn, who: Reader) -> list[dict[str, Any]]:
        """The boxes the caller's permissions show, with counts within their data scope."""
        return await bx.box_counts(conn, _spec(request), who)

    @router.get("/case-boxes/{box}/cases", response_model=BoxPage, operation_id="listBoxCases")
    async def box_cases(
        request: Request,
        conn: Conn,
        who: Reader,
        box: str,
        q: Annotated[str | None, Query(description="part of the task number (任务号)")] = None,
        limit: Annotated[int, Query(ge=1, le=bx.MAX_LIMIT)] = 50,
        offset: Annotated[int, Query(ge=0)] = 0,
        sort: Annotated[str | None, Query(description="e.g. -reported_at")] = None,
        crs: Annotated[str, Query(description="cgcs2000|wgs84|gcj02|bd09")] = "cgcs2000",
    ) -> dict[str, Any]:
        """A page of one box; other query parameters are filters (status, stage, …)."""
        found = bx.get_box(who, box)
        query = bx.Query(_filters(request), q, limit, offset, sort, parse_crs(crs))
        total, rows = await bx.list_cases(conn, _spec(request), who, found, query)
        return {
            "box": found.code,
            "name": found.name,
            "crs": "EPSG:4490" if query.crs == "cgcs2000" else str(query.crs),
            "numberMatched": total,
            "limit": limit,
            "offset": offset,
            "items": rows,
        }


def add_export_routes(router: APIRouter) -> None:
    """Excel export, printable sheets and the zip download."""

    @router.get(
        "/cases/export.xlsx",
        response_class=Response,
        responses={200: {"content": {XLSX: {}}}},
        operation_id="exportCasesXlsx",
    )
    async def export_xlsx(
        request: Request,
        conn: Conn,
        who: Reader,
        box: str = "all",
        q: str | None = None,
        sort: str | None = None,
        photos: bool = False,
        watermark: bool = True,
    ) -> Response:
        """A box (with filters and search) as Excel, with or without photo thumbnails."""
        found = bx.get_box(who, box)
        spec = _spec(request)
        probe = bx.Query(_filters(request), q, 1, 0, sort)
        total, _ = await bx.list_cases(conn, spec, who, found, probe)
        check_rows(total, photos)
        rows = await _all_rows(conn, spec, who, found, probe, total)
        thumbs = None
        if photos:
            store = media_store_of(request.app.state)
            digests = await photo_digests(conn, [r["id"] for r in rows])
            thumbs = await run_in_threadpool(
                lambda: {k: read_photos(store, v) for k, v in digests.items()}
            )
        mark = watermark_text(who) if watermark else None
        data = await run_in_threadpool(render_xlsx, found.name, rows, thumbs, mark)
        return _download(data, XLSX, f"cases-{found.code}.xlsx")

    @router.get(
        "/cases/{case_id:int}/sheet.pdf",
        response_class=Response,
        responses={200: {"content": {"application/pdf": {}}}},
        operation_id="caseSheetPdf",
    )
    async def sheet_pdf(
        request: Request, conn: Conn, who: Reader, case_id: int, watermark: bool = True
    ) -> Response:
        """The case sheet (案件打印) as PDF."""
        sheet, images = await _sheet(request, conn, who, case_id)
        mark = watermark_text(who) if watermark else None
        data = await run_in_threadpool(render_pdf, sheet, images, mark)
        return _download(data, "application/pdf", f"{sheet.case['case_no']}.pdf")

    @router.get(
        "/cases/{case_id:int}/sheet.docx",
        response_class=Response,
        responses={200: {"content": {DOCX: {}}}},
        operation_id="caseSheetDocx",
    )
    async def sheet_docx(
        request: Request, conn: Conn, who: Reader, case_id: int, watermark: bool = True
    ) -> Response:
        """The case sheet as Word."""
        sheet, images = await _sheet(request, conn, who, case_id)
        mark = watermark_text(who) if watermark else None
        data = await run_in_threadpool(render_docx, sheet, images, mark)
        return _download(data, DOCX, f"{sheet.case['case_no']}.docx")

    @router.post(
        "/cases/sheets.zip",
        response_class=Response,
        responses={200: {"content": {"application/zip": {}}}},
        operation_id="caseSheetsZip",
    )
    async def sheets_zip(request: Request, conn: Conn, who: Reader, body: ZipRequest) -> Response:
        """PDF sheets of up to 200 cases in one zip; any id outside the scope is a 404."""
        check_zip(body.ids)
        ids = list(dict.fromkeys(body.ids))
        sheets = await load_sheets(conn, _spec(request), who, ids)
        store = media_store_of(request.app.state)
        digests = [[d for d, _ in s.photos] for s in sheets] if body.photos else [[]] * len(ids)
        mark = watermark_text(who) if body.watermark else None

        def render() -> bytes:
            images = [read_photos(store, d) for d in digests]
            return zip_sheets(sheets, images, mark)

        data = await run_in_threadpool(render)
        return _download(data, "application/zip", "case-sheets.zip")


async def _all_rows(
    conn: psycopg.AsyncConnection,
    spec: LayerSpec,
    who: Principal,
    box: bx.Box,
    query: bx.Query,
    total: int,
) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    while len(rows) < total:
        page = bx.Query(query.filters, query.q, bx.MAX_LIMIT, len(rows), query.sort)
        _, got = await bx.list_cases(conn, spec, who, box, page)
        if not got:
            break
        rows.extend(got)
    return rows


async def _sheet(
    request: Request, conn: psycopg.AsyncConnection, who: Principal, case_id: int
) -> tuple[Any, list[bytes]]:
    sheet = (await load_sheets(conn, _spec(request), who, [case_id]))[0]
    store = media_store_of(request.app.state)
    images = await run_in_threadpool(read_photos, store, [d for d, _ in sheet.photos])
    return sheet, images
