"""Helpers for case tests: insert a case in any stage with SQL, build a client on a scratch DB.

Other case helpers' tests may import these. Everything writes to the given (scratch) database
only. A case inserted here has version 1 and exactly one history row (上报), as a case
reported through intake has, so ``version == count(history)`` holds from the start.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from fastapi.testclient import TestClient
from sqlalchemy.engine import make_url

from api.app import create_app
from layers.cases.definitions import stage_statuses
from layers.cases.workflow import WORKFLOW_SQL
from spatial.db import libpq_url, make_engine
from spatial.security.principal import Principal
from spatial.security.principals import load_user_principal
from spatial.settings import DatabaseSettings, Settings
from tests.auth_support import bearer

DEFAULT_CLASS = "3209040102"  # 事件 01 市容环境 / 02 暴露垃圾 (环境卫生管理处)
HANDLER_DEPARTMENT = "D004"  # the demo handler's department

CASE_SQL = """
WITH g AS (
    SELECT r.code AS rgrid, c.street_code, ST_PointOnSurface(r.geom) AS pt
    FROM city.responsibility_grids r JOIN city.communities c ON c.code = r.community_code
    WHERE r.code = coalesce(%(rgrid)s, (
        SELECT ig.grid_code FROM city.inspector_grids ig JOIN city.users u ON u.id = ig.user_id
        WHERE u.username = 'inspector' ORDER BY ig.grid_code LIMIT 1))
), d AS (
    SELECT CASE WHEN %(overdue)s THEN now() - interval '1 hour' END AS deadline
)
INSERT INTO city.cases (case_no, source, category, class_code, description, status, stage,
    workflow_code, department_code, responsibility_grid_code, street_code, grid_code,
    self_handled, reporter_user_id, force_dispatched, rework_count, extension_count,
    stage_deadline, handle_deadline, geom)
SELECT %(case_no)s, %(source)s, %(category)s, %(class_code)s, %(description)s, %(status)s,
    %(stage)s, %(workflow)s, %(department)s, g.rgrid, g.street_code,
    (SELECT u.code FROM city.unit_grids u WHERE ST_Intersects(u.geom, g.pt) LIMIT 1),
    %(self_handled)s, (SELECT id FROM city.users WHERE username = %(reporter)s),
    %(force_dispatched)s, %(rework_count)s, %(extension_count)s, d.deadline, d.deadline, g.pt
FROM g, d RETURNING id
"""

HISTORY_SQL = """
INSERT INTO city.case_history (case_id, action, action_name, from_stage, to_stage, version,
                               actor_user_id, actor_name, actor_position)
VALUES (%s, 'report', '上报', NULL, %s, 1,
        (SELECT id FROM city.users WHERE username = %s), '测试', 'inspector')
