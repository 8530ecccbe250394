"""The words of the pages (the lamp page, the dashboard) in the reader's language.

A page's language is the first of Korean and English its browser asks for (Accept-Language),
else the configuration's `locale:`. Its static text is translated where it stands in the
markup (`>Now<`), and the words its script writes are handed to it as a JSON table
(`{{WORDS}}`, read by `t("live")`). To add one: list it below with N_() and add its entry to
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
    N_("Events per hour, last 3 days"),
)


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
