"""Layer visibility and row-level data scope (数据范围) on every spatial output path.

One module database holds six cases spread over three streets, four responsibility grids and
three departments. Principals come from the test middleware (tests/security_support.py) or,
end to end, from the demo users through HTTP Basic. Every expectation is computed by plain SQL
on the database, independently of the service.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import morecantile
import psycopg
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.security.policy import unguarded_routes
from data_samples.demo_users import DEMO_PASSWORD
from layers.base import default_registry
from spatial.db import drop_database, libpq_url
from spatial.security.principal import EVERYTHING, NOTHING, DataScope, Principal
from spatial.settings import DatabaseSettings, Settings
from tests.case_support import clone_database
from tests.raster_helpers import opaque_pixels, ows_exception, read_png
from tests.security_support import as_, basic, user, with_principal
from tests.tiles_support import decode

PUBLIC = [spec.id for spec in default_registry() if spec.public]
PROBLEM = "application/problem+json"
CHALLENGE = 'Basic realm="cityops"'
WFS = "/wfs?SERVICE=WFS&VERSION=2.0.0"
STREETS = ("320904001", "320904002", "320904400")
ITEMS = "/ogc/collections/cases/items"
Z = 12  # the cases' first published zoom is 10; at 12 the district spans a few tiles


@dataclass(frozen=True)
class World:
    """The inserted cases and the codes the scopes refer to."""

    url: str
    ids: dict[str, int]  # case_no → id
    grids: dict[str, str]  # GA…GF → responsibility grid code
    citizen: int  # the demo citizen's user id

    def expected(self, where: str, *params: Any) -> set[str]:
        """case_no of the cases matching ``where`` (SQL over ``city.cases c``)."""
        with psycopg.connect(libpq_url(self.url)) as conn:
            rows = conn.execute(f"SELECT c.case_no FROM city.cases c WHERE {where}", params)
            return {r[0] for r in rows.fetchall()}


GRID_SQL = """
SELECT g.code FROM city.responsibility_grids g JOIN city.communities c ON c.code = g.community_code
WHERE c.street_code = %s ORDER BY g.code
"""
CASE_SQL = """
INSERT INTO city.cases (case_no, source, category, class_code, description, status, department_code,
                        responsibility_grid_code, reporter_user_id, geom)
