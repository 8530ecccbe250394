"""HTTP plumbing the HTTP drivers share (WLED, Hue, webhooks, IFTTT): one client per device.

One request in flight per device, the vendor's rate limit before every request, a bounded
wait and retry when the device answers 429, and every failure turned into the one error
tree, with messages that name the device as its redacted URL shows it:

    DriverError          the device answered 4xx/5xx, or kept answering 429
    └── DeviceOffline    no connection, or no answer within the timeout

httpx logs every request's full URL at INFO; secrets a driver must put in a URL path (the
IFTTT key) are registered here and masked in those records.

`OneWayHttpDriver` is the base of the drivers that POST the desired state to an endpoint
that cannot report it back (webhooks, IFTTT).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from abc import abstractmethod
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import httpx

from lamplighter.drivers.base import HIDDEN, Driver, LampUrl
from lamplighter.drivers.pacing import RateLimit
from lamplighter.errors import DeviceOffline, DriverError
from lamplighter.model import LAMP_OFF, Effect, LampState, Signal

RATE_LIMITED_TRIES = 3
RETRY_AFTER_DEFAULT = 1.0  # seconds, when a 429 carries no Retry-After
RETRY_AFTER_MAX = 5.0
POSTS_PER_SECOND = 1  # one-way endpoints: webhooks, IFTTT


class HttpDevice:
    """An HTTP device at one address; `name` is how messages call it (never a secret)."""

    def __init__(self, name: str, limit: RateLimit, timeout: float, *, verify: bool = True,
                 headers: Mapping[str, str] | None = None, auth: tuple[str, str] | None = None,
                 secrets: Iterable[str] = ()) -> None:
        self.name = name
        self.timeout = timeout
        self._limit = limit
        self._lock = asyncio.Lock()
        self._client_options: dict[str, Any] = {"timeout": timeout, "verify": verify, "headers": headers, "auth": auth}
        self._client: httpx.AsyncClient | None = None  # opened on first use: a driver built to check a URL holds none
        _REDACTOR.secrets.update(s for s in secrets if s)

    async def request(self, method: str, url: str, body: object = None, also: RateLimit | None = None) -> Any:
        """Send one request within the device's rate limit (and `also` within that one); return its JSON."""
        async with self._lock:
            for attempt in range(1, RATE_LIMITED_TRIES + 1):
                await self._limit.wait()
                if also is not None:
                    await also.wait()
                response = await self._send(method, url, body)
                if response.status_code != httpx.codes.TOO_MANY_REQUESTS:
                    return self._json(response)
                if attempt < RATE_LIMITED_TRIES:
                    await asyncio.sleep(_retry_after(response))
        raise DriverError(f"{self.name} kept answering 429 Too Many Requests")

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def _send(self, method: str, url: str, body: object) -> httpx.Response:
        if self._client is None:
            self._client = httpx.AsyncClient(**self._client_options)
        try:
            return await self._client.request(method, url, json=body)
        except httpx.TimeoutException:
            raise DeviceOffline(f"{self.name} did not answer within {self.timeout:g} s") from None
        except httpx.TransportError as exc:  # the exception may hold the URL: say only what kind it is
            raise DeviceOffline(f"cannot reach {self.name} ({type(exc).__name__})") from None

    def _json(self, response: httpx.Response) -> Any:
        status = response.status_code
        if status in (httpx.codes.UNAUTHORIZED, httpx.codes.FORBIDDEN):
            raise DriverError(f"{self.name} refused our credentials (HTTP {status})")
        if status >= httpx.codes.BAD_REQUEST:
            raise DriverError(f"{self.name} answered HTTP {status}")
        if not response.content:
            return None
        try:
            return response.json()
        except ValueError:
            if "json" in response.headers.get("content-type", ""):
                raise DriverError(f"{self.name} answered with malformed JSON") from None
            return None


class OneWayHttpDriver(Driver):
    """An endpoint that takes the desired state by POST and cannot report it back.

    Reading back gives the last state sent (off before the first), so a restore sends
    what was sent before the signal. The effect travels in the request (the receiver
    knows best what blinking means for it), so no effect is emulated. At most one POST a
    second; the lamp controller coalesces a burst to its latest state.
    """

    min_interval = 1 / POSTS_PER_SECOND
    verify_after = None  # nothing to read back
    tells_signal = True  # the body carries the level and title
    effects = frozenset(Effect)

    def __init__(self, url: LampUrl, timeout: float, *, headers: Mapping[str, str] | None = None,
                 auth: tuple[str, str] | None = None, secrets: Iterable[str] = ()) -> None:
        super().__init__(url)
        self._device = HttpDevice(self.url(), RateLimit(POSTS_PER_SECOND), timeout, headers=headers, auth=auth,
                                  secrets=secrets)
        self._sent = LAMP_OFF

    async def apply(self, state: LampState, showing: Signal | None = None) -> None:
        await self._device.request("POST", self.endpoint(), self.payload(state, showing))
        self._sent = state

    async def read_state(self) -> LampState:
        return self._sent

    async def close(self) -> None:
        await self._device.close()

    @abstractmethod
    def endpoint(self) -> str:
        """Where the state is posted (may hold a secret: never log it)."""

    @abstractmethod
    def payload(self, state: LampState, showing: Signal | None) -> object:
        """The JSON body that says `state`, and the signal behind it (None: back to how it was)."""


@contextlib.contextmanager
def answer_of(name: str, what: str) -> Iterator[None]:
    """Turn a device answer that lacks what we read from it into a DriverError naming `what` it should be."""
    try:
        yield
    except (KeyError, TypeError, ValueError, IndexError):
        raise DriverError(f"{name} answered with something that is not {what}") from None


def _retry_after(response: httpx.Response) -> float:
    try:
        seconds = float(response.headers.get("retry-after", RETRY_AFTER_DEFAULT))
    except ValueError:
        seconds = RETRY_AFTER_DEFAULT
    return min(max(seconds, 0.0), RETRY_AFTER_MAX)


class _SecretRedactor(logging.Filter):
    """Masks registered secrets in httpx's request log lines."""

    def __init__(self) -> None:
        super().__init__()
        self.secrets: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        hidden = message
        for secret in self.secrets:
            hidden = hidden.replace(secret, HIDDEN)
        if hidden != message:
            record.msg, record.args = hidden, None
        return True


_REDACTOR = _SecretRedactor()
logging.getLogger("httpx").addFilter(_REDACTOR)
