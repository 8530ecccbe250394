"""Connections shared by every lamp on one host: one client, one pacing, one push stream per bridge.

Several `hue://` lamps on one bridge, or several `hass://` entities on one Home Assistant,
must together keep the host's rate limit and need only one event stream; lamps on one MQTT
broker share one connection, and Govee lamps one UDP listener. `SharedHosts` hands every
driver of the same host the same connection object, made on first use and closed when the
last driver lets go. The table is kept per event loop (the tests run many
loops; a daemon has one), so a connection never outlives the loop it was made on.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar
from weakref import WeakKeyDictionary

Key = TypeVar("Key", bound=Hashable)
Conn = TypeVar("Conn")


class SharedHosts(Generic[Key, Conn]):
    """key (the host and its login) -> one connection, counted by its users."""

    def __init__(self, close: Callable[[Conn], Awaitable[None]]) -> None:
        self._close = close
        self._tables: WeakKeyDictionary[asyncio.AbstractEventLoop, dict[Key, tuple[Conn, int]]] = WeakKeyDictionary()

    def acquire(self, key: Key, make: Callable[[], Conn]) -> Conn:
        """The connection for `key`, made now if no driver holds one; call `release` once done with it."""
        table = self._tables.setdefault(asyncio.get_running_loop(), {})
        conn, users = table.get(key) or (make(), 0)
        table[key] = (conn, users + 1)
        return conn

    async def release(self, key: Key) -> None:
        """One user fewer; the last one closes the connection."""
        table = self._tables.get(asyncio.get_running_loop(), {})
        if key not in table:
            return
        conn, users = table[key]
        if users > 1:
            table[key] = (conn, users - 1)
            return
        del table[key]
        await self._close(conn)

    def hosts(self) -> list[Key]:
        """The hosts this event loop holds a connection to."""
        return list(self._tables.get(asyncio.get_running_loop(), {}))
