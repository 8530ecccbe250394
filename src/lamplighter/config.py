"""The configuration file: find it, read it, interpolate `${ENV}` secrets, validate it.

Every problem is reported with its path in the file and, where known, its line, so that
`lamplighter check` can list them all at once. With no file at all the embedded default
applies: one `virtual://desk` lamp and the three default levels.
"""

from __future__ import annotations

import copy
import os
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field, replace
from datetime import time as time_of_day
from pathlib import Path
from typing import Annotated, Any, Literal, cast
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from lamplighter.errors import ConfigError
from lamplighter.model import (
    DEFAULT_LEVELS,
    UNTIL_ACK,
    Effect,
    Level,
    default_levels,
    is_notification_url,
    parse_color,
    parse_duration,
)

CONFIG_ENV = "LAMPLIGHTER_CONFIG"
DEFAULT_CONFIG_NAME = "lamplighter.yaml"
UNTIL_ACK_WORDS = ("until_ack", "until_acknowledged")
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
FULL_DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
DAY_NAMES = {**{day: day for day in DAYS}, **{full: full[:3] for full in FULL_DAYS}}
MIN_TOKEN_CHARS = 16  # shorter tokens (an empty variable, an empty file) would let anyone in
_ENV_REF = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def default_state_dir() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "lamplighter"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def split_listen(value: str) -> tuple[str, int]:
    """`HOST:PORT` (or `[::1]:PORT`) as (host, port); ValueError names what is wrong."""
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit():
        example = port if port.isdigit() and 0 < int(port) < 65536 else "8911"
        raise ValueError(f"must be HOST:PORT, e.g. 127.0.0.1:{example}, not {value!r}")
    if not 0 < int(port) < 65536:
        raise ValueError(f"port {int(port)} is out of range: a port is 1-65535")
    return host.strip("[]"), int(port)


def _check_listen(value: str) -> str:
    split_listen(value)
    return value


ListenAddress = Annotated[str, AfterValidator(_check_listen)]
"""A `HOST:PORT` to listen on, checked when the configuration is read."""


class ListensOn(BaseModel):
    """Settings with a `listen: HOST:PORT` (the daemon's HTTP server, the SMTP receiver)."""

    listen: ListenAddress

    @property
    def host(self) -> str:
        return split_listen(self.listen)[0]

    @property
    def port(self) -> int:
        return split_listen(self.listen)[1]


class ServerConfig(_Strict, ListensOn):
    listen: ListenAddress = "127.0.0.1:8911"
    token: SecretStr | None = None
    max_body_bytes: int = Field(default=1024 * 1024, ge=1024)  # Alertmanager does not retry a 413
    header_timeout: float = 10.0  # a request's line and headers must arrive within this
    body_timeout: float = 30.0  # and its body within this after the headers
    max_connections: int = Field(default=500, ge=1)  # below the usual limit of 1,024 open files
    healthz_degraded_status: Literal[200, 503] = 200  # 503: /healthz fails while degraded, for status-code monitors

    @field_validator("header_timeout", "body_timeout", mode="before")
    @classmethod
    def _timeout(cls, value: Any) -> float:
        seconds = parse_duration(value)
        if not 0 < seconds <= 3600:
            raise ValueError("must be longer than 0s and at most 1h")
        return seconds

    @field_validator("token")
    @classmethod
    def _long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < MIN_TOKEN_CHARS:
            raise ValueError(f"the API token needs at least {MIN_TOKEN_CHARS} characters, this one has "
                             f"{len(value.get_secret_value())} (make one with: openssl rand -hex 16)")
        return value


def _longer_than_zero(seconds: float) -> float:
    if seconds <= 0:
        raise ValueError("must be longer than 0s")
    return seconds


Duration = Annotated[float, BeforeValidator(parse_duration)]
"""Seconds, written `10s`, `2m`, `1.5h`, `250ms` or as a plain number; the one duration type of
every setting (the file's and the sources', and the API's bodies). A bad one says
"not a duration: 'soon' (use e.g. 10s, 2m, 1h)" under the setting's path."""

