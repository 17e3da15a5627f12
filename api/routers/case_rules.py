"""Case rules: dispatch recommendations, similar cases, cross-grid reminder, timers, and their data.

Reading a case's recommendations, similar cases or timer needs the case within the caller's
data scope (else 404); similar cases listed are limited to that scope too. The supervision
manual (``/dispatch-rules``), the working calendar, the stage time limits and the duty roster
are read with ``cases:read`` and changed with ``org:manage`` (audited by the middleware).
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import date, datetime, time
from typing import Annotated, Any, Literal

import psycopg
from fastapi import APIRouter, Depends, Query, Request, Response
from psycopg import sql
from pydantic import BaseModel, Field

from api.deps import get_conn
from api.routers.crs import parse_crs
from api.security.policy import require
from layers.cases import crossgrid, dispatch, similar, timers
from layers.cases.definitions import LIVE
from spatial.crs import ClientCRS, to_storage
from spatial.errors import FieldIssue, NotFound, UnprocessableInput
from spatial.security.principal import Principal
from spatial.security.scope import scope_condition

Conn = Annotated[psycopg.AsyncConnection, Depends(get_conn)]
Reader = Annotated[Principal, Depends(require("cases:read"))]
Dispatcher = Annotated[Principal, Depends(require("cases:dispatch"))]
Reporter = Annotated[Principal, Depends(require("cases:report"))]
OrgManager = Annotated[Principal, Depends(require("org:manage"))]
Category = Literal["事件", "部件"]
TIMED_STAGES = Literal[LIVE]  # type: ignore[valid-type]  # the timed stages
Lon = Annotated[float, Query(ge=-180, le=180, description="longitude in ``crs``")]
Lat = Annotated[float, Query(ge=-90, le=90, description="latitude in ``crs``")]
CrsParam = Annotated[str, Query(description="wgs84|gcj02|bd09|cgcs2000 (default cgcs2000)")]


async def _rows(conn: psycopg.AsyncConnection, query: Any, args: Any = ()) -> list[dict[str, Any]]:
    cur = await conn.execute(query, args)
    names = [c.name for c in cur.description or []]
    return [dict(zip(names, r, strict=True)) for r in await cur.fetchall()]


def _scope(request: Request, principal: Principal, alias: str = "c") -> sql.Composable:
    """The principal's data-scope condition on ``city.cases`` (TRUE when unrestricted)."""
    spec = request.app.state.registry.find("cases")
    cond = scope_condition(spec, principal.scope, alias)
    return cond if cond is not None else sql.SQL("TRUE")


async def _visible_case(
    request: Request, conn: psycopg.AsyncConnection, principal: Principal, case_id: int
) -> None:
    """404 unless the case exists within the principal's data scope."""
    query = sql.SQL("SELECT 1 FROM city.cases c WHERE c.id = %s AND {}").format(
        _scope(request, principal)
    )
    if not await _rows(conn, query, (case_id,)):
        raise NotFound(f"No case {case_id}.")


async def _in_scope(
    request: Request, conn: psycopg.AsyncConnection, principal: Principal, ids: list[int]
) -> set[int]:
    if not ids:
        return set()
    query = sql.SQL("SELECT c.id FROM city.cases c WHERE c.id = ANY(%s) AND {}").format(
        _scope(request, principal)
    )
    return {r["id"] for r in await _rows(conn, query, (ids,))}


def case_rules_router() -> APIRouter:
    """Build the case-rules router."""
    router = APIRouter(prefix="/api/v1", tags=["案件规则 (case rules)"])
    add_case_routes(router)
    add_rule_routes(router)
    add_calendar_routes(router)
    add_limit_routes(router)
    add_roster_routes(router)
    return router


# --- per-case helpers: recommendations, similar cases, cross-grid, timer -------------------


class Recommendations(BaseModel):
    """Recommended departments (推荐派遣), best first, and the automatic choice (自动派遣)."""

    case_id: int
    recommendations: list[dict[str, Any]]
    automatic: dict[str, Any] | None


class SimilarOut(BaseModel):
    """Possible duplicates of a report (相似案卷), best first."""

    radius_m: float
    window_days: int
    items: list[dict[str, Any]]


