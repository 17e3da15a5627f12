"""The default case workflow (工作流定义) of GB/T 30428.8, as data.

A definition is a JSON document stored in ``city.workflow_definitions.definition``; the
engine (layers/cases/actions.py) interprets it, so a case type linked to another definition
(``city.case_type_workflows``) behaves differently without code changes.

Shape of a definition::

    {"initial_stage": "reported",
     "stages": [{"code", "name", "status", "participants": [position codes],
                 "timed": bool, "terminal": bool, "restorable": bool}],
     "transitions": [{"action", "name" (操作动作), "from": [stages], "to": stage | null,
                      "permission": str | [str], "positions": [position codes],
                      "requires": [payload fields], "conditions": [names],
                      "effects": [names], "opinion_type": str | null}],
     "rules": {...}}

- ``to: null`` keeps the stage (申请延期, 督办, 挂账, 意见 …).
- ``permission``: one permission, or a list of alternatives; an alternative ``"a+b"`` needs
  both. ``positions``: holding one of these posts also grants the transition (值班长).
- Several transitions may share an action: the first one whose stage, permission and
  conditions all hold is taken (e.g. 处置反馈 straight to 待结案 when the rule
  ``close_without_check_when_feedback_has_photos`` holds and photos are attached).
- Conditions are named predicates (see ``CONDITIONS``); ``own_department`` and ``own_task:*``
  concern the actor and are not applied to the system robot (系统机器人).
- Effects are named side effects run in the transition's transaction (see ``EFFECTS``).

Permission choices: 受理员 (cases:accept) accepts, rejects, restores, verifies, registers,
cancels (销案) and archives self-handled reports (close from ``reported``); 派遣员
(cases:dispatch) dispatches, decides returns and extensions, reworks and holds (挂账);
立案修正 needs the 值班长 post or cases:supervise+cases:accept; 处置部门 (cases:handle)
acts only on its own department's cases; 监督员 (cases:report) answers only their own open
核实/核查/补采 task; cases:supervise supervises (督办), closes and approves voids (答复授权人).
The centre also sends 补采 (cases:accept or cases:dispatch) and may request a void before
dispatch.
"""

from __future__ import annotations

import copy
from typing import Any, Final

DEFAULT_CODE: Final = "gbt30428_8"
DEFAULT_NAME: Final = "GB/T 30428.8 数字化城市管理业务流程"

OPINION_TYPES: Final = ("授权", "督办", "征求", "疑难确权")
ANALYSIS_STATES: Final = ("待受理", "待立案", "待派遣", "处置中", "待核查", "待结案", "结案")

CONDITIONS: Final[dict[str, str]] = {
    "self_handled": "监督员自行处置的案卷",
    "not_self_handled": "非自行处置案卷",
    "on_hold": "已挂账",
    "not_on_hold": "未挂账",
    "return_allowed": "可直接回退 (见 rules.return_forbidden_when)",
    "return_forbidden": "不可直接回退, 只能申请回退",
    "pending:extension": "有待审批的延期申请",
    "pending:return": "有待审批的回退申请",
    "pending:void": "有待审批的作废申请",
    "no_pending:extension": "无待审批的延期申请",
    "no_pending:return": "无待审批的回退申请",
    "no_pending:void": "无待审批的作废申请",
    "extension_allowed": "本类案卷可延期且未超过最多延期次数",
    "extension_ratio": "部门延期比例未超过上限 (rules.extension_ratio_cap)",
    "supervised": "督办中",
    "not_supervised": "未在督办中",
    "check_passed": "核查通过 (或按规则免核查)",
    "result_true": "结果为是/通过",
    "result_false": "结果为否/不通过",
    "has_media": "附有照片/音视频",
    "media_if_required": "按规则需附照片时已附",
    "rule:close_without_check_when_feedback_has_photos": "处置反馈附照片可免核查",
    "own_department": "案卷的处置部门是经办人所在部门",
    "own_task:verify": "经办人有本案卷的待办核实任务",
    "own_task:check": "经办人有本案卷的待办核查任务",
    "own_task:supplement": "经办人有本案卷的待办补采任务",
}

