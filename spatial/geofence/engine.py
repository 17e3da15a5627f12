"""The geofence state machine: consecutive-fix segments → fence events and alarm signals.

Per (vehicle, fence) pair the engine keeps ``PairState`` (inside, since, a pending transition
and whether the fence's alarm is raised). Entering needs the fix ``hysteresis_m`` deep inside
the fence, leaving needs it that far outside (two-sided hysteresis); either transition is
confirmed only when it still holds ``dwell_s`` seconds later. A segment that passes through a
fence while both of its fixes are outside is a ``cross`` (fence jump between two fixes).

The core is synchronous and pure (``Engine.run``); the caller loads and saves state, so a
restart resumes where it stopped (``geofence_state`` / ``vehicle_watch``).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

import numpy as np

from spatial.crs import transform
from spatial.geofence.applicability import VehicleInfo
from spatial.geofence.evaluate import Facts, Segments
from spatial.geofence.fences import METRIC_SRID, Fence, FenceSet

GEO_SRID = 4490


@dataclass(frozen=True)
class Fix:
    """One accepted position fix (CGCS2000 lon/lat)."""

    vehicle_id: int
    time: datetime
    lon: float
    lat: float
    speed_kmh: float | None = None
    received_at: datetime | None = None
    sealed: bool | None = None


@dataclass
class PairState:
    """Where a vehicle stands with one fence."""

    inside: bool = False
    since: datetime | None = None
    pending_since: datetime | None = None
    last_fix_time: datetime | None = None
    alarmed: bool = False

    @property
    def idle(self) -> bool:
        """Outside with nothing pending: no need to keep the row."""
        return not self.inside and self.pending_since is None and not self.alarmed


@dataclass(frozen=True)
class FenceEvent:
    """A confirmed transition: enter, exit, cross (jump between fixes) or inside_too_long."""

    vehicle_id: int
    fence_id: int
    kind: str
    at: datetime
    lon: float
    lat: float


@dataclass(frozen=True)
class Signal:
    """An alarm condition starting, ending or happening at once (``point``)."""

    kind: str
    vehicle_id: int
    phase: str
    at: datetime
    lon: float
    lat: float
    fence_id: int | None = None
    details: dict[str, Any] = field(default_factory=dict)
    received_at: datetime | None = None


@dataclass
class FixContext:
    """What observers (vehicle-level checks) see after the fence steps of one fix."""

    fix: Fix
    prev: Fix | None
    x: float
    y: float
    vehicle: VehicleInfo
    fences: FenceSet
    states: dict[int, PairState]
    events: list[FenceEvent]

    def in_site(self) -> bool:
        """True when the fix is inside a site fence, confirmed or still within its dwell."""
        for fence_id, st in self.states.items():
            n = self.fences.by_id.get(fence_id)
            if n is not None and self.fences.fences[n].kind == "site":
                if st.inside or st.pending_since is not None:
                    return True
        return False

    def inside(self, kind: str | None = None) -> list[Fence]:
        """Fences the vehicle is confirmed inside (optionally of one kind)."""
        out = []
        for fence_id, st in self.states.items():
            n = self.fences.by_id.get(fence_id)
            if st.inside and n is not None:
                fence = self.fences.fences[n]
                if kind is None or fence.kind == kind:
                    out.append(fence)
        return out


class Observer(Protocol):
    """Vehicle-level checks run after every fix (speeding, stops, corridor…)."""

    def observe(self, ctx: FixContext) -> list[Signal]:
        """Signals for this fix."""
        ...


@dataclass
class Outcome:
    """What one batch produced."""

    events: list[FenceEvent] = field(default_factory=list)
    signals: list[Signal] = field(default_factory=list)
    fixes: list[Fix] = field(default_factory=list)  # accepted (in order), stale ones dropped
    last: dict[int, Fix] = field(default_factory=dict)


def applies(fence: Fence, vehicle: VehicleInfo) -> bool:
    """True when the fence concerns the vehicle (corridors: vehicles bound to the route)."""
    if fence.kind == "corridor" and fence.route_id is not None:
        if fence.route_id not in vehicle.route_ids:
            return False
    return fence.applicability.applies(vehicle)


def to_metres(lon: Sequence[float], lat: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """CGCS2000 lon/lat → EPSG:4528 metres."""
    x, y = transform(np.asarray(lon, float), np.asarray(lat, float), GEO_SRID, METRIC_SRID)
    return np.asarray(x, float), np.asarray(y, float)


def to_lonlat(x: float, y: float) -> tuple[float, float]:
    """EPSG:4528 metres → CGCS2000 lon/lat."""
    lon, lat = transform(x, y, METRIC_SRID, GEO_SRID)
    return float(lon), float(lat)


FactsFn = Callable[[FenceSet, Segments], Facts]


@dataclass
class Engine:
    """Runs batches of fixes through fences and observers."""

    fences: FenceSet
    observers: tuple[Observer, ...] = ()

    def segments(self, fixes: list[Fix], last: dict[int, Fix]) -> tuple[Segments, list[Fix | None]]:
        """Each fix's segment from its vehicle's previous accepted fix."""
        prevs: list[Fix | None] = []
        seen: dict[int, Fix] = dict(last)
        for fix in fixes:
            prevs.append(seen.get(fix.vehicle_id))
            seen[fix.vehicle_id] = fix
        x1, y1 = to_metres([f.lon for f in fixes], [f.lat for f in fixes])
        p = [pr or fx for pr, fx in zip(prevs, fixes, strict=True)]
        x0, y0 = to_metres([f.lon for f in p], [f.lat for f in p])
        return Segments(x0, y0, x1, y1), prevs

    @staticmethod
    def accept(fixes: Iterable[Fix], last: dict[int, Fix]) -> list[Fix]:
        """Fixes in (vehicle, time) order, dropping duplicates and ones older than the state."""
        out: list[Fix] = []
        newest = {v: f.time for v, f in last.items()}
        for fix in sorted(fixes, key=lambda f: (f.vehicle_id, f.time)):
            top = newest.get(fix.vehicle_id)
            if top is not None and fix.time <= top:
                continue
            newest[fix.vehicle_id] = fix.time
            out.append(fix)
        return out

    def run(
        self,
        fixes: list[Fix],
        segments: Segments,
        prevs: list[Fix | None],
        facts: Facts,
        states: dict[int, dict[int, PairState]],
        vehicles: dict[int, VehicleInfo],
    ) -> Outcome:
        """Step every accepted fix (already ordered by ``accept``) through its fences."""
        by_seg: dict[int, list[tuple[int, bool, bool, bool]]] = defaultdict(list)
        for s, f, ei, eo, cr in zip(
            facts.segment.tolist(),
            facts.fence.tolist(),
            facts.end_inner.tolist(),
            facts.end_outer.tolist(),
            facts.cross.tolist(),
            strict=True,
        ):
            by_seg[s].append((f, ei, eo, cr))
        out = Outcome(fixes=fixes)
        xs0, ys0 = segments.x0.tolist(), segments.y0.tolist()
        xs1, ys1 = segments.x1.tolist(), segments.y1.tolist()
        for k, fix in enumerate(fixes):
            vehicle = vehicles.get(fix.vehicle_id) or VehicleInfo(fix.vehicle_id)
            vstates = states.setdefault(fix.vehicle_id, {})
            cands = {f: (ei, eo, cr) for f, ei, eo, cr in by_seg.get(k, ())}
            for fence_id, st in vstates.items():
                n = self.fences.by_id.get(fence_id)
                if n is not None and n not in cands and not st.idle:
                    cands[n] = (False, False, False)
            events: list[FenceEvent] = []
            seg = (xs0[k], ys0[k], xs1[k], ys1[k])
            for n, (ei, eo, cr) in cands.items():
                fence = self.fences.fences[n]
                if not applies(fence, vehicle):
                    continue
                st = vstates.setdefault(fence.id, PairState())
                step = _step(fence, st, fix, prevs[k], (ei, eo, cr), seg)
                events.extend(step[0])
                out.signals.extend(step[1])
            for fence_id in [f for f, st in vstates.items() if st.idle]:
                del vstates[fence_id]
            out.events.extend(events)
            ctx = FixContext(fix, prevs[k], seg[2], seg[3], vehicle, self.fences, vstates, events)
            for observer in self.observers:
                out.signals.extend(observer.observe(ctx))
            out.last[fix.vehicle_id] = fix
        return out


def _cross_point(
    fence: Fence, fix: Fix, prev: Fix | None, seg: tuple[float, float, float, float]
) -> tuple[datetime, float, float]:
    """Where and (interpolated) when a segment passes a fence.

    The segment's point nearest to the fence's representative point: cheap, and inside the
    crossing for compact fences.
    """
    x0, y0, x1, y1 = seg
    cx, cy = fence.centre or ((x0 + x1) / 2, (y0 + y1) / 2)
    dx, dy = x1 - x0, y1 - y0
    length2 = dx * dx + dy * dy
    frac = 0.5 if length2 == 0 else min(1.0, max(0.0, ((cx - x0) * dx + (cy - y0) * dy) / length2))
    start = prev.time if prev else fix.time
    at = start + (fix.time - start) * frac
    lon, lat = to_lonlat(x0 + frac * dx, y0 + frac * dy)
    return at, lon, lat


def _step(
    fence: Fence,
    st: PairState,
    fix: Fix,
    prev: Fix | None,
    facts: tuple[bool, bool, bool],
    seg: tuple[float, float, float, float],
) -> tuple[list[FenceEvent], list[Signal]]:
    """Advance one pair by one fix: transitions with hysteresis and dwell, then the rule."""
    end_inner, end_outer, cross = facts
    t = fix.time
    # a corridor's dwell is the off-corridor confirmation time, applied by the monitor
    dwell = timedelta(seconds=0 if fence.kind == "corridor" else fence.dwell_s)
    events: list[FenceEvent] = []
    signals: list[Signal] = []

    def event(kind: str, at: datetime, lon: float = fix.lon, lat: float = fix.lat) -> None:
        events.append(FenceEvent(fix.vehicle_id, fence.id, kind, at, lon, lat))

    if not st.inside:
        if end_inner:
            st.pending_since = st.pending_since or t
            if t - st.pending_since >= dwell:
                st.inside, st.since, st.pending_since = True, st.pending_since, None
                event("enter", st.since)
        else:
            visited = st.pending_since is not None  # a brief visit, shorter than the dwell
            st.pending_since = None
            if cross and not visited:
                at, lon, lat = _cross_point(fence, fix, prev, seg)
                event("cross", at, lon, lat)
    elif not end_outer:
        st.pending_since = st.pending_since or t
        if t - st.pending_since >= dwell:
            st.inside, st.since, st.pending_since = False, st.pending_since, None
            event("exit", st.since)
    else:
        st.pending_since = None
    st.last_fix_time = t
    if fence.alarm_kind:
        signals = _rule(fence, st, fix, events)
    return events, signals


def _rule(fence: Fence, st: PairState, fix: Fix, events: list[FenceEvent]) -> list[Signal]:
    """Alarm signals of the fence's own rule (schedule-aware)."""
    kind = str(fence.alarm_kind)
    details = {"fence": fence.name, "fence_kind": fence.kind}

    def signal(phase: str, at: datetime, lon: float, lat: float, **extra: Any) -> Signal:
        return Signal(
            kind,
            fix.vehicle_id,
            phase,
            at,
            lon,
            lat,
            fence.id,
            {**details, **extra},
            fix.received_at,
        )

    out: list[Signal] = []
    rule = "enter" if fence.kind in ("forbidden_road", "forbidden_zone") else fence.rule
    for e in events:
        if e.kind == "cross" and rule == "enter" and fence.schedule.active(e.at):
            out.append(signal("point", e.at, e.lon, e.lat, between_fixes=True))
        if e.kind == "exit" and rule == "exit" and fence.schedule.active(e.at):
            out.append(signal("point", e.at, e.lon, e.lat))
    if rule not in ("enter", "inside_max"):
        return out
    active = fence.schedule.active(fix.time)
    if st.alarmed and (not st.inside or not active):
        st.alarmed = False
        at = st.since if not st.inside and st.since else fix.time
        out.append(signal("end", at, fix.lon, fix.lat))
    elif st.inside and active and not st.alarmed and st.since is not None:
        start = st.since if fence.schedule.active(st.since) else fix.time
        if rule == "inside_max":
            limit = timedelta(minutes=fence.inside_max_minutes or 0)
            if fix.time - st.since < limit:
                return out
            start = max(start, st.since + limit)
        st.alarmed = True
        out.append(signal("start", start, fix.lon, fix.lat))
    return out
