"""``/api/v1/users``: the user directory (人员管理), for administrators; personal data masked."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

import psycopg
from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field

from api.deps import get_conn
from api.security.policy import require
from spatial.errors import Forbidden
from spatial.security import audit, directory
from spatial.security.accounts import Accounts
from spatial.security.passwords import hash_password
from spatial.security.principal import Principal

Conn = Annotated[psycopg.AsyncConnection, Depends(get_conn)]
Manager = Annotated[Principal, Depends(require("users:manage"))]
Username = Field(pattern=r"^[a-z0-9][a-z0-9._-]{2,39}$", description="lower-case login name")
Phone = Field(default=None, pattern=r"^[0-9+\- ]{5,20}$")
IdNumber = Field(default=None, pattern=r"^[0-9]{17}[0-9Xx]$", description="居民身份证号")


class UserOut(BaseModel):
    """A user as administrators see it: personal fields masked (脱敏)."""

    id: int
    username: str
    display_name: str
    staff_code: str | None
    department_code: str | None
    status: str
    phone: str | None = Field(description="masked, e.g. 138****5678")
    id_number: str | None = Field(description="masked")
    locked: bool
    totp_enabled: bool
    must_change_password: bool
    last_login_at: datetime | None
    positions: list[str]
    grids: list[str]


class Revealed(BaseModel):
    """Decrypted personal fields (needs personal:read; every read is audited)."""

    phone: str | None
    id_number: str | None


class UserChange(BaseModel):
    """Fields to change; omitted ones stay."""

    display_name: str | None = Field(default=None, min_length=1, max_length=40)
    staff_code: str | None = Field(default=None, max_length=20)
    department_code: str | None = Field(default=None, max_length=20)
    status: Literal["active", "disabled"] | None = None
    positions: list[str] | None = None
    grids: list[str] | None = Field(default=None, description="责任网格 codes (监督员)")
    phone: str | None = Phone
    id_number: str | None = IdNumber


class UserCreate(UserChange):
    """A new user."""

    username: str = Username
    display_name: str = Field(min_length=1, max_length=40)  # type: ignore[assignment]
    password: str = Field(min_length=1, max_length=200)
    must_change_password: bool = True


class PasswordReset(BaseModel):
    """A new initial password set by an administrator."""

    password: str = Field(min_length=1, max_length=200)


def _out(row: dict[str, Any]) -> UserOut:
    return UserOut(
        **{k: v for k, v in row.items() if k not in ("phone_mask", "id_number_mask")},
        phone=row["phone_mask"],
        id_number=row["id_number_mask"],
    )


def _plain(body: UserChange) -> dict[str, Any]:
    names = directory.UserFields.__dataclass_fields__
    return {k: v for k, v in body.model_dump(exclude_unset=True).items() if k in names}


def users_router() -> APIRouter:
    """Build the user directory router."""
    router = APIRouter(prefix="/api/v1/users", tags=["人员 (users)"])

    def accounts(request: Request) -> Accounts:
        return request.app.state.accounts

    @router.get("", response_model=list[UserOut], operation_id="listUsers")
    async def list_users(
        conn: Conn,
        _: Manager,
        department: str | None = None,
        position: str | None = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 200,
    ) -> list[UserOut]:
        """Users, masked."""
        return [_out(r) for r in await directory.list_users(conn, department, position, limit)]

    @router.post("", response_model=UserOut, status_code=201, operation_id="createUser")
    async def create_user(
        request: Request, conn: Conn, body: UserCreate, actor: Manager
    ) -> UserOut:
        """Create a user with positions, department and grids (audited)."""
        s = accounts(request).settings
        async with conn.transaction():
            row = await directory.create_user(
                conn,
                accounts(request).keys.keyring,
                actor,
                body.username,
                body.password,
                accounts(request).password_policy,
                s.password_iterations,
                directory.UserFields(**_plain(body)),
                body.must_change_password,
            )
        return _out(row)

    @router.get("/{user_id}", response_model=UserOut, operation_id="getUser")
    async def get_user(conn: Conn, user_id: int, _: Manager) -> UserOut:
        """One user, masked."""
        return _out(await directory.get_user(conn, user_id))

    @router.get("/{user_id}/personal", response_model=Revealed, operation_id="revealUser")
    async def reveal_user(
        request: Request,
        conn: Conn,
        user_id: int,
        principal: Annotated[Principal, Depends(require("personal:read"))],
    ) -> Revealed:
        """Decrypted phone and ID number — a sensitive read, recorded in the audit trail."""
        async with conn.transaction():
            values = await directory.reveal(conn, accounts(request).keys.keyring, user_id)
            await audit.record(
                conn,
                audit.event_from_request(
                    request,
                    principal,
                    "personal.read",
                    target_type="user",
                    target_id=str(user_id),
                    detail={"fields": [k for k, v in values.items() if v]},
                ),
            )
        return Revealed(**values)

    @router.patch("/{user_id}", response_model=UserOut, operation_id="changeUser")
    async def change_user(
        request: Request, conn: Conn, user_id: int, body: UserChange, actor: Manager
    ) -> UserOut:
        """Change a user (audited with before/after)."""
        if user_id == actor.id and body.positions is not None:
            raise Forbidden("Administrators cannot change their own positions (职责分离).")
        async with conn.transaction():
            row = await directory.change_user(
                conn,
                accounts(request).keys.keyring,
                actor,
                user_id,
                directory.UserFields(**_plain(body)),
            )
        request.app.state.authenticator.forget()
        return _out(row)

    @router.post("/{user_id}/unlock", status_code=204, operation_id="unlockUser")
    async def unlock_user(request: Request, conn: Conn, user_id: int, actor: Manager) -> None:
        """Clear a lockout (账号解锁)."""
        async with conn.transaction():
            await directory.unlock(conn, actor, user_id)

    @router.post("/{user_id}/password", status_code=204, operation_id="resetPassword")
    async def reset_password(
        request: Request, conn: Conn, user_id: int, body: PasswordReset, actor: Manager
    ) -> None:
        """Set an initial password; the user must change it at next log-in."""
        s = accounts(request).settings
        user = await directory.get_user(conn, user_id)
        accounts(request).password_policy.require(body.password, user["username"])
        async with conn.transaction():
            await directory.set_password(
                conn, actor, user_id, hash_password(body.password, s.password_iterations)
            )
        request.app.state.authenticator.forget()

    return router
