"""Which vehicles a fence applies to (适用车辆).

JSON form stored in ``geofences.applicability``::

    {"vehicle_kinds": ["渣土车"], "vehicle_ids": [12, 13], "company_ids": [3]}

Every listed criterion must match (AND across members, OR inside a list); an absent or empty
member matches every vehicle, so ``{}`` applies to all. Corridors apply to the vehicles bound
(fleet_bindings) to their route in addition to these criteria.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

MEMBERS = ("vehicle_kinds", "vehicle_ids", "company_ids")


class ApplicabilityError(ValueError):
    """A malformed applicability document; ``field`` names the member."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True)
class Binding:
    """An approved 工地 → 消纳场 (→ 路线) binding of a vehicle, with validity."""

    site_id: int
    disposal_site_id: int
    route_id: int | None = None
    valid_from: date = date.min
    valid_to: date = date.max

    def valid(self, day: date) -> bool:
        """True on the days the binding is valid."""
        return self.valid_from <= day <= self.valid_to


@dataclass(frozen=True)
class VehicleInfo:
    """What the engine knows about a vehicle: kind, company, limits, approved bindings."""

    id: int
    kind: str | None = None
    company_id: int | None = None
    plate: str | None = None
    speed_limit_kmh: float | None = None
    sealed_capable: bool = False
    bindings: tuple[Binding, ...] = ()
    route_ids: frozenset[int] = field(default_factory=frozenset)

    def approved(self, site_id: int | None, disposal_site_id: int, day: date) -> bool:
        """True when a valid binding allows this origin → disposal (any origin if None)."""
        return any(
            b.disposal_site_id == disposal_site_id
            and (site_id is None or b.site_id == site_id)
            and b.valid(day)
            for b in self.bindings
        )


@dataclass(frozen=True)
class Applicability:
    """Criteria a vehicle must meet."""

    vehicle_kinds: frozenset[str] = frozenset()
    vehicle_ids: frozenset[int] = frozenset()
    company_ids: frozenset[int] = frozenset()

    def applies(self, vehicle: VehicleInfo) -> bool:
        """True when the fence applies to ``vehicle``."""
        if self.vehicle_ids and vehicle.id not in self.vehicle_ids:
            return False
        if self.vehicle_kinds and vehicle.kind not in self.vehicle_kinds:
            return False
        return not self.company_ids or vehicle.company_id in self.company_ids


EVERYONE = Applicability()


def parse_applicability(raw: dict[str, Any] | None) -> Applicability:
    """Validate and parse an applicability document (raises ``ApplicabilityError``)."""
    if not raw:
        return EVERYONE
    if not isinstance(raw, dict):
        raise ApplicabilityError("applicability", "must be an object")
    unknown = set(raw) - set(MEMBERS)
    if unknown:
        raise ApplicabilityError("applicability", f"unknown members {sorted(unknown)}")
    kinds = raw.get("vehicle_kinds") or []
    if not isinstance(kinds, list) or not all(isinstance(k, str) for k in kinds):
        raise ApplicabilityError("applicability.vehicle_kinds", "must be a list of strings")
    ids: dict[str, frozenset[int]] = {}
    for name in ("vehicle_ids", "company_ids"):
        values = raw.get(name) or []
        ok = isinstance(values, list) and all(
            isinstance(v, int) and not isinstance(v, bool) for v in values
        )
        if not ok:
            raise ApplicabilityError(f"applicability.{name}", "must be a list of integers")
        ids[name] = frozenset(values)
    return Applicability(frozenset(kinds), ids["vehicle_ids"], ids["company_ids"])
