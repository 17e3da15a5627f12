"""The sample year of cases (data_samples/case_history.py) in the test template (size small)."""

from __future__ import annotations

import psycopg
import pytest

from data_samples.case_history import END, PLANS, SEED, generate
from data_samples.case_history_timeline import ACTION_NAMES, STATUS
from layers.cases.definitions import TRANSITIONS
from spatial.db import libpq_url


@pytest.fixture(scope="module")
def conn(db_url: str) -> psycopg.Connection:
    with psycopg.connect(libpq_url(db_url)) as c:
        yield c


def _one(conn: psycopg.Connection, query: str) -> object:
    return conn.execute(query).fetchone()[0]


def test_about_1500_cases_in_the_small_sample(conn: psycopg.Connection) -> None:
    assert _one(conn, "SELECT count(*) FROM city.cases WHERE case_no ~ '^[0-9]{14}$'") == 1500


def test_generation_is_deterministic(conn: psycopg.Connection) -> None:
    _, first = generate(conn, PLANS["small"], SEED)
    _, second = generate(conn, PLANS["small"], SEED)
    key = [(c.case_no, c.stage, [(s.action, s.at) for s in c.steps]) for c in first]
    assert key == [(c.case_no, c.stage, [(s.action, s.at) for s in c.steps]) for c in second]
    stored = conn.execute("SELECT case_no FROM city.cases ORDER BY id").fetchall()
    assert [r[0] for r in stored][: len(first)] == [c.case_no for c in first]


def test_timestamps_are_ordered_and_before_the_snapshot(conn: psycopg.Connection) -> None:
    bad = _one(
        conn,
        "SELECT count(*) FROM city.cases WHERE NOT ("
        " reported_at <= coalesce(accepted_at, reported_at)"
        " AND coalesce(accepted_at, reported_at) <= coalesce(registered_at, 'infinity')"
        " AND coalesce(registered_at, reported_at) <= coalesce(dispatched_at, 'infinity')"
        " AND coalesce(dispatched_at, reported_at) <= coalesce(handled_at, 'infinity')"
        " AND coalesce(handled_at, reported_at) <= coalesce(closed_at, 'infinity'))",
    )
    assert bad == 0
    late = conn.execute(
        "SELECT count(*) FROM city.case_history h JOIN city.cases c ON c.id = h.case_id"
        " WHERE h.created_at < c.reported_at OR h.created_at > %s",
        (END,),
    ).fetchone()[0]
    assert late == 0


def test_version_is_the_number_of_history_rows(conn: psycopg.Connection) -> None:
    bad = _one(
        conn,
        "SELECT count(*) FROM city.cases c WHERE c.version <>"
        " (SELECT count(*) FROM city.case_history h WHERE h.case_id = c.id)",
    )
    assert bad == 0
    last = _one(
        conn,
        "SELECT count(*) FROM city.cases c WHERE c.stage <> (SELECT h.to_stage FROM"
        " city.case_history h WHERE h.case_id = c.id ORDER BY h.version DESC LIMIT 1)",
    )
    assert last == 0


def test_every_stage_and_analysis_state_is_present(conn: psycopg.Connection) -> None:
    rows = dict(conn.execute("SELECT stage, status FROM city.cases GROUP BY 1, 2").fetchall())
    assert set(rows) == set(STATUS)
    assert all(STATUS[stage] == status for stage, status in rows.items())
    flags = conn.execute(
        "SELECT bool_or(on_hold), bool_or(supervised), bool_or(self_handled),"
        " count(DISTINCT source) FROM city.cases"
    ).fetchone()
    assert flags[:3] == (True, True, True) and flags[3] >= 5
    kinds = {
        r[0]
        for r in conn.execute(
            "SELECT kind FROM city.case_requests WHERE state = 'pending'"
        ).fetchall()
    }
    assert kinds == {"extension", "return", "void"}


def test_places_are_consistent(conn: psycopg.Connection) -> None:
    bad = _one(
        conn,
        "SELECT count(*) FROM city.cases c JOIN city.unit_grids u ON u.code = c.grid_code"
        " WHERE u.street_code <> c.street_code"
        " OR u.responsibility_grid_code IS DISTINCT FROM c.responsibility_grid_code"
        " OR NOT ST_Intersects(u.geom, c.geom)",
    )
    assert bad == 0
    unmatched = _one(
        conn,
        "SELECT count(*) FROM city.cases c WHERE c.department_code IS NULL"
        " AND c.stage IN ('dispatched', 'handled', 'checked')",
    )
    assert unmatched == 0


def test_actions_are_those_of_the_workflow(conn: psycopg.Connection) -> None:
    known = {t["action"] for t in TRANSITIONS} | {"report"}
    used = {r[0] for r in conn.execute("SELECT DISTINCT action FROM city.case_history")}
    assert used <= known and set(ACTION_NAMES) <= known
