"""The handling process (办理过程): one append-only ``city.case_history`` row per step.

A trigger refuses UPDATE and DELETE on the table. ``version`` is the case's version after
the step, so a case's history has exactly ``cases.version`` rows: intake writes the first
(``report`` 上报, version 1) and every transition one more, in the same transaction.
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from spatial.security.principal import Principal

INSERT_SQL = """
INSERT INTO city.case_history (case_id, action, action_name, from_stage, to_stage, version,
    actor_user_id, actor_name, actor_position, department_code, opinion, opinion_type, reason,
    details)
VALUES (%(case_id)s, %(action)s, %(action_name)s, %(from_stage)s, %(to_stage)s, %(version)s,
    %(actor_user_id)s, %(actor_name)s, %(actor_position)s, %(department_code)s, %(opinion)s,
    %(opinion_type)s, %(reason)s, %(details)s)
RETURNING id
"""


def actor_user_id(principal: Principal) -> int | None:
    """The user id of a human principal (None for API keys and the system robot)."""
    return principal.id if principal.kind == "user" else None


async def record(
    conn: psycopg.AsyncConnection,
    principal: Principal,
    *,
    case_id: int,
    action: str,
    action_name: str,
    from_stage: str | None,
    to_stage: str,
    version: int,
    opinion: str | None = None,
    opinion_type: str | None = None,
    reason: str | None = None,
    details: dict[str, Any] | None = None,
) -> int:
    """Append one history row; returns its id. Call inside the step's transaction."""
    cur = await conn.execute(
        INSERT_SQL,
        {
            "case_id": case_id,
            "action": action,
            "action_name": action_name,
            "from_stage": from_stage,
            "to_stage": to_stage,
            "version": version,
            "actor_user_id": actor_user_id(principal),
            "actor_name": (principal.display_name or principal.name)[:60],
            "actor_position": principal.positions[0] if principal.positions else None,
            "department_code": principal.department_code,
            "opinion": opinion,
            "opinion_type": opinion_type,
            "reason": reason,
            "details": Jsonb(details) if details else None,
        },
    )
    row = await cur.fetchone()
    assert row is not None  # noqa: S101 - INSERT … RETURNING
    return int(row[0])


HISTORY_COLUMNS = (
    "id, action, action_name, from_stage, to_stage, version, actor_user_id, actor_name,"
    " actor_position, department_code, opinion, opinion_type, reason, details, created_at"
)


async def list_history(conn: psycopg.AsyncConnection, case_id: int) -> list[dict[str, Any]]:
    """A case's history, oldest first."""
    cur = await conn.execute(
        f"SELECT {HISTORY_COLUMNS} FROM city.case_history WHERE case_id = %s ORDER BY id",
        (case_id,),
    )
    names = [c.name for c in cur.description or []]
    return [dict(zip(names, r, strict=True)) for r in await cur.fetchall()]
