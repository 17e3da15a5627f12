"""Geocoding over HTTP: forward, suggest, batch, reverse, and clear 400s for bad input."""

from __future__ import annotations

import math
from collections.abc import Iterator

import psycopg
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from spatial.crs import ClientCRS, from_storage
from spatial.db import libpq_url
from spatial.settings import DatabaseSettings, Settings
from tests.auth_support import bearer

PROBLEM = "application/problem+json"
M_PER_DEG_LAT = 110_574.0


def metres(a: tuple[float, float], b: tuple[float, float]) -> float:
    dx = (a[0] - b[0]) * 111_320.0 * math.cos(math.radians(a[1]))
    return math.hypot(dx, (a[1] - b[1]) * M_PER_DEG_LAT)


@pytest.fixture(scope="module")
def gclient(db_url: str) -> Iterator[TestClient]:
    """One app (one index build) for the whole module."""
    app = create_app(Settings(db=DatabaseSettings(url=db_url)))
    with TestClient(app, raise_server_exceptions=False) as c:
        assert c.get("/api/v1/geocode/index").status_code == 200
        # batch geocoding and index rebuilds need geocode:batch / layers:write (admin has both);
        # that anonymous callers are refused there is checked in test_route_policies.
        c.headers.update(bearer(c, "admin"))
        yield c


def plate(url: str, code: str) -> tuple:
    with psycopg.connect(libpq_url(url)) as conn:
        return conn.execute(
            "SELECT ST_X(geom), ST_Y(geom), grid_code, standard_address FROM city.addresses "
            "WHERE code = %s",
            (code,),
        ).fetchone()


def top(c: TestClient, q: str, **params: object) -> dict:
    r = c.get("/api/v1/geocode", params={"q": q, **params})
    assert r.status_code == 200, r.text
    return r.json()["candidates"][0]


def test_forward_full_standard_address(gclient: TestClient) -> None:
    body = gclient.get(
        "/api/v1/geocode", params={"q": "江苏省盐城市大丰区丰华街道幸福路２３号"}
    ).json()
    best = body["candidates"][0]
    assert body["crs"] == "cgcs2000" and "320904001" in body["parsed"]["areas"]
    assert (best["code"], best["level"], best["score"]) == ("REW006M0023", "门牌", 1.0)
    assert best["standard_address"] == "大丰区丰华街道幸福路23号"
    assert len(best["unit_grid"]) == 15 and best["street"]["name"] == "丰华街道"
    assert best["community"]["code"] == best["unit_grid"][:12]


@pytest.mark.parametrize(
    ("q", "level", "code", "method"),
    [
        ("幸福路三十二号", "门牌", "REW006M0032", "name"),
        ("幸福路23號", "门牌", "REW006M0023", "name"),
        ("莱茵城五号楼二单元三零一室", "楼牌", "Q0002B005L", "name"),
        ("莱茵城5幢", "楼牌", "Q0002B005L", "name"),
        ("莱茵城小区5栋", "楼牌", "Q0002B005L", "alias"),
        ("黄海大道5号", "门牌", "REW018M0005", "alias"),
        ("卫生路23号", "门牌", "REW003M0023", "old_name"),
        ("幸付路23号", "门牌", "REW006M0023", "homophone"),
        ("幸路23号", "门牌", "REW006M0023", "typo"),
        ("xfl23", "门牌", None, "initials"),
        ("lyc", "区片", "Q0002", "initials"),
        ("laiyincheng", "区片", "Q0002", "pinyin"),
        ("莱因城", "区片", "Q0002", "homophone"),
        ("李记面馆", "兴趣点", "P00207", "name"),
        ("西康路19号李记面馆", "兴趣点", "P00207", "name"),
        ("幸福路", "街巷", "REW006", "name"),
        ("幸福社区", "区域", "320904002001", "name"),
        ("大丰经济开发区", "区域", "320904400", "name"),
        ("RNS030M0023", "门牌", "RNS030M0023", "code"),
    ],
)
def test_forward_levels_and_methods(
    gclient: TestClient, q: str, level: str, code: str | None, method: str
) -> None:
    best = top(gclient, q)
    assert best["level"] == level and best["method"] == method
    if code:
        assert best["code"] == code


