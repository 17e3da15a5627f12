"""Every workflow transition and refusal over HTTP, as the demo users, on a private database.

One module database (cloned from the sample template) holds the cases; each test inserts its
own. Automatic dispatch rules are removed so that 立案 stops at 待派遣 unless a test adds one.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from layers.cases.actions import perform
from spatial.db import drop_database, libpq_url
from spatial.errors import Conflict
from tests.case_support import (
    DEFAULT_CLASS,
    act,
    add_media,
    auth,
    case_client,
    case_row,
    clone_database,
    connect,
    history,
    insert_case,
    principal_of,
    user_id,
)

NOT_EXTENDABLE = "3209040103"  # 积存垃圾渣土: made non-extendable below


def _prepare(url: str) -> None:
    with connect(url) as conn:
        conn.execute("DELETE FROM city.dispatch_rules WHERE automatic")
        conn.execute("DELETE FROM city.stage_time_limits WHERE stage = 'dispatched'")
        conn.execute(
            "INSERT INTO city.stage_time_limits (category, major_code, minor_code, stage,"
            " limit_minutes, calendar, max_extensions, extendable) VALUES"
            " ('事件', '01', '02', 'dispatched', 120, 'working', 1, true),"
            " ('事件', '01', '03', 'dispatched', 480, 'working', 1, false)"
        )


@pytest.fixture(scope="module")
def db(pg_server: str, sample_template: str) -> Iterator[str]:
    """The module's writable database."""
    url = clone_database(pg_server, sample_template)
    _prepare(url)
    yield url
    drop_database(url)


@pytest.fixture(scope="module")
def cc(db: str) -> Iterator[TestClient]:
    """A client over the module database."""
    with case_client(db) as client:
        yield client


def go(cc: TestClient, user: str, case_id: int, action: str, status: int = 200, **body: Any):
    """Perform an action and check the status; returns the JSON body."""
    response = act(cc, user, case_id, action, body)
    assert response.status_code == status, response.text
    return response.json()


def last(db: str, case_id: int) -> dict[str, Any]:
    """The newest history row."""
    return history(db, case_id)[-1]


def notifications(db: str, case_id: int) -> list[tuple[str, int]]:
    """(kind, recipient) of the messages queued for a case."""
    with connect(db) as conn:
        rows = conn.execute(
            "SELECT kind, recipient_user_id FROM city.notifications WHERE case_id = %s ORDER BY id",
            (case_id,),
        ).fetchall()
    return [(r[0], r[1]) for r in rows]


# --- intake: 受理 / 不受理 / 恢复 / 核实 / 销案 / 立案 / 不立案 ---


def test_accept(cc: TestClient, db: str) -> None:
    cid = insert_case(db)
    response = act(cc, "acceptor", cid, "accept", {"opinion": "符合受理条件", "version": 1})
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["stage"], body["status"], body["version"]) == ("accepted", "待立案", 2)
    assert response.headers["ETag"] == '"2"'
    row = last(db, cid)
    assert (row["action"], row["action_name"], row["from_stage"], row["to_stage"]) == (
        "accept",
        "受理",
        "reported",
        "accepted",
    )
    assert row["actor_name"] == "陈静" and row["opinion"] == "符合受理条件"
    assert case_row(db, cid)["accepted_at"] is not None


def test_reject_needs_reason_and_opinion_then_restore(cc: TestClient, db: str) -> None:
    cid = insert_case(db)
    problem = go(cc, "acceptor", cid, "reject", 422)
    assert {e["field"] for e in problem["errors"]} == {"reason", "opinion"}
    body = go(cc, "acceptor", cid, "reject", reason="不属于城管问题", opinion="不予受理")
    assert (body["stage"], body["status"]) == ("rejected", "不受理")
    assert last(db, cid)["reason"] == "不属于城管问题"
    problem = go(cc, "acceptor", cid, "accept", 409)
    assert "不受理 (rejected)" in problem["detail"]
    body = go(cc, "acceptor", cid, "restore", opinion="误操作，恢复")
    assert (body["stage"], body["status"], body["version"]) == ("reported", "待受理", 3)


