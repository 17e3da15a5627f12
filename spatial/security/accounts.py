"""Log-in, lockout, TOTP, rotating refresh tokens, HTTP Basic and API keys — against the DB.

Every outcome is written to the audit trail in the same transaction as the state it changes
(a failed attempt counts towards the lockout even though the request fails).
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Awaitable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Final, TypeVar

import psycopg
import pyotp

from spatial.errors import (
    AccountLocked,
    CityError,
    FieldIssue,
    Forbidden,
    InvalidInput,
    InvalidToken,
    Unauthorized,
)
from spatial.security import audit
from spatial.security.keystore import KeyStore
from spatial.security.login_envelope import is_sealed, open_password
from spatial.security.passwords import (
    PasswordPolicy,
    hash_password,
    needs_rehash,
    verify_password,
)
from spatial.security.permissions import effective_permissions
from spatial.security.principal import EVERYTHING, DataScope, Principal
from spatial.security.principals import USER_SQL, principal_from_row, requires_mfa
from spatial.security.sm3 import hmac_sm3
from spatial.security.tokens import issue_access, new_refresh_token, refresh_digest
from spatial.settings import SecuritySettings

T = TypeVar("T")
API_KEY_PREFIX: Final = "cok_"
BAD_CREDENTIALS: Final = "Invalid user name or password (用户名或密码错误)."


@dataclass(frozen=True)
class Client:
    """Where a request came from (for the audit trail and refresh tokens)."""

    ip: str | None = None
    user_agent: str | None = None


@dataclass(frozen=True)
class TokenPair:
    """The OAuth2 token response."""

    access_token: str
    refresh_token: str
    expires_in: int
    refresh_expires_in: int
    must_change_password: bool = False


async def _committed(conn: psycopg.AsyncConnection, work: Awaitable[T | CityError]) -> T:
    """Run ``work`` in a transaction; an error it returns is raised after the commit.

    Failed attempts, lockouts and their audit entries must stay even though the request fails;
    errors *raised* inside ``work`` roll everything back as usual.
    """
    async with conn.transaction():
        outcome = await work
    if isinstance(outcome, CityError):
        raise outcome
    return outcome


def _now() -> datetime:
    return datetime.now(UTC)


class Accounts:
    """Identity operations over a psycopg connection; keys and settings fixed at start-up."""

    def __init__(self, keys: KeyStore, settings: SecuritySettings) -> None:
        """Keep the key store and security settings."""
        self.keys, self.settings = keys, settings
        self.password_policy = PasswordPolicy(
            settings.password_min_length, settings.password_min_classes
        )
        # Verified for unknown user names, at the configured cost, so that the answer takes
        # as long as for a real account and does not reveal which names exist.
        self._dummy_hash = hash_password(secrets.token_hex(16), settings.password_iterations)

    # -- audit -------------------------------------------------------------------------

    async def _audit(
        self,
        conn: psycopg.AsyncConnection,
        action: str,
        actor: str,
        client: Client,
        actor_id: int | None = None,
        **detail: Any,
    ) -> None:
        event = audit.AuditEvent(
            action=action,
            actor=actor,
            actor_id=actor_id,
            actor_kind="user" if actor_id else "anonymous",
            ip=client.ip,
            user_agent=client.user_agent,
            target_type="user",
            target_id=str(actor_id) if actor_id else None,
            detail=detail or None,
        )
        await audit.record(conn, event)

    # -- passwords ---------------------------------------------------------------------

    async def plain_password(
        self, conn: psycopg.AsyncConnection, password: str, sealed_only: bool
    ) -> str:
        """Open an SM2 envelope (refusing replays), or accept plaintext when allowed."""
        if not is_sealed(password):
            if sealed_only:
                raise InvalidInput(
                    "The password must be SM2-encrypted with the server's public key.",
                    [FieldIssue("password", "expected sm2:<hex> (GET /api/v1/auth/sm2-key)")],
                )
            return password
        opened = open_password(self.keys.sm2.private_hex, password, self.settings.login_max_age_s)
        await conn.execute(
            "DELETE FROM city.login_nonces WHERE seen_at < now() - make_interval(secs => %s)",
            (self.settings.login_max_age_s * 2,),
        )
        cur = await conn.execute(
            "INSERT INTO city.login_nonces (nonce) VALUES (%s) ON CONFLICT DO NOTHING"
            " RETURNING nonce",
            (opened.nonce,),
        )
        if await cur.fetchone() is None:
            raise InvalidToken("This encrypted password was already used (replay refused).")
        return opened.password

    async def check_password(self, password: str, encoded: str) -> bool:
        """PBKDF2-HMAC-SM3 off the event loop."""
        return await asyncio.to_thread(verify_password, password, encoded)

    # -- log-in ------------------------------------------------------------------------

    async def _fail(
        self, conn: psycopg.AsyncConnection, user_id: int, name: str, client: Client, why: str
    ) -> CityError:
        """Count a failed attempt; the error to raise once the transaction has committed."""
        row = await (
            await conn.execute(
                "UPDATE city.users SET failed_logins = failed_logins + 1 WHERE id = %s"
                " RETURNING failed_logins",
                (user_id,),
            )
        ).fetchone()
        locked = row is not None and row[0] >= self.settings.lockout_threshold
        if locked:
            await conn.execute(
                "UPDATE city.users SET failed_logins = 0,"
                " locked_until = now() + make_interval(mins => %s) WHERE id = %s",
                (self.settings.lockout_minutes, user_id),
            )
            await self._audit(conn, "auth.locked", name, client, user_id, reason=why)
        await self._audit(conn, "auth.login_failed", name, client, user_id, reason=why)
        if locked:
            return AccountLocked(
                f"Too many failed log-ins; locked for {self.settings.lockout_minutes} minutes."
            )
        return Unauthorized(BAD_CREDENTIALS)

    async def _check_totp(
        self, conn: psycopg.AsyncConnection, user: dict[str, Any], code: str | None
    ) -> bool:
        """True when the TOTP code is valid and unused (the step is remembered)."""
        if not code or not user["totp_secret_enc"]:
            return False
        secret = self.keys.keyring.decrypt(user["totp_secret_enc"])
        totp = pyotp.TOTP(secret)
        now = _now()
        for offset in (0, -1, 1):
            when = now + timedelta(seconds=30 * offset)
            step = int(when.timestamp()) // 30
            if secrets.compare_digest(totp.at(when), code.strip()) and step > (
                user["totp_last_step"] or 0
            ):
                await conn.execute(
                    "UPDATE city.users SET totp_last_step = %s WHERE id = %s", (step, user["id"])
                )
                return True
        return False

    async def _user_for_login(
        self, conn: psycopg.AsyncConnection, username: str
    ) -> dict[str, Any] | None:
        cur = await conn.execute(
            "SELECT id, username, password_hash, status, locked_until, totp_enabled,"
            " totp_secret_enc, totp_last_step, must_change_password"
            " FROM city.users WHERE username = %s FOR UPDATE",
            (username.strip().lower(),),
        )
        row = await cur.fetchone()
        if row is None:
            return None
        names = [c.name for c in cur.description or []]
        return dict(zip(names, row, strict=True))

    async def login(
        self,
        conn: psycopg.AsyncConnection,
        username: str,
        password: str,
        totp: str | None,
        client: Client,
    ) -> TokenPair:
        """OAuth2 password grant: verify, lock out, second factor, issue tokens."""
        async with conn.transaction():
            plain = await self.plain_password(conn, password, self.settings.require_sm2_login)
        return await _committed(conn, self._login(conn, username, plain, totp, client))

    async def _login(
        self,
        conn: psycopg.AsyncConnection,
        username: str,
        plain: str,
        totp: str | None,
        client: Client,
    ) -> TokenPair | CityError:
        user = await self._user_for_login(conn, username)
        if user is None:
            await self.check_password(plain, self._dummy_hash)
            await self._audit(conn, "auth.login_failed", username[:40], client, reason="unknown")
            return Unauthorized(BAD_CREDENTIALS)
        uid, name = user["id"], user["username"]
        if user["locked_until"] and user["locked_until"] > _now():
            raise AccountLocked(f"Account locked until {user['locked_until']:%Y-%m-%d %H:%M} UTC.")
        if not await self.check_password(plain, user["password_hash"]):
            return await self._fail(conn, uid, name, client, "password")
        if user["status"] != "active":
            await self._audit(conn, "auth.login_failed", name, client, uid, reason="disabled")
            return Forbidden("This account is disabled (账号已禁用).")
        profile = await (await conn.execute(USER_SQL, (uid,))).fetchone()
        if user["totp_enabled"] or (profile and requires_mfa(profile)):
            if not user["totp_enabled"]:
                raise Forbidden(
                    "This position requires a TOTP second factor; enrol it first"
                    f" (cityops users totp {name})."
                )
            if not await self._check_totp(conn, user, totp):
                if not totp:
                    raise Unauthorized(
                        "A TOTP code is required (需要动态口令).",
                        [FieldIssue("totp", "six-digit code from the authenticator app")],
                    )
                return await self._fail(conn, uid, name, client, "totp")
        if needs_rehash(user["password_hash"], self.settings.password_iterations):
            new_hash = await asyncio.to_thread(
                hash_password, plain, self.settings.password_iterations
            )
            await conn.execute(
                "UPDATE city.users SET password_hash = %s WHERE id = %s", (new_hash, uid)
            )
        await conn.execute(
            "UPDATE city.users SET failed_logins = 0, locked_until = NULL,"
            " last_login_at = now() WHERE id = %s",
            (uid,),
        )
        pair = await self._issue(conn, uid, secrets.token_hex(16), client)
        await self._audit(conn, "auth.login", name, client, uid)
        return replace(pair, must_change_password=user["must_change_password"])

    async def _issue(
        self, conn: psycopg.AsyncConnection, user_id: int, family: str, client: Client
    ) -> TokenPair:
        s = self.settings
        token, digest = new_refresh_token()
        absolute = timedelta(hours=s.refresh_token_hours)
        idle = timedelta(minutes=s.refresh_idle_minutes)
        await conn.execute(
            "INSERT INTO city.refresh_tokens"
            " (token_hash, user_id, family, expires_at, idle_expires_at, ip)"
            " VALUES (%s, %s, %s,"
            "  COALESCE((SELECT min(expires_at) FROM city.refresh_tokens WHERE family = %s),"
            "           now() + %s), least(now() + %s, now() + %s), %s)",
            (
                digest,
                user_id,
                family,
                family,
                absolute,
                idle,
                absolute,
                audit.inet_or_none(client.ip),
            ),
        )
        ttl = s.access_token_minutes * 60
        access = issue_access(self.keys.token_key, user_id, family, ttl)
        return TokenPair(access, token, ttl, int(idle.total_seconds()))

    # -- refresh and log-out -----------------------------------------------------------

    async def refresh(self, conn: psycopg.AsyncConnection, token: str, client: Client) -> TokenPair:
        """Rotate: the old token is spent; presenting a spent one revokes its family."""
        return await _committed(conn, self._refresh(conn, token, client))

    async def _refresh(
        self, conn: psycopg.AsyncConnection, token: str, client: Client
    ) -> TokenPair | CityError:
        cur = await conn.execute(
            "SELECT r.id, r.user_id, r.family, r.used_at, r.revoked_at,"
            " r.expires_at < now() OR r.idle_expires_at < now(), u.username, u.status"
            " FROM city.refresh_tokens r JOIN city.users u ON u.id = r.user_id"
            " WHERE r.token_hash = %s FOR UPDATE OF r",
            (refresh_digest(token),),
        )
        row = await cur.fetchone()
        if row is None:
            raise InvalidToken("Unknown refresh token.")
        rid, uid, family, used, revoked, expired, name, status = row
        if used or revoked:
            await conn.execute(
                "UPDATE city.refresh_tokens SET revoked_at = now()"
                " WHERE family = %s AND revoked_at IS NULL",
                (family,),
            )
            await self._audit(conn, "auth.refresh_replay", name, client, uid, family=family)
            return InvalidToken("Refresh token already used: the session is revoked (重放).")
        if expired or status != "active":
            raise InvalidToken("The session has expired; log in again.")
        await conn.execute("UPDATE city.refresh_tokens SET used_at = now() WHERE id = %s", (rid,))
        return await self._issue(conn, uid, family, client)

    async def logout(self, conn: psycopg.AsyncConnection, token: str, client: Client) -> None:
        """Revoke the refresh token's whole family."""
        async with conn.transaction():
            row = await (
                await conn.execute(
                    "UPDATE city.refresh_tokens SET revoked_at = now() WHERE family ="
                    " (SELECT family FROM city.refresh_tokens WHERE token_hash = %s)"
                    " AND revoked_at IS NULL RETURNING user_id",
                    (refresh_digest(token),),
                )
            ).fetchone()
            if row:
                await self._audit(conn, "auth.logout", str(row[0]), client, row[0])

    async def session_alive(self, conn: psycopg.AsyncConnection, family: str) -> bool:
        """False once the family was revoked (log-out or replay)."""
        row = await (
            await conn.execute(
                "SELECT bool_and(revoked_at IS NULL) FROM city.refresh_tokens WHERE family = %s",
                (family,),
            )
        ).fetchone()
        return bool(row and row[0])

    # -- HTTP Basic (QGIS, GDAL) -------------------------------------------------------

    async def basic(
        self, conn: psycopg.AsyncConnection, username: str, password: str, client: Client
    ) -> Principal:
        """HTTP Basic: a user's password, or ``apikey:<key>``; lockout applies."""
        if username == "apikey":
            return await self.api_key(conn, password)
        return await _committed(conn, self._basic(conn, username, password, client))

    async def _basic(
        self, conn: psycopg.AsyncConnection, username: str, password: str, client: Client
    ) -> Principal | CityError:
        user = await self._user_for_login(conn, username)
        if user is None:
            await self.check_password(password, self._dummy_hash)
            raise InvalidToken(BAD_CREDENTIALS)
        if user["locked_until"] and user["locked_until"] > _now():
            raise AccountLocked("Account locked (账号已锁定).")
        if not await self.check_password(password, user["password_hash"]):
            error = await self._fail(conn, user["id"], user["username"], client, "basic")
            return InvalidToken(error.detail) if isinstance(error, Unauthorized) else error
        profile = await (await conn.execute(USER_SQL, (user["id"],))).fetchone()
        if profile is None:
            raise Forbidden("This account is disabled (账号已禁用).")
        if user["totp_enabled"] or requires_mfa(profile):
            raise Forbidden("Accounts with a second factor cannot use HTTP Basic; use an API key.")
        return principal_from_row(profile, "basic")

    # -- API keys ----------------------------------------------------------------------

    def _key_hash(self, secret: str) -> str:
        return hmac_sm3(self.keys.token_key, secret.encode()).hex()

    async def api_key(self, conn: psycopg.AsyncConnection, key: str) -> Principal:
        """Resolve ``cok_<prefix>_<secret>`` to its scoped principal."""
        parts = key.strip().split("_")
        if len(parts) != 3 or f"{parts[0]}_" != API_KEY_PREFIX:
            raise InvalidToken("Malformed API key.")
        row = await (
            await conn.execute(
                "SELECT id, secret_hash, name, scopes, department_code FROM city.api_keys"
                " WHERE prefix = %s AND revoked_at IS NULL"
                " AND (expires_at IS NULL OR expires_at > now())",
                (parts[1],),
            )
        ).fetchone()
        if row is None or not secrets.compare_digest(row[1], self._key_hash(parts[2])):
            raise InvalidToken("Unknown, revoked or expired API key.")
        await conn.execute(
            "UPDATE city.api_keys SET last_used_at = now() WHERE id = %s"
            " AND (last_used_at IS NULL OR last_used_at < now() - interval '1 minute')",
            (row[0],),
        )
        scope = DataScope(departments=(row[4],)) if row[4] else EVERYTHING
        return Principal(
            kind="api_key",
            id=row[0],
            name=f"apikey:{parts[1]}",
            display_name=row[2],
            permissions=effective_permissions(row[3]),
            department_code=row[4],
            scope=scope,
            via="api-key",
        )

    async def create_api_key(
        self,
        conn: psycopg.AsyncConnection,
        name: str,
        scopes: list[str],
        created_by: str,
        department_code: str | None = None,
        expires_at: datetime | None = None,
    ) -> tuple[int, str]:
        """Store a new key (only its HMAC-SM3); returns (id, the key — shown once)."""
        prefix, secret = secrets.token_hex(4), secrets.token_urlsafe(24).replace("_", "-")
        row = await (
            await conn.execute(
                "INSERT INTO city.api_keys"
                " (prefix, secret_hash, name, scopes, department_code, created_by, expires_at)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s) RETURNING id",
                (
                    prefix,
                    self._key_hash(secret),
                    name,
                    scopes,
                    department_code,
                    created_by,
                    expires_at,
                ),
            )
        ).fetchone()
        assert row is not None  # noqa: S101 - INSERT … RETURNING
        return row[0], f"{API_KEY_PREFIX}{prefix}_{secret}"

    # -- TOTP enrolment ----------------------------------------------------------------

    async def totp_setup(self, conn: psycopg.AsyncConnection, user_id: int) -> tuple[str, str]:
        """A new (not yet enabled) secret: (secret, otpauth URI)."""
        secret = pyotp.random_base32()
        row = await (
            await conn.execute(
                "UPDATE city.users SET totp_secret_enc = %s WHERE id = %s RETURNING username",
                (self.keys.keyring.encrypt(secret), user_id),
            )
        ).fetchone()
        assert row is not None  # noqa: S101 - the caller is this user
        uri = pyotp.TOTP(secret).provisioning_uri(name=row[0], issuer_name="cityops 大丰运管服")
        return secret, uri

    async def totp_enable(self, conn: psycopg.AsyncConnection, user_id: int, code: str) -> None:
        """Confirm enrolment with a first valid code."""
        cur = await conn.execute(
            "SELECT id, totp_secret_enc, totp_last_step FROM city.users WHERE id = %s FOR UPDATE",
            (user_id,),
        )
        row = await cur.fetchone()
        user = {"id": row[0], "totp_secret_enc": row[1], "totp_last_step": row[2]} if row else None
        if user is None or not await self._check_totp(conn, user, code):
            raise InvalidInput("Invalid TOTP code.", [FieldIssue("code", "wrong or reused")])
        await conn.execute("UPDATE city.users SET totp_enabled = true WHERE id = %s", (user_id,))
