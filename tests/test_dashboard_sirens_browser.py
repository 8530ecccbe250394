"""Sirens as sirens, where a signal is, and a readable Setup: the dashboard in Debian's Chromium.

- A siren's card says silent, armed (with the time and a countdown to escalation) or SOUNDING,
  and each signal says when its sirens sound unless acknowledged.
- A 912 behind a 911 says "Queued behind a 911", not that it shows.
- Setup lists the sirens and each level's escalate_after, and shows mail rules as nested
  settings, not escaped JSON.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import pytest

from tests import browser as browsing
from tests.browser import LAPTOP, NewPage, screenshot
from tests.daemon import Daemon, free_port
from tests.test_dashboard_browser import lamp_card, post, sign_in

with contextlib.suppress(ImportError):  # the `browser` fixture reports a missing playwright as a failure
    from playwright.sync_api import expect

pytestmark = pytest.mark.slow
browser, new_page = browsing.browser, browsing.new_page  # the shared fixtures, used by name

SIRENS = ('lamps: {desk: "virtual://desk"}\nsirens: {hall: "virtual://hall"}\n'
          'levels: {"911": {escalate_after: 4s}, "912": {hold: until_ack}}\n')


def test_a_siren_is_silent_then_armed_with_a_countdown_then_sounding_and_a_912_is_queued(
        daemon: Callable[..., Daemon], new_page: NewPage) -> None:
    d = daemon(SIRENS)
    page = new_page(**LAPTOP)
    sign_in(page, d.url)
    hall = lamp_card(page, "hall")
    expect(hall.locator(".badge")).to_have_text("siren · silent")
    expect(hall.locator(".lamp-what")).to_have_text("Silent: no unacknowledged signal escalates to it")

    post(d, level="911", title="payments down", sender="alice")
    expect(hall.locator(".badge")).to_have_text("siren · armed")
    expect(hall).to_have_attribute("data-siren", "armed")
    expect(hall.locator(".lamp-what")).to_contain_text("Sounds at")
    expect(hall.locator(".lamp-what")).to_contain_text("left · 911 payments down")
    outage = page.locator("#signals li").first
    expect(outage).to_contain_text("siren hall in ")
    expect(outage).to_contain_text("unless acknowledged")
    warning = post(d, level="912", title="disk 90%", sender="bob")
    queued = page.locator(f'#signals li[data-event="{warning["id"]}"]')
    expect(queued).to_contain_text("Queued behind a 911 (“payments down”), shows when it ends")
    expect(queued).to_have_attribute("data-where", "queued")
    screenshot(page, "dashboard-siren-armed.png", full_page=True)

    expect(hall.locator(".badge")).to_have_text("siren · SOUNDING", timeout=10_000)
    expect(hall.locator(".lamp-what")).to_have_text("Sounding for 911 payments down")
    expect(outage).to_contain_text("siren hall SOUNDING since")
    screenshot(page, "dashboard-siren-sounding.png", full_page=True)

    outage.get_by_role("button", name="Acknowledge").click()
    expect(hall.locator(".badge")).to_have_text("siren · silent")
    expect(queued).to_contain_text("On the lamp now (desk)")


def test_setup_lists_sirens_escalation_and_mail_rules_readably(
        daemon: Callable[..., Daemon], new_page: NewPage) -> None:
    mail = (f"sources:\n  - type: smtp\n    name: mail\n    listen: 127.0.0.1:{free_port()}\n"
            "    recipients: [lamp@example.com]\n    senders: [alerts@monitor.example.com]\n"
            "    rules:\n      - match: {subject: {words: ['[911]']}}\n        level: '911'\n"
            "      - match: {subject: {words: [RESOLVED]}}\n        status: resolved\n")
    d = daemon(SIRENS + mail)
    page = new_page(**LAPTOP)
    sign_in(page, d.url, "/dashboard/setup")
    sirens = page.get_by_role("region", name="Sirens")
    expect(sirens).to_contain_text("hall")
    expect(sirens).to_contain_text("virtual://hall")
    expect(sirens).to_contain_text("911 (4s)")
    levels = page.get_by_role("region", name="Levels")
    expect(levels).to_contain_text("sirens hall after 4s unacknowledged")
    rules = page.locator("section.panel", has_text="mail (smtp)")
    expect(rules.locator("ol.nested > li")).to_have_count(2)
    expect(rules.locator("ol.nested > li").first).to_contain_text("[911]")
    text = rules.inner_text()
    assert '{"' not in text and '\\"' not in text, text  # no JSON
    expect(rules).to_contain_text("alerts@monitor.example.com")
    screenshot(page, "dashboard-setup-sirens-rules.png", full_page=True)


def test_the_now_page_says_what_happened_since_this_browser_last_looked(
        daemon: Callable[..., Daemon], new_page: NewPage) -> None:
    d = daemon(SIRENS.replace('"912": {hold: until_ack}', '"912": {hold: 1s}'))
    page = new_page(**LAPTOP)
    sign_in(page, d.url)
    expect(page.locator("#away")).to_have_count(0)  # a first look: nothing to catch up on
    post(d, level="912", title="disk 90%", sender="cron")
    post(d, level="912", title="disk 91%", sender="cron")
    post(d, level="912", title="disk 92%", sender="cron")  # the third from one sender in a row: throttled
    page.goto(f"{d.url}/dashboard/setup")  # away from Now (which notes when it was last looked at)
    page.evaluate("() => localStorage.setItem('lamplighter.lastLooked', String(Date.now() / 1000 - 3600))")
    page.goto(f"{d.url}/dashboard")  # as if an hour later
    away = page.locator("#away")
    expect(away).to_be_visible()
    expect(away.get_by_role("heading", name="While you were away")).to_be_visible()
    expect(away).to_contain_text("3 event(s): 2 shown, 1 throttled.")
    expect(away.locator("li")).to_have_count(3)
    expect(away.locator("li").first).to_contain_text("disk 92% · throttled")
    screenshot(page, "dashboard-while-you-were-away.png", full_page=True)
    away.get_by_role("button", name="Got it").click()
    expect(page.locator("#away")).to_have_count(0)
    page.reload()
    expect(page.locator("#live")).to_have_text("live")
    expect(page.locator("#away")).to_have_count(0)  # just looked: nothing new
