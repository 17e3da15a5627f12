"""The append-only, hash-chained audit trail (审计日志); rows are written by a trigger (0004)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ARRAY, BigInteger, DateTime, Index, Integer, LargeBinary, Text, func
from sqlalchemy.dialects.postgresql import INET, JSONB
from sqlalchemy.orm import Mapped, mapped_column

from spatial.models.base import Base


class AuditLog(Base):
    """One audit entry; never updated or deleted (see ``spatial.security.audit``)."""

    __tablename__ = "audit_log"
    __table_args__ = (
        Index("ix_audit_log_target_type_target_id", "target_type", "target_id"),
        {
            "comment": "审计日志: append-only, SM3 hash chain "
            "(hash = SM3(prev_hash || audit_payload(row)))"
        },
    )

    seq: Mapped[int] = mapped_column(
        BigInteger,
        primary_key=True,
        autoincrement=False,
        comment="gap-free chain position, set by the trigger",
    )
    at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.clock_timestamp(), index=True
    )
    actor: Mapped[str] = mapped_column(
        Text, index=True, comment="user name, anonymous or apikey:<prefix>"
    )
    actor_id: Mapped[int | None] = mapped_column(BigInteger)
    actor_kind: Mapped[str | None] = mapped_column(
        Text, comment="anonymous, user, api_key or system"
    )
    positions: Mapped[list[str] | None] = mapped_column(ARRAY(Text))
    ip: Mapped[str | None] = mapped_column(INET)
    user_agent: Mapped[str | None] = mapped_column(Text)
    action: Mapped[str] = mapped_column(Text, index=True)
    target_type: Mapped[str | None] = mapped_column(Text)
    target_id: Mapped[str | None] = mapped_column(Text)
    method: Mapped[str | None] = mapped_column(Text)
    path: Mapped[str | None] = mapped_column(Text)
    status: Mapped[int | None] = mapped_column(Integer)
    detail: Mapped[Any] = mapped_column(JSONB, nullable=True)
    before: Mapped[Any] = mapped_column(JSONB, nullable=True)
    after: Mapped[Any] = mapped_column(JSONB, nullable=True)
    prev_hash: Mapped[bytes] = mapped_column(
        LargeBinary, comment="hash of the previous row (genesis: 32 zeros)"
    )
    hash: Mapped[bytes] = mapped_column(LargeBinary, comment="SM3(prev_hash || audit_payload(row))")
