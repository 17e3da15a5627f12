"""WFS 2.0 at /wfs, proved with OWSLib and GDAL's WFS driver against a live server."""

from __future__ import annotations

import json
import re
import subprocess
import xml.etree.ElementTree as ET

import psycopg
import pytest
from fastapi.testclient import TestClient
from owslib.wfs import WebFeatureService

from layers.base import default_registry

LAYERS = [spec.id for spec in default_registry() if spec.public]  # anonymous callers see these
NS = {
    "wfs": "http://www.opengis.net/wfs/2.0",
    "gml": "http://www.opengis.net/gml/3.2",
    "city": "https://cityops.dev/city",
    "ows": "http://www.opengis.net/ows/1.1",
}
GET = "/wfs?SERVICE=WFS&VERSION=2.0.0&REQUEST=GetFeature"


def count(psql_url: str, layer: str, where: str = "TRUE") -> int:
    with psycopg.connect(psql_url) as conn:
        return conn.execute(f"SELECT count(*) FROM city.{layer} WHERE {where}").fetchone()[0]


def members(xml: str) -> list[ET.Element]:
    return ET.fromstring(xml.encode()).findall("wfs:member", NS)


def test_owslib_reads_capabilities(live_server: str) -> None:
    wfs = WebFeatureService(f"{live_server}/wfs", version="2.0.0")
    assert sorted(wfs.contents) == sorted(f"city:{layer}" for layer in LAYERS)
    assert wfs.contents["city:parts"].title == "城市部件"


@pytest.fixture(scope="module")
def box(psql_url: str) -> tuple[float, float, float, float]:
    """A small box around some door plates of the sample."""
    with psycopg.connect(psql_url) as conn:
        x, y = conn.execute(
            "SELECT ST_X(geom), ST_Y(geom) FROM city.addresses "
            "WHERE kind = '门牌' ORDER BY code LIMIT 1"
        ).fetchone()
    return (x - 0.002, y - 0.002, x + 0.002, y + 0.002)


def test_owslib_getfeature_bbox(live_server: str, psql_url: str, box: tuple) -> None:
    wfs = WebFeatureService(f"{live_server}/wfs", version="2.0.0")
    resp = wfs.getfeature(
        typename=["city:addresses"], bbox=(*box, "urn:ogc:def:crs:EPSG::4326"), maxfeatures=5000
    )
    expected = count(
        psql_url,
        "addresses",
        "ST_Intersects(geom, ST_MakeEnvelope({}, {}, {}, {}, 4490))".format(*box),
    )
    assert expected > 0
    assert len(members(resp.read().decode())) == expected