def test_verify_true_goes_back_to_the_centre(cc: TestClient, db: str) -> None:
    cid = insert_case(db)
    body = go(cc, "acceptor", cid, "verify", opinion="请核实现场是否有垃圾")
    assert (body["stage"], body["status"]) == ("verifying", "待立案")
    task = last(db, cid)["details"]
    assert task["verify_assignee_user_id"] == user_id(db, "inspector")
    assert notifications(db, cid) == [("task", user_id(db, "inspector"))]
    actions = cc.get(f"/api/v1/cases/{cid}/actions", headers=auth(cc, "inspector")).json()
    assert [a["action"] for a in actions] == ["verify-result"]
    assert go(cc, "dispatcher", cid, "verify-result", 403, result=True)["status"] == 403
    body = go(cc, "inspector", cid, "verify-result", result=True, opinion="属实")
    assert body["stage"] == "accepted"
    detail = cc.get(f"/api/v1/cases/{cid}", headers=auth(cc, "acceptor")).json()
    assert [(t["kind"], t["state"], t["result"]) for t in detail["tasks"]] == [
        ("verify", "done", "通过")
    ]
    # no open task any more
    go(cc, "inspector", cid, "verify-result", 409, result=True)


def test_verify_false_cancels(cc: TestClient, db: str) -> None:
    cid = insert_case(db, "accepted")
    go(cc, "acceptor", cid, "verify")
    body = go(cc, "inspector", cid, "verify-result", result=False, opinion="现场无此问题")
    assert (body["stage"], body["status"]) == ("cancelled", "销案")


def test_cancel_by_acceptor(cc: TestClient, db: str) -> None:
    cid = insert_case(db)
    go(cc, "acceptor", cid, "cancel", 422)
    assert go(cc, "acceptor", cid, "cancel", reason="重复上报")["stage"] == "cancelled"
    problem = go(cc, "acceptor", cid, "restore", 409)
    assert "销案 (cancelled)" in problem["detail"]


def test_register_and_not_register(cc: TestClient, db: str) -> None:
    cid = insert_case(db)
    body = go(cc, "acceptor", cid, "register")
    assert (body["stage"], body["status"], body["steps"]) == ("registered", "待派遣", ["register"])
    row = case_row(db, cid)
    assert row["registered_at"] is not None and row["accepted_at"] is not None
    other = insert_case(db, "accepted")
    go(cc, "acceptor", other, "not-register", 422)
    body = go(cc, "acceptor", other, "not-register", reason="不符合立案条件")
    assert (body["stage"], body["status"]) == ("not_registered", "不立案")
    # not-register only from accepted
    go(cc, "acceptor", insert_case(db), "not-register", 409, reason="x")


def test_batch_register_reports_each_case(cc: TestClient, db: str) -> None:
    ok1, ok2, bad = insert_case(db), insert_case(db, "accepted"), insert_case(db, "dispatched")
    response = cc.post(
        "/api/v1/cases/actions/register",
        json={"ids": [ok1, ok2, bad, 999999999], "opinion": "批量立案"},
        headers=auth(cc, "acceptor"),
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["registered"], body["failed"]) == (2, 2)
    by_id = {r["id"]: r for r in body["results"]}
    assert by_id[ok1]["stage"] == by_id[ok2]["stage"] == "registered"
    assert by_id[bad]["status"] == 409 and "处置中 (dispatched)" in by_id[bad]["detail"]
    assert by_id[999999999]["status"] == 404
    assert case_row(db, bad)["version"] == 1
    denied = cc.post(
        "/api/v1/cases/actions/register", json={"ids": [ok1]}, headers=auth(cc, "inspector")
    )
    assert denied.json()["results"][0]["status"] == 403


def test_self_handled_is_archived_by_the_acceptor(cc: TestClient, db: str) -> None:
    cid = insert_case(db, self_handled=True)
    go(cc, "acceptor", cid, "accept", 409)
    body = go(cc, "acceptor", cid, "close", opinion="自行处置归档")
    assert (body["stage"], body["status"]) == ("closed", "结案")
    go(cc, "acceptor", insert_case(db), "close", 409, opinion="x")


