"""Where the IMAP source stopped reading, per mailbox, in a small JSON file that survives restarts.

The position is saved right after the mail's event is stored, so a crash between the two
hands that one mail over again after the restart (at least once; the router's dedup window
absorbs the repeat) and never skips one. The lead can move this into the journal, in the
same transaction as the event, to make it exactly once even across a crash.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from lamplighter.errors import StoreError

log = logging.getLogger(__name__)

RECENT_IDS = 200


@dataclass(frozen=True)
class Position:
    """How far one folder has been read."""

    uidvalidity: int
    last_uid: int
    checkpoint: float  # INTERNALDATE (epoch seconds) of the newest mail handled or passed over
    recent_ids: tuple[str, ...] = ()  # Message-IDs of the last mails handled, oldest first

    def handled(self, uid: int, internaldate: float, message_id: str) -> Position:
        ids = self.recent_ids if not message_id or message_id in self.recent_ids else (*self.recent_ids, message_id)
        return replace(self, last_uid=max(self.last_uid, uid), checkpoint=max(self.checkpoint, internaldate),
                       recent_ids=ids[-RECENT_IDS:])


class PositionFile:
    """All positions of one source, keyed by `user@host:port/folder`; written atomically."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> dict[str, Position]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            return {key: Position(int(p["uidvalidity"]), int(p["last_uid"]), float(p["checkpoint"]),
                                  tuple(p.get("recent_ids", ()))) for key, p in data["mailboxes"].items()}
        except FileNotFoundError:
            return {}
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise StoreError(f"cannot read the mail positions in {self.path}: {exc}"
                             " (move the file away to start from new mail only)") from None

    def save(self, positions: dict[str, Position]) -> None:
        data = {"version": 1, "mailboxes": {key: asdict(p) for key, p in sorted(positions.items())}}
        temporary = self.path.with_name(self.path.name + ".tmp")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with temporary.open("w", encoding="utf-8") as file:
                json.dump(data, file, indent=1)
                file.flush()
                os.fsync(file.fileno())
            os.replace(temporary, self.path)
            directory = os.open(self.path.parent, os.O_RDONLY)
            try:
                os.fsync(directory)
            finally:
                os.close(directory)
        except OSError as exc:
            raise StoreError(f"cannot write the mail positions to {self.path}: {exc}") from None
