"""Case sheets (案件打印): one declarative template rendered to Word (python-docx) and PDF.

The template lists sections and their fields (label, row key); Word and PDF are rendered from
it alike, followed by the handling history (办理过程) and the photos. A watermark (user name
and date) is drawn diagonally in light grey on every PDF page and in the Word page header.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

import psycopg
from psycopg import sql

from layers.cases.boxes import ROW_SQL, where
from layers.registry import LayerSpec
from spatial.errors import NotFound
from spatial.security.principal import Principal
from spatial.security.scope import scope_condition

TITLE: Final = "大丰区城市运行管理服务平台 案件处理单"
TEMPLATE: Final[tuple[tuple[str, tuple[tuple[str, str], ...]], ...]] = (
    (
        "基本信息",
        (
            ("任务号", "case_no"),
            ("问题来源", "source_name"),
            ("问题类型", "category"),
            ("大类", "major_name"),
            ("小类", "class_name"),
            ("案件等级", "level"),
            ("状态", "status"),
            ("问题描述", "description"),
        ),
    ),
    (
        "位置",
        (
            ("位置描述", "location_desc"),
            ("道路", "road_name"),
            ("所属街道", "street_name"),
            ("单元网格", "grid_code"),
            ("责任网格", "responsibility_grid_code"),
            ("坐标 (CGCS2000)", "lonlat"),
        ),
    ),
    (
        "办理",
        (
            ("处置部门", "department_name"),
            ("上报时间", "reported_at"),
            ("立案时间", "registered_at"),
            ("派遣时间", "dispatched_at"),
            ("处置截止时间", "handle_deadline"),
            ("结案时间", "closed_at"),
        ),
    ),
)
HISTORY_HEADER: Final = ("时间", "操作动作", "经办人", "岗位", "意见/原因")
PHOTO_SQL: Final = """
SELECT m.sha256, m.kind FROM city.case_media m JOIN city.media_blobs b ON b.sha256 = m.sha256
WHERE m.case_id = %s AND b.mime LIKE 'image/%%' ORDER BY m.id LIMIT %s
"""
HISTORY_SQL: Final = """
SELECT created_at, action_name, actor_name, actor_position, coalesce(opinion, reason)
FROM city.case_history WHERE case_id = %s ORDER BY version, id
"""


@dataclass
class CaseSheet:
    """What a sheet shows: the case row, its history and its photos' digests."""

    case: dict[str, Any]
    history: list[tuple[Any, ...]] = field(default_factory=list)
    photos: list[tuple[str, str]] = field(default_factory=list)  # (sha256, kind)

    def value(self, key: str) -> str:
        """A field as text (dates in Beijing time, coordinates with 6 decimals)."""
        if key == "lonlat":
            return f"{self.case['lon']:.6f}, {self.case['lat']:.6f}"
        return text(self.case.get(key))


def text(value: Any) -> str:
    """Display text of a value."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.astimezone(BEIJING).strftime("%Y-%m-%d %H:%M")
    if isinstance(value, bool):
        return "是" if value else "否"
    return str(value)


def _beijing() -> Any:
    from datetime import timedelta, timezone

    return timezone(timedelta(hours=8), "CST")


BEIJING: Final = _beijing()


async def load_sheets(
    conn: psycopg.AsyncConnection,
    spec: LayerSpec,
    principal: Principal,
    ids: list[int],
    max_photos: int = 6,
) -> list[CaseSheet]:
    """Sheets of ``ids`` within the caller's scope; any id not visible is a 404 (no leak)."""
    parts: list[sql.Composable] = [sql.SQL("c.id = ANY({})").format(sql.Literal(ids))]
    scope = scope_condition(spec, principal.scope, "c")
    if scope is not None:
        parts.append(scope)
    cur = await conn.execute(sql.SQL(ROW_SQL) + where(parts))
    names = [d.name for d in cur.description or []]
    found = {r[0]: dict(zip(names, r, strict=True)) for r in await cur.fetchall()}
    missing = [i for i in ids if i not in found]
    if missing:
        raise NotFound(f"No such case: {missing[0]}.")
    sheets = []
    for case_id in ids:
        history = await (await conn.execute(HISTORY_SQL, (case_id,))).fetchall()
        photos = await (await conn.execute(PHOTO_SQL, (case_id, max_photos))).fetchall()
        sheets.append(CaseSheet(found[case_id], list(history), [(p[0], p[1]) for p in photos]))
    return sheets


# --- Word ---------------------------------------------------------------------------------


