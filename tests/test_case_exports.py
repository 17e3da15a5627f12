"""Case exports: Excel with and without photos, Word and PDF sheets, zip, watermark, scope."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from docx import Document
from fastapi.testclient import TestClient
from openpyxl import load_workbook
from PIL import Image

from api.app import create_app
from layers.cases.media import MediaStore
from spatial.db import libpq_url
from spatial.settings import DatabaseSettings, Settings
from tests.auth_support import bearer

EXPORT = "/api/v1/cases/export.xlsx"


def _ids(db_url: str, where: str, n: int = 3) -> list[tuple[int, str]]:
    with psycopg.connect(libpq_url(db_url)) as conn:
        return conn.execute(
            f"SELECT id, case_no FROM city.cases WHERE {where} ORDER BY id LIMIT {n}"  # noqa: S608
        ).fetchall()


@pytest.fixture
def photo_client(scratch_url: str, tmp_path: Path) -> Iterator[tuple[TestClient, int, str]]:
    """A client over a scratch DB where one dispatched case has two stored photos."""
    store = MediaStore(tmp_path / "media")
    (case_id, case_no), *_ = _ids(scratch_url, "stage = 'dispatched'", 1)
    with psycopg.connect(libpq_url(scratch_url)) as conn:
        for k, colour in enumerate(("red", "blue")):
            out = io.BytesIO()
            Image.new("RGB", (640, 480), colour).save(out, "JPEG")
            digest = store.write(out.getvalue())
            conn.execute(
                "INSERT INTO city.media_blobs (sha256, mime, size_bytes) VALUES (%s, %s, %s)",
                (digest, "image/jpeg", len(out.getvalue())),
            )
            conn.execute(
                "INSERT INTO city.case_media (case_id, sha256, kind) VALUES (%s, %s, %s)",
                (case_id, digest, ("near", "far")[k]),
            )
    app = create_app(Settings(db=DatabaseSettings(url=scratch_url)))
    with TestClient(app, raise_server_exceptions=False) as client:
        app.state.media_store = store
        yield client, case_id, case_no


def _workbook(content: bytes):  # noqa: ANN202 - openpyxl workbook
    return load_workbook(io.BytesIO(content))


def test_excel_without_photos_has_every_row_and_the_watermark(
    client: TestClient, db_url: str
) -> None:
    headers = bearer(client, "dispatcher")
    r = client.get(EXPORT, params={"box": "to_dispatch"}, headers=headers)
    assert r.status_code == 200, r.text
    ws = _workbook(r.content).active
    n = len(_ids(db_url, "stage IN ('registered', 'returned')", 1000))
    assert ws.max_row == n + 1 and ws["A1"].value == "任务号"
    assert "dispatcher" in ws.oddHeader.center.text
    assert not ws._images
    plain = client.get(EXPORT, params={"box": "to_dispatch", "watermark": "false"}, headers=headers)
    assert not _workbook(plain.content).active.oddHeader.center.text


def test_excel_with_photos_embeds_thumbnails(photo_client: tuple[TestClient, int, str]) -> None:
    client, _, case_no = photo_client
    params = {"box": "handling", "q": case_no, "photos": "true"}
    r = client.get(EXPORT, params=params, headers=bearer(client, "dispatcher"))
    assert r.status_code == 200, r.text
    ws = _workbook(r.content).active
    assert ws["A2"].value == case_no and len(ws._images) == 2


def test_excel_filters_and_cap(client: TestClient) -> None:
    headers = bearer(client, "leader")
    r = client.get(EXPORT, params={"box": "all", "stage": "closed"}, headers=headers)
    assert r.status_code == 200
    assert {c.value for c in _workbook(r.content).active["K"][1:]} == {"closed"}
    big = client.get(EXPORT, params={"box": "all", "photos": "true"}, headers=headers)
    assert big.status_code == 413 and big.json()["errors"][0]["field"] == "limit"
    bad = client.get(EXPORT, params={"box": "all", "nope": "1"}, headers=headers)
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "nope"


def test_word_sheet(photo_client: tuple[TestClient, int, str]) -> None:
    client, case_id, case_no = photo_client
    r = client.get(f"/api/v1/cases/{case_id}/sheet.docx", headers=bearer(client, "dispatcher"))
    assert r.status_code == 200, r.text
    doc = Document(io.BytesIO(r.content))
    cells = [c.text for t in doc.tables for row in t.rows for c in row.cells]
    assert case_no in cells and "上报" in cells
    assert "dispatcher" in doc.sections[0].header.paragraphs[0].text
    assert len(doc.inline_shapes) == 2


def test_pdf_sheet(client: TestClient, db_url: str) -> None:
    (case_id, _), *_ = _ids(db_url, "stage = 'closed' AND version > 5", 1)
    r = client.get(f"/api/v1/cases/{case_id}/sheet.pdf", headers=bearer(client, "leader"))
    assert r.status_code == 200 and r.content.startswith(b"%PDF")
    assert r.content.count(b"/Type /Page\n") + r.content.count(b"/Type /Page ") >= 1
    assert b"(leader " in r.content
    plain = client.get(
        f"/api/v1/cases/{case_id}/sheet.pdf",
        params={"watermark": "false"},
        headers=bearer(client, "leader"),
    )
    assert b"(leader " not in plain.content


def test_zip_holds_one_pdf_per_case(client: TestClient, db_url: str) -> None:
    rows = _ids(db_url, "stage = 'dispatched'", 3)
    r = client.post(
        "/api/v1/cases/sheets.zip",
        json={"ids": [i for i, _ in rows]},
        headers=bearer(client, "dispatcher"),
    )
    assert r.status_code == 200, r.text
    with zipfile.ZipFile(io.BytesIO(r.content)) as zf:
        assert sorted(zf.namelist()) == sorted(f"{no}.pdf" for _, no in rows)
        assert all(zf.read(n).startswith(b"%PDF") for n in zf.namelist())


def test_scope_is_enforced_without_leaks(client: TestClient, db_url: str) -> None:
    (other, _), *_ = _ids(db_url, "department_code <> 'D004'", 1)
    (own, _), *_ = _ids(db_url, "department_code = 'D004'", 1)
    headers = bearer(client, "handler")
    for path in (f"/api/v1/cases/{other}/sheet.pdf", f"/api/v1/cases/{other}/sheet.docx"):
        assert client.get(path, headers=headers).status_code == 404
    assert client.get("/api/v1/cases/99999999/sheet.pdf", headers=headers).status_code == 404
    assert client.get(f"/api/v1/cases/{own}/sheet.pdf", headers=headers).status_code == 200
    mixed = client.post("/api/v1/cases/sheets.zip", json={"ids": [own, other]}, headers=headers)
    assert mixed.status_code == 404
    too_many = client.post(
        "/api/v1/cases/sheets.zip", json={"ids": list(range(1, 300))}, headers=headers
    )
    assert too_many.status_code == 413 and too_many.json()["errors"][0]["field"] == "ids"
    r = client.get(EXPORT, params={"box": "all"}, headers=headers)
    rows = _workbook(r.content).active.max_row - 1
    assert rows == len(_ids(db_url, "department_code = 'D004'", 10_000))
    assert client.get(EXPORT, headers=bearer(client, "admin")).status_code == 403
