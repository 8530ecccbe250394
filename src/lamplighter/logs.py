"""The daemon's log on stderr: text lines for people or JSON lines for collectors, without library chatter.

Lamplighter logs one INFO line per event and one per change of health; the libraries under it
log one per HTTP request to a device (httpx, httpcore), per SMTP command (aiosmtpd's
`mail.log`), per MQTT packet (aiomqtt), per request served (uvicorn.access), per Slack socket
or notification sent (slack_bolt, slack_sdk, apprise). Those stay at WARNING unless
`--verbose` asks for everything.

In JSON, every line is one object: `time` (ISO 8601, UTC), `level`, `logger`, `message`, any
structured fields the call passed in `extra=` (an event's `event_id`, `level`, `outcome`,
`lamps`, ...), and `exception` with the traceback when there is one.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Literal

LogFormat = Literal["text", "json"]
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
CHATTY_LIBRARIES = ("httpx", "httpcore", "mail.log", "aiomqtt", "uvicorn.access", "slack_bolt", "slack_sdk", "apprise")
_RECORD_FIELDS = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime",
                                                                                        "taskName"}


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {"time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")
                 .replace("+00:00", "Z"), "level": record.levelname, "logger": record.name,
                 "message": record.getMessage()}
        entry.update({key: value for key, value in record.__dict__.items() if key not in _RECORD_FIELDS})
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


def configure_logging(log_format: LogFormat, verbose: bool) -> None:
    """Send every logger's records to stderr in `log_format`; quiet the chatty libraries unless verbose."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    for name in CHATTY_LIBRARIES:
        logging.getLogger(name).setLevel(logging.NOTSET if verbose else logging.WARNING)
