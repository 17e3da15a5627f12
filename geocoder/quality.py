"""Perturbed geocoding probes generated from the database, for the quality suite and bench.

Ground truth is read straight from the tables (not from the index), then each query is
perturbed the way people and data feeds actually write addresses: full or dropped prefixes,
full-width or Chinese-numeral numbers, 號/#, building suffix variants, unit and room, a relative
description, aliases and former names, pinyin, and one wrong or missing character. A typo is
only used when the misspelt name is still closer to its own place than to any other name, so
that top-1 is well defined. Everything is seeded: the same database gives the same probes.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import psycopg
from rapidfuzz import process
from rapidfuzz.distance import Levenshtein

from geocoder.names import initials_of, pinyin_of
from geocoder.normalize import normalize

SEED = 320904
PREFIX = "江苏省盐城市"
RELATIVE = ("东门", "旁", "对面", "北侧约30米", "附近", "西侧")
STREETS = ("丰华街道", "大中街道", "开发区")  # a wrong street is a common slip
_CN = "零一二三四五六七八九"
_FULLWIDTH = str.maketrans("0123456789", "０１２３４５６７８９")


@dataclass(frozen=True, slots=True)
class Probe:
    """One query, the code its top candidate must have, and how it was perturbed."""

    query: str
    expected: str
    perturbation: str


@dataclass(slots=True)
class Truth:
    """Ground truth rows: plates, POIs and named places (roads, compounds, areas)."""

    plates: list[tuple] = field(default_factory=list)
    pois: list[tuple] = field(default_factory=list)
    named: list[tuple] = field(default_factory=list)


def fetch_truth(url: str) -> Truth:
    """Read the ground truth with a plain connection (libpq URL)."""
    with psycopg.connect(url) as conn:
        plates = conn.execute(
            "SELECT a.code, a.kind, a.base_name, a.number, a.suffix, a.standard_address,"
            " COALESCE(r.alias, c.alias), COALESCE(r.old_name, c.old_name),"
            " a.grid_code, ST_X(a.geom), ST_Y(a.geom), COALESCE(a.road_code, a.compound_code)"
            " FROM city.addresses a LEFT JOIN city.roads r ON r.code = a.road_code"
            " LEFT JOIN city.compounds c ON c.code = a.compound_code ORDER BY a.code"
        ).fetchall()
        pois = conn.execute(
            "SELECT p.code, p.name, a.standard_address FROM city.pois p"
            " LEFT JOIN city.addresses a ON a.code = p.address_code ORDER BY p.code"
        ).fetchall()
        named = conn.execute(
            "SELECT 'road', code, name, alias, old_name FROM city.roads UNION ALL"
            " SELECT 'compound', code, name, alias, old_name FROM city.compounds UNION ALL"
            " SELECT 'community', code, name, alias, old_name FROM city.communities UNION ALL"
            " SELECT 'street', code, name, alias, old_name FROM city.streets ORDER BY 2"
        ).fetchall()
    return Truth(list(plates), list(pois), list(named))


def cn_number(n: int) -> str:
    """23 → 二十三, 105 → 一百零五, 10 → 十."""
    if n < 10:
        return _CN[n]
    if n < 20:
        return "十" + (_CN[n % 10] if n % 10 else "")
    if n < 100:
        return _CN[n // 10] + "十" + (_CN[n % 10] if n % 10 else "")
    rest = n % 100
    tail = "" if rest == 0 else ("零" + _CN[rest] if rest < 10 else cn_number(rest))
    if 10 <= rest < 20:
        tail = "一" + tail
    return _CN[n // 100] + "百" + tail


class Speller:
    """Makes misspellings that stay closest to their own place."""

    def __init__(self, truth: Truth) -> None:
        """Index every name and alias of the ground truth."""
        self.names: dict[str, str] = {}
        for row in [*truth.named, *((("poi", c, n, None, None) for c, n, _ in truth.pois))]:
            _kind, code, name, alias, old = row
            for value in [name, *(alias or "").split("/"), *(old or "").split("/")]:
                if value:
                    self.names.setdefault(normalize(value), code)
        self.keys = sorted(self.names)
        self.chars = sorted({ch for n in self.names for ch in n if "\u4e00" <= ch <= "\u9fff"})
        self.sounds: dict[str, list[str]] = {}
        for ch in self.chars:
            self.sounds.setdefault(pinyin_of(ch), []).append(ch)

    def unambiguous(self, wrong: str, code: str, own: str) -> bool:
        """True when no other place has a name as close to ``wrong`` as ``own`` is."""
        if wrong in self.names:
            return False
        cutoff = Levenshtein.distance(wrong, own)
        near = process.extract(
            wrong, self.keys, scorer=Levenshtein.distance, score_cutoff=cutoff, limit=None
        )
        return all(self.names[key] == code for key, _dist, _ in near)

    def typo(self, rng: random.Random, name: str, code: str) -> tuple[str, str] | None:
        """A homophone, a missing or a wrong character; None when every try is ambiguous."""
        positions = [i for i, ch in enumerate(name) if "\u4e00" <= ch <= "\u9fff"]
        kinds = ["homophone", "missing_char", "wrong_char"]
        rng.shuffle(kinds)
        for how in kinds:
            rng.shuffle(positions)
            for i in positions:
                for wrong in self._variants(rng, how, name, i):
                    if len(wrong) >= 2 and self.unambiguous(
                        normalize(wrong), code, normalize(name)
                    ):
                        return how, wrong
        return None

    def _variants(self, rng: random.Random, how: str, name: str, i: int) -> list[str]:
        if how == "missing_char":
            return [name[:i] + name[i + 1 :]]
        if how == "homophone":
            pool = [c for c in self.sounds.get(pinyin_of(name[i]), []) if c != name[i]]
        else:
            pool = [c for c in rng.sample(self.chars, 3) if c != name[i]]
        return [name[:i] + c + name[i + 1 :] for c in pool[:2]]


def _plate(rng: random.Random, sp: Speller, row: tuple) -> Probe:
    code, kind, base, number, suffix, std, alias, old = row[:8]
    short = f"{base}{number}{suffix}"
    door = kind == "门牌"
    other = rng.choice(("號", "#")) if door else rng.choice(("幢", "座", "号楼", "#楼"))
    room = f"{rng.randint(1, 4)}单元{rng.randint(1, 6)}0{rng.randint(1, 4)}室"
    former = (alias or old or "").split("/")[0]
    initials = not door and _unique_initials(sp, base)
    ways: list[tuple[str, str | None]] = [
        ("standard", std),
        ("province_prefix", PREFIX + std),
        ("dropped_prefix", short),
        ("fullwidth", (PREFIX + std if rng.random() < 0.5 else short).translate(_FULLWIDTH)),
        ("chinese_numeral", f"{base}{cn_number(number)}{suffix}"),
        ("suffix_variant", f"{base}{number}{other}"),
        ("spaces", f"大丰区 {base} {number} {suffix}"),
        ("relative", short + rng.choice(RELATIVE)),
        ("wrong_street", f"大丰区{rng.choice([x for x in STREETS if x not in std])}{short}"),
        ("alias", f"{former}{number}{suffix}" if former else None),
        ("unit_room", None if door else short + room),
        ("initials", f"{initials_of(base)}{number}" if initials else None),
        ("typo", "?"),
        ("combined", "?"),
    ]
    options = [(how, q) for how, q in ways if q]
    how, query = options[rng.randrange(len(options))]
    if how in ("typo", "combined"):
        bad = sp.typo(rng, base, row[11])
        if bad is None:
            return Probe(short, code, "dropped_prefix")
        query = f"{bad[1]}{number}{suffix}"
        if how == "combined":  # typo + prefix + full-width digits + relative description
            query = PREFIX + "大丰区" + query.translate(_FULLWIDTH) + rng.choice(RELATIVE)
        how = f"combined_{bad[0]}" if how == "combined" else bad[0]
    return Probe(query, code, how)


def _unique_initials(sp: Speller, name: str) -> bool:
    target = initials_of(normalize(name))
    return sum(1 for n in sp.names if initials_of(n) == target) == 1


def _named(rng: random.Random, sp: Speller, row: tuple) -> Probe:
    kind, code, name, alias, old = row
    ways: list[tuple[str, str | None]] = [
        ("exact", name),
        ("alias", (alias or old or "").split("/")[0] or None),
        ("province_prefix", PREFIX + "大丰区" + name),
        ("pinyin", pinyin_of(normalize(name)) if kind == "compound" else None),
        ("initials", initials_of(name) if _unique_initials(sp, name) else None),
    ]
    bad = sp.typo(rng, name, code)
    if bad and len(name) >= 3:
        ways.append((bad[0], bad[1]))
    options = [(how, q) for how, q in ways if q]
    how, query = options[rng.randrange(len(options))]
    return Probe(query, code, how)


def _poi(rng: random.Random, sp: Speller, row: tuple) -> Probe:
    code, name, plate_address = row
    ways: list[tuple[str, str | None]] = [
        ("exact", name),
        ("with_address", f"{plate_address}{name}" if plate_address else None),
        ("relative", name + rng.choice(RELATIVE)),
    ]
    bad = sp.typo(rng, name, code) if len(name) >= 4 else None
    if bad:
        ways.append((bad[0], bad[1]))
    options = [(how, q) for how, q in ways if q]
    how, query = options[rng.randrange(len(options))]
    return Probe(query, code, how)


def forward_probes(
    truth: Truth, plates: int = 360, pois: int = 80, named: int = 80, seed: int = SEED
) -> list[Probe]:
    """Deterministic perturbed forward queries with their expected top-1 codes."""
    rng = random.Random(seed)
    sp = Speller(truth)
    out = [_plate(rng, sp, row) for row in rng.sample(truth.plates, min(plates, len(truth.plates)))]
    out += [_poi(rng, sp, row) for row in rng.sample(truth.pois, min(pois, len(truth.pois)))]
    out += [_named(rng, sp, row) for row in rng.sample(truth.named, min(named, len(truth.named)))]
    return out


def reverse_probes(truth: Truth, count: int = 150, seed: int = SEED) -> list[tuple]:
    """Plates to reverse at their own point: (code, grid_code, lon, lat)."""
    rng = random.Random(seed + 1)
    rows = rng.sample(truth.plates, min(count, len(truth.plates)))
    return [(r[0], r[8], r[9], r[10]) for r in rows]
