"""Typed readers for the reference tables in ``data_samples/reference/*.csv``."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import cache
from pathlib import Path

REFERENCE_DIR = Path(__file__).resolve().parent / "reference"


def read_rows(name: str) -> list[dict[str, str]]:
    """Read one reference CSV as dictionaries (UTF-8)."""
    with (REFERENCE_DIR / name).open(encoding="utf-8", newline="") as fh:
        return [{k: (v or "").strip() for k, v in row.items()} for row in csv.DictReader(fh)]


def _flag(value: str) -> bool:
    return value.lower() in {"1", "true", "yes", "y", "t"}


@dataclass(frozen=True)
class ClassRef:
    """One component or event class of the GB/T 30428.2 catalogue."""

    major_code: str
    major_name: str
    minor_code: str
    minor_name: str
    department: str
    disposal_hours: int
    is_extension: bool
    geometry_type: str = "point"

    @property
    def code4(self) -> str:
        """Major + minor code (4 digits)."""
        return self.major_code + self.minor_code


@dataclass(frozen=True)
class StreetRef:
    """A street/town: 3-digit code within the county."""

    code: str
    name: str
    kind: str


@dataclass(frozen=True)
class CommunityRef:
    """A community: 3-digit code within its street."""

    street_name: str
    code: str
    name: str


@dataclass(frozen=True)
class CompoundRef:
    """A residential compound of the tender's drop-point list."""

    seq: int
    street: str
    name: str
    drop_points: int


@dataclass(frozen=True)
class RoadRef:
    """A road name with its usual direction (EW or NS)."""

    name: str
    kind: str
    direction: str


@dataclass(frozen=True)
class DepartmentRef:
    """An organisation."""

    code: str
    name: str
    kind: str
    phone: str


def _class_ref(row: dict[str, str]) -> ClassRef:
    return ClassRef(
        major_code=row["major_code"].zfill(2),
        major_name=row["major_name"],
        minor_code=row["minor_code"].zfill(2),
        minor_name=row["minor_name"],
        department=row["department"],
        disposal_hours=int(row["disposal_hours"]),
        is_extension=_flag(row["is_extension"]),
        geometry_type=row.get("geometry_type") or "point",
    )


@cache
def component_classes() -> tuple[ClassRef, ...]:
    """The component (部件) catalogue."""
    return tuple(_class_ref(r) for r in read_rows("component_classes.csv"))


@cache
def event_classes() -> tuple[ClassRef, ...]:
    """The event (事件) catalogue."""
    return tuple(_class_ref(r) for r in read_rows("event_classes.csv"))


@cache
def streets() -> tuple[StreetRef, ...]:
    """Streets of the district seat."""
    return tuple(
        StreetRef(r["code"].zfill(3), r["name"], r["kind"]) for r in read_rows("streets.csv")
    )


@cache
def communities() -> tuple[CommunityRef, ...]:
    """Communities per street."""
    return tuple(
        CommunityRef(r["street_name"], r["code"].zfill(3), r["name"])
        for r in read_rows("communities.csv")
    )


@cache
def compounds() -> tuple[CompoundRef, ...]:
    """The tender's compounds with their garbage drop-point counts."""
    return tuple(
        CompoundRef(int(r["seq"]), r["street"], r["name"], int(r["drop_points"] or 0))
        for r in read_rows("compounds.csv")
    )


@cache
def roads() -> tuple[RoadRef, ...]:
    """Road names."""
    return tuple(
        RoadRef(r["name"], r["kind"], r["direction"].upper()) for r in read_rows("roads.csv")
    )


@cache
def departments() -> tuple[DepartmentRef, ...]:
    """Organisations."""
    return tuple(
        DepartmentRef(r["code"], r["name"], r["kind"], r.get("phone", ""))
        for r in read_rows("departments.csv")
    )
