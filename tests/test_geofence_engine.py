"""The geofence engine's state machine, schedules, applicability and vehicle monitor (no DB).

Fences are built in EPSG:4528 metres around a point of Dafeng; fixes are placed by metre
offsets and converted back to CGCS2000 lon/lat, exactly as the pipeline does.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
import shapely

from spatial.geofence.applicability import (
    ApplicabilityError,
    Binding,
    VehicleInfo,
    parse_applicability,
)
from spatial.geofence.engine import Engine, Fix, Outcome, PairState, to_lonlat, to_metres
from spatial.geofence.evaluate import StrTreeEvaluator
from spatial.geofence.fences import Fence, FenceSet
from spatial.geofence.monitor import Monitor, MonitorSettings, RoadIndex
from spatial.geofence.schedule import TZ, ScheduleError, parse_schedule

X0, Y0 = (float(v[0]) for v in to_metres([120.47], [33.20]))
DAY = datetime(2026, 11, 24, 10, 0, tzinfo=TZ)  # a Tuesday
TRUCK = VehicleInfo(1, kind="渣土车", company_id=7, plate="苏J00001")


def fence(fid: int, geom: Any, hysteresis: float = 0.0, **kw: Any) -> Fence:
    """A fence whose inner/outer follow its hysteresis."""
    inner = geom.buffer(-hysteresis) if hysteresis else geom
    outer = geom.buffer(hysteresis) if hysteresis else geom
    return Fence(
        fid,
        kw.pop("kind", "polygon"),
        f"F{fid}",
        hysteresis_m=hysteresis,
        inner=inner,
        outer=outer,
        **kw,
    )


def square(cx: float, cy: float, half: float) -> Any:
    """A square in metres centred on an offset from the reference point."""
    return shapely.box(X0 + cx - half, Y0 + cy - half, X0 + cx + half, Y0 + cy + half)


def fix(dx: float, dy: float, at: datetime, vehicle: int = 1, **kw: Any) -> Fix:
    """A fix at a metre offset from the reference point."""
    lon, lat = to_lonlat(X0 + dx, Y0 + dy)
    return Fix(vehicle, at, lon, lat, **kw)


class World:
    """Fences, states and monitor kept across batches, as the pipeline keeps them in the DB."""

    def __init__(
        self,
        fences: list[Fence],
        vehicles: list[VehicleInfo] | None = None,
        monitor: Monitor | None = None,
    ) -> None:
        self.fences = FenceSet(fences)
        self.vehicles = {v.id: v for v in vehicles or [TRUCK]}
        self.states: dict[int, dict[int, PairState]] = {}
        self.last: dict[int, Fix] = {}
        self.monitor = monitor

    def feed(self, fixes: list[Fix]) -> Outcome:
        """One batch."""
        engine = Engine(self.fences, (self.monitor,) if self.monitor else ())
        accepted = engine.accept(fixes, self.last)
        segments, prevs = engine.segments(accepted, self.last)
        facts = StrTreeEvaluator.compute(self.fences, segments)
        out = engine.run(accepted, segments, prevs, facts, self.states, self.vehicles)
        self.last.update(out.last)
        return out


def kinds(out: Outcome) -> list[str]:
    """Event kinds in order."""
    return [e.kind for e in out.events]


def signals(out: Outcome) -> list[tuple[str, str]]:
    """(alarm kind, phase) in order."""
    return [(s.kind, s.phase) for s in out.signals]


def test_a_segment_crossing_a_fence_between_two_fixes_is_detected() -> None:
    world = World([fence(1, square(0, 0, 50), kind="forbidden_zone", rule="enter")])
    out = world.feed([fix(-600, 0, DAY), fix(600, 0, DAY + timedelta(seconds=30))])
    assert kinds(out) == ["cross"]
    assert signals(out) == [("forbidden_zone", "point")]
    crossing = out.signals[0]
    assert crossing.details["between_fixes"] is True
    assert DAY < crossing.at < DAY + timedelta(seconds=30)


def test_a_segment_passing_beside_a_fence_is_not_a_crossing() -> None:
    world = World([fence(1, square(0, 0, 50), 10, kind="forbidden_zone")])
    out = world.feed([fix(-600, 45, DAY), fix(600, 45, DAY + timedelta(seconds=30))])
    assert kinds(out) == [] and signals(out) == []


def test_hysteresis_ignores_jitter_at_the_boundary() -> None:
    world = World([fence(1, square(0, 0, 100), hysteresis=20)])
    t = DAY
    path = [(-200, 0), (-90, 0)]  # outside, then 10 m inside: not deep enough to enter
    out = world.feed([fix(x, y, t + timedelta(seconds=20 * n)) for n, (x, y) in enumerate(path)])
    assert kinds(out) == []
    out = world.feed([fix(-50, 0, t + timedelta(seconds=60))])
    assert kinds(out) == ["enter"]
    jitter = [(-110, 0), (-95, 0), (-112, 0), (-98, 0)]  # ±12 m around the edge
    out = world.feed(
        [fix(x, y, t + timedelta(seconds=80 + 20 * n)) for n, (x, y) in enumerate(jitter)]
    )
    assert kinds(out) == []
    out = world.feed([fix(-130, 0, t + timedelta(seconds=200))])
    assert kinds(out) == ["exit"]


def test_dwell_confirms_a_transition_only_when_it_lasts() -> None:
    world = World([fence(1, square(0, 0, 100), dwell_s=60)])
    out = world.feed([fix(-300, 0, DAY), fix(0, 0, DAY + timedelta(seconds=20))])
    assert kinds(out) == []
    out = world.feed([fix(-300, 0, DAY + timedelta(seconds=40))])  # left again: forgotten
    assert kinds(out) == []
    t = DAY + timedelta(minutes=5)
    out = world.feed([fix(0, 0, t + timedelta(seconds=s)) for s in (0, 30, 60)])
    assert kinds(out) == ["enter"]
    assert out.events[0].at == t  # the transition dates from the first fix inside


def test_inside_too_long() -> None:
    world = World([fence(1, square(0, 0, 100), rule="inside_max", inside_max_minutes=10)])
    fixes = [fix(0, 0, DAY + timedelta(minutes=m)) for m in range(0, 13)]
    out = world.feed(fixes)
    assert signals(out) == [("inside_too_long", "start")]
    assert out.signals[0].at == DAY + timedelta(minutes=10)
    out = world.feed([fix(500, 0, DAY + timedelta(minutes=14))])
    assert signals(out) == [("inside_too_long", "end")]


def test_schedules_window_forbidden_roads() -> None:
    road = shapely.LineString([(X0 - 1000, Y0), (X0 + 1000, Y0)]).buffer(15)
    rush = parse_schedule(
        {"windows": [{"days": [1, 2, 3, 4, 5], "start": "07:00", "end": "09:00"}]}
    )
    world = World([fence(1, road, kind="forbidden_road", rule="enter", schedule=rush)])
    morning = DAY.replace(hour=6, minute=58)
    out = world.feed(
        [fix(-900 + 100 * n, 0, morning + timedelta(seconds=30 * n)) for n in range(3)]
    )
    assert kinds(out) == ["enter"] and signals(out) == []  # 06:58–06:59: allowed
    seven = DAY.replace(hour=7, minute=0, second=30)
    out = world.feed([fix(-600, 0, seven)])
    assert signals(out) == [("forbidden_road", "start")]
    assert out.signals[0].at == seven  # the window opened while on the road
    out = world.feed([fix(-600, 300, seven + timedelta(seconds=30))])
    assert signals(out) == [("forbidden_road", "end")]
    later = DAY.replace(hour=10)
    out = world.feed([fix(-900 + 100 * n, 0, later + timedelta(seconds=30 * n)) for n in range(3)])
    assert signals(out) == []


def test_applicability_limits_fences_to_some_vehicles() -> None:
    only_muck = parse_applicability({"vehicle_kinds": ["渣土车"]})
    car = VehicleInfo(2, kind="环卫车")
    world = World(
        [fence(1, square(0, 0, 50), kind="forbidden_zone", applicability=only_muck)],
        [TRUCK, car],
    )
    out = world.feed([fix(0, 0, DAY, vehicle=1), fix(0, 0, DAY, vehicle=2)])
    assert [s.vehicle_id for s in out.signals] == [1]


def test_stale_and_duplicate_fixes_are_ignored() -> None:
    world = World([fence(1, square(0, 0, 50))])
    world.feed([fix(0, 0, DAY)])
    out = world.feed([fix(500, 0, DAY), fix(500, 0, DAY - timedelta(seconds=5))])
    assert out.fixes == [] and kinds(out) == []


def corridor_world(bound: bool) -> World:
    corridor = shapely.LineString([(X0, Y0), (X0 + 3000, Y0)]).buffer(50)
    site = square(-150, 0, 150)
    disposal = square(3150, 0, 150)
    fences = [
        fence(1, site, 10, kind="site", site_id=11, site_kind="工地"),
        fence(2, disposal, 10, kind="site", site_id=12, site_kind="消纳场"),
        fence(3, corridor, 15, kind="corridor", rule="outside", route_id=5, dwell_s=60),
    ]
    binding = Binding(11, 12, 5)
    truck = VehicleInfo(
        1,
        "渣土车",
        7,
        "苏J00001",
        60,
        True,
        (binding,) if bound else (),
        frozenset({5}) if bound else frozenset(),
    )
    return World(fences, [truck], Monitor(RoadIndex([], []), MonitorSettings()))


def drive(
    world: World, points: list[tuple[float, float]], start: datetime, step_s: int = 20, **kw: Any
) -> Outcome:
    """Fixes every ``step_s`` seconds along the points."""
    return world.feed(
        [fix(x, y, start + timedelta(seconds=step_s * n), **kw) for n, (x, y) in enumerate(points)]
    )


def test_leaving_the_corridor_while_loaded_raises_off_corridor() -> None:
    world = corridor_world(bound=True)
    out = drive(world, [(-150, 0), (100, 0), (400, 0), (700, 0)], DAY, speed_kmh=30)
    assert signals(out) == []  # left the 工地 along the corridor
    detour = [(900, 300), (1100, 400), (1300, 400), (1500, 400), (1700, 300), (1900, 0)]
    out = drive(world, detour, DAY + timedelta(seconds=80), speed_kmh=30)
    assert signals(out) == [("off_corridor", "start"), ("off_corridor", "end")]
    out = drive(world, [(2400, 0), (2900, 0), (3150, 0)], DAY + timedelta(seconds=200))
    assert signals(out) == []  # approved disposal


def test_an_unbound_vehicle_has_no_corridor_and_a_short_wobble_is_tolerated() -> None:
    world = corridor_world(bound=False)
    out = drive(world, [(-150, 0), (300, 0), (600, 300), (900, 300), (1200, 0)], DAY)
    assert "off_corridor" not in [k for k, _ in signals(out)]
    world = corridor_world(bound=True)
    out = drive(world, [(-150, 0), (300, 0), (600, 90), (900, 0), (1200, 0)], DAY)
    assert signals(out) == []  # 90 m off for one fix: within hysteresis + dwell


def test_unapproved_disposal() -> None:
    world = corridor_world(bound=True)
    other = fence(4, square(0, 2000, 150), 10, kind="site", site_id=13, site_kind="消纳场")
    world.fences = FenceSet([*world.fences.fences, other])
    path = [(-150, 0), (100, 0), (0, 500), (0, 1000), (0, 1500), (0, 2000)]
    out = drive(world, path, DAY, step_s=60)
    assert ("unapproved_disposal", "point") in signals(out)


def test_long_stop_outside_sites_while_loaded_is_suspected_dumping() -> None:
    world = corridor_world(bound=True)
    drive(world, [(-150, 0), (100, 0), (500, 0)], DAY, speed_kmh=30)
    stop = [(1000, 0)] * 14
    out = drive(world, stop, DAY + timedelta(minutes=2), step_s=60, speed_kmh=0)
    assert signals(out) == [("dumping", "start")]
    out = drive(world, [(1500, 0)], DAY + timedelta(minutes=17), speed_kmh=30)
    assert signals(out) == [("dumping", "end")]


def test_speeding_against_the_road_limit() -> None:
    road = shapely.LineString([(X0 - 2000, Y0), (X0 + 2000, Y0)])
    roads = RoadIndex([road], [40.0])
    world = World([], [VehicleInfo(1, speed_limit_kmh=60)], Monitor(roads, MonitorSettings()))
    out = drive(world, [(0, 0), (100, 0)], DAY, speed_kmh=43)  # within 10 % tolerance
    assert signals(out) == []
    out = drive(world, [(200, 0), (300, 0), (400, 0)], DAY + timedelta(minutes=1), speed_kmh=55)
    assert signals(out) == [("speeding", "start")]
    assert out.signals[0].details["limit_kmh"] == 40.0
    out = drive(world, [(500, 0)], DAY + timedelta(minutes=2), speed_kmh=35)
    assert signals(out) == [("speeding", "end")]


def test_unsealed_while_loaded() -> None:
    world = corridor_world(bound=True)
    out = drive(world, [(-150, 0), (100, 0), (400, 0)], DAY, sealed=False, speed_kmh=30)
    assert signals(out) == [("unsealed", "start")]
    out = drive(world, [(700, 0)], DAY + timedelta(minutes=1), sealed=True, speed_kmh=30)
    assert signals(out) == [("unsealed", "end")]


@pytest.mark.parametrize(
    ("doc", "field"),
    [
        ({"windows": [{"start": "7:00", "end": "09:00"}]}, "schedule.windows[0].start"),
        ({"windows": [{"start": "07:00", "end": "07:00"}]}, "schedule.windows[0].end"),
        (
            {"windows": [{"days": [0], "start": "07:00", "end": "09:00"}]},
            "schedule.windows[0].days",
        ),
        ({"windows": "always"}, "schedule.windows"),
    ],
)
def test_bad_schedules_name_the_field(doc: dict[str, Any], field: str) -> None:
    with pytest.raises(ScheduleError) as err:
        parse_schedule(doc)
    assert err.value.field == field


def test_overnight_windows_belong_to_their_start_day() -> None:
    night = parse_schedule({"windows": [{"days": [5], "start": "22:00", "end": "06:00"}]})
    friday = datetime(2026, 11, 27, 23, 0, tzinfo=TZ)
    assert night.active(friday)
    assert night.active(friday + timedelta(hours=5))  # Saturday 04:00
    assert not night.active(friday + timedelta(hours=8))
    assert not night.active(friday - timedelta(days=1))  # Thursday 23:00


def test_bad_applicability_is_refused() -> None:
    with pytest.raises(ApplicabilityError):
        parse_applicability({"vehicle_ids": ["x"]})
    with pytest.raises(ApplicabilityError):
        parse_applicability({"plates": []})
