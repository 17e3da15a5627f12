"""One SQL builder for OGC API – Features: one PostGIS statement per request, GeoJSON out.

Every items/item request becomes one statement whose result is the GeoJSON text itself.
bbox and filter literals are transformed to the column SRID (so the GiST index applies), the
output is ``ST_Transform``-ed to the requested CRS in its axis order, ``numberMatched`` follows
the layer's count policy (``estimate`` counts at most ``cap + 1`` rows), and every value is a
bound parameter. A scoped layer (案卷) is limited to the caller's data scope (数据范围) in the
same WHERE, so pages, counts and single features all honour it. The fast path and the pygeoapi
provider both use this module.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from psycopg import sql
from pygeofilter import ast

from spatial.errors import FieldIssue, InvalidInput
from spatial.features_catalog import LayerColumns
from spatial.features_cql import ALIAS, Params, filter_sql
from spatial.features_crs import CRS84, OgcCrs, same_datum
from spatial.security.principal import EVERYTHING, DataScope
from spatial.security.scope import scope_condition


@dataclass(frozen=True)
class TimeRange:
    """A ``datetime`` parameter: ``start <= t`` and ``t <= end`` (``t < end`` if exclusive)."""

    start: datetime | None
    end: datetime | None
    end_exclusive: bool = False


@dataclass(frozen=True)
class FeatureQuery:
    """A validated items request."""

    cols: LayerColumns
    limit: int = 10
    offset: int = 0
    bbox: tuple[float, float, float, float] | None = None  # x/y in ``bbox_crs``
    bbox_crs: OgcCrs = CRS84
    crs: OgcCrs = CRS84
    filter: ast.Node | None = None
    filter_crs: OgcCrs = CRS84
    literal_crs: bool = False  # honour CRS tags on filter geometries (pygeoapi's, not users')
    equals: tuple[tuple[str, str], ...] = ()  # queryable=value query parameters
    time: TimeRange | None = None
    sortby: tuple[tuple[str, bool], ...] = ()  # (property, descending)
    properties: tuple[str, ...] | None = None  # None: all
    skip_geometry: bool = False
    scope: DataScope = EVERYTHING  # rows of a scoped layer the caller may see


def _instant(text: str, end: bool) -> tuple[datetime | None, bool]:
    """Parse one side of an interval; a bare date covers the whole (UTC) day."""
    text = text.strip()
    if text in ("", ".."):
        return None, False
    if len(text) == 10:
        day = date.fromisoformat(text)
        start = datetime(day.year, day.month, day.day, tzinfo=UTC)
        return (start + timedelta(days=1), True) if end else (start, False)
    value = datetime.fromisoformat(text)
    return (value if value.tzinfo else value.replace(tzinfo=UTC)), False


def parse_datetime(value: str) -> TimeRange:
    """Parse the ``datetime`` parameter (instant, ``a/b``, ``../b``, ``a/..``)."""
    try:
        if "/" in value:
            first, second = value.split("/", 1)
            start, _ = _instant(first, end=False)
            end, exclusive = _instant(second, end=True)
            if start is None and end is None:
                raise ValueError("an interval needs at least one bound")
        else:
            start, _ = _instant(value, end=False)
            end, exclusive = _instant(value, end=True)
            if start is None:
                raise ValueError("empty instant")
            if not exclusive:
                end = start
        if start and end and (start > end or (exclusive and start == end)):
            raise ValueError("start is after end")
    except ValueError as exc:
        issue = FieldIssue("datetime", f"{exc}; use RFC 3339, e.g. 2024-01-01T00:00:00Z/..")
        raise InvalidInput(f"Invalid datetime {value!r}", [issue]) from None
    return TimeRange(start, end, exclusive)


def col(name: str) -> sql.Composable:
    """A column of the layer's table (always qualified: the properties record reuses names)."""
    return sql.Identifier(ALIAS, name)


