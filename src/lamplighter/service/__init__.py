"""The composition root: builds the store, router, drivers and lamp controllers, and owns their tasks."""

from lamplighter.service.core import AckResult, Service, validate

__all__ = ["AckResult", "Service", "validate"]
