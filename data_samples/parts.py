"""City components (部件) at the tender's real counts, placed along roads and inside grids."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import shapely

from data_samples.places import M_PER_DEG_LAT, M_PER_DEG_LON, RoadFeature
from data_samples.reference import ClassRef

# Tender, 部件数据现状: 138,662 components.
MAJOR_COUNTS = {"01": 90_498, "02": 6_787, "03": 5_716, "04": 26_485, "05": 279}
EXTENSION_COUNT = 8_897
ROADSIDE_SHARE = {"01": 0.85, "02": 0.9, "03": 0.6, "04": 0.55, "05": 0.2}
STATUSES = np.array(["完好", "破损", "丢失", "占用", "废弃"])
STATUS_P = np.array([0.93, 0.04, 0.01, 0.015, 0.005])
MAINTAINERS = {
    "01": "大丰区市政设施管理处",
    "02": "大丰区交通设施养护中心",
    "03": "大丰区环境卫生管理处",
    "04": "大丰区园林绿化管理处",
    "05": "大丰区城市管理局",
}


@dataclass
class PartBatch:
    """Columns of generated components (one array per field)."""

    classes: list[ClassRef]
    class_idx: np.ndarray
    lon: np.ndarray
    lat: np.ndarray
    road_idx: np.ndarray  # -1 when not placed along a road
    side: np.ndarray
    status: np.ndarray
    initial_days: np.ndarray


def class_counts(classes: tuple[ClassRef, ...], rng: np.random.Generator) -> list[int]:
    """Split each major's total across its minors (skewed, like real censuses)."""
    counts = [0] * len(classes)
    groups: dict[str, list[int]] = {}
    for k, c in enumerate(classes):
        groups.setdefault("ext" if c.is_extension else c.major_code, []).append(k)
    totals = {**MAJOR_COUNTS, "ext": EXTENSION_COUNT}
    for key, members in groups.items():
        weights = rng.pareto(1.2, len(members)) + 0.05
        share = np.floor(weights / weights.sum() * totals.get(key, 0)).astype(int)
        share[int(np.argmax(weights))] += totals.get(key, 0) - int(share.sum())
        for k, n in zip(members, share, strict=True):
            counts[k] = int(n)
    return counts


def _roadside_points(
    roads: list[RoadFeature], n: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Points 3–25 m beside random road edges; returns lon, lat, road index, side."""
    segs, owner = [], []
    for r_idx, road in enumerate(roads):
        for part in road.geometry.geoms:
            xy = np.asarray(part.coords)
            segs.extend(np.hstack([xy[:-1], xy[1:]]))
            owner.extend([r_idx] * (len(xy) - 1))
    seg = np.asarray(segs)
    pick = rng.integers(0, len(seg), n)
    t = rng.random(n)
    x = seg[pick, 0] + t * (seg[pick, 2] - seg[pick, 0])
    y = seg[pick, 1] + t * (seg[pick, 3] - seg[pick, 1])
    side = rng.choice([-1, 1], n)
    offset = rng.uniform(3, 25, n) * side
    ew = np.abs(seg[pick, 2] - seg[pick, 0]) > np.abs(seg[pick, 3] - seg[pick, 1])
    lat = np.where(ew, y + offset / M_PER_DEG_LAT, y)
    lon = np.where(ew, x, x - offset / M_PER_DEG_LON)
    return lon, lat, np.asarray(owner)[pick], side


def _area_points(
    bounds: tuple[float, float, float, float], n: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    minx, miny, maxx, maxy = bounds
    return rng.uniform(minx, maxx, n), rng.uniform(miny, maxy, n)


def generate_parts(
    classes: tuple[ClassRef, ...],
    roads: list[RoadFeature],
    district: shapely.Geometry,
    rng: np.random.Generator,
) -> PartBatch:
    """All components, every one inside the district (candidates outside are redrawn)."""
    counts = class_counts(classes, rng)
    class_idx = np.repeat(np.arange(len(classes)), counts)
    n = len(class_idx)
    share = np.array([ROADSIDE_SHARE.get(classes[k].major_code, 0.5) for k in class_idx])
    on_road = rng.random(n) < share
    lon, lat = np.empty(n), np.empty(n)
    road_idx, side = np.full(n, -1), np.zeros(n, dtype=int)
    shapely.prepare(district)
    todo = np.arange(n)
    while len(todo):
        rl, ra, ri, rs = _roadside_points(roads, len(todo), rng)
        al, aa = _area_points(district.bounds, len(todo), rng)
        road = on_road[todo]
        lon[todo] = np.where(road, rl, al)
        lat[todo] = np.where(road, ra, aa)
        road_idx[todo] = np.where(road, ri, -1)
        side[todo] = np.where(road, rs, 0)
        inside = shapely.contains_xy(district, lon[todo], lat[todo])
        todo = todo[~inside]
    status = rng.choice(STATUSES, n, p=STATUS_P)
    initial_days = rng.integers(0, 8 * 365, n)
    return PartBatch(list(classes), class_idx, lon, lat, road_idx, side, status, initial_days)