def test_merge_writes_history_on_both(cc: TestClient, db: str) -> None:
    target, dup = insert_case(db, "registered"), insert_case(db)
    go(cc, "acceptor", dup, "merge", 422)
    go(cc, "acceptor", dup, "merge", 422, target_case_id=dup)
    body = go(cc, "acceptor", dup, "merge", target_case_id=target, opinion="重复案卷")
    assert (body["stage"], body["merged_into"]) == ("merged", target)
    assert case_row(db, target)["version"] == 2
    assert last(db, target)["details"]["merged_case_id"] == dup
    go(cc, "acceptor", insert_case(db), "merge", 409, target_case_id=dup)


# --- 立案修正 ---


def test_correct_by_shift_leader_only(cc: TestClient, db: str) -> None:
    cid = insert_case(db, "registered")
    go(cc, "dispatcher", cid, "correct", 403, changes={"level": "紧急"})
    go(cc, "shiftlead", cid, "correct", 422)
    problem = go(cc, "shiftlead", cid, "correct", 422, changes={"stage": "closed"})
    assert problem["errors"][0]["field"] == "changes.stage"
    go(cc, "shiftlead", cid, "correct", 422, changes={"class_code": "3209049999"})
    body = go(
        cc, "shiftlead", cid, "correct", changes={"level": "紧急", "class_code": "3209040103"}
    )
    assert body["stage"] == "registered" and body["version"] == 2
    row = case_row(db, cid)
    assert (row["level"], row["minor_code"]) == ("紧急", "03")
    details = last(db, cid)["details"]
    assert details["before"] == {"level": "一般", "class_code": DEFAULT_CLASS}
    go(cc, "shiftlead", insert_case(db), "correct", 409, changes={"level": "紧急"})


# --- 派遣 / 处置反馈 / 核查 / 结案 / 返工 ---


def test_dispatch(cc: TestClient, db: str) -> None:
    cid = insert_case(db, "registered")
    go(cc, "acceptor", cid, "dispatch", 403, department_code="D004")
    assert go(cc, "dispatcher", cid, "dispatch", 422)["errors"][0]["field"] == "department_code"
    go(cc, "dispatcher", cid, "dispatch", 422, department_code="C001")
    body = go(cc, "dispatcher", cid, "dispatch", department_code="D004", force=True)
    assert (body["stage"], body["status"], body["department_code"]) == (
        "dispatched",
        "处置中",
        "D004",
    )
    row = case_row(db, cid)
    assert row["force_dispatched"] and row["dispatched_at"] is not None
    assert row["handle_deadline"] == row["stage_deadline"]
    assert last(db, cid)["details"]["department_name"] == "大丰区环境卫生管理处"
    assert ("arrival", user_id(db, "handler")) in notifications(db, cid)
    go(cc, "dispatcher", cid, "dispatch", 409, department_code="D004")


def test_feedback_check_close(cc: TestClient, db: str) -> None:
    cid = insert_case(db, "dispatched")
    problem = go(cc, "handler", cid, "feedback", 422, opinion="已清理")
    assert problem["errors"][0]["field"] == "media"
    go(cc, "handler", cid, "feedback", 422, opinion="已清理", media=["0" * 64])
    go(cc, "street", cid, "feedback", 403, opinion="已清理", media=[add_media(db)])
    photo = add_media(db)
    body = go(cc, "handler", cid, "feedback", opinion="已清理", media=[photo])
    assert (body["stage"], body["status"]) == ("handled", "待核查")
    detail = cc.get(f"/api/v1/cases/{cid}", headers=auth(cc, "handler")).json()
    assert [(m["sha256"], m["kind"]) for m in detail["media"]] == [(photo, "feedback")]
    assert detail["tasks"][-1]["kind"] == "check"
    assert detail["tasks"][-1]["assignee_user_id"] == user_id(db, "inspector")
    go(cc, "shiftlead", cid, "close", 409, opinion="x")
    body = go(cc, "inspector", cid, "check", result=True, media=[add_media(db)])
    assert (body["stage"], body["status"]) == ("checked", "待结案")
    go(cc, "dispatcher", cid, "close", 403, opinion="x")
    go(cc, "shiftlead", cid, "close", 422)
    body = go(cc, "shiftlead", cid, "close", opinion="同意结案")
    assert (body["stage"], body["status"]) == ("closed", "结案")
    assert case_row(db, cid)["closed_at"] is not None
    problem = go(cc, "acceptor", cid, "restore", 409)
    assert "结案 (closed)" in problem["detail"]


