"""Vehicle-level checks run after the fence steps of every fix (an engine ``Observer``).

- trips: leaving a 工地/中转场 opens a trip (loaded), entering a 消纳场/中转场 closes it; a
  消纳场 no valid binding allows for the trip's origin is an unapproved disposal (非核准消纳);
- off-corridor (偏离路线): loaded, outside every corridor of the vehicle's routes and outside
  every site for the corridor's dwell time;
- speeding (超速): above min(vehicle class limit, road limit by grade, zone limit) × tolerance
  for consecutive fixes;
- suspected dumping (疑似偷倒乱倒): stopped (slow, within a radius) for N minutes outside any
  site while loaded;
- unsealed transport (未密闭运输): the lid sensor reports open while loaded, outside sites.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import shapely
from shapely import STRtree

from spatial.geofence.engine import FixContext, Signal
from spatial.geofence.fences import LOADING_SITES, UNLOADING_SITES, Fence
from spatial.geofence.schedule import TZ

# Truck limits by road grade (1 主干道, 2 次干道, 3 支路), km/h, for 渣土车 in the urban area.
GRADE_LIMITS_KMH: dict[int, float] = {1: 50.0, 2: 40.0, 3: 30.0}


@dataclass(frozen=True)
class MonitorSettings:
    """Thresholds of the vehicle-level checks."""

    speed_tolerance: float = 1.1
    speeding_min_fixes: int = 2
    road_match_m: float = 25.0
    stop_speed_kmh: float = 3.0
    stop_radius_m: float = 50.0
    stop_minutes: float = 10.0
    dumping_requires_load: bool = True
    corridor_dwell_s: int = 60


@dataclass
class Watch:
    """One vehicle's monitor state (JSON in ``vehicle_watch.state``)."""

    trip_site: int | None = None
    trip_since: datetime | None = None
    stop_since: datetime | None = None
    stop_x: float | None = None
    stop_y: float | None = None
    stop_lon: float | None = None
    stop_lat: float | None = None
    stop_alarmed: bool = False
    speed_since: datetime | None = None
    speed_count: int = 0
    speed_max: float = 0.0
    speed_alarmed: bool = False
    corridor_since: datetime | None = None
    corridor_alarmed: bool = False
    unsealed_alarmed: bool = False

    def to_json(self) -> dict[str, Any]:
        """JSON-ready dict (datetimes as ISO strings, defaults left out)."""
        out: dict[str, Any] = {}
        for key, value in self.__dict__.items():
            if value is None or value is False or value == 0:
                continue
            out[key] = value.isoformat() if isinstance(value, datetime) else value
        return out

    @classmethod
    def from_json(cls, raw: dict[str, Any] | None) -> Watch:
        """Inverse of ``to_json``."""
        w = cls()
        for key, value in (raw or {}).items():
            if not hasattr(w, key):
                continue
            if key.endswith("_since") and isinstance(value, str):
                value = datetime.fromisoformat(value)
            setattr(w, key, value)
        return w


@dataclass
class RoadIndex:
    """Roads in metres with their truck speed limits."""

    geoms: list[Any]
    limits: list[float]

    def __post_init__(self) -> None:
        self.tree = STRtree(np.array(self.geoms, dtype=object)) if self.geoms else None
        self.lowest = min(self.limits) if self.limits else math.inf

    def limit(self, x: float, y: float, within: float) -> float | None:
        """The highest limit among roads within ``within`` m (benefit of the doubt)."""
        if self.tree is None:
            return None
        hits = self.tree.query(shapely.points(x, y), predicate="dwithin", distance=within)
        return max((self.limits[i] for i in hits), default=None)


