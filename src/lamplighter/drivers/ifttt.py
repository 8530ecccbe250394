"""`ifttt://KEY@EVENT`: fires an IFTTT Webhooks event, for the lamps and sirens an IFTTT applet reaches.

IFTTT's wire format: `POST https://maker.ifttt.com/trigger/EVENT/with/key/KEY` with a
JSON body of up to three values, here

    value1: the level showing ("911", "door"), or "none" when the lamp goes back to how it was
    value2: the signal's title ("" for none)
    value3: the colour, "#rrggbb", or "off"

so an applet can filter on the level and use the title and colour as ingredients. KEY
is the one on https://ifttt.com/maker_webhooks/settings; it is never printed or logged.
IFTTT takes seconds, sometimes minutes, to run an applet: never make it the only path
for a 911. `?base_url=` sends the events elsewhere (tests, a relay).

    ifttt://KEY@lamplighter      ifttt://KEY@office_lamp?timeout=20
"""

from __future__ import annotations

import re

from lamplighter.drivers.base import LampUrl
from lamplighter.drivers.http import OneWayHttpDriver
from lamplighter.drivers.options import TIMEOUT, check_options, require, timeout_option
from lamplighter.errors import LampUrlError
from lamplighter.model import LampState, Signal

DEFAULT_BASE_URL = "https://maker.ifttt.com"
DEFAULT_TIMEOUT = 15.0
BASE_URL = "base_url"
EXAMPLE = "ifttt://KEY@EVENT"
NO_SIGNAL = "none"
NAME = re.compile(r"[A-Za-z0-9_.-]+")


class IftttDriver(OneWayHttpDriver):
    scheme = "ifttt"

    def __init__(self, url: LampUrl, base_url: str, timeout: float) -> None:
        super().__init__(url, timeout)
        self._endpoint = f"{base_url.rstrip('/')}/trigger/{url.host}/with/key/{url.user}"

    @classmethod
    def from_url(cls, url: LampUrl) -> IftttDriver:
        require(url, "the Webhooks key", url.user, EXAMPLE)
        require(url, "the event name", url.host, EXAMPLE)
        check_options(url, {BASE_URL, TIMEOUT})
        if url.password or url.port or url.path not in ("", "/") or not NAME.fullmatch(url.user + url.host):
            raise LampUrlError(url.text(), f"must be {EXAMPLE}: a key and an event name of letters, digits, _ - .")
        base_url = url.param(BASE_URL, DEFAULT_BASE_URL)
        if not base_url.startswith(("https://", "http://")):
            raise LampUrlError(url.text(), f"{BASE_URL} must be an http:// or https:// address")
        return cls(url, base_url, timeout_option(url, DEFAULT_TIMEOUT))

    def endpoint(self) -> str:
        return self._endpoint

    def payload(self, state: LampState, showing: Signal | None) -> object:
        return {"value1": showing.level if showing else NO_SIGNAL, "value2": showing.title if showing else "",
                "value3": state.color if state.on else "off"}
