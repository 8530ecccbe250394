"""Which signed requests were already accepted, kept in a small file so that a restart does not forget.

A webhook source remembers the identity of each signed request it accepted (Slack's
signature, an HMAC over a timestamped body) until the request could no longer pass anyway:
the end of its timestamp's window, or a source's `replay_window` where the sender signs no
timestamp. A second request with the same identity within that time is a replay.

The file (`state_dir/replays` of the source) has one line per identity, `UNTIL SHA256`,
appended as requests are accepted and rewritten without the expired lines when it has grown
to twice what is live. It is flushed to the operating system on every write, so it outlives a
crash or restart of the daemon (not a power cut of the machine). A file that cannot be read
or written is logged once and the memory goes on without it.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Callable
from pathlib import Path

from lamplighter.model import Clock

log = logging.getLogger(__name__)

COMPACT_ABOVE = 64  # lines in the file before a rewrite is worth it


def _nowhere() -> Path | None:
    return None


class ReplayMemory:
    """Identities of accepted requests, each until a moment; `where` gives the file (None: memory only)."""

    def __init__(self, clock: Clock, where: Callable[[], Path | None] = _nowhere) -> None:
        self._clock = clock
        self._where = where
        self._until: dict[str, float] | None = None  # digest -> until; read from the file on first use
        self._lines = 0
        self._broken = False

    def seen(self, identity: str) -> bool:
        """Whether a request with this identity was accepted and could still pass."""
        until = self._memory().get(_digest(identity))
        return until is not None and until >= self._clock.now()

    def remember(self, identity: str, until: float) -> None:
        memory = self._memory()
        now = self._clock.now()
        for digest in [d for d, ends in memory.items() if ends < now]:
            del memory[digest]
        memory[_digest(identity)] = until
        if self._lines >= max(COMPACT_ABOVE, 2 * len(memory)):
            self._write(memory)
        else:
            self._append(f"{until!r} {_digest(identity)}\n")

    def _memory(self) -> dict[str, float]:
        if self._until is None:
            self._until = self._read()
        return self._until

    def _read(self) -> dict[str, float]:
        path = self._where()
        if path is None or not path.exists():
            return {}
        try:
            lines = path.read_text(encoding="ascii").splitlines()
        except (OSError, ValueError) as exc:
            self._fail(path, exc)
            return {}
        self._lines = len(lines)
        now = self._clock.now()
        return {digest: until for until, digest in map(_parsed, lines) if until >= now}

    def _append(self, line: str) -> None:
        path = self._where()
        if path is None or self._broken:
            return
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with path.open("a", encoding="ascii") as file:
                file.write(line)
            self._lines += 1
        except OSError as exc:
            self._fail(path, exc)

    def _write(self, memory: dict[str, float]) -> None:
        path = self._where()
        if path is None or self._broken:
            return
        temporary = path.with_name(path.name + ".new")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            temporary.write_text("".join(f"{until!r} {digest}\n" for digest, until in memory.items()),
                                 encoding="ascii")
            os.replace(temporary, path)
            self._lines = len(memory)
        except OSError as exc:
            self._fail(path, exc)

    def _fail(self, path: Path, exc: Exception) -> None:
        if not self._broken:
            log.warning("replay memory %s cannot be kept (%s): replays are refused only until a restart", path, exc)
        self._broken = True


def _digest(identity: str) -> str:
    return hashlib.sha256(identity.encode()).hexdigest()


def _parsed(line: str) -> tuple[float, str]:
    """(until, digest) of a line; a damaged line reads as long expired."""
    until, _, digest = line.partition(" ")
    try:
        return float(until), digest
    except ValueError:
        return float("-inf"), ""
