"""The source interface: where events come from besides the HTTP API.

Two kinds plug in:

- a **Source** with a long-running `run(submit)` that connects somewhere (IMAP, SMTP, MQTT,
  a camera), reconnects with backoff, and reports its health;
- a **WebhookSource** that the daemon mounts at `POST /hooks/NAME`: it checks the request's
  own credentials (`authenticate`) and turns the raw body into events (`parse`); the daemon
  stores every event before answering 2xx.

Each type declares its configuration keys as a pydantic model (`Settings`), so that
`lamplighter check` reports a wrong key with its path, as for every other part of the file.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Protocol

from pydantic import BaseModel, ConfigDict, ValidationError

from lamplighter.config import Duration
from lamplighter.errors import AuthError, ConfigError, LamplighterError
from lamplighter.model import Clock, Event, LampView, Receipt, Signal, SignalAction, StoredEvent
from lamplighter.sources.replay import ReplayMemory

log = logging.getLogger(__name__)

MAX_REFUSAL_CHARS = 300

Submit = Callable[[Event], Receipt]
"""Store and route an event (call it on the event loop thread). Set `source=self.name` on your
events: that is how the dead-man's switch knows the source is alive."""


class Facade(Protocol):
    """What a source may ask of the running service beyond `submit` (chat commands need it)."""

    def acknowledge(self, event_id: int, by: str) -> SignalAction: ...

    def snooze_signal(self, event_id: int, seconds: float) -> SignalAction: ...

    def snooze_all(self, seconds: float, by: str) -> object: ...

    def end_snooze(self) -> None: ...

    def lamp_views(self) -> list[LampView]: ...

    def event_record(self, event_id: int) -> StoredEvent | None: ...

    def record_rejected(self, event: Event, reason: str) -> Receipt: ...

    def where_words(self, signal_id: int) -> tuple[str, str]: ...

    def acknowledge_showing(self, by: str, everything: bool = False) -> list[Signal]: ...

    def snooze_showing(self, seconds: float) -> Signal | None: ...


