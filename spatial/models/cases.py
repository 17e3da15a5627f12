"""Cases (案卷): a located problem report moving through a workflow (GB/T 30428.8)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Computed,
    DateTime,
    ForeignKey,
    Integer,
    String,
    Text,
    func,
)
from sqlalchemy import false as sa_false
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from spatial.models.base import Base, geom, h3_cell

DEFAULT_WORKFLOW = "gbt30428_8"


def _flag(comment: str) -> Mapped[bool]:
    return mapped_column(Boolean, server_default=sa_false(), comment=comment)


def _count(comment: str, start: str = "0") -> Mapped[int]:
    return mapped_column(Integer, server_default=start, comment=comment)


class CaseSource(Base):
    """A source of cases (受理来源) and its class: 主动发现 / 被动发现 / 智能发现."""

    __tablename__ = "case_sources"
    __table_args__ = (
        CheckConstraint("source_class IN ('主动发现', '被动发现', '智能发现')", name="class"),
    )

    code: Mapped[str] = mapped_column(String(20), primary_key=True, comment="English code")
    name: Mapped[str] = mapped_column(String(30), unique=True, comment="来源名称")
    source_class: Mapped[str] = mapped_column(String(4), comment="来源类别")


class Case(Base):
    """A case about an event (事件) or a component (部件) in a unit grid.

    ``stage`` is the workflow stage (English code of the case's workflow definition);
    ``status`` its analysis state (待受理 … 结案, or a terminal label such as 不受理).
    ``version`` is bumped by every transition (optimistic concurrency).
    """

    __tablename__ = "cases"
    __table_args__ = (
        CheckConstraint("category IN ('事件', '部件')", name="category"),
        CheckConstraint("version > 0", name="version_positive"),
        CheckConstraint("class_code ~ '^[0-9]{10}$'", name="class_code_digits"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    case_no: Mapped[str] = mapped_column(String(30), unique=True, comment="案卷号/任务号")
    idempotency_key: Mapped[str | None] = mapped_column(
        String(80), unique=True, comment="client report key"
    )
    source: Mapped[str] = mapped_column(
        ForeignKey("case_sources.code"), index=True, comment="受理来源"
    )
    category: Mapped[str] = mapped_column(String(4), comment="事件/部件")
    class_code: Mapped[str] = mapped_column(
        String(10), index=True, comment="区县+大类+小类 (10 digits)"
    )
    major_code: Mapped[str] = mapped_column(
        String(2), Computed("substr(class_code, 7, 2)", persisted=True), comment="大类代码"
    )
    minor_code: Mapped[str] = mapped_column(
        String(2), Computed("substr(class_code, 9, 2)", persisted=True), comment="小类代码"
    )
    part_code: Mapped[str | None] = mapped_column(ForeignKey("parts.code"), index=True)
    description: Mapped[str] = mapped_column(Text, comment="问题描述")
    location_desc: Mapped[str | None] = mapped_column(String(200), comment="位置描述")
    road_name: Mapped[str | None] = mapped_column(String(60), comment="道路名称")
    level: Mapped[str] = mapped_column(String(10), server_default="一般", comment="案件等级")
    safety_issue: Mapped[bool] = _flag("安全问题标签")
    self_handled: Mapped[bool] = _flag("自行处置")
    workflow_code: Mapped[str] = mapped_column(
        ForeignKey("workflow_definitions.code"),
        server_default=DEFAULT_WORKFLOW,
        index=True,
        comment="工作流定义",
    )
    stage: Mapped[str] = mapped_column(
        String(30), server_default="reported", index=True, comment="workflow stage"
    )
    status: Mapped[str] = mapped_column(
        String(10), server_default="待受理", index=True, comment="状态"
    )
    version: Mapped[int] = _count("optimistic lock", start="1")
    on_hold: Mapped[bool] = _flag("挂账")
    supervised: Mapped[bool] = _flag("督办中")
    force_dispatched: Mapped[bool] = _flag("强制派遣")
    rework_count: Mapped[int] = _count("返工次数")
    return_count: Mapped[int] = _count("回退次数")
    extension_count: Mapped[int] = _count("缓办次数")
    extension_minutes: Mapped[int] = _count("缓办时间(分钟)")
    merged_into: Mapped[int | None] = mapped_column(
        ForeignKey("cases.id"), index=True, comment="合并到 (duplicate of)"
    )
    grid_code: Mapped[str | None] = mapped_column(ForeignKey("unit_grids.code"), index=True)
    responsibility_grid_code: Mapped[str | None] = mapped_column(
        ForeignKey("responsibility_grids.code"), index=True
    )
    street_code: Mapped[str | None] = mapped_column(ForeignKey("streets.code"), index=True)
    department_code: Mapped[str | None] = mapped_column(
        ForeignKey("departments.code"), index=True, comment="处置部门"
    )
    assignee_user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True, comment="当前经办人"
    )
    reporter_user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True, comment="上报人 (公众/监督员)"
    )
    reporter_name_enc: Mapped[str | None] = mapped_column(Text, comment="上报人姓名 (SM4)")
    reporter_name_mask: Mapped[str | None] = mapped_column(String(20), comment="上报人 (脱敏)")
    reporter_phone_enc: Mapped[str | None] = mapped_column(Text, comment="联系电话 (SM4)")
    reporter_phone_mask: Mapped[str | None] = mapped_column(String(20), comment="电话 (脱敏)")
    reporter_phone_bidx: Mapped[str | None] = mapped_column(String(64), index=True)
    reported_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), index=True
    )
    accepted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    registered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), index=True)
    dispatched_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    handled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), index=True)
    stage_started_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), comment="current stage since"
    )
    stage_deadline: Mapped[datetime | None] = mapped_column(
        DateTime(timezone=True), index=True, comment="current stage due (working time)"
    )
    handle_deadline: Mapped[datetime | None] = mapped_column(
        DateTime(timezone=True), comment="处置截止时间"
    )
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    h3: Mapped[int | None] = h3_cell()
    geom: Mapped[object] = geom("POINT")


class CaseHistory(Base):
    """One immutable step of a case's handling process (办理过程)."""

    __tablename__ = "case_history"
    __table_args__ = (
        CheckConstraint(
            "opinion_type IS NULL OR opinion_type IN ('授权', '督办', '征求', '疑难确权')",
            name="opinion_type",
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    action: Mapped[str] = mapped_column(String(30), comment="English action name")
    action_name: Mapped[str] = mapped_column(String(20), comment="操作动作")
    from_stage: Mapped[str | None] = mapped_column(String(30))
    to_stage: Mapped[str] = mapped_column(String(30))
    version: Mapped[int] = mapped_column(Integer, comment="case version after this step")
    actor_user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    actor_name: Mapped[str] = mapped_column(String(60), comment="经办人")
    actor_position: Mapped[str | None] = mapped_column(String(30), comment="岗位")
    department_code: Mapped[str | None] = mapped_column(String(20), comment="经办部门")
    opinion: Mapped[str | None] = mapped_column(Text, comment="意见")
    opinion_type: Mapped[str | None] = mapped_column(String(4), comment="意见类型")
    reason: Mapped[str | None] = mapped_column(Text, comment="原因")
    details: Mapped[dict | None] = mapped_column(JSONB, comment="action payload")
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), index=True
    )
