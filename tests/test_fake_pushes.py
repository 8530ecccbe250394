"""The device fakes push their state as the real devices do: WLED's websocket, the Hue bridge's event stream.

Home Assistant's integrations (and Lamplighter's drivers) keep a device's state from these
pushes, so the fakes must send them the way the devices do; bench/vs_homeassistant.py runs
Home Assistant's own libraries against them.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import pytest

from tests.peers.fake_hue import APP_KEY, BRIDGE_ID, FakeHueBridge
from tests.peers.fake_wled import FakeWled
from tests.peers.tls import self_signed

pytestmark = pytest.mark.timeout(30)
RED = [255, 0, 0]


async def next_json(socket: aiohttp.ClientWebSocketResponse) -> dict[str, Any]:
    return dict(await asyncio.wait_for(socket.receive_json(), 2))


async def test_wled_pushes_its_whole_state_to_every_websocket_client_after_each_change() -> None:
    async with FakeWled() as strip, aiohttp.ClientSession() as session, \
            session.ws_connect(f"{strip.base_url}/ws") as first, session.ws_connect(f"{strip.base_url}/ws") as second:
        assert (await next_json(first))["state"]["seg"][0]["col"][0] == [255, 160, 0]
        hello = await next_json(second)
        assert hello["info"]["ws"] == 2 and hello["info"]["ver"] and hello["info"]["mac"]
        async with httpx.AsyncClient() as client:
            posted = await client.post(f"{strip.base_url}/json/state", json={"seg": [{"id": 0, "col": [RED]}]})
        assert posted.json() == {"success": True}
        for socket in (first, second):
            assert (await next_json(socket))["state"]["seg"][0]["col"][0] == RED
        await second.send_str(json.dumps({"on": False, "v": True}))
        assert (await next_json(second))["state"]["on"] is False  # the pushed change ...
        assert (await next_json(second))["state"]["on"] is False  # ... and the answer to "v"
        assert (await next_json(first))["state"]["on"] is False
        assert [change for _, change in strip.arrivals] == [{"seg": [{"id": 0, "col": [RED]}]},
                                                            {"on": False, "v": True}]


async def test_a_change_at_the_strip_itself_is_pushed_but_is_no_command() -> None:
    async with FakeWled() as strip, aiohttp.ClientSession() as session, \
            session.ws_connect(f"{strip.base_url}/ws") as socket:
        await next_json(socket)
        strip.set_state({"bri": 40})
        assert (await next_json(socket))["state"]["bri"] == 40
        assert strip.arrivals == [] and strip.changes == []


async def test_the_hue_bridge_streams_each_light_change_and_links_on_the_button(tmp_path: Path) -> None:
    async with FakeHueBridge(self_signed(tmp_path)) as bridge, httpx.AsyncClient(verify=False) as client:
        light = bridge.add_light("Desk")
        config = (await client.get(f"{bridge.base_url}/api/config")).json()
        assert config["bridgeid"] == BRIDGE_ID.upper() and config["apiversion"] >= "1.48"
        linked = (await client.post(f"{bridge.base_url}/api", json={"devicetype": "test#x"})).json()
        assert linked == [{"success": {"username": APP_KEY}}]
        lines: asyncio.Queue[str] = asyncio.Queue()

        async def read() -> None:
            async with client.stream("GET", f"{bridge.base_url}/eventstream/clip/v2",
                                     headers={"hue-application-key": APP_KEY}) as stream:
                async for line in stream.aiter_lines():
                    await lines.put(line)

        reader = asyncio.create_task(read())
        try:
            assert await asyncio.wait_for(lines.get(), 2) == ": hi"
            put = await client.put(f"{bridge.base_url}/clip/v2/resource/light/{light}", headers={
                "hue-application-key": APP_KEY}, json={"on": {"on": True}, "color": {"xy": {"x": 0.6, "y": 0.3}}})
            assert put.status_code == 200
            while not (line := await asyncio.wait_for(lines.get(), 2)).startswith("data:"):
                pass
            [event] = json.loads(line.removeprefix("data:"))
            [changed] = event["data"]
            assert event["type"] == "update" and changed["id"] == light and changed["id_v1"] == "/lights/1"
            assert changed["color"]["xy"] == bridge.light(light)["color"]["xy"] and changed["on"] == {"on": True}
            assert bridge.commands[-1].arrived > 0
        finally:
            reader.cancel()


async def test_the_hue_event_stream_needs_the_application_key(tmp_path: Path) -> None:
    async with FakeHueBridge(self_signed(tmp_path)) as bridge, httpx.AsyncClient(verify=False) as client:
        answer = await client.get(f"{bridge.base_url}/eventstream/clip/v2")
        assert answer.status_code == 403 and bridge.listeners == set()
