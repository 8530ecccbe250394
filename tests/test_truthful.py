"""What people are told is what is true: where a signal is, acknowledging what shows, the lamp page's narrow ack.

- A 912 sent while a 911 covers the lamp is "queued behind a 911", not "on the lamp now";
  a 911 whose lamps are all offline is "shown on the fallback only: desk offline"; an ended
  signal says whether a lamp ever showed it. Slack, the API, the CLI and announcements word it
  through the same function.
- `POST /api/ack` acknowledges the top signal (or all) and says which; `lamplighter ack` with no id.
- `POST /lamp/NAME/ack` (the lamp page's hold button) refuses another site with 403, needs the
  lamp's own key with the cookie, and acknowledges only what that lamp shows.
"""

from __future__ import annotations

import subprocess
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from lamplighter.announce.text import where_text
from lamplighter.drivers.base import LampUrl
from lamplighter.drivers.virtual import VirtualDriver
from lamplighter.model import LAMP_OFF, make_event
from lamplighter.rules.placement import Where
from lamplighter.service import Service
from lamplighter.web.acknowledge import lamp_ack_key
from lamplighter.web.dashboard import COOKIE, csrf_token
from tests.daemon import Daemon
from tests.serving import serving
from tests.test_delivery import UnpluggedBulb
from tests.test_e2e import cli
from tests.test_service import eventually

TOKEN = "truthful-test-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
UNTIL_ACK = "levels: {'911': {hold: until_ack}, '912': {hold: until_ack}}\n"


def send(service: Service, level: str, title: str) -> int:
    receipt = service.submit(make_event(level, title, received_at=service.clock.now(), sender=title))
    assert receipt.signal_id is not None
    return receipt.signal_id


# ---- where a signal is, in the service --------------------------------------------------------------


async def test_a_912_behind_a_911_is_queued_then_on_the_lamp_then_remembered_as_shown(
        service_factory: Callable[..., Service]) -> None:
    service = service_factory(UNTIL_ACK)
    async with service.running():
        outage = send(service, "911", "payments down")
        await eventually(lambda: service.lamps["desk"].showing is not None)
        warning = send(service, "912", "disk 90%")
        assert service.where_words(warning) == ("queued", "Queued behind a 911 (“payments down”), shows when it ends")
        assert service.where_words(outage) == ("on_lamp", "On the lamp now")

        service.acknowledge(warning, "alice")  # it ends without ever having been seen
        assert service.where_words(warning) == ("ended", "Ended without ever being on a lamp")

        again = send(service, "912", "disk 95%")
        service.acknowledge(outage, "alice")
        assert service.where_words(again)[0] == "on_lamp"
        await eventually(lambda: (service.lamps["desk"].showing or outage).event_id == again)
        service.acknowledge(again, "alice")
        assert service.where_words(again) == ("ended", "Ended; it was on desk")


async def test_a_911_whose_only_lamp_is_offline_is_on_the_fallback_only(
        service_factory: Callable[..., Service]) -> None:
    hall = VirtualDriver(LampUrl.parse("virtual://hall"), LAMP_OFF)
    service = service_factory("lamps: {desk: 'virtual://desk', hall: 'virtual://hall'}\n"
                              "levels: {'911': {lamps: [desk], fallback: [hall]}, '912': {lamps: [desk]}}\n",
                              drivers={"desk": UnpluggedBulb("desk"), "hall": hall})
    async with service.running():
        await eventually(lambda: not service.lamps["desk"].online)
        outage = send(service, "911", "payments down")
        placement = service.placement(outage)
        assert placement.where is Where.FALLBACK_ONLY and placement.lamps == ("hall",)
        assert where_text(placement) == "Shown on the fallback only (hall): desk offline"
        warning = send(service, "912", "disk 90%")  # no fallback for 912
        assert service.where_words(warning) == ("offline", "Not on any lamp: desk offline")


# ---- the HTTP API ----------------------------------------------------------------------------------