def geometry_out(cols: LayerColumns, crs: OgcCrs) -> sql.Composable:
    """The geometry column transformed to ``crs`` in its axis order."""
    geom: sql.Composable = col(cols.spec.geom)
    if not same_datum(crs.srid, cols.spec.srid):
        geom = sql.SQL("ST_Transform({}, {})").format(geom, sql.Literal(crs.srid))
    if crs.latlon:
        geom = sql.SQL("ST_FlipCoordinates({})").format(geom)
    return geom


def _page_select(
    cols: LayerColumns, crs: OgcCrs, names: tuple[str, ...] | None, skip_geometry: bool
) -> tuple[sql.Composable, sql.Composable, sql.Composable]:
    """(select list ``id, g, p``; the LATERAL properties record; the Feature text over them).

    ``row_to_json`` over a LATERAL record is the cheapest correct way to serialise many
    columns in PostgreSQL 15 (about 15 % faster than ``json_build_object``, and compact).
    """
    names = cols.properties if names is None else names
    geom: sql.Composable = sql.SQL("'null'")
    if not skip_geometry:
        geom = sql.SQL("COALESCE(ST_AsGeoJSON({}, {}, 0), 'null')").format(
            geometry_out(cols, crs), sql.Literal(crs.decimals)
        )
    select = sql.SQL("{} AS id, {} AS g").format(col(cols.spec.pk), geom)
    join: sql.Composable = sql.SQL("")
    props: sql.Composable = sql.SQL("'{}'")
    if names:
        select = sql.SQL("{}, p").format(select)
        join = sql.SQL(" CROSS JOIN LATERAL (SELECT {}) p").format(
            sql.SQL(", ").join(col(n) for n in names)
        )
        props = sql.SQL("row_to_json(p)::text")
    feature = sql.SQL(
        """'{{"type":"Feature","id":' || to_json(id)::text || ',"geometry":' || g"""
        """ || ',"properties":' || {} || '}}'"""
    ).format(props)
    return select, join, feature


Statement = tuple[sql.Composable, dict[str, Any]]


def _envelope(q: FeatureQuery, params: Params) -> sql.Composable:
    assert q.bbox is not None  # noqa: S101 - only called with a bbox
    target = q.cols.spec.srid
    srid = target if same_datum(q.bbox_crs.srid, target) else q.bbox_crs.srid
    box = sql.SQL("ST_MakeEnvelope({}, {}, {}, {}, {})").format(
        *(params.add(float(v)) for v in q.bbox), sql.Literal(srid)
    )
    if srid != target:
        box = sql.SQL("ST_Transform({}, {})").format(box, sql.Literal(target))
    return box


def where_sql(q: FeatureQuery, params: Params) -> sql.Composable:
    """The WHERE condition: data scope, bbox, datetime, queryables and the CQL2 filter."""
    spec, conds = q.cols.spec, []
    if (scoped := scope_condition(spec, q.scope, ALIAS)) is not None:
        conds.append(scoped)
    if q.bbox is not None:
        # A point intersects an axis-aligned rectangle iff their boxes overlap: ``&&`` alone
        # is exact there and lets the count skip the heap (all-visible pages).
        rectangle = same_datum(q.bbox_crs.srid, spec.srid)
        tpl = "{} && {}" if spec.is_point and rectangle else "ST_Intersects({}, {})"
        conds.append(sql.SQL(tpl).format(col(spec.geom), _envelope(q, params)))
    if q.time is not None and spec.temporal:
        when = col(spec.temporal)
        if q.time.start is not None:
            conds.append(sql.SQL("{} >= {}").format(when, params.add(q.time.start)))
        if q.time.end is not None:
            op = "<" if q.time.end_exclusive else "<="
            conds.append(sql.SQL("{} " + op + " {}").format(when, params.add(q.time.end)))
    for name, value in q.equals:
        cast = sql.SQL(q.cols.columns.get(name, "text"))
        conds.append(sql.SQL("{} = {}::{}").format(col(name), params.add(value), cast))
    if q.filter is not None:
        conds.append(filter_sql(q.filter, q.cols, q.filter_crs, params, q.literal_crs))
    return sql.SQL(" AND ").join(conds) if conds else sql.SQL("TRUE")


