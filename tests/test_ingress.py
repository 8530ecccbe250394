"""The dashboard and the lamp page behind Home Assistant's ingress: under its path prefix, in its frame.

A real daemon behind tests/peers/ha_ingress.py (Home Assistant's ingress proxy, as its source
forwards requests), driven by headless Chromium: sign in, see the live view, acknowledge, and
open the lamp page, every request staying under the prefix.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from tests import browser as browsing
from tests.browser import LAPTOP, NewPage, screenshot
from tests.daemon import TOKEN, Daemon
from tests.peers.ha_ingress import IngressProxy

with contextlib.suppress(ImportError):  # the `browser` fixture reports a missing playwright as a failure
    from playwright.sync_api import expect

if TYPE_CHECKING:
    from playwright.sync_api import Frame, Page

pytestmark = pytest.mark.slow
browser, new_page = browsing.browser, browsing.new_page  # the shared fixtures, used by name

LAMPS = 'lamps: {desk: "virtual://desk"}\nlevels: {"911": {hold: until_ack}}\n'
PREFIX = "/api/hassio_ingress/ingress-token-4f2a"
RED, BLACK = "rgb(255, 0, 0)", "rgb(0, 0, 0)"


def post_911(d: Daemon, title: str = "payments down") -> dict[str, Any]:
    with d.client() as client:
        answer = client.post("/api/events", json={"level": "911", "title": title, "sender": "alice"})
    assert answer.status_code == 202, answer.text
    return dict(answer.json())


def app_frame(page: Page) -> Frame:
    [frame] = [frame for frame in page.frames if frame != page.main_frame]
    return frame


def test_the_dashboard_works_in_home_assistants_frame_under_its_prefix(
        daemon: Callable[..., Daemon], new_page: NewPage) -> None:
    d = daemon(LAMPS)
    with IngressProxy(d.url).start() as proxy:
        page = new_page(**LAPTOP)
        page.goto(proxy.url)
        frame = page.frame_locator("iframe")
        frame.get_by_label("API token").fill(TOKEN)
        frame.get_by_role("button", name="Sign in").click()
        expect(frame.locator("#live")).to_have_text("live")
        assert app_frame(page).url == f"{proxy.url}{PREFIX}/dashboard"
        assert app_frame(page).evaluate("() => document.styleSheets[0].cssRules.length") > 0  # its stylesheet
        frame.get_by_role("link", name="Skip to content").focus()  # shown on focus, as a keyboard user meets it
        page.keyboard.press("Enter")  # stays on this page despite <base href>
        assert app_frame(page).url == f"{proxy.url}{PREFIX}/dashboard#main"
        [cookie] = page.context.cookies(f"{proxy.url}{PREFIX}/dashboard")
        assert (cookie["path"], cookie["httpOnly"], cookie["sameSite"]) == (f"{PREFIX}/", True, "Strict")
        assert page.context.cookies(f"{proxy.url}/api/states") == []  # the token does not go to Home Assistant

        event_id = post_911(d)["id"]
        swatch = frame.locator('#lamps [data-lamp="desk"] .swatch')
        expect(swatch).to_have_css("background-color", RED)
        signal = frame.locator("#signals li")
        expect(signal).to_contain_text(f"event {event_id}")
        screenshot(page, "ingress-dashboard-911.png")
        signal.get_by_role("button", name="Acknowledge").click()  # a POST with the cookie and the CSRF token
        expect(frame.locator("#signals li")).to_have_count(0)
        expect(swatch).to_have_attribute("data-on", "false")

        frame.get_by_role("link", name="Timeline").click()
        expect(frame.locator("#live")).to_have_text("live")
        assert app_frame(page).url == f"{proxy.url}{PREFIX}/dashboard/timeline"

        lamp = page.context.new_page()  # the lamp page, as the Now view's link opens it
        lamp.goto(f"{proxy.url}{PREFIX}/lamp/desk")
        expect(lamp.locator("#lamp")).to_have_css("background-color", BLACK)
        post_911(d, "checkout down")
        expect(lamp.locator("#lamp")).to_have_css("background-color", RED)
        assert all(path == "/" or path.startswith(f"{PREFIX}/") for path in proxy.seen), proxy.seen


def test_a_bad_ingress_header_changes_nothing_and_a_good_one_only_the_prefix(daemon: Callable[..., Daemon]) -> None:
    d = daemon(LAMPS)
    with httpx.Client(base_url=d.url) as client:
        plain = client.get("/login")
        for bad in ('/api/hassio_ingress/x"><script>alert(1)</script>', "https://evil.example", "/elsewhere"):
            answer = client.get("/login", headers={"X-Ingress-Path": bad})
            assert answer.text == plain.text and answer.headers["content-security-policy"] \
                == plain.headers["content-security-policy"]
        assert '<base href="/">' in plain.text and "frame-ancestors 'none'" in plain.headers["content-security-policy"]

        good = {"X-Ingress-Path": PREFIX}
        page = client.get("/login", headers=good)
        assert page.text == plain.text.replace('<base href="/">', f'<base href="{PREFIX}/">')
        assert int(page.headers["content-length"]) == len(page.content)
        assert "frame-ancestors 'self'" in page.headers["content-security-policy"]
        assert client.get("/", headers=good).headers["location"] == f"{PREFIX}/dashboard"
        assert client.get("/dashboard", headers=good).headers["location"] == f"{PREFIX}/login?next=/dashboard"
        signed_in = client.post("/login", headers=good, content=f"token={TOKEN}&next=/dashboard/timeline")
        assert signed_in.headers["location"] == f"{PREFIX}/dashboard/timeline"
        assert f"Path={PREFIX}/" in signed_in.headers["set-cookie"]
        assert client.get(f"/lamp/desk?token={TOKEN}", headers=good).headers["location"] == f"{PREFIX}/lamp/desk"
        lamp = client.get("/lamp/desk", headers={**good, "Authorization": f"Bearer {TOKEN}"})
        assert lamp.headers["x-frame-options"] == "SAMEORIGIN" and f'<base href="{PREFIX}/">' in lamp.text
        assert "frame-ancestors 'self'" in lamp.headers["content-security-policy"]