EFFECTS: Final[dict[str, str]] = {
    "stamp:accepted_at": "记录受理时间",
    "stamp:registered_at": "记录立案时间",
    "stamp:dispatched_at": "记录派遣时间",
    "stamp:handled_at": "记录处置时间",
    "stamp:closed_at": "记录结案时间",
    "create_task:verify": "向责任网格监督员发送核实任务",
    "create_task:check": "向责任网格监督员发送核查任务",
    "create_task:supplement": "向责任网格监督员发送补采任务",
    "complete_task:verify": "完成核实任务",
    "complete_task:check": "完成核查任务",
    "complete_task:supplement": "完成补采任务",
    "cancel_tasks": "撤销未完成的任务",
    "set_department": "设置处置部门与处置截止时间",
    "clear_department": "清除处置部门 (回退到中心)",
    "force_dispatch": "按请求标记强制派遣",
    "auto_dispatch": "按监督指挥手册自动派遣 (系统机器人)",
    "count_rework": "返工次数加一",
    "count_return": "回退次数加一",
    "request:extension": "提交延期申请",
    "request:return": "提交回退申请",
    "request:void": "提交作废申请",
    "approve:extension": "批准延期并顺延时限",
    "approve:return": "批准回退",
    "approve:void": "批准作废",
    "refuse:extension": "驳回延期申请",
    "refuse:return": "驳回回退申请",
    "refuse:void": "驳回作废申请",
    "supervise": "登记督办",
    "reply_supervision": "答复督办",
    "hold": "挂账",
    "unhold": "取消挂账",
    "merge": "合并到另一案卷",
    "correct": "修正立案信息",
    "attach_media:feedback": "附处置反馈照片",
    "attach_media:supplement": "附补采/核查照片",
    "notify:department": "通知处置部门",
    "notify:inspector": "通知监督员",
    "notify:reporter": "通知举报人",
}

# Payload fields a transition may require (besides the always-optional opinion/opinion_type).
PAYLOAD_FIELDS: Final[dict[str, str]] = {
    "reason": "原因",
    "opinion": "意见",
    "opinion_type": "意见类型 (授权/督办/征求/疑难确权)",
    "department_code": "处置部门",
    "media": "照片/音视频 (sha256 列表)",
    "result": "结果 (是/否)",
    "minutes": "延期时长 (工作分钟)",
    "days": "督办天数",
    "target_case_id": "合并到的案卷",
    "changes": "立案修正内容",
}

RULE_DEFAULTS: Final[dict[str, Any]] = {
    "return_forbidden_when": ["overdue", "reworked", "extended", "force_dispatched"],
    "extension_ratio_cap": 0.1,
    "extension_ratio_window_days": 30,
    "extension_ratio_min_allowed": 1,
    "close_without_check_when_feedback_has_photos": False,
    "feedback_requires_media": True,
    "correctable_fields": [
        "category",
        "class_code",
        "part_code",
        "description",
        "location_desc",
        "road_name",
        "level",
        "safety_issue",
    ],
    "notify_reporter_sources": ["public", "hotline_12345"],
    "timer_yellow_ratio": 0.8,  # city.case_timer: yellow from this share of the stage's time
    "similar_radius_m": 50,  # layers/cases/similar.py: same minor class within this distance
    "similar_window_days": 7,  # … reported within this many days (or still open)
}
RETURN_FORBIDDEN_FLAGS: Final = ("overdue", "reworked", "extended", "force_dispatched")

OPEN = ("reported", "accepted", "verifying", "registered", "returned", "dispatched")
FILED = ("registered", "returned", "dispatched", "handled", "checked")
LIVE = (*OPEN, "handled", "checked")
CENTRE = ["cases:accept", "cases:dispatch"]


