"""Door pictures: a Frigate snapshot fetched from Frigate's snapshot API (a fake Frigate on loopback),
a camera's JPEG read from its own folder, both bounded; shown on the dashboard and attached to
Apprise announcements (and the picture drawn on the dashboard in Chromium). A label on an event
from anyone else is never followed.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiohttp import web

from lamplighter.config import parse_config
from lamplighter.model import make_event
from lamplighter.service import Service
from lamplighter.sources.base import Source, SourceSettings
from lamplighter.sources.pictures import MAX_PICTURE_BYTES, read_picture
from lamplighter.web.dashboard import now_snapshot
from tests import browser as browsing
from tests.browser import LAPTOP, NewPage, screenshot
from tests.daemon import TOKEN as DAEMON_TOKEN
from tests.daemon import free_port
from tests.peers.notify_receiver import notification_receiver
from tests.serving import serving, serving_in_thread
from tests.test_dashboard_browser import sign_in
from tests.test_service import eventually

with contextlib.suppress(ImportError):  # the `browser` fixture reports a missing playwright as a failure
    from playwright.sync_api import expect

pytestmark = pytest.mark.real_time  # real HTTP peers, and Apprise's worker thread

browser, new_page = browsing.browser, browsing.new_page  # the shared fixtures, used by name
JPEG = b"\xff\xd8\xff\xe0" + b"\x00\x10JFIF" + bytes(range(256)) * 40 + b"\xff\xd9"
TOKEN = "pictures-test-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
EVENT_ID = "1733200000.123456-abc123"


def test_a_camera_picture_is_read_only_from_its_folder_and_only_if_it_is_a_small_jpeg(tmp_path: Path) -> None:
    folder = tmp_path / "snapshots"
    folder.mkdir()
    (folder / "a.jpg").write_bytes(JPEG)
    (tmp_path / "outside.jpg").write_bytes(JPEG)
    (folder / "huge.jpg").write_bytes(JPEG[:4] + bytes(MAX_PICTURE_BYTES))
    (folder / "text.jpg").write_bytes(b"not a jpeg")
    (folder / "link.jpg").symlink_to(tmp_path / "outside.jpg")
    assert read_picture(folder / "a.jpg", folder) == JPEG
    assert read_picture(folder / ".." / "outside.jpg", folder) is None
    assert read_picture(folder / "link.jpg", folder) is None
    assert read_picture(folder / "huge.jpg", folder) is None
    assert read_picture(folder / "text.jpg", folder) is None
    assert read_picture(folder / "missing.jpg", folder) is None


@contextlib.asynccontextmanager
async def fake_frigate(picture: bytes) -> AsyncIterator[tuple[str, list[str]]]:
    """Frigate's GET /api/events/ID/snapshot.jpg on loopback; yields its URL and the paths asked for."""
    asked: list[str] = []

    async def snapshot(request: web.Request) -> web.Response:
        asked.append(request.path)
        if request.match_info["event"] != EVENT_ID:
            return web.json_response({"success": False, "message": "Event not found"}, status=404)
        return web.Response(body=picture, content_type="image/jpeg")

    app = web.Application()
    app.router.add_get("/api/events/{event}/snapshot.jpg", snapshot)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{port}", asked
    finally:
        await runner.cleanup()


def frigate_yaml(frigate: str, extra: str = "") -> str:
    return (f"sources:\n  - {{type: frigate, name: frigate, broker: '127.0.0.1:1', frigate_url: '{frigate}'}}\n"
            f"levels: {{door: {{hold: 1h}}}}\n{extra}")


def door(service: Service, snapshot_url: str, source: str = "frigate", sender: str = "front") -> int:
    labels = {"camera": "front", "label": "person", "snapshot_url": snapshot_url}
    receipt = service.submit(make_event("door", "person at front", received_at=service.clock.now(), source=source,
                                        sender=sender, labels=labels))
    return receipt.id


