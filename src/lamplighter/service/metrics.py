"""Prometheus metrics of one running service, in a registry of its own."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics, generate_latest

disable_created_metrics()  # type: ignore[no-untyped-call]

LATENCY_BUCKETS = (0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.events = Counter("lamplighter_events", "Events received, by level and outcome",
                              ["level", "outcome"], registry=self.registry)
        self.active_signals = Gauge("lamplighter_active_signals", "Signals active now", registry=self.registry)
        self.lamp_online = Gauge("lamplighter_lamp_online", "1 when the lamp answers", ["lamp"], registry=self.registry)
        self.lamp_applies = Counter("lamplighter_lamp_applies", "State changes sent to the lamp", ["lamp"],
                                    registry=self.registry)
        self.event_to_apply = Histogram("lamplighter_event_to_apply_seconds",
                                        "From an event received to the apply call it caused on a lamp",
                                        buckets=LATENCY_BUCKETS, registry=self.registry)

    def text(self) -> bytes:
        return generate_latest(self.registry)
