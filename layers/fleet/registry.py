"""The fleet registry (基础信息): CRUD over the fleet tables, white lists and gate events.

Each entity is described by an :class:`Entity` (table, key, writable columns, geometry
columns); identifiers come only from these specs, values only as parameters. Geometries are
GeoJSON in CGCS2000 (EPSG:4490) in and out; :func:`geojson_to_storage` converts client CRSs.
Database constraint violations become 409/422 problems naming the field.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Final

import numpy as np
import psycopg
import shapely
from psycopg import sql
from psycopg.types.json import Jsonb
from shapely.geometry import mapping, shape

from spatial.crs import ClientCRS, to_storage
from spatial.errors import Conflict, FieldIssue, InvalidInput, NotFound, UnprocessableInput


@dataclass(frozen=True)
class Entity:
    """One registry table: its key, writable columns and geometry columns (column → type)."""

    name: str
    table: str
    title: str
    columns: tuple[str, ...]
    key: str = "id"
    geometries: tuple[tuple[str, str], ...] = ()
    order: str = "id"

    @property
    def geometry_columns(self) -> dict[str, str]:
        """Geometry column → PostGIS type."""
        return dict(self.geometries)

    @property
    def writable(self) -> tuple[str, ...]:
        """Columns a client may set (key included when it is not generated)."""
        own_key = () if self.key == "id" else (self.key,)
        return (*own_key, *self.columns, *(g for g, _ in self.geometries))


ENTITIES: Final[dict[str, Entity]] = {
    e.name: e
    for e in (
        Entity(
            "companies",
            "fleet_companies",
            "运输企业",
            ("code", "name", "credit_code", "kind", "contact", "phone", "address"),
        ),
        Entity(
            "sites",
            "fleet_sites",
            "场地",
            (
                "code",
                "name",
                "kind",
                "address",
                "street_code",
                "company_id",
                "contact",
                "phone",
                "active",
            ),
            geometries=(("geom", "MULTIPOLYGON"), ("gate", "POINT")),
        ),
        Entity(
            "vehicles",
            "fleet_vehicles",
            "车辆",
            (
                "plate",
                "kind",
                "company_id",
                "sealed_capable",
                "speed_limit_kmh",
                "load_capacity_kg",
                "active",
            ),
        ),
        Entity(
            "drivers",
            "fleet_drivers",
            "驾驶员",
            ("name", "license_no", "phone", "company_id", "vehicle_id"),
        ),
        Entity(
            "terminals",
            "fleet_terminals",
            "车载终端",
            ("vehicle_id", "sim", "model", "active", "installed_at"),
            key="terminal_id",
            order="terminal_id",
        ),
        Entity(
            "permits",
            "fleet_permits",
            "许可",
            (
                "permit_no",
                "kind",
                "site_id",
                "company_id",
                "vehicle_id",
                "valid_from",
                "valid_to",
                "issued_by",
                "note",
            ),
        ),
        Entity(
            "routes",
            "fleet_routes",
            "核准路线",
            ("code", "name", "corridor_m"),
            geometries=(("geom", "MULTILINESTRING"),),
        ),
        Entity(
            "bindings",
            "fleet_bindings",
            "核准关系",
            (
                "site_id",
                "company_id",
                "vehicle_id",
                "disposal_site_id",
                "route_id",
                "valid_from",
                "valid_to",
                "note",
            ),
        ),
    )
}

_CONSTRAINT_FIELD = re.compile(r"^(?:uq|fk|ck)_(?:fleet_\w+?)_(\w+?)(?:_fleet_\w+|_streets)?$")
_PLATE_JUNK = re.compile(r"[\s·•.\-]")


def entity(name: str) -> Entity:
    """The entity named ``name`` or NotFound."""
    try:
        return ENTITIES[name]
    except KeyError:
        raise NotFound(f"Unknown registry entity {name!r}.") from None


def normalise_plate(plate: str) -> str:
    """Upper-case a plate and drop spaces, dots and dashes (苏J·12345 → 苏J12345)."""
    return _PLATE_JUNK.sub("", plate).upper()


def geojson_to_storage(geometry: dict[str, Any], crs: ClientCRS, field: str) -> dict[str, Any]:
    """Convert a GeoJSON geometry from a client CRS to CGCS2000 (checked by shapely)."""
    try:
        geom = shape(geometry)
    except (KeyError, TypeError, ValueError, AttributeError, shapely.errors.ShapelyError) as exc:
        raise InvalidInput("Invalid GeoJSON geometry.", [FieldIssue(field, str(exc))]) from None
    if geom.is_empty:
        raise InvalidInput("Empty geometry.", [FieldIssue(field, "empty geometry")])
    if crs not in (ClientCRS.CGCS2000, ClientCRS.WGS84):
        geom = shapely.transform(geom, lambda xy: _to_storage_xy(xy, crs))
    return mapping(geom)


def _to_storage_xy(xy: Any, crs: ClientCRS) -> Any:
    x, y = to_storage(xy[:, 0], xy[:, 1], crs)
    return np.column_stack([x, y])


def _select(e: Entity) -> sql.Composed:
    cols = [sql.Identifier(c) for c in (e.key, *(c for c in e.columns if c != e.key))]
    geoms = [
        sql.SQL("ST_AsGeoJSON({0}, 7)::json AS {0}").format(sql.Identifier(g))
        for g, _ in e.geometries
    ]
    return sql.SQL("SELECT {} FROM {}").format(
        sql.SQL(", ").join(cols + geoms), sql.Identifier("city", e.table)
    )


def _value(e: Entity, column: str, value: Any) -> sql.Composable:
    kind = e.geometry_columns.get(column)
    if kind is None:
        return sql.Placeholder(column)
    if value is None:
        return sql.SQL("NULL")
    expr = "ST_SetSRID(ST_GeomFromGeoJSON({}::text), 4490)"
    if kind.startswith("MULTI"):
        expr = f"ST_Multi({expr})"
    return sql.SQL(expr).format(sql.Placeholder(column))


def _params(e: Entity, values: dict[str, Any]) -> dict[str, Any]:
    return {
        k: (Jsonb(v) if k in e.geometry_columns and v is not None else v) for k, v in values.items()
    }


def _rows(cur: psycopg.AsyncCursor[Any]) -> Any:
    names = [c.name for c in cur.description or []]

    async def fetch() -> list[dict[str, Any]]:
        return [dict(zip(names, r, strict=True)) for r in await cur.fetchall()]

    return fetch()


async def list_rows(
    conn: psycopg.AsyncConnection,
    e: Entity,
    filters: dict[str, Any] | None = None,
    limit: int = 1000,
    offset: int = 0,
) -> list[dict[str, Any]]:
    """Rows of an entity, optionally filtered by equality on writable columns."""
    filters = {k: v for k, v in (filters or {}).items() if v is not None}
    where = sql.SQL("")
    if filters:
        conds = [sql.SQL("{} = {}").format(sql.Identifier(k), sql.Placeholder(k)) for k in filters]
        where = sql.SQL(" WHERE ") + sql.SQL(" AND ").join(conds)
    query = sql.SQL("{}{} ORDER BY {} LIMIT {} OFFSET {}").format(
        _select(e), where, sql.Identifier(e.order), sql.Literal(limit), sql.Literal(offset)
    )
    cur = await conn.execute(query, filters)
    return await _rows(cur)


async def get_row(conn: psycopg.AsyncConnection, e: Entity, key: Any) -> dict[str, Any]:
    """One row by key, or NotFound."""
    query = sql.SQL("{} WHERE {} = %s").format(_select(e), sql.Identifier(e.key))
    rows = await _rows(await conn.execute(query, (key,)))
    if not rows:
        raise NotFound(f"No {e.title} {key}.")
    return rows[0]


async def create_row(
    conn: psycopg.AsyncConnection, e: Entity, values: dict[str, Any]
) -> dict[str, Any]:
    """Insert a row; returns it as stored."""
    values = {k: v for k, v in values.items() if k in e.writable}
    query = sql.SQL("INSERT INTO {} ({}) VALUES ({}) RETURNING {}").format(
        sql.Identifier("city", e.table),
        sql.SQL(", ").join(sql.Identifier(k) for k in values),
        sql.SQL(", ").join(_value(e, k, v) for k, v in values.items()),
        sql.Identifier(e.key),
    )
    async with conn.transaction():
        key = await _write(conn, query, _params(e, values))
        return await get_row(conn, e, key)


async def update_row(
    conn: psycopg.AsyncConnection, e: Entity, key: Any, values: dict[str, Any]
) -> dict[str, Any]:
    """Change the given columns of a row."""
    values = {k: v for k, v in values.items() if k in e.writable and k != e.key}
    if not values:
        return await get_row(conn, e, key)
    sets = [
        sql.SQL("{} = {}").format(sql.Identifier(k), _value(e, k, v)) for k, v in values.items()
    ]
    query = sql.SQL("UPDATE {} SET {} WHERE {} = {} RETURNING {}").format(
        sql.Identifier("city", e.table),
        sql.SQL(", ").join(sets),
        sql.Identifier(e.key),
        sql.Placeholder("_key"),
        sql.Identifier(e.key),
    )
    async with conn.transaction():
        found = await _write(conn, query, {**_params(e, values), "_key": key})
        if found is None:
            raise NotFound(f"No {e.title} {key}.")
        return await get_row(conn, e, key)


async def delete_row(conn: psycopg.AsyncConnection, e: Entity, key: Any) -> None:
    """Delete a row (dependent permits, bindings and events cascade)."""
    query = sql.SQL("DELETE FROM {} WHERE {} = %(_key)s RETURNING 1").format(
        sql.Identifier("city", e.table), sql.Identifier(e.key)
    )
    if await _write(conn, query, {"_key": key}) is None:
        raise NotFound(f"No {e.title} {key}.")


async def _write(conn: psycopg.AsyncConnection, query: sql.Composed, params: dict[str, Any]) -> Any:
    """Run one write in a savepoint; map constraint violations to problems naming the field."""
    try:
        async with conn.transaction():
            cur = await conn.execute(query, params)
            row = await cur.fetchone()
    except psycopg.errors.UniqueViolation as exc:
        raise Conflict("Already registered.", [_issue(exc, "already exists")]) from None
    except psycopg.errors.ForeignKeyViolation as exc:
        raise UnprocessableInput(
            "Refers to a missing or still referenced record.", [_issue(exc, "no such record")]
        ) from None
    except (psycopg.errors.IntegrityError, psycopg.errors.DataError) as exc:
        raise UnprocessableInput("Value not accepted.", [_issue(exc, _first_line(exc))]) from None
    except psycopg.errors.InternalError_ as exc:  # PostGIS: bad GeoJSON, wrong geometry type
        raise UnprocessableInput(
            "Geometry not accepted.", [_issue(exc, _first_line(exc))]
        ) from None
    return None if row is None else row[0]


def _first_line(exc: psycopg.Error) -> str:
    return (exc.diag.message_primary or str(exc)).splitlines()[0][:200]


def _issue(exc: psycopg.Error, message: str) -> FieldIssue:
    name = exc.diag.constraint_name or ""
    match = _CONSTRAINT_FIELD.match(name)
    field = match.group(1) if match else (exc.diag.column_name or "geom")
    return FieldIssue(field, f"{message} ({_first_line(exc)})"[:300])


async def whitelist(
    conn: psycopg.AsyncConnection,
    on_day: date | None = None,
    site_id: int | None = None,
    role: str | None = None,
) -> list[dict[str, Any]]:
    """Which vehicles may load at a site / unload at a disposal site on a day (白名单)."""
    query = (
        "SELECT w.site_id, s.name AS site_name, w.role, w.vehicle_id, w.plate, w.company_id,"
        " w.binding_id, w.route_id, w.valid_to"
        " FROM city.fleet_whitelist(coalesce(%(day)s::date, current_date)) w"
        " JOIN city.fleet_sites s ON s.id = w.site_id"
        " WHERE (%(site)s::int IS NULL OR w.site_id = %(site)s)"
        " AND (%(role)s::text IS NULL OR w.role = %(role)s)"
        " ORDER BY w.site_id, w.role, w.plate"
    )
    cur = await conn.execute(query, {"day": on_day, "site": site_id, "role": role})
    return await _rows(cur)


GATE_SQL = """
WITH v AS (SELECT id FROM city.fleet_vehicles WHERE plate = %(plate)s)
INSERT INTO city.gate_events
    (site_id, plate, direction, source, weight_kg, at, vehicle_id, whitelisted)
