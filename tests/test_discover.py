"""`lamplighter discover` against lamps answering on loopback, and the lamps its URLs then drive.

Real peers where they exist: the LIFX emulator, pywizlight's fake bulb (given WiZ's standard
port at 127.0.0.2, tests/peers/discovery_wiz.py), the Kasa simulator, and the real zeroconf
library announcing a Hue bridge and a WLED strip on 127.0.0.1. Yeelight and Govee have no
emulator: tests/peers/discovery_yeelight.py answers Yeelight's M-SEARCH and
tests/peers/fake_govee.py Govee's scan, as their LAN specifications describe. Nothing here
sends to the real network: every run has --target on loopback.
"""

from __future__ import annotations

import asyncio
import socket
import sys
from collections.abc import Iterator

import pytest
import yaml
from click.testing import CliRunner, Result

from lamplighter.cli.discover import StatusLine, discover, lamp_names, lamps_block
from lamplighter.config import parse_config
from lamplighter.drivers.base import LampUrl
from lamplighter.drivers.discovery import SCANNERS, Found, Outcome
from lamplighter.drivers.registry import build_driver
from lamplighter.model import LampState
from tests.peers.discovery_mdns import MdnsAnnouncer
from tests.peers.discovery_wiz import MAC, MODULE, DiscoverableWizBulb
from tests.peers.discovery_yeelight import YeelightResponder
from tests.peers.fake_govee import FakeGovee, free_udp_port
from tests.peers.fake_wled import FakeWled
from tests.peers.fake_yeelight import FakeYeelight
from tests.peers.kasa import KasaDevice
from tests.peers.lifx import LifxEmulator

LISTEN = "2"  # seconds: loopback answers come within milliseconds (mDNS within about 0.1 s)
NOBODY = "127.0.0.9"  # a loopback address where nothing answers
PASTE_HEADER = "# Paste into lamplighter.yaml"
WLED = "_wled._tcp.local."
HUE = "_hue._tcp.local."


@pytest.fixture(scope="module")
def lifx(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LifxEmulator]:
    with LifxEmulator(tmp_path_factory.mktemp("lifx")).start() as emulator:
        yield emulator


@pytest.fixture(scope="module")
def kasa(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KasaDevice]:
    with KasaDevice(tmp_path_factory.mktemp("kasa"), "hs100").start() as plug:
        yield plug


@pytest.fixture
def mdns() -> Iterator[MdnsAnnouncer]:
    with MdnsAnnouncer("127.0.0.1") as announcer:
        yield announcer


def run(*args: str) -> Result:
    return CliRunner().invoke(discover, ["--timeout", LISTEN, *args])


async def run_beside_peers(*args: str) -> Result:
    """The command in a thread (it runs its own event loop) while this loop serves the fakes."""
    return await asyncio.to_thread(run, *args)


def pasted_lamps(stdout: str) -> dict[str, str]:
    """The lamps: block from the output, as lamplighter.yaml would read it."""
    snippet = stdout[stdout.index(PASTE_HEADER):]
    assert yaml.safe_load(snippet).keys() == {"lamps"}
    lamps: dict[str, str] = parse_config(snippet, env={}).lamps
    return lamps


async def assert_drives_a_lamp(url: str) -> None:
    """The URL builds its driver, which reads what the device shows."""
    driver = build_driver(url)
    await driver.start()
    try:
        assert isinstance(await driver.read_state(), LampState)
    finally:
        await driver.close()


@pytest.mark.slow  # listens for the whole timeout
async def test_discover_finds_every_kind_of_lamp_with_urls_that_drive_it(
        lifx: LifxEmulator, kasa: KasaDevice, mdns: MdnsAnnouncer) -> None:
    listen_port = free_udp_port()
    async with FakeGovee(reply_port=listen_port) as govee, FakeYeelight() as yeelight, FakeWled() as wled:
        mdns.announce(WLED, "kitchen shelf", port=wled.port, txt={"mac": "aabbccddeeff"})
        mdns.announce(HUE, "Hue Bridge - 1A2B3C", port=443, txt={"bridgeid": "001788fffe1a2b3c", "modelid": "BSB002"})
        with YeelightResponder(name="desk", control_port=yeelight.port).start():
            result = await run_beside_peers(
                "--target", "127.0.0.1", "--port", f"lifx={lifx.port}", "--port", f"kasa={kasa.port}",
                "--port", f"govee={govee.scan_port}", "--port", f"govee-reply={listen_port}",
                "--port", f"govee-command={govee.command_port}")

        assert result.exit_code == 0, result.output
        for title in ("LIFX", "Yeelight", "Kasa", "Govee", "Hue", "WLED"):
            assert f"{title}: 1 found" in result.stderr
        assert "WiZ: 0 found" in result.stderr
        lamps = pasted_lamps(result.stdout)
        assert lamps == {
            "lifx_color_800lm_000001": lifx.lamp_url(),
            "desk": yeelight.lamp_url(),
            "mock_hs100": kasa.lamp_url(),
            "govee": govee.lamp_url(listen_port),
            "kitchen_shelf": f"wled://127.0.0.1:{wled.port}",
        }
        for url in lamps.values():
            await assert_drives_a_lamp(url)
    for model in ("LIFX Color 800lm", "color", "HS100", "H6008", "WLED"):
        assert f"  {model}  " in result.stdout


