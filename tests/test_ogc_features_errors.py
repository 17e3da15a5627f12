"""Bad input never yields a 500: 400/404 problem documents naming the parameter (plus a fuzz)."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.ogc_support import PROBLEM, make_client, open_client

ITEMS = "/ogc/collections/parts/items"
EPSG = "http://www.opengis.net/def/crs/EPSG/0/"


@pytest.fixture(scope="module")
def ogc(db_url: str) -> Iterator[TestClient]:
    yield from open_client(db_url)


# (path, params, status, the parameter the problem must name or None)
BAD: list[tuple[str, dict[str, Any], int, str | None]] = [
    ("/ogc/collections/nope/items", {}, 404, None),
    ("/ogc/collections/nope/items/1", {}, 404, None),
    ("/ogc/collections/parts/items/0000000000000000", {}, 404, None),
    ("/ogc/collections/cases/items/not-a-number", {}, 401, None),  # anonymous: cases:read
    ("/ogc/collections/nope", {"f": "json"}, 404, None),
    ("/ogc/collections/nope/queryables", {"f": "json"}, 404, None),
    (ITEMS, {"filter": "name = "}, 400, "filter"),
    (ITEMS, {"filter": "name LIKE"}, 400, "filter"),
    (ITEMS, {"filter": "nosuch = 1"}, 400, "filter"),
    (ITEMS, {"filter": "owner = 'x'"}, 400, "filter"),  # a property, but not a queryable
    (ITEMS, {"filter": "S_INTERSECTS(geometry, POLYGON((1 2, 3 4)))"}, 400, "filter"),
    (ITEMS, {"filter": "S_INTERSECTS(geometry, POINT(500 2))"}, 400, "filter"),
    (ITEMS, {"filter": "S_INTERSECTS(name, POINT(120 33))"}, 400, "filter"),
    (ITEMS, {"filter": "geometry = 'x'"}, 400, "filter"),
    (ITEMS, {"filter": "initial_time > 'not-a-time'"}, 400, "filter"),
    (ITEMS, {"filter": "major_code = 1 + 2"}, 400, "filter"),
    (ITEMS, {"filter": "T_AFTER(initial_time, TIMESTAMP('2020-01-01T00:00:00Z'))"}, 400, "filter"),
    (ITEMS, {"filter": "name = 'x'; DROP TABLE city.parts; --'"}, 400, "filter"),
    (ITEMS, {"filter": "{not json", "filter-lang": "cql2-json"}, 400, "filter"),
    (ITEMS, {"filter": '{"op": "=", "args": [1]}', "filter-lang": "cql2-json"}, 400, "filter"),
    (
        ITEMS,
        {
            "filter": json.dumps({"op": "like", "args": [{"property": "name"}, 5]}),
            "filter-lang": "cql2-json",
        },
        400,
        "filter",
    ),  # fmt: skip
    (ITEMS, {"filter": "name = 'a'", "filter-lang": "cql-text"}, 400, "filter-lang"),
    (
        ITEMS,
        {"filter": "S_INTERSECTS(geometry, POINT(1 2))", "filter-crs": "EPSG:9999"},
        400,
        "filter-crs",
    ),  # fmt: skip
    (ITEMS, {"crs": "EPSG:9999"}, 400, "crs"),
    (ITEMS, {"crs": "http://www.opengis.net/def/crs/EPSG/0/2000"}, 400, "crs"),
    (ITEMS, {"bbox": "1,2,3"}, 400, "bbox"),
    (ITEMS, {"bbox": "a,b,c,d"}, 400, "bbox"),
    (ITEMS, {"bbox": "nan,1,2,3"}, 400, "bbox"),
    (ITEMS, {"bbox": "120.5,33,120.4,34"}, 400, "bbox"),  # inverted
    (ITEMS, {"bbox": "0,0,200,10"}, 400, "bbox"),  # outside CRS84
    (ITEMS, {"bbox": "0,0,10,100"}, 400, "bbox"),
    (ITEMS, {"bbox": "120,33,121,34", "bbox-crs": EPSG + "4326"}, 400, "bbox"),  # lon/lat swapped
    (ITEMS, {"bbox": "3600000,500000,3700000,600000", "bbox-crs": EPSG + "4528"}, 400, "bbox"),
    (ITEMS, {"bbox": "0,0,3e7,1", "bbox-crs": EPSG + "3857"}, 400, "bbox"),
    (ITEMS, {"bbox": "120,33,121,34", "bbox-crs": "EPSG:9999"}, 400, "bbox-crs"),
    (ITEMS, {"bbox-crs": EPSG + "4490"}, 400, "bbox-crs"),
    (ITEMS, {"limit": "10001"}, 400, "limit"),
    (ITEMS, {"limit": "0"}, 400, "limit"),
    (ITEMS, {"limit": "-1"}, 400, "limit"),
    (ITEMS, {"limit": "ten"}, 400, "limit"),
    (ITEMS, {"limit": "1e3"}, 400, "limit"),
    (ITEMS, {"offset": "-5"}, 400, "offset"),
    (ITEMS, {"offset": "99999999999999999999"}, 400, "offset"),
    (ITEMS, {"datetime": "yesterday"}, 400, "datetime"),
    (ITEMS, {"datetime": "2024-01-01/2023-01-01"}, 400, "datetime"),
    (ITEMS, {"datetime": "../.."}, 400, "datetime"),
    (ITEMS, {"datetime": "2024-13-01"}, 400, "datetime"),
    (ITEMS, {"sortby": "owner"}, 400, "sortby"),
    (ITEMS, {"sortby": "-"}, 400, "sortby"),
    (ITEMS, {"sortby": "name;drop"}, 400, "sortby"),
    (ITEMS, {"properties": "code,nosuch"}, 400, "properties"),
    (ITEMS, {"skipGeometry": "maybe"}, 400, "skipGeometry"),
    (ITEMS, {"resulttype": "all"}, 400, "resulttype"),
    (ITEMS, {"nosuch": "1"}, 400, "nosuch"),
    (ITEMS + "?limit=1&limit=2", {}, 400, "limit"),
    (ITEMS, {"f": "xml"}, 400, None),  # pygeoapi: unsupported format
    (ITEMS, {"f": "html", "limit": "abc"}, 400, None),
    (ITEMS, {"f": "html", "limit": "10001"}, 400, None),
    (ITEMS, {"f": "html", "filter": "name = "}, 400, None),
    (ITEMS, {"f": "html", "bbox": "1,2"}, 400, None),
    (ITEMS, {"f": "html", "crs": "EPSG:9999"}, 400, None),
    (ITEMS, {"f": "html", "sortby": "nosuch"}, 400, None),
    (ITEMS, {"f": "html", "filter": "owner = 'x'"}, 400, None),
]


@pytest.mark.parametrize(("path", "params", "status", "field"), BAD, ids=range(len(BAD)))
def test_bad_input_is_a_4xx_problem(
    ogc: TestClient, path: str, params: dict[str, Any], status: int, field: str | None
) -> None:
    r = ogc.get(path, params=params or None)
    assert r.status_code == status, r.text
    if params.get("f") == "html":
        return  # pygeoapi's HTML exception page
    assert r.headers["content-type"].startswith(PROBLEM)
    body = r.json()
    assert body["status"] == status and "Traceback" not in r.text
    if field is not None:
        assert field in [e["field"] for e in body["errors"]], body


def test_limit_maximum_comes_from_settings(db_url: str) -> None:
    with make_client(db_url, max_limit=50) as client:
        assert client.get(ITEMS, params={"limit": 50}).status_code == 200
        assert client.get(ITEMS, params={"limit": 51}).status_code == 400


_PARAMS = (
    "bbox bbox-crs crs filter filter-lang filter-crs datetime limit offset sortby properties"
    " skipGeometry resulttype f status"
).split()
_ATOMS = [
    *("", " ", "-1", "0", "1e309", "nan", "inf", "120.4", "33.2", ",", ",,,", "..", "/"),
    *("'", '"', "\\", "%", "_", "(", ")", "[", "]", "{", "}", "null", "true", "json", "html"),
    *("geometry", "name", "code", "=", "<>", "LIKE", "IN", "AND", "NOT", "S_INTERSECTS"),
    *("POINT(1 2)", "BBOX(1,2,3,4)", "TIMESTAMP('x')", "EPSG:4326", "CRS84", "cql2-json"),
    *("2024-01-01", "2024-01-01T00:00:00Z", "完好", "\u0000", "🙂", "-name", "+code"),
]


def _fuzz_cases(n: int) -> list[dict[str, str]]:
    rng = random.Random(320904)
    cases = []
    for _ in range(n):
        params = {}
        for name in rng.sample(_PARAMS, rng.randint(1, 4)):
            params[name] = "".join(rng.choice(_ATOMS) for _ in range(rng.randint(1, 5)))
        cases.append(params)
    return cases


@pytest.mark.parametrize("params", _fuzz_cases(150), ids=range(150))
def test_fuzzed_parameters_never_fail_the_server(ogc: TestClient, params: dict[str, str]) -> None:
    r = ogc.get(ITEMS, params=params)
    assert r.status_code in (200, 400, 404), (params, r.status_code, r.text[:300])
    assert "Traceback" not in r.text
