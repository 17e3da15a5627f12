"""Area and component codes of GB/T 30428 / the tender's 地理编码 tables, parsed and checked."""

from __future__ import annotations

import re
from dataclasses import dataclass

COUNTY_DIGITS = 6
_UNIT_GRID = re.compile(r"^(\d{6})(\d{3})(\d{3})(\d{3})$")
_EVALUATION_GRID = re.compile(r"^(\d{6})(\d{3})(\d{3})$")
_PART = re.compile(r"^(\d{6})(\d{2})(\d{2})(\d{6})$")


@dataclass(frozen=True)
class UnitGridCode:
    """15 digits: county + street + community + grid sequence."""

    county: str
    street: str
    community: str
    sequence: str

    @property
    def street_code(self) -> str:
        """The 9-digit street code."""
        return self.county + self.street

    @property
    def community_code(self) -> str:
        """The 12-digit community code."""
        return self.street_code + self.community


@dataclass(frozen=True)
class PartCode:
    """16 digits: 10-digit class code (county + major + minor) + 6-digit sequence."""

    county: str
    major: str
    minor: str
    sequence: str

    @property
    def class_code(self) -> str:
        """The 10-digit component class code."""
        return self.county + self.major + self.minor

    @property
    def is_extension(self) -> bool:
        """Minor classes 80–99 are local extensions."""
        return int(self.minor) >= 80


def parse_unit_grid(code: str) -> UnitGridCode:
    """Split a unit grid code or raise ``ValueError`` explaining the format."""
    m = _UNIT_GRID.match(code.strip())
    if not m:
        raise ValueError(f"unit grid code {code!r} must be 15 digits (6 county+3+3+3)")
    return UnitGridCode(*m.groups())


def parse_part(code: str) -> PartCode:
    """Split a component identifier or raise ``ValueError`` explaining the format."""
    m = _PART.match(code.strip())
    if not m:
        raise ValueError(f"component code {code!r} must be 16 digits (10-digit class + 6)")
    return PartCode(*m.groups())


def is_evaluation_grid(code: str) -> bool:
    """12 digits: county + street + 3-digit sequence."""
    return bool(_EVALUATION_GRID.match(code.strip()))
