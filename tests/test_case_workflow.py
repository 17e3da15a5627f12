"""Workflow definitions as data: validation, storage, case-type links, behaviour without code.

A module database is shared; each test links its own case types, so they do not interfere.
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from layers.cases.definitions import ANALYSIS_STATES, DEFAULT_CODE, default_definition
from layers.cases.workflow import validate, workflow_for
from spatial.db import drop_database, libpq_url
from spatial.errors import UnprocessableInput
from tests.case_support import (
    act,
    add_media,
    auth,
    case_client,
    case_row,
    clone_database,
    connect,
    insert_case,
)

ISSUE_ACTIONS = (
    "accept reject restore verify register not-register correct dispatch feedback return "
    "request-return request-extension approve-extension request-void supervise "
    "reply-supervision check close rework request-supplement"
).split()


@pytest.fixture(scope="module")
def db(pg_server: str, sample_template: str) -> Iterator[str]:
    """The module's writable database (no automatic dispatch rules)."""
    url = clone_database(pg_server, sample_template)
    with connect(url) as conn:
        conn.execute("DELETE FROM city.dispatch_rules WHERE automatic")
    yield url
    drop_database(url)


@pytest.fixture(scope="module")
def cc(db: str) -> Iterator[TestClient]:
    """A client over the module database."""
    with case_client(db) as client:
        yield client


def test_default_definition_is_complete_and_seeded(db_url: str) -> None:
    definition = validate(DEFAULT_CODE, "x", default_definition())
    assert set(ISSUE_ACTIONS) <= set(definition.actions)
    assert set(ANALYSIS_STATES) <= {s.status for s in definition.stages.values()}
    with connect(db_url) as conn:
        row = conn.execute(
            "SELECT definition, is_default FROM city.workflow_definitions WHERE code = %s",
            (DEFAULT_CODE,),
        ).fetchone()
    assert row is not None and row[1] is True
    assert row[0] == default_definition()


def _mutated(path: list[Any], value: Any) -> dict[str, Any]:
    doc = default_definition()
    target: Any = doc
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return doc


@pytest.mark.parametrize(
    ("path", "value", "field"),
    [
        (["transitions", 0, "to"], "nowhere", "definition.transitions[0].to"),
        (["transitions", 1, "from"], ["limbo"], "definition.transitions[1].from"),
        (["transitions", 0, "permission"], "cases:fly", "definition.transitions[0].permission"),
        (
            ["transitions", 0, "conditions"],
            ["moon_is_full"],
            "definition.transitions[0].conditions",
        ),
        (["transitions", 0, "effects"], ["explode"], "definition.transitions[0].effects"),
        (["transitions", 0, "requires"], ["shoe_size"], "definition.transitions[0].requires"),
        (["transitions", 0, "opinion_type"], "随便", "definition.transitions[0].opinion_type"),
        (["stages", 0, "participants"], ["astronaut"], "definition.stages[0].participants"),
        (["stages", 1, "code"], "reported", "definition.stages[1].code"),
        (["rules", "extension_ratio_cap"], "lots", "definition.rules.extension_ratio_cap"),
        (["rules", "return_forbidden_when"], ["rainy"], "definition.rules.return_forbidden_when"),
        (["rules", "colour"], "red", "definition.rules.colour"),
        (["initial_stage"], "nowhere", "definition.initial_stage"),
    ],
)
def test_validation_names_the_field(path: list[Any], value: Any, field: str) -> None:
    positions = {"inspector", "acceptor", "dispatcher", "shift_leader", "handler", "enforcer"}
    positions |= {"leader"}
    with pytest.raises(UnprocessableInput) as caught:
        validate("x", "x", _mutated(path, value), positions=positions)
    assert field in {e.field for e in caught.value.errors}


def _put(cc: TestClient, code: str, definition: dict[str, Any], user: str = "admin", **kw: Any):
    body = {"name": kw.pop("name", f"测试流程 {code}"), "definition": definition, **kw}
    return cc.put(f"/api/v1/workflows/{code}", json=body, headers=auth(cc, user))


