"""Organisation (机构设置): departments, positions and their permissions, API keys."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from functools import partial
from typing import Annotated, Any, Literal

import psycopg
from fastapi import APIRouter, Depends, Request
from psycopg import sql
from pydantic import BaseModel, Field

from api.deps import get_conn
from api.security.policy import authenticated, require
from spatial.errors import Conflict, FieldIssue, NotFound
from spatial.security import audit
from spatial.security.accounts import Accounts
from spatial.security.permissions import PERMISSIONS, check_permissions, duty_conflicts
from spatial.security.principal import Principal

Conn = Annotated[psycopg.AsyncConnection, Depends(get_conn)]
Anyone = Annotated[Principal, Depends(authenticated)]
OrgManager = Annotated[Principal, Depends(require("org:manage"))]
RoleManager = Annotated[Principal, Depends(require("roles:manage"))]
KeyManager = Annotated[Principal, Depends(require("apikeys:manage"))]
DEPARTMENT_KINDS = Literal["处置部门", "街道", "社区", "第三方运营公司", "指挥中心"]


class Department(BaseModel):
    """A department, street office, community or operator."""

    code: str = Field(pattern=r"^[A-Z0-9]{2,20}$")
    name: str = Field(min_length=2, max_length=60)
    kind: DEPARTMENT_KINDS
    phone: str | None = Field(default=None, max_length=30)
    parent_code: str | None = None
    street_code: str | None = Field(default=None, description="街道: data scope = its polygon")
    community_code: str | None = Field(default=None, description="社区: data scope")


class Position(BaseModel):
    """A position (岗位) with permissions and data scope."""

    code: str = Field(pattern=r"^[a-z][a-z0-9_]{1,30}$")
    name: str = Field(min_length=1, max_length=30)
    description: str | None = Field(default=None, max_length=200)
    permissions: list[str]
    data_scope: Literal["all", "unit", "grid", "self", "none"]
    requires_mfa: bool = False


class Permission(BaseModel):
    """One permission of the catalogue."""

    code: str
    title: str


class ApiKeyIn(BaseModel):
    """A machine client (device, data exchange)."""

    name: str = Field(min_length=2, max_length=60)
    scopes: list[str] = Field(description="permissions granted to the key")
    department_code: str | None = Field(default=None, description="limits data scope")
    expires_at: datetime | None = None


class ApiKeyOut(BaseModel):
    """A stored key (the secret is never shown again)."""

    id: int
    prefix: str
    name: str
    scopes: list[str]
    department_code: str | None
    created_by: str | None
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None


class NewApiKey(ApiKeyOut):
    """A new key, with the secret shown once."""

    key: str = Field(description="send as X-API-Key, or HTTP Basic user 'apikey'")


async def _rows(conn: psycopg.AsyncConnection, sql: str, args: Any = ()) -> list[dict[str, Any]]:
    cur = await conn.execute(sql, args)
    names = [c.name for c in cur.description or []]
    return [dict(zip(names, r, strict=True)) for r in await cur.fetchall()]


async def _one(conn: psycopg.AsyncConnection, sql: str, args: Any, what: str) -> dict[str, Any]:
    rows = await _rows(conn, sql, args)
    if not rows:
        raise NotFound(f"No such {what}.")
    return rows[0]


async def _put(
    request: Request,
    conn: psycopg.AsyncConnection,
    actor: Principal,
    kind: str,
    select_sql: str,
    code: str,
    body: BaseModel,
    check: Callable[[], Awaitable[None]] | None = None,
) -> dict[str, Any]:
    """Upsert one ``city.<kind>s`` row by code, with ``check`` and the audit entry, atomically."""
    if getattr(body, "code", None) != code:
        raise Conflict("Path and body codes differ.", [FieldIssue("code", "must match")])
    values = body.model_dump()
    columns = [sql.Identifier(name) for name in values]
    updates = [
        sql.SQL("{0} = EXCLUDED.{0}").format(sql.Identifier(n)) for n in values if n != "code"
    ]
    upsert = sql.SQL("INSERT INTO {} ({}) VALUES ({}) ON CONFLICT (code) DO UPDATE SET {}").format(
        sql.Identifier("city", f"{kind}s"),
        sql.SQL(", ").join(columns),
        sql.SQL(", ").join(sql.Placeholder(name) for name in values),
        sql.SQL(", ").join(updates),
    )
    async with conn.transaction():
        before = await _rows(conn, select_sql + " WHERE code = %s FOR UPDATE", (code,))
        if check is not None:
            await check()
        await conn.execute(upsert, values)
        event = _event(
            request,
            actor,
            f"{kind}.put",
            target_type=kind,
            target_id=code,
            before=before[0] if before else None,
            after=values,
        )
        await audit.record(conn, event)
    request.app.state.authenticator.forget()
    return values


def _event(request: Request, actor: Principal, action: str, **fields: Any) -> audit.AuditEvent:
    return audit.event_from_request(request, actor, action, **fields)


def org_router() -> APIRouter:
    """Build the organisation router."""
    router = APIRouter(prefix="/api/v1", tags=["机构 (organisation)"])
    add_department_routes(router)
    add_position_routes(router)
    add_api_key_routes(router)
    return router


DEPARTMENT_SQL = (
    "SELECT code, name, kind, phone, parent_code, street_code, community_code FROM city.departments"
)


def add_department_routes(router: APIRouter) -> None:
    """Departments: read by anyone logged in, changed with org:manage."""

    @router.get("/departments", response_model=list[Department], operation_id="listDepartments")
    async def departments(conn: Conn, _: Anyone) -> list[dict[str, Any]]:
        return await _rows(conn, DEPARTMENT_SQL + " ORDER BY code")

    @router.put("/departments/{code}", response_model=Department, operation_id="putDepartment")
    async def put_department(
        request: Request, conn: Conn, code: str, body: Department, actor: OrgManager
    ) -> dict[str, Any]:
        """Create or replace a department (audited)."""
        return await _put(request, conn, actor, "department", DEPARTMENT_SQL, code, body)


POSITION_SQL = (
    "SELECT code, name, description, permissions, data_scope, requires_mfa FROM city.positions"
)


def add_position_routes(router: APIRouter) -> None:
    """Positions and the permission catalogue."""

    @router.get("/permissions", response_model=list[Permission], operation_id="listPermissions")
    async def permissions(_: Anyone) -> list[Permission]:
        return [Permission(code=c, title=t) for c, t in PERMISSIONS.items()]

    @router.get("/positions", response_model=list[Position], operation_id="listPositions")
    async def positions(conn: Conn, _: Anyone) -> list[dict[str, Any]]:
        return await _rows(conn, POSITION_SQL + " ORDER BY code")

    @router.put("/positions/{code}", response_model=Position, operation_id="putPosition")
    async def put_position(
        request: Request, conn: Conn, code: str, body: Position, actor: RoleManager
    ) -> dict[str, Any]:
        """Create or change a position; separation of duties is checked for every holder."""
        holders = partial(_check_holders, conn, code, body.permissions)
        return await _put(request, conn, actor, "position", POSITION_SQL, code, body, holders)


async def _check_holders(conn: psycopg.AsyncConnection, code: str, permissions: list[str]) -> None:
    """Refuse unknown permissions, or a change giving any current holder conflicting duties."""
    check_permissions(permissions)
    rows = await _rows(
        conn,
        "SELECT u.username, COALESCE(array_agg(DISTINCT p) FILTER (WHERE p IS NOT NULL), '{}')"
        " AS perms FROM city.user_positions up JOIN city.users u ON u.id = up.user_id"
        " LEFT JOIN city.user_positions o ON o.user_id = up.user_id AND o.position_code <> %s"
        " LEFT JOIN city.positions op ON op.code = o.position_code"
        " LEFT JOIN LATERAL unnest(op.permissions) p ON true"
        " WHERE up.position_code = %s GROUP BY u.username",
        (code, code),
    )
    for row in rows:
        problems = duty_conflicts([*row["perms"], *permissions])
        if problems:
            raise Conflict(
                f"User {row['username']} holds this position and would break separation of duties",
                [FieldIssue("permissions", p) for p in problems],
            )


KEY_SQL = (
    "SELECT id, prefix, name, scopes, department_code, created_by, created_at, expires_at,"
    " revoked_at, last_used_at FROM city.api_keys"
)


def add_api_key_routes(router: APIRouter) -> None:
    """API keys for machine clients (devices, data exchange, GIS desktops)."""

    @router.get("/api-keys", response_model=list[ApiKeyOut], operation_id="listApiKeys")
    async def api_keys(conn: Conn, _: KeyManager) -> list[dict[str, Any]]:
        return await _rows(conn, KEY_SQL + " ORDER BY id")

    @router.post(
        "/api-keys", response_model=NewApiKey, status_code=201, operation_id="createApiKey"
    )
    async def create_api_key(
        request: Request, conn: Conn, body: ApiKeyIn, actor: KeyManager
    ) -> dict[str, Any]:
        """Issue a key; the secret is returned once and stored only as HMAC-SM3."""
        check_permissions(body.scopes, "scopes")
        accounts: Accounts = request.app.state.accounts
        async with conn.transaction():
            key_id, key = await accounts.create_api_key(
                conn, body.name, body.scopes, actor.name, body.department_code, body.expires_at
            )
            row = await _one(conn, KEY_SQL + " WHERE id = %s", (key_id,), "API key")
            event = _event(
                request,
                actor,
                "apikey.create",
                target_type="api_key",
                target_id=str(key_id),
                after=row,
            )
            await audit.record(conn, event)
        return {**row, "key": key}

    @router.delete("/api-keys/{key_id}", status_code=204, operation_id="revokeApiKey")
    async def revoke_api_key(request: Request, conn: Conn, key_id: int, actor: KeyManager) -> None:
        """Revoke a key at once."""
        async with conn.transaction():
            before = await _one(conn, KEY_SQL + " WHERE id = %s FOR UPDATE", (key_id,), "API key")
            await conn.execute(
                "UPDATE city.api_keys SET revoked_at = now() WHERE id = %s AND revoked_at IS NULL",
                (key_id,),
            )
            event = _event(
                request,
                actor,
                "apikey.revoke",
                target_type="api_key",
                target_id=str(key_id),
                before=before,
            )
            await audit.record(conn, event)
        request.app.state.authenticator.forget()
