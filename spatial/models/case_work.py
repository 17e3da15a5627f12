"""What surrounds a case: workflow definitions, rules, timers, tasks, requests, media, outbox."""

from __future__ import annotations

from datetime import date, datetime, time
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Integer,
    SmallInteger,
    String,
    Text,
    Time,
    UniqueConstraint,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from spatial.models.base import Base, geom


def _now() -> Mapped[datetime]:
    return mapped_column(DateTime(timezone=True), server_default=func.now())


class WorkflowDefinition(Base):
    """A workflow (工作流定义): stages, participants by post, transitions, rules, as JSON."""

    __tablename__ = "workflow_definitions"

    code: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(60))
    description: Mapped[str | None] = mapped_column(Text)
    definition: Mapped[Any] = mapped_column(JSONB, comment="stages, transitions, rules")
    is_default: Mapped[bool] = mapped_column(Boolean, default=False)
    updated_at: Mapped[datetime] = _now()


class CaseTypeWorkflow(Base):
    """Links a case type (category, optionally a major/minor class) to a workflow."""

    __tablename__ = "case_type_workflows"
    __table_args__ = (
        UniqueConstraint("category", "major_code", "minor_code", name="type"),
        CheckConstraint("category IN ('事件', '部件')", name="category"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    category: Mapped[str] = mapped_column(String(4))
    major_code: Mapped[str | None] = mapped_column(String(2), comment="NULL = any major")
    minor_code: Mapped[str | None] = mapped_column(String(2), comment="NULL = any minor")
    workflow_code: Mapped[str] = mapped_column(
        ForeignKey("workflow_definitions.code", ondelete="CASCADE")
    )


class StageTimeLimit(Base):
    """Time limit (时限) of one timed stage for a class (NULL major/minor = default)."""

    __tablename__ = "stage_time_limits"
    __table_args__ = (
        UniqueConstraint("category", "major_code", "minor_code", "stage", name="key"),
        CheckConstraint("limit_minutes > 0", name="positive"),
        CheckConstraint("calendar IN ('working', 'natural')", name="calendar"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    category: Mapped[str | None] = mapped_column(String(4), comment="NULL = both")
    major_code: Mapped[str | None] = mapped_column(String(2))
    minor_code: Mapped[str | None] = mapped_column(String(2))
    stage: Mapped[str] = mapped_column(String(30), comment="timed stage code")
    limit_minutes: Mapped[int] = mapped_column(Integer)
    calendar: Mapped[str] = mapped_column(String(8), default="working", comment="工作日/自然日")
    max_extensions: Mapped[int] = mapped_column(SmallInteger, default=1, comment="最多延期次数")
    extendable: Mapped[bool] = mapped_column(Boolean, default=True)


class WorkCalendar(Base):
    """A day that differs from the Monday–Friday rule (法定节假日, 调休上班)."""

    __tablename__ = "work_calendar"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    is_workday: Mapped[bool] = mapped_column(Boolean)
    note: Mapped[str | None] = mapped_column(String(40))


class WorkPeriod(Base):
    """A working period of every working day (e.g. 08:30–12:00, 13:30–17:30)."""

    __tablename__ = "work_periods"
    __table_args__ = (CheckConstraint("end_time > start_time", name="order"),)

    id: Mapped[int] = mapped_column(SmallInteger, primary_key=True, autoincrement=True)
    start_time: Mapped[time] = mapped_column(Time)
    end_time: Mapped[time] = mapped_column(Time)


class DispatchRule(Base):
    """A line of the supervision manual (监督指挥手册): class + area → department."""

    __tablename__ = "dispatch_rules"
    __table_args__ = (CheckConstraint("category IN ('事件', '部件')", name="category"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    category: Mapped[str] = mapped_column(String(4))
    major_code: Mapped[str] = mapped_column(String(2))
    minor_code: Mapped[str | None] = mapped_column(String(2), comment="NULL = whole major")
    street_code: Mapped[str | None] = mapped_column(
        ForeignKey("streets.code"), comment="NULL = everywhere"
    )
    grid_code: Mapped[str | None] = mapped_column(
        ForeignKey("responsibility_grids.code"), comment="NULL = everywhere"
    )
    department_code: Mapped[str] = mapped_column(
        ForeignKey("departments.code", ondelete="CASCADE"), index=True
    )
    time_limit_hours: Mapped[int | None] = mapped_column(Integer, comment="处置时限")
    standard: Mapped[str | None] = mapped_column(Text, comment="处置标准/结案标准")
    automatic: Mapped[bool] = mapped_column(Boolean, default=False, comment="自动派遣")
    priority: Mapped[int] = mapped_column(Integer, default=100, comment="lower wins")


class StaffRoster(Base):
    """Who takes new work in turn (案件智能分配): acceptors and dispatchers on duty."""

    __tablename__ = "staff_roster"

    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    duty: Mapped[str] = mapped_column(String(20), primary_key=True, comment="accept/dispatch")
    seat_no: Mapped[int] = mapped_column(Integer, comment="座席号")
    on_duty: Mapped[bool] = mapped_column(Boolean, default=True)
    last_assigned_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class CaseTask(Base):
    """A field task (核实 verify, 核查 check, 补采 supplement) for an inspector."""

    __tablename__ = "case_tasks"
    __table_args__ = (
        CheckConstraint("kind IN ('verify', 'check', 'supplement')", name="kind"),
        CheckConstraint("state IN ('open', 'done', 'cancelled')", name="state"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    kind: Mapped[str] = mapped_column(String(12))
    state: Mapped[str] = mapped_column(String(10), default="open")
    assignee_user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    grid_code: Mapped[str | None] = mapped_column(String(20))
    requirement: Mapped[str | None] = mapped_column(Text, comment="核实/核查/补采要求")
    result: Mapped[str | None] = mapped_column(Text)
    due_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = _now()
    done_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class CaseRequest(Base):
    """A request awaiting approval: 延期 extension, 回退 return, 作废 void."""

    __tablename__ = "case_requests"
    __table_args__ = (
        CheckConstraint("kind IN ('extension', 'return', 'void')", name="kind"),
        CheckConstraint("state IN ('pending', 'approved', 'refused')", name="state"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    kind: Mapped[str] = mapped_column(String(10))
    state: Mapped[str] = mapped_column(String(10), default="pending")
    minutes: Mapped[int | None] = mapped_column(Integer, comment="requested extension")
    reason: Mapped[str] = mapped_column(Text)
    requested_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    decided_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    opinion: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = _now()
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Supervision(Base):
    """A leader's supervision (督办) of a case and the reply (答复督办)."""

    __tablename__ = "supervisions"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    days: Mapped[int] = mapped_column(Integer, comment="督办天数")
    reason: Mapped[str] = mapped_column(Text, comment="督办理由")
    opinion: Mapped[str | None] = mapped_column(Text, comment="督办意见")
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = _now()
    reply: Mapped[str | None] = mapped_column(Text, comment="答复")
    replied_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    replied_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class MediaBlob(Base):
    """Stored bytes, addressed by SHA-256 (one copy whatever how many cases use it)."""

    __tablename__ = "media_blobs"
    __table_args__ = (CheckConstraint("sha256 ~ '^[0-9a-f]{64}$'", name="sha256_hex"),)

    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    mime: Mapped[str] = mapped_column(String(60))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = _now()


class CaseMedia(Base):
    """A photo, recording or video attached to a case at one step."""

    __tablename__ = "case_media"
    __table_args__ = (
        CheckConstraint(
            "kind IN ('near', 'far', 'reference', 'before', 'after', 'feedback', "
            "'supplement', 'audio', 'video', 'other')",
            name="kind",
        ),
        UniqueConstraint("case_id", "sha256", "kind", name="once"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    sha256: Mapped[str] = mapped_column(ForeignKey("media_blobs.sha256"), index=True)
    kind: Mapped[str] = mapped_column(String(12), comment="近景/远景/参照物/处置前/处置后…")
    stage: Mapped[str | None] = mapped_column(String(30), comment="stage when attached")
    file_name: Mapped[str | None] = mapped_column(String(200))
    uploaded_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = _now()


class Notification(Base):
    """The outbox (消息发件箱): one row per message, delivered by a gateway."""

    __tablename__ = "notifications"
    __table_args__ = (CheckConstraint("state IN ('pending', 'sent', 'failed')", name="state"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(30), comment="arrival/expiring/overdue/task/…")
    case_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id"), index=True)
    recipient_user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    recipient_phone_enc: Mapped[str | None] = mapped_column(Text, comment="SM4")
    channel: Mapped[str] = mapped_column(String(10), default="sms")
    body: Mapped[str] = mapped_column(Text)
    dedupe_key: Mapped[str | None] = mapped_column(String(120), unique=True)
    state: Mapped[str] = mapped_column(String(10), default="pending", index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = _now()
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class SmsMessage(Base):
    """What the default (database) SMS gateway "sent" (业务短信)."""

    __tablename__ = "sms_messages"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    notification_id: Mapped[int | None] = mapped_column(
        ForeignKey("notifications.id", ondelete="SET NULL"), index=True
    )
    phone_mask: Mapped[str | None] = mapped_column(String(20))
    body: Mapped[str] = mapped_column(Text)
    sent_at: Mapped[datetime] = _now()


class InspectorPosition(Base):
    """An inspector's position fix from the field app (tracks kept)."""

    __tablename__ = "inspector_positions"
    __table_args__ = (UniqueConstraint("user_id", "device_time", name="fix"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    device_time: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    received_at: Mapped[datetime] = _now()
    accuracy_m: Mapped[float | None] = mapped_column(comment="定位精度")
    geom: Mapped[object] = geom("POINT")
