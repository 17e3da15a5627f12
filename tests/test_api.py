"""API skeleton: health, catalogue, coordinate conversion, RFC 7807 problems everywhere."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from spatial.settings import DatabaseSettings, Settings

PROBLEM = "application/problem+json"


def test_health_reports_versions(client: TestClient) -> None:
    body = client.get("/health").json()
    assert body["status"] == "ok"
    assert body["postgis"].startswith("3.") and body["postgresql"][:2].isdigit()
    assert body["storage_crs"].endswith("/4490")


def test_openapi_and_docs(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    assert "/health" in spec["paths"] and "/api/v1/crs/convert" in spec["paths"]
    assert client.get("/docs").status_code == 200


def test_layer_catalogue_lists_registry(client: TestClient) -> None:
    ids = [layer["id"] for layer in client.get("/api/v1/layers").json()]
    assert {"streets", "communities", "unit_grids", "parts", "cases"} <= set(ids)


def test_unknown_layer_is_problem(client: TestClient) -> None:
    r = client.get("/api/v1/layers/nope")
    assert r.status_code == 404 and r.headers["content-type"] == PROBLEM
    assert "parts" in r.json()["detail"]


def test_unknown_route_is_problem(client: TestClient) -> None:
    r = client.get("/no/such/thing")
    assert r.status_code == 404 and r.headers["content-type"] == PROBLEM
    assert r.json()["status"] == 404


def test_gcj02_converts_to_storage(client: TestClient) -> None:
    r = client.get(
        "/api/v1/crs/convert",
        params={"lon": 120.4720, "lat": 33.1980, "from": "gcj02", "to": "cgcs2000"},
    )
    body = r.json()
    assert r.status_code == 200 and body["output"]["crs"] == "cgcs2000"
    assert abs(body["output"]["lon"] - 120.4720) > 1e-4  # the GCJ-02 offset was removed


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"lon": "abc", "lat": 33.2, "from": "wgs84"}, "lon"),
        ({"lon": 120.4, "lat": 95, "from": "wgs84"}, "lat"),
        ({"lon": 120.4, "lat": 33.2, "from": "mars"}, "from"),
        ({"lon": 120.4, "lat": 33.2}, "from"),
    ],
)
def test_bad_input_names_the_field(client: TestClient, params: dict, field: str) -> None:
    r = client.get("/api/v1/crs/convert", params=params)
    assert r.status_code == 400 and r.headers["content-type"] == PROBLEM
    assert field in [e["field"] for e in r.json()["errors"]]


def test_database_down_is_503_problem() -> None:
    settings = Settings(
        db=DatabaseSettings(url="postgresql://postgres@127.0.0.1:9/none", connect_timeout_s=0.5)
    )
    with TestClient(create_app(settings), raise_server_exceptions=False) as c:
        r = c.get("/health")
    assert r.status_code == 503 and r.headers["content-type"] == PROBLEM
    assert "Traceback" not in r.text


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_docs_pages_need_no_cdn(client: TestClient, page: str) -> None:
    html = client.get(page).text
    assert "http://" not in html and "https://" not in html
    for asset in ("/static/docs/swagger-ui-bundle.js", "/static/docs/redoc.standalone.js"):
        if asset in html:
            assert client.get(asset).status_code == 200