def render_docx(sheet: CaseSheet, photos: list[bytes], watermark: str | None = None) -> bytes:
    """The sheet as a Word document (watermark in the page header, light grey)."""
    from docx import Document
    from docx.shared import Cm, Pt, RGBColor

    doc = Document()
    if watermark:
        para = doc.sections[0].header.paragraphs[0]
        run = para.add_run(watermark)
        run.font.color.rgb, run.font.size = RGBColor(0xC0, 0xC0, 0xC0), Pt(20)
    doc.add_heading(TITLE, level=1)
    for title, fields in TEMPLATE:
        doc.add_heading(title, level=2)
        table = doc.add_table(rows=0, cols=2)
        table.style = "Table Grid"
        for label, key in fields:
            cells = table.add_row().cells
            cells[0].text, cells[1].text = label, sheet.value(key)
    doc.add_heading("办理过程", level=2)
    table = doc.add_table(rows=1, cols=len(HISTORY_HEADER))
    table.style = "Table Grid"
    for cell, label in zip(table.rows[0].cells, HISTORY_HEADER, strict=True):
        cell.text = label
    for row in sheet.history:
        for cell, value in zip(table.add_row().cells, row, strict=True):
            cell.text = text(value)
    if photos:
        doc.add_heading("照片", level=2)
        for data in photos:
            doc.add_picture(io.BytesIO(data), width=Cm(6))
    out = io.BytesIO()
    doc.save(out)
    return out.getvalue()


# --- PDF ----------------------------------------------------------------------------------

FONT: Final = "STSong-Light"


def _register_font() -> None:
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont

    if FONT not in pdfmetrics.getRegisteredFontNames():
        pdfmetrics.registerFont(UnicodeCIDFont(FONT))


def _watermark_painter(watermark: str | None) -> Any:
    def paint(canvas: Any, doc: Any) -> None:
        if not watermark:
            return
        canvas.saveState()
        canvas.setFillGray(0.85)
        width, height = doc.pagesize
        canvas.translate(width / 2, height / 2)
        canvas.rotate(45)
        canvas.setFont("Helvetica" if watermark.isascii() else FONT, 36)
        for dy in (-160, 0, 160):
            canvas.drawCentredString(0, dy, watermark)
        canvas.restoreState()

    return paint


def render_pdf(sheet: CaseSheet, photos: list[bytes], watermark: str | None = None) -> bytes:
    """The sheet as PDF (A4, STSong-Light), the watermark diagonal on every page."""
    from reportlab.lib import colors
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import ParagraphStyle
    from reportlab.lib.units import cm
    from reportlab.platypus import Image, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

    _register_font()
    body = ParagraphStyle("body", fontName=FONT, fontSize=9, leading=12, wordWrap="CJK")
    head = ParagraphStyle("head", parent=body, fontSize=12, leading=16, spaceBefore=8)
    title = ParagraphStyle("title", parent=body, fontSize=15, leading=20, alignment=1)
    grid = TableStyle(
        [("GRID", (0, 0), (-1, -1), 0.4, colors.grey), ("VALIGN", (0, 0), (-1, -1), "TOP")]
    )

    def para(value: str) -> Paragraph:
        return Paragraph(value.replace("&", "&amp;").replace("<", "&lt;"), body)

    story: list[Any] = [Paragraph(TITLE, title), Spacer(1, 6)]
    for section, fields in TEMPLATE:
        story.append(Paragraph(section, head))
        rows = [[para(label), para(sheet.value(key))] for label, key in fields]
        story.append(Table(rows, colWidths=[4 * cm, 13 * cm], style=grid))
    story.append(Paragraph("办理过程", head))
    rows = [[para(h) for h in HISTORY_HEADER]]
    rows += [[para(text(v)) for v in row] for row in sheet.history]
    widths = [3.2 * cm, 2.6 * cm, 2.6 * cm, 2.4 * cm, 6.2 * cm]
    story.append(Table(rows, colWidths=widths, style=grid, repeatRows=1))
    if photos:
        story.append(Paragraph("照片", head))
        for data in photos:
            story.append(
                Image(io.BytesIO(data), width=6 * cm, height=4.5 * cm, kind="proportional")
            )
    out = io.BytesIO()
    paint = _watermark_painter(watermark)
    doc = SimpleDocTemplate(out, pagesize=A4, title=TITLE, pageCompression=0)
    doc.build(story, onFirstPage=paint, onLaterPages=paint)
    return out.getvalue()
