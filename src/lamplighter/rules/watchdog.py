"""The dead-man's switch: when is a source blind, and when should we look again.

A source is blind when it declared `expect_every` and has been silent longer than that
(a Watchdog alert that stopped, a daily mail that did not come), or when it has been
disconnected for longer than a grace period. Silence looks exactly like "all is well",
so a blind source gets a signal of its own.
"""

from __future__ import annotations

from dataclasses import dataclass

from lamplighter.model import format_duration

DISCONNECTED_GRACE = 60.0  # a reconnect within a minute is a blip, not blindness


@dataclass(frozen=True)
class Watch:
    """What the watchdog knows about one source."""

    source: str
    expect_every: float | None
    last_heard: float  # its last event, or when watching began
    disconnected_since: float | None


def blind_reason(watch: Watch, now: float, grace: float = DISCONNECTED_GRACE) -> str | None:
    """Why the source is blind at `now`, or None when it is fine."""
    if watch.disconnected_since is not None and now - watch.disconnected_since >= grace:
        return f"{watch.source} has been disconnected for {format_duration(now - watch.disconnected_since)}"
    if watch.expect_every is not None and now - watch.last_heard >= watch.expect_every:
        silent, expected = format_duration(now - watch.last_heard), format_duration(watch.expect_every)
        return f"{watch.source} has been silent for {silent} (expected every {expected})"
    return None


def blind_deadline(watch: Watch, grace: float = DISCONNECTED_GRACE) -> float | None:
    """The moment the source turns blind if nothing changes before then."""
    moments = []
    if watch.disconnected_since is not None:
        moments.append(watch.disconnected_since + grace)
    if watch.expect_every is not None:
        moments.append(watch.last_heard + watch.expect_every)
    return min(moments, default=None)