def _link(cc: TestClient, category: str, major: str | None, minor: str | None, code: str | None):
    body = {"category": category, "major_code": major, "minor_code": minor, "workflow_code": code}
    response = cc.put("/api/v1/case-type-workflows", json=body, headers=auth(cc, "admin"))
    assert response.status_code == 200, response.text


def test_workflow_api(cc: TestClient) -> None:
    listed = cc.get("/api/v1/workflows", headers=auth(cc, "dispatcher")).json()
    assert [(w["code"], w["is_default"]) for w in listed] == [(DEFAULT_CODE, True)]
    one = cc.get(f"/api/v1/workflows/{DEFAULT_CODE}", headers=auth(cc, "handler")).json()
    assert one["definition"]["initial_stage"] == "reported"
    assert cc.get("/api/v1/workflows/none", headers=auth(cc, "handler")).status_code == 404
    assert _put(cc, "copy", default_definition(), user="dispatcher").status_code == 403
    bad = _put(cc, "copy", _mutated(["transitions", 3, "to"], "nowhere"))
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["field"] == "definition.transitions[3].to"
    assert _put(cc, "bad code!", default_definition()).status_code in (400, 404)
    created = _put(cc, "copy", default_definition())
    assert created.status_code == 200, created.text
    assert created.json()["is_default"] is False
    unknown = cc.put(
        "/api/v1/case-type-workflows",
        json={"category": "事件", "major_code": "01", "workflow_code": "nope"},
        headers=auth(cc, "admin"),
    )
    assert unknown.status_code == 422 and unknown.json()["errors"][0]["field"] == "workflow_code"
    minor_only = cc.put(
        "/api/v1/case-type-workflows",
        json={"category": "事件", "minor_code": "01", "workflow_code": "copy"},
        headers=auth(cc, "admin"),
    )
    assert minor_only.status_code == 422


def test_default_cannot_be_dropped_and_stages_in_use_stay(cc: TestClient, db: str) -> None:
    undefault = _put(cc, DEFAULT_CODE, default_definition())
    assert undefault.status_code == 409
    insert_case(db, "voided")
    shrunk = default_definition()
    shrunk["stages"] = [s for s in shrunk["stages"] if s["code"] != "voided"]
    shrunk["transitions"] = [t for t in shrunk["transitions"] if t["to"] != "voided"]
    refused = _put(cc, DEFAULT_CODE, shrunk, is_default=True)
    assert refused.status_code == 409, refused.text
    assert "voided" in refused.json()["errors"][0]["message"]


def test_case_type_resolution(cc: TestClient, db: str) -> None:
    for code in ("wf_cat", "wf_major", "wf_minor"):
        assert _put(cc, code, default_definition()).status_code == 200
    _link(cc, "部件", None, None, "wf_cat")
    _link(cc, "部件", "02", None, "wf_major")
    _link(cc, "部件", "02", "05", "wf_minor")

    async def resolve() -> list[str]:
        async with await psycopg.AsyncConnection.connect(libpq_url(db)) as conn:
            return [
                await workflow_for(conn, category, code)
                for category, code in (
                    ("部件", "3209040205"),
                    ("部件", "3209040206"),
                    ("部件", "3209040101"),
                    ("事件", "3209040205"),
                )
            ]

    assert asyncio.run(resolve()) == ["wf_minor", "wf_major", "wf_cat", DEFAULT_CODE]
    _link(cc, "部件", "02", "05", None)
    assert asyncio.run(resolve())[0] == "wf_major"
    links = cc.get("/api/v1/case-type-workflows", headers=auth(cc, "leader")).json()
    assert [(x["major_code"], x["workflow_code"]) for x in links] == [
        (None, "wf_cat"),
        ("02", "wf_major"),
    ]