class CrossGridOut(BaseModel):
    """Whether a report point lies outside the inspector's grids (跨网格智能提醒)."""

    cross_grid: bool
    grid_code: str | None = None
    grid_name: str | None = None
    grid_inspector: str | None = None
    own_grids: list[str] = []
    distance_m: float | None = None
    message: str | None = None
    crs: ClientCRS = ClientCRS.CGCS2000


async def _similar(
    request: Request,
    conn: psycopg.AsyncConnection,
    principal: Principal,
    found: list[similar.SimilarCase],
    radius_m: float | None,
    window_days: int | None,
    category: str,
    class_code: str,
) -> SimilarOut:
    if radius_m is None or window_days is None:
        default_radius, default_window = await similar.settings(conn, category, class_code)
        radius_m = default_radius if radius_m is None else radius_m
        window_days = default_window if window_days is None else window_days
    visible = await _in_scope(request, conn, principal, [s.id for s in found])
    items = [asdict(s) for s in found if s.id in visible]
    return SimilarOut(radius_m=radius_m, window_days=window_days, items=items)


def add_case_routes(router: APIRouter) -> None:
    """Recommendations, similar cases, cross-grid reminder and timers."""

    @router.get(
        "/cases/{case_id:int}/dispatch-recommendations",
        response_model=Recommendations,
        operation_id="caseDispatchRecommendations",
    )
    async def recommendations(
        request: Request, conn: Conn, case_id: int, principal: Dispatcher
    ) -> Recommendations:
        """Departments from the supervision manual for this case, best first."""
        await _visible_case(request, conn, principal, case_id)
        ranked = await dispatch.recommend(conn, case_id)
        auto = await dispatch.automatic_department(conn, case_id)
        return Recommendations(
            case_id=case_id,
            recommendations=[asdict(r) for r in ranked],
            automatic=asdict(auto) if auto else None,
        )

    @router.get(
        "/cases/{case_id:int}/similar", response_model=SimilarOut, operation_id="caseSimilar"
    )
    async def case_similar(
        request: Request,
        conn: Conn,
        case_id: int,
        principal: Reader,
        radius_m: Annotated[float | None, Query(gt=0, le=similar.MAX_RADIUS_M)] = None,
        window_days: Annotated[int | None, Query(ge=0, le=3650)] = None,
        limit: Annotated[int, Query(ge=1, le=100)] = 10,
    ) -> SimilarOut:
        """Open or recent cases like this one nearby (立案时相似案卷提示)."""
        await _visible_case(request, conn, principal, case_id)
        rows = await _rows(
            conn, "SELECT category, class_code FROM city.cases WHERE id = %s", (case_id,)
        )
        found = await similar.similar_to_case(
            conn, case_id, radius_m=radius_m, window_days=window_days, limit=limit
        )
        row = rows[0]
        return await _similar(
            request,
            conn,
            principal,
            found or [],
            radius_m,
            window_days,
            row["category"],
            row["class_code"],
        )

    @router.get("/cases/similar", response_model=SimilarOut, operation_id="similarCases")
    async def similar_cases(
        request: Request,
        conn: Conn,
        principal: Reader,
        category: Category,
        class_code: Annotated[str, Query(pattern=r"^[0-9]{10}$")],
        lon: Lon,
        lat: Lat,
        crs: CrsParam = "cgcs2000",
        at: datetime | None = None,
        part_code: Annotated[str | None, Query(max_length=30)] = None,
        radius_m: Annotated[float | None, Query(gt=0, le=similar.MAX_RADIUS_M)] = None,
        window_days: Annotated[int | None, Query(ge=0, le=3650)] = None,
        limit: Annotated[int, Query(ge=1, le=100)] = 10,
    ) -> SimilarOut:
        """Possible duplicates of a report being written (上报时相似案件提示)."""
        slon, slat = to_storage(lon, lat, parse_crs(crs))
        when = at or (await _rows(conn, "SELECT now() AS now"))[0]["now"]
        found = await similar.find_similar(
            conn,
            category=category,
            class_code=class_code,
            lon=float(slon),
            lat=float(slat),
            at=when,
            part_code=part_code,
            radius_m=radius_m,
            window_days=window_days,
            limit=limit,
        )
        return await _similar(
            request, conn, principal, found, radius_m, window_days, category, class_code
        )

    @router.get("/cases/cross-grid", response_model=CrossGridOut, operation_id="caseCrossGrid")
    async def cross_grid(
        conn: Conn, principal: Reporter, lon: Lon, lat: Lat, crs: CrsParam = "cgcs2000"
    ) -> CrossGridOut:
        """Remind an inspector reporting outside their own responsibility grids."""
        client_crs = parse_crs(crs)
        slon, slat = to_storage(lon, lat, client_crs)
        if principal.kind != "user" or principal.id is None:
            return CrossGridOut(cross_grid=False, crs=client_crs)
        hit = await crossgrid.cross_grid(conn, principal.id, float(slon), float(slat))
        if hit is None:
            return CrossGridOut(cross_grid=False, crs=client_crs)
        return CrossGridOut(cross_grid=True, crs=client_crs, **asdict(hit))

    @router.get(
        "/cases/{case_id:int}/timer",
        response_model=timers.TimerStatus,
        operation_id="caseTimer",
    )
    async def case_timer(
        request: Request, conn: Conn, case_id: int, principal: Reader, at: datetime | None = None
    ) -> timers.TimerStatus:
        """The current stage's clock: limit, deadline, elapsed/remaining working minutes, colour."""
        await _visible_case(request, conn, principal, case_id)
        return await timers.timer_status(conn, case_id, at)


