"""The address normaliser and parser: pure text, no database."""

from __future__ import annotations

import pytest

from geocoder.normalize import (
    cn_to_int,
    is_relative,
    normalize,
    parse_tail,
    split_number,
    split_relative_end,
    validate_query,
)
from spatial.errors import InvalidInput


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("幸福路２３号", "幸福路23号"),
        ("幸福路 23 号", "幸福路23号"),
        ("幸福路23號", "幸福路23号"),
        ("幸福路23#", "幸福路23号"),
        ("幸福路三十二号", "幸福路32号"),
        ("八一路一百零五号", "八一路105号"),
        ("莱茵城五号楼二单元三零一室", "莱茵城5号楼2单元301室"),
        ("工农二村十五幢", "工农二村15幢"),
        ("碧桂园一期", "碧桂园一期"),
        ("八一路", "八一路"),
        ("东方一号", "东方1号"),
        ("大丰经济开发区", "大丰开发区"),
        ("大丰经济技术开发区", "大丰开发区"),
        ("杨记超市（友谊路店）", "杨记超市友谊路店"),
        ("ＬＹＣ", "lyc"),
        ("莱茵城５棟", "莱茵城5栋"),
    ],
)
def test_normalize(raw: str, expected: str) -> None:
    assert normalize(raw) == expected


@pytest.mark.parametrize(
    ("text", "number", "suffix", "detail", "rest"),
    [
        ("23号", 23, "号", None, ""),
        ("23", 23, None, None, ""),
        ("23号东门", 23, "号", None, "东门"),
        ("5栋2单元301室", 5, "栋", "2单元301室", ""),
        ("5号楼2单元", 5, "号楼", "2单元", ""),
        ("5幢3层", 5, "幢", "3层", ""),
        ("5-2-301", 5, None, "2单元301室", ""),
        ("12号李记面馆对面", 12, "号", None, "李记面馆对面"),
        ("东门", None, None, None, "东门"),
    ],
)
def test_parse_tail(
    text: str, number: int | None, suffix: str | None, detail: str | None, rest: str
) -> None:
    tail = parse_tail(text)
    assert (tail.number, tail.suffix, tail.detail, tail.rest) == (number, suffix, detail, rest)


def test_parse_tail_sub_number() -> None:
    tail = parse_tail("23-1号")
    assert (tail.number, tail.sub, tail.suffix) == (23, 1, "号")


@pytest.mark.parametrize(
    ("text", "value"),
    [("二十", 20), ("十五", 15), ("三十二", 32), ("一百零五", 105), ("三零一", 301), ("两百", 200)],
)
def test_chinese_numerals(text: str, value: int) -> None:
    assert cn_to_int(text) == value


@pytest.mark.parametrize(
    ("text", "relative"),
    [
        ("东门", True),
        ("旁", True),
        ("对面", True),
        ("北侧约30米", True),
        ("东侧约20米处", True),
        ("往东50米", True),
        ("西南角", True),
        ("东门旁边", True),
        ("南向路店", False),
        ("向记超市", False),
        ("李记面馆", False),
    ],
)
def test_relative_descriptions(text: str, relative: bool) -> None:
    assert is_relative(text) is relative


def test_relative_description_at_the_end() -> None:
    assert split_relative_end("莱因城东门") == ("莱因城", "东门")
    assert split_relative_end("人民公园北侧约50米") == ("人民公园", "北侧约50米")
    assert split_relative_end("城东") == ("城东", None)


def test_split_number_tries_every_digit_run() -> None:
    assert split_number("东方1号9栋") == [
        ("东方", "1号9栋"),
        ("东方1号", "9栋"),
        ("东方1号9栋", ""),
    ]


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("，。、", "punctuation"),
        ("幸" * 1000, "1000 characters"),
        ("幸福路\x0723号", "U+0007"),
        ("幸福路\x7f23号", "U+007F"),
    ],
)
def test_validate_query_rejects(value: str, reason: str) -> None:
    with pytest.raises(InvalidInput) as err:
        validate_query(value)
    assert err.value.errors[0].field == "q"
    assert reason in err.value.errors[0].message or reason in err.value.detail


def test_validate_query_accepts_a_normal_address() -> None:
    assert validate_query("江苏省盐城市大丰区幸福路23号") == "江苏省盐城市大丰区幸福路23号"


def test_zero_width_characters_are_dropped() -> None:
    assert normalize(validate_query("\ufeff幸福路\u200b23号")) == "幸福路23号"