def test_unit_and_room_are_kept(gclient: TestClient) -> None:
    best = top(gclient, "莱茵城5栋2单元301室")
    assert best["code"] == "Q0002B005L" and best["detail"] == "2单元301室"


def test_relative_description_is_kept(gclient: TestClient) -> None:
    body = gclient.get("/api/v1/geocode", params={"q": "幸福路23号东门"}).json()
    assert body["parsed"]["relative"] == "东门"
    assert body["candidates"][0]["code"] == "REW006M0023"
    assert body["candidates"][0]["relative"] == "东门"


def test_crossing_of_two_roads(gclient: TestClient) -> None:
    best = top(gclient, "幸福路与友谊路交叉口")
    assert best["kind"] == "crossing" and best["level"] == "街巷" and best["code"] is None


def test_missing_plate_is_extrapolated_along_the_road(gclient: TestClient) -> None:
    """The small sample stops at 60; 幸福路75号 is placed where the full sample has it."""
    from data_samples import reference as ref
    from data_samples.generate import COUNTY, SEED
    from data_samples.geography import build_geography
    from data_samples.places import build_roads, door_plates

    geo = build_geography(list(ref.streets()), list(ref.communities()), COUNTY, SEED)
    truth = next(
        p for p in door_plates(build_roads(geo, list(ref.roads()))) if p.code == "REW006M0075"
    )
    best = top(gclient, "幸福路75号")
    assert best["interpolated"] and best["code"] is None and best["level"] == "门牌"
    assert "外推" in best["note"] and best["standard_address"].endswith("幸福路75号")
    assert metres((best["point"]["lon"], best["point"]["lat"]), (truth.point.x, truth.point.y)) < 3
    assert best["unit_grid"] and len(best["unit_grid"]) == 15


def test_number_beyond_the_road_falls_back_to_the_road(gclient: TestClient) -> None:
    best = top(gclient, "幸福路9999号")
    assert best["level"] == "街巷" and best["code"] == "REW006" and "9999" in best["note"]


def test_output_crs(gclient: TestClient, db_url: str) -> None:
    x, y, _, _ = plate(db_url, "REW006M0023")
    best = top(gclient, "幸福路23号", crs="gcj02")
    gx, gy = from_storage(x, y, ClientCRS.GCJ02)
    assert abs(best["point"]["lon"] - gx) < 1e-7 and abs(best["point"]["lat"] - gy) < 1e-7
    body = gclient.get("/api/v1/geocode", params={"q": "幸福路23号", "crs": "bd09"}).json()
    assert body["crs"] == "bd09"


def test_suggest_prefix_pinyin_and_numbers(gclient: TestClient) -> None:
    def texts(q: str) -> list[str]:
        r = gclient.get("/api/v1/geocode/suggest", params={"q": q, "limit": 5})
        assert r.status_code == 200
        return [s["text"] for s in r.json()["suggestions"]]

    assert texts("莱茵")[0] == "莱茵城"
    assert texts("lyc")[0] == "莱茵城"
    numbers = texts("幸福路2")
    assert numbers and all(t.startswith("幸福路2") and t.endswith("号") for t in numbers)


@pytest.mark.parametrize(
    "q", ["莱", "莱茵", "幸福路", "幸福路2", "lyc", "xf", "人民", "大中街道幸", "李记", "康"]
)
def test_suggest_answers_type_ahead_prefixes(gclient: TestClient, q: str) -> None:
    # Speed (p95 < 30 ms) is shown by bench/geocode.py, not asserted here.
    r = gclient.get("/api/v1/geocode/suggest", params={"q": q})
    assert r.status_code == 200


