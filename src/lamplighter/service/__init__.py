"""The composition root: builds the store, router, drivers and lamp controllers, and owns their tasks."""

from lamplighter.service.core import AckResult, Receipt, Service, validate

__all__ = ["AckResult", "Receipt", "Service", "validate"]
