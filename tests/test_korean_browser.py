"""The lamp page and the dashboard in Korean, as a Korean browser shows them: Debian's Chromium with
the CJK font a kiosk needs (fonts-noto-cjk, in the Makefile's TEST_PEERS), driven by Playwright.

Chromium tells which installed font drew each glyph of an element (DevTools' CSS.getPlatformFontsForNode):
every Hangul glyph must come from a Noto CJK font, which is what "no empty boxes" means. Screenshots
go to test-artifacts/ (lamp-korean.png, dashboard-korean.png) for review.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pytest

from tests import browser as browsing
from tests.browser import LAPTOP, WAIT_MS, screenshot
from tests.daemon import TOKEN, Daemon

with contextlib.suppress(ImportError):  # the `browser` fixture reports a missing playwright as a failure
    from playwright.sync_api import expect

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = pytest.mark.slow
browser, new_page = browsing.browser, browsing.new_page  # the shared fixtures, used by name

HANGUL = re.compile(r"[\uac00-\ud7a3]")
KOREAN = {"locale": "ko-KR"}  # Playwright sends Accept-Language: ko-KR, as a Korean browser does


def fonts_drawing(page: Page, selector: str) -> dict[str, int]:
    """Which installed font drew how many glyphs of the element, as Chromium reports it."""
    cdp = page.context.new_cdp_session(page)
    cdp.send("DOM.enable")
    cdp.send("CSS.enable")
    root = cdp.send("DOM.getDocument")
    node = cdp.send("DOM.querySelector", {"nodeId": root["root"]["nodeId"], "selector": selector})
    fonts: list[dict[str, Any]] = cdp.send("CSS.getPlatformFontsForNode", {"nodeId": node["nodeId"]})["fonts"]
    cdp.detach()
    return {font["familyName"]: int(font["glyphCount"]) for font in fonts}


def assert_hangul_drawn_by_a_cjk_font(page: Page, selector: str) -> None:
    text = page.locator(selector).inner_text()
    hangul = len(HANGUL.findall(text))
    assert hangul > 0, text
    drawn = fonts_drawing(page, selector)
    cjk = sum(count for family, count in drawn.items() if "CJK" in family)
    assert cjk >= hangul, f"{text!r}: {drawn} (install fonts-noto-cjk)"


def test_the_lamp_page_in_korean_draws_hangul_with_a_cjk_font(
        daemon: Callable[..., Daemon], new_page: Callable[..., Page]) -> None:
    d = daemon('lamps: {desk: "virtual://desk"}\nlevels: {"911": {hold: until_ack, effect: solid}}\n')
    page = new_page(**KOREAN)
    page.goto(f"{d.url}/lamp/desk?token={TOKEN}", wait_until="domcontentloaded")
    expect(page.locator("#status")).to_have_text("desk · 연결됨", timeout=WAIT_MS)
    assert page.locator("html").get_attribute("lang") == "ko"
    with d.client() as client:
        assert client.post("/api/events", json={"level": "911", "title": "결제 장애"}).status_code == 202
    expect(page.locator("#title")).to_have_text("결제 장애")
    expect(page.locator("#ack")).to_have_text("길게 눌러 확인")
    assert_hangul_drawn_by_a_cjk_font(page, "#title")
    assert_hangul_drawn_by_a_cjk_font(page, "#ack")
    screenshot(page, "lamp-korean.png")


def test_the_dashboard_in_korean_draws_hangul_with_a_cjk_font(
        daemon: Callable[..., Daemon], new_page: Callable[..., Page]) -> None:
    d = daemon()
    page = new_page(**LAPTOP, **KOREAN)
    page.goto(f"{d.url}/dashboard?token={TOKEN}")
    expect(page.get_by_role("link", name="타임라인")).to_be_visible()
    expect(page.locator("#signals-title")).to_have_text("활성 신호")
    expect(page).to_have_title("지금 · Lamplighter")
    expect(page.locator("#live")).to_have_text("연결됨", timeout=WAIT_MS)  # the words the scripts write, too
    desk = page.locator('#lamps li[data-lamp="desk"]')
    expect(desk.locator(".lamp-what")).to_have_text("표시할 것 없음")
    expect(desk.locator(".badge")).to_have_text("온라인")
    assert_hangul_drawn_by_a_cjk_font(page, "#signals-title")
    assert_hangul_drawn_by_a_cjk_font(page, "nav a[data-view=timeline]")  # the node's own text only
    screenshot(page, "dashboard-korean.png")


def test_an_english_browser_gets_the_english_pages(daemon: Callable[..., Daemon],
                                                    new_page: Callable[..., Page]) -> None:
    d = daemon("locale: ko\n")  # the configured language is only the fallback of a page
    page = new_page(locale="en-GB")
    page.goto(f"{d.url}/dashboard?token={TOKEN}")
    expect(page.locator("#signals-title")).to_have_text("Active signals")
    assert page.locator("html").get_attribute("lang") == "en"
