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