def test_batch_json_rows_fail_individually(gclient: TestClient) -> None:
    rows = [
        {"id": "a", "q": "幸福路23号"},
        "莱茵城5栋",
        {"id": "empty", "q": ""},
        {"id": "long", "q": "幸" * 1000},
        {"id": "ctrl", "q": "幸福路\x0123号"},
        {"id": "num", "q": 42},
        "zzzzqqqq",
    ]
    r = gclient.post("/api/v1/geocode/batch", json=rows, params={"crs": "wgs84"})
    assert r.status_code == 200, r.text
    body = r.json()
    status = [it["status"] for it in body["items"]]
    assert status[:6] == ["ok", "ok", "error", "error", "error", "error"]
    assert body["items"][0]["result"]["code"] == "REW006M0023" and body["items"][0]["id"] == "a"
    assert body["items"][2]["errors"][0]["field"] == "rows[2].q"
    assert "U+0001" in body["items"][4]["errors"][0]["message"]
    assert body["total"] == 7 and body["failed"] == 4 and body["crs"] == "wgs84"


def test_batch_csv_in_and_out(gclient: TestClient) -> None:
    csv_body = "编号,地址\n1,幸福路23号\n2,\n3,莱茵城5栋\n".encode()
    r = gclient.post(
        "/api/v1/geocode/batch",
        content=csv_body,
        headers={"content-type": "text/csv"},
        params={"format": "csv"},
    )
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    lines = r.text.lstrip("\ufeff").splitlines()
    assert lines[0].startswith("index,id,q,status")
    assert ",ok," in lines[1] and "REW006M0023" in lines[1]
    assert ",error," in lines[2] and "must not be empty" in lines[2]


def test_batch_of_gbk_csv(gclient: TestClient) -> None:
    r = gclient.post(
        "/api/v1/geocode/batch",
        content="q\n幸福路23号\n".encode("gbk"),
        headers={"content-type": "text/csv"},
    )
    assert r.json()["items"][0]["result"]["code"] == "REW006M0023"


@pytest.mark.parametrize(
    ("body", "kind", "field"),
    [
        (b"[" + b'"x",' * 10_000 + b'"x"]', "application/json", "body"),
        (b"{not json", "application/json", "body"),
        (b'{"rows": 5}', "application/json", "body"),
        (b"a,b\n1,2\n", "text/csv", "body"),
    ],
)
def test_batch_rejects_unreadable_bodies(
    gclient: TestClient, body: bytes, kind: str, field: str
) -> None:
    r = gclient.post("/api/v1/geocode/batch", content=body, headers={"content-type": kind})
    assert r.status_code == 400 and r.headers["content-type"] == PROBLEM
    assert r.json()["errors"][0]["field"] == field


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"q": ""}, "q"),
        ({"q": "   "}, "q"),
        ({"q": "幸" * 1000}, "q"),
        ({"q": "幸福路\x0023号"}, "q"),
        ({"q": "幸福路\x1b23号"}, "q"),
        ({}, "q"),
        ({"q": "幸福路", "limit": 0}, "limit"),
        ({"q": "幸福路", "crs": "mars"}, "crs"),
    ],
)
def test_forward_bad_input_is_a_problem(gclient: TestClient, params: dict, field: str) -> None:
    r = gclient.get("/api/v1/geocode", params=params)
    assert r.status_code == 400 and r.headers["content-type"] == PROBLEM
    assert field in [e["field"] for e in r.json()["errors"]]


def test_reverse_at_a_plate(gclient: TestClient, db_url: str) -> None:
    x, y, grid, address = plate(db_url, "REW006M0023")
    body = gclient.get("/api/v1/reverse", params={"lon": x, "lat": y}).json()
    assert body["inside_district"] and body["plate"]["code"] == "REW006M0023"
    assert body["plate"]["standard_address"] == address and body["unit_grid"] == grid
    assert body["description"] == "幸福路23号" and body["road"]["name"] == "幸福路"
    assert body["responsibility_grid"]["code"][:12] == body["community"]["code"]
    assert body["street"]["code"] == grid[:9] and body["crs"] == "cgcs2000"