SELECT %s, 'inspector', %s, '0101010101', '测试案卷', '待受理', %s, %s, %s, ST_PointOnSurface(geom)
FROM city.responsibility_grids WHERE code = %s
RETURNING id
"""


def _insert(url: str) -> World:
    with psycopg.connect(libpq_url(url)) as conn:
        conn.execute("TRUNCATE city.cases CASCADE")  # only the cases below, not the samples
        s1, s2, s3 = ([r[0] for r in conn.execute(GRID_SQL, (s,)).fetchall()] for s in STREETS)
        grids = {"GA": s1[0], "GB": s1[-1], "GC": s2[0], "GE": s2[-1], "GD": s3[0], "GF": s3[-1]}
        citizen = conn.execute("SELECT id FROM city.users WHERE username = 'citizen'").fetchone()[0]
        rows = [  # case_no, category, department, grid column, reporter, located in grid
            ("LA-1", "事件", "D004", "GA", None, "GA"),
            ("LA-2", "事件", "D004", "GC", None, "GC"),
            ("LA-3", "事件", "D002", "GB", None, "GB"),
            ("LA-4", "部件", "D002", "GD", None, "GD"),
            ("LA-5", "事件", "D005", None, citizen, "GE"),
            ("LA-6", "部件", None, "GD", None, "GF"),
        ]
        ids = {}
        for no, category, dept, column, reporter, at in rows:
            code = grids[column] if column else None
            args = (no, category, dept, code, reporter, grids[at])
            ids[no] = conn.execute(CASE_SQL, args).fetchone()[0]
    return World(url, ids, grids, citizen)


@pytest.fixture(scope="module")
def world(pg_server: str, sample_template: str) -> Iterator[World]:
    url = clone_database(pg_server, sample_template)
    try:
        yield _insert(url)
    finally:
        drop_database(url)


def _principals(world: World) -> dict[str, Principal]:
    read = "cases:read"
    return {
        "nocase": user("nocase", "stats:read", scope=EVERYTHING),
        "all": user("all", read, scope=EVERYTHING),
        "dept": user("dept", read, scope=DataScope(departments=("D004",))),
        "area": user("area", read, scope=DataScope(areas=(STREETS[0],))),
        "grid": user("grid", read, scope=DataScope(grids=(world.grids["GD"],))),
        "owner": user("owner", read, scope=DataScope(owner=world.citizen), user_id=world.citizen),
        "union": user("union", read, scope=DataScope(departments=("D002",), owner=world.citizen)),
        "empty": user("empty", read, scope=NOTHING),
    }


def _client(world: World) -> Iterator[TestClient]:
    app = with_principal(
        create_app(Settings(db=DatabaseSettings(url=world.url))), _principals(world)
    )
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


@pytest.fixture(scope="module")
def client(world: World) -> Iterator[TestClient]:
    yield from _client(world)


def expected_for(world: World, name: str) -> set[str]:
    """The cases principal ``name`` may see, by SQL."""
    street = "EXISTS (SELECT 1 FROM city.streets s WHERE s.code = %s"
    street += " AND ST_Intersects(s.geom, c.geom))"
    return {
        "all": lambda: world.expected("TRUE"),
        "dept": lambda: world.expected("c.department_code = 'D004'"),
        "area": lambda: world.expected(street, STREETS[0]),
        "grid": lambda: world.expected("c.responsibility_grid_code = %s", world.grids["GD"]),
        "owner": lambda: world.expected("c.reporter_user_id = %s", world.citizen),
        "union": lambda: world.expected(
            "c.department_code = 'D002' OR c.reporter_user_id = %s", world.citizen
        ),
        "empty": lambda: set(),
    }[name]()


SCOPED = ["all", "dept", "area", "grid", "owner", "union", "empty"]


# --- route policies -----------------------------------------------------------------------


def test_every_spatial_route_carries_one_policy(client: TestClient) -> None:
    mine = ("/ogc", "/tiles", "/wfs", "/wmts", "/raster")
    bad = [r for r in unguarded_routes(client.app.routes) if r.split(" ")[1].startswith(mine)]
    assert bad == []


# --- who may read the cases layer at all --------------------------------------------------

REFUSED_JSON = [
    ITEMS + "?f=json",
    ITEMS + "/1?f=json",
    "/ogc/collections/cases?f=json",
    "/ogc/collections/cases/queryables?f=json",
    ITEMS + "?f=html",
    ITEMS + "?f=jsonld",
    "/ogc/collections/cases/tiles",
    "/ogc/collections/cases/tiles/WebMercatorQuad",
    "/ogc/collections/cases/tiles/WebMercatorQuad/12/1635/3418",
    "/tiles/cases/12/3418/1635.mvt",
    "/tiles/cases/tilejson.json",
]
REFUSED_OWS = [
    WFS + "&REQUEST=GetFeature&TYPENAMES=city:cases",
    WFS + "&REQUEST=GetFeature&TYPENAMES=cases&RESULTTYPE=hits",
    WFS + "&REQUEST=DescribeFeatureType&TYPENAMES=city:parts,city:cases",
    "/wmts/1.0.0/cases/default/WebMercatorQuad/16/26180/54690.png",
    "/wmts?SERVICE=WMTS&REQUEST=GetTile&VERSION=1.0.0&LAYER=cases&STYLE=default"
    "&FORMAT=image/png&TILEMATRIXSET=WebMercatorQuad&TILEMATRIX=16&TILEROW=26180&TILECOL=54690",
]


@pytest.mark.parametrize("path", REFUSED_JSON)
@pytest.mark.parametrize(("who", "status"), [(None, 401), ("nocase", 403)])
def test_cases_are_refused_as_problem_json(
    client: TestClient, path: str, who: str | None, status: int
) -> None:
    r = client.get(path, headers=as_(who) if who else None)
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith(PROBLEM)
    assert r.json()["status"] == status and "LA-" not in r.text
    assert ("www-authenticate" in r.headers) == (status == 401)


@pytest.mark.parametrize("path", REFUSED_OWS)
@pytest.mark.parametrize(("who", "status"), [(None, 401), ("nocase", 403)])
def test_cases_are_refused_as_ows_exception_reports(
    client: TestClient, path: str, who: str | None, status: int
) -> None:
    r = client.get(path, headers=as_(who) if who else None)
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/xml"
    code, locator = ows_exception(r.content)
    assert code == "NoApplicableCode" and locator in ("TYPENAMES", "layer")
    assert r.headers.get("www-authenticate") == (CHALLENGE if status == 401 else None)


@pytest.mark.parametrize("who", [None, "nocase"])
def test_lists_leave_out_what_the_caller_cannot_read(client: TestClient, who: str | None) -> None:
    headers = as_(who) if who else None
    for fmt in ("json", "jsonld"):
        r = client.get("/ogc/collections", params={"f": fmt}, headers=headers)
        assert r.status_code == 200 and "/collections/cases" not in r.text
        assert r.headers["content-length"] == str(len(r.content))
    listed = [
        c["id"]
        for c in client.get("/ogc/collections?f=json", headers=headers).json()["collections"]
    ]
    assert listed == PUBLIC
    landing = client.get("/ogc/", params={"f": "jsonld"}, headers=headers)
    assert landing.status_code == 200 and "/collections/cases" not in landing.text
    wfs = client.get(WFS + "&REQUEST=GetCapabilities", headers=headers).text
    assert "city:cases" not in wfs and "city:parts" in wfs
    schema = client.get(WFS + "&REQUEST=DescribeFeatureType", headers=headers).text
    assert 'name="cases"' not in schema and "partsType" in schema
    wmts = client.get("/wmts/1.0.0/WMTSCapabilities.xml", headers=headers).text
    assert "<ows:Identifier>cases</ows:Identifier>" not in wmts
    assert "<ows:Identifier>parts</ows:Identifier>" in wmts


def test_readers_see_the_cases_everywhere(client: TestClient) -> None:
    headers = as_("dept")
    listed = [
        c["id"]
        for c in client.get("/ogc/collections?f=json", headers=headers).json()["collections"]
    ]
    assert listed == [*PUBLIC, "cases"]
    assert client.get("/ogc/collections/cases?f=json", headers=headers).status_code == 200
    assert "city:cases" in client.get(WFS + "&REQUEST=GetCapabilities", headers=headers).text
    wmts = client.get("/wmts?SERVICE=WMTS&REQUEST=GetCapabilities", headers=headers).text
    assert "<ows:Identifier>cases</ows:Identifier>" in wmts
    tilejson = client.get("/tiles/cases/tilejson.json", headers=headers)
    assert tilejson.status_code == 200


@pytest.mark.parametrize(
    "path",
    [
        "/ogc/collections/parts/items?f=json&limit=1",
        "/ogc/collections/parts?f=json",
        "/ogc/collections/parts/items?f=html&limit=1",
        "/ogc/conformance",
        "/ogc/tileMatrixSets",
        "/tiles/parts/tilejson.json",
        WFS + "&REQUEST=GetFeature&TYPENAMES=city:streets&COUNT=1",
        "/wmts?SERVICE=WMTS&REQUEST=GetCapabilities",
        "/raster",
    ],
)
def test_public_map_data_stays_anonymous(client: TestClient, path: str) -> None:
    assert client.get(path).status_code == 200


def test_empty_scope_is_not_an_error(client: TestClient) -> None:
    doc = client.get(ITEMS, params={"f": "json"}, headers=as_("empty")).json()
    assert doc["numberMatched"] == doc["numberReturned"] == 0 and doc["features"] == []


# --- row-level scope ----------------------------------------------------------------------


def _items(client: TestClient, who: str, **params: Any) -> dict[str, Any]:
    r = client.get(ITEMS, params={"f": "json", "limit": 100, **params}, headers=as_(who))
    assert r.status_code == 200, r.text
    return r.json()


def _case_nos(features: list[dict[str, Any]]) -> set[str]:
    return {f["properties"]["case_no"] for f in features}


@pytest.mark.parametrize("who", SCOPED)
def test_items_and_counts_follow_the_scope(client: TestClient, world: World, who: str) -> None:
    expected = expected_for(world, who)
    doc = _items(client, who)
    assert _case_nos(doc["features"]) == expected
    assert doc["numberMatched"] == len(expected)
    hits = _items(client, who, resulttype="hits")
    assert hits["numberMatched"] == len(expected) and hits["features"] == []
    events = _items(client, who, filter="category = '事件'")
    assert _case_nos(events["features"]) == expected & world.expected("c.category = '事件'")


@pytest.mark.parametrize("who", SCOPED)
def test_item_outside_the_scope_is_not_found(client: TestClient, world: World, who: str) -> None:
    visible = expected_for(world, who)
    for no, fid in world.ids.items():
        r = client.get(f"{ITEMS}/{fid}", params={"f": "json"}, headers=as_(who))
        assert r.status_code == (200 if no in visible else 404), (no, r.text)
    r = client.get(f"{ITEMS}/not-a-number", params={"f": "json"}, headers=as_(who))
    assert r.status_code == 404


def _wfs_features(client: TestClient, who: str) -> set[str]:
    path = WFS + "&REQUEST=GetFeature&TYPENAMES=city:cases&OUTPUTFORMAT=application/json"
    r = client.get(path, headers=as_(who))
    assert r.status_code == 200, r.text
    return _case_nos(r.json()["features"])


def _wfs_hits(client: TestClient, headers: dict[str, str]) -> int:
    r = client.get(
        WFS + "&REQUEST=GetFeature&TYPENAMES=city:cases&RESULTTYPE=hits", headers=headers
    )
    assert r.status_code == 200, r.text
    return int(ET.fromstring(r.content).attrib["numberMatched"])


@pytest.mark.parametrize("who", SCOPED)
def test_wfs_follows_the_scope(client: TestClient, world: World, who: str) -> None:
    expected = expected_for(world, who)
    assert _wfs_features(client, who) == expected
    assert _wfs_hits(client, as_(who)) == len(expected)
    gml = client.get(WFS + "&REQUEST=GetFeature&TYPENAMES=city:cases", headers=as_(who))
    assert set(re.findall(r"LA-\d", gml.text)) == expected


def _district_tiles(world: World) -> list[morecantile.Tile]:
    with psycopg.connect(libpq_url(world.url)) as conn:
        bounds = conn.execute(
            "SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) "
            "FROM (SELECT ST_Extent(geom) AS e FROM city.cases) s"
        ).fetchone()
    return list(morecantile.tms.get("WebMercatorQuad").tiles(*bounds, zooms=[Z]))


def _mvt_cases(client: TestClient, tiles: list[morecantile.Tile], headers: dict[str, str]):
    found: set[str] = set()
    for t in tiles:
        r = client.get(f"/tiles/cases/{t.z}/{t.x}/{t.y}.mvt", headers=headers)
        assert r.status_code in (200, 204), r.text
        if r.status_code == 200:
            found |= {f["properties"]["case_no"] for f in decode(r.content)["cases"]["features"]}
    return found


@pytest.mark.parametrize("who", SCOPED)
def test_vector_tiles_follow_the_scope(client: TestClient, world: World, who: str) -> None:
    tiles = _district_tiles(world)
    assert _mvt_cases(client, tiles, as_(who)) == expected_for(world, who)
    t = tiles[0]
    r = client.get(
        f"/ogc/collections/cases/tiles/WebMercatorQuad/{t.z}/{t.y}/{t.x}", headers=as_(who)
    )
    assert r.headers["cache-control"].startswith("private")


def _lonlat(world: World, case_no: str) -> tuple[float, float]:
    with psycopg.connect(libpq_url(world.url)) as conn:
        return conn.execute(
            "SELECT ST_X(geom), ST_Y(geom) FROM city.cases WHERE case_no = %s", (case_no,)
        ).fetchone()


def test_wmts_draws_only_the_scope(client: TestClient, world: World) -> None:
    """A z17 tile holding LA-3 (D002) alone: drawn for everyone, transparent for D004."""
    tms = morecantile.tms.get("WebMercatorQuad")
    tile = tms.tile(*_lonlat(world, "LA-3"), 17)
    alone = [no for no in world.ids if tms.tile(*_lonlat(world, no), 17) == tile]
    assert alone == ["LA-3"]
    path = f"/wmts/1.0.0/cases/default/WebMercatorQuad/17/{tile.y}/{tile.x}.png"
    drawn = client.get(path, headers=as_("all"))
    assert drawn.status_code == 200 and opaque_pixels(read_png(drawn.content)) > 0
    assert drawn.headers["cache-control"].startswith("private")
    for who in ("dept", "empty", "union"):
        r = client.get(path, headers=as_(who))
        assert r.status_code == 200
        assert (opaque_pixels(read_png(r.content)) > 0) == ("LA-3" in expected_for(world, who))


def test_pygeoapi_pages_follow_the_scope(client: TestClient, world: World) -> None:
    """HTML comes from pygeoapi's provider, in a worker thread."""
    visible = expected_for(world, "dept")
    html = client.get(ITEMS, params={"f": "html", "limit": 100}, headers=as_("dept"))
    assert html.status_code == 200
    assert set(re.findall(r"LA-\d", html.text)) == visible
    inside, outside = world.ids["LA-1"], world.ids["LA-3"]
    assert (
        client.get(f"{ITEMS}/{inside}", params={"f": "html"}, headers=as_("dept")).status_code
        == 200
    )
    assert (
        client.get(f"{ITEMS}/{outside}", params={"f": "html"}, headers=as_("dept")).status_code
        == 404
    )


