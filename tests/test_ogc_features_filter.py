"""OGC API – Features Part 3: CQL2 text and JSON pushed down to PostGIS, same answers as SQL."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient
from pygeoapi.crs import create_crs_transform_spec
from pygeoapi.plugin import load_plugin
from pygeofilter.parsers.cql2_text import parse as parse_cql2_text

from tests.ogc_support import feature_ids, ids, items, open_client, open_pg

Conn = psycopg.Connection[Any]
POLY = "POLYGON((120.46 33.18, 120.50 33.18, 120.50 33.21, 120.46 33.21, 120.46 33.18))"
POLY_SQL = "ST_GeomFromText('" + POLY + "', 4490)"
RING = [[120.46, 33.18], [120.50, 33.18], [120.50, 33.21], [120.46, 33.21], [120.46, 33.18]]
GEOM = {"type": "Polygon", "coordinates": [RING]}


@pytest.fixture(scope="module")
def ogc(db_url: str) -> Iterator[TestClient]:
    yield from open_client(db_url)


@pytest.fixture(scope="module")
def pg(db_url: str) -> Iterator[Conn]:
    yield from open_pg(db_url)


def prop(name: str) -> dict[str, str]:
    return {"property": name}


def op(name: str, *args: Any) -> dict[str, Any]:
    return {"op": name, "args": list(args)}


NOT_OK = op("not", op("=", prop("status"), "完好"))
POINT = {"type": "Point", "coordinates": [120.48, 33.2]}
POINT_SQL = "ST_SetSRID(ST_MakePoint(120.48, 33.2), 4490)"
BBOX_JSON = {"bbox": [120.46, 33.18, 120.50, 33.21]}
LINE = "LINESTRING(120.44 33.17, 120.52 33.23)"
LINE_JSON = {"type": "LineString", "coordinates": [[120.44, 33.17], [120.52, 33.23]]}
# (layer, CQL2 text, CQL2 JSON, the equivalent SQL WHERE)
CASES: list[tuple[str, str, dict[str, Any], str]] = [
    ("parts", "major_code = '01'", op("=", prop("major_code"), "01"), "major_code = '01'"),
    (
        "parts",
        "major_code <> '01' AND status = '完好'",
        op("and", op("<>", prop("major_code"), "01"), op("=", prop("status"), "完好")),
        "major_code <> '01' AND status = '完好'",
    ),
    ("parts", "name LIKE '%井盖'", op("like", prop("name"), "%井盖"), "name LIKE '%%井盖'"),
    (
        "parts",
        "name NOT LIKE '_水%'",
        op("not", op("like", prop("name"), "_水%")),
        "name NOT LIKE '_水%%'",
    ),
    (
        "parts",
        "major_code IN ('02', '03')",
        op("in", prop("major_code"), ["02", "03"]),
        "major_code IN ('02', '03')",
    ),
    ("roads", "grade BETWEEN 2 AND 3", op("between", prop("grade"), 2, 3), "grade BETWEEN 2 AND 3"),
    ("buildings", "floors >= 11", op(">=", prop("floors"), 11), "floors >= 11"),
    (
        "addresses",
        "number < 10 OR number > 50",
        op("or", op("<", prop("number"), 10), op(">", prop("number"), 50)),
        "number < 10 OR number > 50",
    ),
    (
        "parts",
        "grid_code IS NULL OR status = '破损'",
        op("or", op("isNull", prop("grid_code")), op("=", prop("status"), "破损")),
        "grid_code IS NULL OR status = '破损'",
    ),
    (
        "parts",
        "CASEI(status) = CASEI('完好')",
        op("=", op("casei", prop("status")), op("casei", "完好")),
        "lower(status) = lower('完好')",
    ),
    (
        "parts",
        "initial_time > TIMESTAMP('2022-01-01T00:00:00Z')",
        op(">", prop("initial_time"), {"timestamp": "2022-01-01T00:00:00Z"}),
        "initial_time > '2022-01-01T00:00:00Z'",
    ),
    (
        "parts",
        "major_code = minor_code",
        op("=", prop("major_code"), prop("minor_code")),
        "major_code = minor_code",
    ),
    (
        "parts",
        f"S_INTERSECTS(geometry, {POLY})",
        op("s_intersects", prop("geometry"), GEOM),
        f"ST_Intersects(geom, {POLY_SQL})",
    ),
    (
        "parts",
        "S_INTERSECTS(geometry, BBOX(120.46, 33.18, 120.50, 33.21)) AND NOT status = '完好'",
        op("and", op("s_intersects", prop("geometry"), BBOX_JSON), NOT_OK),
        f"ST_Intersects(geom, {POLY_SQL}) AND NOT status = '完好'",
    ),
    (
        "unit_grids",
        f"S_WITHIN(geometry, {POLY})",
        op("s_within", prop("geometry"), GEOM),
        f"ST_Within(geom, {POLY_SQL})",
    ),
    (
        "streets",
        "S_CONTAINS(geometry, POINT(120.48 33.2))",
        op("s_contains", prop("geometry"), POINT),
        f"ST_Contains(geom, {POINT_SQL})",
    ),
    (
        "parts",
        "CASEI(name) LIKE CASEI('%井盖')",
        op("like", op("casei", prop("name")), op("casei", "%井盖")),
        "lower(name) LIKE lower('%%井盖')",
    ),
    (
        "parts",
        "CASEI(status) IN (CASEI('完好'), CASEI('丢失'))",
        op("in", op("casei", prop("status")), [op("casei", "完好"), op("casei", "丢失")]),
        "lower(status) IN (lower('完好'), lower('丢失'))",
    ),
    (
        "parts",
        f"S_DISJOINT(geometry, {POLY})",
        op("s_disjoint", prop("geometry"), GEOM),
        f"ST_Disjoint(geom, {POLY_SQL})",
    ),
    (
        "unit_grids",
        f"S_OVERLAPS(geometry, {POLY})",
        op("s_overlaps", prop("geometry"), GEOM),
        f"ST_Overlaps(geom, {POLY_SQL})",
    ),
    (
        "roads",
        f"S_INTERSECTS(geometry, {LINE})",
        op("s_intersects", prop("geometry"), LINE_JSON),
        f"ST_Intersects(geom, ST_GeomFromText('{LINE}', 4490))",
    ),
    (
        "roads",
        f"S_CROSSES(geometry, {POLY})",
        op("s_crosses", prop("geometry"), GEOM),
        f"ST_Crosses(geom, {POLY_SQL})",
    ),
]
CASE_IDS = [f"{c[0]}:{c[1][:40]}" for c in CASES]


def _expected(pg: Conn, layer: str, where: str) -> list[str]:
    pk = "code"
    return ids(pg, f"SELECT {pk} FROM {layer} WHERE {where} ORDER BY {pk}")


@pytest.mark.parametrize(("layer", "text", "_json", "where"), CASES, ids=CASE_IDS)
def test_cql2_text_matches_sql(
    ogc: TestClient, pg: Conn, layer: str, text: str, _json: Any, where: str
) -> None:
    expected = _expected(pg, layer, where)
    doc = items(ogc, layer, filter=text, limit=10000)
    assert feature_ids(doc) == expected and doc["numberMatched"] == len(expected)


@pytest.mark.parametrize(("layer", "_text", "cql", "where"), CASES, ids=CASE_IDS)
def test_cql2_json_matches_sql(
    ogc: TestClient, pg: Conn, layer: str, _text: str, cql: dict[str, Any], where: str
) -> None:
    expected = _expected(pg, layer, where)
    params = {"filter": json.dumps(cql), "filter-lang": "cql2-json", "limit": 10000}
    assert feature_ids(items(ogc, layer, **params)) == expected


def test_filters_are_not_trivial(pg: Conn) -> None:
    """Each case selects some but not all rows, so the comparisons above mean something."""
    for layer, _text, _cql, where in CASES:
        total = len(ids(pg, f"SELECT code FROM {layer}"))
        assert 0 < len(_expected(pg, layer, where)) < total, (layer, where)


@pytest.mark.parametrize(
    ("crs", "ring"),
    [
        ("http://www.opengis.net/def/crs/EPSG/0/4326", [(y, x) for x, y in RING]),
        ("http://www.opengis.net/def/crs/EPSG/0/4490", [(y, x) for x, y in RING]),
        ("http://www.opengis.net/def/crs/EPSG/0/3857", None),
        ("http://www.opengis.net/def/crs/EPSG/0/4528", None),
    ],
)
def test_filter_crs_transforms_geometry_literals(
    ogc: TestClient, pg: Conn, crs: str, ring: list[tuple[float, float]] | None
) -> None:
    srid = int(crs.rsplit("/", 1)[1])
    if ring is None:  # project the CRS84 ring with PostGIS, in the CRS's axis order
        wkt = pg.execute(
            "SELECT ST_AsText(ST_Transform(ST_GeomFromText(%s, 4326), %s))", (POLY, srid)
        ).fetchone()
        assert wkt is not None
        pts = [tuple(map(float, p.split())) for p in wkt[0][9:-2].split(",")]
        ring = [(y, x) for x, y in pts] if srid == 4528 else pts
    poly = "POLYGON((" + ", ".join(f"{a!r} {b!r}" for a, b in ring) + "))"
    expected = _expected(pg, "parts", f"ST_Intersects(geom, {POLY_SQL})")
    params = {"filter": f"S_INTERSECTS(geometry, {poly})", "filter-crs": crs, "limit": 10000}
    doc = items(ogc, "parts", **params)
    assert feature_ids(doc) == expected


@pytest.mark.parametrize(
    ("function", "sql_function"), [("s_equals", "ST_Equals"), ("s_touches", "ST_Touches")]
)
def test_equals_and_touches_with_a_grid_from_the_database(
    ogc: TestClient, pg: Conn, function: str, sql_function: str
) -> None:
    code = ids(pg, "SELECT min(code) FROM unit_grids WHERE code > '320904001005'")[0]
    geometry = ids(pg, "SELECT ST_AsGeoJSON(geom, 17) FROM unit_grids WHERE code = %s", code)[0]
    expected = _expected(
        pg,
        "unit_grids",
        f"{sql_function}(geom, (SELECT geom FROM unit_grids WHERE code = '{code}'))",
    )
    cql = op(function, prop("geometry"), json.loads(geometry))
    doc = items(
        ogc, "unit_grids", filter=json.dumps(cql), limit=100, **{"filter-lang": "cql2-json"}
    )
    assert feature_ids(doc) == expected and expected
    assert (expected == [code]) == (function == "s_equals")


def test_fast_path_and_pygeoapi_provider_agree(ogc: TestClient) -> None:
    """The pygeoapi provider runs the same SQL builder: identical features."""
    config = ogc.app.state.ogc.pygeoapi.config  # type: ignore[attr-defined]
    provider_def = config["resources"]["parts"]["providers"][0]
    provider = load_plugin("provider", provider_def)
    text = f"S_INTERSECTS(geometry, {POLY}) AND major_code IN ('01', '02')"
    from_provider = provider.query(
        offset=5,
        limit=20,
        bbox=[33.17, 120.45, 33.22, 120.51],  # pygeoapi hands over EPSG:4490 in lat/lon order
        sortby=[{"property": "name", "order": "-"}],
        select_properties=["code", "name", "status"],
        filterq=parse_cql2_text(text),
        crs_transform_spec=create_crs_transform_spec(provider_def, None),  # as pygeoapi does
    )
    fast = items(
        ogc,
        "parts",
        offset=5,
        limit=20,
        bbox="33.17,120.45,33.22,120.51",
        **{"bbox-crs": "http://www.opengis.net/def/crs/EPSG/0/4490"},
        sortby="-name",
        properties="code,name,status",
        filter=text,
    )
    assert from_provider["features"] == fast["features"] and len(fast["features"]) == 20
    assert from_provider["numberMatched"] == fast["numberMatched"]


def test_pygeoapi_html_items_use_the_provider(ogc: TestClient) -> None:
    r = ogc.get("/ogc/collections/parts/items", params={"f": "html", "filter": "major_code = '05'"})
    assert r.status_code == 200 and "城市部件" in r.text
