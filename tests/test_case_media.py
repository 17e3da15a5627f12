"""Case media: type by magic bytes, dedup by SHA-256, size limits, who may read a file."""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from api.app import create_app
from layers.cases.media import MIB, MediaStore, detect_mime, resolve_mime
from spatial.db import libpq_url
from spatial.errors import UnprocessableInput
from spatial.settings import DatabaseSettings, Settings
from tests.auth_support import bearer

CLASS = "3209040102"


def _image(fmt: str, colour: str = "red") -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (8, 8), colour).save(out, fmt)
    return out.getvalue()


SAMPLES = {
    "image/jpeg": _image("JPEG"),
    "image/png": _image("PNG"),
    "image/webp": _image("WEBP"),
    "image/heic": b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + b"\x00" * 64,
    "video/mp4": b"\x00\x00\x00\x20ftypisom\x00\x00\x02\x00isomiso2mp41" + b"\x00" * 64,
    "video/quicktime": b"\x00\x00\x00\x14ftypqt  \x00\x00\x00\x00qt  " + b"\x00" * 64,
    "video/3gpp": b"\x00\x00\x00\x18ftyp3gp4\x00\x00\x00\x00isom3gp4" + b"\x00" * 64,
    "audio/mp4": b"\x00\x00\x00\x1cftypM4A \x00\x00\x00\x00M4A isommp42" + b"\x00" * 64,
    "audio/amr": b"#!AMR\n" + b"\x3c" * 64,
    "audio/amr-wb": b"#!AMR-WB\n" + b"\x04" * 64,
    "audio/mpeg": b"ID3\x04\x00\x00\x00\x00\x00\x00" + b"\xff\xfb\x90\x00" * 16,
    "audio/aac": b"\xff\xf1\x50\x80\x02\x1f\xfc" + b"\x00" * 64,
    "audio/wav": b"RIFF\x24\x00\x00\x00WAVEfmt " + b"\x00" * 64,
}


@pytest.fixture
def app_client(scratch_url: str, tmp_path) -> Iterator[TestClient]:
    with TestClient(
        create_app(Settings(db=DatabaseSettings(url=scratch_url))),
        raise_server_exceptions=False,
    ) as c:
        c.app.state.media_store = MediaStore(tmp_path / "media")
        yield c


def _upload(client: TestClient, who: dict[str, str], data: bytes, mime: str = "image/jpeg") -> Any:
    return client.post("/api/v1/media", files={"file": ("f.bin", data, mime)}, headers=who)


def _rows(url: str, query: str, args: Any = ()) -> list[tuple]:
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        return conn.execute(query, args).fetchall()


@pytest.mark.parametrize("mime", sorted(SAMPLES))
def test_types_are_detected_by_magic_bytes(mime: str) -> None:
    assert detect_mime(SAMPLES[mime]) == mime
    assert resolve_mime(SAMPLES[mime], mime) == mime
    assert resolve_mime(SAMPLES[mime], "application/octet-stream") == mime


def test_declared_type_must_agree() -> None:
    with pytest.raises(UnprocessableInput):
        resolve_mime(SAMPLES["image/png"], "image/jpeg")
    assert resolve_mime(SAMPLES["image/jpeg"], "image/jpg") == "image/jpeg"
    assert resolve_mime(SAMPLES["video/mp4"], "audio/mp4") == "audio/mp4"  # an .m4a voice note
    assert resolve_mime(SAMPLES["video/3gpp"], "audio/3gpp") == "audio/3gpp"


def test_upload_stores_by_sha256_once(app_client: TestClient, scratch_url: str) -> None:
    who = bearer(app_client, "inspector")
    data = SAMPLES["image/jpeg"]
    first = _upload(app_client, who, data)
    again = _upload(app_client, bearer(app_client, "citizen"), data)
    assert first.status_code == again.status_code == 201, first.text
    digest = hashlib.sha256(data).hexdigest()
    assert first.json() == {
        "sha256": digest,
        "mime": "image/jpeg",
        "size": len(data),
        "created": True,
    }
    assert again.json()["sha256"] == digest and again.json()["created"] is False
    store: MediaStore = app_client.app.state.media_store
    path = store.root / digest[:2] / digest[2:4] / digest
    assert path.read_bytes() == data
    assert _rows(
        scratch_url, "SELECT count(*) FROM city.media_blobs WHERE sha256 = %s", (digest,)
    ) == [(1,)]


def test_amr_and_video_uploads(app_client: TestClient) -> None:
    who = bearer(app_client, "inspector")
    amr = _upload(app_client, who, SAMPLES["audio/amr"], "audio/amr")
    assert amr.status_code == 201 and amr.json()["mime"] == "audio/amr"
    mp4 = _upload(app_client, who, SAMPLES["video/mp4"], "video/mp4")
    assert mp4.status_code == 201 and mp4.json()["mime"] == "video/mp4"


