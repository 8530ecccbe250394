"""HTTP plumbing the HTTP drivers share (WLED, Hue, Home Assistant, webhooks, IFTTT): one client per device.

The client is aiohttp's, the one Home Assistant's device libraries use: on loopback a
request round trip took 0.3-0.6 ms with it against 3.4-7.4 ms with httpx's AsyncClient,
which sat in front of every alert.

One request in flight per device, the vendor's rate limit before every request, a bounded
wait and retry when the device answers 429, and every failure turned into the one error
tree, with messages that name the device as its redacted URL shows it:

    DriverError          the device answered 4xx/5xx, kept answering 429, or answered too much
                         (more than MAX_ANSWER_BYTES, or JSON nested past the parser's depth)
    └── DeviceOffline    no connection, or no answer within the timeout

aiohttp logs no request lines, and no error message here carries a URL, so a secret a
driver must put in a URL (the IFTTT key, Tasmota's password) is never printed.

`OneWayHttpDriver` is the base of the drivers that POST the desired state to an endpoint
that cannot report it back (webhooks, IFTTT).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import ssl
from abc import abstractmethod
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

import aiohttp

from lamplighter.drivers.base import Driver, LampUrl
from lamplighter.drivers.pacing import RateLimit
from lamplighter.errors import DeviceOffline, DriverError
from lamplighter.model import LAMP_OFF, Effect, LampState, Signal

RATE_LIMITED_TRIES = 3
RETRY_AFTER_DEFAULT = 1.0  # seconds, when a 429 carries no Retry-After
RETRY_AFTER_MAX = 5.0
POSTS_PER_SECOND = 1  # one-way endpoints: webhooks, IFTTT
MAX_ANSWER_BYTES = 1024 * 1024  # a lamp's state is a few KiB; a Hue bridge's whole /lights some 100 KiB


@dataclass(frozen=True)
class Answer:
    """A device's answer, its body read in full (and bounded)."""

    status: int
    headers: Mapping[str, str]  # case-insensitive, as the device sent them
    content: bytes


class HttpDevice:
    """An HTTP device at one address; `name` is how messages call it (never a secret)."""

    def __init__(self, name: str, limit: RateLimit, timeout: float, *, verify: bool = True,
                 headers: Mapping[str, str] | None = None, auth: tuple[str, str] | None = None) -> None:
        self.name = name
        self.timeout = timeout
        self._limit = limit
        self._lock = asyncio.Lock()
        self._verify = verify
        self._headers = dict(headers or {})
        self._auth = aiohttp.BasicAuth(*auth) if auth else None
        self._session: aiohttp.ClientSession | None = None  # opened on first use: a driver built to check holds none
        self._closed = False

    async def request(self, method: str, url: str, body: object = None, also: RateLimit | None = None) -> Any:
        """Send one request within the device's rate limit (and `also` within that one); return its JSON."""
        async with self._lock:
            for attempt in range(1, RATE_LIMITED_TRIES + 1):
                await self._limit.wait()
                if also is not None:
                    await also.wait()
                answer = await self._send(method, url, body)
                if answer.status != HTTPStatus.TOO_MANY_REQUESTS:
                    return self._json(answer)
                if attempt < RATE_LIMITED_TRIES:
                    await asyncio.sleep(_retry_after(answer))
        raise DriverError(f"{self.name} kept answering 429 Too Many Requests")

    async def close(self) -> None:
        self._closed = True  # a request still on its way must not open a session nobody closes
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()

    def _open(self) -> aiohttp.ClientSession:
        if self._closed:
            raise DriverError(f"{self.name}: the driver is closed")
        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.timeout), headers=self._headers, auth=self._auth,
                connector=aiohttp.TCPConnector(ssl=ssl.create_default_context() if self._verify else False))
        return self._session

    async def _send(self, method: str, url: str, body: object) -> Answer:
        data = None if body is None else json.dumps(body)
        headers = {"content-type": "application/json"} if data is not None else None
        try:
            async with self._open().request(method, url, data=data, headers=headers) as response:
                return Answer(response.status, response.headers, await self._read(response))
        except TimeoutError:
            raise DeviceOffline(f"{self.name} did not answer within {self.timeout:g} s") from None
        except aiohttp.ClientConnectorCertificateError:
            raise DeviceOffline(f"cannot reach {self.name}: its TLS certificate is not trusted (a private CA goes in "
                                "SSL_CERT_FILE)") from None
        except (aiohttp.ClientError, OSError) as exc:  # the exception may hold the address: say only its kind
            raise DeviceOffline(f"cannot reach {self.name} ({type(exc).__name__})") from None

    async def _read(self, response: aiohttp.ClientResponse) -> bytes:
        """The body, or DriverError once it grows past MAX_ANSWER_BYTES (the rest is never read)."""
        chunks, size = [], 0
        async for chunk in response.content.iter_chunked(64 * 1024):
            size += len(chunk)
            if size > MAX_ANSWER_BYTES:
                raise DriverError(f"{self.name} answered more than {MAX_ANSWER_BYTES // 1024} KiB: not a lamp's state")
            chunks.append(chunk)
        return b"".join(chunks)

    def _json(self, answer: Answer) -> Any:
        status = answer.status
        if status in (HTTPStatus.UNAUTHORIZED, HTTPStatus.FORBIDDEN):
            raise DriverError(f"{self.name} refused our credentials (HTTP {status})")
        if status >= HTTPStatus.BAD_REQUEST:
            raise DriverError(f"{self.name} answered HTTP {status}")
        if not answer.content:
            return None
        try:
            return json.loads(answer.content)
        except RecursionError:
            raise DriverError(f"{self.name} answered with JSON nested too deeply") from None
        except ValueError:
            if "json" in answer.headers.get("content-type", ""):
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
                 auth: tuple[str, str] | None = None) -> None:
        super().__init__(url)
        self._device = HttpDevice(self.url(), RateLimit(POSTS_PER_SECOND), timeout, headers=headers, auth=auth)
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


def _retry_after(answer: Answer) -> float:
    try:
        seconds = float(answer.headers.get("retry-after", RETRY_AFTER_DEFAULT))
    except ValueError:
        seconds = RETRY_AFTER_DEFAULT
    return min(max(seconds, 0.0), RETRY_AFTER_MAX)
