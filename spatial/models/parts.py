"""City components (城市部件): the GB/T 30428.2 census layer, one point per component."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    ForeignKeyConstraint,
    Integer,
    String,
)
from sqlalchemy.orm import Mapped, mapped_column

from spatial.models.base import Base, digits, geom, h3_cell

PART_STATUSES = ("完好", "破损", "丢失", "占用", "废弃")


class Part(Base):
    """A component; ``code`` = 10-digit class code + 6-digit sequence (标识码)."""

    __tablename__ = "parts"
    __table_args__ = (
        CheckConstraint("code ~ '^[0-9]{16}$'", name="code_digits"),
        CheckConstraint("class_code = county_code || major_code || minor_code", name="class"),
        CheckConstraint("left(code, 10) = class_code", name="code_class"),
        CheckConstraint(f"status IN {PART_STATUSES!r}", name="status"),
        ForeignKeyConstraint(
            ["major_code", "minor_code"],
            ["component_classes.major_code", "component_classes.minor_code"],
        ),
    )

    code: Mapped[str] = digits(16, primary_key=True, comment="标识码")
    class_code: Mapped[str] = digits(10, index=True, comment="部件分类代码")
    county_code: Mapped[str] = digits(6, comment="行政区划代码")
    major_code: Mapped[str] = digits(2, comment="大类代码")
    minor_code: Mapped[str] = digits(2, comment="小类代码")
    name: Mapped[str] = mapped_column(String(50), comment="名称")
    department: Mapped[str] = mapped_column(String(60), comment="主管部门")
    owner: Mapped[str | None] = mapped_column(String(60), comment="权属单位")
    maintainer: Mapped[str | None] = mapped_column(String(60), comment="养护单位")
    grid_code: Mapped[str] = mapped_column(
        ForeignKey("unit_grids.code"), index=True, comment="所在单元网格"
    )
    status: Mapped[str] = mapped_column(String(4), default="完好", comment="状态")
    initial_time: Mapped[datetime] = mapped_column(DateTime(timezone=True), comment="初始时间")
    change_time: Mapped[datetime | None] = mapped_column(
        DateTime(timezone=True), comment="变更时间"
    )
    data_source: Mapped[str] = mapped_column(String(30), comment="数据来源")
    location_desc: Mapped[str | None] = mapped_column(String(200), comment="位置描述")
    currency_date: Mapped[date | None] = mapped_column(Date, comment="现势性")
    scale_denominator: Mapped[int | None] = mapped_column(Integer, comment="源比例尺分母")
    note: Mapped[str | None] = mapped_column(String(200), comment="备注")
    photo_url: Mapped[str | None] = mapped_column(String(300), comment="照片")
    h3: Mapped[int | None] = h3_cell()
    geom: Mapped[object] = geom("POINT")