def test_type_mismatch_and_unknown_type(app_client: TestClient) -> None:
    who = bearer(app_client, "inspector")
    mismatch = _upload(app_client, who, SAMPLES["image/png"], "image/jpeg")
    assert mismatch.status_code == 422
    assert mismatch.json()["errors"][0]["field"] == "file"
    unknown = _upload(app_client, who, b"%PDF-1.7 not a photo" * 10, "image/jpeg")
    assert unknown.status_code == 415
    assert unknown.headers["content-type"] == "application/problem+json"
    empty = _upload(app_client, who, b"", "image/jpeg")
    assert empty.status_code == 415


def test_size_limit_is_413(app_client: TestClient) -> None:
    who = bearer(app_client, "inspector")
    big_photo = SAMPLES["image/jpeg"] + b"\x00" * (8 * MIB)
    r = _upload(app_client, who, big_photo)
    assert r.status_code == 413 and r.json()["errors"][0]["field"] == "file"
    over_body = SAMPLES["video/mp4"] + b"\x00" * (10 * MIB)
    assert _upload(app_client, who, over_body, "video/mp4").status_code == 413


def test_who_may_upload(app_client: TestClient) -> None:
    assert _upload(app_client, {}, SAMPLES["image/png"], "image/png").status_code == 401
    r = _upload(app_client, bearer(app_client, "dispatcher"), SAMPLES["image/png"], "image/png")
    assert r.status_code == 403
    r = _upload(app_client, bearer(app_client, "handler"), SAMPLES["image/png"], "image/png")
    assert r.status_code == 201


def _report(client: TestClient, scratch_url: str, sha: str) -> int:
    lon, lat = _rows(
        scratch_url,
        "SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(r.geom) p"
        " FROM city.responsibility_grids r JOIN city.inspector_grids g ON g.grid_code = r.code"
        " ORDER BY r.code LIMIT 1) s",
    )[0]
    body = {
        "source": "inspector",
        "category": "事件",
        "class_code": CLASS,
        "description": "井盖缺失",
        "location": {"lon": lon, "lat": lat},
        "media": [{"sha256": sha, "kind": "near"}],
    }
    r = client.post("/api/v1/cases", json=body, headers=bearer(client, "inspector"))
    assert r.status_code == 201, r.text
    return int(r.json()["case"]["id"])


def test_reading_media_follows_upload_and_case_scope(
    app_client: TestClient, scratch_url: str
) -> None:
    data = SAMPLES["image/jpeg"]
    sha = _upload(app_client, bearer(app_client, "inspector"), data).json()["sha256"]
    url = f"/api/v1/media/{sha}"
    own = app_client.get(url, headers=bearer(app_client, "inspector"))
    assert own.status_code == 200 and own.content == data
    assert own.headers["content-type"] == "image/jpeg" and own.headers["etag"] == f'"{sha}"'
    cached = app_client.get(
        url, headers={**bearer(app_client, "inspector"), "If-None-Match": f'"{sha}"'}
    )
    assert cached.status_code == 304
    assert app_client.get(url).status_code == 401
    assert app_client.get(url, headers=bearer(app_client, "acceptor")).status_code == 404
    _report(app_client, scratch_url, sha)
    assert app_client.get(url, headers=bearer(app_client, "acceptor")).status_code == 200
    assert app_client.get(url, headers=bearer(app_client, "citizen")).status_code == 404
    assert app_client.get(url, headers=bearer(app_client, "handler")).status_code == 404
    bad = app_client.get("/api/v1/media/not-a-digest", headers=bearer(app_client, "inspector"))
    assert bad.status_code == 400


def test_attach_media_to_a_case(app_client: TestClient, scratch_url: str) -> None:
    who = bearer(app_client, "inspector")
    first = _upload(app_client, who, SAMPLES["image/jpeg"]).json()["sha256"]
    case_id = _report(app_client, scratch_url, first)
    far = _upload(app_client, who, _image("JPEG", "blue")).json()["sha256"]
    voice = _upload(app_client, who, SAMPLES["audio/amr"], "audio/amr").json()["sha256"]
    body = {"media": [{"sha256": far, "kind": "far"}, {"sha256": voice, "kind": "audio"}]}
    r = app_client.post(f"/api/v1/cases/{case_id}/media", json=body, headers=who)
    assert r.status_code == 201, r.text
    assert r.json()["added"] == 2
    assert sorted(m["kind"] for m in r.json()["media"]) == ["audio", "far", "near"]
    again = app_client.post(f"/api/v1/cases/{case_id}/media", json=body, headers=who)
    assert again.json()["added"] == 0
    wrong = {"media": [{"sha256": voice, "kind": "near"}]}
    r = app_client.post(f"/api/v1/cases/{case_id}/media", json=wrong, headers=who)
    assert r.status_code == 422
    r = app_client.post(
        f"/api/v1/cases/{case_id}/media", json=body, headers=bearer(app_client, "citizen")
    )
    assert r.status_code == 404
    r = app_client.post("/api/v1/cases/999999/media", json=body, headers=who)
    assert r.status_code == 404
