"""The words of the pages (the lamp page, the dashboard) in the reader's language.

A page's language is the first of Korean and English its browser asks for (Accept-Language),
else the configuration's `locale:`. Its static text is translated where it stands in the
markup (`>Now<`), and the words its script writes are handed to it as a JSON table
(`{{WORDS}}` in lamp.html; the dashboard's `<script type="application/json" id="words">`, read by common.js's
`say("live")`). To add one: list it below with N_() and add its entry to
each catalog (see lamplighter.i18n).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from html import escape

from lamplighter.i18n import N_, _, best_match, current

LAMP_PAGE = (N_("Lamplighter lamp"),)  # the markup's own words
LAMP_SCRIPT = {  # the words the lamp page's script writes, by the key it uses: say("hold")
    "connecting": N_("connecting…"),
    "live": N_("live"),
    "lampOffline": N_("lamp offline"),
    "on": N_("on"),
    "off": N_("off"),
    "hold": N_("Hold to acknowledge"),
    "holding": N_("Keep holding…"),
    "acknowledged": N_("acknowledged"),
    "notAcknowledged": N_("not acknowledged"),
    "notConnected": N_("NOT CONNECTED"),
    "noStream": N_("No live news from Lamplighter since {time}: this page cannot show alerts. Retrying…"),
    "tokenRefused": N_("Lamplighter refused this page's sign-in: open the lamp link with the token again."),
}
DASHBOARD = (
    N_("Skip to content"), N_("Now"), N_("Timeline"), N_("Try it"), N_("Setup"), N_("connecting…"),
    N_("Sign out"), N_("Lamps: showing signals as they come."), N_("Snooze all lamps for"), N_("30 minutes"),
    N_("1 hour"), N_("4 hours"), N_("12 hours"), N_("Snooze all"), N_("End snooze"), N_("Active signals"),
    N_("Nothing is active: every lamp shows its own state."), N_("Lamps"), N_("Sources"),
    N_("Events per hour, last 3 days"), N_("Recent events"), N_("Level"), N_("Source"), N_("Sender"),
    N_("Outcome"), N_("any"), N_("Clear filters"), N_("Send a test event"), N_("Lamp"), N_("the level's lamps"),
    N_("Title"), N_("Send test event"), N_("Preview"), N_("How the level looks on a lamp. Only this page changes."),
    N_("Lamps now"), N_("Rooms"),
    N_("No sources configured: events arrive through the HTTP API and the command line:"),
    N_("The configuration this daemon is running with. Secrets are hidden; change it in the file and restart."
       " Check a changed file first with:"),
)
DASHBOARD_SCRIPT = {  # the words the dashboard's scripts write, by the key they use: say("live") (common.js)
    # every view (common.js, main.js)
    "live": N_("live"),
    "reconnecting": N_("reconnecting…"),
    "disconnected": N_("disconnected: reload the page or sign in again"),
    "signOutFailed": N_("Could not sign out: {error}"),
    "loadFailed": N_("Could not load this page: {error}"),
    "fromVia": N_("from {sender} via {source}"),
    "via": N_("via {source}"),
    "justNow": N_("just now"),
    "ago": N_("{duration} ago"),
    "left": N_("{duration} left"),
    "stateUnknown": N_("state unknown"),
    "off": N_("off"),
    "untilAcked": N_("until acknowledged"),
    "none": N_("none"),
    # Now: snooze, lamps, sirens, signals, rooms, sources, while you were away
    "snooze15m": N_("15 minutes"),
    "snooze1h": N_("1 hour"),
    "snooze4h": N_("4 hours"),
    "snooze1d": N_("1 day"),
    "allSnoozed": N_("All lamps snoozed for {duration}."),
    "snoozeEnded": N_("Snooze ended: the lamps show what is active."),
    "snoozed": N_("Snoozed"),
    "snoozedBy": N_("{snoozed} by {by} until {time} ({left}): only levels that bypass quiet hours light the lamps."),
    "notSnoozed": N_("Lamps show signals as they come."),
    "fullScreenOf": N_("Full-screen page of {lamp}"),
    "fullScreen": N_("full-screen page"),
    "offline": N_("offline"),
    "notShowingIt": N_("not showing it"),
    "sirenOnline": N_("siren, online"),
    "online": N_("online"),
    "nothingToShow": N_("Nothing to show"),
    "lampError": N_("The lamp {error}."),
    "offlineError": N_("Offline: {error}. Lamplighter keeps retrying."),
    "noAnswer": N_("the device does not answer"),
    "nowLooks": N_("Now: {look}"),
    "sounding": N_("siren · SOUNDING"),
    "armed": N_("siren · armed"),
    "silent": N_("siren · silent"),
    "soundingFor": N_("Sounding for"),
    "armedFor": N_("Sounds at {time} unless acknowledged:"),
    "silentWhy": N_("Silent: no unacknowledged signal escalates to it"),
    "escalatesIn": N_("siren {sirens} in {left}"),
    "unlessAcked": N_("{duration} unless acknowledged"),
    "sirenSounding": N_("siren {sirens} SOUNDING since {time}"),
    "since": N_("since {time}"),
    "waiting": N_("{count} more waiting behind it"),
    "unreachable": N_("Should show {level} “{title}”, but the lamp cannot be reached"),
    "snoozedUntil": N_("{level} “{title}” is snoozed until {time}; the lamp shows its own state"),
    "idle": N_("No active signal: the lamp shows its own state"),
    "acknowledge": N_("Acknowledge"),
    "snoozeFor": N_("Snooze for"),
    "snooze": N_("Snooze"),
    "event": N_("event {id}"),
    "snapshot": N_("Snapshot: {title}"),
    "acknowledgedEvent": N_("Acknowledged event {id}."),
    "eventSnoozed": N_("Event {id} snoozed for {duration}."),
    "roomAgent": N_("room agent"),
    "notShowing": N_("not showing"),
    "lastSeen": N_("last seen {ago}"),
    "notHeard": N_("not heard from yet"),
    "lampOnline": N_("{lamp} online"),
    "lampOffline": N_("{lamp} OFFLINE"),
    "lag": N_("lag {ms} ms"),
    "blind": N_("blind"),
    "connected": N_("connected"),
    "sourceDisconnected": N_("disconnected"),
    "lastEvent": N_("last event {ago}"),
    "noEventYet": N_("no event yet"),
    "expectedEvery": N_("expected every {every}"),
    "awayTitle": N_("While you were away"),
    "awaySince": N_("Since you last looked ({time}): {total} event(s): {counts}."),
    "awayQuiet": N_("During quiet hours ({start}-{end}): {total} event(s): {counts}."),
    "awayCount": N_("{count} {outcome}"),
    "awayDismiss": N_("Got it"),
    # Timeline
    "anyValue": N_("any"),
    "oneEvent": N_("1 event, newest first."),
    "events": N_("{count} events, newest first."),
    "oneEventFiltered": N_("1 event matching the filters, newest first."),
    "eventsFiltered": N_("{count} events matching the filters, newest first."),
    "noMatch": N_("No event matches the filters."),
    "noEvents": N_("No events yet. Try it sends one."),
    "stillActive": N_("still active"),
    "then": N_("then {reason} at {time}"),
    "chartOne": N_("1 event in the last {days} days; each bar is one hour, coloured by level."),
    "chartMany": N_("{count} events in the last {days} days; each bar is one hour, coloured by level."),
    "chartNone": N_("No events in the last {days} days."),
    # Try it
    "levelInfo": N_("{look} · hold {hold} · priority {priority} · on {lamps}"),
    "noLamp": N_("no lamp"),
    "previewOf": N_("Preview of {level}: {look}"),
    "notSent": N_("Not sent: {error}"),
    "receipt": N_("Event {id} {outcome}."),
    "receiptWhy": N_("Event {id} {outcome}: {reasons}."),
    "shownUntilAcked": N_("Event {id} shown on {lamps}. Acknowledge it on {now}."),
    "shownHold": N_("Event {id} shown on {lamps}. Acknowledge it on {now} or let its {hold} hold run out."),
    "nowView": N_("Now"),
    # Setup
    "server": N_("Server"),
    "listen": N_("listen"),
    "apiToken": N_("API token"),
    "largestRequest": N_("largest request"),
    "bytes": N_("{count} bytes"),
    "stateDirectory": N_("state directory"),
    "lamps": N_("Lamps"),
    "lamp": N_("Lamp"),
    "url": N_("URL"),
    "sirens": N_("Sirens"),
    "siren": N_("Siren"),
    "escalates": N_("Escalates from"),
    "noSirens": N_("No sirens: an unacknowledged 911 only stays on the lamps."),
    "levels": N_("Levels"),
    "level": N_("Level"),
    "look": N_("Look"),
    "hold": N_("Hold"),
    "priority": N_("Priority"),
    "quietHours": N_("Quiet hours"),
    "escalation": N_("Escalation"),
    "escalateAfter": N_("sirens {sirens} after {after} unacknowledged"),
    "shows": N_("shows"),
    "staysDark": N_("stays dark"),
    "guards": N_("Guards"),
    "dedupWindow": N_("same key again within"),
    "perSender": N_("per sender"),
    "perSource": N_("per source and level"),
    "quietHoursSetting": N_("quiet hours"),
    "sources": N_("Sources"),
    "noneConfigured": N_("None configured."),
    "yes": N_("yes"),
    "no": N_("no"),
}


def page_locale(accept_language: str | None, configured: str) -> str:
    """The language of one page view."""
    return best_match(accept_language, fallback=configured)


def language_headers(locale: str) -> dict[str, str]:
    """A page's language, and that it differs by the browser's (for any cache on the way)."""
    return {"Content-Language": locale, "Vary": "Accept-Language"}


def translate_markup(html: str, messages: Iterable[str]) -> str:
    """`html` with each of `messages` that stands alone between tags (`>Now<`) in the current language."""
    for message in messages:
        html = html.replace(f">{message}<", f">{escape(_(message), quote=False)}<")
    return html.replace('<html lang="en">', f'<html lang="{current()}">')


def script_words(messages: Iterable[str] | Mapping[str, str]) -> str:
    """The JSON table a page's script translates with (by message, or by the keys of a mapping):
    safe inside a <script> element."""
    pairs = messages.items() if isinstance(messages, Mapping) else ((message, message) for message in messages)
    table = {key: _(message) for key, message in pairs}
    return json.dumps(table, ensure_ascii=False).replace("<", "\\u003c")
