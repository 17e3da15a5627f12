"""H3 heatmaps (热力图): counts per cell, roll-up, scope, filters, MVT, caching and errors.

One module database (a clone of the sample template) gets a few cases inserted by SQL — some
with their stored ``h3`` cell, some without — so the scope and the NULL-cell path are covered.
Every expectation is computed independently: coordinates read with plain SQL, cells computed
here with h3-py.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import h3
import psycopg
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from spatial.db import drop_database, libpq_url
from spatial.heatmap import parent_cell
from spatial.settings import DatabaseSettings, Settings
from tests.auth_support import bearer
from tests.case_support import clone_database
from tests.tiles_support import decode

URL = "/api/v1/heatmap"
MVT = "application/vnd.mapbox-vector-tile"
PROBLEM = "application/problem+json"
CGCS2000 = "http://www.opengis.net/def/crs/EPSG/0/4490"
T0 = datetime(2026, 3, 1, tzinfo=UTC)

GRID_SQL = "SELECT code FROM city.responsibility_grids ORDER BY code LIMIT 4"
CASE_SQL = """
INSERT INTO city.cases (case_no, source, category, class_code, description, status,
                        department_code, responsibility_grid_code, reporter_user_id,
                        reported_at, geom)
SELECT %s, 'inspector', '事件', '0101010101', '热力图测试', '待受理', %s, code, %s, %s,
       ST_PointOnSurface(geom)