@pytest.fixture
async def api(service_factory: Callable[..., Service]) -> AsyncIterator[tuple[httpx.AsyncClient, Service]]:
    service = service_factory("lamps: {desk: virtual://desk, hall: virtual://hall}\n" + UNTIL_ACK)
    async with serving(service, TOKEN) as url, httpx.AsyncClient(base_url=url, timeout=5) as client:
        yield client, service


async def post_event(client: httpx.AsyncClient, level: str, title: str) -> dict[str, Any]:
    answer = await client.post("/api/events", json={"level": level, "title": title, "sender": title},
                               headers=AUTH)
    assert answer.status_code == 202, answer.text
    return dict(answer.json())


async def test_the_api_receipt_and_event_list_say_where_the_signal_is(api: tuple[httpx.AsyncClient, Service]) -> None:
    client, _ = api
    first = await post_event(client, "911", "payments down")
    assert first["where"]["state"] == "on_lamp" and first["where"]["text"] == "On the lamp now"
    second = await post_event(client, "912", "disk 90%")
    assert second["outcome"] == "shown"  # the outcome keeps its meaning: it became an active signal
    assert second["where"]["state"] == "queued"
    assert second["where"]["behind"] == {"event_id": first["id"], "level": "911", "title": "payments down"}
    assert second["where"]["text"] == "Queued behind a 911 (“payments down”), shows when it ends"
    await client.post(f"/api/events/{second['id']}/ack", headers=AUTH)
    listed = {e["id"]: e for e in (await client.get("/api/events", headers=AUTH)).json()}
    assert listed[second["id"]]["where"]["text"] == "Ended without ever being on a lamp"
    assert listed[first["id"]]["where"]["state"] == "on_lamp"


async def test_post_api_ack_acknowledges_the_top_signal_then_the_next_then_says_nothing_shows(
        api: tuple[httpx.AsyncClient, Service]) -> None:
    client, service = api
    warning = await post_event(client, "912", "disk 90%")
    outage = await post_event(client, "911", "payments down")
    first = await client.post("/api/ack", headers=AUTH)
    assert first.status_code == 200
    assert first.json() == {"acknowledged": [{"event_id": outage["id"], "level": "911", "title": "payments down"}],
                            "by": "api"}
    assert set(service.signals) == {warning["id"]}
    second = await client.post("/api/ack", json={"by": "alice"}, headers=AUTH)
    assert [s["event_id"] for s in second.json()["acknowledged"]] == [warning["id"]]
    assert service.store.signal_end(warning["id"])[1] == "acknowledged by alice"  # type: ignore[index]
    nothing = await client.post("/api/ack", headers=AUTH)
    assert nothing.status_code == 409 and nothing.json()["error"] == "nothing is showing to acknowledge"


async def test_post_api_ack_all_acknowledges_every_active_signal_snoozed_too(
        api: tuple[httpx.AsyncClient, Service]) -> None:
    client, service = api
    ids = [(await post_event(client, level, title))["id"] for level, title in
           [("911", "payments down"), ("912", "disk 90%"), ("door", "someone at the door")]]
    snoozed = await client.post(f"/api/events/{ids[1]}/snooze", json={"for": "1h"}, headers=AUTH)
    assert snoozed.status_code == 200
    answer = await client.post("/api/ack", json={"all": True, "by": "bob"}, headers=AUTH)
    assert sorted(s["event_id"] for s in answer.json()["acknowledged"]) == sorted(ids)
    assert service.signals == {}


async def test_post_api_ack_with_the_cookie_alone_is_refused(api: tuple[httpx.AsyncClient, Service]) -> None:
    client, service = api
    await post_event(client, "911", "payments down")
    client.cookies.set(COOKIE, TOKEN)
    cookie_only = await client.post("/api/ack")
    assert cookie_only.status_code == 401
    lamp_key_is_no_csrf = await client.post("/api/ack", headers={"X-CSRF-Token": lamp_ack_key(TOKEN, "desk")})
    assert lamp_key_is_no_csrf.status_code == 401
    dashboard = await client.post("/api/ack", headers={"X-CSRF-Token": csrf_token(TOKEN)})
    assert dashboard.status_code == 200
    assert service.signals == {}


# ---- the lamp page's acknowledge route -----------------------------------------------------------------