def test_failed_check_means_rework(cc: TestClient, db: str) -> None:
    cid = insert_case(db, "dispatched")
    go(cc, "handler", cid, "feedback", opinion="已处理", media=[add_media(db)])
    go(cc, "inspector", cid, "check", 422)
    body = go(cc, "inspector", cid, "check", result=False, opinion="垃圾仍在")
    assert body["stage"] == "checked"
    problem = go(cc, "shiftlead", cid, "close", 409, opinion="x")
    assert "返工" in problem["detail"]
    body = go(cc, "dispatcher", cid, "rework", opinion="处置不到位，返工")
    assert (body["stage"], body["status"], body["rework_count"]) == ("registered", "待派遣", 1)


def test_rework_from_handled_cancels_the_check_task(cc: TestClient, db: str) -> None:
    cid = insert_case(db, "dispatched")
    go(cc, "handler", cid, "feedback", opinion="已处理", media=[add_media(db)])
    go(cc, "dispatcher", cid, "rework", opinion="照片不清楚")
    detail = cc.get(f"/api/v1/cases/{cid}", headers=auth(cc, "dispatcher")).json()
    assert detail["tasks"][-1]["state"] == "cancelled"
    go(cc, "inspector", cid, "check", 409, result=True)


# --- 回退 / 申请回退 ---


def test_return_when_allowed(cc: TestClient, db: str) -> None:
    cid = insert_case(db, "dispatched")
    go(cc, "handler", cid, "return", 422)
    go(cc, "handler", cid, "request-return", 409, reason="x")
    body = go(cc, "handler", cid, "return", reason="不属于本部门职责")
    assert (body["stage"], body["status"], body["department_code"]) == ("returned", "待派遣", None)
    assert body["return_count"] == 1
    assert last(db, cid)["details"]["previous_department"] == "D004"
    body = go(cc, "dispatcher", cid, "dispatch", department_code="D005")
    assert body["stage"] == "dispatched"


@pytest.mark.parametrize(
    "flags",
    [{"overdue": True}, {"rework_count": 1}, {"extension_count": 1}, {"force_dispatched": True}],
    ids=["overdue", "reworked", "extended", "force-dispatched"],
)
def test_return_forbidden_points_to_request_return(
    cc: TestClient, db: str, flags: dict[str, Any]
) -> None:
    cid = insert_case(db, "dispatched", **flags)
    problem = go(cc, "handler", cid, "return", 409, reason="不属于本部门")
    assert "申请回退 (request-return)" in problem["detail"]
    actions = cc.get(f"/api/v1/cases/{cid}/actions", headers=auth(cc, "handler")).json()
    names = [a["action"] for a in actions]
    assert "request-return" in names and "return" not in names


def test_request_return_approved_and_refused(cc: TestClient, db: str) -> None:
    cid = insert_case(db, "dispatched", overdue=True)
    go(cc, "dispatcher", cid, "approve-return", 409)
    body = go(cc, "handler", cid, "request-return", reason="非本部门职责")
    assert body["stage"] == "dispatched"
    go(cc, "handler", cid, "request-return", 409, reason="again")
    go(cc, "handler", cid, "approve-return", 403)
    go(cc, "dispatcher", cid, "refuse-return", 422)
    go(cc, "dispatcher", cid, "refuse-return", opinion="属于本部门职责")
    go(cc, "handler", cid, "request-return", reason="确非本部门职责")
    body = go(cc, "dispatcher", cid, "approve-return", opinion="同意")
    assert (body["stage"], body["department_code"], body["return_count"]) == ("returned", None, 1)
    with connect(db) as conn:
        states = conn.execute(
            "SELECT state FROM city.case_requests WHERE case_id = %s ORDER BY id", (cid,)
        ).fetchall()
    assert [s[0] for s in states] == ["refused", "approved"]


