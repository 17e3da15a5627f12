"""Cases (案卷) skeleton: a located problem report; the workflow lands with its own issue."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, DateTime, ForeignKey, String, Text, func
from sqlalchemy.orm import Mapped, mapped_column

from spatial.models.base import Base, geom, h3_cell


class Case(Base):
    """A case about an event (事件) or a component (部件) in a unit grid."""

    __tablename__ = "cases"
    __table_args__ = (CheckConstraint("category IN ('事件', '部件')", name="category"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    case_no: Mapped[str] = mapped_column(String(30), unique=True, comment="案卷号")
    idempotency_key: Mapped[str | None] = mapped_column(
        String(80), unique=True, comment="client report key"
    )
    source: Mapped[str] = mapped_column(String(20), comment="受理来源")
    category: Mapped[str] = mapped_column(String(4), comment="事件/部件")
    class_code: Mapped[str] = mapped_column(String(10), index=True, comment="大小类代码")
    part_code: Mapped[str | None] = mapped_column(ForeignKey("parts.code"), index=True)
    description: Mapped[str] = mapped_column(Text, comment="问题描述")
    location_desc: Mapped[str | None] = mapped_column(String(200), comment="位置描述")
    status: Mapped[str] = mapped_column(String(10), default="待受理", comment="状态")
    grid_code: Mapped[str | None] = mapped_column(ForeignKey("unit_grids.code"), index=True)
    responsibility_grid_code: Mapped[str | None] = mapped_column(
        ForeignKey("responsibility_grids.code"), index=True
    )
    department_code: Mapped[str | None] = mapped_column(
        ForeignKey("departments.code"), index=True, comment="处置部门"
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
    h3: Mapped[int | None] = h3_cell()
    geom: Mapped[object] = geom("POINT")