# --- the supervision manual ----------------------------------------------------------------


class DispatchRuleIn(BaseModel):
    """A line of the supervision manual (监督指挥手册)."""

    category: Category
    major_code: str = Field(pattern=r"^[0-9]{2}$")
    minor_code: str | None = Field(default=None, pattern=r"^[0-9]{2}$", description="NULL = 全大类")
    street_code: str | None = Field(default=None, description="NULL = 全区")
    grid_code: str | None = Field(default=None, description="责任网格; NULL = 全区")
    department_code: str
    time_limit_hours: int | None = Field(default=None, gt=0, le=8760, description="处置时限")
    standard: str | None = Field(default=None, max_length=2000, description="处置标准")
    automatic: bool = Field(default=False, description="自动派遣")
    priority: int = Field(default=100, ge=0, le=10000, description="lower wins")


class DispatchRule(DispatchRuleIn):
    """A stored rule."""

    id: int
    department_name: str | None = None


RULE_SQL = (
    "SELECT r.id, r.category, r.major_code, r.minor_code, r.street_code, r.grid_code,"
    " r.department_code, d.name AS department_name, r.time_limit_hours, r.standard,"
    " r.automatic, r.priority FROM city.dispatch_rules r"
    " LEFT JOIN city.departments d ON d.code = r.department_code"
)
RULE_FIELDS = tuple(DispatchRuleIn.model_fields)
CHECKS: tuple[tuple[str, str], ...] = (
    ("department_code", "SELECT 1 FROM city.departments WHERE code = %s"),
    ("street_code", "SELECT 1 FROM city.streets WHERE code = %s"),
    ("grid_code", "SELECT 1 FROM city.responsibility_grids WHERE code = %s"),
)


async def _check_rule(conn: psycopg.AsyncConnection, body: DispatchRuleIn) -> None:
    """422 naming each field that refers to something unknown."""
    issues: list[FieldIssue] = []
    for name, query in CHECKS:
        value = getattr(body, name)
        if value is not None and not await _rows(conn, query, (value,)):
            issues.append(FieldIssue(name, f"unknown {name.removesuffix('_code')} {value!r}"))
    table = "component_classes" if body.category == "部件" else "event_classes"
    classes = await _rows(
        conn,
        sql.SQL("SELECT minor_code FROM city.{} WHERE major_code = %s").format(
            sql.Identifier(table)
        ),
        (body.major_code,),
    )
    if not classes:
        issues.append(FieldIssue("major_code", f"no {body.category} major class {body.major_code}"))
    elif body.minor_code is not None and body.minor_code not in {c["minor_code"] for c in classes}:
        issues.append(
            FieldIssue(
                "minor_code",
                f"no {body.category} minor class {body.major_code}{body.minor_code}",
            )
        )
    if issues:
        raise UnprocessableInput("The rule refers to unknown data.", issues)


