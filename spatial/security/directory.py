"""The user directory (人员管理): create, change and read users; personal fields under SM4.

Writes run in the caller's transaction and are audited with before/after images in which
personal fields appear masked only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

import psycopg

from spatial.errors import Conflict, FieldIssue, NotFound, UnprocessableInput
from spatial.security import audit
from spatial.security.passwords import PasswordPolicy, hash_password
from spatial.security.permissions import duty_conflicts
from spatial.security.principal import Principal
from spatial.security.sm4 import Keyring, mask_id_number, mask_phone

USER_VIEW: Final = """
SELECT u.id, u.username, u.display_name, u.staff_code, u.department_code, u.status,
       u.phone_mask, u.id_number_mask, COALESCE(u.locked_until > now(), false) AS locked,
       u.totp_enabled,
       u.must_change_password, u.last_login_at,
       COALESCE((SELECT array_agg(position_code ORDER BY position_code)
                 FROM city.user_positions WHERE user_id = u.id), '{}') AS positions,
       COALESCE((SELECT array_agg(grid_code ORDER BY grid_code)
                 FROM city.inspector_grids WHERE user_id = u.id), '{}') AS grids
FROM city.users u
"""
PERSONAL: Final = {"phone": mask_phone, "id_number": mask_id_number}


@dataclass
class UserFields:
    """Fields of a create or change request (None: leave as is)."""

    display_name: str | None = None
    staff_code: str | None = None
    department_code: str | None = None
    status: str | None = None
    positions: list[str] | None = None
    grids: list[str] | None = None
    phone: str | None = None
    id_number: str | None = None


async def _row(conn: psycopg.AsyncConnection, sql: str, args: tuple[Any, ...]) -> dict[str, Any]:
    cur = await conn.execute(sql, args)
    row = await cur.fetchone()
    if row is None:
        raise NotFound("No such user.")
    return dict(zip([c.name for c in cur.description or []], row, strict=True))


async def get_user(conn: psycopg.AsyncConnection, user_id: int) -> dict[str, Any]:
    """One user (masked personal fields)."""
    return await _row(conn, USER_VIEW + " WHERE u.id = %s", (user_id,))


async def list_users(
    conn: psycopg.AsyncConnection, department: str | None, position: str | None, limit: int
) -> list[dict[str, Any]]:
    """Users, optionally of one department or position."""
    cur = await conn.execute(
        USER_VIEW + " WHERE (%(d)s::text IS NULL OR u.department_code = %(d)s)"
        " AND (%(p)s::text IS NULL OR EXISTS (SELECT 1 FROM city.user_positions x"
        "      WHERE x.user_id = u.id AND x.position_code = %(p)s))"
        " ORDER BY u.username LIMIT %(n)s",
        {"d": department, "p": position, "n": limit},
    )
    names = [c.name for c in cur.description or []]
    return [dict(zip(names, r, strict=True)) for r in await cur.fetchall()]


async def reveal(conn: psycopg.AsyncConnection, keyring: Keyring, user_id: int) -> dict[str, Any]:
    """Decrypted personal fields (the caller checks ``personal:read`` and audits)."""
    row = await _row(
        conn, "SELECT phone_enc, id_number_enc FROM city.users WHERE id = %s", (user_id,)
    )
    return {
        "phone": keyring.decrypt(row["phone_enc"]) if row["phone_enc"] else None,
        "id_number": keyring.decrypt(row["id_number_enc"]) if row["id_number_enc"] else None,
    }


async def _check_positions(conn: psycopg.AsyncConnection, positions: list[str]) -> None:
    """Known positions whose combined permissions keep separation of duties."""
    rows = await (
        await conn.execute(
            "SELECT code, permissions FROM city.positions WHERE code = ANY(%s)", (positions,)
        )
    ).fetchall()
    unknown = sorted(set(positions) - {r[0] for r in rows})
    if unknown:
        raise UnprocessableInput(
            f"Unknown position(s): {', '.join(unknown)}", [FieldIssue("positions", "unknown")]
        )
    problems = duty_conflicts(p for r in rows for p in r[1])
    if problems:
        raise Conflict(
            "Separation of duties (三员分立) forbids holding these positions together",
            [FieldIssue("positions", p) for p in problems],
        )


async def _set_links(conn: psycopg.AsyncConnection, user_id: int, fields: UserFields) -> None:
    if fields.positions is not None:
        await _check_positions(conn, fields.positions)
        await conn.execute("DELETE FROM city.user_positions WHERE user_id = %s", (user_id,))
        await conn.execute(
            "INSERT INTO city.user_positions (user_id, position_code)"
            " SELECT %s, unnest(%s::text[])",
            (user_id, fields.positions),
        )
    if fields.grids is not None:
        await conn.execute("DELETE FROM city.inspector_grids WHERE user_id = %s", (user_id,))
        await conn.execute(
            "INSERT INTO city.inspector_grids (user_id, grid_code) SELECT %s, unnest(%s::text[])",
            (user_id, fields.grids),
        )


def _personal_columns(keyring: Keyring, fields: UserFields) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, mask in PERSONAL.items():
        value = getattr(fields, name)
        if value is not None:
            out[f"{name}_enc"] = keyring.encrypt(value)
            out[f"{name}_mask"] = mask(value)
            out[f"{name}_bidx"] = keyring.blind_index(value)
    return out


def _plain_columns(fields: UserFields) -> dict[str, Any]:
    names = ("display_name", "staff_code", "department_code", "status")
    return {n: getattr(fields, n) for n in names if getattr(fields, n) is not None}


async def create_user(
    conn: psycopg.AsyncConnection,
    keyring: Keyring,
    actor: Principal,
    username: str,
    password: str,
    policy: PasswordPolicy,
    iterations: int,
    fields: UserFields,
    must_change_password: bool = True,
) -> dict[str, Any]:
    """Insert a user with positions and grids (audited)."""
    policy.require(password, username)
    columns = {
        "username": username.lower(),
        "password_hash": hash_password(password, iterations),
        "must_change_password": must_change_password,
        **_plain_columns(fields),
        **_personal_columns(keyring, fields),
    }
    names = ", ".join(columns)
    marks = ", ".join(["%s"] * len(columns))
    cur = await conn.execute(
        f"INSERT INTO city.users ({names}) VALUES ({marks})"  # noqa: S608 - fixed column names
        " ON CONFLICT (username) DO NOTHING RETURNING id",
        tuple(columns.values()),
    )
    row = await cur.fetchone()
    if row is None:
        raise Conflict(f"User {username!r} exists.", [FieldIssue("username", "taken")])
    await _set_links(conn, row[0], fields)
    after = await get_user(conn, row[0])
    await audit.record(conn, _event(actor, "user.create", row[0], None, after))
    return after


async def change_user(
    conn: psycopg.AsyncConnection,
    keyring: Keyring,
    actor: Principal,
    user_id: int,
    fields: UserFields,
) -> dict[str, Any]:
    """Apply the given fields (audited with before/after)."""
    before = await get_user(conn, user_id)
    columns = {**_plain_columns(fields), **_personal_columns(keyring, fields)}
    if columns:
        sets = ", ".join(f"{n} = %s" for n in columns)
        await conn.execute(
            f"UPDATE city.users SET {sets}, updated_at = now() WHERE id = %s",  # noqa: S608
            (*columns.values(), user_id),
        )
    await _set_links(conn, user_id, fields)
    after = await get_user(conn, user_id)
    await audit.record(conn, _event(actor, "user.update", user_id, before, after))
    return after


async def set_password(
    conn: psycopg.AsyncConnection, actor: Principal, user_id: int, encoded: str
) -> None:
    """Reset a password (the user must change it at next log-in); unlocks the account."""
    before = await get_user(conn, user_id)
    await conn.execute(
        "UPDATE city.users SET password_hash = %s, must_change_password = true,"
        " failed_logins = 0, locked_until = NULL, password_changed_at = now() WHERE id = %s",
        (encoded, user_id),
    )
    await audit.record(conn, _event(actor, "user.password_reset", user_id, before, None))


async def unlock(conn: psycopg.AsyncConnection, actor: Principal, user_id: int) -> None:
    """Clear a lockout."""
    before = await get_user(conn, user_id)
    await conn.execute(
        "UPDATE city.users SET failed_logins = 0, locked_until = NULL WHERE id = %s", (user_id,)
    )
    await audit.record(conn, _event(actor, "user.unlock", user_id, before, None))


def _event(
    actor: Principal,
    action: str,
    user_id: int,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
) -> audit.AuditEvent:
    return audit.event_for(
        actor, action, target_type="user", target_id=str(user_id), before=before, after=after
    )
