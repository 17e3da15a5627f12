"""Geocoding base (GB/T 30428.3): roads (街巷), compounds (地片/区片), buildings, plates, POIs."""

from __future__ import annotations

from sqlalchemy import CheckConstraint, Float, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from spatial.models.base import AreaAttributes, Base, geom, h3_cell


class Road(AreaAttributes, Base):
    """A named road or lane (街巷) as one multi-line."""

    __tablename__ = "roads"

    code: Mapped[str] = mapped_column(String(20), primary_key=True, comment="街巷标识码")
    name: Mapped[str] = mapped_column(String(50), index=True, comment="街巷名称")
    kind: Mapped[str] = mapped_column(String(10), comment="路/大道/街/巷")
    grade: Mapped[int] = mapped_column(Integer, comment="1 主干道 2 次干道 3 支路")
    length_m: Mapped[float] = mapped_column(Float)
    geom: Mapped[object] = geom("MULTILINESTRING")


class Compound(AreaAttributes, Base):
    """A residential compound or unit courtyard (小区/院落, 地片与区片)."""

    __tablename__ = "compounds"

    code: Mapped[str] = mapped_column(String(20), primary_key=True, comment="区片标识码")
    name: Mapped[str] = mapped_column(String(50), index=True, comment="名称")
    kind: Mapped[str] = mapped_column(String(10), comment="居民小区/单位/院落/功能区")
    street_code: Mapped[str] = mapped_column(ForeignKey("streets.code"), index=True)
    community_code: Mapped[str] = mapped_column(ForeignKey("communities.code"), index=True)
    drop_points: Mapped[int] = mapped_column(Integer, default=0, comment="垃圾投放点数量")
    geom: Mapped[object] = geom("MULTIPOLYGON")


class Building(Base):
    """A building (楼栋) inside a compound or along a road."""

    __tablename__ = "buildings"

    code: Mapped[str] = mapped_column(String(24), primary_key=True, comment="楼栋标识码")
    compound_code: Mapped[str | None] = mapped_column(ForeignKey("compounds.code"), index=True)
    name: Mapped[str] = mapped_column(String(50), comment="楼栋名称, e.g. 5栋")
    floors: Mapped[int] = mapped_column(Integer, comment="层数")
    geom: Mapped[object] = geom("POLYGON")


class Address(AreaAttributes, Base):
    """A door or building plate (门牌/楼牌) with its segmented standard address."""

    __tablename__ = "addresses"
    __table_args__ = (CheckConstraint("kind IN ('门牌', '楼牌')", name="kind"),)

    code: Mapped[str] = mapped_column(String(24), primary_key=True, comment="门楼牌标识码")
    kind: Mapped[str] = mapped_column(String(4), comment="门牌/楼牌")
    road_code: Mapped[str | None] = mapped_column(ForeignKey("roads.code"), index=True)
    compound_code: Mapped[str | None] = mapped_column(ForeignKey("compounds.code"), index=True)
    building_code: Mapped[str | None] = mapped_column(ForeignKey("buildings.code"))
    base_name: Mapped[str] = mapped_column(String(50), comment="门牌上的街巷/地片/区片名称")
    number: Mapped[int] = mapped_column(Integer, comment="顺序号")
    suffix: Mapped[str] = mapped_column(String(4), comment="号/栋/幢")
    standard_address: Mapped[str] = mapped_column(String(200), index=True, comment="标准地址")
    grid_code: Mapped[str] = mapped_column(ForeignKey("unit_grids.code"), index=True)
    community_code: Mapped[str] = mapped_column(ForeignKey("communities.code"), index=True)
    h3: Mapped[int | None] = h3_cell()
    geom: Mapped[object] = geom("POINT")


class Poi(AreaAttributes, Base):
    """A point of interest (兴趣点): shop, school, bus stop, bridge, square."""

    __tablename__ = "pois"

    code: Mapped[str] = mapped_column(String(24), primary_key=True, comment="兴趣点标识码")
    name: Mapped[str] = mapped_column(String(80), index=True, comment="名称")
    category: Mapped[str] = mapped_column(String(20), comment="类别")
    address_code: Mapped[str | None] = mapped_column(ForeignKey("addresses.code"))
    grid_code: Mapped[str] = mapped_column(ForeignKey("unit_grids.code"), index=True)
    h3: Mapped[int | None] = h3_cell()
    geom: Mapped[object] = geom("POINT")
