"""Plain values that every layer shares: events, levels, signals, lamp states, outcomes.

Standard library only. Parsing helpers for the small value grammars used in the
configuration and the API (colours, durations) live here too, so that every face of
Lamplighter accepts exactly the same spellings.
"""

from __future__ import annotations

import importlib
import re
import time
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any, Protocol, TypeVar

from lamplighter.errors import EventError
from lamplighter.untrusted import storable

T = TypeVar("T")

NAMED_COLORS: dict[str, str] = {
    "red": "#ff0000",
    "orange": "#ff8000",
    "amber": "#ffbf00",
    "yellow": "#ffd000",
    "green": "#00ff00",
    "cyan": "#00ffff",
    "blue": "#0000ff",
    "purple": "#8000ff",
    "magenta": "#ff00ff",
    "pink": "#ff69b4",
    "white": "#ffffff",
    "warmwhite": "#ffd8a8",
    "black": "#000000",
}

_HEX_COLOR = re.compile(r"#?([0-9a-fA-F]{6})")
_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?")
_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}
MAX_DURATION = 365 * 86400.0
MAX_DURATION_CHARS = 32  # longer text is no duration anyone means


def parse_color(value: str) -> str:
    """Return `#rrggbb` for a colour name or hex string; raise ValueError naming it."""
    text = value.strip().lower()
    if text in NAMED_COLORS:
        return NAMED_COLORS[text]
    match = _HEX_COLOR.fullmatch(text)
    if not match:
        known = ", ".join(NAMED_COLORS)
        raise ValueError(f"unknown colour {value!r}: use #rrggbb or one of {known}")
    return "#" + match.group(1)


def parse_duration(value: str | float | int) -> float:
    """Return seconds for `10s`, `2m`, `1.5h`, `250ms` or a plain number of seconds.

    Raise ValueError naming the value for anything else, including a negative, infinite or
    NaN duration, or one longer than MAX_DURATION (no hold, window or snooze lasts a year).
    """
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = _finite_seconds(value)
    else:
        text = str(value).strip()
        match = _DURATION.fullmatch(text) if len(text) <= MAX_DURATION_CHARS else None
        if not match:
            raise ValueError(f"not a duration: {_shown(value)} (use e.g. 10s, 2m, 1h)")
        seconds = float(match.group(1)) * _DURATION_UNITS[match.group(2)]
    if seconds < 0:
        raise ValueError(f"duration must not be negative: {_shown(value)}")
    if not seconds <= MAX_DURATION:  # also NaN
        raise ValueError(f"duration must be at most {MAX_DURATION // 86400:.0f}d, not {_shown(value)}")
    return seconds


def _finite_seconds(value: float | int) -> float:
    """A number as float seconds; an int too large for a float counts as too long, not as a crash."""
    try:
        return float(value)
    except OverflowError:
        return float("inf")


def _shown(value: object) -> str:
    """A value for an error message, cut short: a 400-digit number need not be quoted in full."""
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def format_duration(seconds: float) -> str:
    """The inverse of parse_duration for display: `90` -> `1m30s`."""
    whole = round(seconds)
    minutes, secs = divmod(whole, 60)
    hours, minutes = divmod(minutes, 60)
    parts = [f"{hours}h" if hours else "", f"{minutes}m" if minutes else "", f"{secs}s" if secs else ""]
    return "".join(parts) or "0s"


class Effect(StrEnum):
    """How a lamp shows its colour."""

    SOLID = "solid"
    BLINK = "blink"
    PULSE = "pulse"


class Status(StrEnum):
    """Whether an event starts (or repeats) a problem or says it is over."""

    FIRING = "firing"
    RESOLVED = "resolved"


class Outcome(StrEnum):
    """What happened to an event; stored with it and returned by the API."""

    SHOWN = "shown"
    DEDUPLICATED = "deduplicated"
    THROTTLED = "throttled"
    QUIET = "quiet"
    UNROUTED = "unrouted"
    RESOLVED = "resolved"
    ACKNOWLEDGED = "acknowledged"
    REJECTED = "rejected"


@dataclass(frozen=True)
class LampState:
    """What a lamp shows: the unit every driver applies and reads back."""

    on: bool
    color: str = "#ffffff"
    brightness: int = 100
    effect: Effect = Effect.SOLID

    def to_dict(self) -> dict[str, object]:
        return {"on": self.on, "color": self.color, "brightness": self.brightness, "effect": str(self.effect)}

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> LampState:
        return cls(
            on=bool(data["on"]),
            color=parse_color(str(data.get("color", "#ffffff"))),
            brightness=int(data.get("brightness", 100)),  # type: ignore[call-overload]
            effect=Effect(str(data.get("effect", "solid"))),
        )