def _stage(code: str, name: str, status: str, participants: list[str], **flags: bool) -> dict:
    timed = flags.get("timed", False)
    terminal = flags.get("terminal", False)
    out = {"code": code, "name": name, "status": status, "participants": participants}
    return out | {
        "timed": timed,
        "terminal": terminal,
        "restorable": flags.get("restorable", False),
    }


STAGES: Final = [
    _stage("reported", "待受理", "待受理", ["acceptor", "shift_leader"], timed=True),
    _stage("accepted", "已受理", "待立案", ["acceptor", "shift_leader"], timed=True),
    _stage("verifying", "核实中", "待立案", ["inspector"], timed=True),
    _stage("registered", "已立案", "待派遣", ["dispatcher", "shift_leader"], timed=True),
    _stage("returned", "已回退", "待派遣", ["dispatcher", "shift_leader"], timed=True),
    _stage("dispatched", "已派遣", "处置中", ["handler", "enforcer"], timed=True),
    _stage("handled", "已处置", "待核查", ["inspector"], timed=True),
    _stage("checked", "已核查", "待结案", ["shift_leader", "leader"], timed=True),
    _stage("closed", "已结案", "结案", [], terminal=True),
    _stage("rejected", "不受理", "不受理", [], terminal=True, restorable=True),
    _stage("not_registered", "不立案", "不立案", [], terminal=True),
    _stage("cancelled", "销案", "销案", [], terminal=True),
    _stage("voided", "作废", "作废", [], terminal=True),
    _stage("merged", "已合并", "已合并", [], terminal=True),
]


def _t(action: str, name: str, frm: list[str] | tuple[str, ...], to: str | None, **kw: Any) -> dict:
    """One transition with defaults filled in."""
    permission = kw.get("permission", [])
    return {
        "action": action,
        "name": name,
        "from": list(frm),
        "to": to,
        "permission": permission,
        "positions": kw.get("positions", []),
        "requires": kw.get("requires", []),
        "conditions": kw.get("conditions", []),
        "effects": kw.get("effects", []),
        "opinion_type": kw.get("opinion_type"),
    }


ACCEPT, DISPATCH, HANDLE = "cases:accept", "cases:dispatch", "cases:handle"
SUPERVISE, REPORT = "cases:supervise", "cases:report"
OWN = ["own_department"]