PositiveDuration = Annotated[Duration, AfterValidator(_longer_than_zero)]
"""A Duration that must be longer than 0s (an interval, a timeout)."""


def at_most(limit: str) -> AfterValidator:
    """An upper bound for a Duration, written as the error shows it: `Annotated[PositiveDuration, at_most("7d")]`."""
    seconds = parse_duration(limit)

    def check(value: float) -> float:
        if value > seconds:
            raise ValueError(f"must be at most {limit}")
        return value

    return AfterValidator(check)


class LevelConfig(_Strict):
    """A level as written in the file; unset fields keep the default level's value."""

    color: str | None = None
    effect: Effect | None = None
    brightness: int | None = Field(default=None, ge=0, le=100)
    hold: Duration | None = None  # or until_ack
    priority: int | None = None
    lamps: list[str] | None = None
    quiet_hours_bypass: bool | None = None
    sirens: list[str] | None = None
    escalate_after: Duration | None = None
    announce: list[str] | None = None
    fallback: list[str] | None = None

    @field_validator("color")
    @classmethod
    def _check_color(cls, value: str | None) -> str | None:
        return None if value is None else parse_color(value)

    @field_validator("hold", mode="before")
    @classmethod
    def _until_ack(cls, value: Any) -> Any:
        if isinstance(value, str) and value.strip().lower() in UNTIL_ACK_WORDS:
            return UNTIL_ACK
        return value


class RateConfig(_Strict):
    """A token bucket: `burst` events at once, then one more every `every`."""

    every: PositiveDuration
    burst: int = Field(ge=1)


class RateLimitConfig(_Strict):
    per_sender: RateConfig | None = RateConfig(every=30.0, burst=2)
    per_source: RateConfig | None = RateConfig(every=3.0, burst=20)


