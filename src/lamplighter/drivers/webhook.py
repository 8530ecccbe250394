"""`webhook://HOST[:PORT]/PATH` and `webhook+https://...`: POSTs the lamp's desired state as JSON.

For anything that takes an HTTP call (Node-RED, Home Assistant automations, a script).
The body is the whole state the lamp should show, so the receiver can apply it as often as
it arrives and a late one never undoes a newer one:

    {"on": true, "color": "#ff0000", "brightness": 100, "effect": "solid"}

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
from lamplighter.model import LampState

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

    def payload(self, state: LampState) -> object:
        return state.to_dict()


class SecureWebhookDriver(WebhookDriver):
    scheme = "webhook+https"
    transport = "https"
