"""Build a ``Principal`` from the database: a user's positions, department and grids."""

from __future__ import annotations

from typing import Any, Final

import psycopg

from spatial.security.permissions import effective_permissions
from spatial.security.principal import EVERYTHING, DataScope, Principal

USER_SQL: Final = """
SELECT u.id, u.username, u.display_name, u.department_code, d.street_code, d.community_code,
       COALESCE((SELECT json_agg(json_build_object(
                    'code', p.code, 'permissions', p.permissions, 'scope', p.data_scope,
                    'mfa', p.requires_mfa) ORDER BY p.code)
                 FROM city.user_positions up JOIN city.positions p ON p.code = up.position_code
                 WHERE up.user_id = u.id), '[]'::json),
       COALESCE((SELECT array_agg(g.grid_code ORDER BY g.grid_code)
                 FROM city.inspector_grids g WHERE g.user_id = u.id), '{}')
FROM city.users u LEFT JOIN city.departments d ON d.code = u.department_code
WHERE u.id = %s AND u.status = 'active'
"""


def _scope(kinds: set[str], user_id: int, row: tuple[Any, ...], grids: list[str]) -> DataScope:
    """Union of the positions' scopes: all, unit (area or department), grid, self."""
    if "all" in kinds:
        return EVERYTHING
    department, street, community = row[3], row[4], row[5]
    areas: tuple[str, ...] = ()
    departments: tuple[str, ...] = ()
    if "unit" in kinds:
        area = community or street
        if area:
            areas = (area,)
        elif department:
            departments = (department,)
    return DataScope(
        areas=areas,
        departments=departments,
        grids=tuple(grids) if "grid" in kinds else (),
        owner=user_id if "self" in kinds else None,
    )


def principal_from_row(row: tuple[Any, ...], via: str) -> Principal:
    """The principal of one ``USER_SQL`` row."""
    positions: list[dict[str, Any]] = row[6] or []
    grids: list[str] = list(row[7] or [])
    perms = effective_permissions(p for pos in positions for p in pos["permissions"])
    kinds = {pos["scope"] for pos in positions}
    return Principal(
        kind="user",
        id=row[0],
        name=row[1],
        display_name=row[2],
        positions=tuple(pos["code"] for pos in positions),
        permissions=perms,
        department_code=row[3],
        scope=_scope(kinds, row[0], row, grids),
        via=via,
    )


async def load_user_principal(
    conn: psycopg.AsyncConnection, user_id: int, via: str
) -> Principal | None:
    """The active user's principal, or None (unknown or disabled)."""
    row = await (await conn.execute(USER_SQL, (user_id,))).fetchone()
    return principal_from_row(row, via) if row else None


def requires_mfa(row: tuple[Any, ...]) -> bool:
    """True when one of the user's positions demands a second factor."""
    return any(pos.get("mfa") for pos in row[6] or [])
