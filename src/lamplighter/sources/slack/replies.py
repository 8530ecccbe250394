"""What Lamplighter answers in Slack: every reply says truthfully what happened.

A reply is ephemeral (only the sender sees it) unless it is news for the channel: a level
shown by a command configured `reply: in_channel`, an acknowledgement, a snooze. Text that
came from a person is escaped, so a title cannot ping `@channel`. Times use Slack's date
token, so each reader sees them in their own time zone.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from lamplighter.model import Event, LampView, Outcome, Receipt, SignalAction, StoredEvent, format_duration
from lamplighter.sources.slack.settings import EVERYONE


@dataclass(frozen=True)
class Reply:
    """One answer to a slash command."""

    text: str
    in_channel: bool = False

    def to_json(self) -> dict[str, str]:
        """The body Slack reads from a slash command's HTTP answer or Socket Mode acknowledgement."""
        return {"response_type": "in_channel" if self.in_channel else "ephemeral", "text": self.text}


HEADLINES: dict[Outcome, str] = {
    Outcome.SHOWN: "💡 On the lamp now",
    Outcome.DEDUPLICATED: "Already counted, not shown again",
    Outcome.THROTTLED: "⏳ Not shown: throttled",
    Outcome.QUIET: "🌙 Not shown: quiet time",
    Outcome.UNROUTED: "Not shown: no lamp takes this level",
    Outcome.RESOLVED: "Resolved",
    Outcome.ACKNOWLEDGED: "Acknowledged",
    Outcome.REJECTED: "Not shown: rejected",
}


WHERE_MARKS: dict[str, str] = {  # the mark before the words of announce/text.py `where_text`
    "on_lamp": "💡", "queued": "⏳", "snoozed": "😴", "fallback_only": "⚠️", "offline": "⚠️", "ended": "",
}


def escape(text: str) -> str:
    """Text as Slack must receive it: `&`, `<` and `>` escaped, so nothing in it becomes a mention."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def unescape(text: str) -> str:
    """Text as Slack sent it, back to what the person typed."""
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def slack_time(epoch: float) -> str:
    """A time each reader sees in their own time zone; the fallback is UTC."""
    fallback = datetime.fromtimestamp(epoch, UTC).strftime("%H:%M:%S UTC")
    return f"<!date^{int(epoch)}^{{time_secs}}|{fallback}>"


def mention(slack_id: str) -> str:
    return f"<!subteam^{slack_id}>" if slack_id.startswith("S") else f"<@{slack_id}>"


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:] + ("" if text.endswith(".") else ".")


def outcome(event: Event, receipt: Receipt, now: float, by: str, in_channel: bool,
            where: tuple[str, str] | None = None) -> Reply:
    """What happened to an event a person sent; only `shown` is ever posted in the channel.

    `where`: (state, words) of the signal a shown event started, from the facade's `where_words`:
    "On the lamp now" only when a lamp shows it, else "Queued behind a 911...", "Shown on the fallback only..."."""
    headline = HEADLINES[receipt.outcome]
    if receipt.outcome is Outcome.SHOWN and where is not None:
        headline = f"{WHERE_MARKS.get(where[0], '')} {escape(where[1])}".strip()
    parts = [f"{headline}: *{escape(event.level)}* “{escape(event.title)}” "
             f"(event {receipt.id}, from {mention(by)})."]
    parts += [_sentence(escape(reason)) for reason in receipt.reasons]
    if receipt.retry_after is not None:
        parts.append(f"You may send again at {slack_time(round(now + receipt.retry_after))}.")
    return Reply(" ".join(parts), in_channel=in_channel and receipt.outcome is Outcome.SHOWN)


def refused(what: str, audience: tuple[str, ...], problems: Iterable[str]) -> Reply:
    who = ", ".join(mention(given) for given in audience if given != EVERYONE) or "nobody"
    text = f"🚫 Not allowed: you may not {what} (allowed: {who}). Nothing was done."
    return Reply(" ".join([text, *(_sentence(problem) for problem in problems)]))


def say_what(command: str) -> Reply:
    return Reply(f"Say what is wrong, e.g. `{command} payments API returns 500`. Nothing was sent.")


def usage(command: str) -> Reply:
    verbs = ("ack [EVENT]", "status", "why [EVENT]", "snooze 30m|off", "test")
    return Reply("Usage: " + " · ".join(f"`{command} {verb}`" for verb in verbs))


def unknown_command(command: str) -> Reply:
    return Reply(f"This Lamplighter has no command {escape(command)}; check `commands:` in its configuration.")


def not_accepted(problem: str) -> Reply:
    return Reply(f"⚠️ Not accepted, nothing was shown: {escape(problem)}. Try again, or reach them another way.")


def not_running() -> Reply:
    return Reply("Lamplighter is starting up and cannot answer this yet; try again in a moment.")


def acknowledged(by: str, ended: Iterable[tuple[str, str, int]]) -> Reply:
    """`ended`: (level, title, event id) of each signal the acknowledgement ended."""
    what = ", ".join(f"*{escape(level)}* “{escape(title)}” (event {event_id})" for level, title, event_id in ended)
    return Reply(f"✅ {mention(by)} acknowledged {what}.", in_channel=True)


def not_acknowledged(event_id: int, result: SignalAction) -> Reply:
    if result is SignalAction.UNKNOWN:
        return no_event(event_id)
    return Reply(f"Event {event_id} is not on any lamp (it ended, or was never shown).")


def nothing_showing(verb: str) -> Reply:
    return Reply(f"Nothing is on the lamps to {verb}.")


def snoozed(by: str, seconds: float, until: float, command: str) -> Reply:
    return Reply(f"😴 {mention(by)} snoozed the lamps for {format_duration(seconds)}, until {slack_time(until)}. "
                 f"Levels that bypass quiet hours still show. `{command} snooze off` ends it.", in_channel=True)


def snooze_ended(by: str) -> Reply:
    return Reply(f"⏰ {mention(by)} ended the snooze: the lamps show what is active.", in_channel=True)


def bad_duration(problem: str, command: str) -> Reply:
    return Reply(f"{_sentence(escape(problem))} Say how long, e.g. `{command} snooze 30m`, or `{command} snooze off`.")


def status(views: Iterable[LampView]) -> Reply:
    lines = [_lamp_line(view) for view in views]
    return Reply("\n".join(lines) or "No lamps are configured.")


def _lamp_line(view: LampView) -> str:
    shown = view.showing
    what = "nothing to show" if shown is None else (f"*{escape(shown.level)}* “{escape(shown.title)}” "
                                                    f"since {slack_time(shown.started_at)} (event {shown.event_id})")
    offline = "" if view.online else f" — ⚠️ offline: {escape(view.error)}"
    return f"• {view.kind} *{escape(view.name)}*: {what}{offline}"


def explain(record: StoredEvent) -> str:
    """One stored event, its outcome and the reasons behind it."""
    reasons = "; ".join(escape(reason) for reason in record.reasons)
    because = f" ({reasons})" if reasons else ""
    return (f"Event {record.id}: *{escape(record.level)}* “{escape(record.title)}” "
            f"from {escape(record.sender or 'nobody')} via {escape(record.source)}, "
            f"received {slack_time(record.received_at)}: *{record.outcome}*{because}")


def why(records: Iterable[StoredEvent]) -> Reply:
    return Reply("\n".join(explain(record) for record in records))


def no_event(event_id: int) -> Reply:
    return Reply(f"No event {event_id} in the journal.")
