"""A phone as a siren: any Apprise URL under `sirens:` (ntfy, Pushover, Telegram...) gets one push per escalation.

    sirens:
      phone: ntfys://ntfy.sh/my-secret-topic          # sent with priority max (unless ?priority= says otherwise)
      pager: pover://USER_KEY@APP_TOKEN                # Pushover, sent as an emergency (repeats until seen)
      chat:  tgram://BOT_TOKEN/CHAT_ID                 # Telegram

When a level escalates (unacknowledged for `escalate_after`), the siren "turns on" with the
signal behind it: the push carries the level and title and says how to acknowledge. Each
escalation is pushed once, however often the siren is re-applied; a failed push raises
DeviceOffline, so the lamp controller retries it with backoff. Turning the siren off sends
nothing. A lamp test (`lamplighter test phone`) pushes a test message.
"""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from lamplighter.drivers.base import Driver, LampUrl, redact
from lamplighter.drivers.registry import build_driver, is_driver_scheme
from lamplighter.errors import DeviceOffline, LampUrlError
from lamplighter.model import LAMP_OFF, Effect, LampState, Signal, format_duration

URGENT = {"ntfy": ("priority", "max"), "ntfys": ("priority", "max"), "pover": ("priority", "emergency"),
          "pushover": ("priority", "emergency")}  # scheme -> the query that makes a push wake a sleeping person
WORDS = {  # every word a push says, in one place (for translation)
    "body": "Not acknowledged for {after}.\nAcknowledge: `lamplighter ack {id}`, `/lamp ack` in Slack, "
            "or hold the button on the lamp page.",
    "test": "A test of this siren from Lamplighter: nothing is wrong.",
}


def urgent(url: str) -> str:
    """The URL with its service's most urgent priority, unless the URL already sets one."""
    parts = urlsplit(url)
    wanted = URGENT.get(parts.scheme)
    query = parse_qsl(parts.query, keep_blank_values=True)
    if wanted is None or any(key == wanted[0] for key, _ in query):
        return url
    return urlunsplit(parts._replace(query=urlencode([*query, wanted])))


class PhoneSiren(Driver):
    """Pushes through one Apprise URL when a signal escalates to it."""

    scheme: ClassVar[str] = "apprise"
    min_interval = 0.0
    calm_interval = 0.0
    verify_after = None  # a push cannot be read back
    health_interval = 3600.0  # nothing to poll: the phone is not a device we can ask
    tells_signal = True  # another signal escalating is another push
    effects = frozenset(Effect)  # no blink frames: one push, not one per frame

    def __init__(self, apprise_url: str) -> None:
        scheme = urlsplit(apprise_url).scheme
        super().__init__(LampUrl(scheme, "", "", "", None, "", ()))  # Apprise's grammar is not a lamp URL's
        import apprise  # only when a phone is configured: importing Apprise takes a while

        service = apprise.Apprise.instantiate(urgent(apprise_url))
        if service is None:
            raise LampUrlError(redact(apprise_url), "not a siren driver nor a URL Apprise can push to "
                                           "(e.g. ntfys://ntfy.sh/TOPIC, pover://USER@TOKEN, tgram://BOT/CHAT)")
        self._name = str(service.url(privacy=True))  # type: ignore[no-untyped-call]
        self._apprise: Any = apprise.Apprise()
        self._apprise.add(service)
        self._state = LAMP_OFF
        self._pushed: set[tuple[int, float]] = set()  # (signal, its start): each escalation once

    def url(self, privacy: bool = True) -> str:
        return self._name  # as Apprise prints it, secrets hidden (it never needs to print them)

    async def apply(self, state: LampState, showing: Signal | None = None) -> None:
        if state.on and showing is not None and (showing.event_id, showing.started_at) not in self._pushed:
            await self._push(f"{showing.level}: {showing.title}", _body(showing))
            self._pushed.add((showing.event_id, showing.started_at))
        self._state = state

    async def read_state(self) -> LampState:
        return self._state

    async def _push(self, title: str, body: str) -> None:
        try:
            sent = await asyncio.to_thread(self._apprise.notify, body=body, title=title)
        except Exception as exc:  # whatever a plug-in raises is a failed push, retried by the controller
            raise DeviceOffline(f"the push to {self.url()} failed: {type(exc).__name__}") from None
        if not sent:
            raise DeviceOffline(f"the push to {self.url()} failed (Apprise logged why)")


def _body(signal: Signal) -> str:
    if signal.event_id <= 0:
        return WORDS["test"]
    after = format_duration((signal.escalates_at or signal.started_at) - signal.started_at)
    return WORDS["body"].format(after=after, id=signal.event_id)


def build_siren(url: str) -> Driver:
    """A siren's driver: a device driver for its scheme, else a phone through Apprise."""
    scheme = urlsplit(url).scheme
    if scheme and not is_driver_scheme(scheme):
        return PhoneSiren(url)
    return build_driver(url)
