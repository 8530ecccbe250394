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

import logging
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Protocol

from pydantic import BaseModel, ConfigDict, ValidationError

from lamplighter.config import Duration
from lamplighter.errors import ConfigError
from lamplighter.model import Clock, Event, LampView, Receipt, SignalAction

log = logging.getLogger(__name__)

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

    def event_record(self, event_id: int) -> dict[str, Any] | None: ...

    def record_rejected(self, event: Event, reason: str) -> Receipt: ...


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


class WebhookSource(Source):
    """A source that receives HTTP POSTs at /hooks/NAME."""

    @abstractmethod
    def authenticate(self, headers: Mapping[str, str], body: bytes) -> None:
        """Raise AuthError naming the failed check (missing token, bad signature, stale timestamp)."""

    @abstractmethod
    def parse(self, headers: Mapping[str, str], body: bytes, received_at: float) -> list[Event]:
        """The events in a request body; raise EventError naming the bad field."""

    async def answer(self, headers: Mapping[str, str], body: bytes, received_at: float,
                     submit: Submit) -> tuple[int, dict[str, Any]] | None:
        """Answer an authenticated request yourself: (HTTP status, JSON body), e.g. a chat command's reply.

        None (the default): the daemon stores what `parse` finds and answers 202 with the receipts.
        """
        return None


def _nothing() -> None:
    """The health hook of a source that no service watches."""
