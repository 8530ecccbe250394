"""The signal follows its person by Home Assistant: a real HA 2024.3.3, a real Mosquitto, a hub and two agents.

The person's room is an HA entity (`sensor.ann_phone_area`, as Bermuda names an area sensor) that the test
sets through HA's REST API, as an integration would. The hub watches it on the same websocket as its
hass:// lamp, which HA itself counts (its `websocket_api` sensor, `sensor.connected_clients`).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.peers.homeassistant import HomeAssistant
from tests.peers.mosquitto import Mosquitto
from tests.rooms import AgentProcess, HubProcess, color
from tests.test_e2e import wait_for

pytestmark = [pytest.mark.slow, pytest.mark.real_time, pytest.mark.timeout(120)]

RED = "#ff0000"
AREA = "sensor.ann_phone_area"
HA_BACK = 60.0  # HA stops in about 2 s and starts in about 1.5 s, and the hub's retries back off


@pytest.fixture(scope="module")
def ha(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HomeAssistant]:
    counting = "sensor:\n  - platform: websocket_api\n"  # sensor.connected_clients: HA's open websockets
    with HomeAssistant(tmp_path_factory.mktemp("hass"), extra_config=counting).start() as started:
        yield started


def hub_with_presence(ha: HomeAssistant, stale_after: str, lamps: str = "{}") -> str:
    """The hub's lamps, a 911 that follows ann, and ann's presence from HA's area sensor."""
    return (f"lamps: {lamps}\n"
            "levels: {911: {lamps: [study, kitchen], hold: 1h}}\n"
            "people:\n"
            "  ann:\n"
            "    rooms: [study, kitchen]\n"
            "    levels: [911]\n"
            "    presence:\n"
            f"      hass: 'hass://${{HASS_TOKEN}}@127.0.0.1:{ha.port}'\n"
            f"      entity: {AREA}\n"
            "      rooms: {Study: study, Kitchen: kitchen}\n"
            f"      stay: 0.3s\n      stale_after: {stale_after}\n")


def shows(*agents: AgentProcess) -> set[str]:
    return {agent.room for agent in agents if color(agent.lamp("desk")) == RED}


def test_a_911_moves_with_the_room_home_assistant_reports(tmp_path: Path, ha: HomeAssistant,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HASS_TOKEN", ha.token)
    ha.set_state(AREA, "not_home")
    lamp = f"{{hall: 'hass://${{HASS_TOKEN}}@127.0.0.1:{ha.port}/light.bed_light'}}"
    with Mosquitto(tmp_path / "mqtt").start() as broker:
        hub = HubProcess(tmp_path / "hub", broker, extra=hub_with_presence(ha, "1h", lamps=lamp)).start()
        study = AgentProcess(tmp_path / "study", broker, room="study").start()
        kitchen = AgentProcess(tmp_path / "kitchen", broker, room="kitchen").start()
        try:
            hub.send("911", "payments down")  # ann is in no known room: every room of hers
            for agent in (study, kitchen):
                agent.wait_for(lambda view: color(view) == RED)
            ha.set_state(AREA, "Study")  # from no room, the first room counts at once
            kitchen.wait_for(lambda view: color(view) is None)
            assert shows(study, kitchen) == {"study"}
            ha.set_state(AREA, "Kitchen")  # counts after `stay`
            kitchen.wait_for(lambda view: color(view) == RED)
            study.wait_for(lambda view: color(view) is None)
            ha.set_state(AREA, "Garden")  # an area without a room: every room of hers again
            study.wait_for(lambda view: color(view) == RED)
            assert shows(study, kitchen) == {"study", "kitchen"}
            assert ha.state("sensor.connected_clients")["state"] == "1"  # the presence and the lamp share one
        finally:
            for process in (study, kitchen, hub):
                process.stop()


def test_ha_gone_makes_the_room_unknown_after_stale_after_and_ha_back_makes_it_known(
        tmp_path: Path, ha: HomeAssistant, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HASS_TOKEN", ha.token)
    ha.set_state(AREA, "Kitchen")
    with Mosquitto(tmp_path / "mqtt").start() as broker:
        hub = HubProcess(tmp_path / "hub", broker, extra=hub_with_presence(ha, "2s")).start()
        study = AgentProcess(tmp_path / "study", broker, room="study").start()
        kitchen = AgentProcess(tmp_path / "kitchen", broker, room="kitchen").start()
        try:
            wait_for(lambda: "says 'Kitchen'" in hub.log_tail(), timeout=10)
            hub.send("911", "payments down")
            kitchen.wait_for(lambda view: color(view) == RED)
            assert shows(study, kitchen) == {"kitchen"}
            ha.stop()  # her last room stands for stale_after (2 s), then every room of hers
            study.wait_for(lambda view: color(view) == RED, timeout=15)
            assert "does not tell sensor.ann_phone_area now" in hub.log_tail()
            ha.start()
            ha.set_state(AREA, "Kitchen")  # a state set over REST does not survive HA's restart
            study.wait_for(lambda view: color(view) is None, timeout=HA_BACK)
            assert shows(study, kitchen) == {"kitchen"}
        finally:
            for process in (study, kitchen, hub):
                process.stop()