# --- the tile cache never crosses principals ----------------------------------------------


def test_cached_tiles_are_not_shared_across_scopes(world: World) -> None:
    tiles = _district_tiles(world)
    for client in _client(world):  # a fresh app: a cold cache
        cache = client.app.state.tiles.cache
        want = {who: expected_for(world, who) for who in ("all", "dept", "area")}
        assert _mvt_cases(client, tiles, as_("all")) == want["all"]
        hits = cache.stats()["hits"]
        assert _mvt_cases(client, tiles, as_("dept")) == want["dept"]  # not the cached "all"
        assert cache.stats()["hits"] == hits
        assert _mvt_cases(client, tiles, as_("all")) == want["all"]
        assert _mvt_cases(client, tiles, as_("dept")) == want["dept"]
        assert _mvt_cases(client, tiles, as_("area")) == want["area"]
        assert cache.stats()["hits"] == hits + 2 * len(tiles)
        t = tiles[0]
        path = f"/tiles/cases/{t.z}/{t.x}/{t.y}.mvt"
        etag = client.get(path, headers=as_("all")).headers["etag"]
        again = client.get(path, headers={**as_("dept"), "If-None-Match": etag})
        assert again.status_code != 304 and again.headers["etag"] != etag
        mine = client.get(path, headers={**as_("dept"), "If-None-Match": again.headers["etag"]})
        assert mine.status_code == 304


