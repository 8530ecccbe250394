"""Prometheus Alertmanager's webhook receiver (payload version 4): one event per alert.

    sources:
      - type: alertmanager
        name: alertmanager               # POST /hooks/alertmanager
        token: ${ALERTMANAGER_TOKEN}     # Alertmanager sends it with http_config.authorization

The key of each event is the alert's fingerprint, so a `resolved` alert ends the signal its
firing started, and Alertmanager's repeats and retries of a firing alert are deduplicated by
the router instead of flashing the lamp again. The level comes from a label through `level`
(see common.Value): by default `severity` critical -> 911, warning -> 912, and an alert with
any other severity (`none` on the always-firing Watchdog, `info`) is ignored. Templates see one
alert: `labels.*`, `annotations.*`, `status`, `fingerprint`, `generatorURL`, ...
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from lamplighter.errors import EventError
from lamplighter.model import Event, Status, make_event
from lamplighter.sources.base import SourceSettings
from lamplighter.sources.webhooks.common import (
    HookSettings,
    HookSource,
    Template,
    TemplateText,
    TokenSettings,
    Value,
    compact,
    validated,
)

SEVERITY_LEVELS = {"critical": "911", "warning": "912"}


class AlertFields(HookSettings):
    """How an alert becomes an event; Alertmanager and Grafana share these keys (and add their credentials)."""

    level: Value = Value.of("{labels.severity}", SEVERITY_LEVELS)
    title: TemplateText = Template.parse("{annotations.summary|labels.alertname|fingerprint}")
    body: TemplateText = Template.parse("{annotations.description}\n{generatorURL}")
    sender: TemplateText = Template.parse("{labels.alertname}/{fingerprint}")


class AlertmanagerSettings(TokenSettings, AlertFields):
    pass


class Alert(BaseModel):
    """What an event needs of one alert; the other fields are reached through templates."""

    model_config = ConfigDict(extra="allow")
    status: Status
    labels: dict[str, str]
    fingerprint: str = Field(min_length=1)


class Notification(BaseModel):
    """The envelope; its alerts are checked one at a time as their events are built."""

    model_config = ConfigDict(extra="allow")
    version: str
    alerts: list[Any]


class AlertmanagerHook(HookSource):
    """POST /hooks/NAME from an Alertmanager `webhook_configs` receiver."""

    source_type = "alertmanager"
    Settings: ClassVar[type[SourceSettings]] = AlertmanagerSettings
    settings: AlertFields
    payload_version: ClassVar[str] = "4"

    def events(self, payload: Any, received_at: float) -> Iterator[Event]:
        notification = validated(Notification, payload)
        if notification.version != self.payload_version:
            raise EventError("version", f"expected webhook payload version {self.payload_version}, "
                                        f"not {notification.version!r}")
        for index, raw in enumerate(notification.alerts):
            event = self._event(validated(Alert, raw, at=("alerts", index)), raw, received_at)
            if event is not None:
                yield event

    def _event(self, alert: Alert, raw: dict[str, Any], received_at: float) -> Event | None:
        settings = self.settings
        level = settings.level.resolve(raw)
        if level is None:
            return None
        return make_event(level, settings.title.render(raw), received_at=received_at,
                          body=compact(settings.body.render(raw)), sender=settings.sender.render(raw),
                          source=self.name, key=alert.fingerprint, status=alert.status.value, labels=alert.labels)