def _quick() -> dict[str, Any]:
    """A definition without 核实/核查: feedback closes the case directly, photos optional."""
    doc = default_definition()
    doc["transitions"] = [t for t in doc["transitions"] if not t["action"].startswith("verify")]
    for t in doc["transitions"]:
        if t["action"] == "feedback":
            t["to"] = "closed"
            t["conditions"] = ["own_department"]
            t["effects"] = ["attach_media:feedback", "stamp:handled_at", "stamp:closed_at"]
    doc["rules"]["feedback_requires_media"] = False
    return doc


def test_linked_definition_changes_behaviour_without_code(cc: TestClient, db: str) -> None:
    assert _put(cc, "quick", _quick(), name="简易流程").status_code == 200
    _link(cc, "事件", "01", "04", "quick")
    quick = insert_case(db, class_code="3209040104")
    normal = insert_case(db, class_code="3209040105")
    assert case_row(db, quick)["workflow_code"] == "quick"
    assert case_row(db, normal)["workflow_code"] == DEFAULT_CODE
    assert act(cc, "acceptor", quick, "verify", {}).status_code == 409
    assert act(cc, "acceptor", normal, "verify", {}).status_code == 200
    for cid in (quick,):
        assert act(cc, "acceptor", cid, "register", {}).status_code == 200
        body = {"department_code": "D004"}
        assert act(cc, "dispatcher", cid, "dispatch", body).status_code == 200
    response = act(cc, "handler", quick, "feedback", {"opinion": "已处理"})
    assert response.status_code == 200, response.text
    assert (response.json()["stage"], response.json()["status"]) == ("closed", "结案")
    default_case = insert_case(db, "dispatched")
    refused = act(cc, "handler", default_case, "feedback", {"opinion": "已处理"})
    assert refused.status_code == 422


def test_rules_are_configuration(cc: TestClient, db: str) -> None:
    doc = default_definition()
    doc["rules"]["return_forbidden_when"] = ["force_dispatched"]
    doc["rules"]["close_without_check_when_feedback_has_photos"] = True
    assert _put(cc, "lenient", doc).status_code == 200
    _link(cc, "事件", "05", None, "lenient")
    overdue = insert_case(db, "dispatched", class_code="3209040501", overdue=True)
    response = act(cc, "handler", overdue, "return", {"reason": "非本部门职责"})
    assert response.status_code == 200, response.text
    forced = insert_case(db, "dispatched", class_code="3209040501", force_dispatched=True)
    assert act(cc, "handler", forced, "return", {"reason": "x"}).status_code == 409
    photo = add_media(db)
    fed = insert_case(db, "dispatched", class_code="3209040501")
    body = {"opinion": "已处理", "media": [photo]}
    assert act(cc, "handler", fed, "feedback", body).json()["stage"] == "checked"
    closed = act(cc, "shiftlead", fed, "close", {"opinion": "照片清楚，免核查结案"})
    assert closed.json()["stage"] == "closed"


def test_automatic_dispatch_by_the_system_robot(scratch_url: str) -> None:
    pytest.importorskip("layers.cases.dispatch")
    with connect(scratch_url) as conn:
        conn.execute("DELETE FROM city.dispatch_rules")
        conn.execute(
            "INSERT INTO city.dispatch_rules (category, major_code, minor_code, department_code,"
            " time_limit_hours, automatic, priority) VALUES ('事件', '01', '02', 'D004', 2,"
            " true, 1)"
        )
    cid = insert_case(scratch_url)
    with case_client(scratch_url) as client:
        response = act(client, "acceptor", cid, "register", {})
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["stage"], body["department_code"], body["version"]) == ("dispatched", "D004", 3)
    assert body["steps"] == ["register", "dispatch"]
    with connect(scratch_url) as conn:
        actor = conn.execute(
            "SELECT actor_name FROM city.case_history WHERE case_id = %s ORDER BY id DESC LIMIT 1",
            (cid,),
        ).fetchone()
    assert actor == ("系统机器人",)


def test_definitions_are_json_documents() -> None:
    doc = default_definition()
    assert copy.deepcopy(doc) == doc
    assert all(isinstance(t["from"], list) for t in doc["transitions"])