@pytest.mark.slow
def test_a_hue_bridge_comes_with_how_to_get_its_app_key(mdns: MdnsAnnouncer) -> None:
    mdns.announce(HUE, "Hue Bridge - 1A2B3C", port=443, txt={"bridgeid": "001788fffe1a2b3c", "modelid": "BSB002"})

    result = run("--target", "127.0.0.1", "--only", "hue")

    assert result.exit_code == 0, result.output
    assert "hue://APPKEY@127.0.0.1/lights/ID" in result.stdout
    assert "press its link button" in result.stdout
    assert "curl -X POST http://127.0.0.1/api" in result.stdout
    assert "  # hue_bridge_1a2b3c: hue://APPKEY@127.0.0.1/lights/ID   # fill in APPKEY" in result.stdout
    assert pasted_lamps(result.stdout) == {}  # nothing to paste until the key and light are filled in
    assert build_driver("hue://KEY@127.0.0.1/lights/3")  # the URL as it reads once filled in


@pytest.mark.slow
async def test_discover_finds_pywizlights_fake_bulb_and_its_url_drives_it() -> None:
    with DiscoverableWizBulb("127.0.0.2").start() as bulb:
        result = await run_beside_peers("--target", bulb.address, "--only", "wiz")

        assert result.exit_code == 0, result.output
        assert "WiZ: 1 found" in result.stderr
        assert MODULE in result.stdout and f"MAC {MAC}" in result.stdout
        assert pasted_lamps(result.stdout) == {"wiz": "wiz://127.0.0.2"}
        await assert_drives_a_lamp("wiz://127.0.0.2")


@pytest.mark.slow
def test_nothing_found_says_what_to_check() -> None:
    result = run("--target", NOBODY, "--only", "lifx,wiz,yeelight,govee,wled",
                 "--port", f"lifx={free_udp_port()}", "--port", f"govee={free_udp_port()}",
                 "--port", f"govee-reply={free_udp_port()}")

    assert result.exit_code == 1
    assert "No lamps answered within 2 s" in result.stdout
    for advice in ("same network", "firewall", "broadcast", "--timeout"):
        assert advice in result.stdout
    assert PASTE_HEADER not in result.stdout
    for title in ("LIFX", "WiZ", "Yeelight", "Govee", "WLED"):
        assert f"{title}: 0 found" in result.stderr


@pytest.mark.slow
def test_a_missing_optional_library_is_skipped_with_how_to_install_it(monkeypatch: pytest.MonkeyPatch,
                                                                        lifx: LifxEmulator) -> None:
    monkeypatch.setitem(sys.modules, "kasa", None)  # python-kasa not installed: `import kasa` fails

    result = run("--target", "127.0.0.1", "--only", "kasa,lifx", "--port", f"lifx={lifx.port}")

    assert result.exit_code == 0, result.output
    assert "Kasa: skipped: python-kasa is not installed" in result.stderr
    assert "pip install 'lamplighter[kasa]'" in result.stderr
    assert "LIFX: 1 found" in result.stderr


@pytest.mark.slow
def test_a_protocol_that_fails_does_not_hide_the_others(lifx: LifxEmulator) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind(("0.0.0.0", 0))  # Govee's reply port, held by another program
        result = run("--target", "127.0.0.1", "--only", "govee,lifx", "--port", f"lifx={lifx.port}",
                     "--port", f"govee-reply={taken.getsockname()[1]}")

    assert result.exit_code == 0, result.output
    assert "Govee: 0 found, then failed: OSError" in result.stderr
    assert "LIFX: 1 found" in result.stderr
    assert lifx.lamp_url() in result.stdout


@pytest.mark.parametrize("args", [["--only", "lifx,zigbee"], ["--port", "hue=80"], ["--port", "lifx=http"],
                                  ["--target", "my-router"]])
def test_bad_options_are_refused_before_scanning(args: list[str]) -> None:
    result = CliRunner().invoke(discover, args)

    assert result.exit_code == 2
    assert "scanning" not in result.stderr


def test_lamp_names_come_from_labels_and_are_unique() -> None:
    found = [Found("lifx", "lifx://a", "Küche Decke"), Found("lifx", "lifx://b", "Küche Decke"),
             Found("wiz", "wiz://c"), Found("wiz", "wiz://d"), Found("govee", "govee://e", " !! ")]

    assert lamp_names(found) == ["kuche_decke", "kuche_decke_2", "wiz", "wiz_2", "govee"]


def test_a_url_with_placeholders_is_pasted_as_a_comment() -> None:
    found = [Found("kasa", "kasa://USER:PASSWORD@192.168.1.51", "Tapo plug", todo="USER:PASSWORD"),
             Found("kasa", "kasa://192.168.1.50", "Hall")]

    block = lamps_block(found, lamp_names(found))
    assert yaml.safe_load(block) == {"lamps": {"hall": "kasa://192.168.1.50"}}
    assert "  # tapo_plug: kasa://USER:PASSWORD@192.168.1.51   # fill in USER:PASSWORD" in block
    LampUrl.parse(found[0].url)


def test_a_terminal_sees_a_live_line_of_counts(capsys: pytest.CaptureFixture[str]) -> None:
    lifx, wiz = SCANNERS[0], SCANNERS[1]
    progress = StatusLine([lifx, wiz], live=True)

    progress.start(3.0)
    progress.found(lifx, 2)
    progress.finished(Outcome(lifx, (Found("lifx", "lifx://a"), Found("lifx", "lifx://b"))))

    shown = capsys.readouterr().err
    assert "\r\033[Kscanning LIFX… 2 found, WiZ… 0 found" in shown
    assert "LIFX: 2 found\n" in shown
    assert shown.endswith("scanning WiZ… 0 found")


def test_progress_off_a_terminal_is_one_line_per_protocol(capsys: pytest.CaptureFixture[str]) -> None:
    lifx = SCANNERS[0]
    progress = StatusLine([lifx], live=False)

    progress.start(3.0)
    progress.found(lifx, 1)
    progress.finished(Outcome(lifx, (Found("lifx", "lifx://a"),)))

    assert capsys.readouterr().err == "scanning LIFX for 3 s…\nLIFX: 1 found\n"
