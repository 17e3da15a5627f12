"""A table of normalised names → places: exact, longest-prefix, fuzzy and pinyin lookups.

Keys are ``normalize``d names, aliases (别名) and former names (曾用名). Each key carries its
full pinyin and pinyin initials (``莱茵城`` → ``laiyincheng``/``lyc``), so a query may be typed
in pinyin, and a wrong character that sounds the same (幸付路 for 幸福路, the usual IME slip)
is found by pinyin equality before plain edit distance is tried.
"""

from __future__ import annotations

import bisect
import functools
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from pypinyin import Style, lazy_pinyin
from rapidfuzz import fuzz, process
from rapidfuzz.distance import Levenshtein

from geocoder.normalize import spoken_form

# Scores of the ways a key can match (1.0 is an exact name; see forward.py for the rest).
HOMOPHONE: Final = 0.93
PINYIN: Final = 0.95
INITIALS: Final = 0.92
EDIT_1: Final = 0.88
PREFIX_ASCII: Final = 0.7
_NUMERALS: Final = frozenset("零一二三四五六七八九十百两")


@dataclass(frozen=True, slots=True)
class NameRef:
    """One place reachable by a key, and how: its name, an alias or a former name."""

    code: str
    method: str  # name | alias | old_name
    name: str  # the name as written in the data


@dataclass(frozen=True, slots=True)
class KeyHit:
    """A key found for a query text, with a score in [0, 1] and how it was found."""

    key: str
    score: float
    how: str  # exact | homophone | typo | contains | similar | pinyin | initials | prefix


@functools.lru_cache(maxsize=65536)
def pinyin_of(text: str) -> str:
    """Toneless full pinyin (non-Chinese characters kept): ``莱茵城5`` → ``laiyincheng5``."""
    return "".join(lazy_pinyin(text)).lower()


@functools.lru_cache(maxsize=65536)
def initials_of(text: str) -> str:
    """Pinyin initials (non-Chinese characters kept): ``莱茵城`` → ``lyc``."""
    return "".join(lazy_pinyin(text, style=Style.FIRST_LETTER)).lower()


