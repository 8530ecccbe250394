"""Webhook sources mounted at POST /hooks/NAME: Alertmanager, Grafana, Buildbot and any JSON.

One module per type; `common` holds what they share (credentials, JSON, field paths and
templates), so each type is only the mapping from its payload to events.
"""

from lamplighter.sources.webhooks.alertmanager import AlertmanagerHook
from lamplighter.sources.webhooks.buildbot import BuildbotHook
from lamplighter.sources.webhooks.generic import GenericHook
from lamplighter.sources.webhooks.grafana import GrafanaHook

__all__ = ["AlertmanagerHook", "BuildbotHook", "GenericHook", "GrafanaHook"]
