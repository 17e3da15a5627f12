"""The decoded content of an input file: fields, records, CRS and encoding."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pyproj import CRS
from shapely import Geometry

from spatial.errors import FieldIssue


@dataclass
class Record:
    """One feature as read: 1-based number, raw properties, geometry (source CRS)."""

    number: int
    props: dict[str, Any]
    geometry: Geometry | None
    error: FieldIssue | None = None


@dataclass
class Source:
    """The decoded content of an input file."""

    driver: str
    fields: list[str]
    records: list[Record]
    crs: CRS | None = None
    encoding: str | None = None
    warnings: list[str] = field(default_factory=list)
    geometry_fields: tuple[str, ...] = ()
