"""``/api/v1/auth``: OAuth2 password and refresh grants, log-out, SM2 key, TOTP, own password."""

from __future__ import annotations

from typing import Annotated, Literal

import psycopg
from fastapi import APIRouter, Depends, Form, Request
from pydantic import BaseModel, Field

from api.deps import get_conn
from api.security.authn import client_of
from api.security.policy import authenticated, public
from spatial.errors import FieldIssue, InvalidInput, InvalidToken
from spatial.security import audit
from spatial.security.accounts import Accounts, TokenPair
from spatial.security.passwords import hash_password, verify_password
from spatial.security.principal import Principal

Conn = Annotated[psycopg.AsyncConnection, Depends(get_conn)]


class TokenResponse(BaseModel):
    """RFC 6749 token response (with the refresh token's idle lifetime)."""

    access_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int
    refresh_token: str
    refresh_expires_in: int
    must_change_password: bool = False


class Sm2Key(BaseModel):
    """How clients encrypt the password (商用密码: SM2 public-key encryption)."""

    algorithm: str = "SM2"
    cipher_mode: str = "C1C3C2"
    public_key: str = Field(description="uncompressed x||y, hex, without the 04 prefix")
    envelope: str = 'sm2:<hex of SM2(JSON {"p": password, "t": unix ms, "n": random hex})>'
    max_age_s: int
    helper: str = "/static/js/sm2-login.js"


class Me(BaseModel):
    """The caller as the platform sees them."""

    kind: str
    id: int | None
    name: str
    display_name: str
    positions: list[str]
    permissions: list[str]
    department_code: str | None
    scope: dict[str, object]
    via: str


class RefreshBody(BaseModel):
    """A refresh token to revoke."""

    refresh_token: str = Field(min_length=10, max_length=200)


class TotpSetup(BaseModel):
    """A new TOTP secret (shown once)."""

    secret: str
    otpauth_uri: str


class TotpCode(BaseModel):
    """A six-digit TOTP code."""

    code: str = Field(pattern=r"^\d{6}$")


class PasswordChange(BaseModel):
    """Own password change; both may be SM2 envelopes."""

    old_password: str = Field(min_length=1, max_length=2000)
    new_password: str = Field(min_length=1, max_length=2000)


def _accounts(request: Request) -> Accounts:
    return request.app.state.accounts


def _tokens(pair: TokenPair) -> TokenResponse:
    return TokenResponse(
        access_token=pair.access_token,
        expires_in=pair.expires_in,
        refresh_token=pair.refresh_token,
        refresh_expires_in=pair.refresh_expires_in,
        must_change_password=pair.must_change_password,
    )


def _missing(name: str) -> InvalidInput:
    return InvalidInput(f"{name} is required for this grant", [FieldIssue(name, "required")])


