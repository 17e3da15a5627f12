"""Reading a query's base place: leading areas, then the longest known name or fuzzy guesses.

A text may be read in several ways (东方1号9栋: the compound 东方一号 and building 9, or a
misspelt 东方 and number 1); each reading is a base place with a score and the unread tail,
and forward.py ranks what every reading leads to.
"""

from __future__ import annotations

from dataclasses import dataclass

from geocoder.index import GeoIndex, Place
from geocoder.names import KeyHit, NameRef
from geocoder.normalize import (
    PROVINCE_CITY,
    is_ascii_query,
    is_relative,
    split_ascii,
    split_number,
    split_relative_end,
)

METHOD_FACTOR = {"name": 1.0, "alias": 0.98, "old_name": 0.96}
EXTENDS = 0.96  # a name one slip away that extends the exactly matched prefix


def strip_areas(ix: GeoIndex, text: str) -> tuple[list[Place], str]:
    """Strip leading province/city/district/street/community names; return them and the rest."""
    areas: list[Place] = []
    while True:
        for prefix in PROVINCE_CITY:
            if text.startswith(prefix) and len(text) > len(prefix):
                text = text[len(prefix) :]
                break
        else:
            key = ix.areas.longest_prefix(text)
            name = ix.names.longest_prefix(text)
            if not key or (name and len(name) > len(key)):
                return areas, text
            areas.append(ix.places[ix.areas.exact(key)[0].code])
            text = text[len(key) :]
            if not text:
                return areas, text


@dataclass(frozen=True, slots=True)
class Reading:
    """One way to read the text: a base place, its score and how, and the unread tail."""

    ref: NameRef
    score: float
    how: str
    key: str
    tail: str


def _from_hits(ix: GeoIndex, hits: list[KeyHit], tail: str) -> list[Reading]:
    return [
        Reading(r, h.score * METHOD_FACTOR[r.method], h.how, h.key, tail)
        for h in hits
        for r in ix.names.exact(h.key)
    ]


def readings(ix: GeoIndex, text: str) -> list[Reading]:
    """Base places for ``text``: the longest known name first, else fuzzy/pinyin guesses."""
    if is_ascii_query(text):
        whole = [h for h in ix.names.ascii(text) if h.how in ("pinyin", "initials")]
        if whole:  # dongfang1hao, scyh
            return _from_hits(ix, whole, "")
        letters, tail = split_ascii(text)
        return _from_hits(ix, ix.names.ascii(letters), tail)
    out: list[Reading] = []
    key = ix.names.longest_prefix(text)
    if key:
        tail = text[len(key) :]
        out = [
            Reading(r, METHOD_FACTOR[r.method], r.method, key, tail) for r in ix.names.exact(key)
        ]
        if not tail or tail[0].isdigit() or is_relative(tail):
            return out
    options = split_number(text)
    base, relative = split_relative_end(text)
    if relative:  # 莱因城东门; 新民北 is tried whole too
        options.append((base, relative))
    for base, tail in options:
        out += _from_hits(ix, ix.names.fuzzy(base, fallback=False), tail)
    if not out:  # nothing close: the most similar names, for the first reading
        out = _from_hits(ix, ix.names.fuzzy(options[0][0]), options[0][1])
    if key:  # a longer name that starts with the key, one slip away: 戴记饭店(东路店)
        near = [
            h
            for h in ix.names.fuzzy(text)
            if h.key.startswith(key) and h.how in ("typo", "homophone")
        ]
        lift = EXTENDS - max((h.score for h in near), default=EXTENDS)
        out += _from_hits(ix, [KeyHit(h.key, h.score + lift, h.how) for h in near], "")
    return out
