"""Grafana alerting's webhook contact point: Alertmanager's shape (version "1") plus Grafana's fields.

    sources:
      - type: grafana
        name: grafana                    # POST /hooks/grafana (the contact point's method must be POST)
        token: ${GRAFANA_TOKEN}          # "Authorization header" credentials in the contact point, and/or
        secret: ${GRAFANA_HMAC}          # its "HMAC signature" secret
        # signature_header: X-Grafana-Alerting-Signature    (the contact point's default)
        # timestamp_header: X-Grafana-Alerting-Timestamp    (if set there: signs TIMESTAMP:BODY; max_age 5m)

Each alert is handled as Alertmanager's are (key = fingerprint; level from `severity`;
resolved ends it). Grafana's own fields are there for the templates, and the default body
shows the query values and the link to the panel or dashboard: `valueString`, `values.B`,
`dashboardURL`, `panelURL`, `silenceURL`, `imageURL`.
"""

from __future__ import annotations

from lamplighter.sources.webhooks.alertmanager import AlertFields, AlertmanagerHook
from lamplighter.sources.webhooks.common import SignedSettings, Template, TemplateText


class GrafanaSettings(SignedSettings, AlertFields):
    signature_header: str = "X-Grafana-Alerting-Signature"
    body: TemplateText = Template.parse(
        "{annotations.description}\n{valueString|values}\n{panelURL|dashboardURL|generatorURL}")


class GrafanaHook(AlertmanagerHook):
    """POST /hooks/NAME from a Grafana webhook contact point."""

    source_type = "grafana"
    Settings = GrafanaSettings
    payload_version = "1"
