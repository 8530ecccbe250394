"""The hub's dashboard lists its rooms' agents live: a real Mosquitto, hub and agent, Debian's Chromium.

Fails (never skips) when playwright or /usr/bin/chromium is missing (see tests/browser.py).
"""

from __future__ import annotations

import contextlib
import time
from pathlib import Path

import pytest

from tests import browser as browsing
from tests.browser import LAPTOP, NewPage, screenshot
from tests.peers.mosquitto import Mosquitto
from tests.rooms import AgentProcess, HubProcess
from tests.test_dashboard_browser import sign_in

with contextlib.suppress(ImportError):  # the `browser` fixture reports a missing playwright as a failure
    from playwright.sync_api import expect

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]
browser, new_page = browsing.browser, browsing.new_page  # the shared fixtures, used by name


def test_the_hubs_dashboard_shows_each_room_and_an_agent_going_offline(tmp_path: Path, new_page: NewPage) -> None:
    with Mosquitto(tmp_path / "mqtt").start() as broker:
        hub = HubProcess(tmp_path / "hub", broker, rooms="{study: {}}").start()
        study = AgentProcess(tmp_path / "study", broker, room="study").start()
        try:
            deadline = time.monotonic() + 10
            while not hub.agent("study")["lamps"]:
                assert time.monotonic() < deadline, hub.log_tail()
                time.sleep(0.05)
            page = new_page(**LAPTOP)
            sign_in(page, hub.url)
            expect(page.locator("#agents-title")).to_have_text("Rooms")
            room = page.locator('#agents li[data-key="study"]')
            expect(room.locator(".badge")).to_have_text("online")
            expect(room.locator(".source-detail")).to_contain_text("desk online")
            screenshot(page, "dashboard-rooms.png", full_page=True)
            study.kill()  # the broker publishes its will; the hub raises blind, and the page follows
            expect(room.locator(".badge")).to_have_text("offline")
            expect(room.locator(".source-detail")).to_contain_text("its agent is offline")
        finally:
            study.stop()
            hub.stop()