# --- 申请延期 ---


def test_extension_request_and_approval(cc: TestClient, db: str) -> None:
    cid = insert_case(db, "dispatched")
    with connect(db) as conn:
        conn.execute(
            "UPDATE city.cases SET stage_deadline = now() + interval '2 hours',"
            " handle_deadline = now() + interval '2 hours' WHERE id = %s",
            (cid,),
        )
    before = case_row(db, cid)
    go(cc, "handler", cid, "request-extension", 422, reason="材料未到")
    go(cc, "dispatcher", cid, "approve-extension", 409)
    go(cc, "handler", cid, "request-extension", reason="材料未到", minutes=240)
    go(cc, "handler", cid, "request-extension", 409, reason="again", minutes=60)
    go(cc, "dispatcher", cid, "refuse-extension", opinion="理由不充分")
    go(cc, "handler", cid, "request-extension", reason="材料未到，供货延迟", minutes=240)
    body = go(cc, "dispatcher", cid, "approve-extension", opinion="同意延期")
    assert (body["extension_count"], body["extension_minutes"]) == (1, 240)
    after = case_row(db, cid)
    assert after["handle_deadline"] > before["handle_deadline"]
    assert after["stage_deadline"] > before["stage_deadline"]
    problem = go(cc, "handler", cid, "request-extension", 409, reason="再次延期", minutes=60)
    assert "最多延期次数 1" in problem["detail"]
    assert "申请回退" in go(cc, "handler", cid, "return", 409, reason="x")["detail"]


def test_extension_refused_for_classes_that_cannot_be_extended(cc: TestClient, db: str) -> None:
    cid = insert_case(db, "dispatched", class_code=NOT_EXTENDABLE)
    problem = go(cc, "handler", cid, "request-extension", 409, reason="x", minutes=60)
    assert "不可延期" in problem["detail"]


# --- 申请作废 / 督办 / 挂账 / 补采 / 意见 ---


def test_void_request_approved_and_refused(cc: TestClient, db: str) -> None:
    cid = insert_case(db, "dispatched")
    go(cc, "leader", cid, "approve-void", 409)
    go(cc, "handler", cid, "request-void", reason="问题已由其他部门解决")
    go(cc, "leader", cid, "refuse-void", opinion="仍需处置")
    go(cc, "handler", cid, "request-void", reason="问题已不存在")
    go(cc, "dispatcher", cid, "approve-void", 403)
    body = go(cc, "leader", cid, "approve-void", opinion="同意作废")
    assert (body["stage"], body["status"]) == ("voided", "作废")
    assert last(db, cid)["opinion_type"] == "授权"
    registered = insert_case(db, "registered")
    go(cc, "handler", registered, "request-void", 404, reason="x")
    go(cc, "dispatcher", registered, "request-void", reason="上级要求撤销")


def test_supervision_and_reply(cc: TestClient, db: str) -> None:
    cid = insert_case(db, "dispatched")
    go(cc, "handler", cid, "reply-supervision", 409, opinion="x")
    go(cc, "leader", cid, "supervise", 422, reason="群众反映强烈")
    body = go(cc, "leader", cid, "supervise", reason="群众反映强烈", days=3, opinion="三日内办结")
    assert body["supervised"] is True
    assert last(db, cid)["opinion_type"] == "督办"
    go(cc, "leader", cid, "supervise", 409, reason="again", days=1)
    go(cc, "street", cid, "reply-supervision", 403, opinion="x")
    body = go(cc, "handler", cid, "reply-supervision", opinion="已安排人员，明日完成")
    assert body["supervised"] is False
    detail = cc.get(f"/api/v1/cases/{cid}", headers=auth(cc, "leader")).json()
    assert detail["supervisions"][0]["reply"] == "已安排人员，明日完成"