def test_reverse_from_postgis(gclient: TestClient, db_url: str) -> None:
    x, y, grid, _ = plate(db_url, "REW006M0023")
    params = {"lon": x + 1e-4, "lat": y, "source": "postgis"}
    body = gclient.get("/api/v1/reverse", params=params).json()
    assert body["plate"]["code"] == "REW006M0023" and body["unit_grid"] == grid
    assert body["plate"]["bearing"] == "东" and 8 < body["plate"]["distance_m"] < 10


def test_reverse_describes_bearing_and_distance(gclient: TestClient, db_url: str) -> None:
    x, y, _, _ = plate(db_url, "Q0002B005L")
    east = x + 20 / (111_320.0 * math.cos(math.radians(y)))
    body = gclient.get("/api/v1/reverse", params={"lon": east, "lat": y}).json()
    assert body["plate"]["code"] == "Q0002B005L"
    assert body["plate"]["description"] == "莱茵城5栋东侧约20米"
    assert body["compound"]["name"] == "莱茵城" and body["description"] == "莱茵城5栋东侧约20米"


@pytest.mark.parametrize("crs", ["gcj02", "bd09", "wgs84"])
def test_reverse_client_crs(gclient: TestClient, db_url: str, crs: str) -> None:
    x, y, grid, _ = plate(db_url, "RNS030M0023")
    lon, lat = from_storage(x, y, ClientCRS(crs))
    body = gclient.get("/api/v1/reverse", params={"lon": lon, "lat": lat, "crs": crs}).json()
    assert body["plate"]["code"] == "RNS030M0023" and body["unit_grid"] == grid
    assert body["crs"] == crs and body["plate"]["distance_m"] < 0.5
    assert abs(body["plate"]["point"]["lon"] - lon) < 1e-6


def test_reverse_outside_the_district_but_in_china(gclient: TestClient) -> None:
    body = gclient.get("/api/v1/reverse", params={"lon": 118.78, "lat": 32.04}).json()
    assert body["inside_district"] is False and body["plate"] is None
    assert body["unit_grid"] is None and body["description"] == "不在本区范围内"


@pytest.mark.parametrize(
    ("params", "fields", "words"),
    [
        ({"lon": 33.19, "lat": 120.47}, {"lon", "lat"}, "swapped"),
        ({"lon": "nan", "lat": 33.2}, {"lon"}, "not a number"),
        ({"lon": 120.47, "lat": "inf"}, {"lat"}, "not a number"),
        ({"lon": 2.35, "lat": 48.85}, {"lon", "lat"}, "outside China"),
        ({"lon": 200, "lat": 33.2}, {"lon"}, "out of range"),
        ({"lon": "abc", "lat": 33.2}, {"lon"}, "lon"),
        ({"lon": 120.47, "lat": 33.2, "crs": "mars"}, {"crs"}, "mars"),
        ({"lat": 33.2}, {"lon"}, "lon"),
    ],
)
def test_reverse_bad_input_is_a_problem(
    gclient: TestClient, params: dict, fields: set[str], words: str
) -> None:
    r = gclient.get("/api/v1/reverse", params=params)
    assert r.status_code == 400 and r.headers["content-type"] == PROBLEM
    body = r.json()
    assert fields <= {e["field"] for e in body["errors"]} and words in body["detail"]


def test_index_info_and_rebuild(gclient: TestClient) -> None:
    info = gclient.get("/api/v1/geocode/index").json()
    assert info["counts"]["compound"] == 111 and info["counts"]["road"] == 29
    rebuilt = gclient.post("/api/v1/geocode/index").json()
    assert rebuilt["counts"] == info["counts"] and rebuilt["built_at"] > info["built_at"]


def test_openapi_lists_geocoding(gclient: TestClient) -> None:
    paths = gclient.get("/openapi.json").json()["paths"]
    assert {"/api/v1/geocode", "/api/v1/geocode/suggest", "/api/v1/geocode/batch"} <= set(paths)
    assert "/api/v1/reverse" in paths
    assert "text/csv" in paths["/api/v1/geocode/batch"]["post"]["requestBody"]["content"]