async def lamp_ack(client: httpx.AsyncClient, event_id: int, lamp: str = "desk", **headers: str) -> httpx.Response:
    client.cookies.set(COOKIE, TOKEN)
    try:
        return await client.post(f"/lamp/{lamp}/ack", json={"event_id": event_id}, headers=headers)
    finally:
        client.cookies.clear()


async def test_the_lamp_page_route_refuses_other_sites_and_needs_its_own_lamps_key(
        api: tuple[httpx.AsyncClient, Service]) -> None:
    client, service = api
    outage = (await post_event(client, "911", "payments down"))["id"]
    await eventually(lambda: service.lamps["desk"].showing is not None)
    key = lamp_ack_key(TOKEN, "desk")
    host = client.base_url.netloc.decode()

    for foreign in ({"Sec-Fetch-Site": "cross-site"}, {"Sec-Fetch-Site": "same-site"},
                    {"Origin": "http://evil.example"}, {"Origin": "http://localhost:1"}):
        refused = await lamp_ack(client, outage, **{"X-Lamp-Ack": key, **foreign})
        assert refused.status_code == 403, foreign
        assert refused.json()["error"] == "refused: this request comes from a page of another site"
    assert (await lamp_ack(client, outage)).status_code == 401  # the cookie alone reads only
    assert (await lamp_ack(client, outage, **{"X-Lamp-Ack": lamp_ack_key(TOKEN, "hall")})).status_code == 401
    assert (await lamp_ack(client, outage, **{"X-Lamp-Ack": csrf_token(TOKEN)})).status_code == 401
    wrong = await lamp_ack(client, outage + 99, **{"X-Lamp-Ack": key})
    assert wrong.status_code == 409 and "desk no longer shows event" in wrong.json()["error"]
    assert outage in service.signals

    same_origin = {"X-Lamp-Ack": key, "Sec-Fetch-Site": "same-origin", "Origin": f"http://{host}"}
    done = await lamp_ack(client, outage, **same_origin)
    assert done.status_code == 200, done.text
    assert done.json() == {"acknowledged": [{"event_id": outage, "level": "911", "title": "payments down"}],
                           "by": "lamp page desk"}
    assert service.signals == {}


async def test_the_lamp_page_carries_only_its_own_lamps_key_and_refuses_framing(
        api: tuple[httpx.AsyncClient, Service]) -> None:
    client, _ = api
    client.cookies.set(COOKIE, TOKEN)
    page = await client.get("/lamp/desk")
    assert page.status_code == 200
    assert lamp_ack_key(TOKEN, "desk") in page.text
    assert csrf_token(TOKEN) not in page.text and TOKEN not in page.text
    assert page.headers["x-frame-options"] == "DENY" and "frame-ancestors 'none'" in page.headers[
        "content-security-policy"]
    dashboard = await client.get("/dashboard")
    assert dashboard.headers["x-frame-options"] == "DENY"


# ---- the CLI against a real daemon -------------------------------------------------------------------


def test_cli_ack_without_an_id_acknowledges_what_shows_and_send_says_where(daemon: Callable[..., Daemon]) -> None:
    d = daemon("lamps: {desk: 'virtual://desk'}\n" + UNTIL_ACK)
    first = cli(d, "send", "911", "payments down")
    assert first.returncode == 0 and first.stdout.strip() == "event 1: shown — On the lamp now", first
    queued = cli(d, "send", "912", "disk 90%")
    assert queued.stdout.strip() == "event 2: shown — Queued behind a 911 (“payments down”), shows when it ends"
    acked = cli(d, "ack", "--by", "alice")
    assert acked.returncode == 0 and acked.stdout.strip() == "event 1 (911: payments down) acknowledged by alice"
    status = cli(d, "status")
    assert "payments down — Ended; it was on desk" in status.stdout, status.stdout
    assert "disk 90% — On the lamp now" in status.stdout
    cli(d, "ack", "--all")
    nothing: subprocess.CompletedProcess[str] = cli(d, "ack")
    assert nothing.returncode == 1 and "nothing is showing to acknowledge (HTTP 409)" in nothing.stderr
