"""Convert file values to column types: text, integers, numbers, dates, booleans."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from datetime import date, datetime, timedelta, timezone
from typing import Any, Final

from spatial.importer.schema import Column

CHINA_TZ: Final = timezone(timedelta(hours=8), "Asia/Shanghai")


INT_RANGES: Final = {"integer": 2**31, "smallint": 2**15, "bigint": 2**63}


TRUE_WORDS: Final = {"1", "true", "t", "yes", "y", "是"}


FALSE_WORDS: Final = {"0", "false", "f", "no", "n", "否"}


def coerce(value: Any, column: Column) -> Any:
    """Convert a file value to the column's Python type; ValueError naming the problem."""
    if isinstance(value, str):
        value = value.strip()
        if not value:
            return None
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    converter = _CONVERTERS.get(column.kind)
    if converter is None:
        return value
    result = converter(value)
    if column.kind == "int" and abs(result) >= INT_RANGES.get(column.data_type, 2**63):
        raise ValueError(f"{value!r} is out of range for {column.data_type}")
    return result


def _to_str(value: Any) -> str:
    """Text; integral floats (codes read from .dbf numbers) lose their ``.0``."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value)


def _to_int(value: Any) -> int:
    """Integer from int, integral float or text."""
    if isinstance(value, bool):
        raise ValueError(f"expected an integer, got {value!r}")
    if isinstance(value, int):
        return value
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"expected an integer, got {value!r}") from None
    if not number.is_integer():
        raise ValueError(f"expected an integer, got {value!r}")
    return int(number)


def _to_float(value: Any) -> float:
    """Finite float from a number or text."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"expected a number, got {value!r}") from None
    if not math.isfinite(number):
        raise ValueError(f"expected a finite number, got {value!r}")
    return number


def _to_datetime(value: Any) -> datetime:
    """Datetime from ISO-like text (``2024-06-30``, ``2024/06/30 10:00``); naive → UTC+8."""
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, date):
        parsed = datetime(value.year, value.month, value.day)
    else:
        try:
            parsed = datetime.fromisoformat(_iso_text(str(value)))
        except ValueError:
            raise ValueError(f"expected a date/time like 2024-06-30 10:00, got {value!r}") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=CHINA_TZ)


def _iso_text(text: str) -> str:
    """Normalise ``2024/6/30`` and ``2024年6月30日`` to ISO ``2024-06-30``."""
    text = text.strip().replace("/", "-").replace("年", "-").replace("月", "-")
    text = text.replace("日", " ").strip()
    date_part, sep, rest = text.partition(" ")
    pieces = date_part.split("-")
    if len(pieces) == 3 and all(p.isdigit() for p in pieces):
        date_part = "-".join(p.zfill(2) for p in pieces)
    rest = re.sub(r"^(\d)(?=:)", r"0\1", rest.strip())
    return f"{date_part}{sep}{rest}" if rest else date_part


def _to_date(value: Any) -> date:
    """Date from ISO-like text or a datetime."""
    try:
        return _to_datetime(value).date()
    except ValueError:
        raise ValueError(f"expected a date like 2024-06-30, got {value!r}") from None


def _to_bool(value: Any) -> bool:
    """Boolean from bool, 0/1 or yes/no words (是/否)."""
    if isinstance(value, bool):
        return value
    word = str(value).strip().lower()
    if word in TRUE_WORDS or word in FALSE_WORDS:
        return word in TRUE_WORDS
    raise ValueError(f"expected true/false, got {value!r}")


_CONVERTERS: Final[dict[str, Callable[[Any], Any]]] = {
    "str": _to_str,
    "int": _to_int,
    "float": _to_float,
    "date": _to_date,
    "datetime": _to_datetime,
    "bool": _to_bool,
}
