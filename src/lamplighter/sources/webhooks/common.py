"""What every webhook source shares: its credentials, reading the body, and picking values out of it.

Credentials. A source with a `token` wants `Authorization: Bearer TOKEN`; one with a `secret`
wants an HMAC-SHA256 of the raw body, hex, in a header (GitHub: `X-Hub-Signature-256:
sha256=HEX`; Grafana: `X-Grafana-Alerting-Signature: HEX`, optionally over `TIMESTAMP:BODY`
with the timestamp in a header of its own). When both are set, both are checked. Every
comparison is constant-time. A signed request is accepted once: its signature is remembered
(sources/replay.py) until its timestamp is stale, or for `replay_window` (1 day) when the
sender signs no timestamp, and a replay within that time is refused with 401.

Field paths and templates. A field path names a value in a JSON document by keys and list
positions joined with dots: `alerts.0.labels.severity` (`-1` is the last item). A template is
text with `{path}` placeholders: `"{monitor.name} is down: {msg}"`. In `{a|b|'none'}` the first
alternative that is present and not empty wins; a quoted one is literal text. `{{` and `}}` are
literal braces. A value that is not text is written as JSON (`3`, `true`, `{"B": 1}`); a missing
value or null as nothing.

Values. Where a source takes a `Value`, it is either a template, or a template whose result is
looked up in a table: `{from: "{heartbeat.status}", map: {"0": firing, "1": resolved}, default:
null}`. A result of null (the default `default`) means "ignore this request": it is answered
202 with no event.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import re
from abc import abstractmethod
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, PlainValidator, ValidationError, field_validator, model_validator

from lamplighter.config import Duration
from lamplighter.errors import AuthError, EventError
from lamplighter.model import Event, format_duration
from lamplighter.sources.base import SourceSettings, WebhookSource, check_bearer
from lamplighter.turns import drawn_in_turns
from lamplighter.untrusted import load_json

M = TypeVar("M", bound=BaseModel)

# ---- field paths and templates -------------------------------------------------------------

Path = tuple[str, ...]
_PIECE = re.compile(r"\{\{|\}\}|\{([^{}]*)\}|[{}]")
_QUOTED = re.compile(r"""'([^']*)'|"([^"]*)\"""")


def parse_path(text: str) -> Path:
    """`a.b.0` -> ('a', 'b', '0'); ValueError for an empty part."""
    parts = tuple(text.strip().split("."))
    if not all(part.strip() == part and part for part in parts):
        raise ValueError(f"{text!r} is not a field path (names joined with dots, e.g. labels.severity)")
    return parts


def lookup(data: Any, path: Path) -> Any:
    """The value at `path`, or None when any step is missing."""
    for part in path:
        if isinstance(data, Mapping):
            data = data.get(part)
        elif isinstance(data, Sequence) and not isinstance(data, str) and _is_index(part, len(data)):
            data = data[int(part)]
        else:
            return None
    return data


def _is_index(part: str, length: int) -> bool:
    return part.lstrip("-").isdigit() and -length <= int(part) < length


