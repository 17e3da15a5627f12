"""Classification catalogues of GB/T 30428.2: components (部件) and events (事件)."""

from __future__ import annotations

from sqlalchemy import Boolean, CheckConstraint, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from spatial.models.base import Base, digits


def _class_checks() -> tuple[CheckConstraint, ...]:
    """Fresh constraint objects for one catalogue table."""
    return (
        CheckConstraint("major_code ~ '^[0-9]{2}$'", name="major_digits"),
        CheckConstraint("minor_code ~ '^[0-9]{2}$'", name="minor_digits"),
        CheckConstraint("disposal_hours > 0", name="disposal_positive"),
    )


class _ClassColumns:
    """Columns shared by both catalogues."""

    major_code: Mapped[str] = digits(2, primary_key=True, comment="大类代码")
    minor_code: Mapped[str] = digits(2, primary_key=True, comment="小类代码")
    major_name: Mapped[str] = mapped_column(String(20), comment="大类名称")
    minor_name: Mapped[str] = mapped_column(String(40), comment="小类名称")
    department: Mapped[str] = mapped_column(String(60), comment="主管部门")
    disposal_hours: Mapped[int] = mapped_column(Integer, comment="处置时限(小时)")
    is_extension: Mapped[bool] = mapped_column(Boolean, default=False, comment="扩充小类(80-99)")


class ComponentClass(_ClassColumns, Base):
    """Component class (部件大类/小类) with its department and disposal time limit."""

    __tablename__ = "component_classes"
    __table_args__ = _class_checks()

    geometry_type: Mapped[str] = mapped_column(String(10), comment="point/line/polygon")


class EventClass(_ClassColumns, Base):
    """Event class (事件大类/小类) with its department and disposal time limit."""

    __tablename__ = "event_classes"
    __table_args__ = _class_checks()