"""


def connect(url: str) -> psycopg.Connection:
    """A sync autocommit connection to ``url`` (SQLAlchemy or libpq form)."""
    return psycopg.connect(libpq_url(url), autocommit=True)


def user_id(url: str, username: str) -> int:
    """The id of a demo user."""
    with connect(url) as conn:
        row = conn.execute("SELECT id FROM city.users WHERE username = %s", (username,)).fetchone()
    assert row is not None, username
    return int(row[0])


def inspector_grid(url: str, username: str = "inspector") -> str:
    """A responsibility grid of the demo inspector (its 责任网格)."""
    with connect(url) as conn:
        row = conn.execute(
            "SELECT g.grid_code FROM city.inspector_grids g JOIN city.users u ON u.id = g.user_id"
            " WHERE u.username = %s ORDER BY g.grid_code LIMIT 1",
            (username,),
        ).fetchone()
    assert row is not None, "the demo inspector has no responsibility grid"
    return str(row[0])


def insert_case(
    url: str,
    stage: str = "reported",
    *,
    category: str = "事件",
    class_code: str = DEFAULT_CLASS,
    source: str = "inspector",
    department: str | None = None,
    grid: str | None = None,
    self_handled: bool = False,
    reporter: str | None = "inspector",
    force_dispatched: bool = False,
    rework_count: int = 0,
    extension_count: int = 0,
    overdue: bool = False,
    workflow: str | None = None,
) -> int:
    """Insert a case directly in ``stage`` (one 上报 history row, version 1); returns its id.

    ``department`` defaults to the handler's department for stages after dispatch; the case
    lies in ``grid`` (default: the demo inspector's first responsibility grid). ``overdue``
    puts its stage and handling deadlines an hour in the past.
    """
    if department is None and stage in ("dispatched", "handled", "checked"):
        department = HANDLER_DEPARTMENT
    with connect(url) as conn:
        if workflow is None:
            row = conn.execute(WORKFLOW_SQL, {"category": category, "class_code": class_code})
            workflow = str(row.fetchone()[0])  # type: ignore[index]
        definition = conn.execute(
            "SELECT definition FROM city.workflow_definitions WHERE code = %s", (workflow,)
        ).fetchone()
        statuses = stage_statuses(definition[0] if definition and definition[0] else None)
        args: dict[str, Any] = {
            "rgrid": grid,
            "case_no": f"T{uuid.uuid4().hex[:16]}",
            "source": "self_handled" if self_handled else source,
            "category": category,
            "class_code": class_code,
            "description": "测试案卷：路边暴露垃圾",
            "status": statuses[stage],
            "stage": stage,
            "workflow": workflow,
            "department": department,
            "self_handled": self_handled,
            "reporter": reporter,
            "force_dispatched": force_dispatched,
            "rework_count": rework_count,
            "extension_count": extension_count,
            "overdue": overdue,
        }
        with conn.transaction():
            case_id = conn.execute(CASE_SQL, args).fetchone()[0]  # type: ignore[index]
            conn.execute(HISTORY_SQL, (case_id, stage, reporter))
    return int(case_id)


def add_media(url: str, data: bytes | None = None) -> str:
    """Register a (fake) photo in ``media_blobs``; returns its SHA-256."""
    data = data or uuid.uuid4().bytes
    sha = hashlib.sha256(data).hexdigest()
    with connect(url) as conn:
        conn.execute(
            "INSERT INTO city.media_blobs (sha256, mime, size_bytes) VALUES (%s, 'image/jpeg', %s)"
            " ON CONFLICT DO NOTHING",
            (sha, len(data)),
        )
    return sha


def clone_database(server: str, template: str) -> str:
    """A new database cloned from ``template`` on ``server`` (for module-scoped fixtures)."""
    name = f"cityops_cases_{uuid.uuid4().hex[:8]}"
    admin = make_url(server).set(database="postgres").render_as_string(hide_password=False)
    engine = make_engine(admin, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    engine.dispose()
    return make_url(server).set(database=name).render_as_string(hide_password=False)


def case_row(url: str, case_id: int) -> dict[str, Any]:
    """The case's row as a dict (geometry left out)."""
    with connect(url) as conn:
        cur = conn.execute("SELECT * FROM city.cases WHERE id = %s", (case_id,))
        names = [c.name for c in cur.description or []]
        row = cur.fetchone()
    assert row is not None, case_id
    return {n: v for n, v in zip(names, row, strict=True) if n != "geom"}


def history(url: str, case_id: int) -> list[dict[str, Any]]:
    """The case's history rows, oldest first."""
    with connect(url) as conn:
        cur = conn.execute(
            "SELECT * FROM city.case_history WHERE case_id = %s ORDER BY id", (case_id,)
        )
        names = [c.name for c in cur.description or []]
        return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]


@contextmanager
def case_client(url: str) -> Iterator[TestClient]:
    """A TestClient over an app on ``url`` (a scratch database: writes allowed)."""
    settings = Settings(db=DatabaseSettings(url=url))
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        yield client


def auth(client: TestClient, username: str) -> dict[str, str]:
    """Bearer headers of a demo user (password grant, cached per database)."""
    return bearer(client, username)


def act(
    client: TestClient,
    username: str,
    case_id: int,
    action: str,
    body: dict[str, Any] | None = None,
) -> Any:
    """POST /api/v1/cases/{id}/actions/{action} as a demo user; returns the response."""
    return client.post(
        f"/api/v1/cases/{case_id}/actions/{action}",
        json=body or {},
        headers=auth(client, username),
    )


async def principal_of(conn: psycopg.AsyncConnection, username: str) -> Principal:
    """The principal of a demo user, as the authentication middleware builds it."""
    cur = await conn.execute("SELECT id FROM city.users WHERE username = %s", (username,))
    row = await cur.fetchone()
    assert row is not None, username
    found = await load_user_principal(conn, int(row[0]), "test")
    assert found is not None, username
    return found