TRANSITIONS: Final = [
    # 受理子系统 (intake)
    _t(
        "accept",
        "受理",
        ["reported"],
        "accepted",
        permission=ACCEPT,
        conditions=["not_self_handled"],
        effects=["stamp:accepted_at"],
    ),
    _t(
        "reject",
        "不受理",
        ["reported"],
        "rejected",
        permission=ACCEPT,
        requires=["reason", "opinion"],
        effects=["cancel_tasks"],
    ),
    _t("restore", "恢复", ["rejected"], "reported", permission=ACCEPT),
    _t(
        "verify",
        "核实",
        ["reported", "accepted"],
        "verifying",
        permission=ACCEPT,
        effects=["stamp:accepted_at", "create_task:verify", "notify:inspector"],
    ),
    _t(
        "verify-result",
        "核实反馈",
        ["verifying"],
        "accepted",
        permission=REPORT,
        requires=["result"],
        conditions=["own_task:verify", "result_true"],
        effects=["complete_task:verify", "attach_media:supplement"],
    ),
    _t(
        "verify-result",
        "核实反馈",
        ["verifying"],
        "cancelled",
        permission=REPORT,
        requires=["result"],
        conditions=["own_task:verify", "result_false"],
        effects=["complete_task:verify", "attach_media:supplement", "cancel_tasks"],
    ),
    _t(
        "cancel",
        "销案",
        ["reported", "accepted", "verifying"],
        "cancelled",
        permission=ACCEPT,
        requires=["reason"],
        effects=["cancel_tasks"],
    ),
    _t(
        "register",
        "立案",
        ["reported", "accepted"],
        "registered",
        permission=ACCEPT,
        conditions=["not_self_handled"],
        effects=["stamp:accepted_at", "stamp:registered_at", "cancel_tasks", "auto_dispatch"],
    ),
    _t(
        "not-register",
        "不立案",
        ["accepted"],
        "not_registered",
        permission=ACCEPT,
        requires=["reason"],
        effects=["cancel_tasks"],
    ),
    _t(
        "merge",
        "合并",
        ["reported", "accepted", "verifying", "registered"],
        "merged",
        permission=ACCEPT,
        requires=["target_case_id"],
        effects=["merge", "cancel_tasks"],
    ),
    _t(
        "close",
        "结案",
        ["reported"],
        "closed",
        permission=ACCEPT,
        conditions=["self_handled"],
        effects=["stamp:closed_at"],
    ),
    _t(
        "correct",
        "立案修正",
        FILED,
        None,
        permission=f"{SUPERVISE}+{ACCEPT}",
        positions=["shift_leader"],
        requires=["changes"],
        effects=["correct"],
    ),
    # 协同工作子系统 (dispatch and handling)
    _t(
        "dispatch",
        "派遣",
        ["registered", "returned"],
        "dispatched",
        permission=DISPATCH,
        requires=["department_code"],
        effects=["set_department", "force_dispatch", "stamp:dispatched_at", "notify:department"],
    ),
    _t(
        "feedback",
        "处置反馈",
        ["dispatched"],
        "checked",
        permission=HANDLE,
        requires=["opinion"],
        conditions=[*OWN, "rule:close_without_check_when_feedback_has_photos", "has_media"],
        effects=["attach_media:feedback", "stamp:handled_at"],
    ),
    _t(
        "feedback",
        "处置反馈",
        ["dispatched"],
        "handled",
        permission=HANDLE,
        requires=["opinion"],
        conditions=[*OWN, "media_if_required"],
        effects=[
            "attach_media:feedback",
            "stamp:handled_at",
            "create_task:check",
            "notify:inspector",
        ],
    ),
    _t(
        "return",
        "回退",
        ["dispatched"],
        "returned",
        permission=HANDLE,
        requires=["reason"],
        conditions=[*OWN, "return_allowed"],
        effects=["count_return", "clear_department"],
    ),
    _t(
        "request-return",
        "申请回退",
        ["dispatched"],
        None,
        permission=HANDLE,
        requires=["reason"],
        conditions=[*OWN, "return_forbidden", "no_pending:return"],
        effects=["request:return"],
    ),
    _t(
        "approve-return",
        "同意回退",
        ["dispatched"],
        "returned",
        permission=DISPATCH,
        conditions=["pending:return"],
        effects=["approve:return", "count_return", "clear_department"],
    ),
    _t(
        "refuse-return",
        "驳回回退",
        ["dispatched"],
        None,
        permission=DISPATCH,
        requires=["opinion"],
        conditions=["pending:return"],
        effects=["refuse:return"],
    ),
    _t(
        "request-extension",
        "申请延期",
        ["dispatched"],
        None,
        permission=HANDLE,
        requires=["reason", "minutes"],
        conditions=[*OWN, "no_pending:extension", "extension_allowed"],
        effects=["request:extension"],
    ),
    _t(
        "approve-extension",
        "同意延期",
        ["dispatched"],
        None,
        permission=DISPATCH,
        conditions=["pending:extension", "extension_ratio"],
        effects=["approve:extension"],
    ),
    _t(
        "refuse-extension",
        "驳回延期",
        ["dispatched"],
        None,
        permission=DISPATCH,
        requires=["opinion"],
        conditions=["pending:extension"],
        effects=["refuse:extension"],
    ),
    _t(
        "request-void",
        "申请作废",
        ["dispatched"],
        None,
        permission=HANDLE,
        requires=["reason"],
        conditions=[*OWN, "no_pending:void"],
        effects=["request:void"],
    ),
    _t(
        "request-void",
        "申请作废",
        ["registered", "returned"],
        None,
        permission=DISPATCH,
        requires=["reason"],
        conditions=["no_pending:void"],
        effects=["request:void"],
    ),
    _t(
        "approve-void",
        "同意作废",
        ["registered", "returned", "dispatched"],
        "voided",
        permission=SUPERVISE,
        conditions=["pending:void"],
        effects=["approve:void", "cancel_tasks"],
        opinion_type="授权",
    ),
    _t(
        "refuse-void",
        "驳回作废",
        ["registered", "returned", "dispatched"],
        None,
        permission=SUPERVISE,
        requires=["opinion"],
        conditions=["pending:void"],
        effects=["refuse:void"],
        opinion_type="授权",
    ),
    _t(
        "supervise",
        "督办",
        FILED,
        None,
        permission=SUPERVISE,
        requires=["reason", "days"],
        conditions=["not_supervised"],
        effects=["supervise", "notify:department"],
        opinion_type="督办",
    ),
    _t(
        "reply-supervision",
        "答复督办",
        FILED,
        None,
        permission=HANDLE,
        requires=["opinion"],
        conditions=[*OWN, "supervised"],
        effects=["reply_supervision"],
    ),
    _t(
        "hold",
        "挂账",
        LIVE,
        None,
        permission=DISPATCH,
        requires=["reason"],
        conditions=["not_on_hold"],
        effects=["hold"],
    ),
    _t(
        "unhold",
        "取消挂账",
        LIVE,
        None,
        permission=DISPATCH,
        conditions=["on_hold"],
        effects=["unhold"],
    ),
    # 核查, 补采, 结案, 返工
    _t(
        "check",
        "核查",
        ["handled"],
        "checked",
        permission=REPORT,
        requires=["result"],
        conditions=["own_task:check"],
        effects=["complete_task:check", "attach_media:supplement"],
    ),
    _t(
        "close",
        "结案",
        ["checked"],
        "closed",
        permission=SUPERVISE,
        requires=["opinion"],
        conditions=["check_passed"],
        effects=["stamp:closed_at", "cancel_tasks", "notify:reporter"],
    ),
    _t(
        "rework",
        "返工",
        ["handled", "checked"],
        "registered",
        permission=DISPATCH,
        requires=["opinion"],
        effects=["count_rework", "cancel_tasks"],
    ),
    _t(
        "request-supplement",
        "补采",
        LIVE,
        None,
        permission=CENTRE,
        requires=["opinion"],
        effects=["create_task:supplement", "notify:inspector"],
    ),
    _t(
        "supplement",
        "补采反馈",
        LIVE,
        None,
        permission=REPORT,
        requires=["media"],
        conditions=["own_task:supplement"],
        effects=["complete_task:supplement", "attach_media:supplement"],
    ),
    _t(
        "opinion",
        "填写意见",
        LIVE,
        None,
        permission=[ACCEPT, DISPATCH, HANDLE, SUPERVISE],
        requires=["opinion", "opinion_type"],
    ),
]


def default_definition() -> dict[str, Any]:
    """The GB/T 30428.8 definition (a fresh, JSON-serialisable copy)."""
    return copy.deepcopy(
        {
            "code": DEFAULT_CODE,
            "name": DEFAULT_NAME,
            "standard": "GB/T 30428.8-2020 数字化城市管理信息系统 第8部分：立案、处置和结案",
            "initial_stage": "reported",
            "stages": STAGES,
            "transitions": TRANSITIONS,
            "rules": RULE_DEFAULTS,
        }
    )


def stage_statuses(definition: dict[str, Any] | None = None) -> dict[str, str]:
    """Stage code → analysis status (待受理 … 结案, or a terminal label)."""
    stages = (definition or default_definition())["stages"]
    return {s["code"]: s["status"] for s in stages}
