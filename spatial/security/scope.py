"""Data scope as SQL (数据范围): the WHERE condition that limits a scoped layer to a principal.

A department sees its cases, a street office the rows inside its street's polygon (spatial
filter on the GiST index), an inspector their responsibility grids, a citizen their own
reports. The parts of a ``DataScope`` are OR-ed; ``all`` adds no condition; an empty scope
sees nothing. Values are rendered as SQL literals, so the condition drops into any statement
(features, tiles, WFS, WMTS) without parameter plumbing.
"""

from __future__ import annotations

from psycopg import sql

from layers.registry import LayerSpec
from spatial.security.principal import DataScope

AREA_TABLES = ("streets", "communities")


def _in(column: sql.Composable, values: tuple[str, ...]) -> sql.Composable:
    return sql.SQL("{} = ANY({}::text[])").format(column, sql.Literal(list(values)))


def _area(spec: LayerSpec, alias: str, areas: tuple[str, ...]) -> sql.Composable:
    geom = sql.Identifier(alias, spec.geom)
    return sql.SQL(" OR ").join(
        sql.SQL(
            "EXISTS (SELECT 1 FROM {} a"
            " WHERE a.code = ANY({}::text[]) AND ST_Intersects(a.geom, {}))"
        ).format(sql.Identifier(spec.schema, table), sql.Literal(list(areas)), geom)
        for table in AREA_TABLES
    )


def scope_condition(spec: LayerSpec, scope: DataScope, alias: str) -> sql.Composable | None:
    """The condition on ``alias`` (the layer's table) for ``scope``; None when unrestricted."""
    rule = spec.scope
    if rule is None or scope.all:
        return None
    parts: list[sql.Composable] = []
    if scope.areas and rule.area:
        parts.append(_area(spec, alias, scope.areas))
    if scope.departments and rule.department:
        parts.append(_in(sql.Identifier(alias, rule.department), scope.departments))
    if scope.grids and rule.grid:
        parts.append(_in(sql.Identifier(alias, rule.grid), scope.grids))
    if scope.owner is not None and rule.owner:
        parts.append(
            sql.SQL("{} = {}").format(sql.Identifier(alias, rule.owner), sql.Literal(scope.owner))
        )
    if not parts:
        return sql.SQL("FALSE")
    return sql.SQL("({})").format(sql.SQL(" OR ").join(parts))
