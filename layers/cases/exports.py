"""Case exports (案件导出/下载): Excel with or without photos, zips of PDF sheets.

Excel (openpyxl) lists a box's filtered cases; with photos, each row gets up to three
thumbnails (Pillow) of the case's images from the media store. The watermark (user name and
date) goes into the sheet's page header and footer. Sizes are capped: 5,000 rows (500 with
photos) per workbook and 200 sheets per zip.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterable
from typing import Any, Final

import psycopg

from layers.cases.media import MediaStore
from layers.cases.sheets import CaseSheet, render_pdf, text
from spatial.errors import FieldIssue, PayloadTooLarge

MAX_ROWS: Final = 5_000
MAX_ROWS_WITH_PHOTOS: Final = 500
MAX_ZIP_SHEETS: Final = 200
PHOTOS_PER_ROW: Final = 3
THUMB: Final = (160, 120)
COLUMNS: Final = (  # (header, row key, width)
    ("任务号", "case_no", 17),
    ("问题来源", "source_name", 12),
    ("问题类型", "category", 8),
    ("大类", "major_name", 10),
    ("小类", "class_name", 14),
    ("问题描述", "description", 36),
    ("位置描述", "location_desc", 30),
    ("所属街道", "street_name", 10),
    ("单元网格", "grid_code", 17),
    ("处置部门", "department_name", 20),
    ("阶段", "stage", 11),
    ("状态", "status", 8),
    ("计时", "timer", 7),
    ("上报时间", "reported_at", 17),
    ("结案时间", "closed_at", 17),
    ("经度 (CGCS2000)", "lon", 12),
    ("纬度 (CGCS2000)", "lat", 12),
)
PHOTO_SQL: Final = """
SELECT m.case_id, m.sha256 FROM city.case_media m
JOIN city.media_blobs b ON b.sha256 = m.sha256
WHERE m.case_id = ANY(%s) AND b.mime LIKE 'image/%%' ORDER BY m.case_id, m.id
"""


def check_rows(count: int, photos: bool) -> None:
    """413 naming ``limit`` when the export would exceed the cap."""
    cap = MAX_ROWS_WITH_PHOTOS if photos else MAX_ROWS
    if count > cap:
        raise PayloadTooLarge(
            f"{count} cases match; an export holds at most {cap}.",
            [FieldIssue("limit", f"narrow the box with filters to at most {cap} cases")],
        )


def check_zip(ids: list[int]) -> None:
    """413 naming ``ids`` when more sheets than the cap are asked for."""
    if len(ids) > MAX_ZIP_SHEETS:
        raise PayloadTooLarge(
            f"{len(ids)} sheets asked; a zip holds at most {MAX_ZIP_SHEETS}.",
            [FieldIssue("ids", f"at most {MAX_ZIP_SHEETS} case ids")],
        )


def thumbnail(data: bytes, size: tuple[int, int] = THUMB) -> bytes | None:
    """A PNG thumbnail, or None when Pillow cannot read the image."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as img:
            img.thumbnail(size)
            out = io.BytesIO()
            img.convert("RGB").save(out, "PNG")
            return out.getvalue()
    except (UnidentifiedImageError, OSError, ValueError):
        return None


def read_photos(store: MediaStore, digests: Iterable[str]) -> list[bytes]:
    """Thumbnails of the stored images (files missing on disk are skipped)."""
    out = []
    for digest in digests:
        try:
            thumb = thumbnail(store.open(digest))
        except (FileNotFoundError, ValueError):
            continue
        if thumb:
            out.append(thumb)
    return out


async def photo_digests(
    conn: psycopg.AsyncConnection, case_ids: list[int], per_case: int = PHOTOS_PER_ROW
) -> dict[int, list[str]]:
    """Image digests per case (first ``per_case`` of each)."""
    rows = await (await conn.execute(PHOTO_SQL, (case_ids,))).fetchall()
    out: dict[int, list[str]] = {}
    for case_id, digest in rows:
        if len(out.setdefault(case_id, [])) < per_case:
            out[case_id].append(digest)
    return out


def _cell(value: Any) -> Any:
    if isinstance(value, float):
        return round(value, 7)
    return text(value) if value is not None else None


def render_xlsx(
    title: str,
    rows: list[dict[str, Any]],
    photos: dict[int, list[bytes]] | None = None,
    watermark: str | None = None,
) -> bytes:
    """The workbook: one sheet, a header row, one row per case, optional thumbnails."""
    from openpyxl import Workbook
    from openpyxl.drawing.image import Image as XlImage
    from openpyxl.styles import Font
    from openpyxl.utils import get_column_letter

    wb = Workbook()
    ws = wb.active
    ws.title = title[:31]
    headers = [c[0] for c in COLUMNS]
    if photos is not None:
        headers += [f"照片{k + 1}" for k in range(PHOTOS_PER_ROW)]
    ws.append(headers)
    for cell in ws[1]:
        cell.font = Font(bold=True)
    for k, (_, _, width) in enumerate(COLUMNS, start=1):
        ws.column_dimensions[get_column_letter(k)].width = width
    for r, row in enumerate(rows, start=2):
        ws.append([_cell(row.get(key)) for _, key, _ in COLUMNS])
        for k, data in enumerate((photos or {}).get(row["id"], [])):
            column = get_column_letter(len(COLUMNS) + 1 + k)
            ws.column_dimensions[column].width = 24
            ws.row_dimensions[r].height = 95
            ws.add_image(XlImage(io.BytesIO(data)), f"{column}{r}")
    ws.freeze_panes = "B2"
    if watermark:
        for part in (ws.oddHeader.center, ws.oddFooter.right):
            part.text, part.color = watermark, "C0C0C0"
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def zip_sheets(sheets: list[CaseSheet], photos: list[list[bytes]], watermark: str | None) -> bytes:
    """A zip with one PDF sheet per case, named ``<task no>.pdf``."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for sheet, images in zip(sheets, photos, strict=True):
            zf.writestr(f"{sheet.case['case_no']}.pdf", render_pdf(sheet, images, watermark))
    return out.getvalue()