async def test_a_frigate_door_event_shows_its_snapshot_and_nothing_else_is_fetched(
        service_factory: Callable[..., Service]) -> None:
    async with fake_frigate(JPEG) as (frigate, asked):
        service = service_factory(frigate_yaml(frigate))
        async with serving(service, TOKEN) as url, httpx.AsyncClient(base_url=url, timeout=10) as client:
            visit = door(service, f"{frigate}/api/events/{EVENT_ID}/snapshot.jpg")
            shown = await client.get(f"/api/events/{visit}/picture", headers=AUTH)
            assert shown.status_code == 200 and shown.content == JPEG
            assert shown.headers["content-type"] == "image/jpeg"
            assert (await client.get(f"/api/events/{visit}/picture")).status_code == 401
            [signal] = now_snapshot(service, 0.0, [])["signals"]
            assert signal["picture"] == f"api/events/{visit}/picture"  # relative: works under an ingress prefix

            forged = door(service, f"{frigate}/api/events/{EVENT_ID}/snapshot.jpg", source="api", sender="x")
            elsewhere = door(service, "http://127.0.0.1:9/secret.jpg", sender="y")
            gone = door(service, f"{frigate}/api/events/unknown/snapshot.jpg", sender="z")
            for event_id in (forged, elsewhere, gone):
                missing = await client.get(f"/api/events/{event_id}/picture", headers=AUTH)
                assert missing.status_code == 404
                assert missing.json()["error"] == f"event {event_id} has no picture (or its source cannot fetch it now)"
            plain = await client.post("/api/events", json={"level": "912", "title": "disk"}, headers=AUTH)
            assert (await client.get(f"/api/events/{plain.json()['id']}/picture", headers=AUTH)).status_code == 404
    assert asked == [f"/api/events/{EVENT_ID}/snapshot.jpg", "/api/events/unknown/snapshot.jpg"]


async def test_a_snapshot_larger_than_the_bound_is_not_taken(service_factory: Callable[..., Service]) -> None:
    async with fake_frigate(JPEG[:4] + bytes(MAX_PICTURE_BYTES)) as (frigate, _):
        service = service_factory(frigate_yaml(frigate))
        async with service.running():
            visit = door(service, f"{frigate}/api/events/{EVENT_ID}/snapshot.jpg")
            assert await service.picture(visit) is None


async def test_the_door_announcement_carries_the_snapshot(service_factory: Callable[..., Service]) -> None:
    async with fake_frigate(JPEG) as (frigate, _), notification_receiver() as receiver:
        announce = f"levels: {{door: {{hold: 1h, announce: ['json://127.0.0.1:{receiver.port}/door']}}}}\n"
        service = service_factory(frigate_yaml(frigate).replace("levels: {door: {hold: 1h}}\n", "") + announce)
        async with service.running():
            door(service, f"{frigate}/api/events/{EVENT_ID}/snapshot.jpg")
            service.submit(make_event("door", "doorbell", received_at=service.clock.now(), sender="bell"))
            await eventually(lambda: len(receiver.received) == 2, timeout=10)
    by_title = {post["title"]: post for post in receiver.received}
    [attached] = by_title["door: person at front"]["attachments"]
    assert base64.b64decode(attached["base64"]) == JPEG and attached["mimetype"] == "image/jpeg"
    assert not by_title["door: doorbell"].get("attachments")


# ---- the picture on the dashboard, in Chromium ----------------------------------------------------------


class DoorCamera(Source):
    """A camera-like source whose door events carry a real JPEG (its own folder is this object)."""

    source_type = "camera"

    def __init__(self, name: str, clock: Any, jpeg: bytes) -> None:
        super().__init__(name, SourceSettings(type="camera"), clock)
        self.jpeg = jpeg

    async def picture(self, labels: Mapping[str, str]) -> bytes | None:
        return self.jpeg if labels.get("snapshot") == "visit-1.jpg" else None


@contextlib.contextmanager
def dashboard_with_a_door_camera(tmp_path: Path) -> Iterator[tuple[str, Service, asyncio.AbstractEventLoop]]:
    import cv2
    import numpy

    green = numpy.zeros((180, 320, 3), numpy.uint8)
    green[:, :, 1] = 200
    jpeg = bytes(cv2.imencode(".jpg", green)[1])
    service = Service(parse_config(f"state_dir: {tmp_path}\nlevels: {{door: {{hold: 1h}}}}\n", env={}))
    service.sources["doorcam"] = DoorCamera("doorcam", service.clock, jpeg)
    with serving_in_thread(service, DAEMON_TOKEN) as (url, loop):
        yield url, service, loop


@pytest.mark.slow
def test_the_dashboard_shows_a_door_events_snapshot(tmp_path: Path, new_page: NewPage) -> None:
    with dashboard_with_a_door_camera(tmp_path) as (url, service, loop):
        page = new_page(**LAPTOP)
        sign_in(page, url)
        visit = make_event("door", "person at doorcam", received_at=service.clock.now(), source="doorcam",
                           sender="doorcam", labels={"snapshot": "visit-1.jpg"})
        loop.call_soon_threadsafe(service.submit, visit)
        picture = page.get_by_role("img", name="Snapshot: person at doorcam")
        expect(picture).to_be_visible()
        page.wait_for_function("() => document.querySelector('#signals img.snapshot').naturalWidth === 320")
        screenshot(page, "dashboard-door-snapshot.png", full_page=True)
        loop.call_soon_threadsafe(service.submit, make_event("912", "disk", received_at=service.clock.now()))
        expect(page.locator("#signals li")).to_have_count(2)
        expect(page.locator("#signals img.snapshot:visible")).to_have_count(1)  # only the door event has one
