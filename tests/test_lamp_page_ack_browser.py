"""The lamp page tells the truth and asks for a deliberate press: a real daemon, Debian's Chromium.

- Without its live stream for 5 s (the daemon killed, or its sign-in refused) the page turns to
  grey stripes and the words NOT CONNECTED, never the idle black, and comes back by itself.
- Acknowledging is a press-and-hold of about 1.5 s on a button with visible progress: a tap
  anywhere, or a short press on the button, does nothing. No button during `lamplighter test`,
  none with `lamp_page: {acknowledge: off}`.
- No other site can frame the page.

Screenshots go to test-artifacts/. These tests fail (never skip) without playwright or Chromium.
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

import pytest

from tests import browser as browsing
from tests.browser import WAIT_MS, screenshot
from tests.daemon import Daemon
from tests.test_lamp_page_browser import BLACK, RED, open_lamp, post_event

with contextlib.suppress(ImportError):  # the `browser` fixture reports a missing playwright as a failure
    from playwright.sync_api import expect

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = pytest.mark.slow
browser, new_page = browsing.browser, browsing.new_page  # the shared fixtures, used by name

UNTIL_ACK = 'lamps: {desk: "virtual://desk"}\nlevels: {"911": {hold: until_ack}}\n'
HOLD = "Hold to acknowledge"
NOT_CONNECTED_MS = 6_000  # 5 s of silence, plus the page's 250 ms check and some slack


def ended_reason(d: Daemon, event_id: int) -> str | None:
    with d.client() as client:
        events = client.get("/api/timeline").json()["events"]
    [entry] = [e for e in events if e["id"] == event_id]
    return None if entry["ended"] is None else str(entry["ended"]["reason"])


def hold_button(page: Page, seconds: float) -> None:
    """Press the mouse on the button, keep it down for `seconds`, release."""
    box = page.locator("#ack").bounding_box()
    assert box is not None
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.down()
    page.wait_for_timeout(seconds * 1000)
    page.mouse.up()


def test_a_tap_does_nothing_and_a_hold_of_one_and_a_half_seconds_acknowledges(
        daemon: Callable[..., Daemon], new_page: Callable[..., Page]) -> None:
    d = daemon(UNTIL_ACK)
    page = new_page()
    open_lamp(page, d, "desk")
    lamp, button = page.locator("#lamp"), page.get_by_role("button", name=HOLD)
    expect(button).to_be_hidden()
    event_id = post_event(d, "911", "payments down")
    expect(lamp).to_have_css("background-color", RED, timeout=WAIT_MS)
    expect(button).to_be_visible()

    lamp.click(position={"x": 40, "y": 40})  # a brush against the wall tablet
    button.click()  # a short tap on the button itself
    hold_button(page, 0.8)  # let go too early
    page.wait_for_timeout(1000)  # long enough for any acknowledgement to have landed
    expect(lamp).to_have_css("background-color", RED)
    assert ended_reason(d, event_id) is None

    box = page.locator("#ack").bounding_box()
    assert box is not None
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.down()
    page.wait_for_timeout(700)
    fill = page.evaluate("() => document.getElementById('ack-fill').getBoundingClientRect().width")
    assert 0 < fill < box["width"], f"the progress should be part way at 0.7 s, is {fill} of {box['width']}"
    expect(page.locator("#ack")).to_contain_text("Keep holding")
    screenshot(page, "lamp-hold-in-progress.png")
    page.wait_for_timeout(900)
    page.mouse.up()

    expect(lamp).to_have_css("background-color", BLACK, timeout=WAIT_MS)
    expect(button).to_be_hidden()
    assert ended_reason(d, event_id) == "acknowledged by lamp page desk"


def test_holding_enter_on_the_focused_button_acknowledges(
        daemon: Callable[..., Daemon], new_page: Callable[..., Page]) -> None:
    d = daemon(UNTIL_ACK)
    page = new_page()
    open_lamp(page, d, "desk")
    event_id = post_event(d, "911", "db down")
    button = page.get_by_role("button", name=HOLD)
    expect(button).to_be_visible(timeout=WAIT_MS)
    button.focus()
    page.keyboard.press("Enter")  # a key press is a tap: nothing
    page.wait_for_timeout(500)
    assert ended_reason(d, event_id) is None
    page.keyboard.down("Enter")
    page.wait_for_timeout(1600)
    page.keyboard.up("Enter")
    expect(page.locator("#lamp")).to_have_css("background-color", BLACK, timeout=WAIT_MS)
    assert ended_reason(d, event_id) == "acknowledged by lamp page desk"


def test_no_button_during_a_lamp_test(daemon: Callable[..., Daemon], new_page: Callable[..., Page]) -> None:
    d = daemon(UNTIL_ACK)
    page = new_page()
    open_lamp(page, d, "desk")
    with d.client() as client:
        assert client.post("/api/lamps/desk/test", json={"level": "911", "for": "3s"}).status_code == 202
    expect(page.locator("#lamp")).to_have_css("background-color", RED, timeout=WAIT_MS)
    expect(page.locator("#ack")).to_be_hidden()
    page.wait_for_timeout(300)
    expect(page.locator("#ack")).to_be_hidden()


def test_with_acknowledge_off_there_is_no_button_and_the_route_refuses(
        daemon: Callable[..., Daemon], new_page: Callable[..., Page]) -> None:
    d = daemon(UNTIL_ACK + "lamp_page: {acknowledge: off}\n")
    page = new_page()
    open_lamp(page, d, "desk")
    event_id = post_event(d, "911", "payments down")
    expect(page.locator("#lamp")).to_have_css("background-color", RED, timeout=WAIT_MS)
    expect(page.locator("#ack")).to_be_hidden()
    with d.client() as client:
        refused = client.post("/lamp/desk/ack", json={"event_id": event_id})
    assert refused.status_code == 403 and "acknowledge: off" in refused.json()["error"]
    assert ended_reason(d, event_id) is None


def assert_not_connected(page: Page) -> None:
    offline = page.locator("#offline")
    expect(offline).to_be_visible(timeout=NOT_CONNECTED_MS)
    expect(offline).to_contain_text("NOT CONNECTED")
    assert "repeating-linear-gradient" in offline.evaluate("e => getComputedStyle(e).backgroundImage")
    expect(page.locator("#ack")).to_be_hidden()
    expect(page).to_have_title("NOT CONNECTED · desk")
    # what a person sees in the middle of the screen is the stripes' grey, never the idle black
    middle = page.evaluate("() => { const e = document.elementFromPoint(innerWidth / 2, 30); return e.id; }")
    assert middle == "offline", middle


def test_killing_the_daemon_turns_the_page_not_connected_and_it_comes_back_by_itself(
        daemon: Callable[..., Daemon], new_page: Callable[..., Page]) -> None:
    d = daemon(UNTIL_ACK)
    page = new_page()
    open_lamp(page, d, "desk")
    expect(page.locator("#offline")).to_be_hidden()

    killed_at = time.monotonic()
    d.stop(signal.SIGKILL)
    assert_not_connected(page)
    took = time.monotonic() - killed_at
    expect(page.locator("#offline")).to_contain_text("No live news from Lamplighter since")
    screenshot(page, "lamp-not-connected.png")
    assert took < NOT_CONNECTED_MS / 1000, took  # the expectation above waited at most this long anyway

    d.start()
    expect(page.locator("#offline")).to_be_hidden(timeout=10_000)
    expect(page.locator("#status")).to_have_text("desk · live")
    expect(page).to_have_title("desk: off")
    post_event(d, "911", "after the restart")
    expect(page.locator("#lamp")).to_have_css("background-color", RED, timeout=WAIT_MS)
    screenshot(page, "lamp-reconnected.png")


def test_a_refused_sign_in_is_not_connected_and_says_so(
        daemon: Callable[..., Daemon], new_page: Callable[..., Page]) -> None:
    d = daemon(UNTIL_ACK)
    page = new_page()
    open_lamp(page, d, "desk")
    page.context.clear_cookies()  # as if the token changed: the next connection is refused
    d.stop(signal.SIGKILL)
    d.start()
    assert_not_connected(page)
    expect(page.locator("#offline")).to_contain_text("refused this page's sign-in", timeout=WAIT_MS)
    screenshot(page, "lamp-sign-in-refused.png")


class _FramingPage(BaseHTTPRequestHandler):
    target = ""

    def do_GET(self) -> None:
        body = f'<!doctype html><iframe id="f" src="{self.target}" width="600" height="400"></iframe>'.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@contextlib.contextmanager
def framing_site(target: str) -> Iterator[str]:
    """Another site (localhost, not 127.0.0.1) whose page puts `target` in an iframe."""
    handler = type("Framing", (_FramingPage,), {"target": target})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://localhost:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("path", ["/lamp/desk", "/dashboard"])
def test_another_site_cannot_frame_the_lamp_page_or_the_dashboard(
        daemon: Callable[..., Daemon], new_page: Callable[..., Page], path: str) -> None:
    d = daemon(UNTIL_ACK)
    page = new_page()
    open_lamp(page, d, "desk")  # signed in: the cookie exists in this browser
    with framing_site(f"{d.url}{path}") as evil:
        page.goto(evil)
        page.wait_for_timeout(1000)
        [frame] = [f for f in page.frames if f != page.main_frame]
        assert frame.url != f"{d.url}{path}" or frame.locator("#lamp, main").count() == 0
        assert frame.locator("#ack").count() == 0


def test_the_pages_carry_a_lamp_favicon(daemon: Callable[..., Daemon], new_page: Callable[..., Page]) -> None:
    d = daemon(UNTIL_ACK)
    page = new_page()
    open_lamp(page, d, "desk")
    href = page.locator('link[rel="icon"]').get_attribute("href")
    assert href == "static/favicon.svg"  # relative to <base>: also under an ingress prefix
    icon = page.request.get(f"{d.url}/{href}")
    assert icon.status == 200 and icon.headers["content-type"] == "image/svg+xml"
    assert icon.text().startswith("<svg") and "Lamplighter" in icon.text()
    page.goto(f"{d.url}/dashboard")
    assert page.locator('link[rel="icon"]').get_attribute("href") == "static/favicon.svg"
