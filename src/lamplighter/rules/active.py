"""The active signals by event id, with an index by dedup key.

The router asks "which active signals share this event's key?" for every event (resolve,
deduplicate, supersede). Scanning every active signal made a batch of N new alerts cost
O(N²): 11,000 Alertmanager alerts in one webhook took 19 s. The index makes each question
O(signals with that key), usually none or one.
"""

from __future__ import annotations

from collections.abc import ItemsView, Iterator, MutableMapping, ValuesView

from lamplighter.model import Signal


class ActiveSignals(MutableMapping[int, Signal]):
    """event id -> Signal, and `with_key(key)`: the signals whose key is `key`, oldest first."""

    def __init__(self, signals: dict[int, Signal] | None = None) -> None:
        self._by_id: dict[int, Signal] = {}
        self._by_key: dict[str, dict[int, Signal]] = {}
        self.update(signals or {})

    def with_key(self, key: str) -> list[Signal]:
        return list(self._by_key.get(key, {}).values())

    def __getitem__(self, event_id: int) -> Signal:
        return self._by_id[event_id]

    def __setitem__(self, event_id: int, signal: Signal) -> None:
        old = self._by_id.get(event_id)
        if old is not None and old.key != signal.key:
            del self[event_id]  # (a signal keeps its key; this only keeps the index true if one did not)
        self._by_id[event_id] = signal
        self._by_key.setdefault(signal.key, {})[event_id] = signal

    def __delitem__(self, event_id: int) -> None:
        signal = self._by_id.pop(event_id)
        same_key = self._by_key[signal.key]
        del same_key[event_id]
        if not same_key:
            del self._by_key[signal.key]

    def values(self) -> ValuesView[Signal]:  # the dict's own views: no __getitem__ per signal
        return self._by_id.values()

    def items(self) -> ItemsView[int, Signal]:
        return self._by_id.items()

    def __contains__(self, event_id: object) -> bool:
        return event_id in self._by_id

    def __iter__(self) -> Iterator[int]:
        return iter(self._by_id)

    def __len__(self) -> int:
        return len(self._by_id)

    def __repr__(self) -> str:
        return f"ActiveSignals({self._by_id!r})"
