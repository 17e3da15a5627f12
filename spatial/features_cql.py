"""CQL2 (text and JSON, parsed by pygeofilter) rendered as a PostGIS WHERE clause.

Only the layer's queryables (and its geometry) may be named; every literal is a bound
parameter cast to the compared column's type; geometry literals are transformed from
``filter-crs`` (in that CRS's axis order) to the storage CRS so the GiST index applies.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any, Final

import shapely
import shapely.geometry
from lark import Lark
from psycopg import sql
from pygeofilter import ast, values
from pygeofilter.backends.evaluator import Evaluator, handle
from pygeofilter.parsers.cql2_json import parse as parse_cql2_json
from pygeofilter.parsers.cql2_text import parser as cql2_text_module

from spatial.errors import FieldIssue, InvalidInput
from spatial.features_catalog import LayerColumns
from spatial.features_crs import STORAGE_SRID, OgcCrs, parse_crs, same_datum

ALIAS: Final = "t"  # the layer's table in every statement
FILTER_LANGS: Final = ("cql2-text", "cql2-json")
MAX_FILTER_CHARS: Final = 20_000
_COMPARE: Final = {
    ast.ComparisonOp.EQ: "=",
    ast.ComparisonOp.NE: "<>",
    ast.ComparisonOp.LT: "<",
    ast.ComparisonOp.LE: "<=",
    ast.ComparisonOp.GT: ">",
    ast.ComparisonOp.GE: ">=",
}
_SPATIAL: Final = {
    ast.SpatialComparisonOp.INTERSECTS: "ST_Intersects",
    ast.SpatialComparisonOp.DISJOINT: "ST_Disjoint",
    ast.SpatialComparisonOp.CONTAINS: "ST_Contains",
    ast.SpatialComparisonOp.WITHIN: "ST_Within",
    ast.SpatialComparisonOp.TOUCHES: "ST_Touches",
    ast.SpatialComparisonOp.CROSSES: "ST_Crosses",
    ast.SpatialComparisonOp.OVERLAPS: "ST_Overlaps",
    ast.SpatialComparisonOp.EQUALS: "ST_Equals",
}
_PENDING: Final = object()


class Params:
    """Named bound parameters collected while composing a statement."""

    def __init__(self) -> None:
        """Start empty."""
        self.values: dict[str, Any] = {}

    def add(self, value: Any) -> sql.Composable:
        """Bind ``value``; return its placeholder."""
        name = f"p{len(self.values)}"
        self.values[name] = value
        return sql.Placeholder(name)


class FilterError(ValueError):
    """The filter is well-formed CQL2 but cannot be applied to this collection."""


@dataclass
class _Term:
    """An evaluated operand: SQL (with its type) or a literal still waiting for a type."""

    sql: sql.Composable | None = None
    type: str | None = None
    value: Any = _PENDING
    geom: bool = False


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, str | int | float):
        return str(value)
    raise FilterError(f"unsupported literal {value!r}")


class _SqlFilter(Evaluator):
    """pygeofilter evaluator producing psycopg SQL with bound parameters."""

    def __init__(
        self, cols: LayerColumns, crs: OgcCrs, params: Params, literal_crs: bool = False
    ) -> None:
        self.cols, self.crs, self.params = cols, crs, params
        self.literal_crs = literal_crs

    def _bind(self, term: _Term, sql_type: str | None) -> sql.Composable:
        if term.geom:
            raise FilterError("the geometry can only be used in spatial functions")
        if term.value is _PENDING:
            assert term.sql is not None  # noqa: S101 - every non-literal term carries SQL
            return term.sql
        if sql_type is None:
            return self.params.add(term.value)
        return sql.SQL("{}::{}").format(self.params.add(_text(term.value)), sql.SQL(sql_type))

    def _pair(self, lhs: _Term, rhs: _Term) -> tuple[sql.Composable, sql.Composable]:
        sql_type = lhs.type or rhs.type
        return self._bind(lhs, sql_type), self._bind(rhs, sql_type)

    def _geom(self, term: _Term) -> sql.Composable:
        if not term.geom or term.sql is None:
            raise FilterError("spatial functions need a geometry on both sides")
        return term.sql

    def _literal_geom(self, geometry: Any, crs: OgcCrs) -> _Term:
        try:
            shape = shapely.geometry.shape(geometry)
        except Exception as exc:  # malformed coordinates of any kind
            raise FilterError(f"invalid geometry literal: {exc}") from None
        xmin, ymin, xmax, ymax = shape.bounds
        if crs.latlon:
            xmin, ymin, xmax, ymax = ymin, xmin, ymax, xmax
        dx1, dy1, dx2, dy2 = crs.domain
        if shape.is_empty or not (dx1 <= xmin and dy1 <= ymin and xmax <= dx2 and ymax <= dy2):
            raise FilterError(f"geometry literal is empty or outside the domain of {crs.curie}")
        if not shapely.is_valid(shape):
            raise FilterError(f"invalid geometry literal: {shapely.is_valid_reason(shape)}")
        geom = sql.SQL("ST_GeomFromWKB({})").format(self.params.add(shapely.to_wkb(shape)))
        if crs.latlon:
            geom = sql.SQL("ST_FlipCoordinates({})").format(geom)
        srid = STORAGE_SRID if same_datum(crs.srid, STORAGE_SRID) else crs.srid
        geom = sql.SQL("ST_SetSRID({}, {})").format(geom, sql.Literal(srid))
        if srid != STORAGE_SRID:
            geom = sql.SQL("ST_Transform({}, {})").format(geom, sql.Literal(STORAGE_SRID))
        return _Term(geom, geom=True)

    @handle(ast.Not)
    def not_(self, node: ast.Not, sub: sql.Composable) -> sql.Composable:
        return sql.SQL("NOT ({})").format(sub)

    @handle(ast.And, ast.Or)
    def combination(self, node: Any, lhs: sql.Composable, rhs: sql.Composable) -> sql.Composable:
        return sql.SQL("({} " + node.op.value + " {})").format(lhs, rhs)

    @handle(ast.Comparison, subclasses=True)
    def comparison(self, node: Any, lhs: _Term, rhs: _Term) -> sql.Composable:
        left, right = self._pair(lhs, rhs)
        return sql.SQL("({} " + _COMPARE[node.op] + " {})").format(left, right)

    @handle(ast.Between)
    def between(self, node: ast.Between, lhs: _Term, low: _Term, high: _Term) -> sql.Composable:
        sql_type = lhs.type
        tpl = "({} NOT BETWEEN {} AND {})" if node.not_ else "({} BETWEEN {} AND {})"
        args = (self._bind(t, sql_type) for t in (lhs, low, high))
        return sql.SQL(tpl).format(*args)

    @handle(ast.Like)
    def like(self, node: ast.Like, lhs: _Term) -> sql.Composable:
        pattern = node.pattern
        if isinstance(pattern, str):
            right = self.params.add(pattern)
        elif isinstance(pattern, ast.Function):  # CASEI('pattern')
            right = self._bind(self.evaluate(pattern, False), "text")
        else:
            raise FilterError("LIKE needs a text pattern")
        op = "NOT LIKE" if node.not_ else "LIKE"
        return sql.SQL("({}::text " + op + " {} ESCAPE '\\')").format(self._bind(lhs, None), right)

    @handle(ast.In)
    def in_(self, node: ast.In, lhs: _Term, *options: _Term) -> sql.Composable:
        if lhs.type is None or not options:
            raise FilterError("IN needs a property and a list of values")
        left = self._bind(lhs, None)
        if all(o.value is not _PENDING for o in options):  # one array parameter
            array = self.params.add([_text(o.value) for o in options])
            tpl = "(NOT ({} = ANY({}::{}[])))" if node.not_ else "({} = ANY({}::{}[]))"
            return sql.SQL(tpl).format(left, array, sql.SQL(lhs.type))
        values_sql = sql.SQL(", ").join(self._bind(o, lhs.type) for o in options)
        tpl = "({} NOT IN ({}))" if node.not_ else "({} IN ({}))"
        return sql.SQL(tpl).format(left, values_sql)

    @handle(ast.IsNull)
    def null(self, node: ast.IsNull, lhs: _Term) -> sql.Composable:
        return sql.SQL("({} IS NOT NULL)" if node.not_ else "({} IS NULL)").format(
            self._bind(lhs, None)
        )

    @handle(ast.Include)
    def include(self, node: ast.Include) -> sql.Composable:
        return sql.SQL("FALSE" if node.not_ else "TRUE")

    @handle(ast.SpatialComparisonPredicate, subclasses=True)
    def spatial(self, node: Any, lhs: _Term, rhs: _Term) -> sql.Composable:
        return sql.SQL(_SPATIAL[node.op] + "({}, {})").format(self._geom(lhs), self._geom(rhs))

    @handle(ast.Attribute)
    def attribute(self, node: ast.Attribute) -> _Term:
        spec = self.cols.spec
        if node.name in ("geometry", spec.geom):
            return _Term(sql.Identifier(ALIAS, spec.geom), geom=True)
        if node.name not in self.cols.queryables:
            known = ", ".join(self.cols.queryables)
            raise FilterError(f"{node.name!r} is not a queryable; queryables: {known}")
        return _Term(sql.Identifier(ALIAS, node.name), self.cols.columns.get(node.name, "text"))

    @handle(ast.Function)
    def function(self, node: ast.Function, *args: _Term) -> _Term:
        name = node.name.lower()
        if name == "lower" and len(args) == 1:  # CASEI()
            return _Term(sql.SQL("lower({})").format(self._bind(args[0], "text")), "text")
        if name == "bbox" and len(args) in (4, 6):
            nums = [a.value for a in args]
            if not all(isinstance(n, int | float) and not isinstance(n, bool) for n in nums):
                raise FilterError("BBOX needs numbers")
            x1, y1, x2, y2 = nums[:2] + nums[-3:-1] if len(nums) == 6 else nums
            return self.envelope(values.Envelope(x1, x2, y1, y2))
        raise FilterError(f"unsupported function {node.name}()")

    @handle(*values.LITERALS)
    def literal(self, node: Any) -> _Term:
        if isinstance(node, list):
            raise FilterError("array literals are not supported")
        return _Term(value=node)

    @handle(values.Geometry)
    def geometry(self, node: values.Geometry) -> _Term:
        name = node.geometry.get("crs", {}).get("properties", {}).get("name")
        crs = parse_crs(name) if name and self.literal_crs else self.crs
        return self._literal_geom(node.geometry, crs)

    @handle(values.Envelope)
    def envelope(self, node: values.Envelope) -> _Term:
        box = shapely.geometry.box(node.x1, node.y1, node.x2, node.y2)
        return self._literal_geom(box.__geo_interface__, self.crs)


def _normalise_json(node: Any) -> Any:
    """Bridge CQL2 1.0 JSON and pygeofilter 0.4: 3-argument ``between``, ``bbox`` order."""
    if isinstance(node, list):
        return [_normalise_json(n) for n in node]
    if not isinstance(node, dict):
        return node
    if set(node) == {"bbox"} and isinstance(node["bbox"], list) and len(node["bbox"]) in (4, 6):
        b = node["bbox"]
        x1, y1, x2, y2 = (b[0], b[1], b[3], b[4]) if len(b) == 6 else b
        return values.Envelope(x1=x1, x2=x2, y1=y1, y2=y2)
    out = {k: _normalise_json(v) for k, v in node.items()}
    args = out.get("args")
    if out.get("op") == "between" and isinstance(args, list) and len(args) == 3:
        out["args"] = [args[0], [args[1], args[2]]]
    return out


@functools.cache
def _cql2_text_parser() -> Lark:
    """The CQL2 text grammar of pygeofilter, without its ``debug=True`` (parser dumps on stdout)."""
    here = Path(cql2_text_module.__file__)
    return Lark.open(
        "grammar.lark",
        rel_to=str(here),
        parser="lalr",
        debug=False,
        maybe_placeholders=False,
        transformer=cql2_text_module.CQLTransformer(),
        import_paths=[str(here.parent.parent)],
    )


def parse_filter(text: str, lang: str) -> ast.Node:
    """Parse a CQL2 filter; ``InvalidInput`` naming ``filter`` when it is malformed."""
    if lang not in FILTER_LANGS:
        issue = FieldIssue("filter-lang", f"must be one of {', '.join(FILTER_LANGS)}")
        raise InvalidInput(f"Unsupported filter-lang {lang!r}", [issue])
    if len(text) > MAX_FILTER_CHARS:
        raise InvalidInput("Filter too long", [FieldIssue("filter", "too long")])
    try:
        if lang == "cql2-json":
            return parse_cql2_json(_normalise_json(json.loads(text)))
        return _cql2_text_parser().parse(text)
    except Exception as exc:  # lark, json and pygeofilter raise many kinds
        first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        raise InvalidInput(
            f"Malformed {lang} filter", [FieldIssue("filter", f"cannot parse: {first}")]
        ) from None


def filter_sql(
    node: ast.Node, cols: LayerColumns, crs: OgcCrs, params: Params, literal_crs: bool = False
) -> sql.Composable:
    """Render a parsed filter as SQL; ``InvalidInput`` when it cannot apply.

    Geometry literals are in ``crs`` (``filter-crs``). With ``literal_crs`` a literal tagged
    with its own CRS (pygeoapi tags those it moved into the storage CRS) uses that instead.
    """
    try:
        result = _SqlFilter(cols, crs, params, literal_crs).evaluate(node)
    except (FilterError, NotImplementedError, ValueError, TypeError, KeyError) as exc:
        raise InvalidInput(f"Invalid filter: {exc}", [FieldIssue("filter", str(exc))]) from None
    if isinstance(result, _Term):
        raise InvalidInput("Filter is not a condition", [FieldIssue("filter", "not a predicate")])
    return result