class QuietHoursConfig(_Strict):
    """A daily window in which only levels with `quiet_hours_bypass` are shown."""

    start: time_of_day
    end: time_of_day
    days: list[str] = list(DAYS)
    timezone: str | None = None

    @field_validator("days")
    @classmethod
    def _check_days(cls, value: list[str]) -> list[str]:
        unknown = [day for day in value if day.strip().lower() not in DAY_NAMES]
        if unknown:
            raise ValueError(f"unknown day {unknown[0]!r}: use {', '.join(DAYS)}")
        return [DAY_NAMES[day.strip().lower()] for day in value]

    @field_validator("timezone")
    @classmethod
    def _check_timezone(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                ZoneInfo(value)
            except (ZoneInfoNotFoundError, ValueError):
                raise ValueError(f"unknown time zone {value!r} (use e.g. Europe/Berlin)") from None
        return value


class GuardsConfig(_Strict):
    dedup_window: Duration = 120.0  # the same level and title again within this: one incident
    keyed_dedup_window: Duration = 86400.0  # an explicit key (an alert fingerprint): until resolved, at most this
    rate_limit: RateLimitConfig = RateLimitConfig()
    quiet_hours: list[QuietHoursConfig] = []

    @field_validator("quiet_hours", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, dict) else value


class RetentionConfig(_Strict):
    """How long the journal keeps events: `retention: 30d` is short for `retention: {max_age: 30d}`.

    Events older than `max_age`, and the oldest beyond `max_events`, are deleted in the
    background; never an active signal's event, nor one the deduplication windows still need.
    """

    max_age: PositiveDuration = 90 * 86400.0
    max_events: int = Field(default=1_000_000, ge=1000)


class LogConfig(_Strict):
    """The daemon's log on stderr: `text` lines for people, or `json`, one object per line, for collectors."""

    format: Literal["text", "json"] = "text"


class SourceConfig(BaseModel):
    """A source entry; its own fields are checked by the source type named in `type`."""

    model_config = ConfigDict(extra="allow", frozen=True)
    type: str


NAME_PATTERN = r"^[A-Za-z0-9_.-]{1,64}$"  # a home or room name is one MQTT topic level
HUB_SESSION_DAY = 86400.0


class HubConfig(_Strict):
    """`hub:`: the broker that links the hub and the room agents, and how long the hub waits for them."""

    broker: str  # mqtt://HOST[:PORT] or mqtts://HOST[:PORT]
    home: Annotated[str, Field(pattern=NAME_PATTERN)]
    username: str | None = None
    password: SecretStr | None = None
    ca_file: Path | None = None  # mqtts: our own certificate authority (else the system's)
    cert_file: Path | None = None  # mqtts: a client certificate, with key_file
    key_file: Path | None = None
    session_expiry: Annotated[PositiveDuration, at_most("30d")] = 7 * HUB_SESSION_DAY
    apply_within: Annotated[PositiveDuration, at_most("10m")] = 5.0  # an "applied" receipt later: the fallback
    silent_after: Annotated[PositiveDuration, at_most("1d")] = 60.0  # an agent silent longer: blind
    heartbeat: Annotated[PositiveDuration, at_most("1h")] = 15.0  # how often an agent reports its health
    ack_button: str | None = None  # an agent's button: any message on this topic acknowledges what the room shows

    @field_validator("ack_button")
    @classmethod
    def _one_topic(cls, value: str | None) -> str | None:
        if value is not None and (not value or "+" in value or "#" in value):
            raise ValueError("must be one topic (no '+' or '#'), e.g. zigbee2mqtt/study_button/action")
        return value

    @field_validator("broker")
    @classmethod
    def _check_broker(cls, value: str) -> str:
        split_broker(value)
        return value

    @field_validator("session_expiry")
    @classmethod
    def _a_day_at_least(cls, value: float) -> float:
        if value < HUB_SESSION_DAY:
            raise ValueError("must be at least 1d: a room offline overnight must find its messages waiting")
        return value

    @field_validator("password")
    @classmethod
    def _not_empty(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value():
            raise ValueError("must not be empty (leave it out for a broker without login)")
        return value

    @property
    def address(self) -> tuple[str, int, bool]:
        """(host, port, tls) of the broker."""
        return split_broker(self.broker)


def split_broker(url: str) -> tuple[str, int, bool]:
    """`mqtt://HOST[:PORT]` or `mqtts://HOST[:PORT]` as (host, port, tls); ValueError names what is wrong."""
    scheme, sep, rest = url.partition("://")
    if not sep or scheme not in ("mqtt", "mqtts") or not rest or "/" in rest or "@" in rest:
        raise ValueError(f"must be mqtt://HOST[:PORT] or mqtts://HOST[:PORT] (login: username:, password:), "
                         f"not {url!r}")
    tls = scheme == "mqtts"
    host, colon, port = rest.rpartition(":")
    if not colon or host.endswith(":") or "]" in port:
        return rest.strip("[]"), 8883 if tls else 1883, tls
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"bad port {port!r} in {url!r}")
    return host.strip("[]"), int(port), tls


class RoomConfig(_Strict):
    """A room on the hub: which levels go there (None: all) and its own quiet hours."""

    levels: list[str] | None = None
    quiet_hours: list[QuietHoursConfig] = []

    @field_validator("quiet_hours", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, dict) else value

    @field_validator("levels", mode="before")
    @classmethod
    def _string_levels(cls, value: Any) -> Any:
        return [str(v) for v in value] if isinstance(value, list) else value


HASS_EXAMPLE = "hass://${HASS_TOKEN}@homeassistant.local:8123"
ENTITY_ID = r"^[a-z0-9_]+\.[a-z0-9_]+$"


def check_hass_address(url: str) -> str:
    """`hass://TOKEN@HOST[:PORT]` or `hass+https://...` (a Home Assistant, as hass:// lamps name it); ValueError
    names what is wrong without showing the token."""
    form = f"must be hass://TOKEN@HOST[:PORT] or hass+https://TOKEN@HOST[:PORT], e.g. {HASS_EXAMPLE}"
    try:
        parts = urlsplit(url)
        port = parts.port  # ValueError for a port above 65535
    except ValueError:
        raise ValueError(form) from None
    if port == 0 or parts.scheme not in ("hass", "hass+https") or "://" not in url or not parts.hostname \
            or parts.path.strip("/") or parts.query:
        raise ValueError(form)
    if not parts.username:
        raise ValueError(f"the access token before the @ is empty (a long-lived token from Home Assistant's "
                         f"profile page), e.g. {HASS_EXAMPLE}")
    if parts.password is not None:
        raise ValueError("the token goes alone before the @ (no ':')")
    return url


class PresenceConfig(_Strict):
    """Where a person is: an MQTT topic whose payload names a room (a phone's room, an occupancy sensor), or a
    Home Assistant entity whose state does (`person.NAME`'s zone, a Bermuda area sensor)."""

    topic: str | None = None  # on the hub's broker; the payload is a room's name (anything else: not in a known room)
    hass: SecretStr | None = None  # hass://TOKEN@HOST[:PORT], the Home Assistant that tells `entity`
    entity: str | None = None  # its state is the reported word
    rooms: dict[str, str] = {}  # a reported word (an area, a zone) -> one of the person's rooms
    stay: Annotated[PositiveDuration, at_most("1h")] = 30.0  # hysteresis: a new room counts once seen this long
    stale_after: Annotated[PositiveDuration, at_most("1d")] = 900.0  # no report for this long: unknown

    @field_validator("hass")
    @classmethod
    def _hass_address(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            check_hass_address(value.get_secret_value())
        return value

    @field_validator("entity")
    @classmethod
    def _entity_id(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(ENTITY_ID, value):
            raise ValueError(f"must be an entity id such as person.ann or sensor.ann_phone_area, not {value!r}")
        return value

    @field_validator("rooms", mode="before")
    @classmethod
    def _string_keys(cls, value: Any) -> Any:
        return {str(k): v for k, v in value.items()} if isinstance(value, dict) else value

    @model_validator(mode="after")
    def _one_source(self) -> PresenceConfig:
        if self.topic is not None and (self.hass is not None or self.entity is not None):
            raise ValueError("give either topic: (MQTT) or hass: and entity: (Home Assistant), not both")
        if (self.hass is None) != (self.entity is None):
            raise ValueError("Home Assistant presence needs both hass: (hass://TOKEN@HOST:8123) and entity: "
                             "(e.g. person.ann or sensor.ann_phone_area)")
        if self.topic is None and self.hass is None:
            raise ValueError("needs topic: (MQTT) or hass: and entity: (Home Assistant)")
        return self


class PersonConfig(_Strict):
    """A person: their rooms, the levels that follow them, and where to learn which room they are in."""

    rooms: list[str]
    levels: list[str] = []
    presence: PresenceConfig | None = None

    @field_validator("levels", mode="before")
    @classmethod
    def _string_levels(cls, value: Any) -> Any:
        return [str(v) for v in value] if isinstance(value, list) else value


def room_problems(config: Config) -> list[tuple[tuple[str | int, ...], str]]:
    """What the schema cannot see about rooms and people: names, levels and rooms that exist."""
    problems: list[tuple[tuple[str | int, ...], str]] = []
    levels = set(config.resolved_levels())
    if config.rooms and config.hub is None:
        problems.append((("rooms",), "rooms need a hub: (hub: {broker: mqtt://..., home: NAME})"))
    for room, given in config.rooms.items():
        if not re.fullmatch(NAME_PATTERN, room):
            problems.append((("rooms", room), "a room name is letters, digits, '_', '-' or '.' (no '/', '+', '#')"))
        for index, level in enumerate(given.levels or []):
            if level not in levels:
                problems.append((("rooms", room, "levels", index), f"no level named {level!r}"))
    for name, person in config.people.items():
        for index, room in enumerate(person.rooms):
            if room not in config.rooms:
                problems.append((("people", name, "rooms", index), f"no room named {room!r} under rooms:"))
        for index, level in enumerate(person.levels):
            if level not in levels:
                problems.append((("people", name, "levels", index), f"no level named {level!r}"))
        problems += _presence_problems(name, person)
    return problems


def _presence_problems(name: str, person: PersonConfig) -> list[tuple[tuple[str | int, ...], str]]:
    """A presence's `rooms:` table may name only the person's own rooms."""
    mapped = person.presence.rooms.items() if person.presence is not None else ()
    return [(("people", name, "presence", "rooms", word), f"no room named {room!r} among {name}'s rooms "
                                                          f"({', '.join(person.rooms) or 'none'})")
            for word, room in mapped if room not in person.rooms]


class LampPageConfig(_Strict):
    """The browser lamp page: `acknowledge: hold` shows a press-and-hold button (about 1.5 s), `off` none."""

    acknowledge: Literal["hold", "off"] = "hold"

    @field_validator("acknowledge", mode="before")
    @classmethod
    def _yaml_off(cls, value: Any) -> Any:
        return "off" if value is False else value  # YAML reads a bare `off` as false


class Config(_Strict):
    server: ServerConfig = ServerConfig()
    state_dir: Path = Field(default_factory=default_state_dir)
    lamps: dict[str, str] = {"desk": "virtual://desk"}
    sirens: dict[str, str] = {}
    levels: dict[str, LevelConfig] = {}
    sources: list[SourceConfig] = []
    guards: GuardsConfig = GuardsConfig()
    hub: HubConfig | None = None  # `lamplighter hub` and `lamplighter agent`: the broker between them
    rooms: dict[str, RoomConfig] = {}
    people: dict[str, PersonConfig] = {}
    retention: RetentionConfig = RetentionConfig()
    log: LogConfig = LogConfig()

    @field_validator("retention", mode="before")
    @classmethod
    def _age_alone(cls, value: Any) -> Any:
        return {"max_age": value} if isinstance(value, (str, int, float)) else value
    locale: Literal["en", "ko"] = "en"  # the language of replies and CLI messages; pages follow the browser
    palette: Literal["default", "colorblind"] = "default"  # the default levels' colours
    lamp_page: LampPageConfig = LampPageConfig()
    digest: list[str] = []  # where to post what happened during quiet hours, when they end (Apprise URLs, slack-app:)

    @field_validator("levels", "lamps", "sirens", mode="before")
    @classmethod
    def _string_keys(cls, value: Any) -> Any:
        return {str(k): v for k, v in value.items()} if isinstance(value, dict) else value

    @field_validator("state_dir")
    @classmethod
    def _expand(cls, value: Path) -> Path:
        return value.expanduser()

    def resolved_levels(self) -> dict[str, Level]:
        return resolve_levels(self)


def level_problems(config: Config) -> list[tuple[tuple[str | int, ...], str]]:
    """What the schema cannot see about levels: new ones need colour and priority; lamps must exist."""
    defaults = {level.name for level in DEFAULT_LEVELS}
    problems: list[tuple[tuple[str | int, ...], str]] = []
    for name, given in config.levels.items():
        missing = [f for f in ("color", "priority") if name not in defaults and getattr(given, f) is None]
        if missing:
            problems.append((("levels", name), f"level {name!r} is new and needs {' and '.join(missing)}"))
        for index, lamp in enumerate(given.lamps or []):
            if lamp not in config.lamps and lamp not in config.rooms:  # a hub's rooms are outputs too
                problems.append((("levels", name, "lamps", index), f"no lamp named {lamp!r} under lamps:"))
        for index, siren in enumerate(given.sirens or []):
            if siren not in config.sirens:
                problems.append((("levels", name, "sirens", index), f"no siren named {siren!r} under sirens:"))
        for index, output in enumerate(given.fallback or []):
            if not is_notification_url(output) and output not in config.lamps.keys() | config.sirens.keys():
                problems.append((("levels", name, "fallback", index),
                                 f"no lamp or siren named {output!r} (a notification needs a URL, e.g. ntfy://...)"))
    for name in config.sirens.keys() & config.lamps.keys():
        problems.append((("sirens", name), f"{name!r} is a lamp too: give the siren another name"))
    return problems


def resolve_levels(config: Config) -> dict[str, Level]:
    """The default levels overlaid with the file's `levels:` (which level_problems found valid).

    A level that escalates to sirens lasts until it is acknowledged or resolved: a signal
    that ended with its hold could never sound the siren that asks for an acknowledgement.
    """
    levels = {level.name: level for level in default_levels(config.palette)}
    for name, given in config.levels.items():
        levels[name] = _merge_level(name, levels.get(name), given)
    return {name: _with_sirens(level, tuple(config.sirens)) for name, level in levels.items()}


def _with_sirens(level: Level, configured: tuple[str, ...]) -> Level:
    sirens = configured if level.sirens is None else level.sirens
    return replace(level, sirens=sirens, hold=UNTIL_ACK if sirens else level.hold)


def _merge_level(name: str, base: Level | None, given: LevelConfig) -> Level:
    if base is None:
        base = Level(name=name, color=str(given.color), priority=int(given.priority or 0))
    changes = {f: getattr(given, f) for f in given.model_fields_set}
    for listed in ("lamps", "sirens", "announce", "fallback"):
        if listed in changes:
            changes[listed] = tuple(changes[listed]) if changes[listed] is not None else None
    for optional in ("announce", "fallback"):
        if changes.get(optional, ()) is None:
            changes[optional] = ()
    return replace(base, **changes)


@dataclass(frozen=True)
class LoadedConfig:
    """A validated configuration and where it came from (None: the embedded default)."""

    config: Config
    path: Path | None
    lines: Mapping[tuple[str, ...], int] = field(default_factory=dict)

    def place(self, dotted: str) -> str:
        """`FILE:LINE path` for a dotted path such as `lamps.porch`, for problems found after loading."""
        return _place(str(self.path or "<embedded default>"), self.lines, tuple(dotted.split(".")))


def find_config_path(explicit: Path | None, env: Mapping[str, str]) -> Path | None:
    """-c/--config, then LAMPLIGHTER_CONFIG, then ./lamplighter.yaml; None for the default."""
    if explicit is not None:
        return explicit
    if env.get(CONFIG_ENV):
        return Path(env[CONFIG_ENV])
    local = Path(DEFAULT_CONFIG_NAME)
    return local if local.exists() else None


def load_config(explicit: Path | None = None, env: Mapping[str, str] | None = None,
                only: Collection[str] | None = None) -> LoadedConfig:
    """Find, read and validate the configuration (`only` these top-level keys, if given);
    raise ConfigError listing every problem."""
    env = os.environ if env is None else env
    path = find_config_path(explicit, env)
    if path is None:
        return LoadedConfig(Config(), None)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([(str(path), f"cannot read: {exc.strerror or exc}")]) from None
    except UnicodeDecodeError as exc:
        line = exc.object[:exc.start].count(b"\n") + 1
        raise ConfigError([(f"{path}:{line}", f"not UTF-8 text: byte 0x{exc.object[exc.start]:02x} cannot be read "
                                               "(save the file as UTF-8)")]) from None
    config = parse_config(text, env, name=str(path), only=only)
    root = yaml.compose(text)
    return LoadedConfig(config, path, _line_numbers(root) if root is not None else {})


def parse_config(text: str, env: Mapping[str, str], name: str = "<config>",
                 only: Collection[str] | None = None) -> Config:
    """Validate YAML text; problems are reported as `name:LINE path`.

    `only`: read just these top-level keys (a client needs `server` and `state_dir`, not the
    secrets of every source); raise ConfigProblems listing every problem."""
    try:
        root = yaml.compose(text)
        data = yaml.safe_load(text) if root is not None else {}  # may fail where compose did not: `key: =`
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{name}:{mark.line + 1}" if mark else name
        raise ConfigError([(where, f"not valid YAML: {getattr(exc, 'problem', exc)}")]) from None
    except ValueError as exc:  # a number with more digits than Python converts
        raise ConfigError([(name, f"not a usable value: {str(exc)[:200]}")]) from None
    lines = _line_numbers(root) if root is not None else {}
    duplicates = _duplicate_keys(root) if root is not None else []
    if duplicates:
        raise ConfigError([(_place(name, lines, loc), msg) for loc, msg in duplicates])
    if not isinstance(data, dict):
        raise ConfigError([(name, "the file must be a mapping of keys such as lamps:, levels:")])
    if only is not None:
        data = {key: value for key, value in data.items() if key in only}
    problems: list[Problem] = []
    data = _interpolate(data, env, (), problems)
    config, schema = _validate_what_can_be(data, [loc for loc, _ in problems])
    problems += schema
    if config is not None:
        problems += level_problems(config) + room_problems(config)
    if config is not None and not problems:
        return config
    partial = LoadedConfig(config, Path(name), lines) if config is not None else None
    raise ConfigProblems([(_place(name, lines, loc), msg) for loc, msg in problems], partial,
                         [loc for loc, _ in problems])


class ConfigProblems(ConfigError):
    """The file's problems, with `partial`: the configuration without the wrong values (None when
    a whole section is wrong), so that a caller can look for further problems in the same pass."""

    def __init__(self, problems: list[tuple[str, str]], partial: LoadedConfig | None,
                 places: list[tuple[Any, ...]]) -> None:
        super().__init__(problems)
        self.partial = partial
        self._places = places

    def further(self, found: list[tuple[str, str]]) -> list[tuple[str, str]]:
        """Problems found in `partial` (dotted path, message), placed in the file; those at a place
        that already has a problem (a dropped value, an empty secret) are left out."""
        if self.partial is None:
            return []
        return [(self.partial.place(dotted), message) for dotted, message in found
                if not any(_related(tuple(dotted.split(".")), place) for place in self._places)]


MAX_PRUNING_PASSES = 5
_DROPPED = object()


def _validate_what_can_be(data: dict[str, Any], known: list[tuple[Any, ...]]) -> tuple[Config | None, list[Problem]]:
    """Validate `data`; while it fails, drop each wrong value and try again.

    Returns the schema's problems (none at or under a place in `known`, which already has one)
    and the configuration without the wrong values, or None when `lamps:` or `sirens:` as a
    whole is wrong (their defaults would make every reference to them look wrong too). One pass
    of `check` so reports the cross references (an unknown lamp name) with the schema problems."""
    problems: list[Problem] = []
    reported = list(known)
    for _ in range(MAX_PRUNING_PASSES):
        try:
            config = Config.model_validate(data)
        except ValidationError as exc:
            found = [(tuple(err["loc"]), _pydantic_message(err)) for err in exc.errors()]
            new = [(loc, msg) for loc, msg in found if not any(_related(loc, seen) for seen in reported)]
            problems += new
            reported += [loc for loc, _ in found]
            data = _without(data, [loc for loc, _ in found])
            continue
        outputs_lost = any(len(loc) == 0 or (len(loc) == 1 and str(loc[0]) in ("lamps", "sirens")) for loc in reported)
        return (None if outputs_lost else config), problems
    return None, problems


def _related(one: tuple[Any, ...], other: tuple[Any, ...]) -> bool:
    """Whether one place is the other or lies under it (either way round)."""
    shorter = min(len(one), len(other))
    return [str(part) for part in one[:shorter]] == [str(part) for part in other[:shorter]]


def _without(data: dict[str, Any], places: list[tuple[Any, ...]]) -> dict[str, Any]:
    """A copy of `data` with the value at (or the deepest existing part of) each place dropped."""
    pruned: dict[str, Any] = copy.deepcopy(data)
    for place in places:
        _drop(pruned, place)
    return cast(dict[str, Any], _sweep(pruned))


def _drop(node: Any, place: tuple[Any, ...]) -> None:
    path: list[Any] = []
    parent: Any = None
    for part in place:
        found = _child_key(node, part)
        if found is None:
            break
        parent, node = node, node[found]
        path.append(found)
    if parent is None:
        return
    an_output = len(path) == 2 and str(path[0]) in ("lamps", "sirens")  # kept, so that references to it hold
    parent[path[-1]] = f"virtual://{path[-1]}" if an_output else _DROPPED


def _child_key(node: Any, part: Any) -> Any:
    """The key or index of `node` that a validation error's `part` names, or None."""
    if isinstance(node, dict):
        return next((key for key in node if str(key) == str(part)), None)
    if isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
        return part
    return None


def _sweep(node: Any) -> Any:
    if isinstance(node, dict):
        return {key: _sweep(value) for key, value in node.items() if value is not _DROPPED}
    if isinstance(node, list):
        return [_sweep(value) for value in node if value is not _DROPPED]
    return node


def _pydantic_message(err: Any) -> str:
    message = str(err["msg"]).removeprefix("Value error, ")
    if err["type"] == "extra_forbidden":
        return "unknown key (check the spelling)"
    return message


def _place(name: str, lines: Mapping[tuple[str, ...], int], loc: tuple[Any, ...]) -> str:
    path = tuple(str(part) for part in loc)
    while path and path not in lines:
        path = path[:-1]
    line = lines.get(path)
    dotted = ".".join(str(part) for part in loc) or "(top)"
    return f"{name}:{line} {dotted}" if line else f"{name} {dotted}"


def _line_numbers(node: yaml.Node, path: tuple[str, ...] = ()) -> dict[tuple[str, ...], int]:
    lines = {path: node.start_mark.line + 1}
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            lines.update(_line_numbers(value, (*path, str(key.value))))
            lines[(*path, str(key.value))] = key.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            lines.update(_line_numbers(item, (*path, str(index))))
    return lines


Problem = tuple[tuple[Any, ...], str]


def _duplicate_keys(node: yaml.Node, path: tuple[str, ...] = ()) -> list[Problem]:
    """Keys given twice in one mapping: YAML keeps only the last, which silently drops the first."""
    problems: list[Problem] = []
    if isinstance(node, yaml.MappingNode):
        first: dict[str, int] = {}
        for key, value in node.value:
            name = str(key.value)
            if name in first:
                problems.append(((*path, name), f"given twice (first on line {first[name]}): YAML would keep "
                                                 "only this one; merge them"))
            first.setdefault(name, key.start_mark.line + 1)
            problems += _duplicate_keys(value, (*path, name))
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            problems += _duplicate_keys(item, (*path, str(index)))
    return problems


def _interpolate(value: Any, env: Mapping[str, str], path: tuple[Any, ...], problems: list[Problem]) -> Any:
    """Replace `${NAME}` in every string with the environment's value; `$$` is a literal `$`."""
    if isinstance(value, dict):
        return {k: _interpolate(v, env, (*path, str(k)), problems) for k, v in value.items()}
    if isinstance(value, list):
        return [_interpolate(v, env, (*path, i), problems) for i, v in enumerate(value)]
    if not isinstance(value, str):
        return value

    def substitute(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name = match.group(1)
        if not env.get(name):
            problems.append((path, f"environment variable {name} is {'empty' if name in env else 'not set'}"))
            return ""
        return env[name]

    return _ENV_REF.sub(substitute, value)
