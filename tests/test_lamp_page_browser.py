"""The lamp page as a person sees it: a real daemon, Debian's Chromium, driven by Playwright.

Every test starts its own `lamplighter run` and opens the page the way a user would (the
token link once, then the cookie). What is checked is the computed colour, text and title
of the page, updated live over server-sent events without a reload. Screenshots of the red
and the restored page are written to test-artifacts/ for review.

These tests fail (never skip) when playwright or /usr/bin/chromium is missing (see tests/browser.py).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import TYPE_CHECKING

import pytest

from tests import browser as browsing
from tests.browser import WAIT_MS, screenshot
from tests.daemon import TOKEN, Daemon

with contextlib.suppress(ImportError):  # the `browser` fixture reports a missing playwright as a failure
    from playwright.sync_api import expect

if TYPE_CHECKING:
    from playwright.sync_api import Page, Response

pytestmark = pytest.mark.slow
browser, new_page = browsing.browser, browsing.new_page  # the shared fixtures, used by name

BLACK = "rgb(0, 0, 0)"
RED = "rgb(255, 0, 0)"
# warmwhite #ffd8a8 = (255, 216, 168) at 40 % as lamp.html's scaled() rounds it: (102, 86.4, 67.2)
WARMWHITE_40 = "rgb(102, 86, 67)"

# Records every colour/title the page shows, with the page's own clock, so that a state lasting
# only the length of a short hold is seen even if no poll happens to fall inside it.
RECORDER = """() => {
  const lamp = document.getElementById("lamp");
  window.__shown = [];
  const note = () => window.__shown.push({
    bg: getComputedStyle(lamp).backgroundColor, title: document.title, at: performance.now(),
    level: document.getElementById("level").textContent, text: document.getElementById("title").textContent,
  });
  new MutationObserver(note).observe(lamp, { attributes: true, attributeFilter: ["style"] });
  note();
}"""


def open_lamp(page: Page, d: Daemon, name: str) -> Response:
    """Open the token link as a user would; wait until the page shows the live lamp."""
    response = page.goto(f"{d.url}/lamp/{name}?token={TOKEN}", wait_until="domcontentloaded")
    assert response is not None
    expect(page.locator("#status")).to_have_text(f"{name} · live", timeout=WAIT_MS)
    return response


def post_event(d: Daemon, level: str, title: str) -> int:
    with d.client() as client:
        answer = client.post("/api/events", json={"level": level, "title": title})
    assert answer.status_code == 202, answer.text
    body = answer.json()
    assert body["outcome"] == "shown", body
    return int(body["id"])


def test_token_link_sets_a_cookie_redirects_and_shows_a_black_lamp(
        daemon: Callable[..., Daemon], new_page: Callable[[], Page]) -> None:
    d = daemon('lamps: {desk: "virtual://desk"}\n')
    page = new_page()

    response = open_lamp(page, d, "desk")

    redirect = response.request.redirected_from
    assert redirect is not None and redirect.url == f"{d.url}/lamp/desk?token={TOKEN}"
    first = redirect.response()
    assert first is not None and first.status == 303
    assert first.headers["location"] == "/lamp/desk"
    assert response.status == 200 and page.url == f"{d.url}/lamp/desk"  # the token is gone from the address bar
    cookies = {c["name"]: c for c in page.context.cookies(d.url)}
    assert cookies["lamplighter_token"]["value"] == TOKEN
    assert cookies["lamplighter_token"]["httpOnly"] is True
    assert cookies["lamplighter_token"]["sameSite"] == "Strict"

    lamp = page.locator("#lamp")
    expect(lamp).to_have_css("background-color", BLACK)
    expect(lamp).to_have_attribute("data-on", "false")
    expect(page.locator("#title")).to_have_text("")
    expect(page.locator("#level")).to_have_text("")
    expect(page).to_have_title("desk: off")


def test_911_turns_the_open_page_red_live_and_ack_turns_it_black(
        daemon: Callable[..., Daemon], new_page: Callable[[], Page]) -> None:
    # until_ack: the lamp can only go black again because of the ack, not because a hold ran out
    d = daemon('lamps: {desk: "virtual://desk"}\nlevels: {"911": {hold: until_ack}}\n')
    page = new_page()
    open_lamp(page, d, "desk")
    lamp = page.locator("#lamp")
    expect(lamp).to_have_css("background-color", BLACK)
    page.evaluate("() => { window.__sameDocument = true; }")  # lost if the page reloaded

    event_id = post_event(d, "911", "payments down")

    expect(lamp).to_have_css("background-color", RED, timeout=WAIT_MS)
    expect(page.locator("#title")).to_have_text("payments down")
    expect(page.locator("#level")).to_have_text("911")
    expect(page).to_have_title("911: payments down")
    expect(lamp).to_have_css("color", "rgb(255, 255, 255)")  # white text on red
    assert page.evaluate("() => window.__sameDocument") is True
    screenshot(page, "lamp-desk-911-red.png")

    with d.client() as client:
        answer = client.post(f"/api/events/{event_id}/ack")
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"id": event_id, "acknowledged": True, "by": "api"}

    expect(lamp).to_have_css("background-color", BLACK, timeout=WAIT_MS)
    expect(page.locator("#title")).to_have_text("")
    expect(page.locator("#level")).to_have_text("")
    expect(page).to_have_title("desk: off")
    assert page.evaluate("() => window.__sameDocument") is True
    screenshot(page, "lamp-desk-restored.png")


def test_a_lamp_that_is_normally_on_shows_its_colour_then_red_then_exactly_its_colour_again(
        daemon: Callable[..., Daemon], new_page: Callable[[], Page]) -> None:
    d = daemon('lamps: {shelf: "virtual://shelf?on=true&color=warmwhite&brightness=40"}\n'
               'levels: {"911": {hold: 1s}}\n')
    page = new_page()
    open_lamp(page, d, "shelf")
    lamp = page.locator("#lamp")
    expect(lamp).to_have_css("background-color", WARMWHITE_40)
    expect(lamp).to_have_attribute("data-on", "true")
    expect(lamp).to_have_attribute("data-color", "#ffd8a8")
    expect(page).to_have_title("shelf: on")
    page.evaluate(RECORDER)

    post_event(d, "911", "disk full")

    # red for about the 1 s hold, then back; the recorder catches the red even if it is brief
    page.wait_for_function("() => window.__shown.some(s => s.bg === 'rgb(255, 0, 0)')", timeout=WAIT_MS)
    page.wait_for_function(
        "() => window.__shown.length > 2 && window.__shown[window.__shown.length - 1].bg === 'rgb(102, 86, 67)'",
        timeout=WAIT_MS)
    expect(lamp).to_have_css("background-color", WARMWHITE_40)
    expect(lamp).to_have_attribute("data-color", "#ffd8a8")
    expect(page.locator("#title")).to_have_text("")
    expect(page).to_have_title("shelf: on")
    screenshot(page, "lamp-shelf-restored.png")

    shown = page.evaluate("() => window.__shown")
    assert [s["bg"] for s in shown] == [WARMWHITE_40, RED, WARMWHITE_40], shown
    red, back = shown[1], shown[2]
    assert (red["level"], red["text"], red["title"]) == ("911", "disk full", "911: disk full")
    held = (back["at"] - red["at"]) / 1000
    assert 0.7 <= held <= 3.0, f"red was shown for {held:.2f}s with a 1s hold"


def test_wrong_token_and_missing_cookie_answer_401(
        daemon: Callable[..., Daemon], new_page: Callable[[], Page]) -> None:
    d = daemon('lamps: {desk: "virtual://desk"}\n')
    page = new_page()

    wrong = page.goto(f"{d.url}/lamp/desk?token=wrong")
    assert wrong is not None and wrong.status == 401
    assert wrong.request.redirected_from is None
    assert "set-cookie" not in wrong.headers
    assert page.context.cookies(d.url) == []

    bare = page.goto(f"{d.url}/lamp/desk")
    assert bare is not None and bare.status == 401
    assert "lamplighter_token" not in bare.text() and "<html" not in bare.text().lower()


def test_page_basic_accessibility(daemon: Callable[..., Daemon], new_page: Callable[[], Page]) -> None:
    d = daemon('lamps: {desk: "virtual://desk"}\nlevels: {"911": {hold: until_ack}}\n')
    page = new_page()
    open_lamp(page, d, "desk")

    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page).to_have_title("desk: off")
    status = page.get_by_role("status")
    expect(status).to_have_count(1)
    expect(status).to_have_attribute("id", "status")
    expect(status).to_have_text("desk · live")

    post_event(d, "911", "payments down")
    expect(page).to_have_title("911: payments down", timeout=WAIT_MS)
    expect(page.get_by_role("main")).to_contain_text("payments down")
