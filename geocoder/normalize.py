"""Pure text normalisation and parsing of Chinese address strings (GB/T 30428.3 segments).

``normalize`` maps a free-text query and every indexed name onto the same canonical form:
NFKC (full-width digits and letters become half-width), a few traditional characters become
simplified, punctuation and spaces go, ``#``/``號`` become ``号`` and Chinese numerals directly
before a numbering suffix become digits (``三十二号`` → ``32号``, ``二单元`` → ``2单元``).
Numerals elsewhere stay (``八一路``, ``工农二村``), so names are never mangled.

``parse_tail`` reads what follows a recognised base name: door/building number, sub-number,
suffix, unit, room, then a relative description (东门, 旁, 对面, 北侧约50米) or a remainder.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Final

from spatial.errors import FieldIssue, InvalidInput

MAX_QUERY_CHARS: Final = 200

_TRADITIONAL: Final = str.maketrans(
    "號樓棟單區門東園華豐鄉鎮縣場條裡內側對邊廣滙匯東館學醫銀號濱灣橋廠倉雲豐蘇鹽",
    "号楼栋单区门东园华丰乡镇县场条里内侧对边广汇汇东馆学医银号滨湾桥厂仓云丰苏盐",
)
_DROP: Final = re.compile(
    r"[\s,，。.、·•:：;；'\"“”‘’()（）\[\]【】<>《》{}!！?？~～_/\\|*+=@&^%$￥"
    "\u200b-\u200f\u2060\ufeff]"  # zero-width characters pasted from chat apps
)
_DASHES: Final = re.compile(r"[－—–―~〜]")
_CN_DIGITS: Final = {
    "零": 0, "〇": 0, "○": 0, "一": 1, "幺": 1, "二": 2, "两": 2, "三": 3, "四": 4,
    "五": 5, "六": 6, "七": 7, "八": 8, "九": 9,
}  # fmt: skip
_CN_UNITS: Final = {"十": 10, "百": 100, "千": 1000}
_NUM_SUFFIX: Final = "号|栋|幢|座|楼|单元|室|层|弄|户|院"
_CN_NUMBER: Final = re.compile(rf"([零〇○一幺二两三四五六七八九十百千]+)(?={_NUM_SUFFIX})")

# Static administrative prefixes above the district (the data holds the district and below).
PROVINCE_CITY: Final = ("江苏省", "江苏", "盐城市", "盐城")
# Generic synonyms applied to names and queries alike (开发区 = 经济开发区).
SYNONYMS: Final = (("经济技术开发区", "开发区"), ("经济开发区", "开发区"), ("號", "号"))

_DASH_TRIPLE: Final = re.compile(r"^(\d{1,5})-(\d{1,2})-(\d{1,5})(?:室|户)?")
_TAIL: Final = re.compile(
    r"^(?P<num>\d{1,5})"
    r"(?:(?:-|之)(?P<sub>\d{1,4}))?"
    r"(?P<suffix>号楼|号院|号|栋|幢|座|楼|院|弄)?"
    r"(?:(?P<unit>\d{1,2})单元)?"
    r"(?:(?P<floor>\d{1,2})[层楼])?"
    r"(?:(?P<room>\d{1,5})(?:室|户|号房|房)?)?"
)
_DIRECTION: Final = r"(?:东南|东北|西南|西北|东|南|西|北|前|后|左|右|上|下|内|外|里|旁|斜对|对)"
_RELATIVE_PART: Final = (
    rf"(?:(?:往|向|朝|靠)?{_DIRECTION}(?:门口|侧面|门|侧|面|边|角|方|口|头|端|部)?"
    r"|斜对面|对面|附近|周边|周围|隔壁|旁边|边上|门口|相向|相邻|楼下|楼上|里面|外面)"
)
_DISTANCE: Final = r"(?:约|大约)?\d+(?:\.\d+)?(?:米|m|公里|km)(?:处|左右|附近)?"
_RELATIVE: Final = re.compile(rf"(?:{_RELATIVE_PART}(?:{_DISTANCE})?|处)+")
_RELATIVE_END: Final = re.compile(rf"(?:{_RELATIVE_PART}(?:{_DISTANCE})?)+$")
BUILDING_SUFFIXES: Final = frozenset({"栋", "幢", "座", "楼", "号楼"})


@dataclass(frozen=True, slots=True)
class Tail:
    """What follows a base name: number, sub-number, suffix, unit, room and the rest."""

    number: int | None = None
    sub: int | None = None
    suffix: str | None = None
    unit: int | None = None
    room: str | None = None
    rest: str = ""
    floor: int | None = None

    @property
    def detail(self) -> str | None:
        """The part below the plate (``2单元3层301室``), if any."""
        parts = (
            f"{self.unit}单元" if self.unit else "",
            f"{self.floor}层" if self.floor else "",
            f"{self.room}室" if self.room else "",
        )
        return "".join(parts) or None


def cn_to_int(text: str) -> int:
    """Convert a Chinese numeral (``三十二``, ``一百零五``, ``三零一``) to an int."""
    if not any(ch in _CN_UNITS for ch in text):
        return int("".join(str(_CN_DIGITS[ch]) for ch in text))
    total, current = 0, 0
    for ch in text:
        if ch in _CN_UNITS:
            total += (current or 1) * _CN_UNITS[ch]
            current = 0
        else:
            current = _CN_DIGITS[ch]
    return total + current


def _numerals(match: re.Match[str]) -> str:
    try:
        return str(cn_to_int(match.group(1)))
    except (KeyError, ValueError):
        return match.group(1)


def spoken_form(text: str) -> str:
    """NFKC, simplified, lower case, no punctuation; numerals kept (for pinyin of names)."""
    return _DROP.sub("", unicodedata.normalize("NFKC", text).translate(_TRADITIONAL).lower())


def normalize(text: str) -> str:
    """Canonical form of a query or a name (see the module docstring)."""
    out = unicodedata.normalize("NFKC", text).translate(_TRADITIONAL).lower()
    out = _DASHES.sub("-", _DROP.sub("", out)).replace("#", "号")
    for old, new in SYNONYMS:
        out = out.replace(old, new)
    return _CN_NUMBER.sub(_numerals, out)


def validate_query(value: str | None, field: str = "q") -> str:
    """Reject empty, over-long or control-character queries with a 400 naming ``field``."""
    if value is None or not value.strip():
        raise InvalidInput("The query is empty.", [FieldIssue(field, "must not be empty")])
    if len(value) > MAX_QUERY_CHARS:
        msg = f"is {len(value)} characters long; at most {MAX_QUERY_CHARS} are accepted"
        raise InvalidInput("The query is too long.", [FieldIssue(field, msg)])
    for pos, ch in enumerate(value):
        if unicodedata.category(ch) in ("Cc", "Cs"):
            msg = f"contains control character U+{ord(ch):04X} at position {pos}"
            raise InvalidInput("The query contains control characters.", [FieldIssue(field, msg)])
    if not normalize(value):
        msg = "holds only punctuation or spaces"
        raise InvalidInput("The query is empty after normalisation.", [FieldIssue(field, msg)])
    return value


def parse_tail(text: str) -> Tail:
    """Parse the number, suffix, unit and room at the start of ``text``; keep the rest."""
    triple = _DASH_TRIPLE.match(text)
    if triple:
        number, unit, room = triple.groups()
        return Tail(int(number), None, None, int(unit), room, text[triple.end() :])
    m = _TAIL.match(text)
    if not m:
        return Tail(rest=text)
    sub, unit, floor = m.group("sub"), m.group("unit"), m.group("floor")
    return Tail(
        number=int(m.group("num")),
        sub=int(sub) if sub else None,
        suffix=m.group("suffix"),
        unit=int(unit) if unit else None,
        room=m.group("room"),
        rest=text[m.end() :],
        floor=int(floor) if floor else None,
    )


def is_relative(text: str) -> bool:
    """True when ``text`` is a relative description (东门, 旁, 对面, 北侧约50米…)."""
    return bool(text) and _RELATIVE.fullmatch(text) is not None


def split_relative_end(text: str) -> tuple[str, str | None]:
    """Split a trailing relative description (``莱因城东门`` → ``莱因城``, ``东门``)."""
    m = _RELATIVE_END.search(text)
    if not m or m.start() < 2:
        return text, None
    return text[: m.start()], m.group(0)


def split_number(text: str) -> list[tuple[str, str]]:
    """Ways to split at a digit run: (base text, tail from the number); the whole text if none.

    A name may hold a number itself (东方1号9栋), so every digit run (at most three) is tried,
    and the whole text last.
    """
    cuts = [m.start() for m in re.finditer(r"(?<!\d)\d", text) if m.start() > 0][:3]
    return [(text[:i], text[i:]) for i in cuts] + [(text, "")]


def is_ascii_query(text: str) -> bool:
    """Letters (pinyin or initials), optionally followed by digits: ``lyc``, ``xfl23``."""
    return bool(re.fullmatch(r"[a-z]+[0-9a-z\-]*", text))


def split_ascii(text: str) -> tuple[str, str]:
    """Split a pinyin query into letters and the numeric tail (``xfl23`` → ``xfl``, ``23``)."""
    m = re.match(r"[a-z]+", text)
    letters = m.group(0) if m else ""
    return letters, text[len(letters) :]
