"""Tests for spatial.crs: client CRS parsing, GCJ-02/BD-09 conversions and pyproj transforms."""

import math

import numpy as np
import pytest
from pyproj import Geod

from spatial.crs import (
    CRS84_URI,
    STORAGE_SRID,
    SUPPORTED_SRIDS,
    ClientCRS,
    bd09_to_gcj02,
    bd09_to_wgs84,
    crs_uri,
    from_storage,
    gcj02_to_bd09,
    gcj02_to_wgs84,
    out_of_china,
    parse_client_crs,
    to_storage,
    transform,
    transformer,
    wgs84_to_bd09,
    wgs84_to_gcj02,
)

GEOD = Geod(ellps="WGS84")
MAX_ERROR_M = 0.5

CHINA_POINTS = {
    "dafeng": (120.47, 33.20),
    "beijing": (116.4074, 39.9042),
    "shanghai": (121.4737, 31.2304),
    "guangzhou": (113.2644, 23.1291),
    "urumqi": (87.6168, 43.8256),
    "lhasa": (91.1172, 29.6469),
    "harbin": (126.5350, 45.8038),
    "haikou": (110.3312, 20.0311),
}
OUTSIDE_CHINA = {
    "tokyo": (139.6917, 35.6895),
    "london": (-0.1276, 51.5072),
    "new_york": (-74.0060, 40.7128),
    "sydney": (151.2093, -33.8688),
    "moscow": (37.6173, 55.7558),
    "null_island": (0.0, 0.0),
}

# Published reference pairs, all (lon, lat).
# [E] googollee/eviltransform test suite (python/test.py, go/transform_test.go, javascript/test.js),
#     TESTS = (wgsLat, wgsLng, gcjLat, gcjLng); its gcj2wgs_exact is also asserted < 0.5 m there.
# [W] wandergis/coordtransform README.md "result" block for input (116.404, 39.915).
# [F] feiquan123/coordtransform-go coordtransform_test.go, input p = (114.363089, 30.517411).
# [J] ipcjs/coordtransform_dart test "compare with coordtransform.java".
WGS84_GCJ02_PAIRS = {
    "E-shanghai": ((121.5272106, 31.1774276), (121.531541859215, 31.17530398364597)),
    "E-shenzhen": ((113.912316, 22.543847), (113.9171764808363, 22.540796131694766)),
    "E-beijing": ((116.377817, 39.911954), (116.38404722455657, 39.91334545536069)),
    "W-beijing": ((116.404, 39.915), (116.41024449916938, 39.91640428150164)),
    "F-wuhan": ((114.363089, 30.517411), (114.36861383019243, 30.515078352018758)),
}
GCJ02_BD09_PAIRS = {
    "W-beijing": ((116.404, 39.915), (116.41036949371029, 39.92133699351021)),
    "F-wuhan": ((114.363089, 30.517411), (114.36951652929112, 30.523754384540837)),
}
# BD-09 -> GCJ-02 references come from the closed-form inverse (off by ~0.1 m at most).
BD09_GCJ02_PAIRS = {
    "W-beijing": ((116.404, 39.915), (116.39762729119315, 39.90865673957631)),
    "F-wuhan": ((114.363089, 30.517411), (114.356659806424, 30.511068245460944)),
}
WGS84_BD09_PAIRS = {
    "F-wuhan": ((114.363089, 30.517411), (114.3750500836037, 30.521392123098003)),
    "J-nanjing": ((118.3013077, 32.2719040), (118.31309502519456, 32.27614034221775)),
}

CONVERTERS = [
    wgs84_to_gcj02,
    gcj02_to_wgs84,
    gcj02_to_bd09,
    bd09_to_gcj02,
    wgs84_to_bd09,
    bd09_to_wgs84,
]


def distance_m(a: tuple[float, float], b: tuple[float, float]) -> float:
    return GEOD.inv(a[0], a[1], b[0], b[1])[2]


def pairs(table: dict) -> pytest.MarkDecorator:
    return pytest.mark.parametrize(("src", "expected"), list(table.values()), ids=list(table))


def points(table: dict) -> pytest.MarkDecorator:
    return pytest.mark.parametrize(("lon", "lat"), list(table.values()), ids=list(table))


@points(CHINA_POINTS)
def test_wgs84_gcj02_round_trip(lon: float, lat: float) -> None:
    assert distance_m(gcj02_to_wgs84(*wgs84_to_gcj02(lon, lat)), (lon, lat)) < MAX_ERROR_M