def test_hold_and_unhold(cc: TestClient, db: str) -> None:
    cid = insert_case(db, "registered")
    go(cc, "dispatcher", cid, "unhold", 409)
    go(cc, "acceptor", cid, "hold", 403, reason="x")
    assert go(cc, "dispatcher", cid, "hold", reason="等待拆迁")["on_hold"] is True
    go(cc, "dispatcher", cid, "hold", 409, reason="again")
    assert go(cc, "dispatcher", cid, "unhold")["on_hold"] is False


def test_supplement_task(cc: TestClient, db: str) -> None:
    cid = insert_case(db, "registered")
    go(cc, "inspector", cid, "supplement", 409, media=[add_media(db)])
    go(cc, "dispatcher", cid, "request-supplement", opinion="请补拍远景照片")
    go(cc, "inspector", cid, "supplement", 422)
    go(cc, "dispatcher", cid, "supplement", 403, media=[add_media(db)])
    photo = add_media(db)
    body = go(cc, "inspector", cid, "supplement", media=[photo], opinion="已补拍")
    assert body["stage"] == "registered"
    detail = cc.get(f"/api/v1/cases/{cid}", headers=auth(cc, "dispatcher")).json()
    assert ("supplement", "done") in {(t["kind"], t["state"]) for t in detail["tasks"]}
    assert (photo, "supplement") in {(m["sha256"], m["kind"]) for m in detail["media"]}


def test_opinions_of_the_four_types(cc: TestClient, db: str) -> None:
    cid = insert_case(db, "dispatched")
    for kind in ("授权", "督办", "征求", "疑难确权"):
        go(cc, "shiftlead", cid, "opinion", opinion=f"{kind}意见", opinion_type=kind)
    assert [r["opinion_type"] for r in history(db, cid)[1:]] == ["授权", "督办", "征求", "疑难确权"]
    go(cc, "shiftlead", cid, "opinion", 422, opinion="x")
    assert (
        act(cc, "shiftlead", cid, "opinion", {"opinion": "x", "opinion_type": "其他"}).status_code
        == 400
    )
    assert case_row(db, cid)["stage"] == "dispatched"


# --- refusals in general ---


def test_unknown_action_and_fields(cc: TestClient, db: str) -> None:
    cid = insert_case(db)
    assert go(cc, "acceptor", cid, "fly", 404)["status"] == 404
    assert act(cc, "acceptor", cid, "accept", {"colour": "red"}).status_code == 400
    assert go(cc, "acceptor", 999999999, "accept", 404)["status"] == 404


def test_illegal_transition_names_the_current_state(cc: TestClient, db: str) -> None:
    cid = insert_case(db, "dispatched")
    problem = go(cc, "acceptor", cid, "accept", 409)
    assert "当前状态为 处置中 (dispatched)，不能 受理" in problem["detail"]
    assert problem["type"].endswith("/conflict")


def test_scope_and_permission(cc: TestClient, db: str) -> None:
    hidden = insert_case(db, "dispatched", department="D005")
    assert go(cc, "handler", hidden, "feedback", 404, opinion="x")["status"] == 404
    mine = insert_case(db, reporter="citizen")
    assert go(cc, "citizen", mine, "accept", 403)["status"] == 403
    assert go(cc, "citizen", insert_case(db), "accept", 404)["status"] == 404
    anonymous = cc.post(f"/api/v1/cases/{mine}/actions/accept", json={})
    assert anonymous.status_code == 401


def test_stale_version_in_body_or_if_match(cc: TestClient, db: str) -> None:
    cid = insert_case(db)
    go(cc, "acceptor", cid, "accept", version=1)
    problem = go(cc, "acceptor", cid, "register", 409, version=1)
    assert "待立案 (accepted)" in problem["detail"] and "版本 2" in problem["detail"]
    response = cc.post(
        f"/api/v1/cases/{cid}/actions/register",
        json={},
        headers={**auth(cc, "acceptor"), "If-Match": '"1"'},
    )
    assert response.status_code == 409
    response = cc.post(
        f"/api/v1/cases/{cid}/actions/register",
        json={},
        headers={**auth(cc, "acceptor"), "If-Match": 'W/"2"'},
    )
    assert response.status_code == 200 and response.json()["version"] == 3
    bad = cc.post(
        f"/api/v1/cases/{cid}/actions/opinion",
        json={"opinion": "x", "opinion_type": "征求"},
        headers={**auth(cc, "acceptor"), "If-Match": "abc"},
    )
    assert bad.status_code == 400


