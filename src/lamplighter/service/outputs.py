"""Outputs the service drives through something other than its own lamp fleet (a hub's rooms).

The service treats their names as lamps when routing, hands them every change of the
active signals, asks them whether they can show a signal (for the fallback) and when they
next need a look.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from lamplighter.model import Signal


class RemoteOutputs(Protocol):
    @property
    def names(self) -> frozenset[str]: ...

    def update(self, signals: Iterable[Signal], now: float) -> None:
        """The active signals changed, or a deadline passed."""

    def reachable(self, name: str) -> bool:
        """Whether the output shows what it is sent (for the fallback)."""

    def problem(self, name: str) -> str:
        """Why it does not; empty when it does."""

    def next_deadline(self, now: float) -> float | None:
        """The next moment something changes without a message (a receipt overdue, an agent silent)."""

    def views(self) -> list[dict[str, object]]:
        """What the API and the dashboard show about each one."""
