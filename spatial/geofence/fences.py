"""Fences in memory: the rule fields of ``city.geofences`` and their metric geometries.

Geometries are evaluated in CGCS2000 / 3-degree Gauss-Krüger zone 40 (EPSG:4528, metres) so
hysteresis, widths and stop radii are plain metres. ``inner`` is the fence shrunk by its
hysteresis (entering needs that depth), ``outer`` the fence grown by it (leaving needs that
distance); PostGIS computes both columns (``inner_m``/``outer_m``) in a trigger.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import psycopg
import shapely
from shapely import STRtree
from shapely.geometry.base import BaseGeometry

from spatial.geofence.applicability import EVERYONE, Applicability, parse_applicability
from spatial.geofence.schedule import ALWAYS, Schedule, parse_schedule

METRIC_SRID = 4528
FENCE_KINDS = ("polygon", "circle", "corridor", "forbidden_road", "forbidden_zone", "site")
RULES = ("none", "enter", "exit", "inside_max", "outside")
SITE_KINDS = ("工地", "消纳场", "中转场", "停车场")
LOADING_SITES = frozenset({"工地", "中转场"})  # leaving one loaded opens a trip (联单)
UNLOADING_SITES = frozenset({"消纳场", "中转场"})  # entering one closes it


@dataclass(frozen=True)
class Fence:
    """One active fence with its rule and metric geometries."""

    id: int
    kind: str
    name: str
    rule: str = "none"
    inside_max_minutes: int | None = None
    speed_limit_kmh: float | None = None
    hysteresis_m: float = 0.0
    dwell_s: int = 0
    schedule: Schedule = ALWAYS
    applicability: Applicability = EVERYONE
    site_id: int | None = None
    site_kind: str | None = None
    route_id: int | None = None
    inner: BaseGeometry | None = None
    outer: BaseGeometry | None = None
    centre: tuple[float, float] | None = None  # representative point of ``inner`` (metres)

    @property
    def alarm_kind(self) -> str | None:
        """The alarm kind raised by this fence's own rule, if any."""
        if self.kind in ("forbidden_road", "forbidden_zone"):
            return self.kind
        return {"enter": "fence_enter", "exit": "fence_exit", "inside_max": "inside_too_long"}.get(
            self.rule
        )


@dataclass
class FenceSet:
    """Active fences with an STRtree over their outer geometries."""

    fences: list[Fence]
    version: int = 0

    def __post_init__(self) -> None:
        self.by_id = {f.id: n for n, f in enumerate(self.fences)}
        self.outer = np.array([f.outer for f in self.fences], dtype=object)
        self.inner = np.array([f.inner for f in self.fences], dtype=object)
        shapely.prepare(self.outer)
        shapely.prepare(self.inner)
        self.tree = STRtree(self.outer)
        limits = [f.speed_limit_kmh for f in self.fences if f.speed_limit_kmh]
        self.lowest_limit = min(limits) if limits else math.inf
        self.corridors_by_route: dict[int, list[int]] = {}
        for n, f in enumerate(self.fences):
            if f.kind == "corridor" and f.route_id is not None:
                self.corridors_by_route.setdefault(f.route_id, []).append(n)

    def __len__(self) -> int:
        """Number of fences."""
        return len(self.fences)


FENCE_SQL = """
SELECT id, kind, name, rule, inside_max_minutes, speed_limit_kmh, hysteresis_m, dwell_s,
       schedule, applicability, site_id, site_kind, route_id,
       ST_AsBinary(inner_m), ST_AsBinary(outer_m)
FROM city.geofences WHERE active ORDER BY id
"""


def fence_from_row(row: tuple[Any, ...]) -> Fence:
    """Build a ``Fence`` from a ``FENCE_SQL`` row."""
    inner = shapely.from_wkb(bytes(row[13])) if row[13] is not None else None
    outer = shapely.from_wkb(bytes(row[14]))
    if inner is None or inner.is_empty:
        inner = outer if row[6] <= 0 else shapely.buffer(outer, -2 * float(row[6]))
        if inner.is_empty:  # tiny fence: its hysteresis would swallow it
            inner = outer
    rep = shapely.point_on_surface(inner)
    return Fence(
        centre=(float(rep.x), float(rep.y)),
        id=row[0],
        kind=row[1],
        name=row[2],
        rule=row[3],
        inside_max_minutes=row[4],
        speed_limit_kmh=row[5],
        hysteresis_m=float(row[6]),
        dwell_s=int(row[7]),
        schedule=parse_schedule(row[8]),
        applicability=parse_applicability(row[9]),
        site_id=row[10],
        site_kind=row[11],
        route_id=row[12],
        inner=inner,
        outer=outer,
    )


async def layer_version(conn: psycopg.AsyncConnection) -> int:
    """The change counter of ``city.geofences`` (0 when never changed)."""
    cur = await conn.execute("SELECT version FROM city.layer_versions WHERE layer = 'geofences'")
    row = await cur.fetchone()
    return int(row[0]) if row else 0


async def load_fence_set(conn: psycopg.AsyncConnection) -> FenceSet:
    """Read every active fence."""
    version = await layer_version(conn)
    cur = await conn.execute(FENCE_SQL)
    return FenceSet([fence_from_row(r) for r in await cur.fetchall()], version)
