"""Position fixes (定位点) from vehicle terminals: parsing and the checks that need no database.

A fix arrives as a JSON object (HTTP batch item or MQTT payload)::

    {"terminal_id": "T0001", "device_time": "2026-11-25T08:00:00+08:00", "lon": 120.47,
     "lat": 33.20, "crs": "gcj02", "speed_kmh": 32.5, "heading": 90, "sealed": true,
     "load_kg": 15200}

``device_time`` is ISO 8601 (a naive time is Beijing time) or epoch seconds/milliseconds;
``crs`` is ``wgs84`` (default), ``gcj02``, ``bd09`` or ``cgcs2000``. Every rejected fix carries
one reason of :data:`REASONS`; the database checks (unknown terminal, implied speed against the
vehicle's previous fix, duplicates) live in :mod:`layers.fleet.ingest`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Literal
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt

from spatial.crs import ClientCRS

BEIJING: Final = ZoneInfo("Asia/Shanghai")
MAX_FUTURE: Final = timedelta(minutes=2)  # device clocks may run a little fast
MAX_SPEED_KMH: Final = 150.0  # implied speed above this between two fixes = GPS jump
JUMP_TOLERANCE_M: Final = 50.0  # GPS noise allowed on top of the implied-speed limit
MAX_REPORTED_SPEED_KMH: Final = 250.0
PAYLOAD_KEEP: Final = 2000  # characters of a raw payload kept in the quarantine

Reason = Literal[
    "malformed", "bad_coordinates", "future_time", "unknown_terminal", "speed_jump", "duplicate"
]
REASONS: Final[tuple[str, ...]] = (
    "malformed",  # not JSON, missing or mistyped fields
    "bad_coordinates",  # NaN, out of range, or outside China (0,0 from a terminal without fix)
    "future_time",  # device time more than MAX_FUTURE ahead of the server
    "unknown_terminal",  # no active terminal bound to a vehicle
    "speed_jump",  # implied speed from the previous accepted fix above MAX_SPEED_KMH
    "duplicate",  # same vehicle and device time already received (dropped, not quarantined)
)
FIX_CRS: Final = {
    "wgs84": ClientCRS.WGS84,
    "gcj02": ClientCRS.GCJ02,
    "bd09": ClientCRS.BD09,
    "cgcs2000": ClientCRS.CGCS2000,
}
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_EARTH_R: Final = 6371008.8
_CHINA_LON: Final = (72.004, 137.8347)  # the GCJ-02 box of spatial.crs
_CHINA_LAT: Final = (0.8293, 55.8271)


@dataclass(frozen=True, slots=True)
class Fix:
    """One position fix as reported (coordinates in ``crs``)."""

    terminal_id: str
    device_time: datetime
    lon: float
    lat: float
    crs: str = "wgs84"
    speed_kmh: float | None = None
    heading: int | None = None
    sealed: bool | None = None
    load_kg: float | None = None

    @property
    def micros(self) -> int:
        """Device time as microseconds since 1970 (exact)."""
        return (self.device_time - _EPOCH) // timedelta(microseconds=1)


@dataclass(frozen=True, slots=True)
class Rejected:
    """A fix or payload refused with a reason (quarantined unless a duplicate)."""

    reason: str
    detail: str = ""
    terminal_id: str | None = None
    payload: str | None = None


class FixError(ValueError):
    """Raised by :func:`parse_fix` with the rejection reason."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


def parse_time(value: Any) -> datetime:
    """ISO 8601 (naive = Beijing time) or epoch seconds / milliseconds → aware datetime."""
    if isinstance(value, bool):
        raise FixError("malformed", "device_time must be ISO 8601 or epoch seconds")
    if isinstance(value, int | float):
        seconds = float(value) / 1000.0 if value > 1e11 else float(value)
        if not math.isfinite(seconds):
            raise FixError("malformed", "device_time is not finite")
        return datetime.fromtimestamp(seconds, UTC)
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.strip())
        except ValueError:
            raise FixError("malformed", f"device_time {value[:40]!r} is not ISO 8601") from None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=BEIJING)
    raise FixError("malformed", "device_time missing")


def _number(obj: dict[str, Any], *names: str, required: bool = False) -> float | None:
    for name in names:
        value = obj.get(name)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise FixError("malformed", f"{name} must be a number")
        return float(value)
    if required:
        raise FixError("malformed", f"{names[0]} missing")
    return None


def _flag(obj: dict[str, Any], name: str) -> bool | None:
    value = obj.get(name)
    if value is None or isinstance(value, bool):
        return value
    if value in (0, 1):
        return bool(value)
    raise FixError("malformed", f"{name} must be a boolean")


