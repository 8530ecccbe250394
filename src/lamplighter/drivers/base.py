"""The driver interface and the lamp URL grammar shared by every driver.

A lamp is configured as a URL whose scheme names its driver (`virtual://desk`,
`console://`). `LampUrl` parses and prints such a URL exactly (print(parse(u)) == u), and
prints it with secrets hidden for logs, the API and `lamplighter check`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar
from urllib.parse import parse_qsl, urlencode, urlsplit

from lamplighter.errors import LampUrlError
from lamplighter.model import Effect, LampState, Signal

SECRET_QUERY_KEYS = frozenset({"token", "key", "secret", "password", "apikey", "api_key"})
HIDDEN = "****"


@dataclass(frozen=True)
class LampUrl:
    """A lamp URL split into parts; `text(privacy=True)` hides user info and secret query values."""

    scheme: str
    user: str
    password: str
    host: str
    port: int | None
    path: str
    query: tuple[tuple[str, str], ...]

    @classmethod
    def parse(cls, url: str) -> LampUrl:
        try:
            parts = urlsplit(url)
        except ValueError as exc:  # "Invalid IPv6 URL": an unclosed [
            raise LampUrlError(_opaque(url), f"not a lamp URL: {exc}") from None
        if not parts.scheme or "://" not in url:
            raise LampUrlError(_opaque(url), "not a lamp URL (expected SCHEME://..., e.g. virtual://desk)")
        try:
            port = parts.port
        except ValueError:
            raise LampUrlError(_opaque(url), "the port is not a number from 1 to 65535") from None
        return cls(
            scheme=parts.scheme,
            user=parts.username or "",
            password=parts.password or "",
            host=_host_of(parts.netloc),
            port=port,
            path=parts.path,
            query=tuple(parse_qsl(parts.query, keep_blank_values=True)),
        )

    def text(self, privacy: bool = True) -> str:
        auth = ""
        if self.user or self.password:
            user = HIDDEN if privacy and self.user else self.user
            password = (HIDDEN if privacy else self.password) if self.password else ""
            auth = f"{user}:{password}@" if password else f"{user}@"
        port = f":{self.port}" if self.port is not None else ""
        shown = [(k, HIDDEN if privacy and k.lower() in SECRET_QUERY_KEYS else v) for k, v in self.query]
        query = f"?{urlencode(shown, safe='#/:*')}" if shown else ""
        return f"{self.scheme}://{auth}{self.host}{port}{self.path}{query}"

    def param(self, name: str, default: str = "") -> str:
        return dict(self.query).get(name, default)


def _host_of(netloc: str) -> str:
    """The host as written: its case kept (IFTTT event names) and an IPv6 address in brackets."""
    hostport = netloc.rpartition("@")[2]
    if hostport.startswith("["):
        return hostport[: hostport.find("]") + 1]
    return hostport.partition(":")[0]


def redact(url: str) -> str:
    """A URL with secrets hidden, for messages about URLs that may not even parse."""
    try:
        return LampUrl.parse(url).text(privacy=True)
    except (LampUrlError, ValueError):
        return _opaque(url)


def _opaque(url: str) -> str:
    """An unparseable URL as far as it is safe to show: all of it only if it cannot hold a secret."""
    if "@" not in url and "?" not in url:
        return url
    scheme, sep, _ = url.partition("://")
    return f"{scheme}://{HIDDEN}" if sep else HIDDEN


class Driver(ABC):
    """One lamp reached over one protocol.

    The lamp controller calls `apply` with the latest desired state (never a backlog) at
    most once per `min_interval` seconds (and changes the look at most once per
    `calm_interval`, unless a higher signal takes the lamp), and `read_state` once before
    the first signal takes the lamp, to remember what to restore (and every
    `health_interval` while idle). `effects` are those the
    device draws itself; the controller draws the others as solid frames. Either raises DriverError (or its
    DeviceOffline) when the device cannot be reached; the controller retries with backoff.
    """

    scheme: ClassVar[str]
    min_interval: ClassVar[float] = 0.1
    calm_interval: ClassVar[float] = 1.0  # a light in a room changes its look at most this often
    verify_after: ClassVar[float | None] = 0.5  # read a new look back this long after; None: it cannot say
    health_interval: ClassVar[float] = 10.0  # an idle device is read this often, to notice it is gone
    tells_signal: ClassVar[bool] = False  # it says the title too: applied again when another signal takes over
    effects: ClassVar[frozenset[Effect]] = frozenset({Effect.SOLID})
    pushes_state: ClassVar[bool] = False  # it tells its state by itself: no read before the first alert
    _state_listener: Callable[[LampState | None], None] | None = None

    def __init__(self, url: LampUrl) -> None:
        self.lamp_url = url

    @classmethod
    def from_url(cls, url: LampUrl) -> Driver:
        """Build the driver, raising LampUrlError for a URL it cannot use."""
        return cls(url)

    def url(self, privacy: bool = True) -> str:
        return self.lamp_url.text(privacy=privacy)

    async def start(self) -> None:
        """Open connections; the default driver needs none."""

    async def close(self) -> None:
        """Release connections; the default driver holds none."""

    def watch(self, listener: Callable[[LampState | None], None]) -> None:
        """Have a pushing driver call `listener` with the device's whole state whenever the device tells it
        (from `start` on), and with None whenever it can no longer tell (its stream broke)."""
        self._state_listener = listener

    def tell(self, state: LampState | None) -> None:
        """For pushing drivers: pass what the device told (or None: it can no longer tell) to the listener."""
        if self._state_listener is not None:
            self._state_listener(state)

    @abstractmethod
    async def apply(self, state: LampState, showing: Signal | None = None) -> None:
        """Make the device show `state`, with zero transition time.

        `showing` is the signal behind the state (None when the lamp goes back to how it
        was); a device that can say more than a colour (a siren's message, an IFTTT
        applet, a speaker) uses its level and title.
        """

    @abstractmethod
    async def read_state(self) -> LampState:
        """What the device shows now, for the restore snapshot."""
