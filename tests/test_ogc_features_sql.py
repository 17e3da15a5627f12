"""The SQL builder in isolation: bound parameters, count policies, axis order, CQL2 quirks."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import psycopg
import pytest
from psycopg import sql
from pygeoapi.openapi import get_oas

from api.ogc import mount
from api.ogc.config import pygeoapi_config
from api.ogc.context import OgcContext, register
from layers.base import default_registry
from layers.registry import LayerSpec
from spatial.errors import ConfigurationError, InvalidInput
from spatial.features_catalog import LayerColumns, build_catalog
from spatial.features_cql import Params, filter_sql, parse_filter
from spatial.features_crs import CRS84, SUPPORTED, bbox_xy, parse_bbox, parse_crs
from spatial.features_sql import FeatureQuery, items_sql, parse_datetime
from spatial.settings import DatabaseSettings, Settings

REGISTRY = default_registry()


def _cols(layer: str, count: str | None = None) -> LayerColumns:
    spec = REGISTRY.get(layer)
    columns = {c: "character varying" for c in (spec.pk, *spec.queryables)}
    if spec.temporal:
        columns[spec.temporal] = "timestamp with time zone"
    if count:
        spec = replace(spec, count=count)  # type: ignore[arg-type]
    return LayerColumns(spec, columns)


def _text(statement: sql.Composable) -> str:
    return statement.as_string(None)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("policy", "fragment"),
    [
        ("estimate", "LIMIT %(p2)s) c)"),
        ("exact", '(SELECT count(*) FROM "city"."parts" AS "t" WHERE TRUE)'),
        ("none", "NULL::bigint"),
    ],
)
def test_count_policy(policy: str, fragment: str) -> None:
    query, params = items_sql(FeatureQuery(_cols("parts", policy)), cap=10_000)
    assert fragment in _text(query)
    if policy == "estimate":
        assert params["p2"] == 10_001  # never an unbounded count(*) on 138,662 parts


def test_literals_are_bound_never_inlined() -> None:
    evil = "x'); DROP TABLE city.parts; --"
    node = parse_filter('{"op": "=", "args": [{"property": "name"}, "' + evil + '"]}', "cql2-json")
    params = Params()
    text = _text(filter_sql(node, _cols("parts"), CRS84, params))
    assert evil not in text and "DROP" not in text
    assert evil in params.values.values()
    assert text == '("t"."name" = %(p0)s::character varying)'


def test_only_queryables_may_be_filtered() -> None:
    with pytest.raises(InvalidInput) as err:
        filter_sql(parse_filter("owner = 'x'", "cql2-text"), _cols("parts"), CRS84, Params())
    assert err.value.errors[0].field == "filter"


def test_cql2_json_between_and_bbox_follow_the_standard() -> None:
    between = parse_filter('{"op": "between", "args": [{"property": "grade"}, 1, 3]}', "cql2-json")
    assert (between.low, between.high) == (1, 3)  # type: ignore[attr-defined]
    box = parse_filter(
        '{"op": "s_intersects", "args": [{"property": "geometry"}, {"bbox": [1, 2, 3, 4]}]}',
        "cql2-json",
    )
    env = box.rhs  # type: ignore[attr-defined]
    assert (env.x1, env.y1, env.x2, env.y2) == (1, 2, 3, 4)


@pytest.mark.parametrize("crs", SUPPORTED, ids=lambda c: c.curie)
def test_output_axis_order(crs: object) -> None:
    query, _ = items_sql(FeatureQuery(_cols("parts"), crs=crs), cap=10)  # type: ignore[arg-type]
    text = _text(query)
    assert ("ST_FlipCoordinates" in text) == crs.latlon  # type: ignore[attr-defined]
    assert ("ST_Transform" in text) == (crs.srid not in (4326, 4490))  # type: ignore[attr-defined]


def test_bbox_axis_order_and_domain() -> None:
    lat_lon = parse_crs("http://www.opengis.net/def/crs/EPSG/0/4326")
    assert bbox_xy(parse_bbox("33.1,120.4,33.3,120.6"), lat_lon) == (120.4, 33.1, 120.6, 33.3)
    assert bbox_xy(parse_bbox("120.4,33.1,0,120.6,33.3,10"), CRS84) == (120.4, 33.1, 120.6, 33.3)
    gk = parse_crs("EPSG:4528")
    assert bbox_xy(parse_bbox("3670000,40540000,3680000,40550000"), gk)
    with pytest.raises(ValueError, match="domain"):
        bbox_xy(parse_bbox("3670000,540000,3680000,550000"), gk)  # zone prefix missing


def test_datetime_parsing() -> None:
    day = parse_datetime("2024-03-01")
    assert day.start == datetime(2024, 3, 1, tzinfo=UTC) and day.end_exclusive
    assert day.end == datetime(2024, 3, 2, tzinfo=UTC)
    open_start = parse_datetime("../2024-03-01T08:00:00+08:00")
    assert open_start.start is None and open_start.end == datetime(2024, 3, 1, tzinfo=UTC)
    for bad in ("../..", "2024-02-30", "x", "2024-03-02/2024-03-01"):
        with pytest.raises(InvalidInput):
            parse_datetime(bad)


def test_catalog_drift_is_a_startup_error() -> None:
    rows = [("city", "parts", c, "character varying") for c in ("code", "name")]
    rows.append(("city", "parts", "geom", "geometry"))
    with pytest.raises(ConfigurationError, match="parts"):
        build_catalog(REGISTRY, rows)


def test_statement_runs_on_postgis(psql_url: str) -> None:
    """The composed statement is valid SQL for every layer and CRS (no rows needed)."""
    with psycopg.connect(psql_url) as conn:
        for spec in REGISTRY:
            columns = {
                r[0]: r[1]
                for r in conn.execute(
                    "SELECT attname, format_type(atttypid, NULL) FROM pg_attribute"
                    " WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped",
                    (spec.qualified_table,),
                )
                if r[1] != "geometry"
            }
            cols = LayerColumns(spec, columns)
            for crs in SUPPORTED:
                query, params = items_sql(FeatureQuery(cols, limit=1, crs=crs), cap=5)
                conn.execute(query, params).fetchone()


def test_a_new_registry_layer_is_published() -> None:
    """Registry → pygeoapi config → OpenAPI: declaring a layer is all it takes."""
    registry = default_registry()
    registry.register(
        LayerSpec(
            id="trees",
            table="trees",
            title="行道树",
            geometry_type="POINT",
            queryables=("species",),
        )
    )
    ctx = register(OgcContext(registry, Settings(db=DatabaseSettings(url="postgresql://x@h/x"))))
    config = pygeoapi_config(ctx)
    tree = config["resources"]["trees"]
    assert tree["title"] == "行道树" and tree["providers"][0]["properties"] == ["species"]
    assert tree["providers"][0]["data"] == f"{ctx.id}/trees"
    paths = get_oas(config)["paths"]
    assert "/collections/trees/items" in paths and "/collections/trees/queryables" in paths


def test_registry_drift_fails_app_start(db_url: str) -> None:
    """A queryable the table lacks stops create_app (not a 500 at the first request)."""
    registry = default_registry()
    registry.register(
        LayerSpec(id="bad", table="parts", title="坏", geometry_type="POINT", queryables=("nope",))
    )
    ctx = OgcContext(registry, Settings(db=DatabaseSettings(url=db_url)))
    with pytest.raises(ConfigurationError, match="nope"):
        mount._initial_catalog(ctx.settings, ctx)
