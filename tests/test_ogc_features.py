"""OGC API – Features at /ogc: landing page, conformance, collections, counts, CRS, paging."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import psycopg
import pytest
from fastapi.testclient import TestClient
from pygeoapi.config import validate_config

from api.ogc.conformance import CONFORMANCE
from layers.base import default_registry
from spatial.features_crs import SUPPORTED
from tests.ogc_support import (
    CJK,
    GEOJSON,
    LAYER_IDS,
    PUBLIC_LAYER_IDS,
    feature_ids,
    ids,
    items,
    make_client,
    open_client,
    open_pg,
    scalar,
)

Conn = psycopg.Connection[Any]
CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
EPSG = "http://www.opengis.net/def/crs/EPSG/0/"


@pytest.fixture(scope="module")
def ogc(db_url: str) -> Iterator[TestClient]:
    yield from open_client(db_url)


@pytest.fixture(scope="module")
def pg(db_url: str) -> Iterator[Conn]:
    yield from open_pg(db_url)


def test_landing_page_links_to_the_api(ogc: TestClient) -> None:
    body = ogc.get("/ogc", params={"f": "json"}).json()
    rels = {link["rel"]: link["href"] for link in body["links"]}
    assert rels["conformance"] == "http://testserver/ogc/conformance"
    assert rels["data"] == "http://testserver/ogc/collections"
    assert rels["service-desc"].startswith("http://testserver/ogc/openapi")


def test_openapi_describes_every_collection(ogc: TestClient) -> None:
    doc = ogc.get("/ogc/openapi", params={"f": "json"}).json()
    for layer in LAYER_IDS:
        assert f"/collections/{layer}/items" in doc["paths"]
    assert doc["servers"][0]["url"] == "http://testserver/ogc"


def test_conformance_declares_exactly_what_is_implemented(ogc: TestClient) -> None:
    declared = ogc.get("/ogc/conformance").json()["conformsTo"]
    assert sorted(declared) == sorted(CONFORMANCE)
    for must in (
        "features-1/1.0/conf/core",
        "conf/geojson",
        "conf/oas30",
        "features-2/1.0/conf/crs",
    ):
        assert any(must in c for c in declared), must
    for cls in ("cql2-text", "cql2-json", "basic-cql2", "features-filter", "spatial-functions"):
        assert any(c.endswith("/" + cls) for c in declared), cls
    assert not any("create-replace-delete" in c or "temporal-functions" in c for c in declared)


def test_conformance_html_lists_the_same_classes(ogc: TestClient) -> None:
    html = ogc.get("/ogc/conformance", params={"f": "html"}).text
    assert all(c in html for c in CONFORMANCE)
    assert "create-replace-delete" not in html


def test_generated_pygeoapi_config_is_valid(ogc: TestClient) -> None:
    config = ogc.app.state.ogc.pygeoapi.config  # type: ignore[attr-defined]
    assert validate_config(config)
    assert list(config["resources"]) == LAYER_IDS
    providers = [r["providers"][0]["name"] for r in config["resources"].values()]
    assert set(providers) == {"api.ogc.provider.CityFeatureProvider"}


def test_collections_are_the_registry_layers(ogc: TestClient) -> None:
    """Anonymous callers see the public layers (tests/test_layer_access.py: the others)."""
    collections = ogc.get("/ogc/collections", params={"f": "json"}).json()["collections"]
    assert [c["id"] for c in collections] == PUBLIC_LAYER_IDS
    for c in collections:
        assert CJK.search(c["title"]), c["title"]
        assert c["storageCrs"] == EPSG + "4490"
        assert c["crs"][0] == CRS84 and {s.uri for s in SUPPORTED} == set(c["crs"])
        assert any(link["rel"] == "items" for link in c["links"])


@pytest.mark.parametrize("layer", PUBLIC_LAYER_IDS)
def test_collection_feature_count_matches_postgis(ogc: TestClient, pg: Conn, layer: str) -> None:
    spec = default_registry().get(layer)
    expected = scalar(pg, f"SELECT count(*) FROM {spec.qualified_table}")
    doc = items(ogc, layer, limit=5)
    assert doc["numberMatched"] == expected
    assert doc["numberReturned"] == len(doc["features"]) == min(5, expected)


def test_parts_expose_the_standard_fields(ogc: TestClient) -> None:
    props = items(ogc, "parts", limit=1)["features"][0]["properties"]
    digits = {"code": 16, "class_code": 10, "major_code": 2, "minor_code": 2, "grid_code": 15}
    for name, n in digits.items():
        assert props[name].isdigit() and len(props[name]) == n, name
    assert props["name"] and props["status"] in ("完好", "破损", "丢失", "占用", "废弃")
    assert "geom" not in props and "h3" not in props


def test_unit_grid_code_has_15_digits(ogc: TestClient) -> None:
    feature = items(ogc, "unit_grids", limit=1)["features"][0]
    assert (
        len(feature["properties"]["code"]) == 15 and feature["id"] == feature["properties"]["code"]
    )
    assert feature["geometry"]["type"] == "MultiPolygon"


def test_parts_queryables_follow_the_registry(ogc: TestClient) -> None:
    r = ogc.get("/ogc/collections/parts/queryables", params={"f": "json"})
    props = r.json()["properties"]
    spec = default_registry().get("parts")
    assert set(props) == {"geometry", *spec.queryables, "initial_time"}
    assert props["initial_time"]["format"] == "date-time"


def test_item_by_id(ogc: TestClient, pg: Conn) -> None:
    code = scalar(pg, "SELECT min(code) FROM parts")
    r = ogc.get(f"/ogc/collections/parts/items/{code}")
    assert r.status_code == 200 and r.headers["content-type"].startswith(GEOJSON)
    body = r.json()
    assert body["id"] == code and body["properties"]["code"] == code
    assert {link["rel"] for link in body["links"]} >= {"self", "collection"}


def _expected_xy(pg: Conn, table: str, pk: str, fid: str, srid: int) -> list[float]:
    point = "geom" if table == "parts" else "ST_PointN(ST_ExteriorRing(ST_GeometryN(geom, 1)), 1)"
    row = pg.execute(
        f"SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_Transform({point}, %s) p"
        f" FROM {table} WHERE {pk} = %s) s",
        (srid, fid),
    ).fetchone()
    assert row is not None
    return [float(row[0]), float(row[1])]


@pytest.mark.parametrize("crs", SUPPORTED, ids=lambda c: c.curie)
@pytest.mark.parametrize("layer", ["parts", "unit_grids"])
def test_crs_output_matches_postgis_in_axis_order(
    ogc: TestClient, pg: Conn, crs: Any, layer: str
) -> None:
    spec = default_registry().get(layer)
    fid = scalar(pg, f"SELECT min({spec.pk}) FROM {spec.table}")
    r = ogc.get(f"/ogc/collections/{layer}/items/{fid}", params={"crs": crs.uri})
    assert r.status_code == 200 and r.headers["content-crs"] == f"<{crs.uri}>"
    coords = r.json()["geometry"]["coordinates"]
    first = coords if layer == "parts" else coords[0][0][0]
    x, y = _expected_xy(pg, spec.table, spec.pk, fid, crs.srid)
    expected = [y, x] if crs.latlon else [x, y]
    tolerance = 1e-3 if crs.srid in (3857, 4528) else 1e-7
    assert first == pytest.approx(expected, abs=tolerance)
    listed = items(ogc, layer, crs=crs.uri, limit=1)
    assert listed["features"][0]["geometry"] is not None


def test_default_output_is_crs84_lon_lat(ogc: TestClient) -> None:
    r = ogc.get("/ogc/collections/parts/items", params={"limit": 1})
    assert r.headers["content-crs"] == f"<{CRS84}>"
    lon, lat = r.json()["features"][0]["geometry"]["coordinates"]
    assert 120 < lon < 121 and 33 < lat < 34


BOX84 = (120.46, 33.18, 120.50, 33.21)


@pytest.mark.parametrize("crs", SUPPORTED, ids=lambda c: c.curie)
def test_bbox_crs_selects_what_postgis_selects(ogc: TestClient, pg: Conn, crs: Any) -> None:
    box = pg.execute(
        "SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM"
        " (SELECT ST_Transform(ST_MakeEnvelope(%s, %s, %s, %s, 4326), %s)::box2d e) s",
        (*BOX84, crs.srid),
    ).fetchone()
    assert box is not None
    x1, y1, x2, y2 = box
    param = (y1, x1, y2, x2) if crs.latlon else (x1, y1, x2, y2)
    expected = ids(
        pg,
        "SELECT code FROM parts WHERE ST_Intersects(geom,"
        " ST_Transform(ST_MakeEnvelope(%s, %s, %s, %s, %s), 4490)) ORDER BY code",
        x1,
        y1,
        x2,
        y2,
        crs.srid,
    )
    doc = items(ogc, "parts", bbox=",".join(map(repr, param)), **{"bbox-crs": crs.uri}, limit=10000)
    assert 10 < len(expected) and feature_ids(doc) == expected
    assert doc["numberMatched"] == len(expected)


def test_sortby_orders_like_postgres(ogc: TestClient, pg: Conn) -> None:
    expected = ids(pg, "SELECT code FROM parts ORDER BY name DESC, code ASC LIMIT 50")
    doc = items(ogc, "parts", sortby="-name,+code", limit=50)
    assert feature_ids(doc) == expected


def test_properties_selects_fields(ogc: TestClient) -> None:
    doc = items(ogc, "parts", properties="code,name", limit=3)
    assert all(set(f["properties"]) == {"code", "name"} for f in doc["features"])
    empty = items(ogc, "parts", properties="", limit=3)
    assert all(f["properties"] == {} for f in empty["features"])


@pytest.mark.parametrize(
    ("value", "where"),
    [
        ("2021-01-01T00:00:00Z/2022-12-31T23:59:59Z", "initial_time BETWEEN %s AND %s"),
        ("../2020-06-30T00:00:00Z", "initial_time <= %s"),
        ("2023-01-01T00:00:00Z/..", "initial_time >= %s"),
    ],
)
def test_datetime_filters_the_time_column(
    ogc: TestClient, pg: Conn, value: str, where: str
) -> None:
    bounds = [b for b in value.split("/") if b != ".."]
    expected = scalar(pg, f"SELECT count(*) FROM parts WHERE {where}", *bounds)
    doc = items(ogc, "parts", datetime=value, limit=1)
    assert doc["numberMatched"] == expected and expected > 0


def test_datetime_date_covers_the_whole_day(ogc: TestClient, pg: Conn) -> None:
    day = scalar(pg, "SELECT min((initial_time AT TIME ZONE 'UTC')::date)::text FROM parts")
    expected = scalar(
        pg,
        "SELECT count(*) FROM parts WHERE initial_time >= (%s::date)::timestamp AT TIME ZONE 'UTC'"
        " AND initial_time < (%s::date + 1)::timestamp AT TIME ZONE 'UTC'",
        day,
        day,
    )
    assert items(ogc, "parts", datetime=day, limit=1)["numberMatched"] == expected > 0


def test_queryable_as_query_parameter(ogc: TestClient, pg: Conn) -> None:
    expected = scalar(pg, "SELECT count(*) FROM parts WHERE major_code = '02'")
    assert items(ogc, "parts", major_code="02", limit=1)["numberMatched"] == expected


def test_paging_links_walk_the_whole_collection(ogc: TestClient, pg: Conn) -> None:
    expected = ids(pg, "SELECT code FROM communities ORDER BY code")
    seen: list[str] = []
    url: str | None = "/ogc/collections/communities/items?limit=10"
    pages = 0
    while url:
        doc = ogc.get(url).json()
        links = {link["rel"]: link["href"] for link in doc["links"]}
        assert links["self"].startswith("http://testserver/ogc/collections/communities/items")
        assert ("prev" in links) == (pages > 0)
        seen += feature_ids(doc)
        url = links.get("next")
        pages += 1
    assert seen == expected and pages == -(-len(expected) // 10)


def test_result_type_hits_returns_only_the_count(ogc: TestClient, pg: Conn) -> None:
    doc = items(ogc, "roads", resulttype="hits")
    assert doc["features"] == [] and doc["numberMatched"] == scalar(
        pg, "SELECT count(*) FROM roads"
    )


def test_html_falls_through_to_pygeoapi(ogc: TestClient) -> None:
    r = ogc.get(
        "/ogc/collections/parts/items", params={"limit": 2}, headers={"Accept": "text/html"}
    )
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert "城市部件" in r.text


HTML_PAGES = [
    "/ogc?f=html",
    "/ogc/conformance?f=html",
    "/ogc/collections?f=html",
    "/ogc/collections/parts?f=html",
    "/ogc/collections/parts/queryables?f=html",
    "/ogc/collections/parts/items?f=html&limit=5",
    "/ogc/collections/unit_grids/items?f=html&limit=5",
    "/ogc/openapi?f=html",
    "/ogc/openapi?f=html&ui=redoc",
]
ASSET = re.compile(r"""<(?:script|link|img)\b[^>]*?\b(?:src|href)\s*=\s*["']([^"']+)["']""", re.I)


@pytest.mark.parametrize("page", HTML_PAGES)
def test_html_pages_need_no_cdn(ogc: TestClient, page: str) -> None:
    r = ogc.get(page)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    html = r.text
    assets = ASSET.findall(html)
    assert assets, page
    for url in assets:
        host = urlsplit(url).netloc
        assert host in ("", "testserver"), f"{page}: external asset {url}"
        if url.startswith(("http://testserver/", "/")) and "?f=" not in url:
            assert ogc.get(url).status_code == 200, url
    scripts = " ".join(re.findall(r"<script\b[^>]*>(.*?)</script>", html, re.S))
    for url in re.findall(r"https?://[^\s'\"<>]+", scripts):
        assert urlsplit(url).netloc == "testserver", f"{page}: script fetches {url}"


def test_items_page_with_one_item_page(ogc: TestClient, pg: Conn) -> None:
    code = scalar(pg, "SELECT min(code) FROM parts")
    r = ogc.get(f"/ogc/collections/parts/items/{code}", params={"f": "html"})
    assert r.status_code == 200 and code in r.text
    assert "unpkg.com" not in r.text and "/ogc/vendor/leaflet/leaflet.js" in r.text


def test_number_matched_is_capped_not_a_full_count(db_url: str, pg: Conn) -> None:
    """``parts`` (count: estimate) counts at most cap + 1 rows, then asks the planner."""
    with make_client(db_url, count_cap=100) as client:
        doc = items(client, "parts", limit=1)
        small = items(client, "parts", limit=1, major_code="05")
    total = scalar(pg, "SELECT count(*) FROM parts")
    estimate = pg.execute("EXPLAIN (FORMAT JSON) SELECT 1 FROM parts").fetchone()
    assert estimate is not None
    assert doc["numberMatched"] == max(101, estimate[0][0]["Plan"]["Plan Rows"])
    assert total > 101 and abs(doc["numberMatched"] - total) / total < 0.2
    assert small["numberMatched"] == scalar(
        pg, "SELECT count(*) FROM parts WHERE major_code = '05'"
    )


@pytest.mark.parametrize("layer", ["parts", "unit_grids", "roads"])
def test_collection_extent_covers_the_data(ogc: TestClient, pg: Conn, layer: str) -> None:
    bbox = ogc.get(f"/ogc/collections/{layer}", params={"f": "json"}).json()["extent"]["spatial"]
    x1, y1, x2, y2 = bbox["bbox"][0]
    row = pg.execute(
        f"SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM (SELECT ST_Extent(geom) e"
        f" FROM {layer}) s"
    ).fetchone()
    assert row is not None
    tol = 1e-4  # the estimate is stored in single precision
    assert x1 - tol <= row[0] and y1 - tol <= row[1] and row[2] <= x2 + tol and row[3] <= y2 + tol
    assert x2 - x1 < 0.2 and y2 - y1 < 0.2  # the layer's own extent, not the county default