LAMP_OFF = LampState(on=False)

UNTIL_ACK = None
"""A level hold of None: the signal lasts until it is acknowledged or resolved."""


@dataclass(frozen=True)
class Level:
    """A named class of event with its look and policy."""

    name: str
    color: str
    priority: int
    effect: Effect = Effect.SOLID
    brightness: int = 100
    hold: float | None = 10.0
    lamps: tuple[str, ...] | None = None  # None: every lamp
    quiet_hours_bypass: bool = False
    sirens: tuple[str, ...] | None = ()  # None: every siren
    escalate_after: float = 120.0  # unacknowledged this long: the sirens sound
    announce: tuple[str, ...] = ()  # chat to post to when shown: Apprise URLs or slack-app:#channel
    fallback: tuple[str, ...] = ()  # when none of its lamps can be reached: other lamps or sirens, Apprise URLs

    @property
    def fallback_outputs(self) -> tuple[str, ...]:
        """The fallback entries that name lamps or sirens (the others are notification URLs)."""
        return tuple(entry for entry in self.fallback if not is_notification_url(entry))

    @property
    def fallback_notices(self) -> tuple[str, ...]:
        """The fallback entries that are notification URLs (Apprise, slack-app:)."""
        return tuple(entry for entry in self.fallback if is_notification_url(entry))

    @property
    def look(self) -> LampState:
        return LampState(on=True, color=self.color, brightness=self.brightness, effect=self.effect)


def is_notification_url(entry: str) -> bool:
    """`ntfy://...`, `tgram://...`, `slack-app:#ops`: a place to post to, not the name of a lamp."""
    return "://" in entry or entry.startswith("slack-app:")


BLIND_LEVEL = "blind"

# The default levels differ in rhythm as well as colour, so that a person who cannot tell red
# from green (about 1 man in 12) still tells a 911 (blinking) from the door (steady) and a 912
# (slow pulse). `palette: colorblind` swaps the colours for PALETTES["colorblind"].
DEFAULT_LEVELS: tuple[Level, ...] = (
    Level(name="911", color=NAMED_COLORS["red"], priority=300, quiet_hours_bypass=True, sirens=None,
          effect=Effect.BLINK),
    Level(name="door", color=NAMED_COLORS["green"], priority=200),
    Level(name="912", color=NAMED_COLORS["yellow"], priority=100, effect=Effect.PULSE),
    # A source that went silent or lost its connection: until it speaks again.
    Level(name=BLIND_LEVEL, color=NAMED_COLORS["purple"], priority=50, effect=Effect.PULSE, brightness=60,
          hold=UNTIL_ACK),
)

PALETTES: dict[str, dict[str, str]] = {
    "default": {},
    # From the Okabe-Ito palette, told apart with deuteranopia and protanopia: vermillion,
    # blue, yellow and reddish purple never fall on one confusion line.
    "colorblind": {"911": "#d55e00", "door": "#0072b2", "912": "#f0e442", BLIND_LEVEL: "#cc79a7"},
}


def default_levels(palette: str = "default") -> tuple[Level, ...]:
    """The default levels in the colours of `palette` (a key of PALETTES)."""
    colours = PALETTES[palette]
    return tuple(replace(level, color=colours.get(level.name, level.color)) for level in DEFAULT_LEVELS)


@dataclass(frozen=True)
class Event:
    """Something that happened, as a source reported it."""

    level: str
    title: str
    body: str = ""
    sender: str = ""
    source: str = "api"
    key: str = ""
    status: Status = Status.FIRING
    labels: dict[str, str] = field(default_factory=dict)
    received_at: float = 0.0
    id: int | None = None
    lamps: tuple[str, ...] = ()  # empty: the level's lamps; else exactly these (a test on one lamp)

    @property
    def dedup_key(self) -> str:
        """The explicit key, else level and title: the same words twice are one incident."""
        return self.key or f"{self.level}:{self.title}"

    def with_id(self, event_id: int) -> Event:
        return replace(self, id=event_id)


