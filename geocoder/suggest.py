"""Type-ahead suggestions: name prefixes (or pinyin/initials), then plate numbers."""

from __future__ import annotations

import re

from geocoder.index import LEVEL_RANK, GeoIndex, Place
from geocoder.normalize import is_ascii_query, normalize, split_ascii
from geocoder.readings import strip_areas

_DIGITS = re.compile(r"\d+")


def suggest(ix: GeoIndex, query: str, limit: int = 10) -> list[Place]:
    """Places completing ``query``: 莱茵 → 莱茵城, lyc → 莱茵城, 幸福路2 → 幸福路2号, 20号…."""
    text = normalize(query)
    _areas, rest = strip_areas(ix, text)
    rest = rest or text
    if is_ascii_query(rest):
        letters, tail = split_ascii(rest)
        keys = [h.key for h in ix.names.ascii(letters, limit)] if tail else []
        keys = keys or ix.names.complete(letters, limit)
    else:
        key = ix.names.longest_prefix(rest)
        tail = rest[len(key) :] if key else ""
        keys = [key] if key and tail else ix.names.complete(rest, limit)
    digits = _DIGITS.match(tail)
    if keys and digits:
        return _numbers(ix, keys[0], digits.group(0), limit)
    return _places(ix, keys, limit)


def _places(ix: GeoIndex, keys: list[str], limit: int) -> list[Place]:
    out: dict[str, Place] = {}
    for key in keys:
        refs = sorted(ix.names.exact(key), key=lambda r: LEVEL_RANK[ix.places[r.code].level])
        for ref in refs:
            out.setdefault(ref.code, ix.places[ref.code])
    return list(out.values())[:limit]


def _numbers(ix: GeoIndex, key: str, digits: str, limit: int) -> list[Place]:
    """Plates of the roads/compounds named ``key`` whose number starts with ``digits``."""
    out: list[Place] = []
    for ref in ix.names.exact(key):
        numbers = [n for n in ix.numbers.get(ref.code, []) if str(n).startswith(digits)]
        for n in sorted(numbers, key=lambda n: (len(str(n)), n))[:limit]:
            plate = ix.plate(ref.code, n)
            if plate:
                out.append(plate)
    return out[:limit]