def test_history_is_immutable(db: str) -> None:
    cid = insert_case(db)
    with connect(db) as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute("UPDATE city.case_history SET opinion = 'x' WHERE case_id = %s", (cid,))


# --- reading ---


def test_detail_history_and_actions(cc: TestClient, db: str) -> None:
    cid = insert_case(db)
    go(cc, "acceptor", cid, "accept", opinion="受理")
    detail = cc.get(f"/api/v1/cases/{cid}", headers=auth(cc, "dispatcher")).json()
    assert (detail["stage"], detail["status"], detail["version"]) == ("accepted", "待立案", 2)
    assert detail["crs"] == "EPSG:4490" and 120 < detail["lon"] < 121
    assert detail["minor_name"] == "暴露垃圾" and detail["source_name"] == "监督员上报"
    assert [h["action"] for h in detail["history"]] == ["report", "accept"]
    assert "timer" in detail and detail["open_requests"] == []
    rows = cc.get(f"/api/v1/cases/{cid}/history", headers=auth(cc, "leader")).json()
    assert [(r["action_name"], r["version"]) for r in rows] == [("上报", 1), ("受理", 2)]
    actions = cc.get(f"/api/v1/cases/{cid}/actions", headers=auth(cc, "acceptor")).json()
    names = {a["action"]: a for a in actions}
    assert {"register", "not-register", "verify", "cancel"} <= set(names)
    assert names["not-register"]["requires"] == ["reason"]
    assert cc.get(f"/api/v1/cases/{cid}/actions", headers=auth(cc, "handler")).status_code == 404
    assert cc.get("/api/v1/cases/999999999", headers=auth(cc, "leader")).status_code == 404


# --- concurrency ---


def test_two_dispatchers_over_http_exactly_one_wins(cc: TestClient, db: str) -> None:
    cid = insert_case(db, "registered")
    headers = {"dispatcher": auth(cc, "dispatcher"), "shiftlead": auth(cc, "shiftlead")}
    codes: list[int] = []
    barrier = threading.Barrier(2)

    def dispatch(user: str, department: str) -> None:
        barrier.wait()
        response = cc.post(
            f"/api/v1/cases/{cid}/actions/dispatch",
            json={"version": 1, "department_code": department},
            headers=headers[user],
        )
        codes.append(response.status_code)

    threads = [
        threading.Thread(target=dispatch, args=("dispatcher", "D004")),
        threading.Thread(target=dispatch, args=("shiftlead", "D005")),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(codes) == [200, 409]
    assert case_row(db, cid)["version"] == 2 and len(history(db, cid)) == 2


def test_two_concurrent_transactions_exactly_one_wins(db: str) -> None:
    cid = insert_case(db, "registered")

    async def race() -> list[object]:
        url = libpq_url(db)
        async with (
            await psycopg.AsyncConnection.connect(url, autocommit=True) as a,
            await psycopg.AsyncConnection.connect(url, autocommit=True) as b,
        ):
            pa, pb = await principal_of(a, "dispatcher"), await principal_of(b, "shiftlead")
            return await asyncio.gather(
                perform(a, pa, cid, "dispatch", {"department_code": "D004"}, expected_version=1),
                perform(b, pb, cid, "dispatch", {"department_code": "D005"}, expected_version=1),
                return_exceptions=True,
            )

    results = asyncio.run(race())
    conflicts = [r for r in results if isinstance(r, Conflict)]
    assert len(conflicts) == 1, results
    assert case_row(db, cid)["version"] == 2 and len(history(db, cid)) == 2