def add_rule_routes(router: APIRouter) -> None:
    """CRUD of ``city.dispatch_rules``."""

    @router.get("/dispatch-rules", response_model=list[DispatchRule], operation_id="listRules")
    async def list_rules(
        conn: Conn,
        _: Reader,
        category: Category | None = None,
        major_code: Annotated[str | None, Query(pattern=r"^[0-9]{2}$")] = None,
        department_code: str | None = None,
    ) -> list[dict[str, Any]]:
        """The supervision manual, filtered."""
        conds = [sql.SQL("TRUE")]
        args: list[Any] = []
        for column, value in (
            ("category", category),
            ("major_code", major_code),
            ("department_code", department_code),
        ):
            if value is not None:
                conds.append(sql.SQL("r.{} = %s").format(sql.Identifier(column)))
                args.append(value)
        query = sql.SQL(
            RULE_SQL + " WHERE {} ORDER BY r.category, r.major_code,"
            " r.minor_code NULLS FIRST, r.priority, r.id"
        ).format(sql.SQL(" AND ").join(conds))
        return await _rows(conn, query, args)

    @router.get("/dispatch-rules/{rule_id}", response_model=DispatchRule, operation_id="getRule")
    async def get_rule(conn: Conn, rule_id: int, _: Reader) -> dict[str, Any]:
        return await _rule(conn, rule_id)

    @router.post(
        "/dispatch-rules",
        response_model=DispatchRule,
        status_code=201,
        operation_id="createRule",
    )
    async def create_rule(conn: Conn, body: DispatchRuleIn, _: OrgManager) -> dict[str, Any]:
        """Add a rule (422 naming the field for an unknown department, class, street or grid)."""
        await _check_rule(conn, body)
        values = body.model_dump()
        query = sql.SQL("INSERT INTO city.dispatch_rules ({}) VALUES ({}) RETURNING id").format(
            sql.SQL(", ").join(map(sql.Identifier, RULE_FIELDS)),
            sql.SQL(", ").join(sql.Placeholder(n) for n in RULE_FIELDS),
        )
        rows = await _rows(conn, query, values)
        return await _rule(conn, rows[0]["id"])

    @router.put("/dispatch-rules/{rule_id}", response_model=DispatchRule, operation_id="putRule")
    async def put_rule(
        conn: Conn, rule_id: int, body: DispatchRuleIn, _: OrgManager
    ) -> dict[str, Any]:
        """Replace a rule."""
        await _check_rule(conn, body)
        query = sql.SQL("UPDATE city.dispatch_rules SET {} WHERE id = %(id)s RETURNING id").format(
            sql.SQL(", ").join(
                sql.SQL("{} = {}").format(sql.Identifier(n), sql.Placeholder(n))
                for n in RULE_FIELDS
            )
        )
        if not await _rows(conn, query, {**body.model_dump(), "id": rule_id}):
            raise NotFound(f"No dispatch rule {rule_id}.")
        return await _rule(conn, rule_id)

    @router.delete("/dispatch-rules/{rule_id}", status_code=204, operation_id="deleteRule")
    async def delete_rule(conn: Conn, rule_id: int, _: OrgManager) -> Response:
        cur = await conn.execute("DELETE FROM city.dispatch_rules WHERE id = %s", (rule_id,))
        if cur.rowcount == 0:
            raise NotFound(f"No dispatch rule {rule_id}.")
        return Response(status_code=204)


async def _rule(conn: psycopg.AsyncConnection, rule_id: int) -> dict[str, Any]:
    rows = await _rows(conn, RULE_SQL + " WHERE r.id = %s", (rule_id,))
    if not rows:
        raise NotFound(f"No dispatch rule {rule_id}.")
    return rows[0]


# --- working calendar ----------------------------------------------------------------------


class CalendarDayIn(BaseModel):
    """How a day differs from Monday–Friday (法定节假日 / 调休上班)."""

    is_workday: bool
    note: str | None = Field(default=None, max_length=40)


class CalendarDay(CalendarDayIn):
    """A day of the working calendar, with its working periods when it is a working day."""

    day: date
    source: Literal["calendar", "weekday"]
    periods: list[tuple[time, time]]


async def _day(conn: psycopg.AsyncConnection, day: date) -> CalendarDay:
    rows = await _rows(
        conn,
        "SELECT w.is_workday, w.note, city.is_workday(%(d)s) AS effective,"
        " (SELECT array_agg(ARRAY[p.start_time, p.end_time] ORDER BY p.start_time)"
        "  FROM city.work_periods p) AS periods"
        " FROM (SELECT 1) one LEFT JOIN city.work_calendar w ON w.day = %(d)s",
        {"d": day},
    )
    row = rows[0]
    effective = bool(row["effective"])
    periods = [(p[0], p[1]) for p in row["periods"] or []] if effective else []
    return CalendarDay(
        day=day,
        is_workday=effective,
        note=row["note"],
        source="calendar" if row["is_workday"] is not None else "weekday",
        periods=periods,
    )