def _terminal(obj: dict[str, Any], default: str | None) -> str:
    terminal = default or obj.get("terminal_id") or obj.get("tid")
    if not isinstance(terminal, str | int) or isinstance(terminal, bool) or not str(terminal):
        raise FixError("malformed", "terminal_id missing")
    terminal = str(terminal).strip()
    if len(terminal) > 32:
        raise FixError("malformed", "terminal_id longer than 32 characters")
    return terminal


def _coordinates(lon: float, lat: float) -> None:
    if not (math.isfinite(lon) and math.isfinite(lat) and -180 <= lon <= 180 and -90 <= lat <= 90):
        raise FixError("bad_coordinates", f"lon/lat {lon}, {lat} out of range")
    if not (_CHINA_LON[0] <= lon <= _CHINA_LON[1] and _CHINA_LAT[0] <= lat <= _CHINA_LAT[1]):
        raise FixError("bad_coordinates", f"lon/lat {lon}, {lat} outside China")


def parse_fix(obj: Any, terminal_id: str | None = None) -> Fix:
    """Check one JSON object and build a :class:`Fix`; ``terminal_id`` overrides (MQTT topic)."""
    if not isinstance(obj, dict):
        raise FixError("malformed", "a fix must be a JSON object")
    terminal = _terminal(obj, terminal_id)
    crs = str(obj.get("crs") or "wgs84").lower().replace("-", "")
    if crs not in FIX_CRS:
        raise FixError("malformed", f"crs must be one of {', '.join(FIX_CRS)}")
    lon = _number(obj, "lon", "lng", required=True)
    lat = _number(obj, "lat", required=True)
    assert lon is not None and lat is not None  # noqa: S101 - required above
    _coordinates(lon, lat)
    speed = _number(obj, "speed_kmh", "speed")
    if speed is not None and not 0 <= speed <= MAX_REPORTED_SPEED_KMH:
        raise FixError("malformed", f"speed {speed} km/h out of range")
    heading = _number(obj, "heading", "direction")
    if heading is not None and not 0 <= heading <= 360:
        raise FixError("malformed", f"heading {heading} out of range")
    load = _number(obj, "load_kg", "weight_kg")
    if load is not None and not 0 <= load <= 200_000:
        raise FixError("malformed", f"load {load} kg out of range")
    return Fix(
        terminal_id=terminal,
        device_time=parse_time(obj.get("device_time", obj.get("time", obj.get("t")))),
        lon=lon,
        lat=lat,
        crs=crs,
        speed_kmh=speed,
        heading=None if heading is None else int(heading) % 360,
        sealed=_flag(obj, "sealed"),
        load_kg=load,
    )


def parse_many(
    items: list[Any], terminal_id: str | None = None, raw: str | None = None
) -> tuple[list[Fix], list[Rejected]]:
    """Parse a list of JSON fixes; bad items become :class:`Rejected`, good ones are kept."""
    fixes: list[Fix] = []
    rejected: list[Rejected] = []
    for item in items:
        try:
            fixes.append(parse_fix(item, terminal_id))
        except FixError as exc:
            tid = terminal_id or (item.get("terminal_id") if isinstance(item, dict) else None)
            rejected.append(
                Rejected(exc.reason, exc.detail, _short(tid), clip(raw if raw else repr(item)))
            )
    return fixes, rejected


def _short(value: Any) -> str | None:
    return None if value is None else str(value)[:64]


def clip(payload: str | None) -> str | None:
    """Keep the start of a raw payload for the quarantine (NUL bytes removed)."""
    return None if payload is None else payload[:PAYLOAD_KEEP].replace("\x00", "\ufffd")


def haversine_m(
    lon1: npt.NDArray[np.float64],
    lat1: npt.NDArray[np.float64],
    lon2: npt.NDArray[np.float64],
    lat2: npt.NDArray[np.float64],
) -> npt.NDArray[np.float64]:
    """Great-circle distances in metres (vectorised)."""
    p1, p2 = np.radians(lat1), np.radians(lat2)
    dp, dl = p2 - p1, np.radians(lon2 - lon1)
    a = np.sin(dp / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dl / 2) ** 2
    return 2 * _EARTH_R * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0)))


def is_jump(distance_m: npt.NDArray[np.float64], seconds: npt.NDArray[np.float64]) -> Any:
    """True where moving ``distance_m`` in ``seconds`` implies more than MAX_SPEED_KMH."""
    return distance_m > MAX_SPEED_KMH / 3.6 * np.abs(seconds) + JUMP_TOLERANCE_M
