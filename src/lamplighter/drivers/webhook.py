"""`webhook://HOST[:PORT]/PATH` and `webhook+https://...`: POSTs the lamp's desired state as JSON.

For anything that takes an HTTP call (Node-RED, Home Assistant automations, a script).
The body is the whole state the lamp should show, so the receiver can apply it as often as
it arrives and a late one never undoes a newer one, and the signal behind it (null when the
lamp goes back to how it was):

    {"on": true, "color": "#ff0000", "brightness": 100, "effect": "solid",
     "signal": {"level": "911", "title": "payments down", "event_id": 42}}

`?token=SECRET` is sent as `Authorization: Bearer SECRET`, `USER:PASSWORD@` as HTTP basic
auth; neither is ever printed. Any 2xx answer is success; its body is ignored.

    webhook://nodered.local:1880/lamp?token=SECRET     webhook+https://USER:PASSWORD@example.org/hooks/lamp
"""

from __future__ import annotations

from typing import ClassVar
from urllib.parse import unquote

from lamplighter.drivers.base import LampUrl
from lamplighter.drivers.http import OneWayHttpDriver
from lamplighter.drivers.options import TIMEOUT, check_options, require, timeout_option
from lamplighter.model import LampState, Signal

DEFAULT_TIMEOUT = 10.0
TOKEN = "token"


class WebhookDriver(OneWayHttpDriver):
    scheme = "webhook"
    transport: ClassVar[str] = "http"

    @classmethod
    def from_url(cls, url: LampUrl) -> WebhookDriver:
        require(url, "a host", url.host, f"{cls.scheme}://example.org/hook?token=SECRET")
        check_options(url, {TOKEN, TIMEOUT})
        token = url.param(TOKEN)
        return cls(url, timeout_option(url, DEFAULT_TIMEOUT),
                   headers={"Authorization": f"Bearer {token}"} if token else None,
                   auth=(unquote(url.user), unquote(url.password)) if url.user else None)

    def endpoint(self) -> str:
        port = f":{self.lamp_url.port}" if self.lamp_url.port else ""
        return f"{self.transport}://{self.lamp_url.host}{port}{self.lamp_url.path or '/'}"

    def payload(self, state: LampState, showing: Signal | None) -> object:
        signal = None if showing is None else {"level": showing.level, "title": showing.title,
                                                "event_id": showing.event_id}
        return {**state.to_dict(), "signal": signal}


class SecureWebhookDriver(WebhookDriver):
    scheme = "webhook+https"
    transport = "https"