# --- end to end: real credentials (demo users, HTTP Basic) --------------------------------

DEMO = {  # demo user → the SQL condition of its data scope
    "acceptor": "TRUE",  # position acceptor: scope all
    "handler": "c.department_code = 'D004'",  # unit scope, department D004 (no street)
    "street": "EXISTS (SELECT 1 FROM city.streets s WHERE s.code = '320904001'"
    " AND ST_Intersects(s.geom, c.geom))",  # unit scope, department S001 → 丰华街道
    "citizen": "c.reporter_user_id = (SELECT id FROM city.users WHERE username = 'citizen')",
}


@pytest.mark.parametrize("username", list(DEMO))
def test_demo_users_see_their_scope(client: TestClient, world: World, username: str) -> None:
    expected = world.expected(DEMO[username])
    assert expected, "the scope should see at least one of the inserted cases"
    headers = basic(username)
    doc = client.get(ITEMS, params={"f": "json", "limit": 100}, headers=headers).json()
    assert _case_nos(doc["features"]) == expected
    assert _wfs_hits(client, headers) == len(expected)
    html = client.get(ITEMS, params={"f": "html", "limit": 100}, headers=headers).text
    assert set(re.findall(r"LA-\d", html)) == expected


def test_bad_password_is_refused(client: TestClient) -> None:
    r = client.get(ITEMS, params={"f": "json"}, headers=basic("handler", "wrong"))
    assert r.status_code == 401


needs_gdal = pytest.mark.skipif(shutil.which("ogrinfo") is None, reason="gdal-bin not installed")


@needs_gdal
def test_gdal_reads_cases_over_wfs_with_credentials(live_server: str, db_url: str) -> None:
    """GDAL (as QGIS) sees city:cases only when it sends Basic credentials."""
    command = ["ogrinfo", "-ro", "-so", f"WFS:{live_server}/wfs", "city:cases"]
    env = {**os.environ, "GDAL_HTTP_TIMEOUT": "60"}
    anonymous = subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)
    assert anonymous.returncode != 0
    env |= {"GDAL_HTTP_AUTH": "BASIC", "GDAL_HTTP_USERPWD": f"acceptor:{DEMO_PASSWORD}"}
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    count = int(re.search(r"Feature Count: (\d+)", done.stdout).group(1))
    with psycopg.connect(libpq_url(db_url)) as conn:  # the acceptor's scope is everything
        assert count == conn.execute("SELECT count(*) FROM city.cases").fetchone()[0]
