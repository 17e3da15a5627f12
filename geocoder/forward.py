"""Forward geocoding: a free-text address → ranked places, entirely from the in-memory index.

A query is read as the tender's location description, [区域|地片/区片/街巷/门牌/楼牌|(方位)|
兴趣点|(方位)|(补充说明)]: leading areas (省/市/区/街道/社区) are stripped and kept, the base name
is found (exact name, alias, former name, pinyin, homophone, one-character typo), then the
number, unit and room, then a POI, a crossing road or a relative description (东门, 对面).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from geocoder.index import LEVEL_RANK, GeoIndex, Level, Place
from geocoder.interpolate import Interpolated, interpolate
from geocoder.normalize import Tail, is_relative, normalize, parse_tail
from geocoder.readings import Reading, readings, strip_areas

PARENT_FALLBACK = 0.5  # the road/compound itself, listed after its plate
INTERPOLATED = 0.9
NUMBER_UNMATCHED = 0.8  # a number was given but no such plate/building exists
WRONG_AREA = 0.9  # the query names a street/community the place is not in
UNEXPLAINED = 0.95  # text left over that is neither a place nor a relative description
UNRELATED = 0.85  # two places named together that have nothing to do with each other
_CONNECTOR = re.compile(r"^(?:与|和|跟|同|及|、|交)")
_CROSSING_END = re.compile(r"(?:交叉口|交汇处|交界处|十字路口|口)$")


@dataclass(slots=True)
class Match:
    """A ranked candidate: a place (or an interpolated plate position) and why it matched."""

    place: Place
    score: float
    method: str
    matched: str
    lon: float
    lat: float
    interpolated: bool = False
    note: str | None = None


@dataclass(slots=True)
class Parsed:
    """The segmented query (GB/T 30428.3 segments)."""

    normalized: str
    areas: list[str] = field(default_factory=list)
    base: str | None = None
    number: int | None = None
    sub_number: int | None = None
    suffix: str | None = None
    detail: str | None = None
    relative: str | None = None
    remainder: str | None = None


@dataclass(slots=True)
class Result:
    """Parsed query and ranked matches."""

    query: str
    parsed: Parsed
    matches: list[Match]


def geocode(ix: GeoIndex, query: str, limit: int = 5) -> Result:
    """Geocode one (already validated) query."""
    text = normalize(query)
    parsed = Parsed(normalized=text)
    code = query.strip().upper()
    if code in ix.places:
        return Result(query, parsed, [_match(ix.places[code], 1.0, "code", code)])
    areas, rest = strip_areas(ix, text)
    parsed.areas = [a.code for a in areas]
    if not rest:
        return Result(query, parsed, [_match(a, 1.0, "name", a.name) for a in areas[-1:]])
    groups: dict[str, list[Reading]] = {}
    for reading in readings(ix, rest):
        groups.setdefault(reading.tail, []).append(reading)
    best: tuple[float, Parsed] = (-1.0, parsed)
    matches: list[Match] = []
    for tail_text, group in groups.items():
        tail = parse_tail(tail_text)
        found: list[Match] = []
        for r in group:
            found += _expand(ix, ix.places[r.ref.code], r.score, r.how, r.ref.name or r.key, tail)
        found, relative, remainder = _remainder(ix, found, tail.rest)
        for m in found:
            _check_areas(m, areas)
        top = max((m.score for m in found), default=0.0)
        if top > best[0]:
            best = (top, _parsed(parsed, group[0].key, tail, relative, remainder))
        matches += found
    return Result(query, best[1], _rank(matches, limit))


def _parsed(
    parsed: Parsed, key: str, tail: Tail, relative: str | None, remainder: str | None
) -> Parsed:
    return Parsed(
        parsed.normalized, parsed.areas, key, tail.number, tail.sub, tail.suffix, tail.detail,
        relative, remainder,
    )  # fmt: skip


def _match(place: Place, score: float, method: str, matched: str, note: str | None = None) -> Match:
    return Match(place, round(score, 4), method, matched, place.lon, place.lat, note=note)


def _expand(
    ix: GeoIndex, base: Place, score: float, how: str, name: str, tail: Tail
) -> list[Match]:
    """Candidates from one base place and the parsed number."""
    if tail.number is None:
        return [_match(base, score, how, name)]
    fallback = _match(base, score * PARENT_FALLBACK, how, name)
    if base.kind in ("road", "compound"):
        plate = ix.plate(base.code, tail.number)
        if plate:
            note = f"附号{tail.sub}按{tail.number}号定位" if tail.sub else None
            return [_match(plate, score, how, name, note=note), fallback]
        est = interpolate(ix, base.code, tail.number) if base.kind == "road" else None
        if est and not est.clamped:
            return [_interpolated(ix, base, tail.number, est, score, how, name), fallback]
        unit = "号（超出该路门牌范围）" if est else ("号" if base.kind == "road" else "栋")
        note = f"未找到{base.name}{tail.number}{unit}，定位到{base.level.value}"
        return [_match(base, score * NUMBER_UNMATCHED, how, name, note=note)]
    note = f"{base.name}没有编号{tail.number}，定位到{base.level.value}"
    return [_match(base, score * NUMBER_UNMATCHED, how, name, note=note)]


def _interpolated(
    ix: GeoIndex, road: Place, number: int, est: Interpolated, score: float, how: str, name: str
) -> Match:
    way = "外推" if est.extrapolated else "插值"
    note = f"门牌{road.name}{number}号不存在，按{est.anchors[0]}号与{est.anchors[1]}号{way}"
    trees = ix.trees
    grid = trees.covering("grid", trees.point(est.lon, est.lat)) if trees else None
    cell = ix.places.get(grid or "")
    street = cell.street if cell else None
    place = Place(
        f"{road.code}#{number}", Level.DOOR, "door", f"{road.name}{number}号",
        f"{ix.district}{ix.name_of(street) or ''}{road.name}{number}号", est.lon, est.lat,
        grid, cell.community if cell else None, street, road.code, number,
    )  # fmt: skip
    return Match(place, round(score * INTERPOLATED, 4), how, name, place.lon, place.lat, True, note)


def _remainder(
    ix: GeoIndex, matches: list[Match], rest: str
) -> tuple[list[Match], str | None, str | None]:
    """A POI, a crossing road or a relative description after the base (and number).

    Returns the matches, the relative description and the unexplained remainder.
    """
    if not rest or not matches:
        return matches, None, rest or None
    if is_relative(rest) and not ix.names.longest_prefix(rest):  # 向记超市 is a name
        return matches, rest, None
    sub_text = _CONNECTOR.sub("", rest)
    crossing = _CROSSING_END.search(sub_text)
    subs = readings(ix, sub_text[: crossing.start()] if crossing else sub_text)
    primary = matches
    extra: list[Match] = []
    for r in subs[:3]:
        place = ix.places[r.ref.code]
        extra += _combine(ix, primary, place, r.score, r.how, r.ref.name or r.key)
    sub_tail = subs[0].tail if subs else rest
    if extra and (not sub_tail or is_relative(sub_tail)):
        return extra + primary, sub_tail or None, None
    for m in primary:
        m.score = round(m.score * UNEXPLAINED, 4)
    return extra + primary, None, sub_tail


def _combine(
    ix: GeoIndex, matches: list[Match], place: Place, score: float, how: str, name: str
) -> list[Match]:
    """Resolve a second place against the first: POI at that plate or road, crossing roads."""
    first = matches[0]
    score = min(score, first.score)
    if place.kind == "road" and first.place.kind == "road":
        point = ix.lines[first.place.code].intersection(ix.lines[place.code])
        if not point.is_empty:
            c = point.centroid
            label = f"{first.place.name}与{place.name}交叉口"
            code = f"{first.place.code}x{place.code}"
            cross = Place(code, Level.ROAD, "crossing", label, f"{ix.district}{label}", c.x, c.y)
            _scale(matches, 0.9)
            return [Match(cross, round(score, 4), how, name, c.x, c.y)]
    related = _related(ix, first.place, place)
    _scale(matches, 0.95 * score if related else UNRELATED)  # weaker if the second is a guess
    return [_match(place, score * (1.0 if related else UNRELATED), how, name)]


def _related(ix: GeoIndex, first: Place, second: Place) -> bool:
    """A POI at (or on the road/compound of) the first place, or the first POI on the second."""
    for poi, other in ((second, first), (first, second)):
        if poi.kind == "poi":
            plate = ix.places.get(poi.parent or "")
            if plate is not None and other.code in (plate.code, plate.parent):
                return True
    return False


def _scale(matches: list[Match], factor: float) -> None:
    for m in matches:
        m.score = round(m.score * factor, 4)


def _check_areas(m: Match, areas: list[Place]) -> None:
    """Lower the score when the query's street/community disagrees with the place's."""
    for area in areas:
        mine = m.place.street if area.kind == "street" else m.place.community
        if area.kind in ("street", "community") and mine and mine != area.code:
            m.score = round(m.score * WRONG_AREA, 4)
            m.note = (m.note + "；" if m.note else "") + f"不在{area.name}"


def _rank(matches: list[Match], limit: int) -> list[Match]:
    """Best first; one entry per place."""
    matches.sort(key=lambda m: (-m.score, LEVEL_RANK[m.place.level], m.place.code))
    seen: set[str] = set()
    out: list[Match] = []
    for m in matches:
        if m.place.code not in seen:
            seen.add(m.place.code)
            out.append(m)
    return out[:limit]