@pytest.mark.parametrize("layer", LAYERS)
def test_gdal_reads_every_layer_with_count_and_crs(
    live_server: str, psql_url: str, layer: str
) -> None:
    out = subprocess.run(
        ["ogrinfo", "-ro", "-so", f"WFS:{live_server}/wfs", f"city:{layer}"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    assert f"Feature Count: {count(psql_url, layer)}" in out
    assert 'ID["EPSG",4490]' in out


def test_gdal_bbox_coordinates_lon_lat(live_server: str, box: tuple) -> None:
    out = subprocess.run(
        [
            "ogrinfo",
            "-ro",
            "-q",
            f"WFS:{live_server}/wfs",
            "city:addresses",
            "-spat",
            *map(str, box),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    points = [tuple(map(float, p)) for p in re.findall(r"POINT \(([\d.]+) ([\d.]+)\)", out)]
    assert points
    assert all(box[0] <= x <= box[2] and box[1] <= y <= box[3] for x, y in points)


def test_paging_is_consistent(client: TestClient) -> None:
    first = members(client.get(f"{GET}&TYPENAMES=city:parts&COUNT=10").text)
    page1 = members(client.get(f"{GET}&TYPENAMES=city:parts&COUNT=5&STARTINDEX=0").text)
    page2 = members(client.get(f"{GET}&TYPENAMES=city:parts&COUNT=5&STARTINDEX=5").text)
    ids = [m[0].get(f"{{{NS['gml']}}}id") for m in first]
    assert ids == [m[0].get(f"{{{NS['gml']}}}id") for m in page1 + page2]


def test_next_link_and_counts(client: TestClient, psql_url: str) -> None:
    root = ET.fromstring(client.get(f"{GET}&TYPENAMES=city:streets&COUNT=2").content)
    assert root.get("numberMatched") == str(count(psql_url, "streets"))
    assert root.get("numberReturned") == "2" and "STARTINDEX=2" in root.get("next")


def test_hits(client: TestClient, psql_url: str) -> None:
    root = ET.fromstring(client.get(f"{GET}&TYPENAMES=city:unit_grids&RESULTTYPE=hits").content)
    assert root.get("numberMatched") == str(count(psql_url, "unit_grids"))
    assert root.get("numberReturned") == "0"


def test_geojson_output(client: TestClient) -> None:
    r = client.get(f"{GET}&TYPENAMES=city:pois&COUNT=3&OUTPUTFORMAT=application/json")
    body = r.json()
    assert r.headers["content-type"].startswith("application/json")
    assert len(body["features"]) == 3
    lon, lat = body["features"][0]["geometry"]["coordinates"]
    assert 120.4 < lon < 120.6 and 33.1 < lat < 33.3


@pytest.mark.parametrize("srid", [3857, 4528])
def test_srsname_reprojects(client: TestClient, psql_url: str, srid: int) -> None:
    r = client.get(f"{GET}&TYPENAMES=city:addresses&COUNT=1&SRSNAME=urn:ogc:def:crs:EPSG::{srid}")
    member = members(r.text)[0][0]
    code = member.find("city:code", NS).text
    x, y = map(float, member.find(".//gml:pos", NS).text.split())
    with psycopg.connect(psql_url) as conn:
        ex, ey = conn.execute(
            "SELECT ST_X(g), ST_Y(g) FROM (SELECT ST_Transform(geom, %s) g "
            "FROM city.addresses WHERE code = %s) s",
            (srid, code),
        ).fetchone()
    assert abs(x - ex) < 0.01 and abs(y - ey) < 0.01


def test_default_srs_is_lat_lon_urn(client: TestClient) -> None:
    r = client.get(f"{GET}&TYPENAMES=city:pois&COUNT=1")
    point = members(r.text)[0][0].find(".//gml:Point", NS)
    lat, lon = map(float, point.find("gml:pos", NS).text.split())
    assert point.get("srsName") == "urn:ogc:def:crs:EPSG::4490"
    assert 33.1 < lat < 33.3 and 120.4 < lon < 120.6


def test_describe_feature_type_schema(client: TestClient) -> None:
    r = client.get(
        "/wfs?SERVICE=WFS&VERSION=2.0.0&REQUEST=DescribeFeatureType&TYPENAMES=city:parts"
    )
    root = ET.fromstring(r.content)
    names = {e.get("name") for e in root.iter("{http://www.w3.org/2001/XMLSchema}element")}
    assert {"parts", "code", "class_code", "major_code", "minor_code", "grid_code", "geom"} <= names


@pytest.mark.parametrize(
    ("query", "code", "locator"),
    [
        ("REQUEST=GetFeature&TYPENAMES=city:nope", "InvalidParameterValue", "TYPENAMES"),
        ("REQUEST=GetFeature", "MissingParameterValue", "TYPENAMES"),
        ("REQUEST=GetFeature&TYPENAMES=city:parts&BBOX=1,2,3", "InvalidParameterValue", "BBOX"),
        ("REQUEST=GetFeature&TYPENAMES=city:parts&BBOX=a,b,c,d", "InvalidParameterValue", "BBOX"),
        ("REQUEST=GetFeature&TYPENAMES=city:parts&BBOX=3,2,1,0", "InvalidParameterValue", "BBOX"),
        ("REQUEST=GetFeature&TYPENAMES=city:parts&COUNT=999999", "InvalidParameterValue", "COUNT"),
        ("REQUEST=GetFeature&TYPENAMES=city:parts&COUNT=-1", "InvalidParameterValue", "COUNT"),
        (
            "REQUEST=GetFeature&TYPENAMES=city:parts&STARTINDEX=x",
            "InvalidParameterValue",
            "STARTINDEX",
        ),
        (
            "REQUEST=GetFeature&TYPENAMES=city:parts&SRSNAME=EPSG:9999",
            "InvalidParameterValue",
            "SRSNAME",
        ),
        (
            "REQUEST=GetFeature&TYPENAMES=city:parts&OUTPUTFORMAT=shape-zip",
            "InvalidParameterValue",
            "OUTPUTFORMAT",
        ),
        ("REQUEST=Transaction", "OperationNotSupported", "REQUEST"),
        ("", "MissingParameterValue", "REQUEST"),
    ],
)
def test_bad_requests_get_exception_reports(
    client: TestClient, query: str, code: str, locator: str
) -> None:
    r = client.get(f"/wfs?SERVICE=WFS&VERSION=2.0.0&{query}")
    assert 400 <= r.status_code < 600 and r.status_code != 500
    exc = ET.fromstring(r.content).find("ows:Exception", NS)
    assert exc.get("exceptionCode") == code and exc.get("locator") == locator


def test_geojson_numbers_are_json(client: TestClient) -> None:
    body = json.loads(client.get(f"{GET}&TYPENAMES=city:streets&OUTPUTFORMAT=json").text)
    assert body["numberMatched"] == body["numberReturned"] == 3
