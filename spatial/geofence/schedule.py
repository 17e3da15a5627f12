"""Fence schedules (生效时段): weekday/time windows in Asia/Shanghai.

JSON form stored in ``geofences.schedule``::

    {"windows": [{"days": [1, 2, 3, 4, 5], "start": "07:00", "end": "09:00"}]}

``days`` are ISO weekdays (1 = Monday … 7 = Sunday; omitted = every day). A window whose end is
not after its start runs overnight (``22:00``–``06:00``) and belongs to the day it starts on.
No schedule (``null``/``{}``/no windows) means always active.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

TZ = ZoneInfo("Asia/Shanghai")
ALL_DAYS = frozenset(range(1, 8))


class ScheduleError(ValueError):
    """A schedule document is malformed; ``field`` names the offending member."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True)
class Window:
    """One weekly time window."""

    days: frozenset[int]
    start: time
    end: time

    def contains(self, local: datetime) -> bool:
        """True when the local (Asia/Shanghai) time falls inside the window."""
        clock = local.time().replace(tzinfo=None)
        if self.start < self.end:
            return local.isoweekday() in self.days and self.start <= clock < self.end
        if clock >= self.start:  # overnight, evening part: the window's own day
            return local.isoweekday() in self.days
        yesterday = (local - timedelta(days=1)).isoweekday()
        return clock < self.end and yesterday in self.days


@dataclass(frozen=True)
class Schedule:
    """A set of windows; empty means always active."""

    windows: tuple[Window, ...] = ()

    @property
    def always(self) -> bool:
        """True when the fence is active at any time."""
        return not self.windows

    def active(self, at: datetime) -> bool:
        """True when the schedule is active at ``at`` (an aware datetime)."""
        if not self.windows:
            return True
        local = at.astimezone(TZ)
        return any(w.contains(local) for w in self.windows)


ALWAYS = Schedule()


def _clock(value: Any, field: str) -> time:
    if not isinstance(value, str):
        raise ScheduleError(field, "must be a HH:MM string")
    try:
        return time.fromisoformat(value)
    except ValueError:
        raise ScheduleError(field, f"{value!r} is not a HH:MM time") from None


def _days(value: Any, field: str) -> frozenset[int]:
    if value is None:
        return ALL_DAYS
    if not isinstance(value, list) or not value:
        raise ScheduleError(field, "must be a non-empty list of ISO weekdays 1–7")
    if not all(isinstance(d, int) and 1 <= d <= 7 for d in value):
        raise ScheduleError(field, "weekdays are integers 1 (Monday) … 7 (Sunday)")
    return frozenset(value)


def parse_schedule(raw: dict[str, Any] | None) -> Schedule:
    """Validate and parse a schedule document (raises ``ScheduleError``)."""
    if not raw:
        return ALWAYS
    if not isinstance(raw, dict):
        raise ScheduleError("schedule", "must be an object with 'windows'")
    windows = raw.get("windows") or []
    if not isinstance(windows, list):
        raise ScheduleError("schedule.windows", "must be a list")
    out = []
    for n, window in enumerate(windows):
        field = f"schedule.windows[{n}]"
        if not isinstance(window, dict):
            raise ScheduleError(field, "must be an object with start and end")
        start = _clock(window.get("start"), f"{field}.start")
        end = _clock(window.get("end"), f"{field}.end")
        if start == end:
            raise ScheduleError(f"{field}.end", "must differ from start")
        out.append(Window(_days(window.get("days"), f"{field}.days"), start, end))
    return Schedule(tuple(out))