@points(CHINA_POINTS)
def test_wgs84_bd09_round_trip(lon: float, lat: float) -> None:
    assert distance_m(bd09_to_wgs84(*wgs84_to_bd09(lon, lat)), (lon, lat)) < MAX_ERROR_M


@points(CHINA_POINTS)
def test_gcj02_offset_is_hundreds_of_metres_in_china(lon: float, lat: float) -> None:
    assert 50 < distance_m(wgs84_to_gcj02(lon, lat), (lon, lat)) < 1000


@points(CHINA_POINTS)
def test_gcj02_inverse_converges_below_1e7_degree(lon: float, lat: float) -> None:
    glon, glat = wgs84_to_gcj02(*gcj02_to_wgs84(lon, lat))
    assert abs(glon - lon) < 1e-7
    assert abs(glat - lat) < 1e-7


@points(CHINA_POINTS)
def test_bd09_inverse_is_exact(lon: float, lat: float) -> None:
    blon, blat = gcj02_to_bd09(*bd09_to_gcj02(lon, lat))
    assert abs(blon - lon) < 1e-9
    assert abs(blat - lat) < 1e-9


@pairs(WGS84_GCJ02_PAIRS)
def test_wgs84_to_gcj02_reference(src: tuple, expected: tuple) -> None:
    assert distance_m(wgs84_to_gcj02(*src), expected) < MAX_ERROR_M


@pairs(WGS84_GCJ02_PAIRS)
def test_gcj02_to_wgs84_reference(src: tuple, expected: tuple) -> None:
    assert distance_m(gcj02_to_wgs84(*expected), src) < MAX_ERROR_M


@pairs(GCJ02_BD09_PAIRS)
def test_gcj02_to_bd09_reference(src: tuple, expected: tuple) -> None:
    assert distance_m(gcj02_to_bd09(*src), expected) < MAX_ERROR_M


@pairs(BD09_GCJ02_PAIRS)
def test_bd09_to_gcj02_reference(src: tuple, expected: tuple) -> None:
    assert distance_m(bd09_to_gcj02(*src), expected) < MAX_ERROR_M


@pairs(WGS84_BD09_PAIRS)
def test_wgs84_to_bd09_reference(src: tuple, expected: tuple) -> None:
    assert distance_m(wgs84_to_bd09(*src), expected) < MAX_ERROR_M


@points(OUTSIDE_CHINA)
def test_gcj02_equals_wgs84_outside_china(lon: float, lat: float) -> None:
    assert out_of_china(lon, lat)
    assert wgs84_to_gcj02(lon, lat) == (lon, lat)
    assert gcj02_to_wgs84(lon, lat) == (lon, lat)


@points(CHINA_POINTS)
def test_china_points_are_inside_box(lon: float, lat: float) -> None:
    assert not out_of_china(lon, lat)


def test_pyproj_4490_to_4528_at_dafeng() -> None:
    easting, northing = transform(120.47, 33.20, 4490, 4528)
    assert 40_543_000 < easting < 40_545_000
    assert 3_674_000 < northing < 3_676_000


@points({k: v for k, v in CHINA_POINTS.items() if 118.5 < v[0] < 121.5})
def test_pyproj_4528_round_trip_below_1mm(lon: float, lat: float) -> None:
    back = transform(*transform(lon, lat, 4490, 4528), 4528, 4490)
    assert distance_m(back, (lon, lat)) < 1e-3


@points(CHINA_POINTS)
def test_pyproj_3857_round_trip(lon: float, lat: float) -> None:
    back = transform(*transform(lon, lat, 4490, 3857), 3857, 4490)
    assert distance_m(back, (lon, lat)) < 1e-3


def test_pyproj_3857_matches_spherical_mercator() -> None:
    x, y = transform(120.47, 33.20, STORAGE_SRID, 3857)
    r = 6378137.0
    assert x == pytest.approx(r * math.radians(120.47), abs=1e-3)
    expected_y = r * math.log(math.tan(math.pi / 4 + math.radians(33.20) / 2))
    assert y == pytest.approx(expected_y, abs=1e-3)


def test_pyproj_treats_cgcs2000_as_wgs84() -> None:
    assert transform(120.47, 33.20, 4490, 4326) == pytest.approx((120.47, 33.20), abs=1e-12)


def test_transformer_is_cached() -> None:
    assert transformer(4490, 4528) is transformer(4490, 4528)


def test_pyproj_transform_arrays_match_scalars() -> None:
    lons, lats = np.array(list(CHINA_POINTS.values())).T
    xs, ys = transform(lons, lats, 4490, 4528)
    expected = [transform(lon, lat, 4490, 4528) for lon, lat in zip(lons, lats, strict=True)]
    np.testing.assert_allclose(np.column_stack([xs, ys]), expected, rtol=0, atol=1e-6)