def make_event(
    level: str,
    title: str,
    *,
    received_at: float,
    body: str = "",
    sender: str = "",
    source: str = "api",
    key: str = "",
    status: str = "firing",
    labels: dict[str, str] | None = None,
    lamps: tuple[str, ...] = (),
) -> Event:
    """Build an Event from loosely typed input, raising EventError naming the bad field.

    Text is made storable on the way: a lone UTF-16 surrogate (half an emoji cut off by a
    sender) becomes U+FFFD, so the event is kept instead of failing in the journal.
    """
    level, title, body, sender, key = (storable(text) for text in (level, title, body, sender, key))
    if not level.strip():
        raise EventError("level", "must not be empty")
    if not title.strip():
        raise EventError("title", "must not be empty")
    try:
        parsed_status = Status(status)
    except ValueError:
        raise EventError("status", f"must be 'firing' or 'resolved', not {status!r}") from None
    return Event(
        level=level.strip(),
        title=title.strip(),
        body=body,
        sender=sender.strip(),
        source=source,
        key=key.strip(),
        status=parsed_status,
        labels={storable(name): storable(value) for name, value in (labels or {}).items()},
        received_at=received_at,
        lamps=lamps,
    )


@dataclass(frozen=True)
class Signal:
    """An event that won routing and is active on some lamps until it ends."""

    event_id: int
    level: str
    key: str
    title: str
    priority: int
    look: LampState
    lamps: frozenset[str]
    started_at: float
    expires_at: float | None  # None: until acknowledged or resolved
    snoozed_until: float | None = None  # hidden from lamps until then, shown again if still active
    sirens: frozenset[str] = frozenset()
    escalates_at: float | None = None  # from then on, while unacknowledged, the sirens sound too
    fallbacks: frozenset[str] = frozenset()  # outputs used because none of its lamps could be reached

    def active_at(self, now: float) -> bool:
        return self.expires_at is None or now < self.expires_at

    @property
    def outputs(self) -> frozenset[str]:
        """Every lamp and siren this signal may drive."""
        return self.lamps | self.sirens | self.fallbacks

    def outputs_at(self, now: float) -> frozenset[str]:
        """The lamps and fallbacks, plus the sirens once the escalation time has passed."""
        escalated = self.escalates_at is not None and now >= self.escalates_at
        return self.outputs if escalated else self.lamps | self.fallbacks

    def visible_at(self, now: float) -> bool:
        """Active and not snoozed: a lamp may show it."""
        return self.active_at(now) and (self.snoozed_until is None or now >= self.snoozed_until)

    def refreshed(self, now: float, hold: float | None) -> Signal:
        """The same signal with its hold restarted from `now`."""
        return replace(self, expires_at=None if hold is None else now + hold)


@dataclass(frozen=True)
class StoredEvent:
    """An event as the journal keeps it: what was received, what happened to it and why."""

    id: int
    received_at: float
    level: str
    title: str
    body: str
    sender: str
    source: str
    key: str
    status: Status
    labels: dict[str, str]
    outcome: Outcome
    reasons: tuple[str, ...]
    signal_id: int | None  # the signal it started or refreshed

    def to_json(self) -> dict[str, Any]:
        """The event as the API shows it."""
        return {"id": self.id, "received_at": self.received_at, "level": self.level, "title": self.title,
                "body": self.body, "sender": self.sender, "source": self.source, "key": self.key,
                "status": self.status.value, "labels": self.labels, "outcome": self.outcome.value,
                "reasons": list(self.reasons), "signal_id": self.signal_id}


@dataclass(frozen=True)
class Receipt:
    """The answer to a submitted event: its id in the journal and what happened to it."""

    id: int
    outcome: Outcome
    reasons: tuple[str, ...]
    retry_after: float | None
    signal_id: int | None


MAX_EVENT_ID = 2**63 - 1
"""The largest event id there can be (SQLite's largest integer); a larger one names no event."""


class SignalAction(StrEnum):
    """The result of acknowledging or snoozing the signal behind an event."""

    DONE = "done"
    NOT_ACTIVE = "not_active"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class LampView:
    """What the API, the lamp page and chat replies show about a lamp."""

    name: str
    driver: str
    url: str
    online: bool
    state: LampState | None
    showing: Signal | None
    error: str
    kind: str = "lamp"  # or "siren"
    reached: bool = True  # False: the device reported something other than what it was sent


class Clock(Protocol):
    """Wall-clock time in epoch seconds; injected so tests can run hours in milliseconds."""

    def now(self) -> float: ...


class SystemClock:
    """The real clock."""

    def now(self) -> float:
        return time.time()


def load_class(path: str, base: type[T]) -> type[T]:
    """Import `module:Class` and check it is a subclass of `base` (for plug-in registries)."""
    module_name, _, class_name = path.partition(":")
    found = getattr(importlib.import_module(module_name), class_name)
    if not (isinstance(found, type) and issubclass(found, base)):
        raise TypeError(f"{path} is not a {base.__name__}")
    return found
