"""The composition root: builds the store, router, drivers and lamp controllers, and owns their tasks."""

from lamplighter.service.core import Service, SignalAction, validate

__all__ = ["Service", "SignalAction", "validate"]
