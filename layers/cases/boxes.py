"""Case boxes (案件箱): per-role lists of cases, defined as data, with filters and search.

A box is a SQL condition over ``city.cases c`` plus the permissions that show it (any one of
them). Every query ANDs the caller's data scope (``scope_condition`` with the ``cases``
layer). Filters are limited to the fields configured for the box; an unknown field is a 422
naming it. Task-number search is a fuzzy ``ILIKE '%digits%'`` on ``case_no``. Rows carry
lon/lat in CGCS2000 (EPSG:4490) unless another client CRS is asked for, and the timer colour
from ``city.case_timer(c, now())``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

import psycopg
from psycopg import sql

from layers.registry import LayerSpec
from spatial.crs import ClientCRS, from_storage
from spatial.errors import FieldIssue, UnprocessableInput
from spatial.security.principal import Principal
from spatial.security.scope import scope_condition

TIMED: Final = ("reported", "accepted", "verifying", "registered", "returned", "dispatched")
TIMED_ALL: Final = (*TIMED, "handled", "checked")
MAX_LIMIT: Final = 500
COMMON_FILTERS: Final = (
    "status",
    "stage",
    "source",
    "category",
    "class_code",
    "major_code",
    "grid_code",
    "street_code",
    "department_code",
    "reported_from",
    "reported_to",
    "timer",
    "overdue",
)
SORTS: Final = {
    "reported_at": "c.reported_at",
    "case_no": "c.case_no",
    "stage_deadline": "c.stage_deadline",
    "updated_at": "c.updated_at",
    "closed_at": "c.closed_at",
}
TEXT_FILTERS: Final = (
    "status",
    "stage",
    "source",
    "category",
    "class_code",
    "major_code",
    "grid_code",
    "street_code",
    "department_code",
)
TIMER_COLOURS: Final = ("green", "yellow", "red")


@dataclass(frozen=True)
class Box:
    """One case box: its condition, who sees it, its filters and default order."""

    code: str
    name: str
    where: str  # SQL over ``c`` (city.cases); %(me)s is the caller's user id
    permissions: tuple[str, ...]  # any one shows the box
    filters: tuple[str, ...] = COMMON_FILTERS
    sort: str = "-reported_at"
    own_department_for_handlers: bool = False  # 处置部门 see only their department's cases
    positions: tuple[str, ...] = ()  # holding one of these posts also shows the box

    def shown_to(self, principal: Principal) -> bool:
        """True when the principal holds one of the permissions or posts."""
        return any(principal.can(p) for p in self.permissions) or bool(
            set(self.positions) & set(principal.positions)
        )


def _pending(kind: str) -> str:
    return (
        "EXISTS (SELECT 1 FROM city.case_requests r WHERE r.case_id = c.id"
        f" AND r.kind = '{kind}' AND r.state = 'pending')"
    )


OPEN = "c.stage IN (" + ", ".join(f"'{s}'" for s in TIMED_ALL) + ")"
BOXES: Final[tuple[Box, ...]] = (
    Box("reported", "待受理", "c.stage = 'reported'", ("cases:accept",), sort="reported_at"),
    Box("self_handled", "自行处置", "c.self_handled", ("cases:accept",)),
    Box("rejected", "不受理栏", "c.stage = 'rejected'", ("cases:accept",)),
    Box(
        "to_register",
        "待立案",
        "c.stage IN ('accepted', 'verifying')",
        ("cases:accept",),
        sort="reported_at",
    ),
    Box(
        "to_dispatch",
        "待派遣",
        "c.stage IN ('registered', 'returned')",
        ("cases:dispatch",),
        sort="reported_at",
    ),
    Box("returned", "回退案件", "c.stage = 'returned'", ("cases:dispatch",)),
    Box(
        "handling",
        "处置中",
        "c.stage = 'dispatched'",
        ("cases:dispatch", "cases:handle", "cases:supervise"),
        sort="stage_deadline",
        own_department_for_handlers=True,
    ),
    Box("to_check", "待核查", "c.stage = 'handled'", ("cases:accept",), positions=("inspector",)),
    Box("to_close", "待结案", "c.stage = 'checked'", ("cases:accept", "cases:supervise")),
    Box("closed", "办结案件", "c.stage = 'closed'", ("cases:read",), sort="-closed_at"),
    Box(
        "extension_requests",
        "延期申请",
        _pending("extension"),
        ("cases:dispatch", "cases:handle"),
        own_department_for_handlers=True,
    ),
    Box(
        "return_requests",
        "回退申请",
        _pending("return"),
        ("cases:dispatch", "cases:handle"),
        own_department_for_handlers=True,
    ),
    Box("void_requests", "作废申请", _pending("void"), ("cases:supervise", "cases:dispatch")),
    Box(
        "supervised",
        "督办案件",
        "c.supervised",
        ("cases:supervise", "cases:handle"),
        own_department_for_handlers=True,
    ),
    Box("on_hold", "挂账", "c.on_hold", ("cases:dispatch", "cases:supervise")),
    Box("mine", "我的上报", "c.reporter_user_id = %(me)s", ("cases:report",)),
    Box(
        "overdue",
        "超时案件",
        f"c.stage_deadline < now() AND {OPEN}",
        ("cases:dispatch", "cases:supervise", "cases:handle"),
        sort="stage_deadline",
        own_department_for_handlers=True,
    ),
    Box("all", "全部案件", "TRUE", ("cases:read",)),
)
BOX_BY_CODE: Final = {b.code: b for b in BOXES}


def visible_boxes(principal: Principal) -> list[Box]:
    """The boxes ``principal`` sees (holding any of a box's permissions)."""
    return [b for b in BOXES if b.shown_to(principal)]


def get_box(principal: Principal, code: str) -> Box:
    """A box the principal sees; an unknown or hidden box is a 422 naming ``box``."""
    box = BOX_BY_CODE.get(code)
    if box is None or box not in visible_boxes(principal):
        known = ", ".join(b.code for b in visible_boxes(principal))
        raise UnprocessableInput(
            f"Unknown case box '{code}'.", [FieldIssue("box", f"one of: {known}")]
        )
    return box


@dataclass(frozen=True)
class Query:
    """Filters, search, paging and order for one box."""

    filters: dict[str, str]
    q: str | None = None
    limit: int = 50
    offset: int = 0
    sort: str | None = None
    crs: ClientCRS = ClientCRS.CGCS2000


def _bad(field: str, message: str) -> UnprocessableInput:
    return UnprocessableInput(f"Invalid value for '{field}'.", [FieldIssue(field, message)])


def _when(field: str, value: str) -> datetime:
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        raise _bad(field, "an ISO 8601 date or date-time") from None


def _filter(field: str, value: str) -> sql.Composable:
    if field in TEXT_FILTERS:
        values = [v.strip() for v in value.split(",") if v.strip()]
        if not values:
            raise _bad(field, "must not be empty")
        return sql.SQL("{} = ANY({})").format(sql.Identifier("c", field), sql.Literal(values))
    if field in ("reported_from", "reported_to"):
        op = ">=" if field == "reported_from" else "<"
        return sql.SQL("c.reported_at " + op + " {}").format(sql.Literal(_when(field, value)))
    if field == "timer":
        if value not in TIMER_COLOURS:
            raise _bad(field, "green, yellow or red")
        return sql.SQL("city.case_timer(c, now()) = {}").format(sql.Literal(value))
    if value.lower() not in ("true", "false", "1", "0"):
        raise _bad(field, "true or false")
    overdue = sql.SQL("(c.stage_deadline < now() AND " + OPEN + ")")
    return overdue if value.lower() in ("true", "1") else sql.SQL("NOT {}").format(overdue)


def search_pattern(q: str) -> str:
    """``ILIKE`` pattern for a partial task number (wildcards in ``q`` are escaped)."""
    text = q.strip()
    if not text or len(text) > 30:
        raise _bad("q", "1 to 30 characters of the task number (任务号)")
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def conditions(
    spec: LayerSpec, principal: Principal, box: Box, query: Query, *, scoped: bool = True
) -> list[sql.Composable]:
    """The box's condition, the scope, the filters and the search, to be AND-ed."""
    parts: list[sql.Composable] = [
        sql.SQL(box.where.replace("%(me)s", "{}")).format(sql.Literal(principal.id or -1))
    ]
    scope = scope_condition(spec, principal.scope, "c") if scoped else None
    if scope is not None:
        parts.append(scope)
    handler_only = principal.can("cases:handle") and not principal.can("cases:dispatch")
    if box.own_department_for_handlers and handler_only and principal.department_code:
        parts.append(
            sql.SQL("c.department_code = {}").format(sql.Literal(principal.department_code))
        )
    for field, value in query.filters.items():
        if field not in box.filters:
            allowed = ", ".join(box.filters)
            raise _bad(field, f"not a filter of box {box.code} (allowed: {allowed})")
        parts.append(_filter(field, value))
    if query.q is not None:
        parts.append(sql.SQL("c.case_no ILIKE {}").format(sql.Literal(search_pattern(query.q))))
    return parts


def order_by(box: Box, sort: str | None) -> sql.Composable:
    """``ORDER BY`` from ``sort`` (``-`` prefix: descending), then id for stable paging."""
    key = sort or box.sort
    column = SORTS.get(key.lstrip("-"))
    if column is None:
        raise _bad("sort", f"one of {', '.join(SORTS)} (prefix - for descending)")
    direction = "DESC NULLS LAST" if key.startswith("-") else "ASC NULLS LAST"
    tie = "DESC" if key.startswith("-") else "ASC"
    return sql.SQL(f"ORDER BY {column} {direction}, c.id {tie}")


ROW_SQL = """
SELECT c.id, c.case_no, c.source, s.name AS source_name, c.category, c.class_code,
       c.major_code, c.minor_code, coalesce(ec.minor_name, cc.minor_name) AS class_name,
       coalesce(ec.major_name, cc.major_name) AS major_name,
       c.description, c.location_desc, c.road_name, c.stage, c.status, c.level, c.on_hold,
       c.supervised, c.self_handled, c.grid_code, c.responsibility_grid_code, c.street_code,
       st.name AS street_name, c.department_code, d.name AS department_name,
       c.reporter_name_mask, c.reported_at, c.accepted_at, c.registered_at, c.dispatched_at,
       c.handled_at, c.closed_at, c.stage_deadline, c.handle_deadline, c.updated_at, c.version,
       city.case_timer(c, now()) AS timer, ST_X(c.geom) AS lon, ST_Y(c.geom) AS lat
FROM city.cases c
LEFT JOIN city.case_sources s ON s.code = c.source
LEFT JOIN city.event_classes ec ON c.category = '事件' AND ec.major_code = c.major_code
     AND ec.minor_code = c.minor_code
LEFT JOIN city.component_classes cc ON c.category = '部件' AND cc.major_code = c.major_code
     AND cc.minor_code = c.minor_code
LEFT JOIN city.streets st ON st.code = c.street_code
LEFT JOIN city.departments d ON d.code = c.department_code
"""


def where(parts: list[sql.Composable]) -> sql.Composable:
    """``WHERE a AND b …``."""
    return sql.SQL("WHERE ") + sql.SQL(" AND ").join(sql.SQL("({})").format(p) for p in parts)


async def _dicts(conn: psycopg.AsyncConnection, stmt: sql.Composable) -> list[dict[str, Any]]:
    cur = await conn.execute(stmt)
    names = [d.name for d in cur.description or []]
    return [dict(zip(names, r, strict=True)) for r in await cur.fetchall()]


def _reproject(rows: list[dict[str, Any]], crs: ClientCRS) -> None:
    if crs == ClientCRS.CGCS2000 or not rows:
        return
    lon, lat = from_storage([r["lon"] for r in rows], [r["lat"] for r in rows], crs)
    for row, x, y in zip(rows, lon, lat, strict=True):
        row["lon"], row["lat"] = float(x), float(y)


async def list_cases(
    conn: psycopg.AsyncConnection, spec: LayerSpec, principal: Principal, box: Box, query: Query
) -> tuple[int, list[dict[str, Any]]]:
    """``(numberMatched, rows)`` of one page of a box."""
    if not 1 <= query.limit <= MAX_LIMIT:
        raise _bad("limit", f"1 to {MAX_LIMIT}")
    if query.offset < 0:
        raise _bad("offset", "0 or more")
    filt = where(conditions(spec, principal, box, query))
    order = order_by(box, query.sort)
    count = await _dicts(conn, sql.SQL("SELECT count(*) AS n FROM city.cases c ") + filt)
    page = sql.SQL(" {} LIMIT {} OFFSET {}").format(
        order, sql.Literal(query.limit), sql.Literal(query.offset)
    )
    rows = await _dicts(conn, sql.SQL(ROW_SQL) + filt + page)
    _reproject(rows, query.crs)
    return int(count[0]["n"]), rows


async def box_counts(
    conn: psycopg.AsyncConnection, spec: LayerSpec, principal: Principal
) -> list[dict[str, Any]]:
    """Every visible box with its case count (one statement, FILTER per box)."""
    boxes = visible_boxes(principal)
    empty = Query(filters={})
    scope = scope_condition(spec, principal.scope, "c")
    counts = sql.SQL(", ").join(
        sql.SQL("count(*) FILTER (WHERE {}) AS {}").format(
            sql.SQL(" AND ").join(
                sql.SQL("({})").format(p)
                for p in conditions(spec, principal, b, empty, scoped=False)
            ),
            sql.Identifier(b.code),
        )
        for b in boxes
    )
    stmt = sql.SQL("SELECT {} FROM city.cases c").format(counts)
    if scope is not None:
        stmt += sql.SQL(" WHERE ") + scope
    row = (await _dicts(conn, stmt))[0]
    return [
        {"code": b.code, "name": b.name, "count": int(row[b.code]), "filters": list(b.filters)}
        for b in boxes
    ]