def _sort_keys(q: FeatureQuery) -> list[tuple[str, bool]]:
    keys = list(q.sortby)
    if q.cols.spec.pk not in {name for name, _ in keys}:
        keys.append((q.cols.spec.pk, False))
    return keys


def _order(keys: list[tuple[str, bool]], alias: bool) -> sql.Composable:
    return sql.SQL(", ").join(
        sql.SQL("{} " + ("DESC" if desc else "ASC")).format(
            sql.Identifier(f"k{i}") if alias else col(name)
        )
        for i, (name, desc) in enumerate(keys)
    )


def _from(cols: LayerColumns) -> sql.Composable:
    return sql.SQL("{} AS {}").format(
        sql.Identifier(cols.spec.schema, cols.spec.table), sql.Identifier(ALIAS)
    )


def count_sql(q: FeatureQuery, where: sql.Composable, params: Params, cap: int) -> sql.Composable:
    """``numberMatched`` by the layer's count policy (``estimate``: at most ``cap + 1``)."""
    policy = q.cols.spec.count
    if policy == "none":
        return sql.SQL("NULL::bigint")
    if policy == "exact":
        return sql.SQL("(SELECT count(*) FROM {} WHERE {})").format(_from(q.cols), where)
    return sql.SQL("(SELECT count(*) FROM (SELECT 1 FROM {} WHERE {} LIMIT {}) c)").format(
        _from(q.cols), where, params.add(cap + 1)
    )


def items_sql(q: FeatureQuery, cap: int) -> Statement:
    """One row: (features joined by commas, numberReturned, numberMatched or capped count)."""
    params = Params()
    where = where_sql(q, params)
    keys = _sort_keys(q)
    select, join, feature = _page_select(q.cols, q.crs, q.properties, q.skip_geometry)
    key_cols = sql.SQL(", ").join(
        sql.SQL("{} AS {}").format(col(name), sql.Identifier(f"k{i}"))
        for i, (name, _) in enumerate(keys)
    )
    query = sql.SQL(
        "WITH page AS (SELECT {select}, {keys} FROM {source}{join} WHERE {where}"
        " ORDER BY {order} LIMIT {limit} OFFSET {offset})"
        " SELECT (SELECT string_agg({feature}, ',' ORDER BY {korder}) FROM page),"
        " (SELECT count(*) FROM page), {matched}"
    ).format(
        select=select,
        keys=key_cols,
        source=_from(q.cols),
        join=join,
        where=where,
        order=_order(keys, alias=False),
        limit=params.add(q.limit),
        offset=params.add(q.offset),
        feature=feature,
        korder=_order(keys, alias=True),
        matched=count_sql(q, where, params, cap),
    )
    return query, params.values


def estimate_sql(q: FeatureQuery) -> Statement:
    """The planner's row estimate for the query (``EXPLAIN``, nothing is read)."""
    params = Params()
    query = sql.SQL("EXPLAIN (FORMAT JSON) SELECT 1 FROM {} WHERE {}").format(
        _from(q.cols), where_sql(q, params)
    )
    return query, params.values


def item_sql(cols: LayerColumns, crs: OgcCrs, fid: str, scope: DataScope = EVERYTHING) -> Statement:
    """One feature by id (none when it lies outside ``scope``)."""
    params = Params()
    select, join, feature = _page_select(cols, crs, None, skip_geometry=False)
    where = sql.SQL("{} = {}::{}").format(col(cols.spec.pk), params.add(fid), sql.SQL(cols.pk_type))
    if (scoped := scope_condition(cols.spec, scope, ALIAS)) is not None:
        where = sql.SQL("{} AND {}").format(where, scoped)
    query = sql.SQL("SELECT {} FROM (SELECT {} FROM {}{} WHERE {}) page").format(
        feature, select, _from(cols), join, where
    )
    return query, params.values
