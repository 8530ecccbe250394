"""The dashboard as a person uses it: a real daemon, Debian's Chromium, driven by Playwright.

Each test signs in with the token as a user would, then does what the issue asks for: watch a
lamp turn red live and acknowledge it (by keyboard, and by touch on a phone), snooze, read the
timeline with its filters, try a level, read the setup without secrets, open the lamp page.
Screenshots of every page at laptop and phone size are written to test-artifacts/dashboard-*.png.
These tests fail (never skip) when playwright or /usr/bin/chromium is missing (see tests/browser.py).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from lamplighter.config import parse_config
from lamplighter.drivers.base import Driver, LampUrl
from lamplighter.drivers.virtual import VirtualDriver
from lamplighter.errors import DeviceOffline
from lamplighter.model import LampState, Signal
from lamplighter.service import Service
from lamplighter.sources.base import Source, SourceSettings, Submit
from tests import browser as browsing
from tests.browser import LAPTOP, PHONE, WAIT_MS, NewPage, screenshot
from tests.daemon import TOKEN, Daemon
from tests.serving import serving_in_thread

with contextlib.suppress(ImportError):  # the `browser` fixture reports a missing playwright as a failure
    from playwright.sync_api import expect

if TYPE_CHECKING:
    from pathlib import Path

    from playwright.sync_api import Locator, Page

pytestmark = pytest.mark.slow
browser, new_page = browsing.browser, browsing.new_page  # the shared fixtures, used by name

LAMPS = ('lamps: {desk: "virtual://desk", shelf: "virtual://shelf?on=true&color=warmwhite&brightness=40"}\n'
         'levels: {"911": {hold: until_ack}, "912": {hold: until_ack}}\n')
RED, YELLOW, GREEN = "rgb(255, 0, 0)", "rgb(255, 208, 0)", "rgb(0, 255, 0)"
WARMWHITE_40 = "rgb(102, 86, 67)"  # #ffd8a8 at 40 %, rounded as the lamp page does
VIEWS = {"now": "/dashboard", "timeline": "/dashboard/timeline", "try": "/dashboard/try", "setup": "/dashboard/setup"}

# WCAG contrast of every visible piece of text against the first opaque background behind it.
CONTRAST_PROBLEMS = """() => {
  const rgb = (css) => (css.match(/[\\d.]+/g) || []).map(Number);
  const linear = (v) => (v /= 255) <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4;
  const lum = ([r, g, b]) => 0.2126 * linear(r) + 0.7152 * linear(g) + 0.0722 * linear(b);
  const background = (node) => {
    for (; node; node = node.parentElement) {
      const c = rgb(getComputedStyle(node).backgroundColor);
      if (c.length === 3 || c[3] > 0) return c.slice(0, 3);
    }
    return [255, 255, 255];
  };
  const problems = [];
  const texts = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  while (texts.nextNode()) {
    const node = texts.currentNode.parentElement;
    const box = node.getBoundingClientRect();
    const style = getComputedStyle(node);
    const invisible = box.width < 2 || box.height < 2 || style.visibility === "hidden";
    if (!texts.currentNode.textContent.trim() || invisible) continue;
    const [a, b] = [lum(rgb(node instanceof SVGElement ? style.fill : style.color)), lum(background(node))];
    const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
    const size = parseFloat(style.fontSize);
    const large = size >= 24 || (size >= 18.66 && Number(style.fontWeight) >= 700);
    if (ratio < (large ? 3 : 4.5)) problems.push(`${texts.currentNode.textContent.trim()}: ${ratio.toFixed(2)}`);
  }
  return problems;
}"""

# Controls without a name a screen reader can say, and buttons too small to hit on a phone.
CONTROL_PROBLEMS = """(phone) => {
  const shown = (e) => e.getClientRects().length > 0 && getComputedStyle(e).visibility !== "hidden";
  const labelled = (e) => (e.labels && e.labels.length) || e.getAttribute("aria-label")
    || e.getAttribute("aria-labelledby");
  const named = (e) => labelled(e) || (e.tagName !== "INPUT" && e.tagName !== "SELECT" && e.textContent.trim());
  const controls = [...document.querySelectorAll("input:not([type=hidden]), select, textarea, button, a[href]")]
    .filter(shown);
  return [
    ...controls.filter((e) => !named(e)).map((e) => `unnamed ${e.outerHTML.slice(0, 80)}`),
    ...controls.filter((e) => phone && e.tagName !== "A" && e.getBoundingClientRect().height < 44)
      .map((e) => `too small to tap: ${e.outerHTML.slice(0, 80)}`),
    ...[...document.querySelectorAll('[role="img"]')].filter((e) => !labelled(e))
      .map((e) => `image without a text: ${e.outerHTML.slice(0, 80)}`),
  ];
}"""


# ---- helpers -------------------------------------------------------------------------------------

def sign_in(page: Page, base: str, path: str = "/dashboard") -> None:
    """Open a dashboard page, get sent to the login, type the token, land back on the page, live."""
    page.goto(f"{base}{path}")
    expect(page).to_have_url(f"{base}/login?next={path}")
    page.get_by_label("API token").fill(TOKEN)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(f"{base}{path}")
    expect(page.locator("#live")).to_have_text("live")


def post(d: Daemon, **body: Any) -> dict[str, Any]:
    with d.client() as client:
        answer = client.post("/api/events", json=body)
    assert answer.status_code == 202, answer.text
    return dict(answer.json())


def swatch(page: Page, lamp: str) -> Locator:
    return page.locator(f'#lamps [data-lamp="{lamp}"] .swatch')


def lamp_card(page: Page, lamp: str) -> Locator:
    return page.locator(f'#lamps [data-lamp="{lamp}"]')


def tab_to(page: Page, target: Locator, most: int = 40) -> None:
    """Press Tab until `target` has the keyboard focus, as a keyboard user would."""
    for _ in range(most):
        page.keyboard.press("Tab")
        if target.evaluate("node => node === document.activeElement"):
            return
    raise AssertionError(f"{most} presses of Tab never reached {target}")


def mark_document(page: Page) -> None:
    page.evaluate("() => { window.__sameDocument = true; }")  # gone if the page reloads


def still_same_document(page: Page) -> bool:
    return bool(page.evaluate("() => window.__sameDocument === true"))


# ---- the Now view --------------------------------------------------------------------------------

def test_login_refuses_a_bad_token_and_keeps_the_good_one_in_a_strict_cookie(
        daemon: Callable[..., Daemon], new_page: NewPage) -> None:
    d = daemon(LAMPS)
    page = new_page()
    page.goto(f"{d.url}/dashboard")
    expect(page).to_have_url(f"{d.url}/login?next=/dashboard")
    page.get_by_label("API token").fill("not-the-token")
    with page.expect_response(f"{d.url}/login") as refused:
        page.get_by_role("button", name="Sign in").click()
    assert refused.value.status == 401
    expect(page.get_by_role("alert")).to_have_text("That is not the token of this Lamplighter.")
    assert page.context.cookies(d.url) == []

    page.get_by_label("API token").fill(TOKEN)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(f"{d.url}/dashboard")
    expect(page.locator("#live")).to_have_text("live")
    [cookie] = page.context.cookies(d.url)
    assert (cookie["value"], cookie["httpOnly"], cookie["sameSite"]) == (TOKEN, True, "Strict")
    assert TOKEN not in page.content()


def test_a_posted_911_turns_the_swatch_red_live_and_acknowledge_by_keyboard_restores_the_lamps(
        daemon: Callable[..., Daemon], new_page: NewPage) -> None:
    d = daemon(LAMPS)
    page = new_page(**LAPTOP)
    sign_in(page, d.url)
    expect(swatch(page, "desk")).to_have_attribute("data-on", "false")
    expect(swatch(page, "shelf")).to_have_css("background-color", WARMWHITE_40)
    expect(page.get_by_text("Nothing is active")).to_be_visible()
    mark_document(page)

    event_id = post(d, level="911", title="payments down", sender="alice")["id"]

    expect(swatch(page, "desk")).to_have_css("background-color", RED)
    expect(swatch(page, "shelf")).to_have_css("background-color", RED)
    desk = lamp_card(page, "desk")
    expect(desk.locator(".lamp-what")).to_have_text("911 payments down")
    expect(desk.locator(".lamp-why")).to_contain_text("from alice via api")
    expect(desk.locator(".lamp-why")).to_contain_text("until acknowledged")
    expect(swatch(page, "desk")).to_have_attribute("aria-label", "desk: red (#ff0000), 100%, blink")
    signal = page.locator("#signals li")
    expect(signal).to_have_count(1)
    expect(signal).to_contain_text(f"event {event_id}")
    expect(signal).to_contain_text("On the lamp now (desk, shelf)")
    expect(page).to_have_title("911: payments down · Now · Lamplighter")
    assert still_same_document(page)
    screenshot(page, "dashboard-now-911-laptop.png", full_page=True)

    acknowledge = signal.get_by_role("button", name="Acknowledge")
    tab_to(page, acknowledge)
    assert acknowledge.evaluate("node => getComputedStyle(node).outlineStyle") != "none"  # focus is visible
    page.keyboard.press("Enter")

    expect(swatch(page, "desk")).to_have_attribute("data-on", "false")
    expect(swatch(page, "shelf")).to_have_css("background-color", WARMWHITE_40)
    expect(page.locator("#signals li")).to_have_count(0)
    expect(page.locator("#notice")).to_have_text(f"Acknowledged event {event_id}.")
    expect(page.locator("#signals-title")).to_be_focused()  # focus does not fall off the page
    expect(desk.locator(".lamp-what")).to_have_text("Nothing to show")
    assert still_same_document(page)
    with d.client() as client:
        ended = client.get("/api/timeline", params={"level": "911"}).json()["events"][0]["ended"]
    assert ended["reason"] == "acknowledged by dashboard"


def test_snooze_hides_a_signal_and_snooze_all_keeps_new_events_dark_until_it_ends(
        daemon: Callable[..., Daemon], new_page: NewPage) -> None:
    d = daemon(LAMPS)
    page = new_page(**LAPTOP)
    sign_in(page, d.url)
    post(d, level="912", title="disk filling", sender="cron")
    expect(swatch(page, "desk")).to_have_css("background-color", YELLOW)

    signal = page.locator("#signals li")
    signal.get_by_label("Snooze for").select_option(label="1 hour")
    signal.get_by_role("button", name="Snooze").click()
    expect(swatch(page, "desk")).to_have_attribute("data-on", "false")
    expect(signal).to_contain_text("Snoozed until")
    expect(lamp_card(page, "desk").locator(".lamp-why")).to_contain_text("912 “disk filling” is snoozed until")
    expect(page.locator("#notice")).to_contain_text("snoozed for 1 hour")

    page.get_by_label("Snooze all lamps for").select_option(label="30 minutes")
    page.get_by_role("button", name="Snooze all").click()
    expect(page.locator("#snooze-state")).to_contain_text("Snoozed by dashboard until")
    assert post(d, level="door", title="someone at the door")["outcome"] == "quiet"
    expect(swatch(page, "desk")).to_have_attribute("data-on", "false")

    page.get_by_role("button", name="End snooze").click()
    expect(page.locator("#snooze-state")).to_have_text("Lamps show signals as they come.")
    expect(swatch(page, "desk")).to_have_css("background-color", YELLOW)  # still active, so it is back
    expect(signal).to_contain_text("On the lamp now (desk, shelf)")


# ---- Timeline, Try it, Setup ---------------------------------------------------------------------

def test_timeline_shows_outcomes_with_reasons_a_chart_and_filters_by_level_and_sender(
        daemon: Callable[..., Daemon], new_page: NewPage) -> None:
    d = daemon(LAMPS.replace("}}\n", "}, nowhere: {color: blue, priority: 1, lamps: []}}\n"))
    first = post(d, level="911", title="db down", sender="alice")
    post(d, level="911", title="db down", sender="alice")
    for title in ("a", "b", "c"):
        post(d, level="912", title=title, sender="bob")
    post(d, level="nowhere", title="lost", sender="carol")
    page = new_page(**LAPTOP)
    sign_in(page, d.url, "/dashboard/timeline")
    events = page.locator("#events li")
    expect(events).to_have_count(6)
    expect(events.nth(0)).to_contain_text("unrouted level nowhere has no lamps")
    expect(events.nth(1)).to_contain_text("throttled sender bob is over the limit (2 at once, then one every")
    expect(events.nth(4)).to_contain_text(f"deduplicated same key as active event {first['id']}; hold refreshed")
    expect(events.nth(5)).to_contain_text("shown from alice via api")
    expect(events.nth(5)).to_contain_text("still active")
    expect(page.locator("#chart-caption")).to_contain_text("6 events in the last 3 days")
    expect(page.locator('#chart rect[data-level="912"]').first).to_be_visible()
    mark_document(page)

    page.get_by_label("Level", exact=True).select_option("912")
    expect(events).to_have_count(3)
    expect(page).to_have_url(f"{d.url}/dashboard/timeline?level=912")
    expect(page.locator("#events-count")).to_have_text("3 events matching the filters, newest first.")
    page.get_by_label("Sender").select_option("bob")
    page.get_by_label("Outcome").select_option("shown")
    expect(events).to_have_count(2)
    screenshot(page, "dashboard-timeline-filtered-laptop.png", full_page=True)

    page.get_by_role("button", name="Clear filters").click()
    expect(events).to_have_count(6)
    with d.client() as client:
        client.post(f"/api/events/{first['id']}/ack", json={"by": "alice"})
    post(d, level="door", title="parcel", sender="porch")  # arrives while the page is open
    expect(events).to_have_count(7)
    expect(events.nth(0)).to_contain_text("parcel")
    expect(events.nth(6)).to_contain_text("then acknowledged by alice")
    assert still_same_document(page)


def test_try_it_previews_a_level_on_the_page_and_sends_a_real_test_event(
        daemon: Callable[..., Daemon], new_page: NewPage) -> None:
    d = daemon(LAMPS)
    page = new_page(**LAPTOP)
    sign_in(page, d.url, "/dashboard/try")
    page.get_by_label("Level", exact=True).select_option("door")
    preview = page.get_by_role("img", name="Preview of door")
    expect(preview).to_have_css("background-color", GREEN)
    expect(page.locator("#try-level-info")).to_contain_text("green (#00ff00), 100%, solid · hold 10s")
    desk = page.locator('#try-lamps [data-key="desk"] .swatch')
    expect(desk).to_have_attribute("data-on", "false")  # a preview changes no lamp

    page.get_by_label("Level", exact=True).select_option("911")
    page.get_by_label("Title").fill("is the desk lamp working?")
    page.get_by_role("button", name="Send test event").click()
    result = page.locator("#try-result")
    expect(result).to_contain_text("shown on desk, shelf. Acknowledge it on Now.")
    expect(desk).to_have_css("background-color", RED)
    with d.client() as client:
        [sent] = client.get("/api/events", params={"limit": 1}).json()
    assert (sent["title"], sent["sender"]) == ("is the desk lamp working?", "dashboard")
    assert sent["labels"] == {"test": "true"}
    assert result.text_content() == f"Event {sent['id']} shown on desk, shelf. Acknowledge it on Now."

    page.get_by_role("button", name="Send test event").click()
    expect(result).to_contain_text(f"deduplicated: same key as active event {sent['id']}")

    with d.client() as client:
        assert client.post(f"/api/events/{sent['id']}/ack").status_code == 200
    expect(desk).to_have_attribute("data-on", "false")
    page.get_by_label("Level", exact=True).select_option("912")
    page.get_by_label("Lamp", exact=True).select_option("shelf")
    page.get_by_label("Title").fill("only the shelf")
    page.get_by_role("button", name="Send test event").click()
    expect(result).to_contain_text("shown on shelf. Acknowledge it on Now.")
    expect(page.locator('#try-lamps [data-key="shelf"] .swatch')).to_have_css("background-color", YELLOW)
    expect(desk).to_have_attribute("data-on", "false")  # a test on one lamp leaves the others alone


def test_setup_shows_the_running_configuration_with_every_secret_hidden(
        daemon: Callable[..., Daemon], new_page: NewPage) -> None:
    d = daemon(LAMPS.replace("lamps: {", "lamps: {log: 'console://admin:hunter2@log?token=s3cr3t&room=den', "))
    page = new_page(**LAPTOP)
    sign_in(page, d.url, "/dashboard/setup")
    lamps = page.get_by_role("region", name="Lamps")
    expect(lamps).to_contain_text("console://****:****@log?token=****&room=den")
    expect(page.get_by_role("region", name="Levels")).to_contain_text("until acknowledged")
    expect(page.locator("dl.settings").first).to_contain_text("API token****")
    text = page.locator("body").inner_text() + page.content()
    for secret in (TOKEN, "hunter2", "s3cr3t", "admin"):
        assert secret not in text


# ---- the lamp page, a phone, accessibility, screenshots -----------------------------------------

def test_the_lamp_page_opens_from_the_dashboard_with_the_same_login_and_still_turns_red(
        daemon: Callable[..., Daemon], new_page: NewPage) -> None:
    d = daemon(LAMPS)
    page = new_page()
    sign_in(page, d.url)
    page.get_by_role("link", name="Full-screen page of desk").click()
    expect(page).to_have_url(f"{d.url}/lamp/desk")
    expect(page.locator("#status")).to_have_text("desk · live")
    post(d, level="911", title="payments down")
    expect(page.locator("#lamp")).to_have_css("background-color", RED)
    expect(page.locator("#title")).to_have_text("payments down")


def test_on_a_phone_nothing_scrolls_sideways_and_a_tap_acknowledges(
        daemon: Callable[..., Daemon], new_page: NewPage) -> None:
    d = daemon(LAMPS)
    page = new_page(**PHONE, has_touch=True, is_mobile=True)
    sign_in(page, d.url)
    post(d, level="911", title="checkout is failing for every customer in the EU region", sender="alertmanager")
    expect(swatch(page, "desk")).to_have_css("background-color", RED)
    assert page.evaluate("() => document.documentElement.scrollWidth") <= PHONE["width"]
    acknowledge = page.locator("#signals li").get_by_role("button", name="Acknowledge")
    expect(acknowledge).to_be_in_viewport()
    acknowledge.tap()
    expect(swatch(page, "desk")).to_have_attribute("data-on", "false")
    expect(swatch(page, "shelf")).to_have_css("background-color", WARMWHITE_40)


def check_page(page: Page, name: str, size: str) -> None:
    phone = size == "phone"
    assert page.evaluate("() => document.documentElement.lang") == "en"
    assert page.evaluate(CONTROL_PROBLEMS, phone) == [], name
    assert page.evaluate(CONTRAST_PROBLEMS) == [], name
    if phone:
        assert page.evaluate("() => document.documentElement.scrollWidth") <= PHONE["width"], name
    screenshot(page, f"dashboard-{name}-{size}.png", full_page=True)


@pytest.mark.parametrize(("size", "viewport"), [("laptop", LAPTOP), ("phone", PHONE)])
def test_every_page_has_labels_contrast_and_fits_and_is_photographed(
        daemon: Callable[..., Daemon], new_page: NewPage, size: str, viewport: dict[str, int]) -> None:
    d = daemon(LAMPS)
    post(d, level="912", title="disk 91% on db-2", sender="cron")
    post(d, level="911", title="payments down", sender="alertmanager")
    page = new_page(**viewport)
    page.goto(f"{d.url}/login")
    check_page(page, "login", size)
    sign_in(page, d.url)
    ready = {"now": "#signals li", "timeline": "#chart rect", "try": "#try-lamps li", "setup": "#setup-content table"}
    for name, path in VIEWS.items():
        page.goto(f"{d.url}{path}")
        expect(page.locator("#live")).to_have_text("live")
        expect(page.locator(ready[name]).first).to_be_visible()
        expect(page.locator('nav a[aria-current="page"]')).to_have_attribute("data-view", name)
        check_page(page, name, size)
    page.goto(f"{d.url}/lamp/desk")
    expect(page.locator("#lamp")).to_have_css("background-color", RED)
    screenshot(page, f"dashboard-lamp-page-{size}.png")


# ---- health of lamps and sources, in one process with a dead lamp and sources that can fail ------

class DeadLamp(Driver):
    """A lamp that never answers."""

    scheme = "dead"

    async def apply(self, state: LampState, showing: Signal | None = None) -> None:
        raise DeviceOffline("10.0.0.99 did not answer within 2s")

    async def read_state(self) -> LampState:
        raise DeviceOffline("10.0.0.99 did not answer within 2s")


class FailingLogin(Source):
    """A mailbox whose login is refused as soon as it starts."""

    source_type = "imap"

    async def run(self, submit: Submit) -> None:
        self.mark_disconnected("login refused by imap.example: authentication failed")


class Silent(Source):
    """A source that never sends anything."""

    source_type = "webhook"


@pytest.fixture
def in_process(tmp_path: Path) -> Iterator[str]:
    """A service with a dead lamp, a failing mailbox and a source that should speak every second,
    served by uvicorn in a thread of this process; yields its address."""
    config = parse_config(f"state_dir: {tmp_path}\nlamps: {{desk: 'virtual://desk', porch: 'console://porch'}}\n",
                          env={})
    service = Service(config, drivers={"desk": VirtualDriver.from_url(LampUrl.parse("virtual://desk")),
                                       "porch": DeadLamp(LampUrl.parse("dead://10.0.0.99"))})
    service.sources["mailbox"] = FailingLogin("mailbox", SourceSettings(type="imap"), service.clock)
    service.sources["cron"] = Silent("cron", SourceSettings(type="webhook", expect_every=1.0), service.clock)
    with serving_in_thread(service, TOKEN) as (url, _):
        yield url


def test_an_offline_lamp_a_disconnected_source_and_a_blind_one_are_plain_to_see(
        in_process: str, new_page: NewPage) -> None:
    page = new_page(**LAPTOP)
    sign_in(page, in_process)
    porch = lamp_card(page, "porch")
    expect(porch.locator(".badge")).to_have_text("offline")
    expect(porch).to_contain_text("Offline: 10.0.0.99 did not answer within 2s. Lamplighter keeps retrying.")
    expect(porch.locator(".lamp-why")).to_contain_text("Should show blind “cron has been silent for")
    mailbox = page.locator('#sources li[data-key="mailbox"]')
    expect(mailbox.locator(".badge")).to_have_text("disconnected")
    expect(mailbox).to_contain_text("login refused by imap.example: authentication failed")
    cron = page.locator('#sources li[data-key="cron"]')
    expect(cron.locator(".badge")).to_have_text("blind", timeout=WAIT_MS)
    expect(cron).to_contain_text("cron has been silent for")
    expect(swatch(page, "desk")).to_have_class("swatch pulse")  # the watchdog's own purple signal
    expect(page.locator("#signals li")).to_contain_text("via watchdog")
    screenshot(page, "dashboard-now-health-laptop.png", full_page=True)

    page.goto(f"{in_process}/dashboard/timeline?source=watchdog")
    expect(page.get_by_label("Source")).to_have_value("watchdog")
    expect(page.locator("#events li")).to_have_count(1)
    expect(page.locator("#events li")).to_contain_text("cron has been silent for")
    with httpx.Client(base_url=in_process, headers={"Authorization": f"Bearer {TOKEN}"}) as client:
        assert client.get("/api/timeline", params={"source": "api"}).json()["events"] == []
