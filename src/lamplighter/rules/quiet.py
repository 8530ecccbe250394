"""Quiet hours: daily windows, possibly across midnight, in a given time zone."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from lamplighter.config import DAYS, QuietHoursConfig


def in_quiet_hours(windows: list[QuietHoursConfig], now: float) -> bool:
    """True when `now` (epoch seconds) falls inside any window."""
    return any(_inside(window, now) for window in windows)


def _inside(window: QuietHoursConfig, now: float) -> bool:
    zone = ZoneInfo(window.timezone) if window.timezone else None
    local = datetime.fromtimestamp(now, zone) if zone else datetime.fromtimestamp(now).astimezone()
    clock = local.time().replace(tzinfo=None)
    today = DAYS[local.weekday()]
    yesterday = DAYS[(local - timedelta(days=1)).weekday()]
    if window.start <= window.end:
        return today in window.days and window.start <= clock < window.end
    # The window crosses midnight: it belongs to the day on which it starts.
    return (today in window.days and clock >= window.start) or (yesterday in window.days and clock < window.end)


def quiet_windows_around(windows: list[QuietHoursConfig], now: float, days_back: int = 2,
                         days_ahead: int = 8) -> list[tuple[float, float]]:
    """The (start, end) epoch seconds of every quiet window that starts between `days_back` days before
    and `days_ahead` days after `now`, in order of their end."""
    found = [edges for window in windows for offset in range(-days_back, days_ahead + 1)
             if (edges := _window_on(window, now, offset)) is not None]
    return sorted(found, key=lambda edges: edges[1])


def last_quiet_window(windows: list[QuietHoursConfig], now: float) -> tuple[float, float] | None:
    """The quiet window that ended most recently, at or before `now` (within two days), if any."""
    ended = [edges for edges in quiet_windows_around(windows, now, days_ahead=0) if edges[1] <= now]
    return ended[-1] if ended else None


def next_quiet_end(windows: list[QuietHoursConfig], now: float) -> float | None:
    """When the next quiet window after `now` ends (one that is running counts), if any within a week."""
    return next((end for _, end in quiet_windows_around(windows, now, days_back=1) if end > now), None)


def _window_on(window: QuietHoursConfig, now: float, offset: int) -> tuple[float, float] | None:
    zone = ZoneInfo(window.timezone) if window.timezone else None
    local = datetime.fromtimestamp(now, zone) if zone else datetime.fromtimestamp(now).astimezone()
    day = (local + timedelta(days=offset)).date()
    if DAYS[day.weekday()] not in window.days:
        return None
    tzinfo = zone or local.tzinfo
    start = datetime.combine(day, window.start, tzinfo)
    end = datetime.combine(day + timedelta(days=1 if window.start > window.end else 0), window.end, tzinfo)
    return start.timestamp(), end.timestamp()