@pytest.mark.parametrize("func", CONVERTERS, ids=lambda f: f.__name__)
def test_vectorised_matches_scalar(func) -> None:
    table = {**CHINA_POINTS, **OUTSIDE_CHINA}
    lons, lats = np.array(list(table.values())).T
    xs, ys = func(lons, lats)
    expected = [func(lon, lat) for lon, lat in table.values()]
    assert xs.shape == lons.shape
    np.testing.assert_allclose(np.column_stack([xs, ys]), expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize("func", CONVERTERS, ids=lambda f: f.__name__)
def test_converters_preserve_shape_and_scalar_type(func) -> None:
    lons = np.full((2, 3), 120.47)
    xs, ys = func(lons, np.full((2, 3), 33.20))
    assert xs.shape == ys.shape == (2, 3)
    x, y = func(120.47, 33.20)
    assert type(x) is float and type(y) is float


@pytest.mark.parametrize("crs", list(ClientCRS))
def test_to_from_storage_round_trip(crs: ClientCRS) -> None:
    for lon, lat in CHINA_POINTS.values():
        back = to_storage(*from_storage(lon, lat, crs), crs)
        assert distance_m(back, (lon, lat)) < MAX_ERROR_M


@pytest.mark.parametrize("crs", [ClientCRS.CGCS2000, ClientCRS.WGS84])
def test_to_storage_identity_for_cgcs2000_and_wgs84(crs: ClientCRS) -> None:
    assert to_storage(120.47, 33.20, crs) == (120.47, 33.20)
    assert from_storage(120.47, 33.20, crs) == (120.47, 33.20)


@pytest.mark.parametrize(
    ("crs", "expected"),
    [
        (ClientCRS.GCJ02, gcj02_to_wgs84(120.47, 33.20)),
        (ClientCRS.BD09, bd09_to_wgs84(120.47, 33.20)),
    ],
    ids=["gcj02", "bd09"],
)
def test_to_storage_uses_inverse_conversion(crs: ClientCRS, expected: tuple) -> None:
    assert to_storage(120.47, 33.20, crs) == expected


@pytest.mark.parametrize(
    ("alias", "expected"),
    [
        ("4490", ClientCRS.CGCS2000),
        ("EPSG:4490", ClientCRS.CGCS2000),
        ("epsg:4490", ClientCRS.CGCS2000),
        ("cgcs2000", ClientCRS.CGCS2000),
        ("CGCS2000", ClientCRS.CGCS2000),
        ("http://www.opengis.net/def/crs/EPSG/0/4490", ClientCRS.CGCS2000),
        ("4326", ClientCRS.WGS84),
        ("EPSG:4326", ClientCRS.WGS84),
        ("wgs84", ClientCRS.WGS84),
        ("WGS84", ClientCRS.WGS84),
        ("CRS84", ClientCRS.WGS84),
        ("http://www.opengis.net/def/crs/OGC/1.3/CRS84", ClientCRS.WGS84),
        ("gcj02", ClientCRS.GCJ02),
        ("GCJ-02", ClientCRS.GCJ02),
        ("bd09", ClientCRS.BD09),
        ("BD-09", ClientCRS.BD09),
        ("  Bd09 ", ClientCRS.BD09),
    ],
)
def test_parse_client_crs_aliases(alias: str, expected: ClientCRS) -> None:
    assert parse_client_crs(alias) is expected


@pytest.mark.parametrize("bad", ["", "EPSG:3857", "4528", "mars", "gcj", "bd-9", "EPSG:44490"])
def test_parse_client_crs_rejects_unknown(bad: str) -> None:
    with pytest.raises(ValueError, match=r"unsupported CRS .*accepted.*EPSG:4490.*CRS84.*gcj-02"):
        parse_client_crs(bad)


@pytest.mark.parametrize("srid", SUPPORTED_SRIDS)
def test_crs_uri(srid: int) -> None:
    assert crs_uri(srid) == f"http://www.opengis.net/def/crs/EPSG/0/{srid}"


def test_crs_uri_round_trips_through_parser_for_storage() -> None:
    assert parse_client_crs(crs_uri(STORAGE_SRID)) is ClientCRS.CGCS2000


def test_constants() -> None:
    assert STORAGE_SRID == 4490
    assert SUPPORTED_SRIDS == (4490, 4326, 3857, 4528)
    assert CRS84_URI == "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