class NameTable:
    """Normalised keys → places, with pinyin and fuzzy lookups (call ``freeze`` once filled)."""

    def __init__(self) -> None:
        """An empty table."""
        self.refs: dict[str, list[NameRef]] = {}
        self.max_len = 0
        self._keys: list[str] = []
        self._pinyin: dict[str, str] = {}
        self._by_pinyin: dict[str, list[str]] = {}
        self._by_initials: dict[str, list[str]] = {}
        self._sorted_pinyin: list[tuple[str, str]] = []
        self._sorted_initials: list[tuple[str, str]] = []

    def add(self, keys: Iterable[str], ref: NameRef) -> None:
        """Register ``ref`` under each non-empty key (duplicates ignored)."""
        for key in keys:
            if len(key) < 2:
                continue
            refs = self.refs.setdefault(key, [])
            if not any(r.code == ref.code for r in refs):
                refs.append(ref)

    def freeze(self) -> None:
        """Compute the sorted key list and the pinyin maps."""
        self._keys = sorted(self.refs)
        self.max_len = max((len(k) for k in self._keys), default=0)
        for key in self._keys:
            self._pinyin[key] = pinyin_of(key)
            spoken = {key} | {
                spoken_form(r.name) for r in self.refs[key] if _NUMERALS.intersection(r.name)
            }  # 东方一号 is keyed 东方1号 but typed dongfangyihao / dfyh
            for form in spoken:
                full, initials = pinyin_of(form), initials_of(form)
                self._by_pinyin.setdefault(full, []).append(key)
                self._by_initials.setdefault(initials, []).append(key)
                self._sorted_pinyin.append((full, key))
                self._sorted_initials.append((initials, key))
        self._sorted_pinyin.sort()
        self._sorted_initials.sort()

    def __len__(self) -> int:
        """Number of keys."""
        return len(self._keys)

    def exact(self, key: str) -> list[NameRef]:
        """Places named exactly ``key``."""
        return self.refs.get(key, [])

    def longest_prefix(self, text: str, start: int = 0) -> str | None:
        """The longest key that ``text[start:]`` starts with."""
        for end in range(min(len(text), start + self.max_len), start + 1, -1):
            if text[start:end] in self.refs:
                return text[start:end]
        return None

    def fuzzy(self, text: str, limit: int = 8, fallback: bool = True) -> list[KeyHit]:
        """Keys close to ``text``: same pinyin, one wrong/missing character, containment.

        With ``fallback``, when nothing is that close, the most similar keys (Indel ratio).
        """
        hits: dict[str, KeyHit] = {}
        spoken = pinyin_of(text)

        def keep(key: str, score: float, how: str) -> None:
            if key not in hits or hits[key].score < score:
                hits[key] = KeyHit(key, round(score, 4), how)

        for key in self._by_pinyin.get(spoken, ()):  # closer spelling first among homophones
            same = Levenshtein.normalized_similarity(text, key)
            keep(key, HOMOPHONE + 0.02 * same, "homophone")
        cutoff = 1 if len(text) <= 6 else 2
        for key, dist, _ in process.extract(
            text, self._keys, scorer=Levenshtein.distance, score_cutoff=cutoff, limit=limit * 3
        ):
            if dist and len(key) >= 3:
                sound = Levenshtein.normalized_similarity(spoken, self._pinyin[key])
                keep(key, EDIT_1 - 0.08 * (dist - 1) - 0.1 * (1 - sound), "typo")
        if len(text) >= 2:
            for key in self._keys:
                if text in key:
                    keep(key, 0.55 + 0.3 * len(text) / len(key), "contains")
                elif key in text and len(key) >= 3:
                    keep(key, 0.5 + 0.3 * len(key) / len(text), "contains")
        if not hits and fallback:
            for key, ratio, _ in process.extract(
                text, self._keys, scorer=fuzz.ratio, score_cutoff=50, limit=limit
            ):
                keep(key, 0.6 * ratio / 100, "similar")
        return sorted(hits.values(), key=lambda h: (-h.score, h.key))[:limit]

    def ascii(self, letters: str, limit: int = 8) -> list[KeyHit]:
        """Keys whose full pinyin or initials equal (or start with) ``letters``."""
        hits: dict[str, KeyHit] = {}
        for key in self._by_pinyin.get(letters, ()):
            hits[key] = KeyHit(key, PINYIN, "pinyin")
        for key in self._by_initials.get(letters, ()):
            hits.setdefault(key, KeyHit(key, INITIALS, "initials"))
        if len(hits) < limit and len(letters) >= 2:
            for key in self._complete_ascii(letters, limit * 2):
                hits.setdefault(key, KeyHit(key, PREFIX_ASCII, "prefix"))
        return sorted(hits.values(), key=lambda h: (-h.score, len(h.key), h.key))[:limit]

    def complete(self, prefix: str, limit: int) -> list[str]:
        """Keys starting with ``prefix`` (pinyin or initials for ASCII), shortest first."""
        if prefix.isascii() and prefix.isalpha():
            return self._complete_ascii(prefix, limit)
        found = self._starting(self._keys, prefix, limit * 4)
        if len(found) < limit:
            found += [k for k in self._keys if prefix in k and k not in found][: limit * 2]
        return sorted(found, key=lambda k: (not k.startswith(prefix), len(k), k))[:limit]

    def _complete_ascii(self, prefix: str, limit: int) -> list[str]:
        out: list[str] = []
        for table in (self._sorted_initials, self._sorted_pinyin):
            i = bisect.bisect_left(table, (prefix, ""))
            while i < len(table) and table[i][0].startswith(prefix) and len(out) < limit * 4:
                if table[i][1] not in out:
                    out.append(table[i][1])
                i += 1
        return sorted(out, key=lambda k: (len(k), k))[:limit]

    @staticmethod
    def _starting(keys: list[str], prefix: str, limit: int) -> list[str]:
        i = bisect.bisect_left(keys, prefix)
        out: list[str] = []
        while i < len(keys) and keys[i].startswith(prefix) and len(out) < limit:
            out.append(keys[i])
            i += 1
        return out
