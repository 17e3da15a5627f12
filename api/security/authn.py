"""Authentication middleware: Bearer JWT, ``X-API-Key`` or HTTP Basic → ``Principal``.

Runs before routing on every HTTP request (the pygeoapi mount included) and stores the
principal at ``request.state.principal`` and in ``CURRENT_PRINCIPAL``. No credentials means
the anonymous principal; credentials that do not verify (expired, forged, wrong algorithm,
revoked, unknown key) are refused at once with 401, never downgraded to anonymous.
Verified Basic/API-key credentials and token sessions are cached for a few seconds, so QGIS
fetching a hundred tiles costs one PBKDF2 verification, not a hundred.
"""

from __future__ import annotations

import base64
import binascii
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Final

import psycopg
from psycopg_pool import PoolTimeout
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from api.problems import send_problem
from spatial.errors import CityError, DatabaseUnavailable, InvalidToken
from spatial.security import audit
from spatial.security.accounts import Accounts, Client
from spatial.security.principal import ANONYMOUS, CURRENT_PRINCIPAL, Principal
from spatial.security.principals import load_user_principal
from spatial.security.sm3 import sm3_hex
from spatial.security.tokens import decode_access

log = logging.getLogger("cityops.security")
CACHE_MAX: Final = 10_000
Resolver = Callable[[psycopg.AsyncConnection], Awaitable[Principal]]


def client_of(scope: Scope) -> Client:
    """The caller's address and user agent."""
    host = (scope.get("client") or (None, None))[0]
    return Client(ip=host, user_agent=Headers(scope=scope).get("user-agent", "")[:200] or None)


class Authenticator:
    """Resolves credentials to principals, with a short verification cache."""

    def __init__(self, accounts: Accounts, cache_s: float) -> None:
        """``cache_s``: how long a verified credential is trusted without the database."""
        self.accounts, self.cache_s = accounts, cache_s
        self._cache: dict[str, tuple[float, Principal]] = {}

    async def _cached(self, scope: Scope, key: str, resolve: Resolver, ttl: float) -> Principal:
        hit = self._cache.get(key)
        now = time.monotonic()
        if hit and hit[0] > now:
            return hit[1]
        pool = scope["app"].state.pool
        try:
            async with pool.connection(timeout=5) as conn:
                principal = await resolve(conn)
        except (psycopg.OperationalError, PoolTimeout) as exc:
            raise DatabaseUnavailable("The database cannot be reached.") from exc
        if ttl > 0:
            if len(self._cache) >= CACHE_MAX:
                self._cache.clear()
            self._cache[key] = (now + ttl, principal)
        return principal

    def forget(self) -> None:
        """Drop cached verifications (after a password, role or key change)."""
        self._cache.clear()

    async def resolve(self, scope: Scope) -> Principal:
        """The principal for the request's credentials (anonymous when none)."""
        headers = Headers(scope=scope)
        key = headers.get("x-api-key")
        if key:
            return await self._api_key(scope, key)
        auth = headers.get("authorization")
        if not auth:
            return ANONYMOUS
        scheme, _, credential = auth.strip().partition(" ")
        scheme, credential = scheme.lower(), credential.strip()
        if scheme == "bearer":
            return await self._bearer(scope, credential)
        if scheme == "basic":
            return await self._basic(scope, credential)
        if scheme == "apikey":
            return await self._api_key(scope, credential)
        raise InvalidToken(f"Unsupported authorization scheme {scheme!r}; use Bearer or Basic.")

    async def _bearer(self, scope: Scope, token: str) -> Principal:
        claims = decode_access(self.accounts.keys.token_key, token)

        async def resolve(conn: psycopg.AsyncConnection) -> Principal:
            if not await self.accounts.session_alive(conn, claims.family):
                raise InvalidToken("The session was ended (logged out or revoked).")
            principal = await load_user_principal(conn, claims.user_id, "bearer")
            if principal is None:
                raise InvalidToken("The account no longer exists or is disabled.")
            return principal

        key = f"u:{claims.user_id}:{claims.family}"
        return await self._cached(scope, key, resolve, min(self.cache_s, 15))

    async def _basic(self, scope: Scope, credential: str) -> Principal:
        try:
            user, sep, password = (
                base64.b64decode(credential, validate=True).decode().partition(":")
            )
        except (binascii.Error, UnicodeDecodeError):
            raise InvalidToken("Malformed HTTP Basic credentials.") from None
        if not sep:
            raise InvalidToken("Malformed HTTP Basic credentials.")
        client = client_of(scope)

        async def resolve(conn: psycopg.AsyncConnection) -> Principal:
            return await self.accounts.basic(conn, user, password, client)

        key = "b:" + sm3_hex(credential.encode())
        return await self._cached(scope, key, resolve, self.cache_s)

    async def _api_key(self, scope: Scope, key: str) -> Principal:
        async def resolve(conn: psycopg.AsyncConnection) -> Principal:
            return await self.accounts.api_key(conn, key)

        return await self._cached(scope, "k:" + sm3_hex(key.encode()), resolve, self.cache_s)


class AuthenticationMiddleware:
    """Pure ASGI: attach the principal, or answer 401 for bad credentials."""

    def __init__(self, app: ASGIApp, authenticator: Authenticator) -> None:
        """Wrap ``app``."""
        self.app, self.authenticator = app, authenticator

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Resolve, then call the app with the principal set."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        try:
            principal = await self.authenticator.resolve(scope)
        except CityError as error:
            if error.status in (401, 403, 423):
                await self._record_rejection(scope, error)
            await send_problem(scope, receive, send, error)
            return
        scope.setdefault("state", {})["principal"] = principal
        token = CURRENT_PRINCIPAL.set(principal)
        try:
            await self.app(scope, receive, send)
        finally:
            CURRENT_PRINCIPAL.reset(token)

    async def _record_rejection(self, scope: Scope, error: CityError) -> None:
        """Log and audit a refused credential (best effort: never masks the 401)."""
        client = client_of(scope)
        log.warning("refused credentials from %s on %s: %s", client.ip, scope["path"], error)
        event = audit.AuditEvent(
            action="auth.rejected",
            actor="anonymous",
            actor_kind="anonymous",
            ip=client.ip,
            user_agent=client.user_agent,
            method=scope.get("method"),
            path=scope["path"][:300],
            status=error.status,
            detail={"reason": error.detail[:300]},
        )
        try:
            async with scope["app"].state.pool.connection(timeout=2) as conn:
                await audit.record(conn, event)
        except (psycopg.Error, PoolTimeout):
            log.exception("could not audit a refused credential")