FROM city.responsibility_grids WHERE code = %s
RETURNING id, ST_X(geom), ST_Y(geom)
"""
# case_no, department, grid index, reported (days after T0), store h3, reported by the citizen
CASES = [
    ("HM-1", "D004", 0, 0, True, False),
    ("HM-2", "D004", 0, 1, False, False),
    ("HM-3", "D004", 1, 2, False, False),
    ("HM-4", "D002", 1, 3, True, False),
    ("HM-5", "D002", 2, 4, False, True),
    ("HM-6", "D005", 3, 5, False, False),
]


def _insert_cases(url: str) -> None:
    with psycopg.connect(libpq_url(url)) as conn:
        grids = [r[0] for r in conn.execute(GRID_SQL).fetchall()]
        citizen = conn.execute("SELECT id FROM city.users WHERE username = 'citizen'").fetchone()
        for no, dept, grid, days, store, by_citizen in CASES:
            reporter = citizen[0] if by_citizen else None
            when = T0 + timedelta(days=days)
            args = (no, dept, reporter, when, grids[grid])
            case_id, lon, lat = conn.execute(CASE_SQL, args).fetchone()
            if store:
                cell = h3.str_to_int(h3.latlng_to_cell(lat, lon, 9))
                conn.execute("UPDATE city.cases SET h3 = %s WHERE id = %s", (cell, case_id))


@pytest.fixture(scope="module")
def world(pg_server: str, sample_template: str) -> Iterator[str]:
    url = clone_database(pg_server, sample_template)
    try:
        _insert_cases(url)
        yield url
    finally:
        drop_database(url)


@pytest.fixture(scope="module")
def api(world: str) -> Iterator[TestClient]:
    app = create_app(Settings(db=DatabaseSettings(url=world)))
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


def points(url: str, table: str, where: str = "TRUE", *args: Any) -> list[tuple[float, float]]:
    """(lon, lat) of the rows of ``city.<table> t`` matching ``where``."""
    query = f"SELECT ST_X(t.geom), ST_Y(t.geom) FROM city.{table} t WHERE {where}"
    with psycopg.connect(libpq_url(url)) as conn:
        return [(x, y) for x, y in conn.execute(query, args).fetchall()]


def cell(lon: float, lat: float, res: int) -> str:
    """The documented cell of a point: at res ≤ 9 the parent of its res-9 cell.

    H3 children are not exactly inside their parent, so near an edge the parent of a point's
    res-9 cell can differ from the res-7/8 cell containing the point; the heatmap follows H3's
    logical hierarchy (what the stored ``h3`` column rolls up to) so resolutions nest exactly.
    """
    if res >= 9:
        return h3.latlng_to_cell(lat, lon, res)
    return h3.cell_to_parent(h3.latlng_to_cell(lat, lon, 9), res)


def expected(pts: list[tuple[float, float]], res: int) -> dict[str, int]:
    """Counts per cell computed with h3-py."""
    return dict(Counter(cell(lon, lat, res) for lon, lat in pts))


def counts(body: dict[str, Any]) -> dict[str, int]:
    out = {f["properties"]["h3"]: f["properties"]["count"] for f in body["features"]}
    assert len(out) == len(body["features"]) == body["cells"]
    assert sum(out.values()) == body["total"]
    return out


def get(client: TestClient, **params: Any) -> Any:
    headers = params.pop("headers", None)
    r = client.get(URL, params=params, headers=headers)
    assert r.status_code == 200, r.text
    return r.json()


# --- H3 bit arithmetic ---------------------------------------------------------------------


@pytest.mark.parametrize("res", range(10))
def test_parent_bit_math_matches_h3(res: int) -> None:
    for lon, lat in [(120.47, 33.2), (-73.9, 40.7), (151.2, -33.9), (0.0, 89.9), (12.5, -88.0)]:
        cell = h3.api.basic_int.latlng_to_cell(lat, lon, 9)
        assert parent_cell(cell, res) == h3.api.basic_int.cell_to_parent(cell, res)


# --- counts --------------------------------------------------------------------------------


@pytest.mark.parametrize("res", [7, 8, 9, 10, 11])
def test_part_counts_equal_h3py_counts(api: TestClient, world: str, res: int) -> None:
    body = get(api, layer="parts", res=res, geometry="false")
    assert body["res"] == res and body["layer"] == "parts"
    pts = points(world, "parts")
    assert counts(body) == expected(pts, res)
    assert body["total"] == len(pts) > 0


def test_roll_up_equals_cell_to_parent(api: TestClient) -> None:
    fine = counts(get(api, layer="parts", res=9, geometry="false"))
    for res in (7, 8):
        rolled: Counter[str] = Counter()
        for cell, n in fine.items():
            rolled[h3.cell_to_parent(cell, res)] += n
        assert counts(get(api, layer="parts", res=res, geometry="false")) == dict(rolled)


def test_hexagons_are_h3_boundaries_in_lon_lat(api: TestClient) -> None:
    r = api.get(URL, params={"layer": "pois", "res": 8})
    assert r.status_code == 200 and r.headers["content-type"] == "application/geo+json"
    assert r.headers["content-crs"] == f"<{CGCS2000}>"
    body = r.json()
    assert body["type"] == "FeatureCollection" and body["crs"] == CGCS2000
    for feature in body["features"][:50]:
        ring = feature["geometry"]["coordinates"][0]
        want = [(lon, lat) for lat, lon in h3.cell_to_boundary(feature["properties"]["h3"])]
        assert ring[0] == ring[-1] and len(ring) == len(want) + 1
        for (x, y), (wx, wy) in zip(ring, want, strict=False):
            assert math.isclose(x, wx, abs_tol=1e-6) and math.isclose(y, wy, abs_tol=1e-6)
        assert feature["properties"]["res"] == 8 and feature["id"] == feature["properties"]["h3"]


# --- filters -------------------------------------------------------------------------------


def _middle_box(world: str) -> tuple[float, float, float, float]:
    with psycopg.connect(libpq_url(world)) as conn:
        row = conn.execute(
            "SELECT percentile_cont(0.3) WITHIN GROUP (ORDER BY ST_X(geom)),"
            " percentile_cont(0.3) WITHIN GROUP (ORDER BY ST_Y(geom)),"
            " percentile_cont(0.7) WITHIN GROUP (ORDER BY ST_X(geom)),"
            " percentile_cont(0.7) WITHIN GROUP (ORDER BY ST_Y(geom)) FROM city.parts"
        ).fetchone()
    return tuple(round(v, 6) for v in row)  # type: ignore[return-value]


@pytest.mark.parametrize("res", [8, 10])
def test_bbox_counts_the_points_inside(api: TestClient, world: str, res: int) -> None:
    box = _middle_box(world)
    inside = points(world, "parts", "t.geom && ST_MakeEnvelope(%s, %s, %s, %s, 4490)", *box)
    text = ",".join(map(str, box))
    body = get(api, layer="parts", res=res, bbox=text, geometry="false")
    assert 0 < body["total"] < len(points(world, "parts"))
    assert counts(body) == expected(inside, res)
    assert body["bbox"] == pytest.approx(list(box))
    wgs = get(api, layer="parts", res=res, bbox=text, **{"bbox-crs": "wgs84", "geometry": "0"})
    assert counts(wgs) == counts(body)


def test_bbox_in_gcj02_is_converted(api: TestClient) -> None:
    body = get(api, layer="parts", bbox="120.4,33.1,120.5,33.2", **{"bbox-crs": "gcj02"})
    shifts = [abs(a - b) for a, b in zip(body["bbox"], (120.4, 33.1, 120.5, 33.2), strict=True)]
    assert all(1e-4 < d < 1e-2 for d in shifts)  # GCJ-02 is offset by a few hundred metres


def test_time_window_on_the_temporal_column(api: TestClient, world: str) -> None:
    with psycopg.connect(libpq_url(world)) as conn:
        lo, hi = conn.execute(
            "SELECT percentile_disc(0.25) WITHIN GROUP (ORDER BY initial_time),"
            " percentile_disc(0.75) WITHIN GROUP (ORDER BY initial_time) FROM city.parts"
        ).fetchone()
    assert lo < hi
    where = "t.initial_time >= %s AND t.initial_time < %s"
    want = expected(points(world, "parts", where, lo, hi), 9)
    body = get(api, layer="parts", res=9, geometry="false", **{"from": lo.isoformat()}, to=hi)
    assert counts(body) == want and 0 < body["total"] < len(points(world, "parts"))
    assert datetime.fromisoformat(body["from"]) == lo


def test_a_date_bound_covers_the_whole_china_day(api: TestClient, world: str) -> None:
    body = get(api, layer="cases", headers=bearer(api, "shiftlead"), to="2026-03-02")
    # to=2026-03-02 ends at midnight China time (16:00 UTC): HM-1 and HM-2, not HM-3
    older = points(world, "cases", "t.reported_at < '2026-03-02T16:00:00Z'")
    assert counts(body) == expected(older, 9)


# --- access and data scope -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("user", "where"),
    [
        ("shiftlead", "TRUE"),
        ("handler", "t.department_code = 'D004'"),
        ("citizen", "t.reporter_user_id = (SELECT id FROM city.users WHERE username = 'citizen')"),
    ],
)
@pytest.mark.parametrize("res", [8, 9, 11])
def test_cases_are_counted_within_the_data_scope(
    api: TestClient, world: str, user: str, where: str, res: int
) -> None:
    body = get(api, layer="cases", res=res, headers=bearer(api, user), geometry="false")
    pts = points(world, "cases", where)
    assert counts(body) == expected(pts, res)
    assert body["total"] == len(pts) > 0


def test_handler_sees_only_department_cases(api: TestClient, world: str) -> None:
    mine = get(api, layer="cases", headers=bearer(api, "handler"))["total"]
    everyone = get(api, layer="cases", headers=bearer(api, "shiftlead"))["total"]
    assert mine == len(points(world, "cases", "t.department_code = 'D004'")) >= 3
    assert everyone > mine


def test_cases_need_cases_read(api: TestClient) -> None:
    r = api.get(URL, params={"layer": "cases"})
    assert r.status_code == 401 and r.headers["content-type"].startswith(PROBLEM)
    r = api.get(f"{URL}/tiles/14/13674/6542", params={"layer": "cases"})
    assert r.status_code == 401


def test_public_layer_is_open_and_publicly_cached(api: TestClient) -> None:
    r = api.get(URL, params={"layer": "parts", "res": 7})
    assert r.status_code == 200
    assert r.headers["cache-control"].startswith("public") and r.headers["etag"]
    again = api.get(
        URL, params={"layer": "parts", "res": 7}, headers={"If-None-Match": r.headers["etag"]}
    )
    assert again.status_code == 304


def test_scoped_layer_is_cached_per_principal(api: TestClient) -> None:
    a = api.get(URL, params={"layer": "cases"}, headers=bearer(api, "handler"))
    b = api.get(URL, params={"layer": "cases"}, headers=bearer(api, "shiftlead"))
    assert a.headers["cache-control"].startswith("private") and "Authorization" in a.headers["vary"]
    assert a.headers["etag"] != b.headers["etag"]
    h = {**bearer(api, "handler"), "If-None-Match": a.headers["etag"]}
    assert api.get(URL, params={"layer": "cases"}, headers=h).status_code == 304
    h = {**bearer(api, "shiftlead"), "If-None-Match": a.headers["etag"]}
    assert api.get(URL, params={"layer": "cases"}, headers=h).status_code == 200


def _edge_point() -> tuple[float, float]:
    """A point whose res-8 cell is not the parent of its res-9 cell (near a hexagon edge)."""
    for i in range(100_000):
        lon, lat = 120.45 + (i % 300) * 1e-4, 33.18 + (i // 300) * 1e-4
        fine = h3.latlng_to_cell(lat, lon, 9)
        if h3.cell_to_parent(fine, 8) != h3.latlng_to_cell(lat, lon, 8):
            return lon, lat
    raise AssertionError("no edge point found")


def test_etag_follows_the_layer_version_and_null_cells_roll_up(scratch_url: str) -> None:
    app = create_app(Settings(db=DatabaseSettings(url=scratch_url)))
    with TestClient(app, raise_server_exceptions=False) as client:
        params = {"layer": "parts", "res": 8, "geometry": "false"}
        first = client.get(URL, params=params)
        lon, lat = _edge_point()
        with psycopg.connect(libpq_url(scratch_url)) as conn:
            conn.execute(
                "UPDATE city.parts SET h3 = NULL, geom = ST_SetSRID(ST_Point(%s, %s), 4490)"
                " WHERE code = (SELECT min(code) FROM city.parts)",
                (lon, lat),
            )
        second = client.get(URL, params=params, headers={"If-None-Match": first.headers["etag"]})
        assert second.status_code == 200 and second.headers["etag"] != first.headers["etag"]
        # the row without a stored cell is indexed on the fly, as the parent of its res-9 cell
        assert counts(second.json()) == expected(points(scratch_url, "parts"), 8)
        parent = h3.cell_to_parent(h3.latlng_to_cell(lat, lon, 9), 8)
        assert counts(second.json())[parent] >= 1


# --- vector tiles --------------------------------------------------------------------------


def _tile_of(lon: float, lat: float, z: int) -> tuple[int, int]:
    n = 2**z
    x = int((lon + 180) / 360 * n)
    y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
    return x, y


def _tile_center(z: int, x: int, y: int) -> tuple[float, float]:
    n = 2**z
    lon = (x + 0.5) / n * 360 - 180
    lat = math.degrees(math.atan(math.sinh(math.pi * (1 - 2 * (y + 0.5) / n))))
    return lon, lat


def _busy_tile(world: str, z: int) -> tuple[int, int]:
    with psycopg.connect(libpq_url(world)) as conn:
        lon, lat = conn.execute(
            "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY ST_X(geom)),"
            " percentile_cont(0.5) WITHIN GROUP (ORDER BY ST_Y(geom)) FROM city.parts"
        ).fetchone()
    return _tile_of(lon, lat, z)


@pytest.mark.parametrize("route", ["query", "path"])
def test_mvt_tile_carries_full_cell_counts(api: TestClient, world: str, route: str) -> None:
    z = 13
    x, y = _busy_tile(world, z)
    if route == "query":
        r = api.get(URL, params={"layer": "parts", "res": 9, "f": "mvt", "z": z, "x": x, "y": y})
    else:
        r = api.get(f"{URL}/tiles/{z}/{x}/{y}", params={"layer": "parts", "res": 9})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == MVT
    features = decode(r.content)["heatmap"]["features"]
    got = {f["properties"]["h3"]: f["properties"]["count"] for f in features}
    everything = expected(points(world, "parts"), 9)
    assert got and all(everything[c] == n for c, n in got.items())
    assert all(f["properties"]["res"] == 9 for f in features)
    # every cell whose centre lies inside the tile is there
    inside = [c for c in everything if _tile_of(*h3.cell_to_latlng(c)[::-1], z) == (x, y)]
    assert inside and set(inside) <= set(got)


def test_tile_as_geojson_lists_the_cells_touching_it(api: TestClient, world: str) -> None:
    z = 13
    x, y = _busy_tile(world, z)
    r = api.get(f"{URL}/tiles/{z}/{x}/{y}", params={"layer": "parts", "res": 8, "format": "json"})
    assert r.status_code == 200 and r.json()["tile"] == {"z": z, "x": x, "y": y}
    got = counts(r.json())
    everything = expected(points(world, "parts"), 8)
    assert got and all(everything[c] == n for c, n in got.items())
    centre = h3.latlng_to_cell(*_tile_center(z, x, y)[::-1], 8)
    assert centre in got or centre not in everything


def test_empty_tile_is_204(api: TestClient) -> None:
    r = api.get(f"{URL}/tiles/10/0/0", params={"layer": "parts"})
    assert r.status_code == 204


# --- errors --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "status", "field"),
    [
        ({"layer": "parts", "res": 6}, 422, "res"),
        ({"layer": "parts", "res": 12}, 422, "res"),
        ({"layer": "parts", "bbox": "1,2,3"}, 400, "bbox"),
        ({"layer": "parts", "bbox": "120.5,33,120.4,33.2"}, 400, "bbox"),
        ({"layer": "parts", "bbox": "a,b,c,d"}, 400, "bbox"),
        ({"layer": "parts", "bbox": "120,33,121,34", "bbox-crs": "EPSG:9999"}, 400, "bbox-crs"),
        ({"layer": "nope"}, 404, "layer"),
        ({"layer": "streets"}, 422, "layer"),
        ({"layer": "pois", "from": "2026-01-01"}, 422, "from"),
        ({"layer": "pois", "to": "2026-01-01"}, 422, "to"),
        ({"layer": "parts", "from": "yesterday"}, 400, "from"),
        ({"layer": "parts", "from": "2026-02-01", "to": "2026-01-01"}, 400, "from"),
        ({"layer": "parts", "f": "mvt"}, 400, "z"),
        ({"layer": "parts", "f": "png"}, 400, "f"),
        ({"layer": "parts", "f": "mvt", "z": 3, "x": 8, "y": 0}, 400, "x"),
        ({"layer": "parts", "f": "mvt", "z": 3, "x": 1, "y": 1, "bbox": "1,2,3,4"}, 400, "bbox"),
        ({}, 400, "layer"),
    ],
)
def test_bad_requests_name_the_field(
    api: TestClient, params: dict[str, Any], status: int, field: str
) -> None:
    r = api.get(URL, params=params)
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith(PROBLEM)
    assert field in [e["field"] for e in r.json()["errors"]]


def test_fine_resolution_is_capped(world: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CITY_HEATMAP_MAX_FINE_POINTS", "10")
    app = create_app(Settings(db=DatabaseSettings(url=world)))
    with TestClient(app, raise_server_exceptions=False) as client:
        r = client.get(URL, params={"layer": "parts", "res": 10})
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == "res"
        assert client.get(URL, params={"layer": "parts", "res": 9}).status_code == 200