def add_calendar_routes(router: APIRouter) -> None:
    """The working calendar (系统日历, 节假日)."""

    @router.get("/work-calendar", response_model=list[CalendarDay], operation_id="listWorkCalendar")
    async def list_calendar(
        conn: Conn, _: Reader, year: Annotated[int, Query(ge=2000, le=2100)]
    ) -> list[CalendarDay]:
        """The days of ``year`` that differ from Monday–Friday."""
        rows = await _rows(
            conn,
            "SELECT day FROM city.work_calendar WHERE extract(year FROM day) = %s ORDER BY day",
            (year,),
        )
        return [await _day(conn, r["day"]) for r in rows]

    @router.get(
        "/work-calendar/{day}", response_model=CalendarDay, operation_id="getWorkCalendarDay"
    )
    async def get_day(conn: Conn, day: date, _: Reader) -> CalendarDay:
        """Whether ``day`` is a working day, and why."""
        return await _day(conn, day)

    @router.put(
        "/work-calendar/{day}", response_model=CalendarDay, operation_id="putWorkCalendarDay"
    )
    async def put_day(conn: Conn, day: date, body: CalendarDayIn, _: OrgManager) -> CalendarDay:
        """Mark a holiday or a 调休 working day."""
        await conn.execute(
            "INSERT INTO city.work_calendar (day, is_workday, note) VALUES (%s, %s, %s)"
            " ON CONFLICT (day) DO UPDATE SET is_workday = EXCLUDED.is_workday,"
            " note = EXCLUDED.note",
            (day, body.is_workday, body.note),
        )
        return await _day(conn, day)

    @router.delete(
        "/work-calendar/{day}", response_model=CalendarDay, operation_id="deleteWorkCalendarDay"
    )
    async def delete_day(conn: Conn, day: date, _: OrgManager) -> CalendarDay:
        """Let ``day`` follow Monday–Friday again."""
        await conn.execute("DELETE FROM city.work_calendar WHERE day = %s", (day,))
        return await _day(conn, day)


# --- stage time limits ---------------------------------------------------------------------


class StageLimit(BaseModel):
    """A stage's time limit (时限) for a class; NULL category/major/minor = every class."""

    category: Category | None = None
    major_code: str | None = Field(default=None, pattern=r"^[0-9]{2}$")
    minor_code: str | None = Field(default=None, pattern=r"^[0-9]{2}$")
    stage: TIMED_STAGES
    limit_minutes: int = Field(gt=0, le=525_600)
    calendar: Literal["working", "natural"] = "working"
    max_extensions: int = Field(default=1, ge=0, le=100)
    extendable: bool = True


LIMIT_FIELDS = tuple(StageLimit.model_fields)
LIMIT_SQL = (
    "SELECT category, major_code, minor_code, stage, limit_minutes, calendar, max_extensions,"
    " extendable FROM city.stage_time_limits ORDER BY stage, category NULLS FIRST,"
    " major_code NULLS FIRST, minor_code NULLS FIRST"
)


def _check_limits(limits: list[StageLimit]) -> None:
    issues: list[FieldIssue] = []
    seen: set[tuple] = set()
    for i, item in enumerate(limits):
        key = (item.category, item.major_code, item.minor_code, item.stage)
        if key in seen:
            issues.append(FieldIssue(f"[{i}]", "duplicate of an earlier limit"))
        seen.add(key)
        if item.minor_code is not None and item.major_code is None:
            issues.append(FieldIssue(f"[{i}].minor_code", "needs major_code"))
        if item.major_code is not None and item.category is None:
            issues.append(FieldIssue(f"[{i}].major_code", "needs category"))
    if issues:
        raise UnprocessableInput("Invalid stage time limits.", issues)