SELECT %(site)s, %(plate)s, %(direction)s, %(source)s, %(weight)s, %(at)s,
       (SELECT id FROM v),
       EXISTS (SELECT 1 FROM city.fleet_whitelist((%(at)s::timestamptz AT TIME ZONE
               'Asia/Shanghai')::date) w WHERE w.site_id = %(site)s AND w.vehicle_id =
               (SELECT id FROM v))
RETURNING id, site_id, plate, direction, source, weight_kg, at, vehicle_id, whitelisted
"""


async def record_gate_event(
    conn: psycopg.AsyncConnection,
    *,
    site_id: int,
    plate: str,
    direction: str,
    source: str,
    at: datetime,
    weight_kg: float | None = None,
) -> dict[str, Any]:
    """Store a plate-recognition / weighbridge event, matched against the registry.

    ``vehicle_id`` NULL marks an unregistered plate (黑车 candidate); ``whitelisted`` says
    whether the vehicle was on the site's white list that day.
    """
    params = {
        "site": site_id,
        "plate": normalise_plate(plate),
        "direction": direction,
        "source": source,
        "weight": weight_kg,
        "at": at,
    }
    try:
        async with conn.transaction():
            rows = await _rows(await conn.execute(GATE_SQL, params))
    except psycopg.errors.ForeignKeyViolation:
        raise UnprocessableInput("Unknown site.", [FieldIssue("site_id", "no such site")]) from None
    return rows[0]
