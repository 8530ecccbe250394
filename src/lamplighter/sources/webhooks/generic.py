"""Any JSON webhook: a mapping in the configuration from the body to an event, no code needed.

    sources:
      - type: webhook
        name: kuma                       # POST /hooks/kuma
        token: ${KUMA_TOKEN}             # Authorization: Bearer ..., and/or
        secret: ${GITHUB_SECRET}         # X-Hub-Signature-256: sha256=HMAC (GitHub's; see signature_header)
        level: "911"
        title: "{monitor.name} is down: {msg}"
        key: "kuma-{monitor.id}"
        status: {from: "{heartbeat.status}", map: {"0": firing, "1": resolved}}   # others: ignored
        # body, sender: templates too; labels: {name: template, ...}

Every field is a Value (see common): a template over the JSON body, or a template looked up
in a `map`. When any of them maps to null (an unmapped value without a `default`), the
request is ignored and answered 202 with no event, so a sender's other notifications (a
GitHub `ping`, a workflow that is still running) pass quietly.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from lamplighter.errors import EventError
from lamplighter.model import Event, make_event
from lamplighter.sources.webhooks.common import HookSource, SignedSettings, Value


class GenericSettings(SignedSettings):
    signature_header: str = "X-Hub-Signature-256"
    signature_prefix: str = "sha256="
    level: Value
    title: Value
    key: Value = Value.of("")
    status: Value = Value.of("firing")
    body: Value = Value.of("")
    sender: Value = Value.of("")
    labels: dict[str, Value] = Field(default_factory=dict)

    def fields(self) -> dict[str, Value]:
        return {"level": self.level, "title": self.title, "key": self.key, "status": self.status,
                "body": self.body, "sender": self.sender}


class GenericHook(HookSource):
    """POST /hooks/NAME with any JSON body, mapped by the source's settings."""

    source_type = "webhook"
    Settings = GenericSettings
    settings: GenericSettings

    def events(self, payload: Any, received_at: float) -> list[Event]:
        fields = _resolve(self.settings.fields(), payload)
        labels = _resolve(self.settings.labels, payload)
        if fields is None or labels is None:
            return []
        for name in ("level", "title"):
            if not fields[name].strip():
                template = str(self.settings.fields()[name].source)
                raise EventError(name, f"the template {template!r} gives nothing for this body")
        return [make_event(fields["level"], fields["title"], received_at=received_at, body=fields["body"],
                           sender=fields["sender"], source=self.name, key=fields["key"], status=fields["status"],
                           labels=labels)]


def _resolve(specs: dict[str, Value], payload: Any) -> dict[str, str] | None:
    """Every value resolved, or None when one of them says to ignore the request."""
    resolved: dict[str, str] = {}
    for name, spec in specs.items():
        value = spec.resolve(payload)
        if value is None:
            return None
        resolved[name] = value
    return resolved