@dataclass
class Monitor:
    """The vehicle-level observer; ``watches`` is keyed by vehicle id."""

    roads: RoadIndex = field(default_factory=lambda: RoadIndex([], []))
    settings: MonitorSettings = field(default_factory=MonitorSettings)
    watches: dict[int, Watch] = field(default_factory=dict)

    def observe(self, ctx: FixContext) -> list[Signal]:
        """Run every check for one fix."""
        w = self.watches.setdefault(ctx.fix.vehicle_id, Watch())
        out: list[Signal] = []
        in_site = ctx.in_site()
        out += self._trip(ctx, w)
        out += self._corridor(ctx, w, in_site)
        out += self._speeding(ctx, w)
        out += self._stop(ctx, w, in_site)
        out += self._seal(ctx, w, in_site)
        return out

    @staticmethod
    def _signal(ctx: FixContext, kind: str, phase: str, at: datetime, **details: Any) -> Signal:
        lon = details.pop("lon", ctx.fix.lon)
        lat = details.pop("lat", ctx.fix.lat)
        fence_id = details.pop("fence_id", None)
        return Signal(
            kind, ctx.fix.vehicle_id, phase, at, lon, lat, fence_id, details, ctx.fix.received_at
        )

    def _trip(self, ctx: FixContext, w: Watch) -> list[Signal]:
        out = []
        for e in sorted(ctx.events, key=lambda e: e.at):
            n = ctx.fences.by_id.get(e.fence_id)
            fence: Fence | None = ctx.fences.fences[n] if n is not None else None
            if fence is None or fence.kind != "site" or fence.site_id is None:
                continue
            if e.kind == "exit" and fence.site_kind in LOADING_SITES:
                w.trip_site, w.trip_since = fence.site_id, e.at
            elif e.kind == "enter" and fence.site_kind in UNLOADING_SITES:
                day = e.at.astimezone(TZ).date()
                loaded = w.trip_site is not None
                if fence.site_kind == "消纳场" and loaded:
                    if not ctx.vehicle.approved(w.trip_site, fence.site_id, day):
                        out.append(
                            self._signal(
                                ctx,
                                "unapproved_disposal",
                                "point",
                                e.at,
                                lon=e.lon,
                                lat=e.lat,
                                site=fence.name,
                                site_id=fence.site_id,
                                origin_site_id=w.trip_site,
                            )
                        )
                w.trip_site, w.trip_since = None, None
        return out

    def _corridor(self, ctx: FixContext, w: Watch, in_site: bool) -> list[Signal]:
        corridors = [
            ctx.fences.fences[n]
            for r in ctx.vehicle.route_ids
            for n in ctx.fences.corridors_by_route.get(r, ())
        ]
        t = ctx.fix.time
        off = (
            w.trip_site is not None
            and bool(corridors)
            and not in_site
            and not any((st := ctx.states.get(c.id)) and st.inside for c in corridors)
        )
        if not off:
            w.corridor_since = None
            if w.corridor_alarmed:
                w.corridor_alarmed = False
                return [self._signal(ctx, "off_corridor", "end", t)]
            return []
        w.corridor_since = w.corridor_since or t
        dwell = max([c.dwell_s for c in corridors] + [self.settings.corridor_dwell_s])
        if not w.corridor_alarmed and t - w.corridor_since >= timedelta(seconds=dwell):
            w.corridor_alarmed = True
            routes = sorted({c.route_id for c in corridors if c.route_id is not None})
            return [self._signal(ctx, "off_corridor", "start", w.corridor_since, routes=routes)]
        return []

    def _limit(self, ctx: FixContext) -> float | None:
        limits = [f.speed_limit_kmh for f in ctx.inside() if f.speed_limit_kmh]
        if ctx.vehicle.speed_limit_kmh:
            limits.append(ctx.vehicle.speed_limit_kmh)
        road = self.roads.limit(ctx.x, ctx.y, self.settings.road_match_m)
        if road is not None:
            limits.append(road)
        return min(limits) if limits else None

    def _speeding(self, ctx: FixContext, w: Watch) -> list[Signal]:
        speed, t = ctx.fix.speed_kmh, ctx.fix.time
        tol = self.settings.speed_tolerance
        fast = False
        limit = None
        vehicle_limit = ctx.vehicle.speed_limit_kmh or math.inf
        floor = min(self.roads.lowest, ctx.fences.lowest_limit, vehicle_limit)
        if speed is not None and speed > floor * tol:
            limit = self._limit(ctx)
            fast = limit is not None and speed > limit * tol
        if not fast:
            w.speed_since, w.speed_count, w.speed_max = None, 0, 0.0
            if w.speed_alarmed:
                w.speed_alarmed = False
                return [self._signal(ctx, "speeding", "end", t)]
            return []
        w.speed_since = w.speed_since or t
        w.speed_count += 1
        w.speed_max = max(w.speed_max, float(speed or 0))
        if not w.speed_alarmed and w.speed_count >= self.settings.speeding_min_fixes:
            w.speed_alarmed = True
            return [
                self._signal(
                    ctx, "speeding", "start", w.speed_since, limit_kmh=limit, speed_kmh=w.speed_max
                )
            ]
        return []

    def _stop(self, ctx: FixContext, w: Watch, in_site: bool) -> list[Signal]:
        s, t = self.settings, ctx.fix.time
        speed = ctx.fix.speed_kmh
        moved = (
            w.stop_x is None
            or math.hypot(ctx.x - w.stop_x, ctx.y - (w.stop_y or 0.0)) > s.stop_radius_m
            or (speed is not None and speed > s.stop_speed_kmh)
        )
        if moved:
            out = []
            if w.stop_alarmed:
                out.append(self._signal(ctx, "dumping", "end", t))
            w.stop_x, w.stop_y, w.stop_since, w.stop_alarmed = ctx.x, ctx.y, t, False
            w.stop_lon, w.stop_lat = ctx.fix.lon, ctx.fix.lat
            return out
        loaded = w.trip_site is not None or not s.dumping_requires_load
        since = w.stop_since or t
        if w.stop_alarmed or in_site or not loaded:
            return []
        if t - since >= timedelta(minutes=s.stop_minutes):
            w.stop_alarmed = True
            minutes = round((t - since).total_seconds() / 60, 1)
            return [
                self._signal(
                    ctx,
                    "dumping",
                    "start",
                    since,
                    lon=w.stop_lon,
                    lat=w.stop_lat,
                    stopped_minutes=minutes,
                    origin_site_id=w.trip_site,
                )
            ]
        return []

    def _seal(self, ctx: FixContext, w: Watch, in_site: bool) -> list[Signal]:
        t = ctx.fix.time
        unsealed = (
            ctx.vehicle.sealed_capable
            and ctx.fix.sealed is False
            and w.trip_site is not None
            and not in_site
        )
        if unsealed and not w.unsealed_alarmed:
            w.unsealed_alarmed = True
            return [self._signal(ctx, "unsealed", "start", t, origin_site_id=w.trip_site)]
        ended = w.trip_site is None or in_site or ctx.fix.sealed is True
        if w.unsealed_alarmed and ended:
            w.unsealed_alarmed = False
            return [self._signal(ctx, "unsealed", "end", t)]
        return []