def auth_router() -> APIRouter:
    """Build the authentication router."""
    router = APIRouter(prefix="/api/v1/auth", tags=["认证 (authentication)"])

    @router.post("/token", response_model=TokenResponse, operation_id="issueToken")
    async def token(
        request: Request,
        conn: Conn,
        _: Annotated[Principal, Depends(public)],
        grant_type: Annotated[Literal["password", "refresh_token"], Form()] = "password",
        username: Annotated[str | None, Form(max_length=40)] = None,
        password: Annotated[str | None, Form(max_length=2000)] = None,
        refresh_token: Annotated[str | None, Form(max_length=200)] = None,
        totp: Annotated[str | None, Form(max_length=10)] = None,
    ) -> TokenResponse:
        """OAuth2 token endpoint; ``password`` may be plaintext or an SM2 envelope."""
        accounts, client = _accounts(request), client_of(request.scope)
        if grant_type == "refresh_token":
            if not refresh_token:
                raise _missing("refresh_token")
            return _tokens(await accounts.refresh(conn, refresh_token, client))
        if not username:
            raise _missing("username")
        if not password:
            raise _missing("password")
        await request.app.state.login_guard(client.ip, username)
        pair = await accounts.login(conn, username, password, totp, client)
        request.app.state.authenticator.forget()
        return _tokens(pair)

    @router.post("/logout", status_code=204, operation_id="logout")
    async def logout(
        request: Request, conn: Conn, body: RefreshBody, _: Annotated[Principal, Depends(public)]
    ) -> None:
        """Revoke the session (the refresh token's family); its access tokens stop working."""
        await _accounts(request).logout(conn, body.refresh_token, client_of(request.scope))
        request.app.state.authenticator.forget()

    @router.get("/sm2-key", response_model=Sm2Key, operation_id="getSm2Key")
    async def sm2_key(request: Request, _: Annotated[Principal, Depends(public)]) -> Sm2Key:
        """The server's SM2 public key for encrypting passwords at log-in."""
        accounts = _accounts(request)
        return Sm2Key(
            public_key=accounts.keys.sm2.public_hex, max_age_s=accounts.settings.login_max_age_s
        )

    @router.get("/me", response_model=Me, operation_id="getMe")
    async def me(principal: Annotated[Principal, Depends(authenticated)]) -> Me:
        """Who am I: positions, permissions and data scope."""
        s = principal.scope
        return Me(
            kind=principal.kind,
            id=principal.id,
            name=principal.name,
            display_name=principal.display_name,
            positions=list(principal.positions),
            permissions=sorted(principal.permissions),
            department_code=principal.department_code,
            scope={
                "all": s.all,
                "areas": list(s.areas),
                "departments": list(s.departments),
                "grids": list(s.grids),
                "owner": s.owner,
            },
            via=principal.via,
        )

    @router.post("/totp/setup", response_model=TotpSetup, operation_id="setupTotp")
    async def totp_setup(
        request: Request, conn: Conn, principal: Annotated[Principal, Depends(authenticated)]
    ) -> TotpSetup:
        """Start TOTP enrolment: a new secret to scan; confirm with ``/totp/enable``."""
        user_id = _user_id(principal)
        async with conn.transaction():
            secret, uri = await _accounts(request).totp_setup(conn, user_id)
        return TotpSetup(secret=secret, otpauth_uri=uri)

    @router.post("/totp/enable", status_code=204, operation_id="enableTotp")
    async def totp_enable(
        request: Request,
        conn: Conn,
        body: TotpCode,
        principal: Annotated[Principal, Depends(authenticated)],
    ) -> None:
        """Confirm TOTP enrolment with the first code."""
        async with conn.transaction():
            await _accounts(request).totp_enable(conn, _user_id(principal), body.code)

    @router.post("/password", status_code=204, operation_id="changePassword")
    async def change_password(
        request: Request,
        conn: Conn,
        body: PasswordChange,
        principal: Annotated[Principal, Depends(authenticated)],
    ) -> None:
        """Change one's own password (the policy of 等保: length, character classes)."""
        await change_own_password(request, conn, principal, body)

    return router


def _user_id(principal: Principal) -> int:
    if principal.kind != "user" or principal.id is None:
        raise InvalidToken("Only users (not API keys) can do this.")
    return principal.id


async def change_own_password(
    request: Request, conn: psycopg.AsyncConnection, principal: Principal, body: PasswordChange
) -> None:
    """Verify the old password, check the policy, store the new hash (audited)."""
    accounts: Accounts = _accounts(request)
    user_id = _user_id(principal)
    settings = accounts.settings
    async with conn.transaction():
        old = await accounts.plain_password(conn, body.old_password, settings.require_sm2_login)
        new = await accounts.plain_password(conn, body.new_password, settings.require_sm2_login)
        row = await (
            await conn.execute(
                "SELECT password_hash FROM city.users WHERE id = %s FOR UPDATE", (user_id,)
            )
        ).fetchone()
        if row is None or not verify_password(old, row[0]):
            raise InvalidInput("Wrong current password.", [FieldIssue("old_password", "wrong")])
        accounts.password_policy.require(new, principal.name, "new_password")
        await conn.execute(
            "UPDATE city.users SET password_hash = %s, must_change_password = false,"
            " password_changed_at = now(), updated_at = now() WHERE id = %s",
            (hash_password(new, settings.password_iterations), user_id),
        )
        await audit.record(
            conn,
            audit.event_for(
                principal, "user.password_change", target_type="user", target_id=str(user_id)
            ),
        )
    request.app.state.authenticator.forget()