def as_text(value: Any) -> str:
    """How a JSON value appears in a template: text as is, null as nothing, anything else as JSON."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


Choice = Path | str  # a field path, or literal text (a quoted alternative)


@dataclass(frozen=True)
class Template:
    """Text with `{path|path|'literal'}` placeholders, parsed once from the configuration."""

    text: str
    parts: tuple[str | tuple[Choice, ...], ...]

    @classmethod
    def parse(cls, text: str) -> Template:
        parts: list[str | tuple[Choice, ...]] = []
        end = 0
        for match in _PIECE.finditer(text):
            parts.append(text[end:match.start()])
            piece = match.group(0)
            if piece in ("{{", "}}"):
                parts.append(piece[0])
            elif match.group(1) is None:
                raise ValueError(f"unmatched {piece!r} at position {match.start()} in {text!r} "
                                 f"(write {piece * 2!r} for a literal brace)")
            else:
                parts.append(tuple(_choice(alternative) for alternative in match.group(1).split("|")))
            end = match.end()
        parts.append(text[end:])
        return cls(text, tuple(part for part in parts if part != ""))

    def render(self, data: Any) -> str:
        return "".join(part if isinstance(part, str) else _first(part, data) for part in self.parts)

    def __str__(self) -> str:
        return self.text


def _choice(text: str) -> Choice:
    quoted = _QUOTED.fullmatch(text.strip())
    if quoted:
        return quoted.group(1) if quoted.group(1) is not None else quoted.group(2)
    return parse_path(text)


def _first(choices: tuple[Choice, ...], data: Any) -> str:
    for choice in choices:
        value = choice if isinstance(choice, str) else as_text(lookup(data, choice))
        if value:
            return value
    return ""


def _template(value: Any) -> Template:
    if isinstance(value, Template):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):  # `level: 911` in YAML is a number
        value = str(value)
    if not isinstance(value, str):
        raise ValueError("must be text (a template such as '{labels.alertname}')")
    return Template.parse(value)


TemplateText = Annotated[Template, PlainValidator(_template)]
"""A settings field that holds a template: validated and parsed when the file is read."""


class Value(BaseModel):
    """A template, optionally looked up in `map`; `resolve` gives None for "ignore this request"."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)
    source: TemplateText = Field(alias="from")
    map: dict[str, str | None] | None = None
    default: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _text_is_a_template(cls, value: Any) -> Any:
        return value if isinstance(value, Mapping) else {"from": _template(value)}

    @field_validator("map", mode="before")
    @classmethod
    def _keys_as_text(cls, value: Any) -> Any:
        """YAML reads `0:` and `true:` as a number and a boolean; match them as the JSON text they render."""
        if not isinstance(value, Mapping):
            return value
        return {as_text(key): None if result is None else as_text(result) for key, result in value.items()}

    @model_validator(mode="after")
    def _default_needs_map(self) -> Value:
        if self.map is None and self.default is not None:
            raise ValueError("default applies only with map (for a fallback in a template write {a|'text'})")
        return self

    @classmethod
    def of(cls, text: str, table: Mapping[str, str | None] | None = None) -> Value:
        return cls.model_validate({"from": Template.parse(text), "map": table})

    def resolve(self, data: Any) -> str | None:
        rendered = self.source.render(data)
        if self.map is None:
            return rendered
        return self.map.get(rendered, self.default)


# ---- the body --------------------------------------------------------------------------------


def validated(model: type[M], data: Any, at: tuple[str | int, ...] = ()) -> M:
    """`data` (found at the path `at` of the body) checked against a payload model; EventError names
    the first wrong field."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        field = ".".join(str(part) for part in (*at, *first["loc"])) or "body"
        raise EventError(field, str(first["msg"])) from None


def compact(text: str) -> str:
    """Lines stripped, empty ones dropped: a body template's missing parts leave no gaps."""
    return "\n".join(line for line in (raw.strip() for raw in text.splitlines()) if line)


# ---- credentials -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Signature:
    """How a sender signs: the header, a prefix before the hex digest, an optional timestamp header."""

    header: str
    prefix: str = ""
    timestamp_header: str | None = None
    max_age: float = 300.0

    def check(self, headers: Mapping[str, str], body: bytes, secret: str, now: float) -> None:
        given = headers.get(self.header)
        if not given:
            raise AuthError(f"missing signature: send {self.header}")
        signed = body if self.timestamp_header is None else self._stamp(headers, now) + b":" + body
        expected = self.prefix + hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(given.strip().lower().encode(), expected.lower().encode()):
            raise AuthError(f"bad signature in {self.header}")

    def _stamp(self, headers: Mapping[str, str], now: float) -> bytes:
        assert self.timestamp_header is not None
        stamp = headers.get(self.timestamp_header, "").strip()
        try:
            skew = abs(now - float(stamp))
        except ValueError:
            raise AuthError(f"missing timestamp: send {self.timestamp_header} (Unix seconds)") from None
        if not skew <= self.max_age:  # also refuses a timestamp of nan
            raise AuthError(f"stale timestamp in {self.timestamp_header}: {format_duration(skew)} away from now "
                            f"(at most {format_duration(self.max_age)})")
        return stamp.encode()


