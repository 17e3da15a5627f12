"""Tests for spatial.importer: formats, CRS, encodings, repair, checks and all-or-nothing writes."""

from __future__ import annotations

import csv
import json
import math
import zipfile
from collections.abc import Callable
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import fiona
import h3
import psycopg
import pytest
from fiona.crs import CRS as FionaCRS
from pyproj import Geod, Transformer

from spatial.crs import wgs84_to_bd09, wgs84_to_gcj02
from spatial.db import libpq_url
from spatial.errors import InvalidInput, UnprocessableInput
from spatial.importer import (
    Column,
    ImportOptions,
    ImportReport,
    codec_name,
    coerce,
    import_file,
)

GEOD = Geod(ellps="GRS80")
CN = timezone(timedelta(hours=8))
BEIJING = (116.397428, 39.90923)
TO_4528 = Transformer.from_crs(4490, 4528, always_xy=True)

Point = tuple[float, float]


# --------------------------------------------------------------------------- helpers


def query(url: str, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    with psycopg.connect(libpq_url(url)) as conn:
        return conn.execute(sql, params or None).fetchall()


def count(url: str, table: str) -> int:
    return query(url, f"SELECT count(*) FROM city.{table}")[0][0]


def grid_points(url: str, n: int) -> list[Point]:
    """Interior points of ``n`` unit grids spread over the district."""
    rows = query(
        url,
        "SELECT ST_X(p), ST_Y(p) FROM (SELECT code, ST_PointOnSurface(geom) p "
        "FROM city.unit_grids ORDER BY code) s",
    )
    step = max(1, len(rows) // n)
    return [(float(x), float(y)) for x, y in rows[::step][:n]]


def square(lon: float, lat: float, half_m: float = 15.0) -> list[Point]:
    """Closed ring of a small square around a point."""
    dlat = half_m / 111_320
    dlon = half_m / (111_320 * math.cos(math.radians(lat)))
    return [
        (lon - dlon, lat - dlat),
        (lon + dlon, lat - dlat),
        (lon + dlon, lat + dlat),
        (lon - dlon, lat + dlat),
        (lon - dlon, lat - dlat),
    ]


def bowtie(lon: float, lat: float, half_m: float = 15.0) -> list[Point]:
    """Self-intersecting ring (figure eight)."""
    a, b, c, d, _ = square(lon, lat, half_m)
    return [a, c, b, d, a]


def point(lon: float, lat: float) -> dict[str, Any]:
    return {"type": "Point", "coordinates": [lon, lat]}


def feature(geometry: dict[str, Any] | None, **props: Any) -> dict[str, Any]:
    return {"type": "Feature", "geometry": geometry, "properties": props}


def write_geojson(path: Path, features: list[dict[str, Any]], crs: str | None = None) -> Path:
    doc: dict[str, Any] = {"type": "FeatureCollection", "features": features}
    if crs:
        doc["crs"] = {"type": "name", "properties": {"name": crs}}
    path.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    return path


def write_fiona(
    path: Path,
    geometry: str,
    properties: dict[str, str],
    records: list[tuple[dict[str, Any], dict[str, Any]]],
    crs: int | None = 4490,
    driver: str = "ESRI Shapefile",
    encoding: str | None = None,
    layer: str | None = None,
) -> Path:
    schema = {"geometry": geometry, "properties": properties}
    kwargs: dict[str, Any] = {"driver": driver, "schema": schema, "layer": layer}
    if crs:
        kwargs["crs"] = FionaCRS.from_epsg(crs)
    if encoding:
        kwargs["encoding"] = encoding
    with fiona.open(path, "w", **kwargs) as dst:
        for geom, props in records:
            dst.write({"geometry": geom, "properties": props})
    return path


def write_csv(
    path: Path, header: list[str], rows: list[list[Any]], encoding: str = "utf-8"
) -> Path:
    with path.open("w", encoding=encoding, newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def poi_features(points: list[Point], prefix: str = "TP") -> list[dict[str, Any]]:
    return [
        feature(point(x, y), code=f"{prefix}{i:03d}", name=f"测试点{i}", category="商店")
        for i, (x, y) in enumerate(points, start=1)
    ]


def run(url: str, path: Path, layer: str, **options: Any) -> ImportReport:
    return import_file(url, path, ImportOptions(layer=layer, **options))


def fails(url: str, path: Path, layer: str, **options: Any) -> InvalidInput:
    with pytest.raises(InvalidInput) as info:
        run(url, path, layer, **options)
    return info.value


def metres(a: Point, b: Point) -> float:
    return GEOD.inv(a[0], a[1], b[0], b[1])[2]


# --------------------------------------------------------------------------- formats and CRS


@pytest.mark.parametrize(
    ("crs", "label"),
    [(None, "EPSG:4326"), ("urn:ogc:def:crs:EPSG::4490", "EPSG:4490")],
    ids=["crs84", "epsg4490"],
)
def test_geojson_points_into_pois(
    scratch_url: str, tmp_path: Path, crs: str | None, label: str
) -> None:
    points = grid_points(scratch_url, 4)
    before = count(scratch_url, "pois")
    path = write_geojson(tmp_path / "pois.geojson", poi_features(points), crs)

    report = run(scratch_url, path, "pois")

    assert (report.features_read, report.features_loaded) == (4, 4)
    assert report.driver == "GeoJSON" and report.source_crs == label and report.repaired == []
    assert count(scratch_url, "pois") == before + 4
    rows = query(
        scratch_url,
        "SELECT p.code, p.grid_code, p.h3, ST_X(p.geom), ST_Y(p.geom), p.data_source, "
        "ST_Intersects(g.geom, p.geom) FROM city.pois p JOIN city.unit_grids g "
        "ON g.code = p.grid_code WHERE p.code LIKE 'TP%' ORDER BY p.code",
    )
    assert len(rows) == 4
    for (_code, grid, cell, x, y, source, inside), (lon, lat) in zip(rows, points, strict=True):
        assert grid and inside and source == "导入"
        assert cell == h3.str_to_int(h3.latlng_to_cell(lat, lon, 9))
        assert (x, y) == pytest.approx((lon, lat), abs=1e-9)


def test_shapefile_epsg4528_compounds(scratch_url: str, tmp_path: Path) -> None:
    lon, lat = grid_points(scratch_url, 10)[5]
    ring = [TO_4528.transform(x, y) for x, y in square(lon, lat, 40)]
    path = write_fiona(
        tmp_path / "compounds.shp",
        "Polygon",
        {"code": "str:20", "name": "str:50"},
        [({"type": "Polygon", "coordinates": [ring]}, {"code": "QT001", "name": "测试小区"})],
        crs=4528,
        encoding="utf-8",
    )

    report = run(scratch_url, path, "compounds")

    assert report.source_crs == "EPSG:4528" and report.features_loaded == 1
    stored = query(
        scratch_url,
        "SELECT ST_X(d.geom), ST_Y(d.geom) FROM city.compounds c, "
        "ST_DumpPoints(ST_Transform(c.geom, 4528)) d WHERE c.code = 'QT001'",
    )
    for x, y in ring:
        assert min(math.hypot(x - sx, y - sy) for sx, sy in stored) < 0.1
    ((kind, street, community, inside),) = query(
        scratch_url,
        "SELECT c.kind, c.street_code, c.community_code, ST_Intersects(m.geom, c.geom) "
        "FROM city.compounds c JOIN city.communities m ON m.code = c.community_code "
        "WHERE c.code = 'QT001'",
    )
    assert kind == "居民小区" and community.startswith(street) and inside


@pytest.mark.parametrize(
    ("encoding", "cpg", "option", "expected", "warning"),
    [
        ("gbk", "keep", None, "gb18030", None),
        ("gbk", None, None, "gb18030", "no .cpg file"),
        ("gbk", "UTF-8", None, "gb18030", ".cpg says 'UTF-8'"),
        ("gbk", None, "GBK", "gb18030", None),
        ("utf-8", None, None, "utf-8", "no .cpg file"),
        ("utf-8", "65001", None, "utf-8", None),
    ],
    ids=["gbk-cpg", "gbk-no-cpg", "gbk-wrong-cpg", "gbk-option", "utf8-no-cpg", "utf8-cpg"],
)
def test_shapefile_encodings(
    scratch_url: str,
    tmp_path: Path,
    encoding: str,
    cpg: str | None,
    option: str | None,
    expected: str,
    warning: str | None,
) -> None:
    points = grid_points(scratch_url, 3)
    names = ["大丰中学东门", "丰华街道便利店", "幸福路公交站"]
    records = [
        (point(x, y), {"BSM": f"SHP{i}", "名称": name, "LB": "商店"})
        for i, ((x, y), name) in enumerate(zip(points, names, strict=True))
    ]
    path = write_fiona(
        tmp_path / "pois.shp",
        "Point",
        {"BSM": "str:24", "名称": "str:80", "LB": "str:20"},
        records,
        encoding=encoding,
    )
    cpg_path = path.with_suffix(".cpg")
    if cpg is None:
        cpg_path.unlink()
    elif cpg != "keep":
        cpg_path.write_text(cpg)

    report = run(scratch_url, path, "pois", encoding=option)

    assert report.encoding == expected and report.features_loaded == 3
    stored = query(scratch_url, "SELECT name FROM city.pois WHERE code LIKE 'SHP%' ORDER BY code")
    assert [r[0] for r in stored] == names
    if warning:
        assert any(warning in w for w in report.warnings)
    else:
        assert not report.warnings


@pytest.mark.parametrize(
    ("label", "codec"),
    [
        ("GBK", "gb18030"),
        ("936", "gb18030"),
        ("ANSI 936", "gb18030"),
        ("UTF-8", "utf-8"),
        ("65001", "utf-8"),
        ("cp1252", "cp1252"),
        ("nonsense", None),
    ],
)
def test_codec_names(label: str, codec: str | None) -> None:
    assert codec_name(label) == codec


def test_zipped_shapefile(scratch_url: str, tmp_path: Path) -> None:
    points = grid_points(scratch_url, 2)
    shp = write_fiona(
        tmp_path / "pois.shp",
        "Point",
        {"code": "str:24", "name": "str:80", "category": "str:20"},
        [
            (point(x, y), {"code": f"ZIP{i}", "name": "公交站", "category": "交通"})
            for i, (x, y) in enumerate(points)
        ],
        encoding="gbk",
    )
    archive = tmp_path / "pois.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for part in tmp_path.glob("pois.*"):
            if part != archive:
                zf.write(part, part.name)
    assert shp.exists()

    report = run(scratch_url, archive, "pois")

    assert report.features_loaded == 2 and report.encoding == "gb18030"
    assert query(scratch_url, "SELECT DISTINCT name FROM city.pois WHERE code LIKE 'ZIP%'") == [
        ("公交站",)
    ]


def test_gpkg_lines_into_roads(scratch_url: str, tmp_path: Path) -> None:
    (x1, y1), (x2, y2), (x3, y3) = grid_points(scratch_url, 3)
    lines = [[(x1, y1), (x2, y2)], [(x2, y2), (x3, y3)]]
    path = write_fiona(
        tmp_path / "roads.gpkg",
        "LineString",
        {"code": "str", "name": "str", "kind": "str", "grade": "int"},
        [
            (
                {"type": "LineString", "coordinates": line},
                {"code": f"RT{i}", "name": f"测试路{i}", "kind": "路", "grade": 2},
            )
            for i, line in enumerate(lines)
        ],
        driver="GPKG",
    )

    report = run(scratch_url, path, "roads")

    assert report.driver == "GPKG" and report.features_loaded == 2
    rows = query(
        scratch_url,
        "SELECT ST_GeometryType(geom), ST_NumGeometries(geom), length_m, "
        "ST_Length(geom::geography) FROM city.roads WHERE code LIKE 'RT%' ORDER BY code",
    )
    for kind, parts, length, geodesic in rows:
        assert (kind, parts) == ("ST_MultiLineString", 1)
        assert length == pytest.approx(geodesic, abs=1.0)


def test_gpkg_with_several_layers_needs_sublayer(scratch_url: str, tmp_path: Path) -> None:
    (x1, y1), (x2, y2) = grid_points(scratch_url, 2)
    path = tmp_path / "multi.gpkg"
    props = {"code": "str", "name": "str", "kind": "str", "grade": "int"}
    for layer, code in (("a", "RA1"), ("b", "RB1")):
        line = {"type": "LineString", "coordinates": [(x1, y1), (x2, y2)]}
        write_fiona(
            path,
            "LineString",
            props,
            [(line, {"code": code, "name": "路", "kind": "路", "grade": 3})],
            driver="GPKG",
            layer=layer,
        )

    error = fails(scratch_url, path, "roads")
    assert "--sublayer" in error.detail and error.errors[0].field == "sublayer"

    report = run(scratch_url, path, "roads", sublayer="b")
    assert report.features_loaded == 1
    assert query(scratch_url, "SELECT code FROM city.roads WHERE code IN ('RA1', 'RB1')") == [
        ("RB1",)
    ]


@pytest.mark.parametrize(
    ("crs", "forward"), [("gcj02", wgs84_to_gcj02), ("bd09", wgs84_to_bd09)], ids=["gcj02", "bd09"]
)
@pytest.mark.parametrize("file_encoding", ["utf-8", "gbk"])
def test_csv_lonlat_in_china_datums(
    scratch_url: str,
    tmp_path: Path,
    crs: str,
    forward: Callable[[float, float], tuple[float, float]],
    file_encoding: str,
) -> None:
    truth = grid_points(scratch_url, 3)
    rows = [
        [f"CSV{i}", f"兴趣点{i}", "餐饮", *forward(lon, lat)] for i, (lon, lat) in enumerate(truth)
    ]
    path = write_csv(
        tmp_path / "pois.csv", ["code", "名称", "类别", "lng", "lat"], rows, encoding=file_encoding
    )

    report = run(scratch_url, path, "pois", source_crs=crs)

    assert report.driver == "CSV" and report.features_loaded == 3 and report.source_crs == crs
    assert report.encoding == ("utf-8" if file_encoding == "utf-8" else "gb18030")
    stored = query(
        scratch_url,
        "SELECT name, ST_X(geom), ST_Y(geom) FROM city.pois WHERE code LIKE 'CSV%' ORDER BY code",
    )
    for i, ((name, x, y), expected) in enumerate(zip(stored, truth, strict=True)):
        assert name == f"兴趣点{i}"
        assert metres((x, y), expected) < 0.5


@pytest.mark.parametrize("delimiter", [",", ";", "\t"])
def test_csv_wkt_polygons(scratch_url: str, tmp_path: Path, delimiter: str) -> None:
    ((lon, lat),) = grid_points(scratch_url, 1)
    ring = ", ".join(f"{x} {y}" for x, y in square(lon, lat))
    path = tmp_path / "compounds.csv"
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh, delimiter=delimiter)
        writer.writerow(["code", "name", "WKT"])
        writer.writerow(["QW1", "文本小区", f"SRID=4490;POLYGON(({ring}))"])

    report = run(scratch_url, path, "compounds")

    assert report.features_loaded == 1 and "assumed" in report.source_crs
    assert any("assumed EPSG:4490" in w for w in report.warnings)
    assert query(
        scratch_url, "SELECT name, ST_GeometryType(geom) FROM city.compounds WHERE code = 'QW1'"
    ) == [("文本小区", "ST_MultiPolygon")]


def test_csv_bad_coordinates_name_the_column(scratch_url: str, tmp_path: Path) -> None:
    ((lon, lat),) = grid_points(scratch_url, 1)
    path = write_csv(
        tmp_path / "pois.csv",
        ["code", "name", "category", "经度", "纬度"],
        [["C1", "a", "x", lon, lat], ["C2", "b", "x", "东经120度", lat], ["C3", "c", "x", lon, ""]],
    )

    error = fails(scratch_url, path, "pois")

    assert [(e.feature, e.field) for e in error.errors] == [(2, "经度"), (3, "纬度")]


# --------------------------------------------------------------------------- invalid geometries


@pytest.mark.parametrize("invalid", ["repair", "reject"])
def test_self_intersecting_polygon(scratch_url: str, tmp_path: Path, invalid: str) -> None:
    lon, lat = grid_points(scratch_url, 10)[3]
    features = [
        feature({"type": "Polygon", "coordinates": [square(lon, lat)]}, code="QB1", name="好"),
        feature({"type": "Polygon", "coordinates": [bowtie(lon, lat)]}, code="QB2", name="坏"),
    ]
    path = write_geojson(tmp_path / "compounds.geojson", features)
    before = count(scratch_url, "compounds")

    if invalid == "repair":
        report = run(scratch_url, path, "compounds", invalid=invalid)
        assert report.repaired == [2] and report.features_loaded == 2
        assert query(
            scratch_url,
            "SELECT ST_IsValid(geom), ST_NumGeometries(geom) FROM city.compounds "
            "WHERE code = 'QB2'",
        ) == [(True, 2)]
        assert "修复" in report.summary()
    else:
        error = fails(scratch_url, path, "compounds", invalid=invalid)
        assert isinstance(error, UnprocessableInput)
        (issue,) = error.errors
        assert (issue.feature, issue.field) == (2, "geometry")
        assert "Self-intersection" in issue.message
        assert count(scratch_url, "compounds") == before


def test_unrepairable_geometry_is_rejected(scratch_url: str, tmp_path: Path) -> None:
    lon, lat = grid_points(scratch_url, 1)[0]
    flat = [(lon, lat), (lon + 0.001, lat), (lon + 0.002, lat), (lon, lat)]
    path = write_geojson(
        tmp_path / "c.geojson",
        [feature({"type": "Polygon", "coordinates": [flat]}, code="QZ1", name="零面积")],
    )

    error = fails(scratch_url, path, "compounds")

    assert error.errors[0].field == "geometry" and "nothing usable" in error.errors[0].message


def test_wrong_geometry_type(scratch_url: str, tmp_path: Path) -> None:
    (x1, y1), (x2, y2) = grid_points(scratch_url, 2)
    line = {"type": "LineString", "coordinates": [[x1, y1], [x2, y2]]}
    path = write_geojson(
        tmp_path / "p.geojson", [feature(line, code="L1", name="线", category="其他")]
    )

    error = fails(scratch_url, path, "pois")

    assert error.errors[0].field == "geometry" and "LineString" in error.errors[0].message


# --------------------------------------------------------------------------- out of district / CRS


def test_out_of_district_feature_is_named(scratch_url: str, tmp_path: Path) -> None:
    points = grid_points(scratch_url, 3)
    points[1] = BEIJING
    path = write_geojson(tmp_path / "pois.geojson", poi_features(points))

    error = fails(scratch_url, path, "pois")

    (issue,) = error.errors
    assert issue.feature == 2 and issue.field == "geometry"
    assert issue.message.startswith("outside district 320904 (116.397428, 39.909230)")
    assert "1 of 3 features" in error.detail


def test_swapped_axes_hint(scratch_url: str, tmp_path: Path) -> None:
    lon, lat = grid_points(scratch_url, 1)[0]
    path = write_geojson(tmp_path / "pois.geojson", poi_features([(lat, lon)]))

    error = fails(scratch_url, path, "pois")

    assert "swapped" in error.errors[0].message


@pytest.mark.parametrize("fmt", ["csv", "shp"])
def test_projected_coordinates_without_crs(scratch_url: str, tmp_path: Path, fmt: str) -> None:
    projected = [TO_4528.transform(x, y) for x, y in grid_points(scratch_url, 2)]
    if fmt == "csv":
        path = write_csv(
            tmp_path / "pois.csv",
            ["code", "name", "category", "x", "y"],
            [[f"X{i}", "点", "其他", x, y] for i, (x, y) in enumerate(projected)],
        )
    else:
        path = write_fiona(
            tmp_path / "pois.shp",
            "Point",
            {"code": "str", "name": "str", "category": "str"},
            [
                (point(x, y), {"code": f"X{i}", "name": "点", "category": "其他"})
                for i, (x, y) in enumerate(projected)
            ],
            crs=None,
            encoding="utf-8",
        )
        path.with_suffix(".prj").unlink(missing_ok=True)

    error = fails(scratch_url, path, "pois")

    assert "--crs" in error.detail and error.errors[0].field == "crs"
    report = run(scratch_url, path, "pois", source_crs="EPSG:4528")
    assert report.features_loaded == 2 and report.source_crs == "EPSG:4528"


def test_unknown_crs_option(scratch_url: str, tmp_path: Path) -> None:
    path = write_geojson(tmp_path / "p.geojson", poi_features(grid_points(scratch_url, 1)))

    error = fails(scratch_url, path, "pois", source_crs="EPSG:999999")

    assert error.errors[0].field == "crs"


# --------------------------------------------------------------------------- bad files


@pytest.mark.parametrize("fmt", ["geojson", "csv", "shp"])
def test_empty_file(scratch_url: str, tmp_path: Path, fmt: str) -> None:
    if fmt == "geojson":
        path = write_geojson(tmp_path / "e.geojson", [])
    elif fmt == "csv":
        path = write_csv(tmp_path / "e.csv", ["code", "name", "category", "lon", "lat"], [])
    else:
        path = write_fiona(tmp_path / "e.shp", "Point", {"code": "str"}, [], encoding="utf-8")

    error = fails(scratch_url, path, "pois")

    assert "file has no features" in error.detail and not isinstance(error, UnprocessableInput)


@pytest.mark.parametrize(
    ("name", "content"),
    [("junk.geojson", "this is not json"), ("junk.xyz", "??"), ("missing.shp", None)],
)
def test_unreadable_file(scratch_url: str, tmp_path: Path, name: str, content: str | None) -> None:
    path = tmp_path / name
    if content is not None:
        path.write_text(content)

    error = fails(scratch_url, path, "pois")

    assert name in error.detail and error.errors[0].field == "file"


def test_missing_required_column_reported_once(scratch_url: str, tmp_path: Path) -> None:
    features = [
        feature(point(x, y), code=f"M{i}", name="无类别")
        for i, (x, y) in enumerate(grid_points(scratch_url, 3))
    ]
    path = write_geojson(tmp_path / "pois.geojson", features)

    error = fails(scratch_url, path, "pois")

    assert [(e.field, e.feature) for e in error.errors] == [("category", None)]
    assert "category" in error.detail


def test_missing_value_and_bad_type_per_feature(scratch_url: str, tmp_path: Path) -> None:
    (x1, y1), (x2, y2), (x3, y3) = grid_points(scratch_url, 3)
    rows = [
        ({"type": "LineString", "coordinates": [(x1, y1), (x2, y2)]}, "一级", "测试路"),
        ({"type": "LineString", "coordinates": [(x2, y2), (x3, y3)]}, "2", None),
    ]
    path = write_geojson(
        tmp_path / "roads.geojson",
        [
            feature(g, code=f"RX{i}", name=n, kind="路", grade=grade)
            for i, (g, grade, n) in enumerate(rows)
        ],
    )

    error = fails(scratch_url, path, "roads")

    found = {(e.feature, e.field) for e in error.errors}
    assert found == {(1, "grade"), (2, "name")}
    assert "一级" in next(e.message for e in error.errors if e.field == "grade")


def test_unknown_layer(scratch_url: str, tmp_path: Path) -> None:
    path = write_geojson(tmp_path / "p.geojson", poi_features(grid_points(scratch_url, 1)))
    with pytest.raises(Exception, match="Unknown layer 'nope'"):
        run(scratch_url, path, "nope")


# --------------------------------------------------------------------------- all or nothing


BAD_POIS: dict[str, Callable[[Point], dict[str, Any]]] = {
    "outside": lambda p: feature(point(*BEIJING), code="BAD", name="北京", category="其他"),
    "null-geometry": lambda p: feature(None, code="BAD", name="无", category="其他"),
    "too-long": lambda p: feature(point(*p), code="BAD", name="长" * 81, category="其他"),
    "no-grid": lambda p: feature(point(p[0], p[1] + 0.5), code="BAD", name="外", category="x"),
}


@pytest.mark.parametrize("bad", list(BAD_POIS))
def test_all_or_nothing(scratch_url: str, tmp_path: Path, bad: str) -> None:
    points = grid_points(scratch_url, 6)
    features = poi_features(points[:5]) + [BAD_POIS[bad](points[5])]
    path = write_geojson(tmp_path / "pois.geojson", features)
    before = count(scratch_url, "pois")

    error = fails(scratch_url, path, "pois")

    assert [e.feature for e in error.errors] == [6]
    assert "1 of 6 features" in error.detail and "nothing was imported" in error.detail
    assert count(scratch_url, "pois") == before


def test_all_errors_are_collected(scratch_url: str, tmp_path: Path) -> None:
    features = [
        feature(point(*BEIJING), code=f"B{i}", name="北京", category="x") for i in range(150)
    ]
    path = write_geojson(tmp_path / "pois.geojson", features)

    error = fails(scratch_url, path, "pois")

    assert len(error.errors) == 100 and error.errors[-1].feature == 100
    assert "150 of 150 features" in error.detail


@pytest.mark.parametrize("where", ["database", "file"])
def test_duplicate_primary_key(scratch_url: str, tmp_path: Path, where: str) -> None:
    ((existing,),) = query(scratch_url, "SELECT min(code) FROM city.pois")
    features = poi_features(grid_points(scratch_url, 3))
    if where == "database":
        features[2]["properties"]["code"] = existing
        dup, message = existing, f"duplicate code {existing}: already in city.pois"
    else:
        features[2]["properties"]["code"] = dup = features[0]["properties"]["code"]
        message = f"duplicate code {dup} (also feature 1)"
    path = write_geojson(tmp_path / "pois.geojson", features)
    before = count(scratch_url, "pois")

    error = fails(scratch_url, path, "pois")

    assert [(e.feature, e.field, e.message) for e in error.errors] == [(3, "code", message)]
    assert count(scratch_url, "pois") == before


def test_database_constraint_names_feature(scratch_url: str, tmp_path: Path) -> None:
    features = poi_features(grid_points(scratch_url, 3))
    features[1]["properties"]["address_code"] = "NO-SUCH-ADDRESS"
    path = write_geojson(tmp_path / "pois.geojson", features)
    before = count(scratch_url, "pois")

    error = fails(scratch_url, path, "pois")

    (issue,) = error.errors
    assert (issue.feature, issue.field) == (2, "address_code")
    assert "NO-SUCH-ADDRESS" in issue.message
    assert count(scratch_url, "pois") == before


# --------------------------------------------------------------------------- derived columns


def test_parts_derive_codes_from_gb_fields(scratch_url: str, tmp_path: Path) -> None:
    ((lon, lat),) = grid_points(scratch_url, 1)
    ((department,),) = query(
        scratch_url,
        "SELECT department FROM city.component_classes WHERE major_code = '01' "
        "AND minor_code = '01'",
    )
    path = write_geojson(
        tmp_path / "parts.geojson",
        [
            feature(
                point(lon, lat),
                BSM="3209040101900001",
                MC="上水井盖",
                WZMS="健康路北侧",
                CSSJ="2024/06/30 09:30",
                BLC=500,
            )
        ],
    )

    report = run(scratch_url, path, "parts")

    assert report.features_loaded == 1
    (row,) = query(
        scratch_url,
        "SELECT class_code, county_code, major_code, minor_code, department, status, "
        "data_source, location_desc, grid_code IS NOT NULL, h3 IS NOT NULL, "
        "to_char(initial_time AT TIME ZONE 'Asia/Shanghai', 'YYYY-MM-DD HH24:MI'), "
        "scale_denominator FROM city.parts WHERE code = '3209040101900001'",
    )
    assert row == (
        "3209040101",
        "320904",
        "01",
        "01",
        department,
        "完好",
        "导入",
        "健康路北侧",
        True,
        True,
        "2024-06-30 09:30",
        500,
    )


@pytest.mark.parametrize(
    ("code", "message"),
    [
        ("3209049999000001", "unknown component class 3209049999"),
        ("3209050101000001", "belongs to county 320905"),
        ("32090401010001", "must be 16 digits"),
    ],
)
def test_parts_bad_codes(scratch_url: str, tmp_path: Path, code: str, message: str) -> None:
    ((lon, lat),) = grid_points(scratch_url, 1)
    path = write_geojson(
        tmp_path / "parts.geojson", [feature(point(lon, lat), code=code, name="部件")]
    )

    error = fails(scratch_url, path, "parts")

    assert any(e.field == "code" and message in e.message and e.feature == 1 for e in error.errors)


def test_parts_report_code_and_geometry_errors_together(scratch_url: str, tmp_path: Path) -> None:
    path = write_geojson(
        tmp_path / "parts.geojson",
        [feature(point(*BEIJING), code="3209049999000001", name="部件", CSSJ="昨天")],
    )

    error = fails(scratch_url, path, "parts")

    assert sorted(e.field for e in error.errors) == ["code", "geometry", "initial_time"]
    assert {e.feature for e in error.errors} == {1}


def test_parts_bad_status(scratch_url: str, tmp_path: Path) -> None:
    ((lon, lat),) = grid_points(scratch_url, 1)
    path = write_geojson(
        tmp_path / "parts.geojson",
        [feature(point(lon, lat), BSM="3209040101900002", MC="井盖", ZT="很好")],
    )

    error = fails(scratch_url, path, "parts")

    assert [(e.field, e.feature) for e in error.errors] == [("status", 1)]


def test_addresses_defaults_and_standard_address(scratch_url: str, tmp_path: Path) -> None:
    ((lon, lat),) = grid_points(scratch_url, 1)
    path = write_geojson(
        tmp_path / "addr.geojson",
        [feature(point(lon, lat), code="ADDRT1", base_name="测试路", number=8)],
    )

    run(scratch_url, path, "addresses")

    (row,) = query(
        scratch_url,
        "SELECT a.kind, a.suffix, a.standard_address, a.community_code = g.community_code, "
        "s.name FROM city.addresses a JOIN city.unit_grids g ON g.code = a.grid_code "
        "JOIN city.streets s ON s.code = g.street_code WHERE a.code = 'ADDRT1'",
    )
    kind, suffix, standard, same_community, street = row
    assert (kind, suffix, same_community) == ("门牌", "号", True)
    assert standard == f"大丰区{street}测试路8号"


@pytest.mark.parametrize(
    ("data_type", "value", "expected"),
    [
        ("integer", "12", 12),
        ("integer", 12.0, 12),
        ("integer", " 7 ", 7),
        ("integer", "", None),
        ("double precision", "1.5", 1.5),
        ("character varying", 3209040101000001.0, "3209040101000001"),
        ("character varying", "  名称 ", "名称"),
        ("date", "2024/6/30", date(2024, 6, 30)),
        ("date", "2024年6月30日", date(2024, 6, 30)),
        ("timestamp with time zone", "2024-06-30 9:05", datetime(2024, 6, 30, 9, 5, tzinfo=CN)),
        ("timestamp with time zone", "20240630", datetime(2024, 6, 30, tzinfo=CN)),
        ("boolean", "是", True),
        ("boolean", "0", False),
    ],
)
def test_coerce(data_type: str, value: Any, expected: Any) -> None:
    assert coerce(value, Column("c", data_type, True, False, None)) == expected


@pytest.mark.parametrize(
    ("data_type", "value"),
    [
        ("integer", "1.5"),
        ("integer", "abc"),
        ("integer", 2**40),
        ("double precision", "nan"),
        ("date", "June"),
        ("boolean", "maybe"),
    ],
)
def test_coerce_rejects(data_type: str, value: Any) -> None:
    with pytest.raises(ValueError, match="expected|out of range"):
        coerce(value, Column("c", data_type, True, False, None))


# --------------------------------------------------------------------------- modes and report


def test_replace_mode(scratch_url: str, tmp_path: Path) -> None:
    before = count(scratch_url, "pois")
    path = write_geojson(tmp_path / "pois.geojson", poi_features(grid_points(scratch_url, 2)))

    report = run(scratch_url, path, "pois", mode="replace")

    assert report.deleted == before > 0 and report.features_loaded == 2
    assert count(scratch_url, "pois") == 2
    assert "替换" in report.summary()


def test_replace_referenced_layer_is_refused(scratch_url: str, tmp_path: Path) -> None:
    before = count(scratch_url, "addresses")
    ((lon, lat),) = grid_points(scratch_url, 1)
    path = write_geojson(
        tmp_path / "addr.geojson",
        [feature(point(lon, lat), code="ADDRR1", base_name="新路", number=1)],
    )

    error = fails(scratch_url, path, "addresses", mode="replace")

    assert "cannot replace layer addresses" in error.detail and "pois" in error.detail
    assert count(scratch_url, "addresses") == before


def test_replace_mode_rolls_back_on_error(scratch_url: str, tmp_path: Path) -> None:
    before = count(scratch_url, "pois")
    features = poi_features(grid_points(scratch_url, 2))
    features[1]["properties"]["address_code"] = "NO-SUCH-ADDRESS"
    path = write_geojson(tmp_path / "pois.geojson", features)

    fails(scratch_url, path, "pois", mode="replace")

    assert count(scratch_url, "pois") == before


def test_report_is_json_and_lists_ignored_fields(scratch_url: str, tmp_path: Path) -> None:
    features = poi_features(grid_points(scratch_url, 1))
    features[0]["properties"]["colour"] = "red"
    path = write_geojson(tmp_path / "pois.geojson", features)

    report = run(scratch_url, path, "pois")

    doc = json.loads(json.dumps(report.as_dict()))
    assert doc["layer"] == "pois" and doc["file"] == "pois.geojson"
    assert any("colour" in w for w in doc["warnings"])
    assert "Imported 1 of 1" in report.summary()
