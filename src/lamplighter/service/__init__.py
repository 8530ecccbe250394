"""The composition root: builds the store, router, drivers and lamp controllers, and owns their tasks."""

from lamplighter.model import SignalAction
from lamplighter.service.core import Service, validate

__all__ = ["Service", "SignalAction", "validate"]
