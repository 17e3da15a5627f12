"""Random operation sequences never reach an invalid state or lose history (hypothesis).

Each example starts a fresh case in a random stage and applies random actions by random
demo users (and the system robot) with complete or empty payloads and current, stale or no
versions, through ``perform`` directly. After every step the invariants hold: the stage is
one of the definition's, the status matches it, ``version`` equals the number of history
rows, history versions are 1..n in id order and chain from stage to stage, terminal stages
are left only by 恢复 (restore), and a refused step changes nothing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from layers.cases.actions import SYSTEM_ROBOT, available_actions, perform
from layers.cases.definitions import default_definition
from layers.cases.workflow import Definition, validate
from spatial.db import drop_database, libpq_url
from spatial.errors import CityError, NotFound
from spatial.security.principal import Principal
from tests.case_support import add_media, clone_database, connect, insert_case, principal_of

USERS = ("acceptor", "dispatcher", "shiftlead", "handler", "inspector", "leader")
DEFINITION: Definition = validate("gbt30428_8", "default", default_definition())
ACTIONS = sorted(DEFINITION.actions)
STARTS = ("reported", "accepted", "registered", "dispatched", "handled", "checked")
REFUSALS = {403, 404, 409, 422}


@pytest.fixture(scope="module")
def world(pg_server: str, sample_template: str) -> Iterator[dict[str, Any]]:
    """A module database, a photo and the demo principals."""
    url = clone_database(pg_server, sample_template)
    with connect(url) as conn:
        conn.execute("DELETE FROM city.dispatch_rules WHERE automatic")

    async def principals() -> dict[str, Principal]:
        async with await psycopg.AsyncConnection.connect(libpq_url(url)) as conn:
            found = {u: await principal_of(conn, u) for u in USERS}
        return found | {"robot": SYSTEM_ROBOT}

    yield {"url": url, "photo": add_media(url), "who": asyncio.run(principals())}
    drop_database(url)


def _payload(complete: bool, result: bool, photo: str, target: int) -> dict[str, Any]:
    if not complete:
        return {}
    return {
        "opinion": "意见",
        "opinion_type": "征求",
        "reason": "原因",
        "department_code": "D004",
        "media": [photo],
        "result": result,
        "minutes": 60,
        "days": 2,
        "target_case_id": target,
        "changes": {"level": "紧急"},
    }


async def _state(conn: psycopg.AsyncConnection, case_id: int) -> tuple[dict, list[dict]]:
    cur = await conn.execute(
        "SELECT stage, status, version, merged_into FROM city.cases WHERE id = %s", (case_id,)
    )
    stage, status, version, merged_into = await cur.fetchone()  # type: ignore[misc]
    cur = await conn.execute(
        "SELECT id, action, from_stage, to_stage, version FROM city.case_history"
        " WHERE case_id = %s ORDER BY id",
        (case_id,),
    )
    rows = [
        dict(zip(("id", "action", "from_stage", "to_stage", "version"), r, strict=True))
        for r in await cur.fetchall()
    ]
    case = {"stage": stage, "status": status, "version": version, "merged_into": merged_into}
    return case, rows


async def _check(conn: psycopg.AsyncConnection, case_id: int) -> int:
    """Assert the invariants of one case; returns its version."""
    case, rows = await _state(conn, case_id)
    stage = DEFINITION.stage(case["stage"])
    assert stage is not None, case
    assert case["status"] == stage.status
    assert case["version"] == len(rows)
    assert [r["version"] for r in rows] == list(range(1, len(rows) + 1))
    assert rows[-1]["to_stage"] == case["stage"]
    assert (case["stage"] == "merged") == (case["merged_into"] is not None)
    for before, after in zip(rows, rows[1:], strict=False):
        assert after["id"] > before["id"]
        assert after["from_stage"] == before["to_stage"], rows
        left = DEFINITION.stage(after["from_stage"])
        if left is not None and left.terminal and after["to_stage"] != after["from_stage"]:
            assert after["action"] == "restore", rows
    return int(case["version"])


OPERATION = st.tuples(
    st.sampled_from((*USERS, "robot")),
    st.one_of(st.sampled_from(ACTIONS), st.integers(0, 50), st.integers(51, 99)),  # 1/3 random
    st.booleans(),  # complete payload
    st.booleans(),  # result
    st.sampled_from(("current", "stale", "none")),
)
ACTORS = (*USERS, "robot")


async def _guided(
    conn: psycopg.AsyncConnection, who: dict[str, Principal], case_id: int, pick: int
) -> tuple[str, str]:
    """Some user's available action (users tried in turn from ``pick``), so cases move on."""
    for i in range(len(ACTORS)):
        user = ACTORS[(pick + i) % len(ACTORS)]
        try:
            found = await available_actions(conn, who[user], case_id)
        except NotFound:  # outside the user's data scope
            continue
        moving = [a for a in found if any(to is not None for to in a.to_stages)]
        if moving and pick % 3:  # mostly move the case on
            return user, moving[pick % len(moving)].action
        if found:
            return user, found[pick % len(found)].action
    return ACTORS[pick % len(ACTORS)], ACTIONS[pick % len(ACTIONS)]


@settings(
    max_examples=40,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    start=st.sampled_from(STARTS),
    overdue=st.booleans(),
    self_handled=st.booleans(),
    operations=st.lists(OPERATION, min_size=4, max_size=14),
)
def test_random_sequences_keep_the_invariants(
    world: dict[str, Any],
    start: str,
    overdue: bool,
    self_handled: bool,
    operations: list[tuple[str, str | int, bool, bool, str]],
) -> None:
    url = world["url"]
    case_id = insert_case(url, start, overdue=overdue, self_handled=self_handled)
    target = insert_case(url, "registered")

    async def run() -> None:
        async with await psycopg.AsyncConnection.connect(libpq_url(url), autocommit=True) as conn:
            version = await _check(conn, case_id)
            for user, choice, complete, result, which in operations:
                action = choice if isinstance(choice, str) else ""
                if isinstance(choice, int):
                    user, action = await _guided(conn, world["who"], case_id, choice)
                    complete = True
                payload = _payload(complete, result, world["photo"], target)
                expected = {"current": version, "stale": version - 1, "none": None}[which]
                try:
                    state = await perform(
                        conn,
                        world["who"][user],
                        case_id,
                        action,
                        payload,
                        expected_version=expected if expected != 0 else None,
                    )
                except CityError as exc:
                    assert exc.status in REFUSALS, exc
                    event(f"refused {exc.status}")
                    assert await _check(conn, case_id) == version, "a refused step changed it"
                    continue
                assert which != "stale" or version == 1
                event(f"performed {action}")
                new_version = await _check(conn, case_id)
                assert new_version == state.version > version
                version = new_version
            await _check(conn, target)

    asyncio.run(run())