class HookSettings(SourceSettings):
    """Keys of every webhook source; `check` refuses a request whose credentials are wrong."""

    @abstractmethod
    def check(self, headers: Mapping[str, str], body: bytes, now: float) -> None: ...

    def replay(self, headers: Mapping[str, str], now: float) -> tuple[str, float] | None:
        """A checked request's identity and until when a replay of it must be refused; None: not signed."""
        return None


class TokenSettings(HookSettings):
    """For senders that can set a header but cannot sign (Alertmanager, Buildbot)."""

    token: str = Field(min_length=1, repr=False)

    def check(self, headers: Mapping[str, str], body: bytes, now: float) -> None:
        check_bearer(headers, self.token)


class SignedSettings(HookSettings):
    """A token, an HMAC secret, or both; a type sets the defaults of the signature's header."""

    token: str | None = Field(default=None, min_length=1, repr=False)
    secret: str | None = Field(default=None, min_length=1, repr=False)
    signature_header: str
    signature_prefix: str = ""
    timestamp_header: str | None = None
    max_age: Duration = 300.0
    replay_window: Duration = 86400.0  # without a timestamp: how long an accepted signature stays refused

    @model_validator(mode="after")
    def _some_credential(self) -> SignedSettings:
        if self.token is None and self.secret is None:
            raise ValueError("set token, secret, or both: a webhook that anybody may call is refused")
        return self

    def check(self, headers: Mapping[str, str], body: bytes, now: float) -> None:
        if self.token is not None:
            check_bearer(headers, self.token)
        if self.secret is not None:
            signature = Signature(self.signature_header, self.signature_prefix, self.timestamp_header, self.max_age)
            signature.check(headers, body, self.secret, now)

    def replay(self, headers: Mapping[str, str], now: float) -> tuple[str, float] | None:
        """The signature identifies the request: until its timestamp is stale, else for `replay_window`."""
        if self.secret is None:
            return None
        identity = headers.get(self.signature_header, "").strip().lower()
        if self.timestamp_header is None:
            return identity, now + self.replay_window
        return identity, float(headers.get(self.timestamp_header, "").strip()) + self.max_age


# ---- the source ------------------------------------------------------------------------------


class HookSource(WebhookSource):
    """A webhook whose settings check the credentials and whose body is JSON; a type writes `events`."""

    settings: HookSettings

    def authenticate(self, headers: Mapping[str, str], body: bytes) -> None:
        now = self.clock.now()
        self.settings.check(headers, body, now)
        replay = self.settings.replay(headers, now)
        if replay is not None and self.replays.seen(replay[0]):
            raise AuthError("replayed request: a request with this signature was already accepted")

    def accepted(self, headers: Mapping[str, str], body: bytes) -> None:
        replay = self.settings.replay(headers, self.clock.now())
        if replay is not None:
            self.replays.remember(*replay)

    def parse(self, headers: Mapping[str, str], body: bytes, received_at: float) -> list[Event]:
        return self._heard(list(self.events(load_json(body), received_at)), received_at)

    async def read(self, headers: Mapping[str, str], body: bytes, received_at: float) -> list[Event]:
        """The JSON is checked and parsed in a worker thread (C-speed steps, each holding the GIL for
        milliseconds), the events are built on the loop in turns (lamplighter/turns.py)."""
        payload = await asyncio.to_thread(load_json, body)
        return self._heard(await drawn_in_turns(self.events(payload, received_at)), received_at)

    def _heard(self, events: list[Event], received_at: float) -> list[Event]:
        if not events:  # nothing to store, yet the sender spoke (an ignored Watchdog alert): the watchdog hears it
            self.health.last_event_at = received_at
            self.on_health_change()
        return events

    @abstractmethod
    def events(self, payload: Any, received_at: float) -> Iterable[Event]:
        """The events in a parsed JSON body; EventError names a wrong field.

        Many alerts in one body: yield them one at a time, so they are built in turns."""