class SourceSettings(BaseModel):
    """Keys every source accepts; a type adds its own in a subclass."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    type: str
    name: str | None = None
    expect_every: Duration | None = None  # dead-man's switch: silence longer than this is reported


@dataclass
class SourceHealth:
    """What the API shows about a source."""

    connected: bool = True
    error: str = ""
    last_event_at: float | None = None
    disconnected_since: float | None = None
    refused: int = 0  # messages the source could not handle and skipped
    last_refusal: str = ""


class Source(ABC):
    """An origin of events, built from one `sources:` entry."""

    source_type: ClassVar[str]  # the `type:` that selects it in the file
    Settings: ClassVar[type[SourceSettings]] = SourceSettings

    def __init__(self, name: str, settings: SourceSettings, clock: Clock) -> None:
        self.name = name
        self.settings = settings
        self.clock = clock
        self.health = SourceHealth()
        self.on_health_change: Callable[[], None] = _nothing  # the service's watchdog listens here
        self.facade: Facade | None = None  # set by the service before `run`
        self.state_dir: Path | None = None  # this source's own directory, set by the service before `run`
        self._refusals: Counter[str] = Counter()  # by kind of problem, for logging each kind once
        self._loss_logged = False  # "connected again" only after a loss was logged, never for the first connection

    @classmethod
    def from_config(cls, entry: Mapping[str, Any], clock: Clock, place: str) -> Source:
        """Validate the entry with `Settings`; ConfigError names each bad key under `place`."""
        try:
            settings = cls.Settings.model_validate(dict(entry))
        except ValidationError as exc:
            problems = [(".".join([place, *(str(part) for part in err["loc"])]),
                         str(err["msg"]).removeprefix("Value error, ")) for err in exc.errors()]
            raise ConfigError(problems) from None
        return cls(settings.name or cls.source_type, settings, clock)

    async def run(self, submit: Submit) -> None:
        """Produce events until cancelled; a passive source (a webhook) returns at once."""

    async def picture(self, labels: Mapping[str, str]) -> bytes | None:
        """The JPEG behind one of this source's events (a door snapshot), from the event's labels; None if none.

        Only the source that made an event is asked, and it looks only where it keeps pictures."""
        return None

    def mark_connected(self) -> None:
        """Call when the connection works (again); logs only the change. Safe from any thread."""
        if not self.health.connected and self._loss_logged:
            log.warning("source %s is connected again", self.name)
        self._loss_logged = False
        self.health.connected, self.health.error, self.health.disconnected_since = True, "", None
        self.on_health_change()

    def mark_disconnected(self, error: str) -> None:
        """Call when the connection broke; logs only the change. Safe from any thread."""
        if self.health.connected:
            log.warning("source %s lost its connection: %s", self.name, error)
            self._loss_logged = True
            self.health.disconnected_since = self.clock.now()
        self.health.connected, self.health.error = False, error
        self.on_health_change()


    def refuse(self, what: str, problem: Exception) -> None:
        """Count a message that could not be handled and go on; log each kind of problem once.

        Expected refusals (a LamplighterError, ValueError, TypeError: the message makes no sense)
        log one line; anything else logs its traceback the first time, so it can be fixed.
        The same kind again is logged only at the 10th, 100th, 1000th... time, with the count.
        """
        kind = type(problem).__name__
        self._refusals[kind] += 1
        seen = self._refusals[kind]
        self.health.refused += 1
        self.health.last_refusal = f"{what}: {kind}: {problem}"[:MAX_REFUSAL_CHARS]
        if _is_power_of_ten(seen):
            expected = isinstance(problem, (LamplighterError, ValueError, TypeError))
            log.warning("source %s skipped %s: %s: %s (%d of this kind so far)", self.name, what, kind,
                        str(problem)[:MAX_REFUSAL_CHARS], seen, exc_info=None if expected or seen > 1 else problem)


def _is_power_of_ten(count: int) -> bool:
    text = str(count)
    return text[0] == "1" and not text[1:].strip("0")


REPLAYS_FILE = "replays"


class WebhookSource(Source):
    """A source that receives HTTP POSTs at /hooks/NAME; `replays` remembers the signed requests it accepted."""

    def __init__(self, name: str, settings: SourceSettings, clock: Clock) -> None:
        super().__init__(name, settings, clock)
        self.replays = ReplayMemory(clock, self._replays_file)

    def _replays_file(self) -> Path | None:
        return None if self.state_dir is None else self.state_dir / REPLAYS_FILE

    @abstractmethod
    def authenticate(self, headers: Mapping[str, str], body: bytes) -> None:
        """Raise AuthError naming the failed check (missing token, bad signature, stale timestamp)."""

    @abstractmethod
    def parse(self, headers: Mapping[str, str], body: bytes, received_at: float) -> list[Event]:
        """The events in a request body; raise EventError naming the bad field.

        Read the settings and build events; touch nothing the loop owns (`on_health_change`
        is safe), since `read` may run it in a worker thread."""

    async def read(self, headers: Mapping[str, str], body: bytes, received_at: float) -> list[Event]:
        """`parse` for the event loop: in a worker thread, unless a source knows a way that holds the loop less."""
        return await asyncio.to_thread(self.parse, headers, body, received_at)

    async def answer(self, headers: Mapping[str, str], body: bytes, received_at: float,
                     submit: Submit) -> tuple[int, dict[str, Any]] | None:
        """Answer an authenticated request yourself: (HTTP status, JSON body), e.g. a chat command's reply.

        None (the default): the daemon stores what `parse` finds and answers 202 with the receipts.
        """
        return None

    def accepted(self, headers: Mapping[str, str], body: bytes) -> None:
        """The events `parse` found in this request are stored: remember it if a replay must be refused."""


def check_bearer(headers: Mapping[str, str], token: str) -> None:
    """`Authorization: Bearer TOKEN` with this token (constant-time), else AuthError naming what is wrong."""
    header = headers.get("authorization")
    if not header:
        raise AuthError("missing token: send Authorization: Bearer TOKEN")
    scheme, _, given = header.partition(" ")
    given = given.strip()
    if scheme.lower() != "bearer" or not given or not token or not hmac.compare_digest(given.encode(), token.encode()):
        raise AuthError("wrong token")


def _nothing() -> None:
    """The health hook of a source that no service watches."""
