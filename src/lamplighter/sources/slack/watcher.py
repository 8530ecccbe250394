"""The channel watcher: messages in chosen channels that match a pattern become events.

A CI bot that posts "Build nightly failed" to #builds can light the lamp without knowing
about Lamplighter. The first rule whose channel, sender and `match` (or `resolve`) fit
the message decides; `title` and `key` are filled from the pattern's named groups and
`{text}` (the message's first line), `{user}` and `{channel}`. A bot's text often lives in
attachments; their fallback text counts too. Edits, deletions and joins are not messages
for this purpose.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping
from typing import Any

from lamplighter.errors import EventError
from lamplighter.model import Event, make_event
from lamplighter.sources.slack.replies import unescape
from lamplighter.sources.slack.settings import WatchRule

log = logging.getLogger(__name__)

MAX_TITLE = 500
MESSAGE_SUBTYPES = frozenset({None, "bot_message", "thread_broadcast"})


def message_events(rules: Iterable[WatchRule], message: Mapping[str, Any], received_at: float,
                   source: str) -> list[Event]:
    """The event of the first rule that fits a Slack `message` event, if any."""
    subtype = message.get("subtype")
    if message.get("type") != "message" or (subtype is not None and _text(subtype) not in MESSAGE_SUBTYPES):
        return []
    text = message_text(message)
    for rule in rules:
        event = _rule_event(rule, message, text, received_at, source)
        if event is not None:
            return [event]
    return []


def message_text(message: Mapping[str, Any]) -> str:
    """The message's text and its attachments' fallback text, as the person or bot wrote it."""
    attachments = message.get("attachments")
    attached = [a for a in attachments if isinstance(a, Mapping)] if isinstance(attachments, list) else []
    parts = [_text(message.get("text"))] + [_text(a.get("fallback")) or _text(a.get("text")) for a in attached]
    return unescape("\n".join(part for part in parts if part))


def _text(value: Any) -> str:
    """A field Slack sends as text; anything else (a hostile or broken request) counts as none."""
    return value if isinstance(value, str) else ""


def _sender(message: Mapping[str, Any]) -> str:
    return _text(message.get("user")) or _text(message.get("bot_id"))


def _rule_event(rule: WatchRule, message: Mapping[str, Any], text: str, received_at: float,
                source: str) -> Event | None:
    sender = _sender(message)
    if message.get("channel") != rule.channel or (rule.senders and sender not in rule.senders):
        return None
    for pattern, status in ((rule.match, "firing"), (rule.resolve, "resolved")):
        found = pattern.search(text) if pattern is not None else None
        if found is not None:
            return _event(rule, found, message, text, status, received_at, source)
    return None


def _event(rule: WatchRule, found: re.Match[str], message: Mapping[str, Any], text: str, status: str,
           received_at: float, source: str) -> Event | None:
    sender = _sender(message)
    values = {"text": text.partition("\n")[0], "user": sender, "channel": rule.channel,
              **{name: value or "" for name, value in found.groupdict().items()}}
    labels = {"slack_channel": rule.channel, "slack_user": sender, "slack_ts": str(message.get("ts", ""))}
    try:
        return make_event(rule.level, rule.title.format_map(values)[:MAX_TITLE], received_at=received_at, body=text,
                          sender=sender, source=source, key=rule.key.format_map(values), status=status, labels=labels)
    except EventError as exc:
        log.warning("source %s: a message in %s matched but makes no event: %s", source, rule.channel, exc)
        return None
