"""What `lamplighter run` loads: with the embedded default, none of the optional libraries.

A source's or a driver's library loads only when the configuration names that source type or
lamp scheme; the hub's modules only for `lamplighter hub`. These tests run the real daemon with
Python's verbose import log switched on (PYTHONVERBOSE=1, the same as `python -v`: a line
`import 'NAME' # LOADER` for every module loaded, however it is imported), use it as a user
would (an event, the lamp list, the dashboard, the metrics), and read from the log which
modules it imported. They check what is imported, never how long it took, so a
start-up regression shows up here as a named module.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest

from tests.daemon import Daemon

# Top-level packages of the optional device, source and announce libraries.
OPTIONAL_LIBRARIES = (
    "aiohttp", "aiomqtt", "paho", "aiosmtpd", "imapclient", "dkim", "dns", "slack_bolt", "slack_sdk", "apprise",
    "cv2", "numpy", "onnxruntime", "lifx", "pywizlight", "yeelight", "govee_local_api", "kasa", "blink1", "hid",
    "zeroconf", "httpx",
)
# Lamplighter's own modules that the embedded default does not use.
UNUSED_MODULES = (
    "lamplighter.service.hub", "lamplighter.service.agent", "lamplighter.rooms", "lamplighter.cli.rooms",
    "lamplighter.cli.discover", "lamplighter.drivers.discovery", "lamplighter.sources.webhooks",
    "lamplighter.sources.mail", "lamplighter.sources.slack", "lamplighter.sources.camera",
    "lamplighter.sources.mqtt", "lamplighter.sources.frigate", "lamplighter.announce.slack_app",
    "lamplighter.announce.apprise_url", "lamplighter.drivers.wled", "lamplighter.drivers.hue",
    "lamplighter.drivers.lifx", "lamplighter.drivers.hass", "lamplighter.drivers.zigbee2mqtt",
)


def imported(log: str) -> set[str]:
    """The modules named in Python's verbose import log."""
    return set(re.findall(r"^import '([\w.]+)' # ", log, flags=re.MULTILINE))


def among(modules: set[str], packages: tuple[str, ...]) -> list[str]:
    """The modules that are one of `packages` or inside one."""
    return sorted(m for m in modules if any(m == p or m.startswith(p + ".") for p in packages))


def used_once(daemon: Daemon) -> set[str]:
    """What the daemon imported from its start through an event, the lamp list, the dashboard and the metrics."""
    with daemon.client() as client:
        assert client.post("/api/events", json={"level": "912", "title": "disk 91% full"}).status_code == 202
        assert client.get("/api/lamps").status_code == 200
        assert client.get("/dashboard").status_code == 200
        assert client.get("/metrics").status_code == 200
    assert daemon.stop() == 0
    return imported(daemon.log_path.read_text(errors="replace"))


@pytest.fixture
def import_log(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTHONVERBOSE", "1")


@pytest.mark.usefixtures("import_log")
def test_the_embedded_default_loads_no_optional_library(daemon: Callable[..., Daemon]) -> None:
    modules = used_once(daemon(""))  # no lamps, sources or levels given: the embedded default's
    assert {"lamplighter.web.app", "lamplighter.drivers.virtual", "fastapi"} <= modules  # the log lists them
    assert among(modules, OPTIONAL_LIBRARIES) == []
    assert among(modules, UNUSED_MODULES) == []


@pytest.mark.usefixtures("import_log")
def test_a_configured_source_and_lamp_load_their_modules(daemon: Callable[..., Daemon]) -> None:
    modules = used_once(daemon("lamps: {strip: 'wled://127.0.0.1:9'}\n"
                               "sources: [{type: alertmanager, name: am, token: hook-token-0123456789}]\n"))
    assert {"lamplighter.drivers.wled", "lamplighter.sources.webhooks.alertmanager"} <= modules
    assert among(modules, ("lamplighter.sources.mail", "lamplighter.sources.slack", "lamplighter.drivers.hue",
                           "slack_bolt", "aiosmtpd", "cv2")) == []