def add_limit_routes(router: APIRouter) -> None:
    """Stage time limits (计时管理: 各环节时限)."""

    @router.get(
        "/stage-time-limits", response_model=list[StageLimit], operation_id="listStageLimits"
    )
    async def list_limits(conn: Conn, _: Reader) -> list[dict[str, Any]]:
        return await _rows(conn, LIMIT_SQL)

    @router.put(
        "/stage-time-limits", response_model=list[StageLimit], operation_id="putStageLimits"
    )
    async def put_limits(conn: Conn, body: list[StageLimit], _: OrgManager) -> list[dict[str, Any]]:
        """Replace all limits at once (running cases keep the deadlines they have)."""
        _check_limits(body)
        insert = sql.SQL("INSERT INTO city.stage_time_limits ({}) VALUES ({})").format(
            sql.SQL(", ").join(map(sql.Identifier, LIMIT_FIELDS)),
            sql.SQL(", ").join(sql.Placeholder(n) for n in LIMIT_FIELDS),
        )
        async with conn.transaction():
            await conn.execute("DELETE FROM city.stage_time_limits")
            for item in body:
                await conn.execute(insert, item.model_dump())
        return await _rows(conn, LIMIT_SQL)


# --- duty roster ---------------------------------------------------------------------------


class RosterEntry(BaseModel):
    """One seat of the roster (案件智能分配)."""

    user_id: int
    duty: Literal["accept", "dispatch"]
    seat_no: int = Field(ge=1, le=999)
    on_duty: bool = True


class RosterRow(RosterEntry):
    """A stored seat with the user's name and the last assignment."""

    username: str
    display_name: str
    last_assigned_at: datetime | None
    open_cases: int


ROSTER_SQL = (
    "SELECT r.user_id, r.duty, r.seat_no, r.on_duty, u.username, u.display_name,"
    " r.last_assigned_at, (SELECT count(*) FROM city.cases c WHERE c.assignee_user_id ="
    " r.user_id AND NOT c.stage = ANY(%s))::int AS open_cases"
    " FROM city.staff_roster r JOIN city.users u ON u.id = r.user_id"
    " ORDER BY r.duty, r.seat_no, r.user_id"
)


async def _check_roster(conn: psycopg.AsyncConnection, body: list[RosterEntry]) -> None:
    issues: list[FieldIssue] = []
    seen: set[tuple[int, str]] = set()
    known = {
        r["id"]
        for r in await _rows(
            conn, "SELECT id FROM city.users WHERE id = ANY(%s)", ([e.user_id for e in body],)
        )
    }
    for i, entry in enumerate(body):
        if entry.user_id not in known:
            issues.append(FieldIssue(f"[{i}].user_id", f"unknown user {entry.user_id}"))
        if (entry.user_id, entry.duty) in seen:
            issues.append(FieldIssue(f"[{i}]", "duplicate user and duty"))
        seen.add((entry.user_id, entry.duty))
    if issues:
        raise UnprocessableInput("Invalid roster.", issues)


def add_roster_routes(router: APIRouter) -> None:
    """The duty roster of acceptors and dispatchers."""

    @router.get("/staff-roster", response_model=list[RosterRow], operation_id="listRoster")
    async def list_roster(conn: Conn, _: Reader) -> list[dict[str, Any]]:
        return await _rows(conn, ROSTER_SQL, (list(dispatch.TERMINAL_STAGES),))

    @router.put("/staff-roster", response_model=list[RosterRow], operation_id="putRoster")
    async def put_roster(
        conn: Conn, body: list[RosterEntry], _: OrgManager
    ) -> list[dict[str, Any]]:
        """Replace the roster; seats kept keep their last assignment time (round robin order)."""
        await _check_roster(conn, body)
        async with conn.transaction():
            await conn.execute(
                "DELETE FROM city.staff_roster r WHERE NOT (r.user_id, r.duty) IN"
                " (SELECT * FROM unnest(%s::bigint[], %s::text[]))",
                ([e.user_id for e in body], [e.duty for e in body]),
            )
            for e in body:
                await conn.execute(
                    "INSERT INTO city.staff_roster (user_id, duty, seat_no, on_duty)"
                    " VALUES (%s, %s, %s, %s) ON CONFLICT (user_id, duty) DO UPDATE"
                    " SET seat_no = EXCLUDED.seat_no, on_duty = EXCLUDED.on_duty",
                    (e.user_id, e.duty, e.seat_no, e.on_duty),
                )
        return await _rows(conn, ROSTER_SQL, (list(dispatch.TERMINAL_STAGES),))
