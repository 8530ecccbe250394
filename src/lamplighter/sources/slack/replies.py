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

from lamplighter.i18n import N_, _
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


HEADLINES: dict[Outcome, str] = {  # message ids: said with _() in the configured locale
    Outcome.SHOWN: N_("💡 On the lamp now"),
    Outcome.DEDUPLICATED: N_("Already counted, not shown again"),
    Outcome.THROTTLED: N_("⏳ Not shown: throttled"),
    Outcome.QUIET: N_("🌙 Not shown: quiet time"),
    Outcome.UNROUTED: N_("Not shown: no lamp takes this level"),
    Outcome.RESOLVED: N_("Resolved"),
    Outcome.ACKNOWLEDGED: N_("Acknowledged"),
    Outcome.REJECTED: N_("Not shown: rejected"),
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
    headline = _(HEADLINES[receipt.outcome])
    if receipt.outcome is Outcome.SHOWN and where is not None:
        headline = f"{WHERE_MARKS.get(where[0], '')} {escape(where[1])}".strip()
    parts = [_("{headline}: *{level}* “{title}” (event {id}, from {sender}).").format(
        headline=headline, level=escape(event.level), title=escape(event.title), id=receipt.id, sender=mention(by))]
    parts += [_sentence(escape(reason)) for reason in receipt.reasons]
    if receipt.retry_after is not None:
        parts.append(_("You may send again at {time}.").format(time=slack_time(round(now + receipt.retry_after))))
    return Reply(" ".join(parts), in_channel=in_channel and receipt.outcome is Outcome.SHOWN)


def refused(what: str, audience: tuple[str, ...], problems: Iterable[str]) -> Reply:
    who = ", ".join(mention(given) for given in audience if given != EVERYONE) or _("nobody")
    text = _("🚫 Not allowed: you may not {what} (allowed: {who}). Nothing was done.").format(what=what, who=who)
    return Reply(" ".join([text, *(_sentence(problem) for problem in problems)]))


def say_what(command: str) -> Reply:
    return Reply(_("Say what is wrong, e.g. `{command} payments API returns 500`. Nothing was sent.").format(
        command=command))


def usage(command: str) -> Reply:
    verbs = ("ack [EVENT]", "status", "why [EVENT]", "snooze 30m|off", "test")
    return Reply(_("Usage: {commands}").format(commands=" · ".join(f"`{command} {verb}`" for verb in verbs)))


def unknown_command(command: str) -> Reply:
    return Reply(_("This Lamplighter has no command {command}; check `commands:` in its configuration.").format(
        command=escape(command)))


def not_accepted(problem: str) -> Reply:
    return Reply(_("⚠️ Not accepted, nothing was shown: {problem}. Try again, or reach them another way.").format(
        problem=escape(problem)))


def not_running() -> Reply:
    return Reply(_("Lamplighter is starting up and cannot answer this yet; try again in a moment."))


def acknowledged(by: str, ended: Iterable[tuple[str, str, int]]) -> Reply:
    """`ended`: (level, title, event id) of each signal the acknowledgement ended."""
    what = ", ".join(_("*{level}* “{title}” (event {id})").format(level=escape(level), title=escape(title), id=event_id)
                     for level, title, event_id in ended)
    return Reply(_("✅ {who} acknowledged {what}.").format(who=mention(by), what=what), in_channel=True)


def not_acknowledged(event_id: int, result: SignalAction) -> Reply:
    if result is SignalAction.UNKNOWN:
        return no_event(event_id)
    return Reply(_("Event {id} is not on any lamp (it ended, or was never shown).").format(id=event_id))


def nothing_showing(verb: str) -> Reply:
    return Reply(_("Nothing is on the lamps to {verb}.").format(verb=verb))


def snoozed(by: str, seconds: float, until: float, command: str) -> Reply:
    return Reply(_("😴 {who} snoozed the lamps for {duration}, until {time}. Levels that bypass quiet hours still "
                   "show. `{command} snooze off` ends it.").format(
        who=mention(by), duration=format_duration(seconds), time=slack_time(until), command=command), in_channel=True)


def snooze_ended(by: str) -> Reply:
    return Reply(_("⏰ {who} ended the snooze: the lamps show what is active.").format(who=mention(by)),
                 in_channel=True)


def bad_duration(problem: str, command: str) -> Reply:
    return Reply(_("{problem} Say how long, e.g. `{command} snooze 30m`, or `{command} snooze off`.").format(
        problem=_sentence(escape(problem)), command=command))


def status(views: Iterable[LampView]) -> Reply:
    lines = [_lamp_line(view) for view in views]
    return Reply("\n".join(lines) or _("No lamps are configured."))


def _lamp_line(view: LampView) -> str:
    shown = view.showing
    what = _("nothing to show") if shown is None else _("*{level}* “{title}” since {time} (event {id})").format(
        level=escape(shown.level), title=escape(shown.title), time=slack_time(shown.started_at), id=shown.event_id)
    offline = "" if view.online else " — " + _("⚠️ offline: {error}").format(error=escape(view.error))
    return f"• {view.kind} *{escape(view.name)}*: {what}{offline}"


def explain(record: StoredEvent) -> str:
    """One stored event, its outcome and the reasons behind it."""
    reasons = "; ".join(escape(reason) for reason in record.reasons)
    because = f" ({reasons})" if reasons else ""
    text = _("Event {id}: *{level}* “{title}” from {sender} via {source}, received {time}: *{outcome}*{because}")
    return text.format(
        id=record.id, level=escape(record.level), title=escape(record.title),
        sender=escape(record.sender or _("nobody")), source=escape(record.source),
        time=slack_time(record.received_at), outcome=_(record.outcome), because=because)


def why(records: Iterable[StoredEvent]) -> Reply:
    return Reply("\n".join(explain(record) for record in records))


def no_event(event_id: int) -> Reply:
    return Reply(_("No event {id} in the journal.").format(id=event_id))
