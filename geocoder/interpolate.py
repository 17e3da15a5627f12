"""Door-number interpolation along a road (tender: 按门（楼）牌号插值进行概略定位).

Door numbers run along a road with odd numbers on one side and even on the other. A missing
number is placed between the nearest existing plates of the same parity, linearly in distance
along the road line, and offset sideways like its neighbours; beyond the last plate it is
extrapolated from the last two (clamped to the road's ends).
"""

from __future__ import annotations

from dataclasses import dataclass

from shapely.geometry import Point

from geocoder.index import GeoIndex


@dataclass(frozen=True, slots=True)
class Interpolated:
    """An estimated door-plate position and the plates it was derived from."""

    lon: float
    lat: float
    anchors: tuple[int, int]
    extrapolated: bool
    clamped: bool


def _anchors(numbers: list[int], number: int) -> tuple[int, int, bool] | None:
    """Two known numbers around ``number`` (same parity when possible)."""
    same = [n for n in numbers if n % 2 == number % 2] or numbers
    lower = [n for n in same if n < number]
    upper = [n for n in same if n > number]
    if lower and upper:
        return lower[-1], upper[0], False
    if len(lower) >= 2:
        return lower[-2], lower[-1], True
    if len(upper) >= 2:
        return upper[0], upper[1], True
    return None


def interpolate(ix: GeoIndex, road: str, number: int) -> Interpolated | None:
    """Estimate where door plate ``number`` of ``road`` is; None without two known plates."""
    line = ix.lines.get(road)
    picked = _anchors(ix.numbers.get(road, []), number)
    if line is None or picked is None:
        return None
    a, b, extrapolated = picked
    pa, pb = ix.plate(road, a), ix.plate(road, b)
    if pa is None or pb is None:
        return None
    ma, mb = line.project(Point(pa.lon, pa.lat)), line.project(Point(pb.lon, pb.lat))
    measure = ma + (number - a) * (mb - ma) / (b - a)
    clamped = not 0.0 <= measure <= line.length
    measure = min(max(measure, 0.0), line.length)
    on_line = line.interpolate(measure)
    foot_a, foot_b = line.interpolate(ma), line.interpolate(mb)
    dx = ((pa.lon - foot_a.x) + (pb.lon - foot_b.x)) / 2
    dy = ((pa.lat - foot_a.y) + (pb.lat - foot_b.y)) / 2
    return Interpolated(on_line.x + dx, on_line.y + dy, (a, b), extrapolated, clamped)
